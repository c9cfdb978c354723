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
        all.checkpoints.extend(b.checkpoints);
        Ok(())
    })?;
    Ok(all)
}

fn asterisk() -> ExportFormat {
    ExportFormat {
        profile: Profile::AsteriskCdr,
        mapping: CsvMapping::default(),
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
    Ok(())
}

#[test]
fn asterisk_18_columns_with_bad_rows_in_the_middle() -> Result {
    let b = read("asterisk-master-18.csv", &asterisk(), 0)?;
    let ids: Vec<&str> = b.signals.iter().map(|s| s.source_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "1763370000.0",
            "1763370001.1",
            "1763370002.2",
            "1763370003.3"
        ]
    );
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
            (
                "2026-11-17T09:15:00+00:00".to_string(),
                "Klant 25 min in de wacht, € 40 te veel betaald\ndrie keer doorverbonden"
            ),
            (
                "2026-11-17T09:20:00+00:00".to_string(),
                "Vriendelijk geholpen, café-eigenaar tevreden"
            ),
            (
                "2026-11-17T00:00:00+00:00".to_string(),
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
        mapping: CsvMapping::default(),
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
