//! The counts kept beside the signals: the daily rollups (`signal_rollup`, `signal_rollup_days`)
//! and the signals per day and classifier version (`classifier_days`).
//!
//! PostgreSQL: writers append their deltas to `signal_rollup_pending` and
//! `classifier_days_pending` (0009) in the transaction that stores the signals, so a count moves
//! exactly when its signals do; [`Store::settle_counts`] adds them up into the counted tables.
//! Adding in the write itself had every batch update the same few thousand rows (a day's themes
//! and subjects): concurrent writers waited on each other's row locks, and PostgreSQL's work per
//! signal went up four times. Settling runs about once a second from the write path, before
//! every read of the counts, and when the store closes; concurrent settlers take turns on an
//! advisory lock.
//!
//! SQLite (one writer at a time anyway) adds in place, in the writing transaction.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use sqlx::{PgPool, Postgres, QueryBuilder, Sqlite, Transaction};

use crate::{sql, Pool, Result, Store, StoreError, ROWS_PER_STATEMENT};

/// A rollup row's key: grain, day, theme, subject, channel, cause, kind.
pub(crate) type RollupKey<'a> = (i16, i32, &'a str, &'a str, &'a str, &'a str, &'a str);

/// A `signal_rollup_days` key: grain, day, theme, subject.
type RollupDayKey<'a> = (i16, i32, &'a str, &'a str);

/// Counts to add per rollup key (signals, impact), and per day and classifier version.
pub(crate) struct Deltas<'a> {
    pub rollup: BTreeMap<RollupKey<'a>, (i64, f64)>,
    pub versions: BTreeMap<(i32, &'a str), i64>,
}

impl Deltas<'_> {
    /// Keys whose counts cancelled out are dropped (a signal reclassified into the same key).
    pub fn retain_nonzero(&mut self) {
        self.rollup
            .retain(|_, (n, impact)| *n != 0 || impact.abs() > 1e-9);
        self.versions.retain(|_, n| *n != 0);
    }

    fn has_negative(&self) -> bool {
        self.rollup.values().any(|(n, _)| *n < 0) || self.versions.values().any(|n| *n < 0)
    }
}

/// How often a writer settles the pending counts.
const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// The advisory lock settlers take turns on ("signaal" and 1).
const SETTLE_LOCK: i64 = 0x7369_676e_6161_6c01;

