//! The signal register. The only crate that depends on sqlx.
//!
//! PostgreSQL in production, SQLite as the embedded default; one set of SQL statements serves
//! both (`$N` placeholders, `on conflict … do nothing`), and migrations for each are embedded in
//! the binary. Two hot paths have a PostgreSQL statement of their own ([`sql`]): a batch of
//! signals is one statement over column arrays, and the repeat-caller lookup takes its authors as
//! one array. Every write is idempotent on signal id: replaying a signal never adds a row.

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use signaal_core::{Alert, AlertEvent, ClassifiedEnvelope};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::types::Json;
use sqlx::Connection as _;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL, redacted ([`redact_url`]), and why it cannot be used.
    #[error("invalid database url `{url}`: {reason}")]
    Url { url: String, reason: String },
    /// `target` is where the connection went (`host:port` or a socket path), so an operator
    /// sees which server refused, timed out or rejected the login.
    #[error("could not connect to {backend} at {target}: {source}")]
    Connect {
        backend: &'static str,
        target: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("could not connect to {backend} at {target}: no answer in {} s", .after.as_secs())]
    ConnectTimeout {
        backend: &'static str,
        target: String,
        after: std::time::Duration,
    },
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    /// No connection could be had: whatever the server answered (`database is not currently
    /// accepting connections`, too many clients, a password refused), the records are not at
    /// fault, so this is always worth a retry.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A call the store cannot serve as asked (a bucket of zero seconds).
    #[error("invalid request to the store: {0}")]
    Invalid(String),
    #[error("could not encode `{field}` as JSON: {source}")]
    Encode {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    /// Whether trying the same write again can succeed. False only when the data itself is
    /// refused — PostgreSQL SQLSTATE classes 22 (data exception), 23 (integrity) and 54
    /// ("index row requires … bytes"), SQLite `TOOBIG`/`CONSTRAINT`/`MISMATCH`, values that
    /// cannot be encoded — so the classifier worker bisects such a batch to find the record, and
    /// the error's message carries the database's reason. Everything else (no connection, I/O,
    /// locks, timeouts, a read-only server, a revoked privilege) is the database's state: a whole
    /// batch must never be dead-lettered for it.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Url { .. } | StoreError::Encode { .. } | StoreError::Invalid(_) => false,
            StoreError::Unavailable(_) | StoreError::ConnectTimeout { .. } => true,
            StoreError::Connect { source, .. } | StoreError::Sql(source) => transient(source),
            StoreError::Migrate(
                sqlx::migrate::MigrateError::Execute(source)
                | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
            ) => transient(source),
            StoreError::Migrate(_) => false,
        }
    }
}

fn transient(error: &sqlx::Error) -> bool {
    use sqlx::error::DatabaseError as _;
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            if let Some(pg) = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_transient(pg.code())
            } else if let Some(lite) = db.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                lite.code()
                    .and_then(|code| code.parse().ok())
                    .is_some_and(sqlite_transient)
            } else {
                false
            }
        }
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs a retry can get past.
fn postgres_transient(sqlstate: &str) -> bool {
    // Only errors about the data itself are the records' fault: data exceptions (22: a value out
    // of range, an invalid byte sequence), integrity violations (23) and program limits (54: an
    // index row too large). Everything else — connection (08), resources (53), locks and
    // timeouts (40, 55, 57), a read-only server after a failover (25006), a revoked privilege —
    // is the database's state: retried, so that a whole batch is never dead-lettered for it.
    !(sqlstate.starts_with("22") || sqlstate.starts_with("23") || sqlstate.starts_with("54"))
}

/// SQLite result codes (the primary code is the low byte) that blame the records:
/// `SQLITE_TOOBIG` (18), `SQLITE_CONSTRAINT` (19) and `SQLITE_MISMATCH` (20). Busy, locked, out of
/// memory, I/O errors, a full disk and the rest are retried.
fn sqlite_transient(code: i32) -> bool {
    !matches!(code & 0xff, 18..=20)
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How long the first connection to PostgreSQL may take (TCP, TLS, login) before start-up gives
/// up and says so; an address that drops packets would otherwise take the system's TCP timeout.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Query keys of a `postgres://` URL that sqlx reads (`options[…]` too). sqlx logs any other key
/// *with its value* ("ignoring unrecognized connect parameter"): a misspelt `password` would
/// land in the log. An unknown key is refused by its name instead.
const POSTGRES_KEYS: [&str; 18] = [
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

/// A database URL read, not yet connected.
enum Backend {
    Postgres(PgConnectOptions),
    Sqlite(SqliteConnectOptions),
}

impl Backend {
    fn of(url: &str) -> Result<Backend> {
        let invalid = |reason: String| StoreError::Url {
            url: redact_url(url),
            reason,
        };
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            if let Some(key) = query_keys(url).find(|k| {
                !(POSTGRES_KEYS.contains(&k.as_str())
                    || (k.starts_with("options[") && k.ends_with(']')))
            }) {
                return Err(invalid(format!(
                    "unknown parameter `{}` (known: {})",
                    signaal_core::brief(&key),
                    POSTGRES_KEYS.join(", ")
                )));
            }
            PgConnectOptions::from_str(url)
                .map(Backend::Postgres)
                .map_err(|e| invalid(e.to_string()))
        } else if url.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(url)
                .map(Backend::Sqlite)
                .map_err(|e| invalid(e.to_string()))
        } else {
            Err(invalid(
                "unsupported scheme (expected postgres://… or sqlite:…)".into(),
            ))
        }
    }
}

