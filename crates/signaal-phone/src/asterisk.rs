//! The Asterisk CDR profile: `Master.csv` as written by `cdr_csv`.
//!
//! No header. The documented column order is accountcode, src, dst, dcontext, clid, channel,
//! dstchannel, lastapp, lastdata, start, answer, end, duration, billsec, disposition, amaflags;
//! with `loguniqueid = yes` the uniqueid follows (17 columns), with `loguserfield = yes` too the
//! userfield (18 columns). Times are `YYYY-MM-DD HH:MM:SS` (local or, with `usegmtime`, UTC:
//! signaal reads them as UTC).

use std::io::Read;

use crate::csv_export::{parse_time, rows, Row};
use crate::record::CallRecord;

const START: usize = 9;
const DURATION: usize = 12;
const BILLSEC: usize = 13;
const DISPOSITION: usize = 14;
const UNIQUEID: usize = 16;
const USERFIELD: usize = 17;

/// Reads every row after the first `skip`.
pub fn parse_rows<R: Read>(
    reader: R,
    source: &str,
    fingerprint: &str,
    skip: u64,
) -> impl Iterator<Item = Row> {
    let rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(reader);
    let source = source.to_string();
    let fingerprint = fingerprint.to_string();
    rows(rdr, skip, b',', move |rec, index| {
        call(rec).and_then(|c| c.into_signal(&source, &fingerprint, index))
    })
}

fn call(rec: &csv::ByteRecord) -> Result<CallRecord, String> {
    if !(16..=18).contains(&rec.len()) {
        return Err(format!(
            "an Asterisk CDR row has 16, 17 or 18 columns; this one has {}",
            rec.len()
        ));
    }
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
    let started_at = parse_time(&start).ok_or_else(|| format!("unparseable start {start:?}"))?;
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
    Ok(CallRecord {
        call_id: if rec.len() > UNIQUEID {
            text(UNIQUEID)?
        } else {
            None
        },
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
        notes: if rec.len() > USERFIELD {
            text(USERFIELD)?
        } else {
            None
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(csv: &str) -> Vec<Row> {
        parse_rows(csv.as_bytes(), "pbx", "fp", 0).collect()
    }

    #[test]
    fn the_three_column_variants() {
        let csv = "\
\"\",\"0612345678\",\"200\",\"klantcontact\",\"\"\"Jan\"\" <0612345678>\",\"SIP/trunk-00000001\",\"SIP/agent7-0000002a\",\"Queue\",\"zorg,t,,,300\",\"2026-11-17 09:15:02\",\"2026-11-17 09:40:02\",\"2026-11-17 09:45:02\",1800,300,\"ANSWERED\",\"DOCUMENTATION\"
\"\",\"\",\"200\",\"klantcontact\",\"\"\"Piet\"\" <0201234567>\",\"SIP/trunk-00000002\",\"\",\"Queue\",\"zorg,t,,,300\",\"2026-11-17 10:00:00\",,\"2026-11-17 10:12:00\",720,0,\"NO ANSWER\",\"DOCUMENTATION\",\"1763370000.2\"
\"\",\"0687654321\",\"300\",\"belastingen\",\"\",\"SIP/trunk-00000003\",\"SIP/agent2-0000002b\",\"Dial\",\"SIP/agent2\",\"2026-11-17 11:00:00\",\"2026-11-17 11:00:20\",\"2026-11-17 11:05:20\",320,300,\"ANSWERED\",\"DOCUMENTATION\",\"1763373600.3\",\"klant boos over aanslag\"
";
        let got = rows(csv);
        let s: Vec<_> = got
            .iter()
            .map(|r| r.result.as_ref().map_err(|e| e.reason.clone()))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s[0].occurred_at.to_rfc3339(), "2026-11-17T09:15:02+00:00");
        assert_eq!(s[0].author.as_deref(), Some("0612345678"));
        assert_eq!(s[0].meta["wait_seconds"], 1500);
        assert_eq!(s[0].meta["talk_seconds"], 300);
        assert_eq!(s[0].meta["queue"], "zorg");
        assert_eq!(s[0].meta["agent"], "SIP/agent7");
        assert_eq!(s[0].meta["abandoned"], false);
        assert!(s[0].source_id.starts_with("fp:"), "16 columns: no uniqueid");
        assert_eq!(s[1].source_id, "1763370000.2");
        assert_eq!(s[1].author.as_deref(), Some("\"Piet\" <0201234567>"));
        assert_eq!(s[1].meta["abandoned"], true);
        assert_eq!(s[1].meta["wait_seconds"], 720);
        assert_eq!(s[2].text, "klant boos over aanslag");
        assert_eq!(s[2].meta["queue"], "belastingen");
        assert_eq!(got[2].line, 3);
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
            reasons[0].contains("16, 17 or 18 columns; this one has 3"),
            "{reasons:?}"
        );
        assert!(reasons[1].contains("unparseable start"), "{reasons:?}");
        assert!(
            reasons[2].contains("`duration` is not a whole number"),
            "{reasons:?}"
        );
    }
}
