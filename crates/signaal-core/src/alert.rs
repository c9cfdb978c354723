//! A spike alert's life on `signals.alerts` (schema version 2): one [`AlertEvent`] per change.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened to the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Over the threshold, not yet for long enough to fire.
    Pending,
    /// Firing: notify.
    Firing,
    /// Still firing, with this bucket's numbers (no human notification).
    Update,
    /// Still firing after `repeat_interval`: notify again.
    Repeat,
    /// Back below the recovery level for `keep_firing_for`.
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Update => "update",
            AlertState::Repeat => "repeat",
            AlertState::Resolved => "resolved",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    /// At least twice the threshold.
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// A value and how often it occurred (top subjects, top words).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub value: String,
    pub count: u64,
}

/// One change of one spike alert. The alert's id is deterministic from its series and its first
/// bucket, the event's from the alert, the state and the bucket: a replay yields the same ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertEvent {
    pub id: String,
    pub alert_id: String,
    /// The series: the theme, or `theme/channel` when series are split by channel.
    pub series: String,
    pub theme: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub state: AlertState,
    pub severity: Severity,
    /// The alert's first bucket.
    pub alert_start: DateTime<Utc>,
    /// The bucket this event concerns.
    pub bucket_start: DateTime<Utc>,
    pub bucket_end: DateTime<Utc>,
    /// Signals in the bucket, the expected count, and the threshold (absent when none could be
    /// set: no history at all).
    pub observed: u64,
    pub expected: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<f64>,
    /// P(Y >= observed) under the expected count.
    pub p_value: f64,
    /// The test that decided: `farrington`, `window`, `cusum`, `ears_c2`, `ears_c3`, ….
    pub method: String,
    /// The largest bucket and the sum since the alert started.
    pub peak: u64,
    pub total: u64,
    /// Signals since the alert started, per channel.
    pub channels: BTreeMap<String, u64>,
    pub top_subjects: Vec<Count>,
    pub top_words: Vec<Count>,
    /// Up to ten ids of signals that made the count.
    pub sample_signal_ids: Vec<String>,
    pub emitted_at: DateTime<Utc>,
}

fn hash16(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for p in parts {
        hasher.update(p);
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

impl AlertEvent {
    /// The alert's id: series + first bucket.
    pub fn alert_id_for(series: &str, alert_start: DateTime<Utc>) -> String {
        hash16(&[
            b"alert",
            series.as_bytes(),
            &alert_start.timestamp().to_be_bytes(),
        ])
    }

    /// The event's id: alert + state + bucket.
    pub fn event_id_for(alert_id: &str, state: AlertState, bucket_start: DateTime<Utc>) -> String {
        hash16(&[
            alert_id.as_bytes(),
            state.as_str().as_bytes(),
            &bucket_start.timestamp().to_be_bytes(),
        ])
    }

    /// One line a person reads: "digital_service: 42 signals 10:00–11:00 UTC, expected 3.1
    /// (threshold 9), firing".
    pub fn summary(&self) -> String {
        let upper = self
            .upper
            .map(|u| format!(", threshold {u:.0}"))
            .unwrap_or_default();
        format!(
            "{}: {} — {} signals {}–{} UTC, expected {:.1}{upper}, p = {:.2e} ({}); {} since {} UTC",
            self.series,
            self.state.as_str(),
            self.observed,
            self.bucket_start.format("%Y-%m-%d %H:%M"),
            self.bucket_end.format("%H:%M"),
            self.expected,
            self.p_value,
            self.method,
            self.total,
            self.alert_start.format("%Y-%m-%d %H:%M"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let t = Utc
            .timestamp_opt(1_800_000_000, 0)
            .single()
            .unwrap_or_default();
        let a = AlertEvent::alert_id_for("digital_service", t);
        assert_eq!(a, AlertEvent::alert_id_for("digital_service", t));
        assert_ne!(a, AlertEvent::alert_id_for("digital_service/twitter", t));
        assert_eq!(a.len(), 32);
        let f = AlertEvent::event_id_for(&a, AlertState::Firing, t);
        assert_ne!(f, AlertEvent::event_id_for(&a, AlertState::Resolved, t));
        assert_ne!(
            f,
            AlertEvent::event_id_for(&a, AlertState::Firing, t + chrono::Duration::hours(1))
        );
    }
}
