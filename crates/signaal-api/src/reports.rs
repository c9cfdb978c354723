//! The reports: Pareto, recurrence, frequency × impact, improvement actions, and a summary.

use std::collections::BTreeSet;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use signaal_analysis::pdca::{Counts, Measurement};
use signaal_analysis::recurrence::{Group, Recurring};
use signaal_analysis::{
    pareto, quadrant, recurrence, ActionConfig, AnalysisConfig, Pareto, RecurrenceConfig,
};
use signaal_store::analysis::{
    day_of, day_start, Action, Dimension, Filter, KeyCount, VersionCount,
};
use signaal_store::{Store, StoreError};

/// The longest period a report may cover.
const MAX_DAYS: i64 = 20 * 366;
/// Groups of a recurrence report that get sample signals (one small query each).
const SAMPLED_GROUPS: usize = 50;
/// Customers listed in a recurrence report.
const MAX_AUTHORS: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request cannot be answered as asked; the message says why (HTTP 400).
    #[error("{0}")]
    Invalid(String),
    /// The register failed (HTTP 500).
    #[error("register: {0}")]
    Store(#[from] StoreError),
}

fn invalid(message: impl Into<String>) -> ReportError {
    ReportError::Invalid(message.into())
}

/// The themes and subjects that exist (the taxonomy's), for checking requests.
#[derive(Debug, Clone, Default)]
pub struct Vocabulary {
    pub themes: BTreeSet<String>,
    pub subjects: BTreeSet<String>,
}

/// What a report covers: the days `from` to `to`, both included, and optional filters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Query {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

fn known<T: serde::de::DeserializeOwned>(
    what: &str,
    value: &str,
    all: &str,
) -> Result<(), ReportError> {
    serde_json::from_value::<T>(serde_json::Value::String(value.to_string()))
        .map(|_| ())
        .map_err(|_| invalid(format!("unknown {what} {value:?} (one of {all})")))
}

impl Query {
    /// A query over the days `from..=to`.
    pub fn new(from: NaiveDate, to: NaiveDate) -> Query {
        Query {
            from,
            to,
            theme: None,
            subject: None,
            channel: None,
            cause: None,
            kind: None,
        }
    }

    /// Checks the dates and that every filter names something that exists.
    pub fn validate(&self, vocabulary: &Vocabulary) -> Result<(), ReportError> {
        check_year("from", self.from)?;
        check_year("to", self.to)?;
        if self.to < self.from {
            return Err(invalid(format!(
                "the period ends ({}) before it starts ({})",
                self.to, self.from
            )));
        }
        let days = (self.to - self.from).num_days() + 1;
        if days > MAX_DAYS {
            return Err(invalid(format!(
                "the period is {days} days; at most {MAX_DAYS} (20 years)"
            )));
        }
        if let Some(t) = &self.theme {
            if !vocabulary.themes.contains(t) {
                return Err(invalid(format!(
                    "unknown theme {t:?} (one of {})",
                    join(&vocabulary.themes)
                )));
            }
        }
        if let Some(s) = &self.subject {
            if !vocabulary.subjects.contains(s) {
                return Err(invalid(format!(
                    "unknown subject {s:?} (see /api/v1/subjects or the taxonomy)"
                )));
            }
        }
        if let Some(c) = &self.channel {
            known::<signaal_core::Channel>(
                "channel",
                c,
                "email, phone, twitter, facebook, internal",
            )?;
        }
        if let Some(c) = &self.cause {
            known::<signaal_core::Cause>("cause", c, "human, system, mixed, unknown")?;
        }
        if let Some(k) = &self.kind {
            known::<signaal_core::Kind>("kind", k, "complaint, compliment, question, suggestion")?;
        }
        Ok(())
    }

    /// The register filter: days `[from, to + 1)`.
    pub fn filter(&self) -> Filter {
        Filter {
            from_day: day_of_date(self.from),
            to_day: day_of_date(self.to) + 1,
            theme: self.theme.clone(),
            subject: self.subject.clone(),
            channel: self.channel.clone(),
            cause: self.cause.clone(),
            kind: self.kind.clone(),
        }
    }
}

fn join(set: &BTreeSet<String>) -> String {
    set.iter().cloned().collect::<Vec<_>>().join(", ")
}