/// Checks a database URL without connecting: the scheme, the parameters and their values
/// (`sslmode=verify-full`, a port that is a number), so a mistake is reported before any
/// service is contacted.
pub fn check_url(url: &str) -> Result<()> {
    Backend::of(url).map(|_| ())
}

/// `host:port` (IPv6 in brackets) or the socket path a connection goes to.
fn postgres_target(opts: &PgConnectOptions) -> String {
    if let Some(socket) = opts.get_socket() {
        return socket.display().to_string();
    }
    let host = opts.get_host();
    if host.contains(':') {
        format!("[{host}]:{}", opts.get_port())
    } else {
        format!("{host}:{}", opts.get_port())
    }
}

/// The keys of a URL's query, percent-decoded (`+` is a space), as sqlx reads them.
fn query_keys(url: &str) -> impl Iterator<Item = String> + '_ {
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or_default())
        .unwrap_or_default();
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| percent_decode(pair.split('=').next().unwrap_or_default()))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

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

mod alerts;
mod counts;
pub use alerts::{OutboxItem, ThemeBucketCount, ThemeSignal};
use counts::{AddCounts, Deltas};
pub mod analysis;
pub mod labels;
mod reclassify;
mod stats;

/// Rows per multi-row insert: 19 parameters a row stays far below both backends' limits.
const ROWS_PER_STATEMENT: usize = 500;

const UPSERT_CURSOR: &str = "insert into source_cursors (source, key, value, updated_at) \
     values ($1, $2, $3, $4) on conflict (source, key) do update set value = excluded.value, \
     updated_at = excluded.updated_at";

/// A signal of an author: `(author pseudonym, occurred_at, thread_id)`.
pub type AuthorCall = (String, DateTime<Utc>, Option<String>);

/// A handle to the register; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: Pool,
    /// When this handle (and its clones) last settled the pending counts ([`counts`]).
    settled: Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
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
    /// Every alert's latest state (the old fixed-threshold `alerts` table of 0001 is no longer
    /// written).
    pub alerts: Vec<AlertEvent>,
}

impl Store {
    /// Connects and runs the embedded migrations. `sqlite:` URLs create the file if missing.
    ///
    /// PostgreSQL: one connection is made first, on its own, so that a server that is down, a
    /// refused login or a failed TLS handshake is reported at once with the server's address and
    /// its reason, not as the pool's "timed out" after 30 s of silent retries. TLS follows the
    /// URL's `sslmode` (`disable`, `prefer` — the default —, `require`, `verify-ca`,
    /// `verify-full`) and `sslrootcert` (the CA that signed the server's certificate, besides
    /// the public roots).
    pub async fn connect(url: &str) -> Result<Store> {
        let pool = match Backend::of(url)? {
            Backend::Postgres(opts) => {
                // No JIT compilation: the register's statements run for milliseconds to half a
                // second, and compiling them cost more than it saved (the customers' grouping
                // of 90 days on 5 million signals: 0.60 s with JIT, 0.43 s without). And a plan
                // for each execution's own values: a cached generic plan, made without knowing
                // a day range or an author, walked the time index for one customer's three
                // newest signals (70 ms instead of 1) and scanned where a range would do.
                let opts = opts.options([("jit", "off"), ("plan_cache_mode", "force_custom_plan")]);
                let target = postgres_target(&opts);
                let connect = PgConnection::connect_with(&opts);
                match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                    Ok(Ok(probe)) => {
                        let _ = probe.close().await;
                    }
                    Ok(Err(source)) => {
                        return Err(StoreError::Connect {
                            backend: "postgresql",
                            target,
                            source,
                        })
                    }
                    Err(_) => {
                        return Err(StoreError::ConnectTimeout {
                            backend: "postgresql",
                            target,
                            after: CONNECT_TIMEOUT,
                        })
                    }
                }
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .connect_with(opts)
                    .await
                    .map_err(|source| StoreError::Connect {
                        backend: "postgresql",
                        target,
                        source,
                    })?;
                sqlx::migrate!("migrations/postgres").run(&pool).await?;
                Pool::Postgres(pool)
            }
            Backend::Sqlite(opts) => {
                let target = opts.get_filename().display().to_string();
                let opts = opts
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
                        target,
                        source,
                    })?;
                sqlx::migrate!("migrations/sqlite").run(&pool).await?;
                Pool::Sqlite(pool)
            }
        };
        Ok(Store {
            pool,
            settled: Arc::default(),
        })
    }

    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Postgres(_) => "postgresql",
            Pool::Sqlite(_) => "sqlite",
        }
    }

    /// Writes a batch of classified signals, atomically. Signals already present are left as
    /// they are, and so are their theme rows. Returns how many were new.
    ///
    /// PostgreSQL: one statement per batch (column arrays through `unnest`, see
    /// [`sql::SAVE_CLASSIFIED_POSTGRES`]), so a batch costs one round trip and one plan.
    /// SQLite: multi-row inserts in one transaction.
    pub async fn save_classified(&self, batch: &[ClassifiedEnvelope]) -> Result<u64> {
        if batch.is_empty() {
            return Ok(0);
        }
        match &self.pool {
            Pool::Postgres(pool) => {
                let new = save_classified_postgres(pool, batch).await?;
                self.settle_if_due().await;
                Ok(new)
            }
            Pool::Sqlite(pool) => save_classified_sqlite(pool, batch).await,
        }
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
        let calls = self.author_calls(channel, authors, since).await?;
        Ok(calls.into_iter().map(|(a, t, _)| (a, t)).collect())
    }

    /// As [`Store::author_times`], with each signal's `thread_id`: the legs of one phone call
    /// share it, and a leg is no earlier call of the same caller.
    pub async fn author_calls(
        &self,
        channel: &str,
        authors: &[String],
        since: DateTime<Utc>,
    ) -> Result<Vec<AuthorCall>> {
        if authors.is_empty() {
            return Ok(Vec::new());
        }
        match &self.pool {
            // One array parameter whatever the number of authors: the statement text and its
            // parameter list never change, so PostgreSQL's generic plan is the same index lookup
            // as a custom one (an `in ($3…$502)` list had it scan the channel's time range).
            Pool::Postgres(pool) => Ok(sqlx::query_as(sql::AUTHOR_TIMES_POSTGRES)
                .bind(authors)
                .bind(channel)
                .bind(since)
                .fetch_all(pool)
                .await?),
            Pool::Sqlite(pool) => {
                let mut out = Vec::new();
                // SQLite has no arrays; a few hundred authors per statement stays far below its
                // parameter limit, and it plans every statement afresh.
                for chunk in authors.chunks(ROWS_PER_STATEMENT) {
                    let mut q = sqlx::QueryBuilder::new(
                        "select author, occurred_at, thread_id from signals where channel = ",
                    );
                    q.push_bind(channel)
                        .push(" and occurred_at >= ")
                        .push_bind(since);
                    q.push(" and author in (");
                    let mut list = q.separated(", ");
                    for a in chunk {
                        list.push_bind(a);
                    }
                    list.push_unseparated(")");
                    let rows: Vec<AuthorCall> = q.build_query_as().fetch_all(pool).await?;
                    out.extend(rows);
                }
                // Chunks are each in time order; the caller wants all of them in time order.
                out.sort_by_key(|(_, at, _)| *at);
                Ok(out)
            }
        }
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

    /// Stores a fixed-threshold alert of before issue 13 in the `alerts` table of 0001; returns
    /// false when one with that id was already stored. Nothing in signaal writes these any more
    /// (spike alerts are [`Store::save_alert_events`]); kept so that registers keep and show them.
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
            alerts: self.latest_alert_states().await?,
        })
    }

    /// Settles the pending counts (a failure is logged: they stay pending for the next
    /// reader) and closes the connections.
    pub async fn close(&self) {
        if let Err(e) = self.settle_counts().await {
            tracing::warn!(error = %e, "could not settle the rollup counts; they stay pending");
        }
        on_pool!(self, pool => pool.close().await)
    }
}

