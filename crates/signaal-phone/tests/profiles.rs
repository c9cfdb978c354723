//! Every export profile through the worker's reader (`read_export`), from fixture files: the
//! signals, the rejected rows with their line and reason, and the checkpoints.

use std::path::{Path, PathBuf};

use signaal_phone::worker::read_export;
use signaal_phone::{CsvMapping, ExportFormat, Profile};
use signaal_source::Batch;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn read(name: &str, format: &ExportFormat, skip: u64) -> Result<Batch> {
    let mut all = Batch::default();
    read_export("fixtures", &fixture(name), format, skip, |b| {
        all.signals.extend(b.signals);
        all.dead_letters.extend(b.dead_letters);
        all.skipped.extend(b.skipped);
        all.checkpoints.extend(b.checkpoints);
        Ok(())
    })?;
    Ok(all)
}

fn asterisk() -> ExportFormat {
    ExportFormat {
        profile: Profile::AsteriskCdr,
        ..ExportFormat::default()
    }
}

#[test]
fn asterisk_16_columns() -> Result {
    let b = read("asterisk-master-16.csv", &asterisk(), 0)?;
    assert_eq!((b.signals.len(), b.dead_letters.len()), (4, 0));
    let abandoned: Vec<bool> = b
        .signals
        .iter()
        .map(|s| s.meta["abandoned"].as_bool().unwrap_or_default())
        .collect();
    assert_eq!(abandoned, [false, true, false, true]);
    assert_eq!(b.signals[0].meta["wait_seconds"], 1500);
    assert!(
        b.signals.iter().all(|s| s.text.is_empty()),
        "no userfield: calls without notes"
    );
    assert!(b.checkpoints.last().is_some_and(|(_, v)| v == "4:complete"));
    // No uniqueid: rows cannot be tied to their call, each is a signal with an id of its own.
    let ids: std::collections::BTreeSet<&str> = b.signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids.len(), 4);
    assert!(b
        .signals
        .iter()
        .all(|s| s.source_id.starts_with("cdr-") && s.thread_id.is_none()));
    Ok(())
}

