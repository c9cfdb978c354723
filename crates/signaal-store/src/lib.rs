//! The signal register. The only crate that depends on sqlx.
//!
//! PostgreSQL in production, SQLite as the embedded default; one set of SQL statements serves
//! both (`$N` placeholders, `on conflict … do nothing`), and migrations for each are embedded in
//! the binary. Every write is idempotent on signal id: replaying a signal never adds a row.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use signaal_core::{Alert, ClassifiedEnvelope};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database url `{0}` (expected postgres://… or sqlite:…)")]
    Url(String),
    #[error("could not connect to {backend}: {source}")]
    Connect {
        backend: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("could not encode `{field}` as JSON: {source}")]
    Encode {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Debug)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs the same statement text against whichever backend is configured.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.pool {
            Pool::Postgres($pool) => $body,
            Pool::Sqlite($pool) => $body,
        }
    };
}

/// Rows per multi-row insert: 19 parameters a row stays far below both backends' limits.
const ROWS_PER_STATEMENT: usize = 500;

const UPSERT_CURSOR: &str = "insert into source_cursors (source, key, value, updated_at) \
     values ($1, $2, $3, $4) on conflict (source, key) do update set value = excluded.value, \
     updated_at = excluded.updated_at";

/// A handle to the register; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
}

/// What `signaal demo` and operators see at a glance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub total: i64,
    pub by_channel: Vec<(String, i64)>,
    /// Themes with their signal counts, most frequent first (a Pareto list).
    pub by_theme: Vec<(String, i64)>,
    pub by_cause: Vec<(String, i64)>,
    pub by_kind: Vec<(String, i64)>,
    pub alerts: Vec<Alert>,
}

