//! Reclassification (`signaal reclassify`, issue 14): stored signals read back in pages as they
//! were classified, and a new classification written over the old one in one transaction that
//! moves the signal's theme rows, subject rows, rollup counts and version counts with it.
//!
//! A signal is replaced only while it still carries the version it was read with, so two runs
//! (or a run and a crash and a run) never move its counts twice.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use signaal_core::{Channel, Classification, ClassifiedEnvelope, Signal, SubjectTag, ThemeTag};
use sqlx::types::Json;
use sqlx::QueryBuilder;

use crate::{
    day_number, is_repost, rollup_days, rollup_rows, unique_subjects, unique_themes, Pool, Result,
    RollupKey, Store, StoreError, ROWS_PER_STATEMENT,
};

#[derive(sqlx::FromRow)]
struct StoredRow {
    id: String,
    channel: String,
    source: String,
    source_id: String,
    occurred_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    classified_at: DateTime<Utc>,
    author: Option<String>,
    subject: Option<String>,
    thread_id: Option<String>,
    text: String,
    meta: Json<Map<String, Value>>,
    themes: Json<Vec<ThemeTag>>,
    subjects: Json<Vec<SubjectTag>>,
    cause: String,
    kind: String,
    lang: String,
    sentiment: f32,
    escalation: Json<Vec<String>>,
    classifier: String,
    impact: Option<f32>,
}

const STORED_COLUMNS: &str = "id, channel, source, source_id, occurred_at, received_at, \
     classified_at, author, subject, thread_id, text, meta, themes, subjects, cause, kind, lang, \
     sentiment, escalation, classifier, impact";

fn word<T: serde::de::DeserializeOwned>(id: &str, field: &str, value: &str) -> Result<T> {
    serde_json::from_value(Value::String(value.to_owned())).map_err(|_| {
        StoreError::Invalid(format!(
            "stored signal {id} has {field} {value:?}, which this version does not know"
        ))
    })
}

impl StoredRow {
    fn envelope(self) -> Result<ClassifiedEnvelope> {
        let channel: Channel = self.channel.parse().map_err(|_| {
            StoreError::Invalid(format!(
                "stored signal {} has channel {:?}, which this version does not know",
                self.id, self.channel
            ))
        })?;
        let classification = Classification {
            themes: self.themes.0,
            subjects: self.subjects.0,
            cause: word(&self.id, "cause", &self.cause)?,
            kind: word(&self.id, "kind", &self.kind)?,
            lang: self.lang,
            sentiment: self.sentiment,
            escalation: self.escalation.0,
            impact: self.impact,
        };
        let signal = Signal {
            id: self.id,
            channel,
            source: self.source,
            source_id: self.source_id,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            author: self.author,
            text: self.text,
            subject: self.subject,
            thread_id: self.thread_id,
            meta: self.meta.0,
        };
        let mut env = ClassifiedEnvelope::new(signal, classification, self.classifier);
        env.classified_at = self.classified_at;
        Ok(env)
    }
}

/// Counts to add per rollup key, and per day and classifier version.
type Deltas<'a> = (
    BTreeMap<RollupKey<'a>, (i64, f64)>,
    BTreeMap<(i32, &'a str), i64>,
);

/// Adds up what replacing `old` by `new` does to the rollup and the version counts.
fn deltas<'a>(pairs: &[&'a (ClassifiedEnvelope, ClassifiedEnvelope)]) -> Deltas<'a> {
    let mut rollup: BTreeMap<RollupKey, (i64, f64)> = BTreeMap::new();
    let mut versions: BTreeMap<(i32, &str), i64> = BTreeMap::new();
    for (old, new) in pairs.iter().map(|p| (&p.0, &p.1)) {
        for (env, sign) in [(old, -1i64), (new, 1)] {
            for r in rollup_rows(env) {
                let e = rollup
                    .entry((
                        r.grain, r.day, r.theme, r.subject, r.channel, r.cause, r.kind,
                    ))
                    .or_default();
                e.0 += sign;
                e.1 += sign as f64 * r.impact;
            }
            *versions
                .entry((day_number(env.signal.occurred_at), env.classifier.as_str()))
                .or_default() += sign;
        }
    }
    rollup.retain(|_, (n, impact)| *n != 0 || impact.abs() > 1e-9);
    versions.retain(|_, n| *n != 0);
    (rollup, versions)
}

