//! What the register's analysis reads (issue 14): counts per theme, subject and theme × subject
//! from the daily rollup, customers who came back, sample signals, and improvement actions.
//!
//! Every report is one statement (samples one small statement per listed group) on either
//! backend. Counts come from `signal_rollup` (0006, keyed by grain since 0007) or, without a
//! channel, cause or kind filter, `signal_rollup_days` (0008), kept from the statement that
//! stores the signals (on PostgreSQL through pending rows settled before every read, see
//! `counts`), so a year of reports reads a few hundred thousand rollup rows, not millions of
//! signals.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::QueryBuilder;

use crate::{Pool, Result, Store, StoreError};

/// The rollup's "any" value: a theme row of the rollup has `subject = '*'`, a subject row
/// `theme = '*'`, the volume row both.
pub const ANY: &str = "*";

const DAY_MS: i64 = 86_400_000;

/// The rollup's grain of a row keyed by a theme and/or a subject: 0 volume, 1 theme,
/// 2 subject, 3 theme × subject. The key starts with it, so a report reads one grain.
pub fn grain(theme: bool, subject: bool) -> i16 {
    i16::from(theme) + 2 * i16::from(subject)
}

/// Days since 1970-01-01 of a time (UTC), as the rollup keys them.
pub fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis().div_euclid(DAY_MS)
}

/// The time a rollup day starts.
pub fn day_start(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(day.saturating_mul(DAY_MS)).unwrap_or(DateTime::UNIX_EPOCH)
}

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dimension {
    Theme,
    Subject,
    ThemeSubject,
}

/// Which signals a report covers: days `[from_day, to_day)` and optional equalities. A theme
/// or subject filter narrows the other dimension (subjects of one theme, themes of one subject).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub from_day: i64,
    pub to_day: i64,
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub channel: Option<String>,
    pub cause: Option<String>,
    pub kind: Option<String>,
}

/// One group of a rollup report: its key, how many signals, their impact summed (signals
/// stored before impact was scored add 0), and the first and last day it occurred.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyCount {
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub signals: u64,
    pub impact_sum: f64,
    pub first_day: i64,
    pub last_day: i64,
}

/// How many signals of a period one classifier version classified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionCount {
    pub classifier: String,
    pub signals: u64,
}

/// One customer (pseudonym) who came back within a window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthorCount {
    pub author: String,
    pub signals: u64,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
}

/// An improvement action as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Action {
    pub id: i64,
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub description: String,
    pub owner: String,
    pub start_date: NaiveDate,
    /// `planned`, `running` or `done`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new improvement action.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub description: String,
    pub owner: String,
    pub start_date: NaiveDate,
    pub status: String,
}

/// Changes to an action; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionUpdate {
    pub description: Option<String>,
    pub owner: Option<String>,
    pub start_date: Option<NaiveDate>,
    pub status: Option<String>,
}

/// The statuses an action can have.
pub const ACTION_STATUSES: [&str; 3] = ["planned", "running", "done"];

/// Refuses text no database stores as text (PostgreSQL has no NUL in `text`).
fn check_text(field: &str, value: Option<&str>) -> Result<()> {
    if value.is_some_and(|v| v.contains('\0')) {
        return Err(StoreError::Invalid(format!(
            "the action's {field} contains a NUL character"
        )));
    }
    Ok(())
}

fn check_action(status: Option<&str>, theme: Option<&str>, subject: Option<&str>) -> Result<()> {
    if let Some(s) = status {
        if !ACTION_STATUSES.contains(&s) {
            return Err(StoreError::Invalid(format!(
                "action status {s:?} is not one of planned, running, done"
            )));
        }
    }
    if theme.is_none() && subject.is_none() {
        return Err(StoreError::Invalid(
            "an action needs a theme, a subject or both".into(),
        ));
    }
    Ok(())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

type AuthorRow = (String, i64, DateTime<Utc>, DateTime<Utc>);
type AuthorCountRow = (
    Option<String>,
    Option<i64>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    i64,
);

type ActionRow = (
    i64,
    Option<String>,
    Option<String>,
    String,
    String,
    NaiveDate,
    String,
    DateTime<Utc>,
    DateTime<Utc>,
);

fn action(row: ActionRow) -> Action {
    let (id, theme, subject, description, owner, start_date, status, created_at, updated_at) = row;
    Action {
        id,
        theme,
        subject,
        description,
        owner,
        start_date,
        status,
        created_at,
        updated_at,
    }
}

const ACTION_COLUMNS: &str =
    "id, theme, subject, description, owner, start_date, status, created_at, updated_at";

/// The rollup a filter reads: without a channel, cause or kind, the one summed over them
/// (`signal_rollup_days`, 0008), a few thousand rows a year per grain instead of hundreds of
/// thousands.
fn rollup_table(f: &Filter) -> &'static str {
    if f.channel.is_none() && f.cause.is_none() && f.kind.is_none() {
        "signal_rollup_days"
    } else {
        "signal_rollup"
    }
}

