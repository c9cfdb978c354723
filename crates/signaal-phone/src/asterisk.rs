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
//! **One signal per CDR row.** A call can have several rows — one per leg (transfers, queue
//! attempts, forwards) — sharing its `uniqueid`, and with `newcdrcolumns` its `linkedid`. Each
//! row becomes its own signal, with the call in `thread_id` (`linkedid`, else `uniqueid`) and an
//! id from the row's content (`{uniqueid}/{hash}`, or `cdr-{hash}` without a uniqueid). Legs are
//! not merged: they are written when each leg ends, possibly far apart in the file or in a later
//! copy of it, and a signal once published cannot be amended. Ids from content (never the row
//! number) stay the same when the file grows, so a re-read of a grown `Master.csv` adds nothing
//! twice.
//!
//! Times are `YYYY-MM-DD HH:MM:SS` in the server's local time unless `usegmtime = yes`: they are
//! read in the inbox's `timezone` (set `UTC` for `usegmtime`).

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use crate::csv_export::{parse_time, rows, Row};
use crate::record::CallRecord;
use crate::records::{Limits, Records};
use crate::Zone;

const START: usize = 9;
const DURATION: usize = 12;
const BILLSEC: usize = 13;
const DISPOSITION: usize = 14;

/// The widths `cdr_csv` writes.
pub const WIDTHS: std::ops::RangeInclusive<usize> = 16..=21;

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

/// Reads every row after the first `skip`; times without a zone are in `zone`.
pub fn parse_rows<R: Read>(
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
    let source = source.to_string();
    rows(records, skip, b',', move |rec, index| {
        call(rec, zone).and_then(|c| c.into_signal(&source, "", index))
    })
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

fn call(rec: &csv::ByteRecord, zone: Zone) -> Result<CallRecord, String> {
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
    let hash = content_hash(rec);
    let mut extra = serde_json::Map::new();
    if let Some(u) = &uniqueid {
        extra.insert("uniqueid".into(), u.clone().into());
    }
    if let Some(s) = sequence {
        extra.insert("sequence".into(), s.into());
    }
    Ok(CallRecord {
        call_id: Some(match &uniqueid {
            Some(u) => format!("{u}/{hash}"),
            None => format!("cdr-{hash}"),
        }),
        thread_id: linkedid.or(uniqueid),
        started_at: Some(started_at),
        caller,
        agent: if answered { agent } else { None },
        queue,
        // Until answered; an unanswered call waited its whole duration.
        wait_seconds: Some(if answered {
            duration.saturating_sub(billsec)
        } else {
            duration
        }),
        talk_seconds: Some(billsec),
        transfers: None,
        disposition,
        abandoned: Some(!answered),
        notes: layout.userfield.map(text).transpose()?.flatten(),
        extra,
    })
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
        assert!(
            s[1].source_id.starts_with("1763370000.2/"),
            "{}",
            s[1].source_id
        );
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
            match uniqueid {
                Some(u) => assert!(s.source_id.starts_with(&format!("{u}/")), "{extra}"),
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

    /// Several CDR rows of one call (queue attempts, a transfer) share its `uniqueid`: each leg
    /// is a signal of its own, with the call in `thread_id`.
    #[test]
    fn legs_of_one_call_are_signals_of_their_own_in_one_thread() {
        let csv = format!(
            "{}{}{}",
            row("2026-11-17 09:15:02", ",\"1763370000.0\""),
            row("2026-11-17 09:15:02", ",\"1763370000.0\"").replace("agent7", "agent9"),
            row("2026-11-17 09:15:02", ",\"1763370000.0\"").replace("ANSWERED", "NO ANSWER"),
        );
        let s = signals(&csv);
        assert_eq!(s.len(), 3);
        let ids: std::collections::BTreeSet<&str> = s.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 3, "three legs, three ids: {ids:?}");
        assert!(s
            .iter()
            .all(|s| s.thread_id.as_deref() == Some("1763370000.0")));
        assert_eq!(s[1].meta["agent"], "SIP/agent9");
        // The same row read again (a copy of the file, a grown file) has the same id.
        assert_eq!(signals(&csv)[1].id, s[1].id);
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