#[test]
fn asterisk_18_columns_with_bad_rows_in_the_middle() -> Result {
    let b = read("asterisk-master-18.csv", &asterisk(), 0)?;
    // One signal per call: its uniqueid is its id and its thread.
    let calls: Vec<&str> = b
        .signals
        .iter()
        .filter_map(|s| s.thread_id.as_deref())
        .collect();
    assert_eq!(
        calls,
        [
            "1763370000.0",
            "1763370001.1",
            "1763370002.2",
            "1763370003.3"
        ]
    );
    assert!(b.signals.iter().all(
        |s| s.meta["uniqueid"].as_str() == Some(s.source_id.as_str())
            && s.thread_id.as_deref() == Some(s.source_id.as_str())
    ));
    assert_eq!(
        b.signals[0].text,
        "klant boos: al drie keer gebeld over de aanslag"
    );
    let reasons: Vec<(&str, &str)> = b
        .dead_letters
        .iter()
        .map(|d| {
            (
                d.origin.rsplit(':').next().unwrap_or_default(),
                d.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert_eq!(reasons[0].0, "3");
    assert!(reasons[0].1.contains("this one has 14"), "{reasons:?}");
    assert_eq!(reasons[1].0, "4");
    assert!(reasons[1].1.contains("unparseable start"), "{reasons:?}");
    // The DLQ keeps the row's fields.
    assert!(String::from_utf8_lossy(&b.dead_letters[1].payload).contains("gisteren"));

    // Resuming after two rows reads the rest and nothing before.
    let rest = read("asterisk-master-18.csv", &asterisk(), 2)?;
    assert_eq!(rest.signals.len(), 2);
    assert_eq!(rest.dead_letters.len(), 2);
    Ok(())
}

#[test]
fn generic_windows_1252_semicolons_dutch_dates_and_multiline_notes() -> Result {
    let b = read("generic-windows-1252.csv", &ExportFormat::default(), 0)?;
    assert_eq!(
        (b.signals.len(), b.dead_letters.len()),
        (3, 0),
        "{:?}",
        b.dead_letters
    );
    let got: Vec<(String, &str)> = b
        .signals
        .iter()
        .map(|s| (s.occurred_at.to_rfc3339(), s.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            // Times without a zone are Amsterdam's (CET in November).
            (
                "2026-11-17T08:15:00+00:00".to_string(),
                "Klant 25 min in de wacht, € 40 te veel betaald\ndrie keer doorverbonden"
            ),
            (
                "2026-11-17T08:20:00+00:00".to_string(),
                "Vriendelijk geholpen, café-eigenaar tevreden"
            ),
            (
                "2026-11-16T23:00:00+00:00".to_string(),
                "Vraag over vergunning"
            ),
        ]
    );
    assert_eq!(b.signals[0].meta["transfers"], 3);
    Ok(())
}

#[test]
fn generic_utf8_bom_tabs_own_column_names_and_invalid_bytes() -> Result {
    let format = ExportFormat {
        profile: Profile::GenericCsv,
        mapping: CsvMapping {
            call_id: "Gesprek".into(),
            timestamp: "Datum".into(),
            notes: "Notitie".into(),
            wait_seconds: "Wachttijd".into(),
            ..CsvMapping::default()
        },
        ..ExportFormat::default()
    };
    let b = read("generic-utf8-bom-tab.csv", &format, 0)?;
    let ids: Vec<&str> = b.signals.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(
        ids,
        ["T-1", "T-3"],
        "the BOM does not hide the first column"
    );
    assert_eq!(b.signals[1].meta["wait_seconds"], 600);
    assert_eq!(b.dead_letters.len(), 1);
    assert!(
        b.dead_letters[0].reason.contains("not valid UTF-8"),
        "{}",
        b.dead_letters[0].reason
    );
    assert!(
        b.dead_letters[0].origin.ends_with(":3"),
        "{}",
        b.dead_letters[0].origin
    );
    Ok(())
}

fn profile(profile: Profile) -> ExportFormat {
    ExportFormat {
        profile,
        ..ExportFormat::default()
    }
}

#[test]
fn genesys_cloud_conversation_details() -> Result {
    let b = read(
        "genesys-conversation-details.json",
        &profile(Profile::GenesysCloud),
        0,
    )?;
    assert_eq!(b.signals.len(), 2);
    let answered = &b.signals[0];
    assert_eq!(answered.source_id, "5f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
    assert_eq!(answered.author.as_deref(), Some("+31612345678"));
    assert_eq!(
        answered.occurred_at.to_rfc3339(),
        "2026-11-17T08:15:02.120+00:00"
    );
    assert_eq!(answered.meta["wait_seconds"], 1510);
    assert_eq!(answered.meta["talk_seconds"], 420);
    assert_eq!(answered.meta["transfers"], 2);
    assert_eq!(answered.meta["queue"], "Zorg en Welzijn");
    assert_eq!(answered.meta["agent"], "Agent Zeven");
    assert_eq!(answered.meta["disposition"], "klacht");
    assert_eq!(answered.meta["abandoned"], false);
    assert!(answered.text.starts_with("Klant 25 minuten in de wacht"));
    let abandoned = &b.signals[1];
    assert_eq!(abandoned.meta["abandoned"], true);
    assert_eq!(abandoned.meta["wait_seconds"], 710);
    assert_eq!(abandoned.text, "", "a call without notes still counts");
    assert_eq!(b.dead_letters.len(), 1);
    assert!(b.dead_letters[0]
        .reason
        .contains("`conversationStart` is missing"));
    assert!(
        b.dead_letters[0].origin.ends_with(":3"),
        "{}",
        b.dead_letters[0].origin
    );
    Ok(())
}

#[test]
fn twilio_calls_page_with_child_legs() -> Result {
    let b = read("twilio-calls-page.json", &profile(Profile::Twilio), 0)?;
    let ids: Vec<&str> = b.signals.iter().map(|s| &s.source_id[..4]).collect();
    assert_eq!(
        ids,
        ["CAaa", "CAdd"],
        "child legs are not calls of their own"
    );
    assert_eq!(b.signals[0].meta["transfers"], 2);
    assert_eq!(b.signals[0].meta["talk_seconds"], 360);
    assert_eq!(
        b.signals[0].occurred_at.to_rfc3339(),
        "2026-11-17T10:00:01+00:00"
    );
    assert_eq!(b.signals[0].author.as_deref(), Some("+31612345678"));
    assert_eq!(b.signals[1].meta["abandoned"], true);
    assert_eq!(b.signals[1].meta["disposition"], "canceled");
    assert_eq!(b.dead_letters.len(), 1);
    assert!(b.dead_letters[0]
        .reason
        .contains("`duration` is not a number"));
    Ok(())
}

#[test]
fn a_json_file_of_the_wrong_shape_is_the_files_error() -> Result {
    let dir = tempfile::tempdir()?;
    for (content, want) in [
        ("{\"entities\": []}", "no `conversations` list"),
        ("not json", "not valid JSON"),
        ("{\"conversations\": {}}", "not a list"),
    ] {
        let path = dir.path().join("page.json");
        std::fs::write(&path, content)?;
        let err = read_export("x", &path, &profile(Profile::GenesysCloud), 0, |_| Ok(()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(want), "{content}: {err}");
    }
    Ok(())
}

#[test]
fn generic_ndjson_with_bad_lines() -> Result {
    let b = read("generic-calls.ndjson", &profile(Profile::GenericNdjson), 0)?;
    let ids: Vec<&str> = b.signals.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(ids, ["N-1", "N-2", "N-5"]);
    assert_eq!(
        b.signals[0].meta["transfers"], 3,
        "numbers as strings are fine"
    );
    assert_eq!(
        b.signals[1].occurred_at.to_rfc3339(),
        "2025-11-18T08:00:00+00:00"
    );
    assert_eq!(b.signals[2].meta["abandoned"], true);
    let bad: Vec<(String, &str)> = b
        .dead_letters
        .iter()
        .map(|d| {
            (
                d.origin.rsplit(':').next().unwrap_or_default().to_string(),
                d.reason.as_str(),
            )
        })
        .collect();
    assert_eq!(bad.len(), 4, "{bad:?}");
    assert_eq!(bad[0].0, "4", "blank lines count as lines");
    assert!(bad[0].1.contains("not valid JSON"));
    assert!(bad[1].1.contains("unparseable timestamp"));
    assert!(bad[2].1.contains("not a JSON object"));
    assert!(bad[3].1.contains("`wait_seconds` is not a whole number"));
    // Resuming after three records skips them, blank lines notwithstanding.
    let rest = read("generic-calls.ndjson", &profile(Profile::GenericNdjson), 3)?;
    assert_eq!(rest.signals.len() + rest.dead_letters.len(), 4);
    Ok(())
}

/// The reasons of the rejected rows, with their line.
fn rejected(b: &Batch) -> Vec<(String, String)> {
    b.dead_letters
        .iter()
        .map(|d| {
            (
                d.origin.rsplit(':').next().unwrap_or_default().to_string(),
                d.reason.clone(),
            )
        })
        .collect()
}

/// Issue 12, item 2: CDR rows sharing a `uniqueid` are legs of one call: a queue writes a
/// `NO ANSWER` row for every agent who did not pick up. The rows of a call are one signal with
/// the uniqueid as its id; before, each leg was a signal and an answered queue call also made
/// "abandoned" ones. Here a queue call answered by its third agent, a call nobody answered
/// interleaved with one answered by its second agent, and a corrupt row among them.
#[test]
fn asterisk_the_legs_of_one_call_are_one_signal() -> Result {
    let b = read("asterisk-legs-one-call.csv", &asterisk(), 0)?;
    assert_eq!(
        (b.signals.len(), b.dead_letters.len()),
        (3, 1),
        "{:?}",
        rejected(&b)
    );
    assert!(b
        .signals
        .iter()
        .all(|s| s.thread_id.as_deref() == Some(s.source_id.as_str())));
    let calls: Vec<(&str, bool, u64, u64, &str)> = b
        .signals
        .iter()
        .map(|s| {
            (
                s.source_id.as_str(),
                s.meta["abandoned"].as_bool().unwrap_or_default(),
                s.meta["legs"].as_u64().unwrap_or_default(),
                s.meta["wait_seconds"].as_u64().unwrap_or_default(),
                s.meta.get("agent").and_then(|a| a.as_str()).unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [
            // Answered 54 s after the first agent's phone started ringing.
            ("1763384531.49", false, 3, 54, "PJSIP/agent9"),
            // Nobody picked up; the caller hung up after 70 s.
            ("1763384700.52", true, 2, 70, "-"),
            // Its second leg (line 6) is corrupt and on the DLQ; the other two are merged.
            ("1763384705.54", false, 2, 35, "PJSIP/agent6"),
        ]
    );
    let queue_call = &b.signals[0];
    assert_eq!(queue_call.meta["disposition"], "ANSWERED");
    assert_eq!(
        queue_call.meta["dispositions"],
        serde_json::json!(["NO ANSWER", "NO ANSWER", "ANSWERED"])
    );
    assert_eq!(queue_call.meta["talk_seconds"], 597);
    assert_eq!(queue_call.meta["transfers"], 0);
    assert_eq!(queue_call.text, "wil terugbellen over de brief");
    assert_eq!(b.signals[1].meta["disposition"], "NO ANSWER");
    assert_eq!(b.signals[1].meta.get("dispositions"), None, "all the same");
    // A merged call carries the line of its first row; a bad row is on the DLQ with its own.
    let lines: Vec<u64> = b
        .signals
        .iter()
        .map(|s| s.meta["line"].as_u64().unwrap_or_default())
        .collect();
    assert_eq!(lines, [1, 4, 5]);
    let reasons = rejected(&b);
    assert_eq!(reasons[0].0, "6", "{reasons:?}");
    assert!(
        reasons[0].1.contains("`duration` is not a whole number"),
        "{reasons:?}"
    );
    assert!(b.checkpoints.last().is_some_and(|(_, v)| v == "8:complete"));

    // A read resumed after four rows (a checkpoint, a grown copy) starts inside the interleaved
    // calls: what it reads of them keeps the calls' ids, so the register stores nothing twice.
    let rest = read("asterisk-legs-one-call.csv", &asterisk(), 4)?;
    let ids: Vec<&str> = rest.signals.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, [b.signals[2].id.as_str(), b.signals[1].id.as_str()]);
    assert_eq!(
        rest.signals[1].meta["legs"], 1,
        "the second leg of the unanswered call"
    );
    Ok(())
}

/// The worker commits every 1000 rows and resumes after the rows its checkpoint counts. With
/// legs merged, a checkpoint must not count the rows of a call still open: resumed from any
/// checkpoint (the register keeping the first signal of each id), every call is there whole.
#[test]
fn asterisk_checkpoints_never_cut_an_open_call() -> Result {
    const CALLS: u64 = 3500;
    let leg = |call: u64, leg: u64| {
        let disposition = if leg == 2 { "ANSWERED" } else { "NO ANSWER" };
        format!(
            "\"\",\"06{call:08}\",\"200\",\"klantcontact\",\"\",\"PJSIP/kpn-trunk-{call:08x}\",\"PJSIP/agent{leg}-{call:08x}\",\"Queue\",\"zorg,tT,,,300\",\"2026-11-17 14:02:11\",\"\",\"2026-11-17 14:02:31\",20,0,\"{disposition}\",\"DOCUMENTATION\",\"1763400000.{call}\",\"\"\n"
        )
    };
    // Legs of several calls interleaved; every seventh call's last leg comes after those of
    // later calls, so calls do not end in the order they began.
    let mut legs: Vec<(u64, u64, u64)> = (0..CALLS)
        .flat_map(|call| {
            let last = if call % 7 == 0 { 40 } else { 15 };
            [
                (call * 3, call, 0),
                (call * 3 + 6, call, 1),
                (call * 3 + last, call, 2),
            ]
        })
        .collect();
    legs.sort();
    let csv: String = legs.iter().map(|(_, call, n)| leg(*call, *n)).collect();
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("Master.csv");
    std::fs::write(&path, csv)?;
    let batches = |skip: u64| -> Result<Vec<Batch>> {
        let mut all = Vec::new();
        read_export("fixtures", &path, &asterisk(), skip, |b| {
            all.push(b);
            Ok(())
        })?;
        Ok(all)
    };
    let whole = batches(0)?;
    let calls: usize = whole.iter().map(|b| b.signals.len()).sum();
    assert_eq!(calls as u64, CALLS);
    let mut checked = 0;
    for (i, batch) in whole.iter().enumerate() {
        let Some(done) = batch
            .checkpoints
            .iter()
            .find_map(|(_, v)| v.parse::<u64>().ok())
        else {
            continue;
        };
        // What was committed up to this checkpoint, then what a restart from it reads.
        let mut stored = std::collections::HashMap::new();
        let resumed = batches(done)?;
        for s in whole[..=i].iter().chain(&resumed).flat_map(|b| &b.signals) {
            stored.entry(s.id.clone()).or_insert_with(|| s.meta.clone());
        }
        assert_eq!(stored.len() as u64, CALLS, "resumed after {done} rows");
        assert!(
            stored
                .values()
                .all(|m| m["legs"] == 3 && m["abandoned"] == false),
            "resumed after {done} rows, a call was cut: {:?}",
            stored.values().find(|m| m["legs"] != 3)
        );
        checked += 1;
    }
    assert!(
        checked >= 3,
        "{checked} checkpoints in the middle of the file"
    );
    Ok(())
}

/// Issue 12, item 3: `newcdrcolumns = yes` (peeraccount, linkedid, sequence) gives 19 or 21
/// columns (20 with only one of uniqueid and userfield); every row was refused before.
#[test]
fn asterisk_new_cdr_columns_19_and_21() -> Result {
    let b = read("asterisk-master-21.csv", &asterisk(), 0)?;
    assert_eq!(
        (b.signals.len(), b.dead_letters.len()),
        (2, 0),
        "{:?}",
        rejected(&b)
    );
    // The transfer's leg has a uniqueid of its own; the linkedid ties it to the call, and is
    // the call's id.
    let ids: Vec<(&str, Option<&str>)> = b
        .signals
        .iter()
        .map(|s| (s.source_id.as_str(), s.thread_id.as_deref()))
        .collect();
    assert_eq!(
        ids,
        [
            ("1763452860.61", Some("1763452860.61")),
            ("1763454000.65", Some("1763454000.65"))
        ]
    );
    let call = &b.signals[0];
    assert_eq!(call.text, "klant 18 minuten in de wacht");
    assert_eq!(call.meta["wait_seconds"], 810);
    assert_eq!(call.meta["legs"], 2);
    assert_eq!(call.meta["transfers"], 1);
    assert_eq!(call.meta["agent"], "PJSIP/backoffice3");
    assert_eq!(call.meta["talk_seconds"], 300 + 389);
    assert_eq!(call.meta["uniqueid"], "1763452860.61", "the first leg's");
    assert_eq!(call.meta["sequence"], 112);
    assert_eq!(b.signals[1].meta["abandoned"], true);

    let b = read("asterisk-master-19.csv", &asterisk(), 0)?;
    assert_eq!(
        (b.signals.len(), b.dead_letters.len()),
        (2, 0),
        "{:?}",
        rejected(&b)
    );
    assert_eq!(b.signals[0].thread_id.as_deref(), Some("1763456460.71"));
    assert_eq!(
        b.signals[0].source_id, "1763456460.71",
        "no uniqueid column: the call is its linkedid"
    );
    assert_eq!(b.signals[1].meta["disposition"], "BUSY");
    Ok(())
}

/// Issue 12, item 4: `Master.csv` is appended to for ever. Ids without a uniqueid come from the
/// row, not from a hash of the whole file and the row number, so the rows of a grown copy keep
/// their ids.
#[test]
fn asterisk_16_columns_ids_survive_the_file_growing() -> Result {
    let before = read("asterisk-master-16.csv", &asterisk(), 0)?;
    let after = read("asterisk-master-16-grown.csv", &asterisk(), 0)?;
    let ids = |b: &Batch| b.signals.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
    assert_eq!(after.signals.len(), 6);
    assert_eq!(ids(&before)[..], ids(&after)[..4]);
    // And a resumed read of the grown copy starts where the first copy ended.
    let rest = read("asterisk-master-16-grown.csv", &asterisk(), 4)?;
    assert_eq!(ids(&rest)[..], ids(&after)[4..]);
    Ok(())
}

/// Issue 12, item 9: Asterisk writes local time unless `usegmtime`; generic exports without an
/// offset too. Both are read in the inbox's `timezone`, `Europe/Amsterdam` by default.
#[test]
fn times_without_a_zone_are_read_in_the_inbox_zone() -> Result {
    let amsterdam = read("asterisk-master-21.csv", &asterisk(), 0)?;
    assert_eq!(
        amsterdam.signals[0].occurred_at.to_rfc3339(),
        "2026-11-18T08:01:00+00:00",
        "09:01 in Amsterdam (CET) is 08:01 UTC"
    );
    let gmt = ExportFormat {
        timezone: "UTC".parse()?,
        ..asterisk()
    };
    let utc = read("asterisk-master-21.csv", &gmt, 0)?;
    assert_eq!(
        utc.signals[0].occurred_at.to_rfc3339(),
        "2026-11-18T09:01:00+00:00"
    );
    assert_eq!(
        amsterdam.signals[0].id, utc.signals[0].id,
        "the zone changes the time, not the id"
    );
    Ok(())
}

/// Issue 12, item 5: a page of only child legs whose parents are on the next page gave 0
/// signals and no word. Every child leg is now a skip with its reason (and the parent's sid).
#[test]
fn twilio_child_legs_are_skipped_with_a_reason() -> Result {
    let b = read(
        "twilio-children-only-page.json",
        &profile(Profile::Twilio),
        0,
    )?;
    assert_eq!((b.signals.len(), b.dead_letters.len()), (0, 0));
    let skips: Vec<(&str, &str)> = b
        .skipped
        .iter()
        .map(|s| (s.reason, s.item.as_str()))
        .collect();
    assert_eq!(skips.len(), 2, "{skips:?}");
    assert!(skips
        .iter()
        .all(|(r, _)| *r == "twilio_child_leg_parent_elsewhere"));
    assert!(
        skips[0].1.contains("CA99999999999999999999999999999999"),
        "{skips:?}"
    );
    // Children whose parent is on the page count as its transfers, and are said to be skipped.
    let b = read("twilio-calls-page.json", &profile(Profile::Twilio), 0)?;
    assert_eq!(b.skipped.len(), 2);
    assert!(b.skipped.iter().all(|s| s.reason == "twilio_child_leg"));
    Ok(())
}

/// Issue 12, item 11: the agent is the one who talked (the first agent was alerted and never
/// answered), the disposition is the last wrap-up code (all are kept), and chat and callback
/// conversations are kept with their `media_type`.
#[test]
fn genesys_the_agent_who_talked_the_last_wrap_up_and_media_types() -> Result {
    let b = read(
        "genesys-agents-and-media.json",
        &profile(Profile::GenesysCloud),
        0,
    )?;
    assert_eq!(
        (b.signals.len(), b.dead_letters.len()),
        (3, 0),
        "{:?}",
        rejected(&b)
    );
    let voice = &b.signals[0];
    assert_eq!(voice.meta["media_type"], "voice");
    assert_eq!(
        voice.meta["agent"], "Agent Drie",
        "the last agent who talked"
    );
    assert_eq!(
        voice.meta["agents"],
        serde_json::json!(["Agent Twee", "Agent Drie"]),
        "Agent Een never answered"
    );
    assert_eq!(voice.meta["disposition"], "klacht");
    assert_eq!(
        voice.meta["wrap_up_codes"],
        serde_json::json!(["doorverbonden", "klacht"])
    );
    assert_eq!(voice.meta["wait_seconds"], 95);
    assert_eq!(voice.meta["talk_seconds"], 1140);
    let chat = &b.signals[1];
    assert_eq!(chat.meta["media_type"], "chat");
    assert_eq!(chat.meta["agent"], "Agent Vier");
    assert_eq!(chat.meta["disposition"], "vraag");
    let callback = &b.signals[2];
    assert_eq!(callback.meta["media_type"], "callback");
    assert_eq!(callback.meta.get("agent"), None, "nobody took it yet");
    assert_eq!(callback.author.as_deref(), Some("+31633334444"));
    Ok(())
}

/// Issue 12, item 12: a file that is not what the profile reads is the file's error, with the
/// reason (the worker moves it to `failed/`, `import` exits non-zero). Before, each of these
/// gave 0 signals and no error.
#[test]
fn a_file_for_another_profile_or_an_error_body_is_the_files_error() -> Result {
    let err = |file: &std::path::Path, p: Profile| {
        read_export("x", file, &profile(p), 0, |_| Ok(()))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let cases = [
        (
            fixture("genesys-conversation-details.json"),
            Profile::Twilio,
            "a Genesys Cloud conversation-details page, not a Twilio Calls page",
        ),
        (
            fixture("twilio-calls-page.json"),
            Profile::GenesysCloud,
            "a Twilio Calls page, not a Genesys Cloud conversation-details page",
        ),
        (
            fixture("twilio-error-20003.json"),
            Profile::Twilio,
            "an API error response 401 (code 20003): \"Authenticate\"",
        ),
        (
            fixture("twilio-error-20003.json"),
            Profile::GenesysCloud,
            "an API error response 401",
        ),
        (
            fixture("twilio-calls-page.json"),
            Profile::AsteriskCdr,
            "the file is JSON, not a CSV export for the `asterisk_cdr` profile",
        ),
        (
            fixture("genesys-conversation-details.json"),
            Profile::GenericCsv,
            "the file is JSON",
        ),
    ];
    for (file, p, want) in cases {
        let got = err(&file, p);
        assert!(got.contains(want), "{} as {p:?}: {got}", file.display());
    }
    let dir = tempfile::tempdir()?;
    for (content, p, want) in [
        (
            "[]",
            Profile::Twilio,
            "an empty list, not a Twilio Calls page",
        ),
        (
            "[]",
            Profile::GenesysCloud,
            "an empty list, not a Genesys Cloud",
        ),
        (
            "[{\"conversationId\": \"c-1\", \"conversationStart\": \"2026-11-17T08:00:00Z\"}]",
            Profile::Twilio,
            "the records of a Genesys Cloud conversation-details page, not of a Twilio Calls page",
        ),
        (
            "{\"data\": [{\"id\": \"1\", \"text\": \"hoi\"}], \"meta\": {\"result_count\": 1}}",
            Profile::GenesysCloud,
            "an X API response",
        ),
    ] {
        let path = dir.path().join("page.json");
        std::fs::write(&path, content)?;
        let got = err(&path, p);
        assert!(got.contains(want), "{content} as {p:?}: {got}");
    }
    // A Genesys query past the end of the data, and a Twilio page with no calls, are pages.
    for (content, p) in [
        ("{\"totalHits\": 0}", Profile::GenesysCloud),
        (
            "{\"calls\": [], \"next_page_uri\": null, \"page\": 3}",
            Profile::Twilio,
        ),
    ] {
        let path = dir.path().join("page.json");
        std::fs::write(&path, content)?;
        assert_eq!(err(&path, p), "", "{content}");
    }
    Ok(())
}

/// Issue 12, item 19: one unclosed quote (row 5 of 40) made the rest of the export one note.
/// The row is rejected with its line and every other row is read, the legitimate multi-line
/// note in row 20 included.
#[test]
fn an_unclosed_quote_loses_its_row_only() -> Result {
    let format = ExportFormat {
        mapping: CsvMapping {
            call_id: "gesprek_id".into(),
            ..CsvMapping::default()
        },
        ..ExportFormat::default()
    };
    let b = read("generic-unclosed-quote.csv", &format, 0)?;
    let bad = rejected(&b);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert_eq!(bad[0].0, "6", "row 5 is on line 6");
    assert!(
        bad[0].1.contains("a quoted field opened on line 6")
            && bad[0].1.contains("reading resumes at line 7"),
        "{}",
        bad[0].1
    );
    assert_eq!(b.signals.len(), 39);
    let note = b
        .signals
        .iter()
        .find(|s| s.source_id == "U-20")
        .map(|s| s.text.as_str());
    assert_eq!(
        note,
        Some("klant belde terug:\nvolgens haar \"de derde keer\"\ndeze week")
    );
    assert!(b.signals.iter().all(|s| s.text.len() < 200));
    assert_eq!(b.signals.last().map(|s| s.source_id.as_str()), Some("U-40"));
    Ok(())
}

/// Issue 12, item 20: a 50 MB line — a header or a row — is passed over without being held,
/// and the error about it stays readable.
#[test]
fn a_fifty_megabyte_line_is_bounded_and_so_is_its_error() -> Result {
    let dir = tempfile::tempdir()?;
    let huge = "x".repeat(50 * 1024 * 1024);
    // A row.
    let path = dir.path().join("calls.csv");
    std::fs::write(
        &path,
        format!(
            "call_id;started_at;notes\nA;2026-11-17 09:00;kort\nB;2026-11-17 09:05;{huge}\nC;2026-11-17 09:10;ook kort\n"
        ),
    )?;
    let mut all = Batch::default();
    read_export("x", &path, &ExportFormat::default(), 0, |b| {
        all.signals.extend(b.signals);
        all.dead_letters.extend(b.dead_letters);
        Ok(())
    })?;
    let ids: Vec<&str> = all.signals.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(ids, ["A", "C"]);
    assert_eq!(all.dead_letters.len(), 1);
    assert!(
        all.dead_letters[0]
            .reason
            .contains("line 3 is 52428819 bytes"),
        "{}",
        all.dead_letters[0].reason
    );
    assert!(all.dead_letters[0].payload.len() <= 64 * 1024);
    // A header: the file's error, cut to a readable size.
    std::fs::write(&path, format!("{huge};datum\n1;2026-11-17\n"))?;
    let err = read_export("x", &path, &ExportFormat::default(), 0, |_| Ok(()))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("the header line cannot be read"),
        "{}",
        &err[..err.len().min(300)]
    );
    assert!(err.len() < 2048, "{} bytes", err.len());
    // A header just under the line limit without the timestamp column: quoted, but briefly.
    std::fs::write(
        &path,
        format!("{};datum\n1;2026-11-17\n", &huge[..900 * 1024]),
    )?;
    let err = read_export("x", &path, &ExportFormat::default(), 0, |_| Ok(()))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("no `started_at` column"),
        "{}",
        &err[..err.len().min(300)]
    );
    assert!(err.len() < 2048, "{} bytes", err.len());
    Ok(())
}