/// Appends the rollup conditions of `dim` and `f` to a `where` clause begun by the caller.
fn push_rollup_filter<'a, DB: sqlx::Database>(
    q: &mut QueryBuilder<'a, DB>,
    dim: Option<Dimension>,
    f: &'a Filter,
) where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let by_theme =
        f.theme.is_some() || matches!(dim, Some(Dimension::Theme | Dimension::ThemeSubject));
    let by_subject =
        f.subject.is_some() || matches!(dim, Some(Dimension::Subject | Dimension::ThemeSubject));
    // The grain is written into the statement, not bound: each grain is a statement (and a
    // cached plan) of its own. Bound, a plan made for the theme grain's few rows (walk the key)
    // was reused for the theme × subject grain's millions, four times slower than a scan.
    q.push(format_args!(" grain = {}", grain(by_theme, by_subject)))
        .push(" and day >= ")
        .push_bind(f.from_day)
        .push(" and day < ")
        .push_bind(f.to_day);
    if let Some(t) = &f.theme {
        q.push(" and theme = ").push_bind(t.as_str());
    }
    if let Some(u) = &f.subject {
        q.push(" and subject = ").push_bind(u.as_str());
    }
    for (column, value) in [
        ("channel", &f.channel),
        ("cause", &f.cause),
        ("kind", &f.kind),
    ] {
        if let Some(v) = value {
            q.push(format_args!(" and {column} = "))
                .push_bind(v.as_str());
        }
    }
}

/// ` where` signals of known authors in `[from, to)`, of `channel` when given.
fn push_author_filter<'a, DB: sqlx::Database>(
    q: &mut QueryBuilder<'a, DB>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    channel: Option<&'a str>,
) where
    DateTime<Utc>: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    q.push(" where author is not null and occurred_at >= ")
        .push_bind(from)
        .push(" and occurred_at < ")
        .push_bind(to);
    if let Some(c) = channel {
        q.push(" and channel = ").push_bind(c);
    }
}

