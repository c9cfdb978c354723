//! The JSON profiles: Genesys Cloud conversation details and Twilio call records.
//!
//! Both APIs hand out pages (Genesys at most 1,000 conversations per page or job-results
//! cursor, Twilio at most 1,000 calls per list page), so a file is one page and is read whole;
//! files over [`MAX_PAGE_BYTES`] are refused rather than loaded. A page that is not the expected
//! shape — an API error body, the other platform's page, an empty bare list — is the file's
//! error (it goes to `failed/`, and `import` fails); a record that lacks what a signal needs is
//! that record's error (dead-lettered, the rest continue).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use signaal_source::Skip;

use crate::csv_export::{CsvMapping, Row, RowError};
use crate::record::CallRecord;
use crate::records::Lines;
use crate::Zone;

/// Larger JSON files are refused: an API page is far smaller.
pub const MAX_PAGE_BYTES: usize = 256 * 1024 * 1024;

/// What a page holds: its records as rows, and the items that are no calls of their own.
#[derive(Debug, Default)]
pub struct Page {
    pub rows: Vec<Row>,
    pub skipped: Vec<Skip>,
}

/// The platform a page is for: the key of its list and of each record's id.
struct Shape {
    platform: &'static str,
    list: &'static str,
    id: &'static str,
}

const GENESYS: Shape = Shape {
    platform: "a Genesys Cloud conversation-details page",
    list: "conversations",
    id: "conversationId",
};

const TWILIO: Shape = Shape {
    platform: "a Twilio Calls page",
    list: "calls",
    id: "sid",
};

