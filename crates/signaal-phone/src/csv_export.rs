//! The generic CSV profile: column names come from config, delimiter is detected.

use std::io::{BufRead, BufReader, Read};
use std::sync::LazyLock;

use chrono::format::{Item, Parsed, StrftimeItems};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use signaal_core::Signal;

use crate::record::CallRecord;
use crate::records::{Limits, Record, Records};
use crate::Zone;

/// Which CSV column holds what. Defaults match signaal's documented generic export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CsvMapping {
    pub call_id: String,
    pub timestamp: String,
    /// The timestamp's format (chrono `strftime` syntax, e.g. `%m/%d/%Y %I:%M %p`), for exports
    /// whose times none of the built-in forms read; times without a zone are in the inbox's
    /// `timezone`.
    pub timestamp_format: Option<String>,
    pub caller: String,
    pub agent: String,
    pub queue: String,
    pub wait_seconds: String,
    pub talk_seconds: String,
    pub transfers: String,
    pub disposition: String,
    pub notes: String,
}

impl Default for CsvMapping {
    fn default() -> Self {
        CsvMapping {
            call_id: "call_id".into(),
            timestamp: "started_at".into(),
            timestamp_format: None,
            caller: "caller".into(),
            agent: "agent".into(),
            queue: "queue".into(),
            wait_seconds: "wait_seconds".into(),
            talk_seconds: "talk_seconds".into(),
            transfers: "transfers".into(),
            disposition: "disposition".into(),
            notes: "notes".into(),
        }
    }
}

/// One data row: its 1-based line in the file and what became of it.
#[derive(Debug)]
pub struct Row {
    /// 0-based index among data rows (the checkpoint unit).
    pub index: u64,
    pub line: u64,
    pub result: Result<Signal, RowError>,
    /// Data rows finished once this row is committed: where a resumed read starts. `index + 1`,
    /// except for Asterisk calls merged from several rows, which hold back the rows of calls
    /// still open (see [`crate::asterisk`]).
    pub rows_done: u64,
}

#[derive(Debug, Clone)]
pub struct RowError {
    pub reason: String,
    pub raw: Vec<u8>,
    /// The file ended inside a quoted field: a file still being written may yet close it.
    pub unfinished: bool,
}

impl RowError {
    /// `reason` cut to a readable size (it may quote the row).
    pub fn new(reason: &str, raw: Vec<u8>) -> Self {
        RowError {
            reason: signaal_core::brief(reason).into_owned(),
            raw,
            unfinished: false,
        }
    }
}

/// Picks `,`, `;` or tab by which occurs most in the header line.
pub fn detect_delimiter(head: &[u8]) -> u8 {
    let line = head.split(|b| *b == b'\n').next().unwrap_or(head);
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|d| line.iter().filter(|b| *b == d).count())
        .unwrap_or(b',')
}

/// Parses a timestamp in the forms call-centre exports use: RFC 3339, ISO without zone,
/// `dd-mm-jjjj hh:mm[:ss]`, `dd-mm-jjjj`. Times without a zone are wall-clock times in `zone`.
pub fn parse_time(s: &str, zone: Zone) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // The shape tells the family apart (`2026-11-02…` or `02-11-2026…`), so a row tries only
    // formats that can match; a timestamp is parsed in every row of exports of millions.
    let b = s.as_bytes();
    let formats = if b.get(4) == Some(&b'-') {
        if let Ok(t) = DateTime::parse_from_rfc3339(s) {
            return Some(t.with_timezone(&Utc));
        }
        &TIME_FORMATS.iso
    } else if b.get(2) == Some(&b'-') {
        &TIME_FORMATS.dutch
    } else {
        return None;
    };
    formats.iter().find_map(|(items, date_only)| {
        let mut parsed = Parsed::new();
        chrono::format::parse(&mut parsed, s, items.iter()).ok()?;
        if *date_only {
            parsed
                .to_naive_date()
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        } else {
            parsed.to_naive_datetime_with_offset(0).ok()
        }
        .map(|t| zone.instant(t))
    })
}

