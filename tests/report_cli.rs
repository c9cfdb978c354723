//! The register's analysis from the command line and over HTTP (issue 14), on the register the
//! demo fills: `signaal report …` in its three formats agree with each other, an action is
//! measured over the same signals a Pareto list counts, bad input is refused with a reason, and
//! `signaal serve` answers the same reports, wants its token and refuses bad requests with 400.

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::{signaal_bin, Result};

fn signaal(db: &str, dir: &Path) -> Result<Command> {
    let mut cmd = Command::new(signaal_bin()?);
    cmd.current_dir(dir).env("SIGNAAL_STORE__URL", db);
    Ok(cmd)
}

fn ok(out: Output) -> Result<String> {
    if !out.status.success() {
        return Err(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn refused(out: Output, reason: &str) -> Result {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted; wanted {reason:?}");
    assert!(stderr.contains(reason), "{reason:?} not in {stderr}");
    Ok(())
}

const PERIOD: [&str; 4] = ["--from", "2026-11-01", "--to", "2026-11-30"];

#[test]
fn reports_agree_in_every_format_and_refuse_bad_input() -> Result {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("register.db").display());
    ok(signaal(&db, dir.path())?
        .args(["demo", "--database", &db])
        .output()?)?;
    let run =
        |args: &[&str]| -> Result<String> { ok(signaal(&db, dir.path())?.args(args).output()?) };

    // Pareto: JSON and CSV say the same; the 80 % line is where the cumulative share crosses it.
    let json: serde_json::Value = serde_json::from_str(&run(&[
        &["report", "pareto"][..],
        &PERIOD,
        &["--format", "json"],
    ]
    .concat())?)?;
    let rows = json["rows"].as_array().ok_or("rows")?;
    let total: u64 = rows.iter().filter_map(|r| r["count"].as_u64()).sum();
    assert_eq!(json["total"].as_u64(), Some(total));
    assert!(total > 200, "every theme row of the 210 samples: {total}");
    let mut before = 0.0;
    for r in rows {
        let vital = r["vital_few"].as_bool().ok_or("vital_few")?;
        assert_eq!(vital, before < 0.8, "{r}");
        before = r["cumulative_share"].as_f64().ok_or("share")?;
    }
    let csv = run(&[&["report", "pareto"][..], &PERIOD, &["--format", "csv"]].concat())?;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("theme,subject,count,share,cumulative_share,vital_few")
    );
    let first = lines.next().ok_or("a row")?;
    assert!(first.starts_with(&format!(
        "{},,{},",
        rows[0]["key"]["theme"].as_str().ok_or("theme")?,
        rows[0]["count"]
    )));
    assert_eq!(lines.count() + 1, rows.len());
    let table = run(&[&["report", "pareto"][..], &PERIOD].concat())?;
    assert!(table.contains("── marks the 80 % line"), "{table}");

    // Recurrence: levels follow the counts, patterns first.
    let rec: serde_json::Value = serde_json::from_str(&run(&[
        &["report", "recurrence"][..],
        &PERIOD,
        &["--format", "json"],
    ]
    .concat())?)?;
    let groups = rec["theme_subject"].as_array().ok_or("groups")?;
    assert!(!groups.is_empty());
    let mut seen_lower = false;
    for g in groups {
        let n = g["count"].as_u64().ok_or("count")?;
        let level = g["level"].as_str().ok_or("level")?;
        let want = match n {
            1 => "coincidence",
            2 => "notable",
            _ => "pattern",
        };
        assert_eq!(level, want, "{g}");
        if level != "pattern" {
            seen_lower = true;
        } else {
            assert!(!seen_lower, "patterns first");
        }
    }

    // Frequency × impact: each theme against the medians.
    let imp: serde_json::Value = serde_json::from_str(&run(&[
        &["report", "impact"][..],
        &PERIOD,
        &["--format", "json"],
    ]
    .concat())?)?;
    let (mc, mi) = (
        imp["median_count"].as_f64().ok_or("median")?,
        imp["median_impact"].as_f64().ok_or("median")?,
    );
    for r in imp["rows"].as_array().ok_or("rows")? {
        let frequent = r["count"].as_f64().ok_or("count")? >= mc;
        let severe = r["mean_impact"].as_f64().ok_or("impact")? >= mi;
        let want = match (frequent, severe) {
            (true, true) => "act_now",
            (false, true) => "watch",
            (true, false) => "quick_wins",
            (false, false) => "monitor",
        };
        assert_eq!(r["quadrant"], want, "{r}");
        let impact = r["mean_impact"].as_f64().ok_or("impact")?;
        assert!(
            impact > 0.0 && impact <= 10.0,
            "scored at classification: {r}"
        );
    }

    // An action is measured over the same signals a Pareto list counts.
    let added: serde_json::Value = serde_json::from_str(&run(&[
        "action",
        "add",
        "--theme",
        "digital_service",
        "--subject",
        "digid",
        "--description",
        "DigiD-koppeling hersteld",
        "--owner",
        "ict",
        "--start",
        "2026-11-14",
    ])?)?;
    let id = added["id"].as_i64().ok_or("id")?;
    let actions: serde_json::Value =
        serde_json::from_str(&run(&["report", "actions", "--format", "json"])?)?;
    let m = &actions[0]["measurement"];
    let pair = |from: &str, to: &str| -> Result<u64> {
        let v: serde_json::Value = serde_json::from_str(&run(&[
            "report",
            "pareto",
            "--by",
            "theme-subject",
            "--theme",
            "digital_service",
            "--subject",
            "digid",
            "--from",
            from,
            "--to",
            to,
            "--format",
            "json",
        ])?)?;
        v["total"].as_u64().ok_or_else(|| "total".into())
    };
    assert_eq!(
        m["after"]["count"].as_u64(),
        Some(pair("2026-11-14", "2027-01-08")?)
    );
    assert_eq!(
        m["before"]["count"].as_u64(),
        Some(pair("2026-09-19", "2026-11-13")?)
    );
    let id_text = id.to_string();
    let updated: serde_json::Value =
        serde_json::from_str(&run(&["action", "update", &id_text, "--status", "done"])?)?;
    assert_eq!(updated["status"], "done");
    assert!(run(&["action", "list"])?.contains("DigiD-koppeling hersteld"));

    // Bad input: a reason, never a panic, never exit 0.
    let cmd =
        |args: &[&str]| -> Result<Output> { Ok(signaal(&db, dir.path())?.args(args).output()?) };
    refused(
        cmd(&[
            "report",
            "pareto",
            "--from",
            "2026-11-30",
            "--to",
            "2026-11-01",
        ])?,
        "ends (2026-11-01) before it starts (2026-11-30)",
    )?;
    refused(
        cmd(&["report", "pareto", "--theme", "nope"])?,
        "unknown theme \"nope\"",
    )?;
    refused(
        cmd(&["report", "impact", "--channel", "fax"])?,
        "unknown channel \"fax\"",
    )?;
    refused(
        cmd(&["report", "pareto", "--from", "2026-13-01"])?,
        "--from",
    )?;
    refused(
        cmd(&["report", "summary", "--format", "csv"])?,
        "no CSV form",
    )?;
    refused(
        cmd(&["action", "update", &id_text, "--status", "finished"])?,
        "not one of planned, running, done",
    )?;
    refused(
        cmd(&["action", "update", "9999", "--status", "done"])?,
        "no action #9999",
    )?;
    refused(
        cmd(&[
            "action",
            "add",
            "--description",
            "x",
            "--owner",
            "y",
            "--start",
            "2026-11-01",
        ])?,
        "a theme, a subject or both",
    )?;
    // Years whose derived days would need five digits (as the API refuses them).
    refused(
        cmd(&["report", "recurrence", "--to", "9999-12-31"])?,
        "9999-01-01 is out of range (years 1000 to 8999)",
    )?;
    refused(
        cmd(&[
            "action",
            "add",
            "--theme",
            "payment",
            "--description",
            "x",
            "--owner",
            "y",
            "--start",
            "9999-12-01",
        ])?,
        "`--start` = 9999-12-01 is out of range",
    )?;
    Ok(())
}

/// A new subject reaches history: `signaal reclassify` with an organisation's taxonomy over the
/// demo's register finds it in signals stored before it existed, reports say which version
/// they cover, themes stay as they were, and a second run has nothing left to do.
#[test]
fn reclassify_brings_a_new_subject_to_history() -> Result {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("register.db").display());
    ok(signaal(&db, dir.path())?
        .args(["demo", "--database", &db])
        .output()?)?;
    let taxonomy = dir.path().join("gemeente.toml");
    std::fs::write(
        &taxonomy,
        "extends = \"default\"\nversion = \"gemeente-2026.12\"\n\n\
         [subjects.letter_or_form]\nkind = \"document\"\n\
         label = { nl = \"brief of formulier\", en = \"letter or form\" }\n\
         phrases.nl = [\"brief\", \"formulier*\"]\nphrases.en = [\"letter\", \"form\"]\n",
    )?;
    let run = |args: &[&str], own: bool| -> Result<String> {
        let mut cmd = signaal(&db, dir.path())?;
        if own {
            cmd.env("SIGNAAL_CLASSIFIER__TAXONOMY", &taxonomy);
        }
        ok(cmd.args(args).output()?)
    };
    let pareto = |by: &str| -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&run(
            &[
                &["report", "pareto", "--by", by][..],
                &PERIOD,
                &["--format", "json"],
            ]
            .concat(),
            true,
        )?)?)
    };
    let themes_before = pareto("theme")?;
    let versions = &themes_before["classifiers"];
    let stored = versions[0]["signals"].as_u64().ok_or("signals")?;
    assert_eq!(versions.as_array().map(Vec::len), Some(1), "{versions}");
    assert!(
        versions[0]["classifier"]
            .as_str()
            .is_some_and(|v| v.starts_with("default-")),
        "{versions}"
    );
    let subjects = pareto("subject")?;
    assert!(
        !subjects.to_string().contains("letter_or_form"),
        "{subjects}"
    );

    let said = run(&["reclassify", "--batch", "7"], true)?;
    assert!(
        said.contains(&format!("{stored} reclassified with gemeente-2026.12")),
        "{said}"
    );
    let subjects = pareto("subject")?;
    let letters = subjects["rows"]
        .as_array()
        .ok_or("rows")?
        .iter()
        .find(|r| r["key"]["subject"] == "letter_or_form")
        .and_then(|r| r["count"].as_u64());
    assert!(letters.is_some_and(|n| n >= 10), "{subjects}");
    // The taxonomy's version, and the learned layer's after a `+`.
    let by = subjects["classifiers"].as_array().ok_or("classifiers")?;
    assert_eq!(by.len(), 1, "{subjects}");
    assert!(
        by[0]["classifier"]
            .as_str()
            .is_some_and(|v| v.starts_with("gemeente-2026.12+default-")),
        "{subjects}"
    );
    assert_eq!(by[0]["signals"].as_u64(), Some(stored));
    let themes_after = pareto("theme")?;
    assert_eq!(
        themes_after["rows"], themes_before["rows"],
        "the organisation's taxonomy adds a subject only"
    );
    let table = run(&[&["report", "pareto"][..], &PERIOD].concat(), true)?;
    assert!(
        table.contains("Classified by gemeente-2026.12+default-")
            && table.contains(&format!("({stored} signals).")),
        "{table}"
    );

    let again = run(&["reclassify"], true)?;
    assert!(
        again.contains("0 reclassified with gemeente-2026.12+default-")
            && again.contains(&format!("(0 changed), {stored} already current")),
        "{again}"
    );
    // Back to the default taxonomy: every signal moves again.
    let back = run(&["reclassify", "--since", "2026-11-01"], false)?;
    assert!(back.contains(&format!("{stored} reclassified")), "{back}");
    let subjects = pareto("subject")?;
    assert!(
        !subjects.to_string().contains("letter_or_form"),
        "{subjects}"
    );
    Ok(())
}