fn day_of_date(d: NaiveDate) -> i64 {
    day_of(midnight(d))
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// What a report row is about: a theme, a subject, or a theme and a subject.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Key {
    /// `theme`, `subject` or `theme / subject`.
    pub fn label(&self) -> String {
        match (&self.theme, &self.subject) {
            (Some(t), Some(s)) => format!("{t} / {s}"),
            (Some(t), None) => t.clone(),
            (None, Some(s)) => s.clone(),
            (None, None) => "(all)".into(),
        }
    }
}

fn key(k: &KeyCount, dim: Dimension) -> Key {
    Key {
        theme: matches!(dim, Dimension::Theme | Dimension::ThemeSubject)
            .then(|| k.theme.clone())
            .flatten(),
        subject: matches!(dim, Dimension::Subject | Dimension::ThemeSubject)
            .then(|| k.subject.clone())
            .flatten(),
    }
}

/// The years a day given to a report or an action may have: every day and time derived from it
/// (a year before, a recurrence window of up to ten years, an action's windows of up to two
/// years) then has four digits as well, as RFC 3339 wants.
pub const YEARS: std::ops::RangeInclusive<i32> = 1000..=8999;

/// Refuses a day outside [`YEARS`], naming the parameter.
pub fn check_year(name: &str, d: NaiveDate) -> Result<(), ReportError> {
    use chrono::Datelike as _;
    if YEARS.contains(&d.year()) {
        Ok(())
    } else {
        Err(invalid(format!(
            "`{name}` = {d} is out of range (years {} to {})",
            YEARS.start(),
            YEARS.end()
        )))
    }
}

/// The classifier versions of the filter's days.
async fn versions(store: &Store, filter: &Filter) -> Result<Vec<VersionCount>, ReportError> {
    Ok(store
        .classifier_versions(filter.from_day, filter.to_day)
        .await?)
}

/// A Pareto list over a period.
#[derive(Debug, Clone, Serialize)]
pub struct ParetoReport {
    pub query: Query,
    pub dimension: Dimension,
    /// The classifier versions that classified the period's signals, most first: more than
    /// one means the report mixes taxonomies (`signaal reclassify` brings them to one).
    pub classifiers: Vec<VersionCount>,
    #[serde(flatten)]
    pub pareto: Pareto<Key>,
}

/// Signals per theme, subject or theme × subject, largest first, with cumulative share and the
/// 80 % line.
pub async fn pareto_report(
    store: &Store,
    query: &Query,
    dimension: Dimension,
) -> Result<ParetoReport, ReportError> {
    let filter = query.filter();
    let rows = store.rollup_counts(dimension, &filter).await?;
    Ok(ParetoReport {
        query: query.clone(),
        dimension,
        classifiers: versions(store, &filter).await?,
        pareto: pareto_of(&rows, dimension),
    })
}

fn pareto_of(rows: &[KeyCount], dimension: Dimension) -> Pareto<Key> {
    pareto::pareto(rows.iter().map(|r| (key(r, dimension), r.signals)))
}

fn quadrants_of(rows: &[KeyCount], dimension: Dimension) -> quadrant::Quadrants<Key> {
    quadrant::quadrants(rows.iter().map(|r| quadrant::ImpactRow {
        key: key(r, dimension),
        count: r.signals,
        impact_sum: r.impact_sum,
    }))
}

/// Frequency × impact over a period: each key against the medians.
#[derive(Debug, Clone, Serialize)]
pub struct ImpactReport {
    pub query: Query,
    pub dimension: Dimension,
    /// The classifier versions that classified the period's signals, most first: more than
    /// one means the report mixes taxonomies (`signaal reclassify` brings them to one).
    pub classifiers: Vec<VersionCount>,
    #[serde(flatten)]
    pub quadrants: quadrant::Quadrants<Key>,
}

pub async fn impact_report(
    store: &Store,
    query: &Query,
    dimension: Dimension,
) -> Result<ImpactReport, ReportError> {
    let filter = query.filter();
    let rows = store.rollup_counts(dimension, &filter).await?;
    Ok(ImpactReport {
        query: query.clone(),
        dimension,
        classifiers: versions(store, &filter).await?,
        quadrants: quadrants_of(&rows, dimension),
    })
}