impl Store {
    /// Signals per group of `dim` over the filter's days: one statement over the rollup.
    /// Unordered (the analysis sorts).
    pub async fn rollup_counts(&self, dim: Dimension, f: &Filter) -> Result<Vec<KeyCount>> {
        self.settle_counts().await?;
        let rows: Vec<(String, String, i64, f64, i64, i64)> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "select theme, subject, cast(sum(signals) as bigint), \
                 cast(sum(impact_sum) as double precision), cast(min(day) as bigint), \
                 cast(max(day) as bigint) from ",
            );
            q.push(rollup_table(f)).push(" where");
            push_rollup_filter(&mut q, Some(dim), f);
            q.push(" group by theme, subject");
            q.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(theme, subject, n, impact, first, last)| KeyCount {
                theme: (theme != ANY).then_some(theme),
                subject: (subject != ANY).then_some(subject),
                signals: count(n),
                impact_sum: impact,
                first_day: first,
                last_day: last,
            })
            .collect())
    }

    /// All signals over the filter's days (the exposure when rates are normalised by volume),
    /// or those of its theme and/or subject when it has one.
    pub async fn rollup_total(&self, f: &Filter) -> Result<u64> {
        self.settle_counts().await?;
        let n: Option<i64> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new("select cast(sum(signals) as bigint) from ");
            q.push(rollup_table(f)).push(" where");
            push_rollup_filter(&mut q, None, f);
            q.build_query_scalar().fetch_one(pool).await?
        });
        Ok(n.map(count).unwrap_or(0))
    }

    /// The classifier versions that classified the signals of days `[from_day, to_day)`, with
    /// how many each, most first (from `classifier_days`, kept on write and by reclassify).
    pub async fn classifier_versions(
        &self,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<VersionCount>> {
        self.settle_counts().await?;
        let rows: Vec<(String, i64)> = on_pool!(self, pool => {
            sqlx::query_as(
                "select classifier, cast(sum(signals) as bigint) from classifier_days \
                 where day >= $1 and day < $2 group by classifier having sum(signals) > 0 \
                 order by 2 desc, 1",
            )
            .bind(from_day)
            .bind(to_day)
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|(classifier, n)| VersionCount {
                classifier,
                signals: count(n),
            })
            .collect())
    }

    /// Authors (pseudonyms) with at least `min_signals` signals in `[from, to)`, most first,
    /// at most `limit`; and how many authors had fewer (the "once" customers).
    pub async fn author_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        channel: Option<&str>,
        min_signals: u64,
        limit: usize,
    ) -> Result<(Vec<AuthorCount>, u64)> {
        let min = i64::try_from(min_signals.max(1)).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // One pass over the window (an index-only scan of `signals_time` on PostgreSQL): the
        // groups are counted once, then split into those listed and the number of the rest,
        // which comes on every row (and on a row of its own when none is listed).
        let rows: Vec<AuthorCountRow> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "with groups as (select author, count(*) as n, min(occurred_at) as first_at, \
                 max(occurred_at) as last_at from signals",
            );
            push_author_filter(&mut q, from, to, channel);
            q.push(" group by author), listed as (select * from groups where n >= ")
                .push_bind(min)
                .push(" order by n desc, last_at desc, author limit ")
                .push_bind(limit)
                .push(
                    ") select l.author, l.n, l.first_at, l.last_at, f.fewer from (select \
                     count(*) as fewer from groups where n < ",
                )
                .push_bind(min)
                .push(
                    ") as f left join listed l on true \
                     order by l.n desc, l.last_at desc, l.author",
                );
            q.build_query_as().fetch_all(pool).await?
        });
        let fewer = rows.first().map_or(0, |r| r.4);
        let rows: Vec<AuthorRow> = rows
            .into_iter()
            .filter_map(|(a, n, first, last, _)| Some((a?, n?, first?, last?)))
            .collect();
        Ok((
            rows.into_iter()
                .map(|(author, n, first, last)| AuthorCount {
                    author,
                    signals: count(n),
                    first,
                    last,
                })
                .collect(),
            count(fewer),
        ))
    }

    /// The newest signal ids of a group in `[from, to)`: of a theme, a subject, both, or an
    /// author (at most `limit`).
    pub async fn sample_ids(
        &self,
        theme: Option<&str>,
        subject: Option<&str>,
        author: Option<&str>,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let ids: Vec<String> = on_pool!(self, pool => {
            match (theme, subject, author) {
                (_, _, Some(a)) => sqlx::query_scalar(
                    "select id from signals where author = $1 and occurred_at >= $2 \
                     and occurred_at < $3 order by occurred_at desc, id limit $4",
                )
                .bind(a)
                .bind(from)
                .bind(to)
                .bind(limit)
                .fetch_all(pool)
                .await?,
                // The subject's rows drive (subjects are the rarer key); each is checked
                // against the theme's index on (theme, time).
                (Some(t), Some(s), None) => sqlx::query_scalar(
                    "select u.signal_id from signal_subjects u where u.subject = $2 \
                     and u.occurred_ms >= $3 and u.occurred_ms < $4 and exists (select 1 \
                     from signal_themes t where t.theme = $1 and t.occurred_ms = u.occurred_ms \
                     and t.signal_id = u.signal_id) \
                     order by u.occurred_ms desc, u.signal_id limit $5",
                )
                .bind(t)
                .bind(s)
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?,
                (Some(t), None, None) => sqlx::query_scalar(
                    "select signal_id from signal_themes where theme = $1 and occurred_ms >= $2 \
                     and occurred_ms < $3 order by occurred_ms desc, signal_id limit $4",
                )
                .bind(t)
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?,
                (None, Some(s), None) => sqlx::query_scalar(
                    "select signal_id from signal_subjects where subject = $1 \
                     and occurred_ms >= $2 and occurred_ms < $3 \
                     order by occurred_ms desc, signal_id limit $4",
                )
                .bind(s)
                .bind(from_ms)
                .bind(to_ms)
                .bind(limit)
                .fetch_all(pool)
                .await?,
                (None, None, None) => Vec::new(),
            }
        });
        Ok(ids)
    }

    /// Registers an improvement action.
    pub async fn add_action(&self, a: &NewAction, now: DateTime<Utc>) -> Result<Action> {
        check_action(Some(&a.status), a.theme.as_deref(), a.subject.as_deref())?;
        for (field, value) in [
            ("theme", a.theme.as_deref()),
            ("subject", a.subject.as_deref()),
            ("description", Some(a.description.as_str())),
            ("owner", Some(a.owner.as_str())),
        ] {
            check_text(field, value)?;
        }
        let sql = format!(
            "insert into improvement_actions (theme, subject, description, owner, start_date, \
             status, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $7) \
             returning {ACTION_COLUMNS}"
        );
        let row: ActionRow = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(&a.theme)
                .bind(&a.subject)
                .bind(&a.description)
                .bind(&a.owner)
                .bind(a.start_date)
                .bind(&a.status)
                .bind(now)
                .fetch_one(pool)
                .await?
        });
        Ok(action(row))
    }

    /// Every improvement action, oldest start first.
    pub async fn actions(&self) -> Result<Vec<Action>> {
        let sql =
            format!("select {ACTION_COLUMNS} from improvement_actions order by start_date, id");
        let rows: Vec<ActionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(action).collect())
    }

    /// One improvement action.
    pub async fn action(&self, id: i64) -> Result<Option<Action>> {
        let sql = format!("select {ACTION_COLUMNS} from improvement_actions where id = $1");
        let row: Option<ActionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(action))
    }

    /// Changes an action; `None` when there is no such action.
    pub async fn update_action(
        &self,
        id: i64,
        u: &ActionUpdate,
        now: DateTime<Utc>,
    ) -> Result<Option<Action>> {
        check_text("description", u.description.as_deref())?;
        check_text("owner", u.owner.as_deref())?;
        if let Some(s) = &u.status {
            if !ACTION_STATUSES.contains(&s.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "action status {s:?} is not one of planned, running, done"
                )));
            }
        }
        let sql = format!(
            "update improvement_actions set description = coalesce($2, description), \
             owner = coalesce($3, owner), start_date = coalesce($4, start_date), \
             status = coalesce($5, status), updated_at = $6 where id = $1 \
             returning {ACTION_COLUMNS}"
        );
        let row: Option<ActionRow> = on_pool!(self, pool => {
            sqlx::query_as(&sql)
                .bind(id)
                .bind(&u.description)
                .bind(&u.owner)
                .bind(u.start_date)
                .bind(&u.status)
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.map(action))
    }
}

