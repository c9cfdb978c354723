//! The signal: one thing a customer (or an employee) said, through one channel.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::envelope::cut_for_error;

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
    /// Channel-specific fields (call wait time, reach, attachments, …). A duplicate key at any
    /// depth is refused when reading (see [`crate::strict`]).
    #[serde(default, deserialize_with = "crate::strict::map")]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

impl Signal {
    /// A signal with its id derived from channel and source id; `received_at` is now.
    /// A repost of someone else's words (an X retweet, marked `meta.retweet_of`): its reach
    /// belongs to the original, and it adds no customer to a count.
    pub fn is_repost(&self) -> bool {
        self.meta.contains_key("retweet_of")
    }

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

    /// The check every signal passes before it is stored, whoever produced it; PostgreSQL and
    /// Kafka refuse what it refuses or cleans, and a refused write would stop the classifier
    /// at that record. In this order:
    ///
    /// 1. `id` must be `signal_id(channel, source_id)` on the `source_id` as received
    ///    ([`Invalid::Id`]).
    /// 2. `source`, `source_id`, `author` and `thread_id` within [`MAX_SOURCE_BYTES`],
    ///    [`MAX_SOURCE_ID_BYTES`], [`MAX_AUTHOR_BYTES`], [`MAX_THREAD_ID_BYTES`]
    ///    ([`Invalid::TooLong`]). Text and subject are [`Signal::fit`]'s business.
    /// 3. `occurred_at` and `received_at` in [1900-01-01, 2200-01-01) UTC
    ///    ([`Invalid::OutOfRange`]).
    /// 4. NUL characters (U+0000, which PostgreSQL's `text` and `jsonb` cannot hold) removed
    ///    from text, subject, source, source_id, author, thread_id, and from `meta`'s keys and
    ///    string values at any depth. The id stays as received, so a replay of the same record
    ///    still collapses onto the same row. When removing NULs makes a `meta` key equal to
    ///    another key of the same object, the key that had no NUL keeps its value.
    ///
    /// Returns how many NUL characters were removed. On `Err` the signal is unchanged. Run it
    /// once, on what a producer sent: after a NUL left `source_id` the id no longer matches it,
    /// so a second run refuses the signal.
    pub fn normalise(&mut self) -> Result<usize, Invalid> {
        let expected = signal_id(self.channel, &self.source_id);
        if self.id != expected {
            return Err(Invalid::Id {
                found: cut_for_error(&self.id),
                expected,
                channel: self.channel,
                source_id: cut_for_error(&self.source_id),
            });
        }
        let bounded = [
            ("source", Some(&self.source), MAX_SOURCE_BYTES),
            ("source_id", Some(&self.source_id), MAX_SOURCE_ID_BYTES),
            ("author", self.author.as_ref(), MAX_AUTHOR_BYTES),
            ("thread_id", self.thread_id.as_ref(), MAX_THREAD_ID_BYTES),
        ];
        for (field, value, limit) in bounded {
            let size = value.map_or(0, String::len);
            if size > limit {
                return Err(Invalid::TooLong { field, size, limit });
            }
        }
        for (field, value) in [
            ("occurred_at", self.occurred_at),
            ("received_at", self.received_at),
        ] {
            if !(EARLIEST_TIMESTAMP..LATEST_TIMESTAMP_EXCLUSIVE).contains(&value.timestamp()) {
                return Err(Invalid::OutOfRange {
                    field,
                    value: value.to_rfc3339_opts(SecondsFormat::AutoSi, true),
                });
            }
        }
        let mut removed = 0;
        for s in [
            Some(&mut self.text),
            self.subject.as_mut(),
            Some(&mut self.source),
            Some(&mut self.source_id),
            self.author.as_mut(),
            self.thread_id.as_mut(),
        ]
        .into_iter()
        .flatten()
        {
            removed += remove_nuls(s);
        }
        removed += remove_nuls_in_map(&mut self.meta);
        Ok(removed)
    }
}

/// Longest text a signal carries (see [`Signal::fit`]).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Longest subject a signal carries.
pub const MAX_SUBJECT_BYTES: usize = 2 * 1024;

