//! The labelled corpus: CI fails when macro-F1 on the development part drops below 0.85.
//! The test part's and the hold-out part's numbers are printed for the record; rules are never
//! tuned on them.

use std::io::BufReader;

use signaal_classifier::eval::{evaluate, EvalReport};
use signaal_classifier::privacy::Redactor;
use signaal_classifier::taxonomy::Taxonomy;
use signaal_classifier::{Classifier, DEFAULT_TAXONOMY};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn score(part: &str) -> Result<EvalReport> {
    let path = format!("{}/../../corpus/{part}.ndjson", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::File::open(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
    let report = evaluate(
        &Classifier::default_taxonomy()?,
        &Redactor::new()?,
        BufReader::new(file),
    );
    eprintln!("== corpus/{part}.ndjson\n{report}");
    assert!(
        report.errors.is_empty(),
        "corpus/{part}.ndjson has bad lines: {:?}",
        report.errors
    );
    Ok(report)
}

#[test]
fn development_part_holds_the_floor() -> Result {
    let dev = score("dev")?;
    assert!(dev.n >= 200, "the development part has {} signals", dev.n);
    assert!(
        dev.macro_f1 >= 0.85,
        "macro-F1 on the development part fell to {:.3} (floor 0.85); misses:\n{}",
        dev.macro_f1,
        dev.misses
            .iter()
            .map(|(l, m)| format!("  line {l}: {m}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    Ok(())
}

#[test]
fn test_part_is_scored_and_reported() -> Result {
    let test = score("test")?;
    let dev_n = score("dev")?.n;
    assert!(
        test.n + dev_n >= 400,
        "the corpus has {} signals, fewer than 400",
        test.n + dev_n
    );
    Ok(())
}

/// The hold-outs, each written after the rules of its time were frozen and never tuned on: the
/// honest estimate on unseen phrasing. Reported, not held to a floor (see BENCHMARKS.md).
/// `holdout` and `holdout2` were looked at after their scoring (so they are contaminated for
/// later taxonomies); `holdout3` was written after `default-2026.11.4` was frozen.
#[test]
fn holdout_parts_are_scored_and_reported() -> Result {
    for (part, at_least) in [("holdout", 50), ("holdout2", 40), ("holdout3", 60)] {
        let report = score(part)?;
        assert!(
            report.n >= at_least,
            "corpus/{part}.ndjson has {} signals",
            report.n
        );
    }
    Ok(())
}

/// Subjects ride in the same pass as themes but never change them: over every part of the corpus,
/// the default taxonomy classifies exactly as it does with its subjects taken out, and every
/// subject's evidence is the redacted text at its offsets.
#[test]
fn subjects_never_change_the_themes() -> Result {
    let with = Classifier::default_taxonomy()?;
    let mut tax = Taxonomy::parse(DEFAULT_TAXONOMY)?;
    tax.subjects.clear();
    let without = Classifier::new(tax)?;
    let redactor = Redactor::new()?;
    let (mut texts, mut with_subject) = (0, 0);
    for part in ["dev", "test", "holdout", "holdout2", "holdout3"] {
        let path = format!("{}/../../corpus/{part}.ndjson", env!("CARGO_MANIFEST_DIR"));
        let corpus =
            std::fs::read_to_string(&path).map_err(|e| format!("cannot open {path}: {e}"))?;
        for line in corpus.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let Some(text) = v["text"].as_str() else {
                continue;
            };
            let text = redactor.redact(text);
            let (a, mut b) = (with.classify(&text), without.classify(&text));
            texts += 1;
            with_subject += usize::from(!a.subjects.is_empty());
            for tag in &a.subjects {
                for ev in &tag.evidence {
                    assert_eq!(
                        text.get(ev.start..ev.end),
                        Some(ev.text.as_str()),
                        "{part}: {text:?}"
                    );
                }
            }
            b.subjects.clone_from(&a.subjects);
            assert_eq!(
                a, b,
                "{part}: subjects changed the classification of {text:?}"
            );
        }
    }
    eprintln!("{with_subject} of {texts} corpus texts name a subject");
    assert!(
        with_subject * 4 >= texts,
        "only {with_subject} of {texts} texts name a subject"
    );
    Ok(())
}

#[test]
fn eval_reports_bad_lines_and_keeps_going() -> Result {
    let input = concat!(
        "{\"text\":\"40 minuten in de wacht\",\"themes\":[\"reachability\"],\"cause\":\"system\",\"kind\":\"complaint\"}\n",
        "not json\n",
        "{\"text\":\"x\",\"themes\":[\"no_such_theme\"],\"cause\":\"system\",\"kind\":\"complaint\"}\n",
        "\n",
        "{\"text\":\"Bedankt, top geholpen!\",\"themes\":[],\"cause\":\"unknown\",\"kind\":\"compliment\"}\n",
    );
    let r = evaluate(
        &Classifier::default_taxonomy()?,
        &Redactor::new()?,
        input.as_bytes(),
    );
    assert_eq!(r.n, 2);
    let lines: Vec<usize> = r.errors.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![2, 3]);
    assert!(r.errors[1].1.contains("no_such_theme"));
    assert!((r.kind_accuracy - 1.0).abs() < 1e-9, "{r}");
    Ok(())
}
