//! The Asterisk CDR profile: `Master.csv` as written by `cdr_csv`.
//!
//! No header. The columns are accountcode, src, dst, dcontext, clid, channel, dstchannel,
//! lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags (16); then,
//! in this order and each only when `cdr.conf`'s `[csv]` section switches it on, uniqueid
//! (`loguniqueid`), userfield (`loguserfield`), and peeraccount, linkedid, sequence
//! (`newcdrcolumns`). So a row has 16 to 21 columns. The layout is read from each row's width,
//! not fixed per file: a `Master.csv` is appended to for years and outlives changes to
//! `cdr.conf`. Only 17 and 20 columns are ambiguous (uniqueid or userfield): the field is the
//! uniqueid when it looks like one (`1763370000.12`, or `host-1763370000.12` with a
//! `systemname`).
//!
//! **One signal per call.** A call can have several rows, one per leg: every agent a queue or
//! ring group rang (`NO ANSWER` for each who did not pick up), transfers, forwards. Counting
//! legs would make an answered queue call "abandoned" and count one call several times, so the
//! rows of one call — the same `linkedid` when the row has one, else the same `uniqueid` — are
//! merged into one signal (`Call` says how each field is merged). Its id and `thread_id` are
//! that key; the bare `uniqueid` is also the id earlier versions gave 17- and 18-column rows,
//! so their signals are not stored again. A row with neither (16 columns, or 17 with only a
//! userfield) cannot be tied to its call: it stays a signal of its own with an id from its
//! content (`cdr-{hash}`), never from its row number, so a grown `Master.csv` re-read adds
//! nothing twice.
//!
//! **Streaming.** Asterisk writes a call's rows together when the call ends, so its legs are
//! adjacent or close. Open calls wait in arrival order; a call is finished when none of its rows
//! came in the last [`WINDOW`] rows, or at the end of the file. That bounds memory: every row is
//! a leg of at most one call, so at most [`WINDOW`] calls are open, each folded into a few
//! numbers and at most `max_field_bytes` of notes and dispositions. A leg that comes after its
//! call was finished (further on, or in a later file) becomes another signal with the same id,
//! which the register keeps only once, the first: rare, since Asterisk writes a call's rows
//! together. The rows of a call still open are not yet done ([`Row::rows_done`]), so a
//! checkpoint never skips them; a resumed read (or a grown copy read after the rows of its
//! earlier copy) that starts inside a call gives the rest of it the same id, and the register
//! keeps the first.
//!
//! Times are `YYYY-MM-DD HH:MM:SS` in the server's local time unless `usegmtime = yes`: they are
//! read in the inbox's `timezone` (set `UTC` for `usegmtime`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::BufReader;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::csv_export::{parse_time, read_rows, ReadRow, Row, RowError};
use crate::record::CallRecord;
use crate::records::{Limits, Records};
use crate::Zone;

const START: usize = 9;
const DURATION: usize = 12;
const BILLSEC: usize = 13;
const DISPOSITION: usize = 14;

/// The widths `cdr_csv` writes.
pub const WIDTHS: std::ops::RangeInclusive<usize> = 16..=21;

/// A call is finished once this many rows came after its last leg; so at most this many calls
/// are open.
pub const WINDOW: u64 = 256;

/// `meta.dispositions` lists at most this many legs.
const MAX_DISPOSITIONS: usize = 64;

/// Where the optional columns of a row are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Layout {
    uniqueid: Option<usize>,
    userfield: Option<usize>,
    /// peeraccount, then linkedid and sequence.
    new_columns: Option<usize>,
}

fn layout(rec: &csv::ByteRecord) -> Result<Layout, String> {
    let looks_like_uniqueid = rec.get(16).is_some_and(is_uniqueid);
    let (uniqueid, userfield, new_columns) = match rec.len() {
        16 => (None, None, None),
        17 if looks_like_uniqueid => (Some(16), None, None),
        17 => (None, Some(16), None),
        18 => (Some(16), Some(17), None),
        19 => (None, None, Some(16)),
        20 if looks_like_uniqueid => (Some(16), None, Some(17)),
        20 => (None, Some(16), Some(17)),
        21 => (Some(16), Some(17), Some(18)),
        n => {
            return Err(format!(
                "an Asterisk CDR row has 16 to 21 columns (16, 17 or 18 columns, or 19 to 21 with \
                 `newcdrcolumns`); this one has {n}"
            ))
        }
    };
    Ok(Layout {
        uniqueid,
        userfield,
        new_columns,
    })
}

