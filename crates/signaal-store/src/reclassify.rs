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
    day_number, is_repost, rollup_rows, unique_subjects, unique_themes, AddCounts, Deltas, Pool,
    Result, Store, StoreError, ROWS_PER_STATEMENT,
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

/// Adds up what replacing `old` by `new` does to the rollup and the version counts.
fn deltas<'a>(pairs: &[&'a (ClassifiedEnvelope, ClassifiedEnvelope)]) -> Deltas<'a> {
    let mut d = Deltas {
        rollup: BTreeMap::new(),
        versions: BTreeMap::new(),
    };
    for (old, new) in pairs.iter().map(|p| (&p.0, &p.1)) {
        for (env, sign) in [(old, -1i64), (new, 1)] {
            for r in rollup_rows(env) {
                let e = d
                    .rollup
                    .entry((
                        r.grain, r.day, r.theme, r.subject, r.channel, r.cause, r.kind,
                    ))
                    .or_default();
                e.0 += sign;
                e.1 += sign as f64 * r.impact;
            }
            *d.versions
                .entry((day_number(env.signal.occurred_at), env.classifier.as_str()))
                .or_default() += sign;
        }
    }
    d.retain_nonzero();
    d
}

/// `delete from TABLE where (COLUMN, occurred_ms, signal_id) in (values …)` for `rows`: a
/// signal's theme or subject rows, found through their (key, time) index.
fn delete_tag_rows<'a, DB: sqlx::Database>(
    table: &str,
    column: &str,
    rows: &[(&'a str, i64, &'a str)],
) -> QueryBuilder<'a, DB>
where
    i64: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
    &'a str: sqlx::Encode<'a, DB> + sqlx::Type<DB>,
{
    let mut q = QueryBuilder::new(format!(
        "delete from {table} where ({column}, occurred_ms, signal_id) in (values "
    ));
    let mut list = q.separated(", ");
    for (key, ms, id) in rows {
        list.push("(")
            .push_bind_unseparated(*key)
            .push_unseparated(", ")
            .push_bind_unseparated(*ms)
            .push_unseparated(", ")
            .push_bind_unseparated(*id)
            .push_unseparated(")");
    }
    q.push(")");
    q
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
            // A signal an analyst corrected keeps the correction.
            q.push(" and not exists (select 1 from labels l where l.signal_id = signals.id)");
            q.push(" order by occurred_at, id limit ").push_bind(limit);
            q.build_query_as().fetch_all(pool).await?
        });
        rows.into_iter().map(StoredRow::envelope).collect()
    }

    /// One stored signal as it was classified, if the register has it.
    pub async fn stored_signal(&self, id: &str) -> Result<Option<ClassifiedEnvelope>> {
        let row: Option<StoredRow> = on_pool!(self, pool => {
            sqlx::query_as(&format!("select {STORED_COLUMNS} from signals where id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        row.map(StoredRow::envelope).transpose()
    }

    /// How many signals occurred at or after `since` (from the version counts, without reading
    /// the signals): the size of a reclassification.
    pub async fn signals_since(&self, since: DateTime<Utc>) -> Result<u64> {
        self.settle_counts().await?;
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
        self.replace_and_label(pairs, None).await
    }

    /// [`Store::replace_classifications`], and with `label` that label's row, in the same
    /// transaction (written only when its signal was replaced).
    pub(crate) async fn replace_and_label(
        &self,
        pairs: &[(ClassifiedEnvelope, ClassifiedEnvelope)],
        label: Option<&crate::labels::Label>,
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
                delete_tag_rows("signal_themes", "theme", chunk)
                    .build()
                    .execute(&mut *tx)
                    .await?;
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
                delete_tag_rows("signal_subjects", "subject", chunk)
                    .build()
                    .execute(&mut *tx)
                    .await?;
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
            // Counts move from the old keys to the new (settled like a write's on PostgreSQL);
            // keys left at zero go.
            tx.add_counts(&deltas(&replaced)).await?;
            if let Some(l) = label.filter(|_| !replaced.is_empty()) {
                sqlx::query(crate::labels::UPSERT_LABEL)
                    .bind(&l.signal_id)
                    .bind(Json(&l.themes))
                    .bind(l.kind.as_str())
                    .bind(l.cause.as_str())
                    .bind(&l.analyst)
                    .bind(l.note.as_deref())
                    .bind(l.labelled_at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(replaced.len() as u64)
        })
    }
}