/// The formats [`parse_time`] knows, parsed once: (items, whether it is a date alone).
struct TimeFormats {
    iso: Vec<(Vec<Item<'static>>, bool)>,
    dutch: Vec<(Vec<Item<'static>>, bool)>,
}

static TIME_FORMATS: LazyLock<TimeFormats> = LazyLock::new(|| {
    let items = |formats: &[&'static str]| {
        formats
            .iter()
            .map(|f| (StrftimeItems::new(f).collect(), !f.contains("%H")))
            .collect()
    };
    TimeFormats {
        iso: items(&[
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d",
        ]),
        dutch: items(&["%d-%m-%Y %H:%M:%S", "%d-%m-%Y %H:%M", "%d-%m-%Y"]),
    }
});

/// [`parse_time`], or with an explicit `format` (with or without a zone, or a date alone).
pub fn parse_time_as(s: &str, format: Option<&str>, zone: Zone) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    let Some(f) = format else {
        return parse_time(s, zone).ok_or_else(|| format!("unparseable timestamp {s:?}"));
    };
    DateTime::parse_from_str(s, f)
        .map(|t| t.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(s, f).map(|t| zone.instant(t)))
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(s, f)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| zone.instant(t))
        })
        .ok_or_else(|| format!("timestamp {s:?} does not match the format {f:?}"))
}

/// How to read a CSV export: its delimiter, the zone of its times, the bounds of its fields.
#[derive(Debug, Clone, Copy)]
pub struct CsvRead {
    pub delimiter: u8,
    pub zone: Zone,
    pub limits: Limits,
}