/// `1763370000.12`, or `host-1763370000.12` with a `systemname` in `asterisk.conf`.
fn is_uniqueid(field: &[u8]) -> bool {
    let id = match field.iter().rposition(|b| *b == b'-') {
        Some(i) => &field[i + 1..],
        None => field,
    };
    let mut parts = id.split(|b| *b == b'.');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Reads every row after the first `skip` and merges the rows of each call into one signal;
/// times without a zone are in `zone`.
pub fn parse_rows<R: std::io::Read>(
    reader: R,
    source: &str,
    zone: Zone,
    limits: Limits,
    skip: u64,
) -> impl Iterator<Item = Row> {
    let mut records = Records::new(BufReader::with_capacity(64 * 1024, reader), b',', limits);
    records.set_rows(
        WIDTHS,
        Some(Box::new(move |rec: &csv::ByteRecord| {
            rec.get(START)
                .and_then(|b| std::str::from_utf8(b).ok())
                .is_some_and(|t| parse_time(t, zone).is_some())
        })),
    );
    Merge {
        legs: read_rows(records, skip, b',', move |rec, _| leg(rec, zone)),
        source: source.to_string(),
        budget: limits.max_field_bytes,
        open: HashMap::new(),
        by_first: BTreeMap::new(),
        touched: VecDeque::new(),
        read: skip,
        out: VecDeque::new(),
        ended: false,
    }
}

/// The first 12 bytes of SHA-256 over the row's fields, in hex: the same row always gives the
/// same id, whatever its position in the file.
fn content_hash(rec: &csv::ByteRecord) -> String {
    let mut h = Sha256::new();
    for field in rec.iter() {
        h.update((field.len() as u64).to_le_bytes());
        h.update(field);
    }
    hex::encode(&h.finalize()[..12])
}

/// One CDR row: a leg of a call.
#[derive(Debug)]
struct Leg {
    /// The call it is a leg of: `linkedid`, else `uniqueid`; `None` when the row has neither.
    key: Option<String>,
    /// The id of a row that has no key: from its content.
    hash: Option<String>,
    started_at: DateTime<Utc>,
    duration: u64,
    billsec: u64,
    answered: bool,
    disposition: Option<String>,
    caller: Option<String>,
    queue: Option<String>,
    /// Who it was answered by, when it was.
    agent: Option<String>,
    notes: Option<String>,
    uniqueid: Option<String>,
    sequence: Option<u64>,
}

fn leg(rec: &csv::ByteRecord, zone: Zone) -> Result<Leg, String> {
    let layout = layout(rec)?;
    let text = |i: usize| -> Result<Option<String>, String> {
        match rec.get(i) {
            None => Ok(None),
            Some(b) => {
                let s = std::str::from_utf8(b)
                    .map_err(|e| format!("column {} is not valid UTF-8: {e}", i + 1))?
                    .trim();
                Ok((!s.is_empty()).then(|| s.to_string()))
            }
        }
    };
    let seconds = |i: usize, name: &str| -> Result<u64, String> {
        let s = text(i)?.unwrap_or_default();
        s.parse::<u64>()
            .map_err(|_| format!("`{name}` is not a whole number of seconds: {s:?}"))
    };
    let start = text(START)?.ok_or("`start` is empty")?;
    let started_at =
        parse_time(&start, zone).ok_or_else(|| format!("unparseable start {start:?}"))?;
    let duration = seconds(DURATION, "duration")?;
    let billsec = seconds(BILLSEC, "billsec")?;
    let disposition = text(DISPOSITION)?;
    let answered = disposition.as_deref() == Some("ANSWERED");
    // Queue calls: `Queue(name,options,…)`; otherwise the dialplan context says where it went.
    let queue = match (text(7)?.as_deref(), text(8)?) {
        (Some("Queue"), Some(data)) => data.split(',').next().map(str::to_string),
        _ => text(3)?,
    };
    // `SIP/agent7-0000002a`: the channel name without Asterisk's per-call suffix.
    let agent = text(6)?.map(|ch| match ch.rsplit_once('-') {
        Some((name, suffix)) if suffix.chars().all(|c| c.is_ascii_hexdigit()) => name.to_string(),
        _ => ch,
    });
    let caller = match text(1)? {
        Some(src) => Some(src),
        None => text(4)?,
    };
    let uniqueid = layout.uniqueid.map(text).transpose()?.flatten();
    let (mut linkedid, mut sequence) = (None, None);
    if let Some(at) = layout.new_columns {
        linkedid = text(at + 1)?;
        if let Some(s) = text(at + 2)? {
            sequence =
                Some(s.parse::<u64>().map_err(|_| {
                    format!("`sequence` (column {}) is not a number: {s:?}", at + 3)
                })?);
        }
    }
    let key = linkedid.or_else(|| uniqueid.clone());
    Ok(Leg {
        hash: key.is_none().then(|| content_hash(rec)),
        key,
        started_at,
        duration,
        billsec,
        answered,
        disposition,
        caller,
        queue,
        agent: if answered { agent } else { None },
        notes: layout.userfield.map(text).transpose()?.flatten(),
        uniqueid,
        sequence,
    })
}

/// Seconds since the epoch, `at` plus `secs`, saturating: durations come from the file.
fn plus(at: i64, secs: u64) -> i64 {
    at.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// A call merged from its legs (in file order, which is the order they ended in).
///
/// Answered when any leg was (so abandoned when none was); wait = from its earliest start to
/// its first answer (a leg's answer is its start plus `duration` − `billsec`), or to its last end
/// when nobody answered; talk = the `billsec` of its answered legs; transfers = answered legs
/// − 1; agent = who answered its last answered leg; disposition = `ANSWERED` when a leg was,
/// else the last leg's. Caller, queue, `meta.uniqueid` and `meta.sequence` are the first leg's;
/// `meta.legs` counts its rows, `meta.dispositions` lists theirs when they differ; its notes are
/// the userfields of its legs, each once.
#[derive(Debug)]
struct Call {
    key: Option<String>,
    id: String,
    first_index: u64,
    first_line: u64,
    last_index: u64,
    legs: u64,
    answered: u64,
    started_at: DateTime<Utc>,
    /// Seconds since the epoch.
    first_answer: Option<i64>,
    last_end: i64,
    talk: u64,
    caller: Option<String>,
    queue: Option<String>,
    uniqueid: Option<String>,
    sequence: Option<u64>,
    agent: Option<String>,
    disposition: Option<String>,
    dispositions: Vec<String>,
    dispositions_differ: bool,
    notes: Vec<String>,
    /// Bytes of dispositions and notes held: bounded, since a call's legs are.
    kept: usize,
}

impl Call {
    fn new(leg: Leg, index: u64, line: u64, budget: usize) -> Call {
        let id = match (&leg.key, &leg.hash) {
            (Some(key), _) => key.clone(),
            (None, hash) => format!("cdr-{}", hash.as_deref().unwrap_or_default()),
        };
        let start = leg.started_at.timestamp();
        let mut call = Call {
            key: leg.key.clone(),
            id,
            first_index: index,
            first_line: line,
            last_index: index,
            legs: 0,
            answered: 0,
            started_at: leg.started_at,
            first_answer: None,
            last_end: start,
            talk: 0,
            caller: leg.caller.clone(),
            queue: leg.queue.clone(),
            uniqueid: leg.uniqueid.clone(),
            sequence: leg.sequence,
            agent: None,
            disposition: None,
            dispositions: Vec::new(),
            dispositions_differ: false,
            notes: Vec::new(),
            kept: 0,
        };
        call.add(leg, index, budget);
        call
    }

    fn add(&mut self, leg: Leg, index: u64, budget: usize) {
        let start = leg.started_at.timestamp();
        self.last_index = index;
        self.legs += 1;
        self.started_at = self.started_at.min(leg.started_at);
        self.last_end = self.last_end.max(plus(start, leg.duration));
        if leg.answered {
            self.answered += 1;
            self.talk = self.talk.saturating_add(leg.billsec);
            let answer = plus(start, leg.duration.saturating_sub(leg.billsec));
            self.first_answer = Some(self.first_answer.map_or(answer, |a| a.min(answer)));
            self.agent = leg.agent;
        }
        let disposition = leg.disposition.clone().unwrap_or_default();
        if self.legs > 1 && self.disposition.clone().unwrap_or_default() != disposition {
            self.dispositions_differ = true;
        }
        if self.dispositions.len() < MAX_DISPOSITIONS && self.kept + disposition.len() <= budget {
            self.kept += disposition.len();
            self.dispositions.push(disposition);
        }
        self.disposition = leg.disposition;
        if let Some(note) = leg.notes {
            if !self.notes.contains(&note) && self.kept + note.len() <= budget {
                self.kept += note.len();
                self.notes.push(note);
            }
        }
    }

    fn finish(self) -> CallRecord {
        let start = self.started_at.timestamp();
        let until = self.first_answer.unwrap_or(self.last_end);
        let wait = u64::try_from(until.saturating_sub(start)).unwrap_or(0);
        let mut extra = Map::new();
        if let Some(u) = self.uniqueid {
            extra.insert("uniqueid".into(), u.into());
        }
        if let Some(s) = self.sequence {
            extra.insert("sequence".into(), s.into());
        }
        let merged = self.key.is_some();
        if merged {
            extra.insert("legs".into(), self.legs.into());
            if self.dispositions_differ {
                extra.insert("dispositions".into(), Value::from(self.dispositions));
            }
        }
        let answered = self.answered > 0;
        CallRecord {
            call_id: Some(self.id),
            thread_id: self.key,
            started_at: Some(self.started_at),
            caller: self.caller,
            agent: self.agent,
            queue: self.queue,
            wait_seconds: Some(wait),
            talk_seconds: Some(self.talk),
            // A row without a key may be one leg of several: its transfers are unknown.
            transfers: merged.then(|| self.answered.saturating_sub(1)),
            disposition: if answered {
                Some("ANSWERED".into())
            } else {
                self.disposition
            },
            abandoned: Some(!answered),
            notes: (!self.notes.is_empty()).then(|| self.notes.join("\n")),
            extra,
        }
    }
}

/// The rows of a file with the legs of each call merged, in bounded memory (see the module
/// docs): open calls by key, in arrival order, and the rows that touched them in the last
/// [`WINDOW`].
struct Merge<I> {
    legs: I,
    source: String,
    /// Bytes of dispositions and notes a call may hold.
    budget: usize,
    open: HashMap<String, Call>,
    /// The open calls by their first row.
    by_first: BTreeMap<u64, String>,
    /// (row, call) for the rows of the last [`WINDOW`] that were legs.
    touched: VecDeque<(u64, String)>,
    /// Rows read: the index after the last.
    read: u64,
    out: VecDeque<Row>,
    ended: bool,
}

impl<I: Iterator<Item = ReadRow<Leg>>> Merge<I> {
    /// Rows before the first row of every open call are done; with none open, every row read.
    fn rows_done(&self) -> u64 {
        self.by_first
            .keys()
            .next()
            .map_or(self.read, |first| (*first).min(self.read))
    }

    fn take(&mut self, r: ReadRow<Leg>) {
        self.read = r.index + 1;
        match r.result {
            Err(e) => self.out.push_back(Row {
                index: r.index,
                line: r.line,
                result: Err(e),
                rows_done: self.rows_done(),
            }),
            Ok(leg) => match leg.key.clone() {
                None => self.emit(Call::new(leg, r.index, r.line, self.budget)),
                Some(key) => {
                    match self.open.get_mut(&key) {
                        Some(call) => call.add(leg, r.index, self.budget),
                        None => {
                            let call = Call::new(leg, r.index, r.line, self.budget);
                            self.by_first.insert(r.index, key.clone());
                            self.open.insert(key.clone(), call);
                        }
                    }
                    self.touched.push_back((r.index, key));
                }
            },
        }
        // Calls none of whose rows came in the last WINDOW rows.
        while self
            .touched
            .front()
            .is_some_and(|(at, _)| at + WINDOW <= r.index)
        {
            if let Some((at, key)) = self.touched.pop_front() {
                if self.open.get(&key).is_some_and(|c| c.last_index == at) {
                    self.finish(&key);
                }
            }
        }
    }

    fn finish(&mut self, key: &str) {
        if let Some(call) = self.open.remove(key) {
            self.by_first.remove(&call.first_index);
            self.emit(call);
        }
    }

    /// `call` (no longer open) as a row.
    fn emit(&mut self, call: Call) {
        let (index, line) = (call.first_index, call.first_line);
        let result = call
            .finish()
            .into_signal(&self.source, "", index)
            .map_err(|reason| RowError::new(&reason, Vec::new()));
        let rows_done = self.rows_done();
        self.out.push_back(Row {
            index,
            line,
            result,
            rows_done,
        });
    }
}

impl<I: Iterator<Item = ReadRow<Leg>>> Iterator for Merge<I> {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        loop {
            if let Some(row) = self.out.pop_front() {
                return Some(row);
            }
            if self.ended {
                return None;
            }
            match self.legs.next() {
                Some(r) => self.take(r),
                None => {
                    self.ended = true;
                    self.touched.clear();
                    while let Some((_, key)) = self.by_first.pop_first() {
                        self.finish(&key);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<Row> {
        parse_rows(csv.as_bytes(), "pbx", Zone::UTC, Limits::default(), 0).collect()
    }

    fn signals(csv: &str) -> Vec<signaal_core::Signal> {
        rows(csv)
            .into_iter()
            .map(|r| r.result.map_err(|e| e.reason))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The 16 base columns of one call, then `extra` (already quoted as `cdr_csv` does).
    fn row(start: &str, extra: &str) -> String {
        format!(
            "\"\",\"0612345678\",\"200\",\"klantcontact\",\"\",\"SIP/trunk-00000001\",\"SIP/agent7-0000002a\",\"Queue\",\"zorg,t\",\"{start}\",\"2026-11-17 09:40:02\",\"2026-11-17 09:45:02\",1800,300,\"ANSWERED\",\"DOCUMENTATION\"{extra}\n"
        )
    }

    #[test]
    fn the_three_column_variants() {
        let csv = "\
\"\",\"0612345678\",\"200\",\"klantcontact\",\"\"\"Jan\"\" <0612345678>\",\"SIP/trunk-00000001\",\"SIP/agent7-0000002a\",\"Queue\",\"zorg,t,,,300\",\"2026-11-17 09:15:02\",\"2026-11-17 09:40:02\",\"2026-11-17 09:45:02\",1800,300,\"ANSWERED\",\"DOCUMENTATION\"
\"\",\"\",\"200\",\"klantcontact\",\"\"\"Piet\"\" <0201234567>\",\"SIP/trunk-00000002\",\"\",\"Queue\",\"zorg,t,,,300\",\"2026-11-17 10:00:00\",,\"2026-11-17 10:12:00\",720,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1763370000.2\"
\"\",\"0687654321\",\"300\",\"belastingen\",\"\",\"SIP/trunk-00000003\",\"SIP/agent2-0000002b\",\"Dial\",\"SIP/agent2\",\"2026-11-17 11:00:00\",\"2026-11-17 11:00:20\",\"2026-11-17 11:05:20\",320,300,\"ANSWERED\",\"DOCUMENTATION\",\"1763373600.3\",\"klant boos over aanslag\"
";
        let got = rows(csv);
        let s = signals(csv);
        assert_eq!(s[0].occurred_at.to_rfc3339(), "2026-11-17T09:15:02+00:00");
        assert_eq!(s[0].author.as_deref(), Some("0612345678"));
        assert_eq!(s[0].meta["wait_seconds"], 1500);
        assert_eq!(s[0].meta["talk_seconds"], 300);
        assert_eq!(s[0].meta["queue"], "zorg");
        assert_eq!(s[0].meta["agent"], "SIP/agent7");
        assert_eq!(s[0].meta["abandoned"], false);
        assert!(
            s[0].source_id.starts_with("cdr-"),
            "16 columns: no uniqueid"
        );
        assert_eq!(s[0].thread_id, None);
        assert_eq!(s[1].source_id, "1763370000.2", "the bare uniqueid");
        assert_eq!(s[1].thread_id.as_deref(), Some("1763370000.2"));
        assert_eq!(s[1].author.as_deref(), Some("\"Piet\" <0201234567>"));
        assert_eq!(s[1].meta["abandoned"], true);
        assert_eq!(s[1].meta["wait_seconds"], 720);
        assert_eq!(s[2].text, "klant boos over aanslag");
        assert_eq!(s[2].meta["queue"], "belastingen");
        assert_eq!(got[2].line, 3);
    }

    /// `newcdrcolumns = yes` adds peeraccount, linkedid and sequence after the optional uniqueid
    /// and userfield (cdr_csv.c, `build_csv_record`): 19, 20 or 21 columns.
    #[test]
    fn new_cdr_columns_in_every_combination() {
        let t = "2026-11-17 09:15:02";
        let cases = [
            // (extra columns, uniqueid, note, thread)
            (",\"\",\"1763370000.7\",12", None, "", Some("1763370000.7")),
            (
                ",\"1763370000.8\",\"\",\"1763370000.7\",13",
                Some("1763370000.8"),
                "",
                Some("1763370000.7"),
            ),
            (
                ",\"terugbellen\",\"\",\"1763370000.7\",14",
                None,
                "terugbellen",
                Some("1763370000.7"),
            ),
            (
                ",\"pbx1-1763370000.8\",\"klant boos\",\"\",\"pbx1-1763370000.7\",15",
                Some("pbx1-1763370000.8"),
                "klant boos",
                Some("pbx1-1763370000.7"),
            ),
            // 17 columns: a userfield alone (`loguserfield` without `loguniqueid`).
            (",\"lijn bezet\"", None, "lijn bezet", None),
        ];
        for (extra, uniqueid, note, thread) in cases {
            let s = signals(&row(t, extra));
            let s = &s[0];
            assert_eq!(s.text, note, "{extra}");
            assert_eq!(s.thread_id.as_deref(), thread, "{extra}");
            assert_eq!(
                s.meta.get("uniqueid").and_then(|v| v.as_str()),
                uniqueid,
                "{extra}"
            );
            match thread {
                Some(call) => assert_eq!(s.source_id, call, "{extra}"),
                None => assert!(s.source_id.starts_with("cdr-"), "{extra}"),
            }
            assert_eq!(s.meta["talk_seconds"], 300, "{extra}");
        }
        let bad = rows(&row(t, ",\"\",\"1763370000.7\",x"));
        assert!(
            bad[0]
                .result
                .as_ref()
                .is_err_and(|e| e.reason.contains("`sequence` (column 19) is not a number")),
            "{bad:?}"
        );
    }

    /// The legs of a queue call: two agents who did not pick up, one who did.
    fn queue_call(uniqueid: &str, answered: bool) -> String {
        let leg = |agent: &str, disposition: &str, duration: u32, billsec: u32| {
            row("2026-11-17 09:15:02", &format!(",\"{uniqueid}\""))
                .replace("agent7", agent)
                .replace(
                    "1800,300,\"ANSWERED\"",
                    &format!("{duration},{billsec},\"{disposition}\""),
                )
        };
        format!(
            "{}{}{}",
            leg("agent1", "NO ANSWER", 20, 0),
            leg("agent2", "NO ANSWER", 20, 0),
            if answered {
                leg("agent3", "ANSWERED", 1800, 300)
            } else {
                leg("agent3", "NO ANSWER", 45, 0)
            }
        )
    }

    /// Issue 12, item 2: the rows of one call (its queue attempts, its transfers) are one signal,
    /// with the bare `uniqueid` as its id and thread. Before, each leg was a signal, and a queue
    /// call answered by its third agent made two "abandoned" signals.
    #[test]
    fn the_legs_of_one_call_are_one_signal() {
        let s = signals(&queue_call("1763370000.0", true));
        assert_eq!(s.len(), 1, "three legs, one call: {s:#?}");
        let call = &s[0];
        assert_eq!(call.source_id, "1763370000.0");
        assert_eq!(call.thread_id.as_deref(), Some("1763370000.0"));
        assert_eq!(call.meta["abandoned"], false, "answered by its third agent");
        assert_eq!(call.meta["legs"], 3);
        assert_eq!(call.meta["agent"], "SIP/agent3");
        assert_eq!(call.meta["disposition"], "ANSWERED");
        assert_eq!(
            call.meta["dispositions"],
            serde_json::json!(["NO ANSWER", "NO ANSWER", "ANSWERED"])
        );
        assert_eq!(call.meta["wait_seconds"], 1500, "until the answer");
        assert_eq!(call.meta["talk_seconds"], 300);
        assert_eq!(call.meta["transfers"], 0);

        let s = signals(&queue_call("1763370001.0", false));
        assert_eq!(s.len(), 1, "{s:#?}");
        assert_eq!(s[0].meta["abandoned"], true, "nobody picked up");
        assert_eq!(s[0].meta["disposition"], "NO ANSWER");
        assert_eq!(s[0].meta["wait_seconds"], 45, "until the caller hung up");
        assert_eq!(s[0].meta["talk_seconds"], 0);
        assert_eq!(s[0].meta.get("agent"), None);
        assert_eq!(s[0].meta.get("dispositions"), None, "all the same");
        // The same file read again (a copy, a grown file) gives the same id.
        assert_eq!(signals(&queue_call("1763370001.0", false))[0].id, s[0].id);
    }

    /// A transfer: two answered legs, the second to the back office, one signal.
    #[test]
    fn a_transferred_call_counts_its_transfer_and_ends_with_the_last_agent() {
        let first = row("2026-11-17 09:15:02", ",\"1763370000.0\",\"klant boos\"");
        let second = row("2026-11-17 09:45:02", ",\"1763370000.0\",\"doorverbonden\"")
            .replace("agent7", "backoffice3")
            .replace("1800,300", "400,389");
        let s = signals(&format!("{first}{second}"));
        assert_eq!(s.len(), 1, "{s:#?}");
        assert_eq!(s[0].meta["transfers"], 1);
        assert_eq!(s[0].meta["agent"], "SIP/backoffice3");
        assert_eq!(s[0].meta["talk_seconds"], 689);
        assert_eq!(s[0].meta["wait_seconds"], 1500, "until the first answer");
        assert_eq!(s[0].text, "klant boos\ndoorverbonden");
        assert_eq!(s[0].occurred_at.to_rfc3339(), "2026-11-17T09:15:02+00:00");
    }

    /// Rows of two calls that ended at the same time are interleaved; each call is one signal,
    /// finished in the order they came in, with the line of its first row.
    #[test]
    fn interleaved_calls_are_told_apart() {
        let a = queue_call("1763370000.1", true);
        let b = queue_call("1763370000.2", false);
        let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
        let csv = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n",
            a[0], b[0], a[1], b[1], b[2], a[2]
        );
        let got = rows(&csv);
        let s = signals(&csv);
        let calls: Vec<(&str, bool, &serde_json::Value)> = s
            .iter()
            .map(|s| {
                (
                    s.source_id.as_str(),
                    s.meta["abandoned"].as_bool().unwrap_or_default(),
                    &s.meta["legs"],
                )
            })
            .collect();
        assert_eq!(
            calls,
            [
                ("1763370000.1", false, &serde_json::json!(3)),
                ("1763370000.2", true, &serde_json::json!(3))
            ]
        );
        assert_eq!((got[0].line, got[1].line), (1, 2));
    }

    /// A call is finished once WINDOW rows came after its last leg: a leg that comes later is
    /// another signal with the same id (the register keeps the first), and the checkpoint never
    /// passes the first row of a call still open.
    #[test]
    fn a_call_is_finished_after_a_window_of_rows_and_holds_back_the_checkpoint() {
        let leg = row("2026-11-17 09:15:02", ",\"1763370000.0\"");
        let other = |i: u64| {
            row("2026-11-17 10:00:00", &format!(",\"1763370100.{i}\""))
                .replace("\"ANSWERED\"", "\"BUSY\"")
        };
        let mut csv = leg.clone();
        for i in 0..WINDOW - 1 {
            csv.push_str(&other(i));
        }
        // Still in the window: merged.
        csv.push_str(&leg);
        for i in 0..WINDOW {
            csv.push_str(&other(1000 + i));
        }
        // After it: another signal of the same call.
        csv.push_str(&leg);
        let got = rows(&csv);
        let legs: Vec<&serde_json::Value> = got
            .iter()
            .filter_map(|r| r.result.as_ref().ok())
            .filter(|s| s.source_id == "1763370000.0")
            .map(|s| &s.meta["legs"])
            .collect();
        assert_eq!(
            legs,
            [&serde_json::json!(2), &serde_json::json!(1)],
            "one call of two legs, then a late leg"
        );
        // While the call at row 0 was open, no row was done.
        let before: Vec<u64> = got
            .iter()
            .take_while(|r| r.index != 0)
            .map(|r| r.rows_done)
            .collect();
        assert!(
            !before.is_empty() && before.iter().all(|d| *d == 0),
            "{before:?}"
        );
        let done: Vec<u64> = got.iter().map(|r| r.rows_done).collect();
        assert!(
            done.windows(2).all(|w| w[0] <= w[1]),
            "never backwards: {done:?}"
        );
        assert_eq!(done.last().copied(), Some(2 * WINDOW + 2));
    }

    /// Many calls of one leg each: a call is finished WINDOW rows after its leg, while the file
    /// is read (a bad row is passed on as soon as it is read), not all at the end.
    #[test]
    fn calls_are_finished_while_the_file_is_read() {
        let mut csv: String = (0..WINDOW + 44)
            .map(|i| row("2026-11-17 10:00:00", &format!(",\"1763370100.{i}\"")))
            .collect();
        csv.push_str("kapot\n");
        let got = rows(&csv);
        assert_eq!(got.len() as u64, WINDOW + 45);
        let bad = got.iter().position(|r| r.result.is_err());
        assert_eq!(
            bad,
            Some(44),
            "44 calls were finished before the last row was read"
        );
        assert_eq!(
            got[0].result.as_ref().map(|s| s.source_id.as_str()).ok(),
            Some("1763370100.0")
        );
    }

    /// A 16-column file has no uniqueid: every row is a signal of its own, as it comes.
    #[test]
    fn rows_without_uniqueid_are_not_merged() {
        let csv = row("2026-11-17 09:15:02", "")
            + &row("2026-11-17 09:15:02", "").replace("ANSWERED", "NO ANSWER");
        let got = rows(&csv);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got.iter().map(|r| r.rows_done).collect::<Vec<_>>(),
            [1, 2],
            "done as they come"
        );
        let s = signals(&csv);
        assert!(s.iter().all(|s| s.source_id.starts_with("cdr-")
            && s.thread_id.is_none()
            && s.meta.get("legs").is_none()
            && s.meta.get("transfers").is_none()));
        assert_ne!(s[0].id, s[1].id);
    }

    /// Without a uniqueid the id comes from the row itself, not its position: a row keeps its id
    /// when rows are added before or after it.
    #[test]
    fn ids_without_uniqueid_do_not_depend_on_the_row_number() {
        let a = row("2026-11-17 09:15:02", "");
        let b = row("2026-11-17 10:15:02", "");
        let alone = signals(&b);
        let grown = signals(&format!("{a}{b}"));
        assert_eq!(alone[0].id, grown[1].id);
        assert_ne!(grown[0].id, grown[1].id);
    }

    #[test]
    fn times_are_local_to_the_inbox_zone() {
        let csv = row("2026-11-17 09:15:02", "") + &row("2026-07-01 09:15:02", "");
        let got: Vec<String> =
            parse_rows(csv.as_bytes(), "pbx", Zone::default(), Limits::default(), 0)
                .filter_map(|r| r.result.ok())
                .map(|s| s.occurred_at.to_rfc3339())
                .collect();
        assert_eq!(
            got,
            ["2026-11-17T08:15:02+00:00", "2026-07-01T07:15:02+00:00"]
        );
    }

    #[test]
    fn bad_rows_have_a_reason() {
        let csv = "a,b,c\n\
\"\",\"1\",\"2\",\"c\",\"\",\"x\",\"\",\"Dial\",\"\",\"gisteren\",,\"\",10,0,\"BUSY\",\"BILLING\"\n\
\"\",\"1\",\"2\",\"c\",\"\",\"x\",\"\",\"Dial\",\"\",\"2026-11-17 11:00:00\",,\"\",tien,0,\"BUSY\",\"BILLING\"\n";
        let reasons: Vec<String> = rows(csv)
            .into_iter()
            .map(|r| r.result.err().map(|e| e.reason).unwrap_or_default())
            .collect();
        assert!(
            reasons[0].contains("16 to 21 columns") && reasons[0].contains("this one has 3"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("unparseable start"), "{reasons:?}");
        assert!(
            reasons[2].contains("`duration` is not a whole number"),
            "{reasons:?}"
        );
    }

    #[test]
    fn what_a_uniqueid_looks_like() {
        for (field, want) in [
            ("1763370000.12", true),
            ("pbx-1-1763370000.12", true),
            ("1763370000", false),
            ("klant boos", false),
            ("", false),
            ("1.2.3", false),
        ] {
            assert_eq!(is_uniqueid(field.as_bytes()), want, "{field}");
        }
    }
}