pub mod sql {
    //! Statement texts the store runs on PostgreSQL, public so tests (and operators) can
    //! `EXPLAIN` exactly what the store sends.

    /// A batch of classified signals in one statement. `$1`–`$19` are the `signals` columns as
    /// arrays (JSON columns as text, cast here); `$20`–`$23` the theme rows of every signal of the
    /// batch (`signal_id`, `theme`, `score`, `occurred_ms`), `$24`–`$26` its subject rows
    /// (`signal_id`, `subject`, `occurred_ms`), `$27` the signals' impact, `$28`–`$36` the
    /// daily rollup's rows ([`rollup_rows`], summed per key into `signal_rollup_pending`),
    /// `$37` the subjects (JSON as text); the new signals are also counted per day and
    /// classifier version (into `classifier_days_pending`; [`SETTLE_COUNTS_POSTGRES`] moves both
    /// on). Theme, subject and rollup rows are written only
    /// for signals this statement inserted, so a replay adds none. The result is how many
    /// signals were new.
    pub const SAVE_CLASSIFIED_POSTGRES: &str = "\
with new as (
    insert into signals (id, channel, source, source_id, occurred_at, received_at, classified_at,
        author, subject, thread_id, text, meta, themes, cause, kind, lang, sentiment, escalation,
        classifier, impact, subjects)
    select id, channel, source, source_id, occurred_at, received_at, classified_at,
        author, subject, thread_id, text, meta::jsonb, themes::jsonb, cause, kind, lang, sentiment,
        escalation::jsonb, classifier, impact, subjects::jsonb
    from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[],
        $6::timestamptz[], $7::timestamptz[], $8::text[], $9::text[], $10::text[], $11::text[],
        $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::real[],
        $18::text[], $19::text[], $27::real[], $37::text[])
        as s (id, channel, source, source_id, occurred_at, received_at, classified_at, author,
            subject, thread_id, text, meta, themes, cause, kind, lang, sentiment, escalation,
            classifier, impact, subjects)
    on conflict (id) do nothing
    returning id, occurred_at, classifier
), tags as (
    insert into signal_themes (signal_id, theme, score, occurred_ms)
    select t.signal_id, t.theme, t.score, t.occurred_ms
    from unnest($20::text[], $21::text[], $22::real[], $23::bigint[])
        as t (signal_id, theme, score, occurred_ms)
    where t.signal_id in (select id from new)
), subjects as (
    insert into signal_subjects (signal_id, subject, occurred_ms)
    select u.signal_id, u.subject, u.occurred_ms
    from unnest($24::text[], $25::text[], $26::bigint[]) as u (signal_id, subject, occurred_ms)
    where u.signal_id in (select id from new)
), rollup as (
    -- Appended, not added: see `SETTLE_COUNTS_POSTGRES`.
    insert into signal_rollup_pending (grain, day, theme, subject, channel, cause, kind, signals,
        impact_sum)
    select x.grain, x.day, x.theme, x.subject, x.channel, x.cause, x.kind, count(*), sum(x.impact)
    from unnest($28::text[], $29::integer[], $30::text[], $31::text[], $32::text[], $33::text[],
        $34::text[], $35::float8[], $36::smallint[])
        as x (signal_id, day, theme, subject, channel, cause, kind, impact, grain)
    where x.signal_id in (select id from new)
    group by 1, 2, 3, 4, 5, 6, 7
), versions as (
    insert into classifier_days_pending (day, classifier, signals)
    select floor(extract(epoch from occurred_at) / 86400)::integer, classifier, count(*)
    from new
    group by 1, 2
)
select count(*) from new";

    /// Moves the pending rollup counts into `signal_rollup` and, summed over channel, cause and
    /// kind, `signal_rollup_days`, in key order (one lock order for every writer). Counts may be
    /// negative (reclassification); the result is the keys this left at zero or below, rows of
    /// `signal_rollup_days` with `channel` null, for [`DELETE_ZERO_ROLLUP_POSTGRES`]. Rows a
    /// transaction appends while this runs are not visible to it and wait for the next time.
    pub const SETTLE_COUNTS_POSTGRES: &str = "\
with moved as (
    delete from signal_rollup_pending
    returning grain, day, theme, subject, channel, cause, kind, signals, impact_sum
), sums as materialized (
    select grain, day, theme, subject, channel, cause, kind,
        cast(sum(signals) as bigint) as signals, sum(impact_sum) as impact_sum
    from moved
    group by 1, 2, 3, 4, 5, 6, 7
), rollup as (
    insert into signal_rollup as r (grain, day, theme, subject, channel, cause, kind, signals,
        impact_sum)
    select grain, day, theme, subject, channel, cause, kind, signals, impact_sum
    from sums
    where signals <> 0 or abs(impact_sum) > 1e-9
    order by 1, 2, 3, 4, 5, 6, 7
    on conflict (grain, day, theme, subject, channel, cause, kind) do update
        set signals = r.signals + excluded.signals, impact_sum = r.impact_sum + excluded.impact_sum
    returning grain, day, theme, subject, channel, cause, kind, signals
), days as (
    insert into signal_rollup_days as d (grain, day, theme, subject, signals, impact_sum)
    select grain, day, theme, subject, cast(sum(signals) as bigint), sum(impact_sum)
    from sums
    group by 1, 2, 3, 4
    having sum(signals) <> 0 or abs(sum(impact_sum)) > 1e-9
    order by 1, 2, 3, 4
    on conflict (grain, day, theme, subject) do update
        set signals = d.signals + excluded.signals, impact_sum = d.impact_sum + excluded.impact_sum
    returning grain, day, theme, subject, signals
)
select grain, day, theme, subject, channel, cause, kind from rollup where signals <= 0
union all
select grain, day, theme, subject, null, null, null from days where signals <= 0";

    /// Deletes rollup rows by key (`$1`–`$7` arrays), those at zero or below only.
    pub const DELETE_ZERO_ROLLUP_POSTGRES: &str = "\
delete from signal_rollup where signals <= 0 and (grain, day, theme, subject, channel, cause, kind)
    in (select * from unnest($1::smallint[], $2::integer[], $3::text[], $4::text[], $5::text[],
        $6::text[], $7::text[]))";

    /// Deletes `signal_rollup_days` rows by key (`$1`–`$4` arrays), those at zero or below only.
    pub const DELETE_ZERO_ROLLUP_DAYS_POSTGRES: &str = "\
delete from signal_rollup_days where signals <= 0 and (grain, day, theme, subject)
    in (select * from unnest($1::smallint[], $2::integer[], $3::text[], $4::text[]))";

    /// As [`SETTLE_COUNTS_POSTGRES`] for the version counts; keys left at zero are deleted in
    /// the same statement's successor, [`DELETE_ZERO_VERSIONS_POSTGRES`].
    pub const SETTLE_VERSIONS_POSTGRES: &str = "\
with moved as (
    delete from classifier_days_pending returning day, classifier, signals
), v as (
    insert into classifier_days as v (day, classifier, signals)
    select day, classifier, cast(sum(signals) as bigint)
    from moved
    group by 1, 2
    having sum(signals) <> 0
    order by 1, 2
    on conflict (day, classifier) do update set signals = v.signals + excluded.signals
    returning day, classifier, signals
)
select day, classifier from v where signals <= 0";

    /// Deletes `classifier_days` rows by key (`$1`, `$2` arrays), those at zero or below only.
    pub const DELETE_ZERO_VERSIONS_POSTGRES: &str = "\
delete from classifier_days where signals <= 0 and (day, classifier)
    in (select * from unnest($1::integer[], $2::text[]))";

    /// The repeat-caller lookup: `$1` authors (`text[]`), `$2` channel, `$3` since. One walk of
    /// `signals_author_time (author, occurred_at)` per author, whatever the statistics say: the
    /// subquery with `offset 0` is not flattened into a join, so the planner must run it per
    /// author. As `author = any($1)` it did so only once the table had been analyzed; on a young
    /// register (autovacuum analyzes a table at most once a minute) it read the time index or
    /// the whole table for every batch.
    pub const AUTHOR_TIMES_POSTGRES: &str = "select a.author, s.occurred_at, s.thread_id \
         from unnest($1::text[]) as a (author) cross join lateral (select occurred_at, thread_id \
         from signals where author = a.author and channel = $2 and occurred_at >= $3 offset 0) s \
         order by s.occurred_at";

    /// The repeat-contact lookup (the impact score): `$1` authors, `$2`–`$3` the time range, on
    /// any channel; per author as [`AUTHOR_TIMES_POSTGRES`].
    pub const AUTHOR_CONTACTS_POSTGRES: &str = "select a.author, s.occurred_at \
         from unnest($1::text[]) as a (author) cross join lateral (select occurred_at \
         from signals where author = a.author and occurred_at >= $2 and occurred_at < $3 \
         offset 0) s";
}