/// Reads every data row after the first `skip` from a CSV export. `fingerprint` identifies the
/// file's content, so rows without a call id still get a stable id. A header without the
/// timestamp column is the whole file's problem, not every row's: it is the error.
pub fn parse_rows<R: Read>(
    reader: R,
    read: CsvRead,
    mapping: &CsvMapping,
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> Result<impl Iterator<Item = Row>, String> {
    let mut records = Records::new(
        BufReader::with_capacity(64 * 1024, reader),
        read.delimiter,
        read.limits,
    );
    let headers: Vec<String> = match records.next() {
        None => Vec::new(),
        Some(Record::Fields { fields, .. }) => fields
            .iter()
            .map(|c| {
                String::from_utf8_lossy(c)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_lowercase()
            })
            .collect(),
        Some(Record::Bad { reason, .. }) => {
            return Err(format!("the header line cannot be read: {reason}"));
        }
    };
    let col = |name: &str| headers.iter().position(|h| *h == name.to_lowercase());
    let cols = Columns {
        call_id: col(&mapping.call_id),
        timestamp: col(&mapping.timestamp),
        caller: col(&mapping.caller),
        agent: col(&mapping.agent),
        queue: col(&mapping.queue),
        wait: col(&mapping.wait_seconds),
        talk: col(&mapping.talk_seconds),
        transfers: col(&mapping.transfers),
        disposition: col(&mapping.disposition),
        notes: col(&mapping.notes),
        width: headers.len(),
        timestamp_format: mapping.timestamp_format.clone(),
        zone: read.zone,
    };
    if cols.timestamp.is_none() {
        return Err(if headers.iter().all(|h| h.is_empty()) {
            "the file is empty or has no header line".to_string()
        } else {
            format!(
                "no `{}` column in the header {:?} (set the inbox's `mapping`)",
                mapping.timestamp, headers
            )
        });
    }
    let (ts, format, zone) = (cols.timestamp, cols.timestamp_format.clone(), read.zone);
    records.set_rows(
        headers.len()..=headers.len(),
        Some(Box::new(move |rec: &csv::ByteRecord| {
            ts.and_then(|i| rec.get(i))
                .and_then(|b| std::str::from_utf8(b).ok())
                .is_some_and(|t| parse_time_as(t, format.as_deref(), zone).is_ok())
        })),
    );
    let source = source.to_string();
    let fingerprint = fingerprint.to_string();
    Ok(rows(records, skip, read.delimiter, move |rec, index| {
        row_signal(rec, &cols, &source, &fingerprint, index)
    }))
}

/// The data rows of `records` after the first `skip`, each with its line and the signal `signal`
/// makes of it or the reason it cannot. A rejected row keeps its fields, joined by `delimiter`,
/// for the dead-letter topic.
pub fn rows<R: BufRead>(
    records: Records<R>,
    skip: u64,
    delimiter: u8,
    signal: impl Fn(&csv::ByteRecord, u64) -> Result<Signal, String>,
) -> impl Iterator<Item = Row> {
    read_rows(records, skip, delimiter, signal).map(|r| Row {
        index: r.index,
        line: r.line,
        result: r.result,
        rows_done: r.index + 1,
    })
}

/// One data row read into a `T` (or the reason it cannot be), before it becomes a [`Row`].
pub(crate) struct ReadRow<T> {
    pub index: u64,
    pub line: u64,
    pub result: Result<T, RowError>,
}

/// [`rows`] for any `T` a row is read into: the row loop shared by the CSV profiles.
pub(crate) fn read_rows<R: BufRead, T>(
    records: Records<R>,
    skip: u64,
    delimiter: u8,
    read: impl Fn(&csv::ByteRecord, u64) -> Result<T, String>,
) -> impl Iterator<Item = ReadRow<T>> {
    records
        .enumerate()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .map(move |(i, rec)| {
            let index = i as u64;
            match rec {
                Record::Bad {
                    line,
                    reason,
                    raw,
                    unfinished,
                } => ReadRow {
                    index,
                    line,
                    result: Err(RowError {
                        unfinished,
                        ..RowError::new(&reason, raw)
                    }),
                },
                Record::Fields { line, fields } => ReadRow {
                    index,
                    line,
                    result: read(&fields, index).map_err(|reason| {
                        RowError::new(&reason, fields.iter().collect::<Vec<_>>().join(&delimiter))
                    }),
                },
            }
        })
}

struct Columns {
    call_id: Option<usize>,
    timestamp: Option<usize>,
    caller: Option<usize>,
    agent: Option<usize>,
    queue: Option<usize>,
    wait: Option<usize>,
    talk: Option<usize>,
    transfers: Option<usize>,
    disposition: Option<usize>,
    notes: Option<usize>,
    width: usize,
    timestamp_format: Option<String>,
    zone: Zone,
}

fn row_signal(
    rec: &csv::ByteRecord,
    c: &Columns,
    source: &str,
    fingerprint: &str,
    index: u64,
) -> Result<Signal, String> {
    if rec.len() != c.width {
        return Err(format!(
            "row has {} columns, header has {}",
            rec.len(),
            c.width
        ));
    }
    let field = |i: Option<usize>| -> Result<Option<String>, String> {
        match i.and_then(|i| rec.get(i)) {
            None => Ok(None),
            Some(b) => {
                let s = std::str::from_utf8(b)
                    .map_err(|e| format!("column {} is not valid UTF-8: {e}", i.unwrap_or(0) + 1))?
                    .trim();
                Ok((!s.is_empty()).then(|| s.to_string()))
            }
        }
    };
    let number = |i: Option<usize>, name: &str| -> Result<Option<u64>, String> {
        match field(i)? {
            None => Ok(None),
            Some(s) => s
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("`{name}` is not a whole number: {s:?}")),
        }
    };
    let ts = field(c.timestamp)?.ok_or("timestamp is empty")?;
    let started_at = parse_time_as(&ts, c.timestamp_format.as_deref(), c.zone)?;
    CallRecord {
        call_id: field(c.call_id)?,
        started_at: Some(started_at),
        caller: field(c.caller)?,
        agent: field(c.agent)?,
        queue: field(c.queue)?,
        wait_seconds: number(c.wait, "wait_seconds")?,
        talk_seconds: number(c.talk, "talk_seconds")?,
        transfers: number(c.transfers, "transfers")?,
        disposition: field(c.disposition)?,
        abandoned: None,
        notes: field(c.notes)?,
        ..CallRecord::default()
    }
    .into_signal(source, fingerprint, index)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table tests read zone-less times as UTC; the zone has its own test.
    fn utc(delimiter: u8) -> CsvRead {
        CsvRead {
            delimiter,
            zone: Zone::UTC,
            limits: Limits::default(),
        }
    }

    fn rows(csv: &str) -> Vec<Row> {
        let d = detect_delimiter(csv.as_bytes());
        match parse_rows(
            csv.as_bytes(),
            utc(d),
            &CsvMapping::default(),
            "cc",
            "fp",
            0,
        ) {
            Ok(rows) => rows.collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn every_timestamp_form_exports_use() {
        let cases = [
            (
                "2026-11-17T09:15:00+01:00",
                Some("2026-11-17T08:15:00+00:00"),
            ),
            ("2026-11-17T09:15:00Z", Some("2026-11-17T09:15:00+00:00")),
            ("2026-11-17 09:15:07", Some("2026-11-17T09:15:07+00:00")),
            ("2026-11-17T09:15:07", Some("2026-11-17T09:15:07+00:00")),
            ("2026-11-17 09:15", Some("2026-11-17T09:15:00+00:00")),
            ("2026-11-17", Some("2026-11-17T00:00:00+00:00")),
            (" 17-11-2026 09:15:07 ", Some("2026-11-17T09:15:07+00:00")),
            ("17-11-2026 09:15", Some("2026-11-17T09:15:00+00:00")),
            ("17-11-2026", Some("2026-11-17T00:00:00+00:00")),
            ("31-02-2026", None),
            ("2026-11-17 25:00", None),
            ("17-11-2026 09:15 extra", None),
            ("gisteren", None),
            ("", None),
            ("17/11/2026", None),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_time(input, Zone::UTC)
                    .map(|t| t.to_rfc3339())
                    .as_deref(),
                want,
                "{input:?}"
            );
        }
    }

    #[test]
    fn semicolon_export_with_dutch_dates_and_multiline_notes() {
        let csv = "call_id;started_at;caller;agent;queue;wait_seconds;talk_seconds;transfers;disposition;notes\n\
c1;17-11-2026 09:15;0612345678;agent7;zorg;1500;300;3;resolved;\"klant 25 min in de wacht\ndrie keer doorverbonden\"\n\
c2;2026-11-17T10:00:00+01:00;;agent2;zorg;20;60;0;;\n";
        let got = rows(csv);
        assert_eq!(got.len(), 2);
        let s = match &got[0].result {
            Ok(s) => s,
            Err(e) => panic!("row 1 should parse: {}", e.reason),
        };
        assert_eq!(s.source_id, "c1");
        assert_eq!(s.occurred_at.to_rfc3339(), "2026-11-17T09:15:00+00:00");
        assert_eq!(s.text, "klant 25 min in de wacht\ndrie keer doorverbonden");
        assert_eq!(s.meta.get("transfers"), Some(&serde_json::Value::from(3)));
        assert_eq!(s.author.as_deref(), Some("0612345678"));
        let s2 = match &got[1].result {
            Ok(s) => s,
            Err(e) => panic!("row 2 should parse: {}", e.reason),
        };
        assert_eq!(s2.text, "", "calls without notes still become signals");
        assert_eq!(s2.occurred_at.to_rfc3339(), "2026-11-17T09:00:00+00:00");
    }

    #[test]
    fn bad_rows_are_rejected_with_line_and_reason_and_the_rest_continues() {
        let csv = "call_id,started_at,notes,wait_seconds\n\
a,2026-11-17 09:00:00,ok,5\n\
b,gisteren,bad date,5\n\
c,2026-11-17 09:00:00,too,many,columns\n\
d,2026-11-17 09:00:00,bad wait,vijf\n\
e,2026-11-17 09:00:00,fine,\n";
        let got = rows(csv);
        let summary: Vec<(u64, Result<String, String>)> = got
            .iter()
            .map(|r| {
                (
                    r.line,
                    r.result
                        .as_ref()
                        .map(|s| s.source_id.clone())
                        .map_err(|e| e.reason.clone()),
                )
            })
            .collect();
        assert_eq!(summary[0], (2, Ok("a".into())));
        assert!(
            matches!(&summary[1], (3, Err(r)) if r.contains("unparseable timestamp")),
            "{:?}",
            summary[1]
        );
        assert!(
            matches!(&summary[2], (4, Err(r)) if r.contains("5 columns")),
            "{:?}",
            summary[2]
        );
        assert!(
            matches!(&summary[3], (5, Err(r)) if r.contains("not a whole number")),
            "{:?}",
            summary[3]
        );
        assert_eq!(summary[4], (6, Ok("e".into())));
    }

    #[test]
    fn rows_without_call_id_get_stable_ids_and_skip_resumes() {
        let csv = "started_at,notes\n2026-11-17,a\n2026-11-17,b\n";
        let first: Vec<String> = rows(csv)
            .into_iter()
            .filter_map(|r| r.result.ok())
            .map(|s| s.id)
            .collect();
        let again: Vec<String> = rows(csv)
            .into_iter()
            .filter_map(|r| r.result.ok())
            .map(|s| s.id)
            .collect();
        assert_eq!(first, again);
        assert_ne!(first[0], first[1]);
        let resumed: Vec<Row> = match parse_rows(
            csv.as_bytes(),
            utc(b','),
            &CsvMapping::default(),
            "cc",
            "fp",
            1,
        ) {
            Ok(rows) => rows.collect(),
            Err(e) => panic!("{e}"),
        };
        assert_eq!(resumed.len(), 1);
        assert_eq!(resumed[0].index, 1);
    }

    #[test]
    fn a_header_without_the_timestamp_column_is_the_files_error() {
        let m = CsvMapping::default();
        let err = |csv: &'static str| {
            parse_rows(csv.as_bytes(), utc(b','), &m, "cc", "fp", 0)
                .err()
                .unwrap_or_default()
        };
        assert!(err("call_id,datum\n1,2026-11-17\n").contains("no `started_at` column"));
        assert!(err("").contains("empty"));
    }

    #[test]
    fn an_explicit_timestamp_format() {
        let us = Some("%m/%d/%Y %I:%M %p");
        assert_eq!(
            parse_time_as("11/17/2026 02:30 PM", us, Zone::UTC).map(|t| t.to_rfc3339()),
            Ok("2026-11-17T14:30:00+00:00".to_string())
        );
        assert_eq!(
            parse_time_as(
                "17.11.2026 09:15 +0100",
                Some("%d.%m.%Y %H:%M %z"),
                Zone::UTC
            )
            .map(|t| t.to_rfc3339()),
            Ok("2026-11-17T08:15:00+00:00".to_string())
        );
        assert!(parse_time_as("2026-11-17 09:00", us, Zone::UTC)
            .is_err_and(|e| e.contains("does not match the format")));
        let csv = "call_id,started_at\nA,11/17/2026 02:30 PM\n";
        let m = CsvMapping {
            timestamp_format: us.map(str::to_string),
            ..CsvMapping::default()
        };
        let rows: Vec<Row> = match parse_rows(csv.as_bytes(), utc(b','), &m, "cc", "fp", 0) {
            Ok(rows) => rows.collect(),
            Err(e) => panic!("{e}"),
        };
        assert!(rows[0].result.is_ok(), "{:?}", rows[0].result);
    }

    #[test]
    fn times_without_a_zone_are_in_the_inbox_zone_amsterdam_by_default() {
        let csv = "call_id;started_at\n\
A;2026-11-17 09:15:00\n\
B;2026-07-01T12:00:00\n\
C;2026-07-01T12:00:00+02:00\n\
D;29-03-2026 02:30\n\
E;25-10-2026 02:30\n";
        let read = CsvRead {
            zone: Zone::default(),
            ..utc(b';')
        };
        let got: Vec<String> =
            match parse_rows(csv.as_bytes(), read, &CsvMapping::default(), "cc", "fp", 0) {
                Ok(rows) => rows
                    .map(|r| match r.result {
                        Ok(s) => s.occurred_at.to_rfc3339(),
                        Err(e) => e.reason,
                    })
                    .collect(),
                Err(e) => panic!("{e}"),
            };
        assert_eq!(
            got,
            [
                "2026-11-17T08:15:00+00:00",
                "2026-07-01T10:00:00+00:00",
                "2026-07-01T10:00:00+00:00",
                "2026-03-29T01:30:00+00:00",
                "2026-10-25T00:30:00+00:00",
            ]
        );
    }

    #[test]
    fn delimiter_detection() {
        assert_eq!(detect_delimiter(b"a;b;c\n1,2;3"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"a,b"), b',');
    }
}