/// 1x coincidence, 2x notable, 3x pattern within the window that ends on the query's last
/// day: per theme × subject, per subject, and per customer (pseudonym).
#[derive(Debug, Clone, Serialize)]
pub struct RecurrenceReport {
    pub query: Query,
    /// The window: `since` up to the end of the query's last day.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The classifier versions that classified the window's signals, most first: more than
    /// one means the report mixes taxonomies (`signaal reclassify` brings them to one).
    pub classifiers: Vec<VersionCount>,
    pub theme_subject: Vec<Recurring<Key>>,
    pub subject: Vec<Recurring<Key>>,
    /// Customers who came back (two signals or more), most first.
    pub author: Vec<Recurring<String>>,
    /// Customers with one signal in the window.
    pub authors_once: u64,
}

pub async fn recurrence_report(
    store: &Store,
    cfg: &RecurrenceConfig,
    query: &Query,
) -> Result<RecurrenceReport, ReportError> {
    recurrence_parts(store, cfg, query, true).await
}

/// The recurrence report; without `full` (the summary, which shows the theme × subject
/// patterns and how many customers came back) the subject section and the customers' samples
/// are left out.
async fn recurrence_parts(
    store: &Store,
    cfg: &RecurrenceConfig,
    query: &Query,
    full: bool,
) -> Result<RecurrenceReport, ReportError> {
    let until = midnight(query.to) + chrono::Duration::days(1);
    let since = cfg.since(until);
    let mut filter = query.filter();
    filter.from_day = day_of(since);
    let sampled = if cfg.samples == 0 { 0 } else { SAMPLED_GROUPS };
    // The rollup sections and the customers read different tables: they run side by side, and
    // the sample lookups of a section run together (the pool bounds how many at once).
    let section = |dim: Dimension| {
        let filter = &filter;
        async move {
            if !full && dim == Dimension::Subject {
                return Ok(Vec::new());
            }
            let rows = store.rollup_counts(dim, filter).await?;
            let groups = rows.iter().map(|r| Group {
                key: key(r, dim),
                count: r.signals,
                first: day_start(r.first_day),
                last: day_start(r.last_day),
                samples: Vec::new(),
            });
            let mut levelled = recurrence::recurrence(groups, cfg);
            let samples = futures::future::try_join_all(levelled.iter().take(sampled).map(|r| {
                store.sample_ids(
                    r.key.theme.as_deref(),
                    r.key.subject.as_deref(),
                    None,
                    since,
                    until,
                    cfg.samples,
                )
            }))
            .await?;
            for (r, s) in levelled.iter_mut().zip(samples) {
                r.samples = s;
            }
            Ok::<_, ReportError>(levelled)
        }
    };
    let customers = async {
        let (authors, once) = store
            .author_counts(since, until, query.channel.as_deref(), 2, MAX_AUTHORS)
            .await?;
        let samples = futures::future::try_join_all(
            authors
                .iter()
                .take(if full { sampled } else { 0 })
                .map(|a| store.sample_ids(None, None, Some(&a.author), since, until, cfg.samples)),
        )
        .await?;
        let mut samples = samples.into_iter();
        let groups: Vec<Group<String>> = authors
            .into_iter()
            .map(|a| Group {
                key: a.author,
                count: a.signals,
                first: a.first,
                last: a.last,
                samples: samples.next().unwrap_or_default(),
            })
            .collect();
        Ok::<_, ReportError>((groups, once))
    };
    let (theme_subject, subject, (author_groups, once), classifiers) = tokio::try_join!(
        section(Dimension::ThemeSubject),
        section(Dimension::Subject),
        customers,
        versions(store, &filter),
    )?;
    Ok(RecurrenceReport {
        query: query.clone(),
        since,
        until,
        classifiers,
        theme_subject,
        subject,
        author: recurrence::recurrence(author_groups, cfg),
        authors_once: once,
    })
}