/// JSON text of a column value; PostgreSQL casts it to `jsonb`.
fn json_text<T: Serialize + ?Sized>(field: &'static str, value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| StoreError::Encode { field, source })
}

async fn save_classified_postgres(pool: &PgPool, batch: &[ClassifiedEnvelope]) -> Result<u64> {
    let n = batch.len();
    let mut id = Vec::with_capacity(n);
    let mut channel = Vec::with_capacity(n);
    let mut source = Vec::with_capacity(n);
    let mut source_id = Vec::with_capacity(n);
    let mut occurred_at = Vec::with_capacity(n);
    let mut received_at = Vec::with_capacity(n);
    let mut classified_at = Vec::with_capacity(n);
    let mut author = Vec::with_capacity(n);
    let mut subject = Vec::with_capacity(n);
    let mut thread_id = Vec::with_capacity(n);
    let mut text = Vec::with_capacity(n);
    let mut meta = Vec::with_capacity(n);
    let mut themes = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut cause = Vec::with_capacity(n);
    let mut kind = Vec::with_capacity(n);
    let mut lang = Vec::with_capacity(n);
    let mut sentiment = Vec::with_capacity(n);
    let mut escalation = Vec::with_capacity(n);
    let mut classifier = Vec::with_capacity(n);
    let mut tag_signal = Vec::with_capacity(n * 2);
    let mut tag_theme = Vec::with_capacity(n * 2);
    let mut tag_score = Vec::with_capacity(n * 2);
    let mut tag_ms = Vec::with_capacity(n * 2);
    let mut impact = Vec::with_capacity(n);
    let mut rollup = Rollup::default();
    let mut subject_signal = Vec::with_capacity(n);
    let mut subject_id = Vec::with_capacity(n);
    let mut subject_ms = Vec::with_capacity(n);
    let mut seen = HashSet::with_capacity(n);
    for env in batch {
        let s = &env.signal;
        let c = &env.classification;
        id.push(s.id.as_str());
        channel.push(s.channel.as_str());
        source.push(s.source.as_str());
        source_id.push(s.source_id.as_str());
        occurred_at.push(s.occurred_at);
        received_at.push(s.received_at);
        classified_at.push(env.classified_at);
        author.push(s.author.as_deref());
        subject.push(s.subject.as_deref());
        thread_id.push(s.thread_id.as_deref());
        text.push(s.text.as_str());
        meta.push(json_text("meta", &s.meta)?);
        themes.push(json_text("themes", &c.themes)?);
        subjects.push(json_text("subjects", &c.subjects)?);
        cause.push(c.cause.as_str());
        kind.push(c.kind.as_str());
        lang.push(c.lang.as_str());
        sentiment.push(c.sentiment);
        escalation.push(json_text("escalation", &c.escalation)?);
        classifier.push(env.classifier.as_str());
        impact.push(c.impact);
        // Theme and subject rows have no unique key (a random-order btree insert per row was a
        // quarter of PostgreSQL's work): they go in only with a signal the statement inserted,
        // once per theme or subject, also when a batch carries the same signal twice.
        if !seen.insert(s.id.as_str()) || is_repost(s) {
            continue;
        }
        for t in unique_themes(c) {
            tag_signal.push(s.id.as_str());
            tag_theme.push(t.id.as_str());
            tag_score.push(t.score);
            tag_ms.push(s.occurred_at.timestamp_millis());
        }
        for subject in unique_subjects(c) {
            subject_signal.push(s.id.as_str());
            subject_id.push(subject);
            subject_ms.push(s.occurred_at.timestamp_millis());
        }
        for row in rollup_rows(env) {
            rollup.push(s.id.as_str(), row);
        }
    }
    let mut conn = pool.acquire().await.map_err(StoreError::Unavailable)?;
    let new: i64 = sqlx::query_scalar(sql::SAVE_CLASSIFIED_POSTGRES)
        .bind(id)
        .bind(channel)
        .bind(source)
        .bind(source_id)
        .bind(occurred_at)
        .bind(received_at)
        .bind(classified_at)
        .bind(author)
        .bind(subject)
        .bind(thread_id)
        .bind(text)
        .bind(meta)
        .bind(themes)
        .bind(cause)
        .bind(kind)
        .bind(lang)
        .bind(sentiment)
        .bind(escalation)
        .bind(classifier)
        .bind(tag_signal)
        .bind(tag_theme)
        .bind(tag_score)
        .bind(tag_ms)
        .bind(subject_signal)
        .bind(subject_id)
        .bind(subject_ms)
        .bind(impact)
        .bind(rollup.signal)
        .bind(rollup.day)
        .bind(rollup.theme)
        .bind(rollup.subject)
        .bind(rollup.channel)
        .bind(rollup.cause)
        .bind(rollup.kind)
        .bind(rollup.impact)
        .bind(rollup.grain)
        .bind(subjects)
        .fetch_one(&mut *conn)
        .await?;
    Ok(u64::try_from(new).unwrap_or(0))
}

