//! What every export profile reads a call into, and how a call becomes a signal.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use signaal_core::{Channel, Signal};

/// One call, whatever the export looked like.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallRecord {
    /// The platform's id of the call (or of the leg); `None` gives an id from the file
    /// fingerprint and row.
    pub call_id: Option<String>,
    /// The call a leg belongs to, when one call has several records (Asterisk CDRs sharing a
    /// `uniqueid` or `linkedid`).
    pub thread_id: Option<String>,
    pub started_at: Option<DateTime<Utc>>,
    pub caller: Option<String>,
    pub agent: Option<String>,
    pub queue: Option<String>,
    pub wait_seconds: Option<u64>,
    pub talk_seconds: Option<u64>,
    pub transfers: Option<u64>,
    pub disposition: Option<String>,
    /// The caller hung up (or was never answered) before reaching anyone.
    pub abandoned: Option<bool>,
    pub notes: Option<String>,
    /// Further `meta` of the profile (`media_type`, `wrap_up_codes`, …).
    pub extra: Map<String, Value>,
}

impl CallRecord {
    /// The raw signal. `fingerprint` and `index` name the row when the call has no id, so a
    /// re-read of the same file gives the same ids.
    pub fn into_signal(
        self,
        source: &str,
        fingerprint: &str,
        index: u64,
    ) -> Result<Signal, String> {
        let occurred_at = self.started_at.ok_or("the call has no start time")?;
        let source_id = self
            .call_id
            .filter(|id| !id.trim().is_empty())
            .unwrap_or_else(|| format!("{fingerprint}:{index}"));
        let mut meta = Map::new();
        for (k, v) in [
            ("wait_seconds", self.wait_seconds),
            ("talk_seconds", self.talk_seconds),
            ("transfers", self.transfers),
        ] {
            if let Some(v) = v {
                meta.insert(k.into(), Value::from(v));
            }
        }
        for (k, v) in [
            ("agent", self.agent),
            ("queue", self.queue),
            ("disposition", self.disposition),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                meta.insert(k.into(), Value::from(v));
            }
        }
        if let Some(a) = self.abandoned {
            meta.insert("abandoned".into(), Value::from(a));
        }
        meta.extend(self.extra);
        let text = self.notes.unwrap_or_default();
        let mut s = Signal::new(Channel::Phone, source, source_id, occurred_at, text);
        s.author = self.caller.filter(|c| !c.is_empty());
        s.thread_id = self.thread_id.filter(|t| !t.is_empty());
        s.meta = meta;
        Ok(s)
    }
}