/// One signal of a listing: what it said (redacted) and how it was classified.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedSignal {
    pub id: String,
    pub channel: String,
    pub occurred_at: DateTime<Utc>,
    pub author: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    /// The stored classification's themes, with their evidence.
    pub themes: serde_json::Value,
    /// Its subjects, with their evidence (ids only for signals stored before 0007).
    pub subjects: serde_json::Value,
    pub cause: String,
    pub kind: String,
    pub sentiment: f32,
    pub impact: Option<f32>,
    pub classifier: String,
}

type ListedRow = (
    String,
    String,
    DateTime<Utc>,
    Option<String>,
    Option<String>,
    String,
    sqlx::types::Json<serde_json::Value>,
    sqlx::types::Json<serde_json::Value>,
    String,
    String,
    f32,
    Option<f32>,
    String,
);

impl Store {
    /// Signals newest first: those of the filter's days (and theme, subject, channel, cause,
    /// kind), after the keyset `after` (`occurred_at`, `id` of the last one of the previous
    /// page), at most `limit`. A theme or subject filter is served by its (key, time) index.
    pub async fn signals_page(
        &self,
        f: &Filter,
        after: Option<(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<ListedSignal>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let (from, to) = (day_start(f.from_day), day_start(f.to_day));
        let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
        let rows: Vec<ListedRow> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "select s.id, s.channel, s.occurred_at, s.author, s.subject, s.text, s.themes, \
                 s.subjects, s.cause, s.kind, s.sentiment, s.impact, s.classifier from ",
            );
            // With a theme or subject, its (key, time) index drives, newest first, and the
            // signals are looked up by id; otherwise `signals_time` does. The keyset follows
            // whichever drives (milliseconds there, as the index keys them).
            let order = match (&f.theme, &f.subject) {
                (theme, Some(subject)) => {
                    q.push("signal_subjects d join signals s on s.id = d.signal_id where d.subject = ")
                        .push_bind(subject.as_str())
                        .push(" and d.occurred_ms >= ")
                        .push_bind(from_ms)
                        .push(" and d.occurred_ms < ")
                        .push_bind(to_ms);
                    if let Some(t) = theme {
                        q.push(
                            " and exists (select 1 from signal_themes t where t.theme = ",
                        )
                        .push_bind(t.as_str())
                        .push(" and t.occurred_ms = d.occurred_ms and t.signal_id = d.signal_id)");
                    }
                    Some(("d.occurred_ms", "d.signal_id"))
                }
                (Some(theme), None) => {
                    q.push("signal_themes d join signals s on s.id = d.signal_id where d.theme = ")
                        .push_bind(theme.as_str())
                        .push(" and d.occurred_ms >= ")
                        .push_bind(from_ms)
                        .push(" and d.occurred_ms < ")
                        .push_bind(to_ms);
                    Some(("d.occurred_ms", "d.signal_id"))
                }
                (None, None) => {
                    q.push("signals s where s.occurred_at >= ")
                        .push_bind(from)
                        .push(" and s.occurred_at < ")
                        .push_bind(to);
                    None
                }
            };
            for (column, value) in [
                ("s.channel", &f.channel),
                ("s.cause", &f.cause),
                ("s.kind", &f.kind),
            ] {
                if let Some(v) = value {
                    q.push(format_args!(" and {column} = ")).push_bind(v.as_str());
                }
            }
            match (order, &after) {
                (Some((time, id_column)), Some((t, id))) => {
                    let ms = t.timestamp_millis();
                    q.push(format_args!(" and ({time} < "))
                        .push_bind(ms)
                        .push(format_args!(" or ({time} = "))
                        .push_bind(ms)
                        .push(format_args!(" and {id_column} < "))
                        .push_bind(id.as_str())
                        .push("))");
                }
                (None, Some((t, id))) => {
                    q.push(" and (s.occurred_at < ")
                        .push_bind(*t)
                        .push(" or (s.occurred_at = ")
                        .push_bind(*t)
                        .push(" and s.id < ")
                        .push_bind(id.as_str())
                        .push("))");
                }
                (_, None) => {}
            }
            let (time, id_column) = order.unwrap_or(("s.occurred_at", "s.id"));
            q.push(format_args!(" order by {time} desc, {id_column} desc limit "))
                .push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    channel,
                    occurred_at,
                    author,
                    subject,
                    text,
                    themes,
                    subjects,
                    cause,
                    kind,
                    sentiment,
                    impact,
                    classifier,
                )| ListedSignal {
                    id,
                    channel,
                    occurred_at,
                    author,
                    subject,
                    text,
                    themes: themes.0,
                    subjects: subjects.0,
                    cause,
                    kind,
                    sentiment,
                    impact,
                    classifier,
                },
            )
            .collect())
    }
}