/// The embedded default: multi-row inserts in one transaction, correctness over speed.
/// A repost of someone else's words (an X retweet, `meta.retweet_of`): stored, with its
/// classification, but without theme or subject rows, so Pareto lists and alert windows, which
/// count those rows, never count it as a customer of its own.
fn is_repost(s: &signaal_core::Signal) -> bool {
    s.meta.contains_key("retweet_of")
}

async fn save_classified_sqlite(pool: &SqlitePool, batch: &[ClassifiedEnvelope]) -> Result<u64> {
    let mut rows = Vec::with_capacity(batch.len());
    for env in batch {
        rows.push((env, json_text("themes", &env.classification.themes)?));
    }
    let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;
    let mut inserted = 0u64;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut q = sqlx::QueryBuilder::new(
            "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
             classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
             sentiment, escalation, classifier, impact, subjects) ",
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
                .push_bind(themes.as_str())
                .push_bind(c.cause.as_str())
                .push_bind(c.kind.as_str())
                .push_bind(&c.lang)
                .push_bind(c.sentiment)
                .push_bind(Json(&c.escalation))
                .push_bind(&env.classifier)
                .push_bind(c.impact)
                .push_bind(Json(&c.subjects));
        });
        q.push(" on conflict (id) do nothing returning id");
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        inserted += new.len() as u64;
        let new: HashSet<String> = new.into_iter().map(|(id,)| id).collect();
        let mut seen = HashSet::with_capacity(chunk.len());
        let fresh: Vec<&ClassifiedEnvelope> = chunk
            .iter()
            .map(|(env, _)| *env)
            .filter(|env| {
                new.contains(&env.signal.id)
                    && seen.insert(env.signal.id.as_str())
                    && !is_repost(&env.signal)
            })
            .collect();
        let tags: Vec<(&str, &str, f32, i64)> = fresh
            .iter()
            .flat_map(|env| {
                let s = &env.signal;
                unique_themes(&env.classification).map(move |t| {
                    (
                        s.id.as_str(),
                        t.id.as_str(),
                        t.score,
                        s.occurred_at.timestamp_millis(),
                    )
                })
            })
            .collect();
        for tag_chunk in tags.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "insert into signal_themes (signal_id, theme, score, occurred_ms) ",
            );
            q.push_values(tag_chunk, |mut b, (id, theme, score, ms)| {
                b.push_bind(*id)
                    .push_bind(*theme)
                    .push_bind(*score)
                    .push_bind(*ms);
            });
            q.build().execute(&mut *tx).await?;
        }
        let subjects: Vec<(&str, &str, i64)> = fresh
            .iter()
            .flat_map(|env| {
                let s = &env.signal;
                unique_subjects(&env.classification)
                    .map(move |subject| (s.id.as_str(), subject, s.occurred_at.timestamp_millis()))
            })
            .collect();
        for subject_chunk in subjects.chunks(ROWS_PER_STATEMENT) {
            let mut q = sqlx::QueryBuilder::new(
                "insert into signal_subjects (signal_id, subject, occurred_ms) ",
            );
            q.push_values(subject_chunk, |mut b, (id, subject, ms)| {
                b.push_bind(*id).push_bind(*subject).push_bind(*ms);
            });
            q.build().execute(&mut *tx).await?;
        }
        // The counts, summed per key first (each key once per statement).
        let mut deltas = Deltas {
            rollup: BTreeMap::new(),
            versions: BTreeMap::new(),
        };
        for env in &fresh {
            for r in rollup_rows(env) {
                let e = deltas
                    .rollup
                    .entry((
                        r.grain, r.day, r.theme, r.subject, r.channel, r.cause, r.kind,
                    ))
                    .or_default();
                e.0 += 1;
                e.1 += r.impact;
            }
        }
        for (env, _) in chunk.iter().filter(|(env, _)| new.contains(&env.signal.id)) {
            *deltas
                .versions
                .entry((day_number(env.signal.occurred_at), env.classifier.as_str()))
                .or_default() += 1;
        }
        tx.add_counts(&deltas).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}