/// A key of `signal_rollup` or, with `channel` null, `signal_rollup_days`, left at zero.
type ZeroKey = (
    i16,
    i32,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl Store {
    /// Adds the counts writers left pending to the rollups and version counts, in one
    /// transaction; keys left at zero (a reclassification moved every signal away) are deleted.
    /// Reports call this before they read; writers about once a second. SQLite: nothing to do.
    pub async fn settle_counts(&self) -> Result<()> {
        match &self.pool {
            Pool::Postgres(pool) => settle_postgres(pool).await,
            Pool::Sqlite(_) => Ok(()),
        }
    }

    /// Settles when the last settling by this handle is [`SETTLE_EVERY`] ago and nobody else
    /// sharing it is settling now. A failure is logged, not returned: the counts stay pending,
    /// and the next settling (or report) adds them.
    pub(crate) async fn settle_if_due(&self) {
        let Pool::Postgres(pool) = &self.pool else {
            return;
        };
        let Ok(mut last) = self.settled.try_lock() else {
            return;
        };
        if last.is_some_and(|t| t.elapsed() < SETTLE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        if let Err(e) = settle_postgres(pool).await {
            tracing::warn!(error = %e, "could not settle the rollup counts; they stay pending");
        }
    }
}

async fn settle_postgres(pool: &PgPool) -> Result<()> {
    let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;
    sqlx::query("select pg_advisory_xact_lock($1)")
        .bind(SETTLE_LOCK)
        .execute(&mut *tx)
        .await?;
    let zeros: Vec<ZeroKey> = sqlx::query_as(sql::SETTLE_COUNTS_POSTGRES)
        .fetch_all(&mut *tx)
        .await?;
    let (rollup, days): (Vec<ZeroKey>, Vec<ZeroKey>) =
        zeros.into_iter().partition(|z| z.4.is_some());
    if !rollup.is_empty() {
        let mut cols: (Vec<i16>, Vec<i32>, Vec<String>, Vec<String>) = Default::default();
        let mut rest: (Vec<String>, Vec<String>, Vec<String>) = Default::default();
        for (g, day, t, u, ch, ca, k) in rollup {
            cols.0.push(g);
            cols.1.push(day);
            cols.2.push(t);
            cols.3.push(u);
            rest.0.push(ch.unwrap_or_default());
            rest.1.push(ca.unwrap_or_default());
            rest.2.push(k.unwrap_or_default());
        }
        sqlx::query(sql::DELETE_ZERO_ROLLUP_POSTGRES)
            .bind(cols.0)
            .bind(cols.1)
            .bind(cols.2)
            .bind(cols.3)
            .bind(rest.0)
            .bind(rest.1)
            .bind(rest.2)
            .execute(&mut *tx)
            .await?;
    }
    if !days.is_empty() {
        let mut cols: (Vec<i16>, Vec<i32>, Vec<String>, Vec<String>) = Default::default();
        for (g, day, t, u, ..) in days {
            cols.0.push(g);
            cols.1.push(day);
            cols.2.push(t);
            cols.3.push(u);
        }
        sqlx::query(sql::DELETE_ZERO_ROLLUP_DAYS_POSTGRES)
            .bind(cols.0)
            .bind(cols.1)
            .bind(cols.2)
            .bind(cols.3)
            .execute(&mut *tx)
            .await?;
    }
    let zeros: Vec<(i32, String)> = sqlx::query_as(sql::SETTLE_VERSIONS_POSTGRES)
        .fetch_all(&mut *tx)
        .await?;
    if !zeros.is_empty() {
        let (days, versions): (Vec<i32>, Vec<String>) = zeros.into_iter().unzip();
        sqlx::query(sql::DELETE_ZERO_VERSIONS_POSTGRES)
            .bind(days)
            .bind(versions)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    // The moved rows are dead now; without this their pages stay in the table until autovacuum
    // gets to it (a minute at the soonest), and every settling scans them again: at 200,000
    // signals in half a minute, a million dead rows. With no index, vacuuming the table is a
    // pass over its few live pages, which writers then reuse.
    sqlx::raw_sql("vacuum (skip_locked) signal_rollup_pending, classifier_days_pending")
        .execute(pool)
        .await?;
    Ok(())
}

/// A transaction that can take count deltas: PostgreSQL appends them to the pending tables,
/// SQLite adds them in place.
pub(crate) trait AddCounts {
    async fn add_counts(&mut self, deltas: &Deltas<'_>) -> Result<()>;
}

impl AddCounts for Transaction<'_, Postgres> {
    async fn add_counts<'d>(&mut self, deltas: &Deltas<'d>) -> Result<()> {
        let rows: Vec<_> = deltas.rollup.iter().collect();
        let column = |f: fn(&RollupKey<'d>) -> &'d str| -> Vec<&'d str> {
            rows.iter().map(|(k, _)| f(k)).collect()
        };
        sqlx::query(
            "insert into signal_rollup_pending (grain, day, theme, subject, channel, cause, kind, \
             signals, impact_sum) select * from unnest($1::smallint[], $2::integer[], \
             $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bigint[], \
             $9::float8[])",
        )
        .bind(rows.iter().map(|(k, _)| k.0).collect::<Vec<i16>>())
        .bind(rows.iter().map(|(k, _)| k.1).collect::<Vec<i32>>())
        .bind(column(|k| k.2))
        .bind(column(|k| k.3))
        .bind(column(|k| k.4))
        .bind(column(|k| k.5))
        .bind(column(|k| k.6))
        .bind(rows.iter().map(|(_, v)| v.0).collect::<Vec<i64>>())
        .bind(rows.iter().map(|(_, v)| v.1).collect::<Vec<f64>>())
        .execute(&mut **self)
        .await?;
        let (keys, counts): (Vec<_>, Vec<i64>) = deltas.versions.iter().unzip();
        let (days, versions): (Vec<i32>, Vec<&str>) = keys.into_iter().copied().unzip();
        sqlx::query(
            "insert into classifier_days_pending (day, classifier, signals) \
             select * from unnest($1::integer[], $2::text[], $3::bigint[])",
        )
        .bind(days)
        .bind(versions)
        .bind(counts)
        .execute(&mut **self)
        .await?;
        Ok(())
    }
}

impl AddCounts for Transaction<'_, Sqlite> {
    async fn add_counts(&mut self, deltas: &Deltas<'_>) -> Result<()> {
        let rows: Vec<_> = deltas.rollup.iter().collect();
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::new(
                "insert into signal_rollup (grain, day, theme, subject, channel, cause, kind, \
                 signals, impact_sum) ",
            );
            q.push_values(chunk, |mut b, ((g, day, t, u, ch, ca, k), (n, impact))| {
                b.push_bind(*g)
                    .push_bind(*day)
                    .push_bind(*t)
                    .push_bind(*u)
                    .push_bind(*ch)
                    .push_bind(*ca)
                    .push_bind(*k)
                    .push_bind(*n)
                    .push_bind(*impact);
            });
            q.push(
                " on conflict (grain, day, theme, subject, channel, cause, kind) do update set \
                 signals = signals + excluded.signals, \
                 impact_sum = impact_sum + excluded.impact_sum",
            );
            q.build().execute(&mut **self).await?;
        }
        let days = rollup_days(&deltas.rollup);
        let day_rows: Vec<_> = days.iter().collect();
        for chunk in day_rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::new(
                "insert into signal_rollup_days (grain, day, theme, subject, signals, \
                 impact_sum) ",
            );
            q.push_values(chunk, |mut b, ((g, day, t, u), (n, impact))| {
                b.push_bind(*g)
                    .push_bind(*day)
                    .push_bind(*t)
                    .push_bind(*u)
                    .push_bind(*n)
                    .push_bind(*impact);
            });
            q.push(
                " on conflict (grain, day, theme, subject) do update set \
                 signals = signals + excluded.signals, \
                 impact_sum = impact_sum + excluded.impact_sum",
            );
            q.build().execute(&mut **self).await?;
        }
        let version_rows: Vec<_> = deltas.versions.iter().collect();
        for chunk in version_rows.chunks(ROWS_PER_STATEMENT) {
            let mut q =
                QueryBuilder::new("insert into classifier_days (day, classifier, signals) ");
            q.push_values(chunk, |mut b, ((day, version), n)| {
                b.push_bind(*day).push_bind(*version).push_bind(**n);
            });
            q.push(
                " on conflict (day, classifier) do update set signals = signals + excluded.signals",
            );
            q.build().execute(&mut **self).await?;
        }
        if !deltas.has_negative() {
            return Ok(());
        }
        // Keys a reclassification emptied go (only those it moved counts out of).
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::new(
                "delete from signal_rollup where signals <= 0 and \
                 (grain, day, theme, subject, channel, cause, kind) in (values ",
            );
            let mut list = q.separated(", ");
            for ((g, day, t, u, ch, ca, k), _) in chunk {
                list.push("(")
                    .push_bind_unseparated(*g)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*day);
                for v in [t, u, ch, ca, k] {
                    list.push_unseparated(", ").push_bind_unseparated(*v);
                }
                list.push_unseparated(")");
            }
            q.push(")");
            q.build().execute(&mut **self).await?;
        }
        for chunk in day_rows.chunks(ROWS_PER_STATEMENT) {
            let mut q = QueryBuilder::new(
                "delete from signal_rollup_days where signals <= 0 and \
                 (grain, day, theme, subject) in (values ",
            );
            let mut list = q.separated(", ");
            for ((g, day, t, u), _) in chunk {
                list.push("(")
                    .push_bind_unseparated(*g)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*day)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*t)
                    .push_unseparated(", ")
                    .push_bind_unseparated(*u)
                    .push_unseparated(")");
            }
            q.push(")");
            q.build().execute(&mut **self).await?;
        }
        sqlx::query("delete from classifier_days where signals <= 0")
            .execute(&mut **self)
            .await?;
        Ok(())
    }
}

/// Rollup counts summed over channel, cause and kind.
fn rollup_days<'a>(
    sums: &BTreeMap<RollupKey<'a>, (i64, f64)>,
) -> BTreeMap<RollupDayKey<'a>, (i64, f64)> {
    let mut days: BTreeMap<RollupDayKey, (i64, f64)> = BTreeMap::new();
    for ((g, day, t, u, ..), (n, impact)) in sums {
        let e = days.entry((*g, *day, *t, *u)).or_default();
        e.0 += n;
        e.1 += impact;
    }
    days
}