impl Store {
    /// Connects and runs the embedded migrations. `sqlite:` URLs create the file if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect(url)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "postgresql",
                    source,
                })?;
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
            Pool::Postgres(pool)
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|source| StoreError::Connect {
                    backend: "sqlite",
                    source,
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(30))
                .foreign_keys(true);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(opts)
                .await
                .map_err(|source| StoreError::Connect {
                    backend: "sqlite",
                    source,
                })?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            Pool::Sqlite(pool)
        } else {
            return Err(StoreError::Url(redact_url(url)));
        };
        Ok(Store { pool })
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Postgres(_) => "postgresql",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Writes a batch of classified signals in one transaction, with multi-row inserts. Signals
    /// already present are left as they are. Returns how many were new.
    pub async fn save_classified(&self, batch: &[ClassifiedEnvelope]) -> Result<u64> {
        let mut rows = Vec::with_capacity(batch.len());
        for env in batch {
            let themes = serde_json::to_value(&env.classification.themes).map_err(|source| {
                StoreError::Encode {
                    field: "themes",
                    source,
                }
            })?;
            rows.push((env, themes));
        }
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut inserted = 0u64;
            for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = sqlx::QueryBuilder::new(
                    "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
                     classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
                     sentiment, escalation, classifier) ",
                );
                q.push_values(chunk, |mut b, (env, themes)| {
                    let s = &env.signal;
                    let c = &env.classification;
                    b.push_bind(&s.id)
                        .push_bind(s.channel.as_str())
                        .push_bind(&s.source)
                        .push_bind(&s.source_id)
                        .push_bind(s.occurred_at)
                        .push_bind(s.received_at)
                        .push_bind(env.classified_at)
                        .push_bind(&s.author)
                        .push_bind(&s.subject)
                        .push_bind(&s.thread_id)
                        .push_bind(&s.text)
                        .push_bind(Json(&s.meta))
                        .push_bind(Json(themes))
                        .push_bind(c.cause.as_str())
                        .push_bind(c.kind.as_str())
                        .push_bind(&c.lang)
                        .push_bind(c.sentiment)
                        .push_bind(Json(&c.escalation))
                        .push_bind(&env.classifier);
                });
                q.push(" on conflict (id) do nothing returning id");
                let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
                inserted += new.len() as u64;
                let new: std::collections::HashSet<String> = new.into_iter().map(|(id,)| id).collect();
                let tags: Vec<(&str, &str, f32, i64)> = chunk
                    .iter()
                    .filter(|(env, _)| new.contains(&env.signal.id))
                    .flat_map(|(env, _)| {
                        let s = &env.signal;
                        env.classification
                            .themes
                            .iter()
                            .map(move |t| (s.id.as_str(), t.id.as_str(), t.score, s.occurred_at.timestamp_millis()))
                    })
                    .collect();
                for tag_chunk in tags.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::new(
                        "insert into signal_themes (signal_id, theme, score, occurred_ms) ",
                    );
                    q.push_values(tag_chunk, |mut b, (id, theme, score, ms)| {
                        b.push_bind(*id).push_bind(*theme).push_bind(*score).push_bind(*ms);
                    });
                    q.push(" on conflict (signal_id, theme) do nothing");
                    q.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
            Ok(inserted)
        })
    }

    pub async fn count_signals(&self) -> Result<i64> {
        on_pool!(self, pool => {
            let (n,): (i64,) = sqlx::query_as("select count(*) from signals").fetch_one(pool).await?;
            Ok(n)
        })
    }

    /// Ids of every stored signal, for exactly-once checks.
    pub async fn signal_ids(&self) -> Result<Vec<String>> {
        on_pool!(self, pool => {
            let rows: Vec<(String,)> = sqlx::query_as("select id from signals order by id")
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    /// When each of `authors` (pseudonyms) had `channel` signals since `since`: `(author, time)`
    /// pairs, oldest first. For the repeat-caller rule.
    pub async fn author_times(
        &self,
        channel: &str,
        authors: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut out = Vec::new();
        // A few hundred authors per statement stays far below both backends' parameter limits.
        for chunk in authors.chunks(ROWS_PER_STATEMENT) {
            on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new(
                    "select author, occurred_at from signals where channel = ",
                );
                q.push_bind(channel).push(" and occurred_at >= ").push_bind(since);
                q.push(" and author in (");
                let mut list = q.separated(", ");
                for a in chunk {
                    list.push_bind(a);
                }
                list.push_unseparated(") order by occurred_at");
                let rows: Vec<(String, DateTime<Utc>)> = q.build_query_as().fetch_all(pool).await?;
                out.extend(rows);
            })
        }
        Ok(out)
    }

    /// Ids of signals tagged `theme` that occurred in `[from, to)`.
    pub async fn theme_signal_ids(
        &self,
        theme: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        on_pool!(self, pool => {
            let rows: Vec<(String,)> = sqlx::query_as(
                "select signal_id from signal_themes where theme = $1 and occurred_ms >= $2 \
                 and occurred_ms < $3 order by signal_id",
            )
            .bind(theme)
            .bind(from.timestamp_millis())
            .bind(to.timestamp_millis())
            .fetch_all(pool)
            .await?;
            Ok(rows.into_iter().map(|(id,)| id).collect())
        })
    }

    pub async fn get_cursor(&self, source: &str, key: &str) -> Result<Option<String>> {
        on_pool!(self, pool => {
            let row: Option<(String,)> =
                sqlx::query_as("select value from source_cursors where source = $1 and key = $2")
                    .bind(source)
                    .bind(key)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|(v,)| v))
        })
    }

    /// All cursors of one source, by key.
    pub async fn cursors(&self, source: &str) -> Result<BTreeMap<String, String>> {
        on_pool!(self, pool => {
            let rows: Vec<(String, String)> =
                sqlx::query_as("select key, value from source_cursors where source = $1")
                    .bind(source)
                    .fetch_all(pool)
                    .await?;
            Ok(rows.into_iter().collect())
        })
    }

    pub async fn set_cursor(&self, source: &str, key: &str, value: &str) -> Result<()> {
        on_pool!(self, pool => {
            sqlx::query(UPSERT_CURSOR)
            .bind(source)
            .bind(key)
            .bind(value)
            .bind(Utc::now())
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// Writes several cursor entries of one source in one transaction.
    pub async fn set_cursors(&self, source: &str, entries: &[(String, String)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            for (key, value) in entries {
                sqlx::query(UPSERT_CURSOR)
                    .bind(source)
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Stores an alert; returns false when an alert with that id was already stored.
    pub async fn save_alert(&self, alert: &Alert) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query(
                "insert into alerts (id, theme, window_start, window_end, count, threshold, \
                 raised_at, sample_signal_ids) values ($1, $2, $3, $4, $5, $6, $7, $8) \
                 on conflict (id) do nothing",
            )
            .bind(&alert.id)
            .bind(&alert.theme)
            .bind(alert.window_start)
            .bind(alert.window_end)
            .bind(i64::try_from(alert.count).unwrap_or(i64::MAX))
            .bind(i64::try_from(alert.threshold).unwrap_or(i64::MAX))
            .bind(alert.raised_at)
            .bind(Json(&alert.sample_signal_ids))
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    pub async fn alert_exists(&self, id: &str) -> Result<bool> {
        on_pool!(self, pool => {
            let row: Option<(String,)> = sqlx::query_as("select id from alerts where id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    pub async fn alerts(&self) -> Result<Vec<Alert>> {
        type Row = (
            String,
            String,
            DateTime<Utc>,
            DateTime<Utc>,
            i64,
            i64,
            DateTime<Utc>,
            Json<Vec<String>>,
        );
        on_pool!(self, pool => {
            let rows: Vec<Row> = sqlx::query_as(
                "select id, theme, window_start, window_end, count, threshold, raised_at, \
                 sample_signal_ids from alerts order by window_start, theme",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(id, theme, window_start, window_end, count, threshold, raised_at, ids)| Alert {
                    id,
                    theme,
                    window_start,
                    window_end,
                    count: u64::try_from(count).unwrap_or(0),
                    threshold: u64::try_from(threshold).unwrap_or(0),
                    raised_at,
                    sample_signal_ids: ids.0,
                })
                .collect())
        })
    }

    async fn counts(&self, sql: &str) -> Result<Vec<(String, i64)>> {
        on_pool!(self, pool => Ok(sqlx::query_as(sql).fetch_all(pool).await?))
    }

    pub async fn report(&self) -> Result<Report> {
        Ok(Report {
            total: self.count_signals().await?,
            by_channel: self
                .counts("select channel, count(*) as n from signals group by channel order by n desc, channel")
                .await?,
            by_theme: self
                .counts("select theme, count(*) as n from signal_themes group by theme order by n desc, theme")
                .await?,
            by_cause: self
                .counts("select cause, count(*) as n from signals group by cause order by n desc, cause")
                .await?,
            by_kind: self
                .counts("select kind, count(*) as n from signals group by kind order by n desc, kind")
                .await?,
            alerts: self.alerts().await?,
        })
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// Database URLs may carry passwords; never echo them back in errors or logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***{}", &url[..scheme], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_in_errors() {
        assert_eq!(
            redact_url("postgres://u:secret@db:5432/x"),
            "postgres://***@db:5432/x"
        );
        assert_eq!(redact_url("sqlite:signaal.db"), "sqlite:signaal.db");
    }
}