/// The rollup day of a time, as a column value.
fn day_number(t: chrono::DateTime<chrono::Utc>) -> i32 {
    i32::try_from(analysis::day_of(t)).unwrap_or(i32::MAX)
}

/// A classification's themes, each id once (the first tag wins).
fn unique_themes(
    c: &signaal_core::Classification,
) -> impl Iterator<Item = &signaal_core::ThemeTag> {
    c.themes
        .iter()
        .enumerate()
        .filter(|(i, t)| !c.themes[..*i].iter().any(|u| u.id == t.id))
        .map(|(_, t)| t)
}

/// One signal's rows of the daily rollup (`signal_rollup`, 0006): a row per theme (subject
/// `*`), per subject (theme `*`), per theme × subject, and one for the volume (`*`, `*`). None
/// for a repost, which counts for nothing.
pub struct RollupRow<'a> {
    /// 0 volume, 1 theme, 2 subject, 3 theme × subject ([`analysis::grain`]).
    pub grain: i16,
    pub day: i32,
    pub theme: &'a str,
    pub subject: &'a str,
    pub channel: &'a str,
    pub cause: &'a str,
    pub kind: &'a str,
    pub impact: f64,
}

pub fn rollup_rows(env: &ClassifiedEnvelope) -> Vec<RollupRow<'_>> {
    let s = &env.signal;
    if is_repost(s) {
        return Vec::new();
    }
    let c = &env.classification;
    let day = day_number(s.occurred_at);
    let row = |theme, subject| RollupRow {
        grain: analysis::grain(theme != analysis::ANY, subject != analysis::ANY),
        day,
        theme,
        subject,
        channel: s.channel.as_str(),
        cause: c.cause.as_str(),
        kind: c.kind.as_str(),
        impact: c.impact.map_or(0.0, f64::from),
    };
    let themes: Vec<&str> = unique_themes(c).map(|t| t.id.as_str()).collect();
    let subjects: Vec<&str> = unique_subjects(c).collect();
    let mut rows = vec![row(analysis::ANY, analysis::ANY)];
    rows.extend(themes.iter().map(|t| row(t, analysis::ANY)));
    rows.extend(subjects.iter().map(|u| row(analysis::ANY, u)));
    for t in &themes {
        rows.extend(subjects.iter().map(|u| row(t, u)));
    }
    rows
}