/// What a JSON object that is not `shape`'s page is, when it can tell.
fn what_else(o: &Map<String, Value>, shape: &Shape) -> Option<String> {
    let has = |k: &str| o.contains_key(k);
    let s = |k: &str| {
        o.get(k).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    if shape.list != "calls" && (has("calls") || has("next_page_uri") || has("first_page_uri")) {
        return Some(TWILIO.platform.to_string());
    }
    if shape.list != "conversations" && (has("conversations") || has("totalHits")) {
        return Some(GENESYS.platform.to_string());
    }
    // Twilio: `{"code": 20003, "message": "Authenticate", "more_info": …, "status": 401}`;
    // Genesys: `{"message": …, "code": "bad.credentials", "status": 401, "contextId": …}`.
    if has("message") && (has("code") || has("status")) {
        let status = s("status").map(|s| format!(" {s}")).unwrap_or_default();
        let code = s("code")
            .map(|c| format!(" (code {c})"))
            .unwrap_or_default();
        let message = s("message").unwrap_or_default();
        return Some(format!("an API error response{status}{code}: {message:?}"));
    }
    if has("data") && (has("meta") || has("errors") || has("includes")) {
        return Some("an X API response".into());
    }
    if has("data") && has("paging") {
        return Some("a Graph API page".into());
    }
    None
}

/// The records of a page for `shape`, or why the file is not such a page.
fn page(bytes: &[u8], shape: &Shape) -> Result<Vec<Value>, String> {
    if bytes.len() > MAX_PAGE_BYTES {
        return Err(format!(
            "{} bytes is more than one API page ({MAX_PAGE_BYTES}-byte limit)",
            bytes.len()
        ));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
    let list = shape.list;
    let not_it = |what: &str| format!("this is {what}, not {}", shape.platform);
    let items = match value {
        Value::Array(items) if items.is_empty() => {
            return Err(format!(
                "an empty list, not {} (a page with no calls is `{{\"{list}\": []}}`)",
                shape.platform
            ))
        }
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove(list) {
            Some(Value::Array(items)) => items,
            Some(_) => return Err(format!("`{list}` is not a list")),
            None => {
                if let Some(what) = what_else(&o, shape) {
                    return Err(not_it(&what));
                }
                // A Genesys query past the end of the data: `{"totalHits": 0}`.
                if list == "conversations" && o.contains_key("totalHits") {
                    return Ok(vec![]);
                }
                return Err(format!("no `{list}` list in this JSON object"));
            }
        },
        _ => return Err(format!("expected an object with `{list}` or a list")),
    };
    // Records of which not one has an id are not this platform's records at all.
    if !items.is_empty() && !items.iter().any(|c| c.get(shape.id).is_some()) {
        let what = items
            .iter()
            .find_map(|c| c.as_object().and_then(|o| what_else(o, shape)))
            .or_else(|| {
                items.iter().find_map(|c| {
                    let o = c.as_object()?;
                    if o.contains_key(GENESYS.id) {
                        Some(GENESYS.platform.to_string())
                    } else if o.contains_key(TWILIO.id) && o.contains_key("account_sid") {
                        Some(TWILIO.platform.to_string())
                    } else {
                        None
                    }
                })
            });
        return Err(match what {
            Some(what) => format!("the records of {what}, not of {}", shape.platform),
            None => format!(
                "no record in `{list}` has a `{}`: not {}",
                shape.id, shape.platform
            ),
        });
    }
    Ok(items)
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
                    .map_err(|reason| RowError::new(&reason, raw.to_string().into_bytes())),
                rows_done: index + 1,
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
) -> Result<Page, String> {
    let records = page(bytes, &GENESYS)?
        .into_iter()
        .map(|c| {
            let call = genesys_call(&c);
            (c, call)
        })
        .collect();
    Ok(Page {
        rows: rows(records, source, fingerprint, skip),
        skipped: Vec::new(),
    })
}

/// A time in a page, as a sortable key (RFC 3339 in UTC sorts as text; unparseable sorts last).
fn when(v: &Value, key: &str) -> DateTime<Utc> {
    time(v, key).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

fn genesys_call(c: &Value) -> Result<CallRecord, String> {
    let call_id = text(c, "conversationId").ok_or("`conversationId` is missing")?;
    let started_at = time(c, "conversationStart")?;
    // Metric totals over every session of a purpose, in milliseconds (or counts).
    let mut metrics: BTreeMap<(String, String), i64> = BTreeMap::new();
    let (mut caller, mut queue) = (None, None);
    // Agents who talked (an `interact` segment), by when they first did; the one who wrapped up
    // is the last of them.
    let mut talked: Vec<(DateTime<Utc>, String)> = Vec::new();
    // Wrap-up codes by when they were set; notes in order.
    let mut wrap_ups: Vec<(DateTime<Utc>, String)> = Vec::new();
    let mut notes = Vec::new();
    let mut media: BTreeSet<String> = BTreeSet::new();
    let mut first_media = None;
    for p in list(c, "participants") {
        let purpose = text(p, "purpose").unwrap_or_default();
        let mut interact: Option<DateTime<Utc>> = None;
        for s in list(p, "sessions") {
            if let Some(m) = text(s, "mediaType") {
                if first_media.is_none() {
                    first_media = Some(m.clone());
                }
                media.insert(m);
            }
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
                if text(seg, "segmentType").as_deref() == Some("interact") {
                    let at = when(seg, "segmentStart");
                    interact = Some(interact.map_or(at, |t| t.min(at)));
                }
                if let Some(code) = text(seg, "wrapUpCode") {
                    let at = time(seg, "segmentEnd")
                        .or_else(|_| time(seg, "segmentStart"))
                        .unwrap_or(DateTime::<Utc>::MIN_UTC);
                    wrap_ups.push((at, code));
                }
                if let Some(note) = text(seg, "wrapUpNote") {
                    notes.push(note);
                }
            }
        }
        match purpose.as_str() {
            "agent" | "user" => {
                // An agent who was offered the call but never answered has no `interact`.
                if let (Some(at), Some(name)) = (
                    interact,
                    text(p, "participantName").or_else(|| text(p, "userId")),
                ) {
                    talked.push((at, name));
                }
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
    talked.sort_by_key(|(at, _)| *at);
    // Stable: codes set at the same time keep the page's order, and the last one wins.
    wrap_ups.sort_by_key(|(at, _)| *at);
    let mut extra = Map::new();
    // The customer's session says what the conversation was; `voice` is a phone call, the rest
    // (`chat`, `callback`, `email`, `message`) are kept but marked.
    let media_type = first_media.unwrap_or_else(|| "voice".into());
    extra.insert("media_type".into(), Value::from(media_type));
    if talked.len() > 1 {
        let agents: Vec<Value> = talked.iter().map(|(_, a)| Value::from(a.clone())).collect();
        extra.insert("agents".into(), Value::Array(agents));
    }
    if wrap_ups.len() > 1 {
        let codes: Vec<Value> = wrap_ups
            .iter()
            .map(|(_, c)| Value::from(c.clone()))
            .collect();
        extra.insert("wrap_up_codes".into(), Value::Array(codes));
    }
    if media.len() > 1 {
        extra.insert(
            "media_types".into(),
            Value::Array(media.into_iter().map(Value::from).collect()),
        );
    }
    Ok(CallRecord {
        call_id: Some(call_id),
        started_at: Some(started_at),
        caller,
        agent: talked.pop().map(|(_, a)| a),
        queue,
        // Time in the queue: until answered, or until the caller gave up.
        wait_seconds: secs(total("tAcd").or(total("tAbandon"))),
        talk_seconds: secs(total("tTalkComplete").or(total("tTalk"))),
        transfers: total("nTransferred").map(|n| u64::try_from(n.max(0)).unwrap_or(0)),
        disposition: wrap_ups.pop().map(|(_, c)| c),
        abandoned: Some(abandoned),
        notes: (!notes.is_empty()).then(|| notes.join("\n")),
        extra,
        ..CallRecord::default()
    })
}

/// Twilio call records (`GET /2010-04-01/Accounts/{sid}/Calls.json` list pages:
/// `{"calls": [...], "next_page_uri": …}`, or a bare list). Child legs (`parent_call_sid`: the
/// dialled agent, a forward) are not calls of their own: they count as their parent's transfers
/// and are reported as skipped, `twilio_child_leg`. A child whose parent is not on the page
/// (pages are cut by count, so a call's legs can straddle two) cannot be added to it: it is
/// skipped as `twilio_child_leg_parent_elsewhere`, naming the parent.
pub fn twilio_rows(
    bytes: &[u8],
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> Result<Page, String> {
    let calls = page(bytes, &TWILIO)?;
    let parents: BTreeSet<String> = calls
        .iter()
        .filter(|c| text(c, "parent_call_sid").is_none())
        .filter_map(|c| text(c, "sid"))
        .collect();
    let mut legs: BTreeMap<String, u64> = BTreeMap::new();
    let mut skipped = Vec::new();
    for c in &calls {
        if let Some(parent) = text(c, "parent_call_sid") {
            let sid = text(c, "sid").unwrap_or_else(|| "(no sid)".into());
            if parents.contains(&parent) {
                *legs.entry(parent.clone()).or_default() += 1;
                skipped.push(Skip::new(
                    "twilio_child_leg",
                    format!("{sid} (leg of {parent})"),
                ));
            } else {
                skipped.push(Skip::new(
                    "twilio_child_leg_parent_elsewhere",
                    format!("{sid} (leg of {parent}, which is not on this page)"),
                ));
            }
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
    Ok(Page {
        rows: rows(records, source, fingerprint, skip),
        // Reported once: a resumed read has reported them already.
        skipped: if skip == 0 { skipped } else { Vec::new() },
    })
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
        ..CallRecord::default()
    })
}

/// The generic NDJSON profile: one call per line, keys named by the same [`CsvMapping`] as the
/// generic CSV profile. Streamed line by line, each line at most `max_line_bytes` (a longer one is
/// that line's error, passed over unread); a line that is not a JSON object, or lacks a usable
/// timestamp, is that line's error. Times without a zone are in `zone`.
pub fn ndjson_rows<R: std::io::BufRead>(
    reader: R,
    mapping: &CsvMapping,
    zone: Zone,
    max_line_bytes: usize,
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> impl Iterator<Item = Row> {
    let (mapping, source, fingerprint) =
        (mapping.clone(), source.to_string(), fingerprint.to_string());
    Lines::new(reader, max_line_bytes)
        .filter(|line| {
            line.as_ref().map_or(true, |l| {
                l.overlong.is_some() || !l.bytes.iter().all(u8::is_ascii_whitespace)
            })
        })
        .enumerate()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .map(move |(i, line)| {
            let index = i as u64;
            let (number, raw, call) = match line {
                Err(e) => (index + 1, Vec::new(), Err(format!("unreadable line: {e}"))),
                Ok(l) => {
                    let call = match l.overlong {
                        Some(len) => Err(format!(
                            "line {} is {len} bytes, over the limit of {max_line_bytes} bytes for \
                             one line: not read",
                            l.number
                        )),
                        None => serde_json::from_slice::<Value>(&l.bytes)
                            .map_err(|e| format!("not valid JSON: {e}"))
                            .and_then(|v| ndjson_call(&v, &mapping, zone)),
                    };
                    (l.number, l.bytes, call)
                }
            };
            Row {
                index,
                line: number,
                result: call
                    .and_then(|c| c.into_signal(&source, &fingerprint, index))
                    .map_err(|reason| RowError::new(&reason, raw)),
                rows_done: index + 1,
            }
        })
}

fn ndjson_call(v: &Value, m: &CsvMapping, zone: Zone) -> Result<CallRecord, String> {
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
            crate::csv_export::parse_time_as(s, m.timestamp_format.as_deref(), zone)?
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
        ..CallRecord::default()
    })
}
