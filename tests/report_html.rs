//! The monthly report as HTML (issue 15): `signaal report summary --format html` over the
//! register the demo fills is one self-contained page whose charts have a mark for every row
//! the JSON reports give, with nothing loaded from elsewhere; other reports refuse the format.

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

const PERIOD: [&str; 4] = ["--from", "2026-11-01", "--to", "2026-11-30"];

/// The page's `<section id="…">`, up to its end.
fn section<'a>(html: &'a str, id: &str) -> Result<&'a str> {
    let open = format!("<section id=\"{id}\">");
    let start = html
        .find(&open)
        .ok_or_else(|| format!("the page has no section `{id}`"))?;
    let rest = &html[start..];
    let end = rest
        .find("</section>")
        .ok_or_else(|| format!("section `{id}` does not end"))?;
    Ok(&rest[..end])
}

/// `(data-key, data-value)` of every mark `<… class="{class}" data-key="…" data-value="…"`, in
/// the page's order.
fn marks(html: &str, class: &str) -> Vec<(String, String)> {
    let open = format!("class=\"{class}\" data-key=\"");
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find(&open) {
        rest = &rest[i + open.len()..];
        let Some((key, after)) = rest.split_once('"') else {
            break;
        };
        let value = after
            .strip_prefix(" data-value=\"")
            .and_then(|v| v.split_once('"'))
            .map_or(String::new(), |(v, _)| v.to_string());
        out.push((key.to_string(), value));
    }
    out
}

/// The report rows as `(key, count)` the way the charts key them: theme id, subject id.
fn rows(report: &serde_json::Value, field: &str) -> Result<Vec<(String, String)>> {
    report["rows"]
        .as_array()
        .ok_or("rows")?
        .iter()
        .map(|r| {
            let key = r["key"][field].as_str().ok_or("key")?.to_string();
            let count = r["count"].as_u64().ok_or("count")?.to_string();
            Ok((key, count))
        })
        .collect()
}

/// Every `src`/`href` value and every `url(` of the page: a self-contained page has no
/// reference that leaves it.
fn external_references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=", "href=", "xlink:href="] {
        for (i, _) in html.match_indices(attr) {
            let value: String = html[i + attr.len()..]
                .trim_start_matches(['"', '\''])
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | ' ' | '>'))
                .collect();
            let lower = value.to_ascii_lowercase();
            if lower.starts_with("http:") || lower.starts_with("https:") || lower.starts_with("//")
            {
                found.push(format!("{attr}{value}"));
            }
        }
    }
    for needle in ["url(", "@import", "<link", "<script", "<iframe", "<img"] {
        if html.to_ascii_lowercase().contains(needle) {
            found.push(needle.to_string());
        }
    }
    found
}

