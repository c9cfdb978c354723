//! Spike alerts in the register (migration 0004): the events the alerter emits, the outbox the
//! notifiers work from, and the history (theme counts per bucket, themed signals one by one) the
//! alerter rebuilds its state from and `signaal alerts backtest` runs over.
//!
//! An event, its outbox rows and the alerter's Kafka position are written in one transaction
//! ([`Store::save_alert_events`]): a notification is queued exactly when its event is new, so a
//! replayed batch queues nothing, and a crash between the two cannot lose or double one.

use chrono::{DateTime, Utc};
use futures::TryStreamExt as _;
use serde::Serialize;
use signaal_core::AlertEvent;
use sqlx::types::Json;

use crate::{Pool, Result, Store, StoreError, UPSERT_CURSOR};

/// One notification still to deliver: an event for one notifier (`sink`).
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub event: AlertEvent,
    pub sink: String,
    /// Failed deliveries so far.
    pub attempts: u32,
}

/// Distinct signals of a theme (of a channel, when asked) in one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThemeBucketCount {
    pub theme: String,
    pub channel: Option<String>,
    /// The bucket's start, unix seconds (buckets are aligned to multiples of their length).
    pub bucket: i64,
    pub count: u64,
}

/// A themed signal as the alerter's history needs it (the author is the stored pseudonym, the
/// text the stored, redacted one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThemeSignal {
    pub id: String,
    pub occurred_at: DateTime<Utc>,
    pub channel: String,
    pub author: Option<String>,
    pub subject: Option<String>,
    pub text: String,
    /// Sorted, each once.
    pub themes: Vec<String>,
}

/// The order of an alert's states within one bucket (an alert's events are otherwise ordered by
/// their bucket): the lifecycle's own order. A macro so that it can be `concat!`ed into the
/// statements below, with the table alias as its argument.
macro_rules! state_rank {
    ($e:literal) => {
        concat!(
            "(case ",
            $e,
            ".state when 'pending' then 0 when 'firing' then 1 when 'update' then 2 \
             when 'repeat' then 3 else 4 end)"
        )
    };
}

/// Unsent rows that are due (`$1` = now) and are the first unsent row of their alert for their
/// notifier: a later event of an alert never overtakes an earlier one that is waiting for a
/// retry. Oldest bucket first. `$2` = limit; `$3` = one notifier, or null for all of them.
const OUTBOX_DUE: &str = concat!(
    "select o.event_id, o.sink, o.attempts, cast(e.body as text) \
     from alert_outbox o join alert_events e on e.id = o.event_id \
     where o.sent_at is null and o.next_attempt_at <= $1 \
     and ($3 is null or o.sink = $3) \
     and not exists (\
        select 1 from alert_events pe join alert_outbox p on p.event_id = pe.id \
        where pe.alert_id = e.alert_id and p.sink = o.sink and p.sent_at is null \
        and (pe.bucket_start < e.bucket_start or (pe.bucket_start = e.bucket_start and ",
    state_rank!("pe"),
    " < ",
    state_rank!("e"),
    "))) order by e.bucket_start, e.alert_id, ",
    state_rank!("e"),
    ", o.sink limit $2"
);

/// The newest event of each alert: its last bucket, and the latest state in that bucket.
const LATEST_ALERT_STATES: &str = concat!(
    "select body from (select cast(e.body as text) as body, e.bucket_start, e.emitted_at, \
     row_number() over (partition by e.alert_id order by e.bucket_start desc, ",
    state_rank!("e"),
    " desc) as newest from alert_events e) latest where newest = 1 \
     order by bucket_start, emitted_at"
);

/// `last_error` is a reason, not a response body: longer ones are cut.
const MAX_ERROR_BYTES: usize = 1024;

/// An event whose numbers JSON cannot carry (NaN and infinities become `null`) would be stored
/// but could never be read back, and would stop every notifier behind it: refused on the way in.
fn body_of(event: &AlertEvent) -> Result<Json<&AlertEvent>> {
    let finite = |field: &'static str, v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(StoreError::Encode {
                field,
                source: <serde_json::Error as serde::ser::Error>::custom(format!(
                    "`{field}` of alert event `{}` is not a finite number",
                    event.id
                )),
            })
        }
    };
    finite("expected", event.expected)?;
    finite("p_value", event.p_value)?;
    if let Some(u) = event.upper {
        finite("upper", u)?;
    }
    Ok(Json(event))
}

