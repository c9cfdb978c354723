//! Versioned JSON envelopes: the only things serialised onto Kafka.
//!
//! Every message carries `schema_version` and `type`; consumers reject a message whose version
//! they do not know instead of guessing. JSON Schemas for each topic live in `schemas/`.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Alert, Classification, Signal};

pub const SCHEMA_VERSION: u32 = 1;
pub const TYPE_RAW: &str = "signal.raw";
pub const TYPE_CLASSIFIED: &str = "signal.classified";
pub const TYPE_ALERT: &str = "alert";

/// Why a payload could not be turned into an envelope. Goes into the dead-letter headers.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("payload is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    #[error("unsupported schema_version {found} for `{kind}` (this build reads {SCHEMA_VERSION})")]
    Version { kind: &'static str, found: u64 },
    #[error("expected message type `{expected}`, found `{found}`")]
    Type {
        expected: &'static str,
        found: String,
    },
    #[error("message does not match the `{kind}` schema: {source}")]
    Shape {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("empty payload")]
    Empty,
}

fn decode<T: DeserializeOwned>(payload: &[u8], kind: &'static str) -> Result<T, DecodeError> {
    if payload.is_empty() {
        return Err(DecodeError::Empty);
    }
    let value: serde_json::Value = serde_json::from_slice(payload).map_err(DecodeError::Json)?;
    let found = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .unwrap_or(0);
    if found != u64::from(SCHEMA_VERSION) {
        return Err(DecodeError::Version { kind, found });
    }
    let found_type = value.get("type").and_then(|v| v.as_str()).unwrap_or("");
    if found_type != kind {
        return Err(DecodeError::Type {
            expected: kind,
            found: found_type.to_string(),
        });
    }
    serde_json::from_value(value).map_err(|source| DecodeError::Shape { kind, source })
}

/// `signals.raw`: a signal exactly as the source saw it (contains personal data).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawEnvelope {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub signal: Signal,
}

impl RawEnvelope {
    pub fn new(signal: Signal) -> Self {
        RawEnvelope {
            schema_version: SCHEMA_VERSION,
            kind: TYPE_RAW.into(),
            signal,
        }
    }

    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode(payload, TYPE_RAW)
    }

    /// Writes the envelope of `signal` as JSON, byte for byte what serialising
    /// `RawEnvelope::new(signal.clone())` writes, without the clone (sources publish millions).
    pub fn write_json<W: std::io::Write>(writer: W, signal: &Signal) -> serde_json::Result<()> {
        /// Same fields, same order as [`RawEnvelope`].
        #[derive(Serialize)]
        struct Borrowed<'a> {
            schema_version: u32,
            #[serde(rename = "type")]
            kind: &'static str,
            signal: &'a Signal,
        }
        serde_json::to_writer(
            writer,
            &Borrowed {
                schema_version: SCHEMA_VERSION,
                kind: TYPE_RAW,
                signal,
            },
        )
    }
}

/// `signals.classified`: the signal with its classification, as dashboards read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifiedEnvelope {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub signal: Signal,
    pub classification: Classification,
    pub classified_at: DateTime<Utc>,
    /// Version of the rule set that produced the classification.
    pub classifier: String,
}

impl ClassifiedEnvelope {
    pub fn new(
        signal: Signal,
        classification: Classification,
        classifier: impl Into<String>,
    ) -> Self {
        ClassifiedEnvelope {
            schema_version: SCHEMA_VERSION,
            kind: TYPE_CLASSIFIED.into(),
            signal,
            classification,
            classified_at: Utc::now(),
            classifier: classifier.into(),
        }
    }

    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode(payload, TYPE_CLASSIFIED)
    }
}

/// `signals.alerts`: a theme spiked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEnvelope {
    pub schema_version: u32,
    #[serde(rename = "type")]
    pub kind: String,
    pub alert: Alert,
}

impl AlertEnvelope {
    pub fn new(alert: Alert) -> Self {
        AlertEnvelope {
            schema_version: SCHEMA_VERSION,
            kind: TYPE_ALERT.into(),
            alert,
        }
    }

    pub fn decode(payload: &[u8]) -> Result<Self, DecodeError> {
        decode(payload, TYPE_ALERT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Channel, Signal};

    fn signal() -> Signal {
        Signal::new(
            Channel::Phone,
            "callcenter",
            "call-1",
            Utc::now(),
            "40 minuten in de wacht",
        )
    }

    #[test]
    fn raw_round_trips() -> Result<(), Box<dyn std::error::Error>> {
        let env = RawEnvelope::new(signal());
        let bytes = serde_json::to_vec(&env)?;
        assert_eq!(RawEnvelope::decode(&bytes)?, env);
        Ok(())
    }

    #[test]
    fn write_json_is_byte_for_byte_the_envelope() -> Result<(), Box<dyn std::error::Error>> {
        let mut s = signal();
        s.author = Some("06 1234 5678".into());
        s.subject = Some("Brief \"aanslag\"".into());
        s.meta.insert("wait_seconds".into(), 1500.into());
        let mut written = Vec::new();
        RawEnvelope::write_json(&mut written, &s)?;
        assert_eq!(
            String::from_utf8(written)?,
            serde_json::to_string(&RawEnvelope::new(s))?
        );
        Ok(())
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        let cases: [(&[u8], &str); 5] = [
            (b"", "empty payload"),
            (b"{not json", "not valid JSON"),
            (
                br#"{"schema_version":2,"type":"signal.raw"}"#,
                "unsupported schema_version 2",
            ),
            (
                br#"{"schema_version":1,"type":"alert"}"#,
                "expected message type `signal.raw`",
            ),
            (
                br#"{"schema_version":1,"type":"signal.raw","signal":{}}"#,
                "does not match",
            ),
        ];
        for (payload, want) in cases {
            match RawEnvelope::decode(payload) {
                Ok(_) => panic!(
                    "decoding {:?} should fail",
                    String::from_utf8_lossy(payload)
                ),
                Err(e) => assert!(
                    e.to_string().contains(want),
                    "error `{e}` should mention `{want}`"
                ),
            }
        }
    }
}
