//! The JSON profiles: Genesys Cloud conversation details and Twilio call records.
//!
//! Both APIs hand out pages (Genesys at most 1,000 conversations per page or job-results
//! cursor, Twilio at most 1,000 calls per list page), so a file is one page and is read whole;
//! files over [`MAX_PAGE_BYTES`] are refused rather than loaded. A page that is not the expected
//! shape is the file's error (it goes to `failed/`); a record that lacks what a signal needs is
//! that record's error (dead-lettered, the rest continue).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::csv_export::{CsvMapping, Row, RowError};
use crate::record::CallRecord;

/// Larger JSON files are refused: an API page is far smaller.
pub const MAX_PAGE_BYTES: usize = 256 * 1024 * 1024;

fn page(bytes: &[u8], list: &str) -> Result<Vec<Value>, String> {
    if bytes.len() > MAX_PAGE_BYTES {
        return Err(format!(
            "{} bytes is more than one API page ({MAX_PAGE_BYTES}-byte limit)",
            bytes.len()
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    match value {
        Value::Array(items) => Ok(items),
        Value::Object(mut o) => match o.remove(list) {
            Some(Value::Array(items)) => Ok(items),
            Some(_) => Err(format!("`{list}` is not a list")),
            // A page past the end of the data has no list at all.
            None if o.contains_key("totalHits") || o.contains_key("next_page_uri") => Ok(vec![]),
            None => Err(format!("no `{list}` list in this JSON object")),
        },
        _ => Err(format!("expected an object with `{list}` or a list")),
    }
}

fn rows(
    records: Vec<(Value, Result<CallRecord, String>)>,
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> Vec<Row> {
    records
        .into_iter()
        .enumerate()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .map(|(i, (raw, call))| {
            let index = i as u64;
            Row {
                index,
                // JSON has no lines worth naming: the record's position in the page.
                line: index + 1,
                result: call
                    .and_then(|c| c.into_signal(source, fingerprint, index))
                    .map_err(|reason| RowError {
                        reason,
                        raw: raw.to_string().into_bytes(),
                    }),
            }
        })
        .collect()
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn time(v: &Value, key: &str) -> Result<DateTime<Utc>, String> {
    let s = text(v, key).ok_or_else(|| format!("`{key}` is missing"))?;
    DateTime::parse_from_rfc3339(&s)
        .or_else(|_| DateTime::parse_from_rfc2822(&s))
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{key}` is not a date: {s:?}"))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Genesys Cloud analytics conversation details (`POST /api/v2/analytics/conversations/details/query`
/// responses and job-result pages: `{"conversations": [...]}`, or a bare list).
pub fn genesys_rows(
    bytes: &[u8],
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> Result<Vec<Row>, String> {
    let records = page(bytes, "conversations")?
        .into_iter()
        .map(|c| {
            let call = genesys_call(&c);
            (c, call)
        })
        .collect();
    Ok(rows(records, source, fingerprint, skip))
}

fn genesys_call(c: &Value) -> Result<CallRecord, String> {
    let call_id = text(c, "conversationId").ok_or("`conversationId` is missing")?;
    let started_at = time(c, "conversationStart")?;
    // Metric totals over every session of a purpose, in milliseconds (or counts).
    let mut metrics: BTreeMap<(String, String), i64> = BTreeMap::new();
    let (mut caller, mut agent, mut queue) = (None, None, None);
    let (mut dispositions, mut notes) = (Vec::new(), Vec::new());
    for p in list(c, "participants") {
        let purpose = text(p, "purpose").unwrap_or_default();
        for s in list(p, "sessions") {
            for m in list(s, "metrics") {
                if let (Some(name), Some(value)) =
                    (text(m, "name"), m.get("value").and_then(Value::as_i64))
                {
                    *metrics.entry((purpose.clone(), name)).or_default() += value;
                }
            }
            if matches!(purpose.as_str(), "customer" | "external") && caller.is_none() {
                // `tel:+31612345678`
                caller = text(s, "ani").map(|a| a.trim_start_matches("tel:").to_string());
            }
            for seg in list(s, "segments") {
                if queue.is_none() {
                    queue = text(seg, "queueId");
                }
                if let Some(code) = text(seg, "wrapUpCode") {
                    dispositions.push(code);
                }
                if let Some(note) = text(seg, "wrapUpNote") {
                    notes.push(note);
                }
            }
        }
        match purpose.as_str() {
            "agent" if agent.is_none() => {
                agent = text(p, "participantName").or_else(|| text(p, "userId"))
            }
            // The ACD participant is named after its queue.
            "acd" => queue = text(p, "participantName").or(queue),
            _ => {}
        }
    }
    let total = |name: &str| -> Option<i64> {
        let mut sum = None;
        for ((_, n), v) in &metrics {
            if n == name {
                *sum.get_or_insert(0) += *v;
            }
        }
        sum
    };
    let secs = |ms: Option<i64>| ms.map(|ms| u64::try_from(ms.max(0) / 1000).unwrap_or(0));
    let abandoned = total("tAbandon").is_some();
    Ok(CallRecord {
        call_id: Some(call_id),
        started_at: Some(started_at),
        caller,
        agent,
        queue,
        // Time in the queue: until answered, or until the caller gave up.
        wait_seconds: secs(total("tAcd").or(total("tAbandon"))),
        talk_seconds: secs(total("tTalkComplete").or(total("tTalk"))),
        transfers: total("nTransferred").map(|n| u64::try_from(n.max(0)).unwrap_or(0)),
        disposition: (!dispositions.is_empty()).then(|| dispositions.join(",")),
        abandoned: Some(abandoned),
        notes: (!notes.is_empty()).then(|| notes.join("\n")),
    })
}

/// Twilio call records (`GET /2010-04-01/Accounts/{sid}/Calls.json` list pages:
/// `{"calls": [...], "next_page_uri": …}`, or a bare list). Child legs (`parent_call_sid`)
/// are not calls of their own: they count as the parent's transfers.
pub fn twilio_rows(
    bytes: &[u8],
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> Result<Vec<Row>, String> {
    let calls = page(bytes, "calls")?;
    let mut legs: BTreeMap<String, u64> = BTreeMap::new();
    for c in &calls {
        if let Some(parent) = text(c, "parent_call_sid") {
            *legs.entry(parent).or_default() += 1;
        }
    }
    let records = calls
        .into_iter()
        .filter(|c| text(c, "parent_call_sid").is_none())
        .map(|c| {
            let call = twilio_call(&c, &legs);
            (c, call)
        })
        .collect();
    Ok(rows(records, source, fingerprint, skip))
}

fn twilio_call(c: &Value, legs: &BTreeMap<String, u64>) -> Result<CallRecord, String> {
    let sid = text(c, "sid").ok_or("`sid` is missing")?;
    let started_at = time(c, "start_time").or_else(|_| time(c, "date_created"))?;
    let status = text(c, "status");
    // `duration` is a string of seconds, or null while the call is not over.
    let talk = match c.get("duration") {
        Some(Value::String(s)) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("`duration` is not a number of seconds: {s:?}"))?,
        ),
        Some(Value::Number(n)) => n.as_u64(),
        _ => None,
    };
    let inbound = text(c, "direction").is_none_or(|d| d == "inbound");
    Ok(CallRecord {
        transfers: legs.get(&sid).copied(),
        call_id: Some(sid),
        started_at: Some(started_at),
        caller: if inbound {
            text(c, "from")
        } else {
            text(c, "to")
        },
        agent: None,
        queue: text(c, "to").filter(|_| inbound),
        wait_seconds: None,
        talk_seconds: talk,
        abandoned: Some(matches!(
            status.as_deref(),
            Some("canceled" | "no-answer" | "busy" | "failed")
        )),
        disposition: status,
        notes: None,
    })
}

/// The generic NDJSON profile: one call per line, keys named by the same [`CsvMapping`] as the
/// generic CSV profile. Streamed line by line; a line that is not a JSON object, or lacks a usable
/// timestamp, is that line's error.
pub fn ndjson_rows<R: std::io::BufRead>(
    reader: R,
    mapping: &CsvMapping,
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> impl Iterator<Item = Row> {
    let (mapping, source, fingerprint) =
        (mapping.clone(), source.to_string(), fingerprint.to_string());
    reader
        .split(b'\n')
        .enumerate()
        .filter(|(_, line)| {
            line.as_ref()
                .map_or(true, |l| !l.iter().all(u8::is_ascii_whitespace))
        })
        .enumerate()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .map(move |(i, (n, line))| {
            let index = i as u64;
            let (raw, call) = match line {
                Err(e) => (Vec::new(), Err(format!("unreadable line: {e}"))),
                Ok(raw) => {
                    let call = serde_json::from_slice::<Value>(&raw)
                        .map_err(|e| format!("not valid JSON: {e}"))
                        .and_then(|v| ndjson_call(&v, &mapping));
                    (raw, call)
                }
            };
            Row {
                index,
                line: n as u64 + 1,
                result: call
                    .and_then(|c| c.into_signal(&source, &fingerprint, index))
                    .map_err(|reason| RowError { reason, raw }),
            }
        })
}

fn ndjson_call(v: &Value, m: &CsvMapping) -> Result<CallRecord, String> {
    if !v.is_object() {
        return Err("the line is not a JSON object".into());
    }
    let field = |key: &str| -> Option<String> {
        match v.get(key)? {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let number = |key: &str| -> Result<Option<u64>, String> {
        match v.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("`{key}` is not a whole number: {n}")),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| format!("`{key}` is not a whole number: {s:?}")),
            Some(other) => Err(format!("`{key}` is not a whole number: {other}")),
        }
    };
    let started_at = match v.get(&m.timestamp) {
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or_else(|| format!("`{}` is not a Unix time: {n}", m.timestamp))?,
        Some(Value::String(s)) => {
            crate::csv_export::parse_time_as(s, m.timestamp_format.as_deref())?
        }
        _ => return Err(format!("`{}` is missing", m.timestamp)),
    };
    Ok(CallRecord {
        call_id: field(&m.call_id),
        started_at: Some(started_at),
        caller: field(&m.caller),
        agent: field(&m.agent),
        queue: field(&m.queue),
        wait_seconds: number(&m.wait_seconds)?,
        talk_seconds: number(&m.talk_seconds)?,
        transfers: number(&m.transfers)?,
        disposition: field(&m.disposition),
        abandoned: v.get("abandoned").and_then(Value::as_bool),
        notes: field(&m.notes),
    })
}