/// Longest `source` a signal may carry: a configured source's name.
pub const MAX_SOURCE_BYTES: usize = 256;
/// Longest `source_id`: Message-IDs and API ids are far shorter; the register indexes it.
pub const MAX_SOURCE_ID_BYTES: usize = 2 * 1024;
/// Longest `author`: an address, a phone number or a handle.
pub const MAX_AUTHOR_BYTES: usize = 1024;
/// Longest `thread_id`.
pub const MAX_THREAD_ID_BYTES: usize = 2 * 1024;
/// Earliest `occurred_at` / `received_at` accepted (inclusive), as seconds since the epoch:
/// 1900-01-01T00:00:00Z.
pub const EARLIEST_TIMESTAMP: i64 = -2_208_988_800;
/// First `occurred_at` / `received_at` no longer accepted: 2200-01-01T00:00:00Z.
pub const LATEST_TIMESTAMP_EXCLUSIVE: i64 = 7_258_118_400;

/// Why [`Signal::normalise`] refused a signal. Values quoted in the message are cut to
/// [`MAX_ERROR_VALUE_BYTES`](crate::envelope::MAX_ERROR_VALUE_BYTES): the message becomes a
/// dead-letter header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// The id is not `signal_id(channel, source_id)`: trusting it would let one record take
    /// another signal's row, and a replay with a different id would be stored twice.
    #[error("signal id `{found}` is not the id of channel `{channel}` and source_id `{source_id}`: expected `{expected}`")]
    Id {
        found: String,
        expected: String,
        channel: Channel,
        source_id: String,
    },
    #[error("`{field}` is {size} bytes, over the limit of {limit}")]
    TooLong {
        field: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("`{field}` {value} is outside [1900-01-01, 2200-01-01) UTC")]
    OutOfRange { field: &'static str, value: String },
}

/// The longest error message or `.error` file [`brief`] lets through.
pub const MAX_MESSAGE_BYTES: usize = 1024;

/// `message` cut to [`MAX_MESSAGE_BYTES`] at a character boundary, with how much was left out:
/// an error that quotes a 50 MB line must stay readable in a log and in `failed/*.error`.
pub fn brief(message: &str) -> std::borrow::Cow<'_, str> {
    if message.len() <= MAX_MESSAGE_BYTES {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!(
        "{}… ({} more bytes cut)",
        &message[..end],
        message.len() - end
    ))
}

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

/// Removes U+0000 from `s`; how many there were. A scan (memchr) when there are none.
fn remove_nuls(s: &mut String) -> usize {
    if !s.contains('\0') {
        return 0;
    }
    let before = s.len();
    s.retain(|c| c != '\0');
    // NUL is one byte in UTF-8, so bytes removed = characters removed.
    before - s.len()
}

fn remove_nuls_in_value(value: &mut serde_json::Value) -> usize {
    match value {
        serde_json::Value::String(s) => remove_nuls(s),
        serde_json::Value::Array(items) => items.iter_mut().map(remove_nuls_in_value).sum(),
        serde_json::Value::Object(map) => remove_nuls_in_map(map),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => 0,
    }
}