impl Store {
    /// Stored signals that occurred at or after `since`, oldest first, after the keyset
    /// `after` (`occurred_at`, `id` of the last one of the previous page), at most `limit`,
    /// each as it was classified (signals stored before 0007 carry their subjects' ids only).
    pub async fn stored_signals(
        &self,
        since: DateTime<Utc>,
        after: Option<&(DateTime<Utc>, String)>,
        limit: usize,
    ) -> Result<Vec<ClassifiedEnvelope>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<StoredRow> = on_pool!(self, pool => {
            let mut q = QueryBuilder::new(format!("select {STORED_COLUMNS} from signals where "));
            match after {
                Some((t, id)) => q
                    .push("(occurred_at > ")
                    .push_bind(*t)
                    .push(" or (occurred_at = ")
                    .push_bind(*t)
                    .push(" and id > ")
                    .push_bind(id.as_str())
                    .push(")) and occurred_at >= ")
                    .push_bind(since),
                None => q.push("occurred_at >= ").push_bind(since),
            };
            q.push(" order by occurred_at, id limit ").push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(StoredRow::envelope).collect()
    }

    /// How many signals occurred at or after `since` (from the version counts, without reading
    /// the signals): the size of a reclassification.
    pub async fn signals_since(&self, since: DateTime<Utc>) -> Result<u64> {
        let n: Option<i64> = on_pool!(self, pool => {
            sqlx::query_scalar(
                "select cast(sum(signals) as bigint) from classifier_days where day >= $1",
            )
            .bind(day_number(since))
            .fetch_one(pool)
            .await?
        });
        Ok(n.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    /// Writes each pair's new classification over its old one, in one transaction: the
    /// signal's row, its theme and subject rows, the rollup and the version counts. A signal
    /// no longer carrying the old version (another run got there first) is left alone. Returns
    /// how many were replaced.
    pub async fn replace_classifications(
        &self,
        pairs: &[(ClassifiedEnvelope, ClassifiedEnvelope)],
    ) -> Result<u64> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(StoreError::Unavailable)?;
            let mut replaced = Vec::with_capacity(pairs.len());
            for pair in pairs {
                let (old, new) = (&pair.0, &pair.1);
                let c = &new.classification;
                let done = sqlx::query(
                    "update signals set themes = $1, subjects = $2, cause = $3, kind = $4, \
                     lang = $5, sentiment = $6, escalation = $7, impact = $8, classifier = $9, \
                     classified_at = $10 where id = $11 and classifier = $12",
                )
                .bind(Json(&c.themes))
                .bind(Json(&c.subjects))
                .bind(c.cause.as_str())
                .bind(c.kind.as_str())
                .bind(&c.lang)
                .bind(c.sentiment)
                .bind(Json(&c.escalation))
                .bind(c.impact)
                .bind(&new.classifier)
                .bind(new.classified_at)
                .bind(&old.signal.id)
                .bind(&old.classifier)
                .execute(&mut *tx)
                .await?;
                if done.rows_affected() == 1 {
                    replaced.push(pair);
                }
            }
            // The old theme and subject rows, found through their (key, time) indexes.
            let themes: Vec<(&str, i64, &str)> = replaced
                .iter()
                .filter(|p| !is_repost(&p.0.signal))
                .flat_map(|p| {
                    let s = &p.0.signal;
                    unique_themes(&p.0.classification).map(move |t| {
                        (t.id.as_str(), s.occurred_at.timestamp_millis(), s.id.as_str())
                    })
                })
                .collect();
            for chunk in themes.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "delete from signal_themes where (theme, occurred_ms, signal_id) in (values ",
                );
                let mut list = q.separated(", ");
                for (theme, ms, id) in chunk {
                    list.push("(")
                        .push_bind_unseparated(*theme)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*ms)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*id)
                        .push_unseparated(")");
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            let subjects: Vec<(&str, i64, &str)> = replaced
                .iter()
                .filter(|p| !is_repost(&p.0.signal))
                .flat_map(|p| {
                    let s = &p.0.signal;
                    unique_subjects(&p.0.classification)
                        .map(move |u| (u, s.occurred_at.timestamp_millis(), s.id.as_str()))
                })
                .collect();
            for chunk in subjects.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "delete from signal_subjects where (subject, occurred_ms, signal_id) in (values ",
                );
                let mut list = q.separated(", ");
                for (subject, ms, id) in chunk {
                    list.push("(")
                        .push_bind_unseparated(*subject)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*ms)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*id)
                        .push_unseparated(")");
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            // The new ones.
            let tags: Vec<(&str, &str, f32, i64)> = replaced
                .iter()
                .filter(|p| !is_repost(&p.1.signal))
                .flat_map(|p| {
                    let s = &p.1.signal;
                    unique_themes(&p.1.classification).map(move |t| {
                        (s.id.as_str(), t.id.as_str(), t.score, s.occurred_at.timestamp_millis())
                    })
                })
                .collect();
            for chunk in tags.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "insert into signal_themes (signal_id, theme, score, occurred_ms) ",
                );
                q.push_values(chunk, |mut b, (id, theme, score, ms)| {
                    b.push_bind(*id).push_bind(*theme).push_bind(*score).push_bind(*ms);
                });
                q.build().execute(&mut *tx).await?;
            }
            let subject_rows: Vec<(&str, &str, i64)> = replaced
                .iter()
                .filter(|p| !is_repost(&p.1.signal))
                .flat_map(|p| {
                    let s = &p.1.signal;
                    unique_subjects(&p.1.classification)
                        .map(move |u| (s.id.as_str(), u, s.occurred_at.timestamp_millis()))
                })
                .collect();
            for chunk in subject_rows.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "insert into signal_subjects (signal_id, subject, occurred_ms) ",
                );
                q.push_values(chunk, |mut b, (id, subject, ms)| {
                    b.push_bind(*id).push_bind(*subject).push_bind(*ms);
                });
                q.build().execute(&mut *tx).await?;
            }
            // Counts move from the old keys to the new, in key order (one lock order for
            // concurrent writers); keys left at zero go.
            let (rollup, versions) = deltas(&replaced);
            let rollup: Vec<_> = rollup.into_iter().collect();
            for chunk in rollup.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "insert into signal_rollup as r (grain, day, theme, subject, channel, cause, \
                     kind, signals, impact_sum) ",
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
                    " on conflict (grain, day, theme, subject, channel, cause, kind) do update \
                     set signals = r.signals + excluded.signals, \
                     impact_sum = r.impact_sum + excluded.impact_sum",
                );
                q.build().execute(&mut *tx).await?;
                let mut q = QueryBuilder::new(
                    "delete from signal_rollup where signals <= 0 and \
                     (grain, day, theme, subject, channel, cause, kind) in (values ",
                );
                let mut list = q.separated(", ");
                for ((g, day, t, u, ch, ca, k), _) in chunk {
                    list.push("(")
                        .push_bind_unseparated(*g)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*day)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*t)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*u)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*ch)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*ca)
                        .push_unseparated(", ")
                        .push_bind_unseparated(*k)
                        .push_unseparated(")");
                }
                q.push(")");
                q.build().execute(&mut *tx).await?;
            }
            let days = rollup_days(&rollup.iter().map(|(k, v)| (*k, *v)).collect());
            let days: Vec<_> = days
                .into_iter()
                .filter(|(_, (n, impact))| *n != 0 || impact.abs() > 1e-9)
                .collect();
            for chunk in days.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "insert into signal_rollup_days as d (grain, day, theme, subject, signals, \
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
                    " on conflict (grain, day, theme, subject) do update \
                     set signals = d.signals + excluded.signals, \
                     impact_sum = d.impact_sum + excluded.impact_sum",
                );
                q.build().execute(&mut *tx).await?;
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
                q.build().execute(&mut *tx).await?;
            }
            let versions: Vec<_> = versions.into_iter().collect();
            for chunk in versions.chunks(ROWS_PER_STATEMENT) {
                let mut q = QueryBuilder::new(
                    "insert into classifier_days as v (day, classifier, signals) ",
                );
                q.push_values(chunk, |mut b, ((day, version), n)| {
                    b.push_bind(*day).push_bind(*version).push_bind(*n);
                });
                q.push(
                    " on conflict (day, classifier) do update \
                     set signals = v.signals + excluded.signals",
                );
                q.build().execute(&mut *tx).await?;
            }
            sqlx::query("delete from classifier_days where signals <= 0")
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(replaced.len() as u64)
        })
    }
}
