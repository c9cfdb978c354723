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