/// The rollup rows of a batch as column arrays (PostgreSQL's `unnest`).
#[derive(Default)]
struct Rollup<'a> {
    signal: Vec<&'a str>,
    day: Vec<i32>,
    theme: Vec<&'a str>,
    subject: Vec<&'a str>,
    channel: Vec<&'a str>,
    cause: Vec<&'a str>,
    kind: Vec<&'a str>,
    impact: Vec<f64>,
    grain: Vec<i16>,
}

impl<'a> Rollup<'a> {
    fn push(&mut self, signal: &'a str, r: RollupRow<'a>) {
        self.signal.push(signal);
        self.day.push(r.day);
        self.theme.push(r.theme);
        self.subject.push(r.subject);
        self.channel.push(r.channel);
        self.cause.push(r.cause);
        self.kind.push(r.kind);
        self.impact.push(r.impact);
        self.grain.push(r.grain);
    }
}

/// A classification's subject ids, each once (a subject is one row per signal).
fn unique_subjects(c: &signaal_core::Classification) -> impl Iterator<Item = &str> {
    c.subjects
        .iter()
        .enumerate()
        .filter(|(i, t)| !c.subjects[..*i].iter().any(|u| u.id == t.id))
        .map(|(_, t)| t.id.as_str())
}

/// Database URLs may carry passwords — in the user info (`postgres://user:pw@host/db`) or as a
/// query parameter (`?password=…`, `sslpassword`) — and must never be echoed back in errors or
/// logs. The user name stays: it says whose login failed.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return redact_query(url);
    };
    let rest = &url[scheme_end..];
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    // The user info ends at the last `@` before the query (a password may hold an unescaped `@`
    // or `/`); failing that, at an `@` after `user:…` with no `/` before it (an unescaped `?`).
    let at = rest[..query_at].rfind('@').or_else(|| {
        rest.find('@')
            .filter(|&at| rest[..at].contains(':') && !rest[..at].contains('/'))
    });
    let mut out = String::from(&url[..scheme_end]);
    let tail = match at {
        Some(at) => {
            match rest[..at].split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push_str(":***");
                }
                None => out.push_str(&rest[..at]),
            }
            &rest[at..]
        }
        None => rest,
    };
    out.push_str(&redact_query(tail));
    out
}