fn decode_body(body: &str) -> Result<AlertEvent> {
    serde_json::from_str(body).map_err(|e| StoreError::Sql(sqlx::Error::Decode(Box::new(e))))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl Store {
    /// Stores alert events and queues their notifications, in one transaction: each event is
    /// inserted unless its id is already there, and for each event that was new one outbox row
    /// per notifier named next to it (due at once). `cursor` — `(source, key, value)` in
    /// `source_cursors`, e.g. the alerter's Kafka offsets — is written in the same transaction,
    /// so the position never runs ahead of, or behind, what was stored. Returns how many events
    /// were new; a replay of the same events inserts and queues nothing.
    pub async fn save_alert_events(
        &self,
        events: &[(AlertEvent, Vec<String>)],
        cursor: Option<(&str, &str, &str)>,
    ) -> Result<u64> {
        let mut bodies = Vec::with_capacity(events.len());
        for (event, sinks) in events {
            bodies.push((event, body_of(event)?, sinks));
        }
        let now = Utc::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;
            let mut new = 0u64;
            for (event, body, sinks) in &bodies {
                let done = sqlx::query(
                    "insert into alert_events (id, alert_id, series, state, bucket_start, \
                     emitted_at, body) values ($1, $2, $3, $4, $5, $6, $7) \
                     on conflict (id) do nothing",
                )
                .bind(&event.id)
                .bind(&event.alert_id)
                .bind(&event.series)
                .bind(event.state.as_str())
                .bind(event.bucket_start)
                .bind(event.emitted_at)
                .bind(body)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 0 {
                    continue;
                }
                new += 1;
                for sink in sinks.iter() {
                    sqlx::query(
                        "insert into alert_outbox (event_id, sink, attempts, next_attempt_at) \
                         values ($1, $2, 0, $3) on conflict (event_id, sink) do nothing",
                    )
                    .bind(&event.id)
                    .bind(sink)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            if let Some((source, key, value)) = cursor {
                sqlx::query(UPSERT_CURSOR)
                    .bind(source)
                    .bind(key)
                    .bind(value)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(new)
        })
    }

    /// Stored alert events, ordered by bucket (then emission). With a limit, the `limit` most
    /// recent ones, still oldest first.
    pub async fn alert_events(&self, limit: Option<usize>) -> Result<Vec<AlertEvent>> {
        let limit = limit.map_or(i64::MAX, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let sql = format!(
            "select body from (select cast(e.body as text) as body, e.bucket_start, \
             e.emitted_at, e.alert_id, {rank} as state_rank from alert_events e \
             order by {order_desc} limit $1) recent \
             order by bucket_start, emitted_at, alert_id, state_rank",
            rank = state_rank!("e"),
            order_desc = "e.bucket_start desc, e.emitted_at desc, e.alert_id desc, state_rank desc",
        );
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(limit).fetch_all(pool).await?
        });
        rows.iter().map(|(body,)| decode_body(body)).collect()
    }

    /// Stored alert events whose bucket starts in `[from, to)`, ordered by bucket (then
    /// emission): the markers on a timeline.
    pub async fn alert_events_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<AlertEvent>> {
        let sql = format!(
            "select cast(e.body as text) from alert_events e where e.bucket_start >= $1 \
             and e.bucket_start < $2 order by e.bucket_start, e.emitted_at, e.alert_id, {rank}",
            rank = state_rank!("e"),
        );
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(&sql).bind(from).bind(to).fetch_all(pool).await?
        });
        rows.iter().map(|(body,)| decode_body(body)).collect()
    }

    /// The newest event of each alert (its current state, or how it ended), ordered by bucket:
    /// what a report or dashboard lists.
    pub async fn latest_alert_states(&self) -> Result<Vec<AlertEvent>> {
        let rows: Vec<(String,)> = on_pool!(self, pool => {
            sqlx::query_as(LATEST_ALERT_STATES).fetch_all(pool).await?
        });
        rows.iter().map(|(body,)| decode_body(body)).collect()
    }

    /// Notifications due at `now`, oldest bucket first, at most `limit`. Only the first unsent
    /// notification of each alert and notifier is returned: the next one becomes due once it
    /// was sent, so one alert's events reach a notifier in their order.
    pub async fn outbox_due(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OutboxItem>> {
        self.outbox_due_where(None, now, limit).await
    }

    /// [`Store::outbox_due`] for one notifier: a notifier that is down and has a long queue
    /// never takes the places of another's notifications.
    pub async fn outbox_due_for(
        &self,
        sink: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        self.outbox_due_where(Some(sink), now, limit).await
    }

    async fn outbox_due_where(
        &self,
        sink: Option<&str>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String, i32, String)> = match &self.pool {
            // PostgreSQL cannot infer the type of `$3 is null` on its own.
            Pool::Postgres(pool) => {
                sqlx::query_as(&OUTBOX_DUE.replace("$3", "$3::text"))
                    .bind(now)
                    .bind(limit)
                    .bind(sink)
                    .fetch_all(pool)
                    .await?
            }
            Pool::Sqlite(pool) => {
                sqlx::query_as(OUTBOX_DUE)
                    .bind(now)
                    .bind(limit)
                    .bind(sink)
                    .fetch_all(pool)
                    .await?
            }
        };
        rows.into_iter()
            .map(|(_, sink, attempts, body)| {
                Ok(OutboxItem {
                    event: decode_body(&body)?,
                    sink,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                })
            })
            .collect()
    }

    /// Marks a notification delivered. False when there was no such unsent row.
    pub async fn outbox_sent(&self, event_id: &str, sink: &str, at: DateTime<Utc>) -> Result<bool> {
        on_pool!(self, pool => {
            let done = sqlx::query(
                "update alert_outbox set sent_at = $3, last_error = null \
                 where event_id = $1 and sink = $2 and sent_at is null",
            )
            .bind(event_id)
            .bind(sink)
            .bind(at)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Records a failed delivery: one more attempt, the reason (cut to 1 KiB), and when to try
    /// again. False when there was no such unsent row.
    pub async fn outbox_failed(
        &self,
        event_id: &str,
        sink: &str,
        error: &str,
        next_attempt_at: DateTime<Utc>,
    ) -> Result<bool> {
        let mut error = error.to_string();
        signaal_core::truncate(&mut error, MAX_ERROR_BYTES);
        on_pool!(self, pool => {
            let done = sqlx::query(
                "update alert_outbox set attempts = attempts + 1, last_error = $3, \
                 next_attempt_at = $4 where event_id = $1 and sink = $2 and sent_at is null",
            )
            .bind(event_id)
            .bind(sink)
            .bind(&error)
            .bind(next_attempt_at)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Notifications not delivered yet, due or waiting for a retry.
    pub async fn outbox_pending(&self) -> Result<u64> {
        let n: i64 = on_pool!(self, pool => {
            sqlx::query_scalar("select count(*) from alert_outbox where sent_at is null")
                .fetch_one(pool)
                .await?
        });
        Ok(count(n))
    }

    /// Distinct people per theme (and per channel when `by_channel`) per bucket of
    /// `bucket_seconds`, for signals that occurred in `[from, to)`: each author's pseudonym once
    /// per bucket, and each signal without an author once (the alerter's count). Buckets are aligned to
    /// multiples of their length since the Unix epoch (hours and days in UTC). Counted from the
    /// theme rows, so reposts (retweets, which have none) count for nothing and a signal counts
    /// once per theme however often it was stored. Ordered by bucket, theme, channel.
    ///
    /// Reads every theme row of the range (the theme-and-time index leads with the theme): meant
    /// for the alerter's start and for backtests, not for every bucket.
    pub async fn theme_bucket_counts(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket_seconds: u32,
        by_channel: bool,
    ) -> Result<Vec<ThemeBucketCount>> {
        if bucket_seconds == 0 {
            return Err(StoreError::Invalid(
                "`bucket_seconds` must be at least 1".into(),
            ));
        }
        let bucket_ms = i64::from(bucket_seconds) * 1000;
        // Floor division, also for times before 1970 (`%` keeps the dividend's sign on both
        // backends); the result is the bucket's start in seconds.
        let bucket = "(t.occurred_ms - ((t.occurred_ms % $3) + $3) % $3) / 1000";
        let sql = if by_channel {
            format!(
                "select t.theme, s.channel, {bucket} as bucket, \
                 count(distinct coalesce(s.author, s.id)) \
                 from signal_themes t join signals s on s.id = t.signal_id \
                 where t.occurred_ms >= $1 and t.occurred_ms < $2 \
                 group by t.theme, s.channel, bucket order by bucket, t.theme, s.channel"
            )
        } else {
            format!(
                "select t.theme, {bucket} as bucket, count(distinct coalesce(s.author, s.id)) \
                 from signal_themes t join signals s on s.id = t.signal_id \
                 where t.occurred_ms >= $1 and t.occurred_ms < $2 \
                 group by t.theme, bucket order by bucket, t.theme"
            )
        };
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        if by_channel {
            let rows: Vec<(String, String, i64, i64)> = on_pool!(self, pool => {
                sqlx::query_as(&sql)
                    .bind(from)
                    .bind(to)
                    .bind(bucket_ms)
                    .fetch_all(pool)
                    .await?
            });
            Ok(rows
                .into_iter()
                .map(|(theme, channel, bucket, n)| ThemeBucketCount {
                    theme,
                    channel: Some(channel),
                    bucket,
                    count: count(n),
                })
                .collect())
        } else {
            let rows: Vec<(String, i64, i64)> = on_pool!(self, pool => {
                sqlx::query_as(&sql)
                    .bind(from)
                    .bind(to)
                    .bind(bucket_ms)
                    .fetch_all(pool)
                    .await?
            });
            Ok(rows
                .into_iter()
                .map(|(theme, bucket, n)| ThemeBucketCount {
                    theme,
                    channel: None,
                    bucket,
                    count: count(n),
                })
                .collect())
        }
    }

    /// When the earliest themed signal in `[from, to)` occurred, if there is one (where a
    /// series' history starts). Reads the theme rows of the range: meant for the alerter's start.
    pub async fn first_theme_signal(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>> {
        const SQL: &str = "select min(occurred_ms) from signal_themes \
             where occurred_ms >= $1 and occurred_ms < $2";
        let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
        let first: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(SQL).bind(from).bind(to).fetch_one(pool).await?
        });
        Ok(first.and_then(DateTime::from_timestamp_millis))
    }

    /// Calls `f` with every themed signal that occurred in `[from, to)`, in time order (then by
    /// id), without holding more than one signal: rows are streamed from one query. Reposts
    /// have no theme rows and are left out, as in [`Store::theme_bucket_counts`]. Returns how
    /// many signals `f` saw.
    pub async fn for_each_theme_signal(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        mut f: impl FnMut(ThemeSignal),
    ) -> Result<u64> {
        type Row = (
            String,
            DateTime<Utc>,
            String,
            Option<String>,
            Option<String>,
            String,
            String,
        );
        const SQL: &str = "select s.id, s.occurred_at, s.channel, s.author, s.subject, s.text, \
             t.theme \
             from signals s join signal_themes t on t.signal_id = s.id \
             where s.occurred_at >= $1 and s.occurred_at < $2 \
             order by s.occurred_at, s.id, t.theme";
        let mut seen = 0u64;
        let mut current: Option<ThemeSignal> = None;
        let mut take = |row: Row| {
            let (id, occurred_at, channel, author, subject, text, theme) = row;
            if let Some(c) = current.as_mut().filter(|c| c.id == id) {
                if c.themes.last() != Some(&theme) {
                    c.themes.push(theme);
                }
                return;
            }
            if let Some(done) = current.replace(ThemeSignal {
                id,
                occurred_at,
                channel,
                author,
                subject,
                text,
                themes: vec![theme],
            }) {
                seen += 1;
                f(done);
            }
        };
        on_pool!(self, pool => {
            let mut rows = sqlx::query_as::<_, Row>(SQL).bind(from).bind(to).fetch(pool);
            while let Some(row) = rows.try_next().await? {
                take(row);
            }
        });
        if let Some(done) = current.take() {
            seen += 1;
            f(done);
        }
        Ok(seen)
    }
}
