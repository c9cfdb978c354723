//! Theme (or subject) timelines: signals per day over a period, the count the alerter's
//! detector expected for each day and the upper end of its band, and the alerter's own events
//! (pending, firing, …) on the days they concern.
//!
//! The band is the detector of `[alerter.detect]` run over daily buckets (the same settings with
//! a day for a bucket) from enough history before the period that its first day already has a
//! baseline. The markers are the events the alerter stored, not recomputed: a timeline shows
//! what the alerter said.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::Serialize;
use signaal_detect::lifecycle::Lifecycle;
use signaal_detect::watch::Watch;
use signaal_detect::Settings;
use signaal_store::analysis::{day_of, day_start, Dimension};
use signaal_store::Store;

use crate::reports::{Key, Query, ReportError};

/// The most series one timeline request draws.
pub const MAX_SERIES: usize = 20;

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub query: Query,
    pub dimension: Dimension,
    /// `day`: each bucket is a UTC day.
    pub grain: &'static str,
    /// The largest groups of the period, largest first (or the filtered theme/subject).
    pub series: Vec<TimelineSeries>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineSeries {
    pub key: Key,
    /// Signals over the period.
    pub signals: u64,
    /// Every day of the period, in order (days without signals count zero).
    pub buckets: Vec<TimelineBucket>,
    /// The alerter's events about this theme in the period (theme series only).
    pub alerts: Vec<TimelineAlert>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineBucket {
    pub start: NaiveDate,
    pub signals: u64,
    /// What the detector expected, and the upper end of the band (absent without history).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineAlert {
    pub alert_id: String,
    pub state: String,
    /// The alerter's bucket (an hour by default) and the day it falls on.
    pub bucket_start: DateTime<Utc>,
    pub day: NaiveDate,
    pub observed: u64,
    /// The series as the alerter named it (`theme` or `theme/channel`).
    pub series: String,
}

/// The detector's settings for daily buckets: the alerter's, with a day for a bucket.
pub fn daily_settings(alerter: &Settings) -> Settings {
    Settings {
        bucket_seconds: 86_400,
        ..alerter.clone()
    }
}

/// Days of history the band needs before a period's first day.
fn history_days(s: &Settings) -> u64 {
    u64::try_from(
        s.days
            .max(s.weeks.saturating_mul(7))
            .max(s.min_history_days),
    )
    .unwrap_or(0)
}

fn date_of(day: i64) -> NaiveDate {
    day_start(day).date_naive()
}

/// The timeline of the `limit` largest groups of `dimension` (themes or subjects) in the
/// query's period, or of its theme/subject filter.
pub async fn timeline(
    store: &Store,
    detect: &Settings,
    query: &Query,
    dimension: Dimension,
    limit: usize,
) -> Result<Timeline, ReportError> {
    if dimension == Dimension::ThemeSubject {
        return Err(ReportError::Invalid(
            "a timeline is by theme or by subject, not theme_subject".into(),
        ));
    }
    if limit == 0 || limit > MAX_SERIES {
        return Err(ReportError::Invalid(format!(
            "`limit` = {limit} is out of range (1–{MAX_SERIES})"
        )));
    }
    let settings = daily_settings(detect);
    let mut with_history = query.clone();
    with_history.from = query
        .from
        .checked_sub_days(Days::new(history_days(&settings)))
        .unwrap_or(query.from);
    let filter = query.filter();
    let (rows, events) = tokio::try_join!(
        async { Ok::<_, ReportError>(store.rollup_days(dimension, &with_history.filter()).await?) },
        async {
            Ok::<_, ReportError>(
                store
                    .alert_events_between(day_start(filter.from_day), day_start(filter.to_day))
                    .await?,
            )
        },
    )?;
    let mut by_key: BTreeMap<Key, BTreeMap<i64, u64>> = BTreeMap::new();
    for r in rows {
        let key = match dimension {
            Dimension::Theme => Key {
                theme: r.theme,
                subject: None,
            },
            _ => Key {
                theme: None,
                subject: r.subject,
            },
        };
        by_key.entry(key).or_default().insert(r.day, r.signals);
    }
    let in_period = |days: &BTreeMap<i64, u64>| -> u64 {
        days.range(filter.from_day..filter.to_day)
            .map(|(_, n)| n)
            .sum()
    };
    let mut ranked: Vec<(u64, Key)> = by_key
        .iter()
        .map(|(k, days)| (in_period(days), k.clone()))
        .filter(|(n, _)| *n > 0)
        .collect();
    ranked.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    ranked.truncate(limit);
    let life = Lifecycle::default();
    let first_day = day_of_date(with_history.from);
    let series = ranked
        .into_iter()
        .map(|(signals, key)| {
            let days = by_key.get(&key).cloned().unwrap_or_default();
            let buckets = band(&settings, &life, &days, first_day, &filter);
            let alerts = match &key.theme {
                // The theme's alerts; with a channel filter, only the theme-wide ones and those
                // of that channel (when the alerter splits series by channel).
                Some(theme) => events
                    .iter()
                    .filter(|e| &e.theme == theme)
                    .filter(|e| match (&query.channel, &e.channel) {
                        (Some(want), Some(have)) => want == have,
                        _ => true,
                    })
                    .map(|e| TimelineAlert {
                        alert_id: e.alert_id.clone(),
                        state: e.state.as_str().to_string(),
                        bucket_start: e.bucket_start,
                        day: e.bucket_start.date_naive(),
                        observed: e.observed,
                        series: e.series.clone(),
                    })
                    .collect(),
                None => Vec::new(),
            };
            TimelineSeries {
                key,
                signals,
                buckets,
                alerts,
            }
        })
        .collect();
    Ok(Timeline {
        query: query.clone(),
        dimension,
        grain: "day",
        series,
    })
}

fn day_of_date(d: NaiveDate) -> i64 {
    day_of(d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
}

/// Runs the detector over every day from `first_day` and keeps the period's days.
fn band(
    settings: &Settings,
    life: &Lifecycle,
    days: &BTreeMap<i64, u64>,
    first_day: i64,
    filter: &signaal_store::analysis::Filter,
) -> Vec<TimelineBucket> {
    // Days before the series' first signal are not zeros but unknown (the register may not have
    // existed): the detector starts at the first signal.
    let origin = days
        .keys()
        .next()
        .map_or(first_day, |d| (*d).max(first_day));
    let mut watch = Watch::new(settings, origin);
    let mut out = Vec::new();
    for day in first_day.min(filter.from_day)..filter.to_day {
        let n = days.get(&day).copied().unwrap_or(0);
        let decided = (day >= origin).then(|| watch.step(settings, life, day, n, None).decided);
        if day >= filter.from_day {
            let finite = |v: f64| v.is_finite().then_some(v);
            let known = decided.as_ref().filter(|d| d.baseline > 0);
            out.push(TimelineBucket {
                start: date_of(day),
                signals: n,
                expected: known.and_then(|d| finite(d.expected)),
                upper: known.and_then(|d| finite(d.upper)),
            });
        }
    }
    out
}