/// An improvement action with its measurement (before against after).
#[derive(Debug, Clone, Serialize)]
pub struct ActionReport {
    #[serde(flatten)]
    pub action: Action,
    /// `None` with `error` set when it cannot be measured (its windows fall outside time).
    pub measurement: Option<Measurement>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Measures one action at `now`: its theme and/or subject in the windows before and after its
/// start; per week, or per signal of the whole register when `normalise` (exposure).
pub async fn measure_action(
    store: &Store,
    cfg: &ActionConfig,
    action: Action,
    now: DateTime<Utc>,
    normalise: bool,
) -> Result<ActionReport, ReportError> {
    let start = midnight(action.start_date);
    let windows = match cfg.windows(start) {
        Ok(w) => w,
        Err(e) => {
            return Ok(ActionReport {
                action,
                measurement: None,
                error: Some(e.to_string()),
            })
        }
    };
    let count =
        |theme: Option<String>, subject: Option<String>, w: signaal_analysis::pdca::Window| {
            Filter {
                from_day: day_of(w.start),
                to_day: day_of(w.end),
                theme,
                subject,
                ..Filter::default()
            }
        };
    let (t, s) = (action.theme.clone(), action.subject.clone());
    let theme = Counts {
        before: store
            .rollup_total(&count(t.clone(), s.clone(), windows.before))
            .await?,
        after: store
            .rollup_total(&count(t.clone(), s.clone(), windows.after))
            .await?,
    };
    let volume = if normalise {
        Some(Counts {
            before: store
                .rollup_total(&count(None, None, windows.before))
                .await?,
            after: store
                .rollup_total(&count(None, None, windows.after))
                .await?,
        })
    } else {
        None
    };
    Ok(
        match signaal_analysis::pdca::measure(cfg, start, now, theme, volume) {
            Ok(m) => ActionReport {
                action,
                measurement: Some(m),
                error: None,
            },
            Err(e) => ActionReport {
                action,
                measurement: None,
                error: Some(e.to_string()),
            },
        },
    )
}

/// Every action, measured at `now`.
pub async fn actions_report(
    store: &Store,
    cfg: &ActionConfig,
    now: DateTime<Utc>,
    normalise: bool,
) -> Result<Vec<ActionReport>, ReportError> {
    let mut out = Vec::new();
    for a in store.actions().await? {
        out.push(measure_action(store, cfg, a, now, normalise).await?);
    }
    Ok(out)
}

/// The first page a coordinator reads: the volume, the vital few themes, the patterns to act
/// on, the act-now quadrant and the actions' verdicts.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub query: Query,
    pub signals: u64,
    /// The classifier versions that classified the period's signals, most first: more than
    /// one means the report mixes taxonomies (`signaal reclassify` brings them to one).
    pub classifiers: Vec<VersionCount>,
    /// Themes inside the 80 % line, largest first.
    pub vital_few: Vec<signaal_analysis::ParetoRow<Key>>,
    /// Theme × subject groups and customers at the pattern level (3x or more) in the window.
    pub patterns: Vec<Recurring<Key>>,
    pub returning_customers: usize,
    /// Themes frequent and of high impact.
    pub act_now: Vec<quadrant::QuadrantRow<Key>>,
    pub actions: Vec<ActionReport>,
}

pub async fn summary(
    store: &Store,
    cfg: &AnalysisConfig,
    query: &Query,
    now: DateTime<Utc>,
) -> Result<Summary, ReportError> {
    let filter = query.filter();
    // Each part reads on its own connection, side by side; the vital few and the quadrants come
    // from one read of the theme counts.
    let (signals, themes, recurring, actions, classifiers) = tokio::try_join!(
        async { Ok::<_, ReportError>(store.rollup_total(&filter).await?) },
        async { Ok::<_, ReportError>(store.rollup_counts(Dimension::Theme, &filter).await?) },
        recurrence_parts(store, &cfg.recurrence, query, false),
        actions_report(store, &cfg.action, now, false),
        versions(store, &filter),
    )?;
    Ok(Summary {
        query: query.clone(),
        signals,
        classifiers,
        vital_few: pareto_of(&themes, Dimension::Theme)
            .rows
            .into_iter()
            .filter(|r| r.vital_few)
            .collect(),
        patterns: recurring
            .theme_subject
            .into_iter()
            .filter(|r| r.level == recurrence::Level::Pattern)
            .collect(),
        returning_customers: recurring.author.len(),
        act_now: quadrants_of(&themes, Dimension::Theme)
            .rows
            .into_iter()
            .filter(|r| r.quadrant == quadrant::Quadrant::ActNow)
            .collect(),
        actions,
    })
}

/// The day after `d` (for callers that turn an inclusive end into an exclusive one).
pub fn next_day(d: NaiveDate) -> Option<NaiveDate> {
    d.checked_add_days(Days::new(1))
}
