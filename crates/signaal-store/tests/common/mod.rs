//! Shared by the store's integration tests: PostgreSQL databases of their own, and signals.
#![allow(dead_code)] // each test crate uses a part

use chrono::{DateTime, TimeZone, Utc};
use signaal_core::{Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, ThemeTag};

pub type BoxError = Box<dyn std::error::Error>;

/// A database created for one test next to `SIGNAAL_TEST_DATABASE_URL`; `drop` removes it.
pub struct TempDb {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl TempDb {
    pub async fn create(tag: &str) -> Result<TempDb, BoxError> {
        let admin = std::env::var("SIGNAAL_TEST_DATABASE_URL").map_err(|_| {
            "SIGNAAL_TEST_DATABASE_URL is not set: run the suite through scripts/test, which starts PostgreSQL"
        })?;
        let name = format!(
            "signaal_{tag}_{}_{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        );
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or("database url has no database name")?;
        let url = format!("{base}/{name}");
        let admin = sqlx::PgPool::connect(&admin).await?;
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await?;
        Ok(TempDb { admin, name, url })
    }

    pub async fn drop(self) -> Result<(), BoxError> {
        sqlx::query(&format!(
            "drop database if exists {} with (force)",
            self.name
        ))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}

pub fn minute(m: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + m * 60, 0)
        .single()
        .unwrap_or_default()
}

/// A classified signal of `channel` at `minute`, tagged with `themes`.
pub fn envelope(
    channel: Channel,
    source_id: &str,
    at: i64,
    author: Option<&str>,
    themes: &[&str],
) -> ClassifiedEnvelope {
    let mut s = Signal::new(
        channel,
        "inbox",
        source_id,
        minute(at),
        "De brief snapt niemand — “ÿ” blijft ÿ",
    );
    s.author = author.map(str::to_string);
    s.subject = Some("WOZ".into());
    s.meta.insert("to".into(), "klachten@example.nl".into());
    let c = Classification {
        themes: themes
            .iter()
            .map(|id| ThemeTag {
                id: id.to_string(),
                score: 0.5,
                evidence: vec![],
            })
            .collect(),
        subjects: vec![],
        cause: Cause::System,
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.4,
        escalation: vec!["ombudsman".into()],
        impact: None,
    };
    ClassifiedEnvelope::new(s, c, "test")
}

/// An hour after [`minute`]`(0)`.
pub fn hour(h: i64) -> DateTime<Utc> {
    minute(h * 60)
}

/// An alert event of `series` whose alert started at `hour(start)`, in `state` for the bucket
/// `hour(bucket)`, with deterministic ids as the alerter makes them.
pub fn alert_event(
    series: &str,
    start: i64,
    state: signaal_core::AlertState,
    bucket: i64,
) -> signaal_core::AlertEvent {
    use signaal_core::{AlertEvent, Count, Severity};
    let alert_id = AlertEvent::alert_id_for(series, hour(start));
    AlertEvent {
        id: AlertEvent::event_id_for(&alert_id, state, hour(bucket)),
        alert_id,
        series: series.into(),
        theme: series.split('/').next().unwrap_or(series).into(),
        channel: series.split_once('/').map(|(_, c)| c.to_string()),
        state,
        severity: Severity::Warning,
        alert_start: hour(start),
        bucket_start: hour(bucket),
        bucket_end: hour(bucket + 1),
        observed: 12,
        expected: 2.25,
        upper: Some(7.0),
        p_value: 1.5e-7,
        method: "farrington".into(),
        peak: 12,
        total: 12 + u64::try_from(bucket - start).unwrap_or(0),
        channels: [("twitter".to_string(), 9), ("email".to_string(), 3)].into(),
        top_subjects: vec![Count {
            value: "WOZ".into(),
            count: 4,
        }],
        top_words: vec![Count {
            value: "inloggen".into(),
            count: 7,
        }],
        sample_signal_ids: vec!["0123456789abcdef0123456789abcdef".into()],
        emitted_at: hour(bucket + 1) + chrono::Duration::seconds(5),
    }
}