fn remove_nuls_in_map(map: &mut serde_json::Map<String, serde_json::Value>) -> usize {
    let mut removed: usize = map.values_mut().map(remove_nuls_in_value).sum();
    if !map.keys().any(|k| k.contains('\0')) {
        return removed;
    }
    // Keys cannot be changed in place: rebuild, clean keys first so that they win a collision.
    let (clean, dirty): (Vec<_>, Vec<_>) = std::mem::take(map)
        .into_iter()
        .partition(|(k, _)| !k.contains('\0'));
    map.extend(clean);
    for (mut key, value) in dirty {
        removed += remove_nuls(&mut key);
        map.entry(key).or_insert(value);
    }
    removed
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
    fn brief_keeps_short_messages_and_cuts_long_ones_at_a_char_boundary() {
        assert_eq!(brief("kort"), "kort");
        let long = format!("x{}", "é".repeat(5_000));
        let cut = brief(&long);
        assert!(cut.len() < MAX_MESSAGE_BYTES + 40, "{} bytes", cut.len());
        assert!(cut.ends_with("more bytes cut)"), "{cut}");
    }

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

    fn valid() -> Signal {
        let at = DateTime::parse_from_rfc3339("2024-03-01T10:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let mut s = Signal::new(Channel::Email, "inbox", "<a@b>", at, "te laat betaald");
        s.received_at = at;
        s
    }

    fn at(rfc3339: &str) -> DateTime<Utc> {
        match DateTime::parse_from_rfc3339(rfc3339) {
            Ok(t) => t.with_timezone(&Utc),
            Err(e) => panic!("bad test timestamp {rfc3339}: {e}"),
        }
    }

    #[test]
    fn timestamp_bounds_are_the_dates_they_say() {
        assert_eq!(at("1900-01-01T00:00:00Z").timestamp(), EARLIEST_TIMESTAMP);
        assert_eq!(
            at("2200-01-01T00:00:00Z").timestamp(),
            LATEST_TIMESTAMP_EXCLUSIVE
        );
    }

    #[test]
    fn normalise_refuses_what_the_register_cannot_hold() {
        type Edit = fn(&mut Signal);
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "another signal's id",
                |s| s.id = signal_id(Channel::Email, "<other@b>"),
                "is not the id of channel `email` and source_id `<a@b>`: expected `",
            ),
            (
                "an id of the wrong channel",
                |s| s.channel = Channel::Phone,
                "is not the id of channel `phone`",
            ),
            (
                "an 8 KB id",
                |s| s.id = "f".repeat(8 * 1024),
                "signal id `ffff",
            ),
            // The id is checked on the source_id as received, before NULs go.
            (
                "id of the cleaned source_id",
                |s| {
                    s.source_id = "<a@b>\0".into();
                },
                "expected `",
            ),
            (
                "long source",
                |s| s.source = "s".repeat(MAX_SOURCE_BYTES + 1),
                "`source` is 257 bytes, over the limit of 256",
            ),
            (
                "long source_id",
                |s| {
                    s.source_id = "i".repeat(MAX_SOURCE_ID_BYTES + 1);
                    s.id = signal_id(s.channel, &s.source_id);
                },
                "`source_id` is 2049 bytes, over the limit of 2048",
            ),
            (
                "long author",
                |s| s.author = Some("a".repeat(MAX_AUTHOR_BYTES + 1)),
                "`author` is 1025 bytes, over the limit of 1024",
            ),
            (
                "long thread_id",
                |s| s.thread_id = Some("t".repeat(MAX_THREAD_ID_BYTES + 1)),
                "`thread_id` is 2049 bytes, over the limit of 2048",
            ),
            (
                "year -100000",
                |s| {
                    s.occurred_at =
                        at("2000-01-01T00:00:00Z") - chrono::Duration::days(102_000 * 365)
                },
                "`occurred_at` -",
            ),
            (
                "just before 1900",
                |s| s.occurred_at = at("1899-12-31T23:59:59.999Z"),
                "`occurred_at` 1899-12-31T23:59:59.999Z is outside [1900-01-01, 2200-01-01) UTC",
            ),
            (
                "2200 itself",
                |s| s.received_at = at("2200-01-01T00:00:00Z"),
                "`received_at` 2200-01-01T00:00:00Z is outside",
            ),
        ];
        for (name, edit, want) in cases {
            let mut s = valid();
            edit(&mut s);
            let before = s.clone();
            match s.normalise() {
                Ok(n) => panic!("{name}: should be refused, was accepted ({n} NULs removed)"),
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(want),
                        "{name}: error `{msg}` should contain `{want}`"
                    );
                    assert!(
                        msg.len() < 1024,
                        "{name}: error is {} bytes, should be cut",
                        msg.len()
                    );
                }
            }
            assert_eq!(s, before, "{name}: a refused signal must be left as it was");
        }
    }

    #[test]
    fn normalise_accepts_the_edges() {
        type Edit = fn(&mut Signal);
        let cases: Vec<(&str, Edit)> = vec![
            ("as built", |_| {}),
            ("1900-01-01 exactly", |s| {
                s.occurred_at = at("1900-01-01T00:00:00Z")
            }),
            ("last instant before 2200", |s| {
                s.received_at = at("2199-12-31T23:59:59.999999999Z")
            }),
            ("limits exactly", |s| {
                s.source = "s".repeat(MAX_SOURCE_BYTES);
                s.source_id = "i".repeat(MAX_SOURCE_ID_BYTES);
                s.id = signal_id(s.channel, &s.source_id);
                s.author = Some("a".repeat(MAX_AUTHOR_BYTES));
                s.thread_id = Some("t".repeat(MAX_THREAD_ID_BYTES));
            }),
        ];
        for (name, edit) in cases {
            let mut s = valid();
            edit(&mut s);
            let before = s.clone();
            assert_eq!(s.normalise(), Ok(0), "{name}");
            assert_eq!(s, before, "{name}: nothing to clean, nothing may change");
        }
    }

    #[test]
    fn normalise_removes_nul_everywhere_and_counts() {
        use serde_json::json;
        type Edit = fn(&mut Signal);
        type Check = fn(&Signal) -> bool;
        let cases: Vec<(&str, Edit, usize, Check)> = vec![
            ("text", |s| s.text = "a\0b\0".into(), 2, |s| s.text == "ab"),
            (
                "subject",
                |s| s.subject = Some("\0re".into()),
                1,
                |s| s.subject.as_deref() == Some("re"),
            ),
            (
                "source",
                |s| s.source = "in\0box".into(),
                1,
                |s| s.source == "inbox",
            ),
            (
                "author",
                |s| s.author = Some("\0\0\0x".into()),
                3,
                |s| s.author.as_deref() == Some("x"),
            ),
            (
                "thread_id",
                |s| s.thread_id = Some("t\0".into()),
                1,
                |s| s.thread_id.as_deref() == Some("t"),
            ),
            (
                "meta string at depth",
                |s| {
                    s.meta.insert(
                        "call".into(),
                        json!({"legs": [{"to": "a\0"}, "b\0\0"], "n": 1}),
                    );
                },
                3,
                |s| s.meta["call"] == json!({"legs": [{"to": "a"}, "b"], "n": 1}),
            ),
            (
                "meta keys at depth",
                |s| {
                    s.meta.insert("x\0".into(), json!({"y\0": "z"}));
                },
                2,
                |s| s.meta.get("x") == Some(&json!({"y": "z"})),
            ),
            // A cleaned key that collides keeps the value of the key that was already clean.
            (
                "meta key collision",
                |s| {
                    s.meta.insert("k\0".into(), json!(2));
                    s.meta.insert("\0k".into(), json!(3));
                    s.meta.insert("k".into(), json!(1));
                },
                2,
                |s| s.meta.len() == 1 && s.meta["k"] == json!(1),
            ),
        ];
        for (name, edit, want, check) in cases {
            let mut s = valid();
            edit(&mut s);
            assert_eq!(s.normalise(), Ok(want), "{name}");
            assert!(check(&s), "{name}: not cleaned as expected: {s:?}");
            assert_eq!(s.normalise(), Ok(0), "{name}: a second pass finds nothing");
        }
    }

    #[test]
    fn nul_in_source_id_is_removed_but_the_id_stays_as_received() {
        let mut s = valid();
        s.source_id = "<a\0@b>".into();
        s.id = signal_id(s.channel, &s.source_id);
        let id = s.id.clone();
        assert_eq!(s.normalise(), Ok(1));
        assert_eq!(s.source_id, "<a@b>");
        // A replay of the same record gets the same id, so it collapses onto the stored row.
        assert_eq!(s.id, id);
        // The cleaned signal no longer passes the id check: normalise runs once, on what a
        // producer sent, not on what the register or `signals.classified` hold.
        assert!(matches!(s.normalise(), Err(Invalid::Id { .. })));
    }
}
