//! The signal: one thing a customer (or an employee) said, through one channel.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The door a signal came in through. Serialised lowercase; part of the public contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Email,
    Phone,
    Twitter,
    Facebook,
    /// Bottlenecks reported by employees: a signal is a signal, whoever raises it.
    Internal,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Email,
        Channel::Phone,
        Channel::Twitter,
        Channel::Facebook,
        Channel::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::Twitter => "twitter",
            Channel::Facebook => "facebook",
            Channel::Internal => "internal",
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel `{s}` (expected one of email, phone, twitter, facebook, internal)"))
    }
}

/// The deterministic id of a signal: a replay of the same source item gives the same id, so the
/// store and downstream consumers collapse duplicates. Hex of the first 16 bytes of
/// SHA-256(channel, NUL, source id).
pub fn signal_id(channel: Channel, source_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(source_id.as_bytes());
    let digest = hasher.finalize();
    hex::encode(&digest[..16])
}

/// A signal as a source produced it, before classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `signal_id(channel, source_id)`.
    pub id: String,
    pub channel: Channel,
    /// Name of the configured source that produced it (a mailbox, an export folder, a query).
    pub source: String,
    /// The source's own id: Message-ID, call id, tweet id, post id.
    pub source_id: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// Who raised it, as the channel names them (address, phone number, handle). Pseudonymised
    /// downstream of the classifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// Channel-specific fields (call wait time, reach, attachments, …).
    #[serde(default)]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

impl Signal {
    /// A signal with its id derived from channel and source id; `received_at` is now.
    pub fn new(
        channel: Channel,
        source: impl Into<String>,
        source_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
        text: impl Into<String>,
    ) -> Signal {
        let source_id = source_id.into();
        Signal {
            id: signal_id(channel, &source_id),
            channel,
            source: source.into(),
            source_id,
            occurred_at,
            received_at: Utc::now(),
            author: None,
            text: text.into(),
            subject: None,
            thread_id: None,
            meta: serde_json::Map::new(),
        }
    }

    /// Shortens a text over [`MAX_TEXT_BYTES`] or a subject over [`MAX_SUBJECT_BYTES`] (at a
    /// character boundary) and records the original sizes in `meta.truncated`
    /// (`{"text": bytes, "subject": bytes}`). Returns whether anything was cut. No customer
    /// writes 64 KiB; pasted logs and mail loops do, and one Kafka message must hold the signal
    /// with its classification.
    pub fn fit(&mut self) -> bool {
        let mut cut = serde_json::Map::new();
        if let Some(original) = truncate(&mut self.text, MAX_TEXT_BYTES) {
            cut.insert("text".into(), original.into());
        }
        if let Some(original) = self
            .subject
            .as_mut()
            .and_then(|s| truncate(s, MAX_SUBJECT_BYTES))
        {
            cut.insert("subject".into(), original.into());
        }
        if cut.is_empty() {
            return false;
        }
        self.meta
            .insert("truncated".into(), serde_json::Value::Object(cut));
        true
    }
}

/// Longest text a signal carries (see [`Signal::fit`]).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest subject a signal carries.
pub const MAX_SUBJECT_BYTES: usize = 2 * 1024;

/// Cuts `s` to at most `max` bytes at a character boundary; the original length when cut.
pub fn truncate(s: &mut String, max: usize) -> Option<usize> {
    if s.len() <= max {
        return None;
    }
    let original = s.len();
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    Some(original)
}

/// A theme whose count in a time window passed the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Deterministic from theme and window, so a replayed alert collapses.
    pub id: String,
    pub theme: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub count: u64,
    pub threshold: u64,
    pub raised_at: DateTime<Utc>,
    /// Up to ten ids of signals that made the count.
    pub sample_signal_ids: Vec<String>,
}

impl Alert {
    pub fn id_for(theme: &str, window_start: DateTime<Utc>) -> String {
        let mut hasher = Sha256::new();
        hasher.update(theme.as_bytes());
        hasher.update([0u8]);
        hasher.update(window_start.timestamp().to_be_bytes());
        hex::encode(&hasher.finalize()[..16])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_channel_scoped() {
        let a = signal_id(Channel::Email, "<abc@example.nl>");
        assert_eq!(a, signal_id(Channel::Email, "<abc@example.nl>"));
        assert_ne!(a, signal_id(Channel::Phone, "<abc@example.nl>"));
        assert_ne!(a, signal_id(Channel::Email, "<abd@example.nl>"));
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn channel_round_trips_through_text() {
        for c in Channel::ALL {
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).ok(), Some(format!("\"{c}\"")));
        }
        assert!("fax".parse::<Channel>().is_err());
    }

    #[test]
    fn fit_cuts_long_text_and_subject_at_a_character_boundary_and_says_so() {
        let now = Utc::now();
        let mut short = Signal::new(Channel::Email, "m", "<a@b>", now, "kort");
        assert!(!short.fit());
        assert!(short.meta.is_empty());

        // 'é' is two bytes: the limit falls inside one, so the cut moves back a byte.
        let text = format!("a{}", "é".repeat(MAX_TEXT_BYTES));
        let mut long = Signal::new(Channel::Email, "m", "<a@b>", now, text.clone());
        long.subject = Some("x".repeat(MAX_SUBJECT_BYTES + 1));
        assert!(long.fit());
        assert_eq!(long.text.len(), MAX_TEXT_BYTES - 1);
        assert!(text.starts_with(&long.text));
        assert_eq!(
            long.subject.as_ref().map(String::len),
            Some(MAX_SUBJECT_BYTES)
        );
        assert_eq!(
            long.meta.get("truncated"),
            Some(&serde_json::json!({"text": text.len(), "subject": MAX_SUBJECT_BYTES + 1}))
        );
    }
}