#[test]
fn the_summary_as_one_self_contained_page_with_a_mark_per_row() -> Result {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("register.db").display());
    ok(signaal(&db, dir.path())?
        .args(["demo", "--database", &db])
        .output()?)?;
    let run =
        |args: &[&str]| -> Result<String> { ok(signaal(&db, dir.path())?.args(args).output()?) };
    let json = |args: &[&str]| -> Result<serde_json::Value> {
        Ok(serde_json::from_str(&run(&[
            args,
            &PERIOD[..],
            &["--format", "json"],
        ]
        .concat())?)?)
    };
    // An action, so the page has a before/after chart.
    run(&[
        "action",
        "add",
        "--theme",
        "digital_service",
        "--subject",
        "digid",
        "--description",
        "DigiD-koppeling <hersteld>",
        "--owner",
        "ict",
        "--start",
        "2026-11-14",
    ])?;

    let html = run(&[&["report", "summary"][..], &PERIOD, &["--format", "html"]].concat())?;
    assert!(
        html.starts_with("<!DOCTYPE html>\n<html lang=\"nl\">"),
        "{}",
        &html[..html.len().min(200)]
    );
    assert_eq!(html.matches("<!DOCTYPE html>").count(), 1, "one document");
    assert_eq!(html.matches("<html").count(), 1, "one document");
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("@media print"), "printable");
    let external = external_references(&html);
    assert!(external.is_empty(), "external references: {external:?}");

    // Pareto of themes and of subjects: a bar per row, in the same order with the same counts.
    let themes = json(&["report", "pareto", "--by", "theme"])?;
    let theme_rows = rows(&themes, "theme")?;
    assert!(theme_rows.len() >= 5, "{themes}");
    let part = section(&html, "pareto-themes")?;
    assert_eq!(part.matches("<svg").count(), 1);
    assert_eq!(part.matches("class=\"bar\"").count(), theme_rows.len());
    assert_eq!(marks(part, "bar"), theme_rows);
    let vital = themes["rows"]
        .as_array()
        .ok_or("rows")?
        .iter()
        .filter(|r| r["vital_few"] == true)
        .count();
    assert_eq!(part.matches("data-vital=\"true\"").count(), vital);
    assert!(
        part.contains(">digitale dienstverlening</td>"),
        "theme labels from the taxonomy"
    );

    let subjects = json(&["report", "pareto", "--by", "subject"])?;
    let subject_rows = rows(&subjects, "subject")?;
    assert!(!subject_rows.is_empty(), "{subjects}");
    let part = section(&html, "pareto-subjects")?;
    assert_eq!(part.matches("class=\"bar\"").count(), subject_rows.len());
    assert_eq!(marks(part, "bar"), subject_rows);

    // Frequency × impact: a point per theme.
    let impact = json(&["report", "impact"])?;
    let impact_rows = rows(&impact, "theme")?;
    let part = section(&html, "impact")?;
    assert_eq!(part.matches("class=\"point\"").count(), impact_rows.len());
    let mut points = marks(part, "point");
    let mut want = impact_rows.clone();
    points.sort();
    want.sort();
    assert_eq!(points, want);

    // Key numbers and patterns as the JSON summary has them.
    let summary = json(&["report", "summary"])?;
    let signals = summary["signals"].as_u64().ok_or("signals")?;
    let part = section(&html, "key-numbers")?;
    assert!(
        part.contains(&format!("<td>Signalen</td><td class=\"n\">{signals}</td>")),
        "{part}"
    );
    let patterns = summary["patterns"].as_array().ok_or("patterns")?.len();
    assert!(patterns > 0, "the demo has patterns");
    let part = section(&html, "patterns")?;
    assert_eq!(part.matches("<tr><td>").count(), patterns.min(20));

    // The action: two bars with the counts `report actions` measures, and its verdict.
    let actions: serde_json::Value =
        serde_json::from_str(&run(&["report", "actions", "--format", "json"])?)?;
    let m = &actions[0]["measurement"];
    let part = section(&html, "actions")?;
    assert_eq!(part.matches("<svg").count(), 1);
    assert_eq!(
        marks(part, "bar"),
        [
            ("before".to_string(), m["before"]["count"].to_string()),
            ("after".to_string(), m["after"]["count"].to_string()),
        ]
    );
    assert!(part.contains("DigiD-koppeling &lt;hersteld&gt;"), "{part}");
    assert!(part.contains("class=\"verdict\""), "{part}");
    assert!(
        html.contains("Geclassificeerd door default-"),
        "classifier versions"
    );

    // Every chart: an accessible name, a title, a viewBox.
    let charts = html.matches("<svg ").count();
    assert_eq!(charts, 4, "two Pareto charts, the scatter, one action");
    assert_eq!(html.matches("role=\"img\"").count(), charts);
    assert_eq!(html.matches(" viewBox=\"0 0 ").count(), charts);
    assert!(!html.contains("NaN") && !html.contains("inf\""));

    // English headings on request.
    let en = run(&[
        &["report", "summary"][..],
        &PERIOD,
        &["--format", "html", "--lang", "en"],
    ]
    .concat())?;
    assert!(en.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
    assert!(en.contains("<h2>Pareto of themes</h2>"));

    // Only the summary has an HTML form.
    for report in ["pareto", "recurrence", "impact", "actions"] {
        let out = signaal(&db, dir.path())?
            .args([&["report", report][..], &PERIOD, &["--format", "html"]].concat())
            .output()?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "`report {report} --format html` exited 0"
        );
        assert!(
            stderr.contains("only the summary has an HTML form"),
            "{report}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{report}: wrote to stdout");
    }
    Ok(())
}