/// `…?a=1&password=x` → `…?a=1&password=***`, for any key that names a password.
fn redact_query(s: &str) -> String {
    let Some((head, query)) = s.split_once('?') else {
        return s.to_string();
    };
    let (query, fragment) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if percent_decode(key).to_ascii_lowercase().contains("pass") => {
                format!("{key}=***")
            }
            _ => pair.to_string(),
        })
        .collect();
    let mut out = format!("{head}?{}", pairs.join("&"));
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_states_a_retry_can_fix() {
        for (sqlstate, transient) in [
            ("08000", true),  // connection exception
            ("08006", true),  // connection failure
            ("08P01", true),  // protocol violation
            ("40001", true),  // serialization failure
            ("40P01", true),  // deadlock detected
            ("53100", true),  // disk full
            ("53200", true),  // out of memory
            ("53300", true),  // too many connections
            ("55P03", true),  // lock not available
            ("57P01", true),  // admin shutdown
            ("57P02", true),  // crash shutdown
            ("57P03", true),  // cannot connect now
            ("22001", false), // string data right truncation
            ("22021", false), // invalid byte sequence (a NUL in text)
            ("22P02", false), // invalid text representation
            ("22P05", false), // untranslatable character (\u0000 in jsonb)
            ("23502", false), // not null violation
            ("23505", false), // unique violation
            ("54000", false), // program limit exceeded: index row requires 10016 bytes
            ("42601", true),  // syntax error: a bug, not the records' fault; the worker waits
            ("42501", true),  // privilege revoked: the database's state, not the records'
            ("25006", true),  // read-only transaction (a demoted primary after failover)
            ("57014", true),  // statement timeout (a migration holding a lock)
            ("58030", true),  // I/O error on the server
        ] {
            assert_eq!(
                postgres_transient(sqlstate),
                transient,
                "SQLSTATE {sqlstate}"
            );
        }
    }

    #[test]
    fn sqlite_codes_a_retry_can_fix() {
        for (code, transient) in [
            (5, true),     // SQLITE_BUSY
            (261, true),   // SQLITE_BUSY_RECOVERY
            (517, true),   // SQLITE_BUSY_SNAPSHOT
            (773, true),   // SQLITE_BUSY_TIMEOUT
            (6, true),     // SQLITE_LOCKED
            (262, true),   // SQLITE_LOCKED_SHAREDCACHE
            (7, true),     // SQLITE_NOMEM
            (10, true),    // SQLITE_IOERR
            (266, true),   // SQLITE_IOERR_READ
            (13, true),    // SQLITE_FULL
            (19, false),   // SQLITE_CONSTRAINT
            (1299, false), // SQLITE_CONSTRAINT_NOTNULL
            (2067, false), // SQLITE_CONSTRAINT_UNIQUE
            (18, false),   // SQLITE_TOOBIG
            (20, false),   // SQLITE_MISMATCH
            (1, true),     // SQLITE_ERROR (e.g. no such table): not the records' fault
        ] {
            assert_eq!(sqlite_transient(code), transient, "code {code}");
        }
    }

    #[test]
    fn transport_errors_are_transient_data_errors_are_not() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        // Even an I/O error inside the JSON encoder is the value's fault here: nothing to retry.
        let encode = || StoreError::Encode {
            field: "meta",
            source: serde_json::Error::io(io()),
        };
        for (error, transient) in [
            (StoreError::Sql(sqlx::Error::Io(io())), true),
            (StoreError::Sql(sqlx::Error::PoolTimedOut), true),
            (StoreError::Sql(sqlx::Error::PoolClosed), true),
            (
                StoreError::Sql(sqlx::Error::Protocol("unexpected message".into())),
                true,
            ),
            (StoreError::Sql(sqlx::Error::Tls("handshake".into())), true),
            (
                StoreError::Connect {
                    backend: "postgresql",
                    target: "db:5432".into(),
                    source: sqlx::Error::Io(io()),
                },
                true,
            ),
            (
                StoreError::Migrate(sqlx::migrate::MigrateError::Execute(
                    sqlx::Error::PoolTimedOut,
                )),
                true,
            ),
            (
                StoreError::Migrate(sqlx::migrate::MigrateError::VersionMissing(3)),
                false,
            ),
            (StoreError::Sql(sqlx::Error::RowNotFound), false),
            (
                StoreError::Sql(sqlx::Error::Encode("bad value".into())),
                false,
            ),
            (
                StoreError::Sql(sqlx::Error::Decode("bad column".into())),
                false,
            ),
            (
                StoreError::Url {
                    url: "mysql://h/db".into(),
                    reason: "unsupported scheme".into(),
                },
                false,
            ),
            (
                StoreError::ConnectTimeout {
                    backend: "postgresql",
                    target: "db:5432".into(),
                    after: std::time::Duration::from_secs(10),
                },
                true,
            ),
            (encode(), false),
        ] {
            assert_eq!(error.is_transient(), transient, "{error}");
        }
    }

    #[test]
    fn passwords_never_leave_in_errors() {
        for (url, redacted) in [
            (
                "postgres://u:secret@db:5432/x",
                "postgres://u:***@db:5432/x",
            ),
            ("postgres://u@db/x", "postgres://u@db/x"),
            ("postgres://db/x", "postgres://db/x"),
            ("sqlite:signaal.db", "sqlite:signaal.db"),
            // Unescaped `@`, `/` and `?` in a password.
            ("postgres://u:se@cr/et@db/x", "postgres://u:***@db/x"),
            ("postgres://u:se?cret@db/x", "postgres://u:***@db/x"),
            // In the query, under any name that says password, also percent-encoded.
            (
                "postgres://u@db/x?sslmode=require&password=secret",
                "postgres://u@db/x?sslmode=require&password=***",
            ),
            (
                "postgres://db/x?PASSWORD=secret&user=u",
                "postgres://db/x?PASSWORD=***&user=u",
            ),
            (
                "postgres://db/x?pass%77ord=secret",
                "postgres://db/x?pass%77ord=***",
            ),
            (
                "postgres://db/x?sslpassword=secret#f",
                "postgres://db/x?sslpassword=***#f",
            ),
            (
                "postgres://u:secret@db/x?password=secret&sslrootcert=/ca@x.pem",
                "postgres://u:***@db/x?password=***&sslrootcert=/ca@x.pem",
            ),
            (
                "nosuch://u:secret@h?password=secret",
                "nosuch://u:***@h?password=***",
            ),
        ] {
            assert_eq!(redact_url(url), redacted, "{url}");
            assert!(!redact_url(url).contains("secret"), "{url}");
        }
    }

    #[test]
    fn database_urls_are_checked_before_connecting() {
        for url in [
            "postgres://u:pw@db:5432/x",
            "postgresql://db/x?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            "postgres://db/x?sslmode=disable&application_name=signaal",
            "postgres://db/x?options[search_path]=signaal",
            "sqlite:signaal.db",
        ] {
            assert!(check_url(url).is_ok(), "{url}: {:?}", check_url(url).err());
        }
        for (url, want) in [
            ("mysql://u:secret@h/db", "unsupported scheme"),
            ("postgres://db/x?sslmode=sometimes", "sometimes"),
            // A misspelt key is refused by name: sqlx would log it with its value.
            (
                "postgres://db/x?passwd=secret",
                "unknown parameter `passwd`",
            ),
            ("postgres://u:secret@db:port/x", "invalid database url"),
            (
                "postgres://db/x?password=secret&port=x",
                "invalid database url",
            ),
        ] {
            let err = check_url(url)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{url}: {err}");
            assert!(!err.contains("secret"), "{url}: {err}");
        }
    }
}