impl Store {
    /// When each of `authors` sent a signal in `[since, until)`, on any channel (for the impact
    /// score's repeat contacts). Served by `signals_author_time (author, occurred_at)`, one walk
    /// per author.
    pub async fn author_contacts(
        &self,
        authors: &[String],
        since: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        match &self.pool {
            Pool::Postgres(pool) => Ok(sqlx::query_as(crate::sql::AUTHOR_CONTACTS_POSTGRES)
                .bind(authors)
                .bind(since)
                .bind(until)
                .fetch_all(pool)
                .await?),
            Pool::Sqlite(pool) => {
                let mut out = Vec::new();
                for chunk in authors.chunks(500) {
                    let mut q = QueryBuilder::new(
                        "select author, occurred_at from signals where occurred_at >= ",
                    );
                    q.push_bind(since)
                        .push(" and occurred_at < ")
                        .push_bind(until)
                        .push(" and author in (");
                    let mut list = q.separated(", ");
                    for a in chunk {
                        list.push_bind(a.as_str());
                    }
                    q.push(")");
                    out.extend(q.build_query_as().fetch_all(pool).await?);
                }
                Ok(out)
            }
        }
    }
}

/// One day of one group: what a timeline draws.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayCount {
    pub day: i64,
    pub theme: Option<String>,
    pub subject: Option<String>,
    pub signals: u64,
}

impl Store {
    /// Signals per day and group of `dim` over the filter's days (one statement over the
    /// rollup), ordered by group, then day; days without signals are absent.
    pub async fn rollup_days(&self, dim: Dimension, f: &Filter) -> Result<Vec<DayCount>> {
        self.settle_counts().await?;
        let rows: Vec<(String, String, i64, i64)> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(
                "select theme, subject, cast(day as bigint), cast(sum(signals) as bigint) from ",
            );
            q.push(rollup_table(f)).push(" where");
            push_rollup_filter(&mut q, Some(dim), f);
            q.push(" group by theme, subject, day order by theme, subject, day");
            q.build_query_as().fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(|(theme, subject, day, n)| DayCount {
                day,
                theme: (theme != ANY).then_some(theme),
                subject: (subject != ANY).then_some(subject),
                signals: count(n),
            })
            .collect())
    }
}
