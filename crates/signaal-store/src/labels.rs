//! Analysts' corrections (issue 16): a person says what a signal's themes, kind and cause are.
//!
//! [`Store::save_label`] writes the label and the corrected classification over the signal's
//! stored one in one transaction — its theme rows, rollups and version counts move with it, as a
//! reclassification moves them — so every report counts the signal as corrected at once.
//! `signaal reclassify` passes labelled signals over ([`Store::stored_signals`]), so a new
//! taxonomy or model never overwrites a correction. Labelling again replaces the label.

use chrono::{DateTime, Utc};
use serde::Serialize;
use signaal_core::{Cause, ClassifiedEnvelope, Evidence, Kind, ThemeTag};

use crate::{Pool, Result, Store, StoreError};

/// What an analyst said about one signal.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    pub signal_id: String,
    /// Theme ids, in the order given (may be empty: no theme).
    pub themes: Vec<String>,
    pub kind: Kind,
    pub cause: Cause,
    pub analyst: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub labelled_at: DateTime<Utc>,
}

pub(crate) const UPSERT_LABEL: &str = "insert into labels (signal_id, themes, kind, cause, \
     analyst, note, labelled_at) values ($1, $2, $3, $4, $5, $6, $7) on conflict (signal_id) do \
     update set themes = excluded.themes, kind = excluded.kind, cause = excluded.cause, \
     analyst = excluded.analyst, note = excluded.note, labelled_at = excluded.labelled_at";

const LABEL_COLUMNS: &str =
    "signal_id, cast(themes as text), kind, cause, analyst, note, labelled_at";

type LabelRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
);

fn label_of(row: LabelRow) -> Result<Label> {
    let (signal_id, themes, kind, cause, analyst, note, labelled_at) = row;
    let bad = |what: &str, v: &str| {
        StoreError::Invalid(format!(
            "label of {signal_id} has {what} {v:?}, which this version does not know"
        ))
    };
    let themes: Vec<String> = serde_json::from_str(&themes).map_err(|_| bad("themes", &themes))?;
    let kind: Kind = serde_json::from_value(serde_json::Value::String(kind.clone()))
        .map_err(|_| bad("kind", &kind))?;
    let cause: Cause = serde_json::from_value(serde_json::Value::String(cause.clone()))
        .map_err(|_| bad("cause", &cause))?;
    Ok(Label {
        signal_id,
        themes,
        kind,
        cause,
        analyst,
        note,
        labelled_at,
    })
}

/// The cause that follows from themes (DOMAIN.md): only staff conduct is human.
pub fn cause_of(themes: &[String]) -> Cause {
    Cause::of_themes(themes.iter().map(String::as_str))
}

/// The stored classification with the label's themes, kind and cause: a theme the classifier
/// had keeps its evidence; one only the analyst named is evidenced by the label itself.
pub fn corrected(old: &ClassifiedEnvelope, label: &Label) -> ClassifiedEnvelope {
    let mut new = old.clone();
    let c = &mut new.classification;
    c.themes = label
        .themes
        .iter()
        .map(|id| {
            old.classification
                .themes
                .iter()
                .find(|t| &t.id == id)
                .cloned()
                .unwrap_or_else(|| ThemeTag {
                    id: id.clone(),
                    score: 1.0,
                    evidence: vec![Evidence::metadata("label", &label.analyst)],
                })
        })
        .collect();
    c.kind = label.kind;
    c.cause = label.cause;
    new
}

impl Store {
    /// Stores `label` and writes the corrected classification over the signal's stored one, in
    /// one transaction. `None` when the register has no such signal. Retried by the caller if
    /// another writer (a reclassification) changed the signal in between.
    pub async fn save_label(&self, label: &Label) -> Result<Option<Label>> {
        if label.analyst.trim().is_empty() || label.analyst.len() > 4096 {
            return Err(StoreError::Invalid(
                "the analyst's name must have 1–4096 bytes".into(),
            ));
        }
        if label
            .note
            .as_ref()
            .is_some_and(|n| n.len() > 4096 || n.contains('\0'))
            || label.analyst.contains('\0')
        {
            return Err(StoreError::Invalid(
                "a label's note must have at most 4096 bytes and no NUL".into(),
            ));
        }
        // Stored to the microsecond (PostgreSQL's precision), so what is returned is what is read.
        let mut label = label.clone();
        label.labelled_at = DateTime::from_timestamp_micros(label.labelled_at.timestamp_micros())
            .unwrap_or(label.labelled_at);
        let label = &label;
        for _ in 0..3 {
            let Some(old) = self.stored_signal(&label.signal_id).await? else {
                return Ok(None);
            };
            let new = corrected(&old, label);
            if self.replace_and_label(&[(old, new)], Some(label)).await? == 1 {
                return Ok(Some(label.clone()));
            }
        }
        Err(StoreError::Invalid(format!(
            "signal {} kept changing while it was labelled; try again",
            label.signal_id
        )))
    }

    /// The label of one signal, if it has one.
    pub async fn label(&self, signal_id: &str) -> Result<Option<Label>> {
        let row: Option<LabelRow> = on_pool!(self, pool => {
            sqlx::query_as(&format!("select {LABEL_COLUMNS} from labels where signal_id = $1"))
                .bind(signal_id)
                .fetch_optional(pool)
                .await?
        });
        row.map(label_of).transpose()
    }

    /// Every label with its signal as stored (the corrected classification), oldest label
    /// first: what `signaal eval --register` scores and `signaal train --register` learns from.
    pub async fn labelled_signals(&self) -> Result<Vec<(ClassifiedEnvelope, Label)>> {
        let rows: Vec<LabelRow> = on_pool!(self, pool => {
            sqlx::query_as(&format!(
                "select {LABEL_COLUMNS} from labels order by labelled_at, signal_id"
            ))
            .fetch_all(pool)
            .await?
        });
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let label = label_of(row)?;
            if let Some(env) = self.stored_signal(&label.signal_id).await? {
                out.push((env, label));
            }
        }
        Ok(out)
    }
}
