//! What `signals.stats` publishes, read from the register: per series and bucket the signals,
//! distinct people and impact ([`Store::bucket_counts`]), and the alert events whose bucket lies
//! in it ([`Store::alert_events_in`]).
//!
//! The register is the truth because its writes are idempotent (a replayed signal adds no row)
//! and a signal is in it before it is on `signals.classified`: a key read after its signal was
//! consumed counts it, and a replay reads the same numbers again.
//!
//! Counted from the signals' own rows, not from the daily rollup: the rollup holds no authors,
//! and the record's count, people and impact come from one statement, so they describe the same
//! signals (on PostgreSQL the rollup lags the register until it is settled, and counts a signal
//! without an impact score as 0 where the mean here leaves it out). Each key is a range of one
//! index (`signal_themes_theme_time`, `signal_subjects_subject_time`, `signals_time`); the keys
//! of one kind go in one statement, as `union all` of one aggregate per key.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use signaal_core::stats::{BucketCounts, Dimension, Series, StatsKey};
use signaal_core::AlertEvent;

use crate::{Pool, Result, Store, StoreError};

/// Keys per statement: three parameters each, far below both backends' limits, and a statement
/// PostgreSQL plans in a few milliseconds.
const KEYS_PER_STATEMENT: usize = 200;

/// One key's aggregate: the key's place in its statement, count, people, scored signals,
/// impact in thousandths (`sum` of nothing is null), newest classification.
type CountRow = (i64, i64, i64, i64, Option<i64>, Option<DateTime<Utc>>);

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The aggregate of each key's subquery. Impact is summed in whole thousandths (each signal's
/// score rounded by the database, in double precision on both backends): a sum of floats depends
/// on the order a plan adds them in, and a replay must write the same record.
const AGGREGATE: &str = "count(*), count(distinct coalesce(s.author, s.id)), count(s.impact), \
     cast(sum(cast(round(cast(s.impact as double precision) * 1000) as bigint)) as bigint), \
     max(s.classified_at)";

impl Store {
    /// Each key's numbers in the register, every key once in the answer (a key with nothing in
    /// it has count 0). One statement per kind of series (and per [`KEYS_PER_STATEMENT`] keys).
    /// Reposts count for nothing, as in the theme rows and the rollups.
    pub async fn bucket_counts(
        &self,
        keys: &[StatsKey],
    ) -> Result<BTreeMap<StatsKey, BucketCounts>> {
        let mut by_dimension: BTreeMap<Dimension, Vec<&StatsKey>> = BTreeMap::new();
        for k in keys {
            by_dimension
                .entry(k.series.dimension())
                .or_default()
                .push(k);
        }
        let mut out = BTreeMap::new();
        for keys in by_dimension.into_values() {
            for chunk in keys.chunks(KEYS_PER_STATEMENT) {
                for row in self.count_chunk(chunk).await? {
                    out.insert(chunk_key(chunk, row.0)?.clone(), counts(row));
                }
            }
        }
        Ok(out)
    }

    async fn count_chunk(&self, keys: &[&StatsKey]) -> Result<Vec<CountRow>> {
        on_pool!(self, pool => {
            let mut q = sqlx::QueryBuilder::new("");
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    q.push(" union all ");
                }
                let (from, to) = (key.bucket.start(), key.bucket.end());
                let (from_ms, to_ms) = (from.timestamp_millis(), to.timestamp_millis());
                q.push(format!("select cast({i} as bigint) as k, {AGGREGATE} "));
                match &key.series {
                    Series::Theme(theme) => {
                        q.push(
                            "from signal_themes t join signals s on s.id = t.signal_id \
                             where t.theme = ",
                        );
                        q.push_bind(theme.as_str());
                        q.push(" and t.occurred_ms >= ").push_bind(from_ms);
                        q.push(" and t.occurred_ms < ").push_bind(to_ms);
                    }
                    Series::ThemeChannel(theme, channel) => {
                        q.push(
                            "from signal_themes t join signals s on s.id = t.signal_id \
                             where t.theme = ",
                        );
                        q.push_bind(theme.as_str());
                        q.push(" and t.occurred_ms >= ").push_bind(from_ms);
                        q.push(" and t.occurred_ms < ").push_bind(to_ms);
                        q.push(" and s.channel = ").push_bind(channel.as_str());
                    }
                    Series::Subject(subject) => {
                        q.push(
                            "from signal_subjects u join signals s on s.id = u.signal_id \
                             where u.subject = ",
                        );
                        q.push_bind(subject.as_str());
                        q.push(" and u.occurred_ms >= ").push_bind(from_ms);
                        q.push(" and u.occurred_ms < ").push_bind(to_ms);
                    }
                    Series::Channel(channel) => {
                        q.push("from signals s where s.occurred_at >= ").push_bind(from);
                        q.push(" and s.occurred_at < ").push_bind(to);
                        q.push(" and s.channel = ").push_bind(channel.as_str());
                        q.push(not_repost(&self.pool));
                    }
                }
            }
            let rows: Vec<CountRow> = q.build_query_as().fetch_all(pool).await?;
            Ok(rows)
        })
    }

    /// The alert events of each key's series (the alerter's name for it, see
    /// [`Series::alert_series`]) whose bucket starts within the key's bucket; keys of subjects
    /// and channels have none. One statement for all keys (per [`KEYS_PER_STATEMENT`]).
    pub async fn alert_events_in(&self, keys: &[StatsKey]) -> Result<Vec<AlertEvent>> {
        let ranges: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = keys
            .iter()
            .filter_map(|k| {
                k.series
                    .alert_series()
                    .map(|s| (s, k.bucket.start(), k.bucket.end()))
            })
            .collect();
        let mut events = Vec::new();
        for chunk in ranges.chunks(KEYS_PER_STATEMENT) {
            let bodies: Vec<(String,)> = on_pool!(self, pool => {
                let mut q = sqlx::QueryBuilder::new("");
                for (i, (series, from, to)) in chunk.iter().enumerate() {
                    if i > 0 {
                        q.push(" union all ");
                    }
                    q.push("select cast(body as text) from alert_events where series = ");
                    q.push_bind(series.as_str());
                    q.push(" and bucket_start >= ").push_bind(*from);
                    q.push(" and bucket_start < ").push_bind(*to);
                }
                q.build_query_as().fetch_all(pool).await?
            });
            for (body,) in bodies {
                events.push(
                    serde_json::from_str(&body).map_err(|source| StoreError::Encode {
                        field: "alert_events.body",
                        source,
                    })?,
                );
            }
        }
        Ok(events)
    }
}

/// Reposts (an X retweet, `meta.retweet_of`) count for nothing; the channel's series reads the
/// signals themselves, so it leaves them out here. (Theme and subject rows are never written for
/// a repost.)
fn not_repost(pool: &Pool) -> &'static str {
    match pool {
        Pool::Postgres(_) => " and not (s.meta ? 'retweet_of')",
        Pool::Sqlite(_) => " and json_type(s.meta, '$.retweet_of') is null",
    }
}

fn chunk_key<'a>(chunk: &[&'a StatsKey], k: i64) -> Result<&'a StatsKey> {
    usize::try_from(k)
        .ok()
        .and_then(|i| chunk.get(i).copied())
        .ok_or_else(|| StoreError::Invalid(format!("the register answered for no key {k}")))
}

fn counts(row: CountRow) -> BucketCounts {
    let (_, n, people, scored, milli, newest) = row;
    BucketCounts {
        count: count(n),
        authors: count(people),
        scored: count(scored),
        impact_milli: milli.unwrap_or(0),
        newest_classified: newest,
    }
}
