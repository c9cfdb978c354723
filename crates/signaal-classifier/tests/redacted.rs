//! Reclassification (issue 14) has only the register's text, which was redacted when the signal
//! arrived. The pipeline classifies the redacted text in the first place, so classifying the
//! stored text again must give exactly the stored classification (evidence offsets included),
//! and redacting stored text again must change nothing. And the redaction itself must not change
//! what a signal is about: on every signal of the corpus, with personal data put in, its themes, subjects, cause and kind
//! are the same whether the original or the redacted text is classified.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use signaal_classifier::{Classifier, Pipeline};
use signaal_core::{Channel, Classification, Signal};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn corpus() -> Result<Vec<(String, Channel, String)>> {
    let dir = format!("{}/../../corpus", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for part in ["dev", "test", "holdout", "holdout2", "holdout3"] {
        let path = format!("{dir}/{part}.ndjson");
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)?;
            let field = |k: &str| {
                v[k].as_str()
                    .map(str::to_string)
                    .ok_or(format!("{path}: no {k}"))
            };
            let channel =
                Channel::from_str(&field("channel")?).map_err(|e| format!("{path}: {e}"))?;
            out.push((format!("{part}/{}", field("id")?), channel, field("text")?));
        }
    }
    Ok(out)
}

/// Personal data as customers write it, put after the first sentence of a corpus signal (the
/// corpus itself has none): what the register stores has it redacted.
const PERSONAL: [&str; 6] = [
    "Bel mij op 06-12345678.",
    "Mijn mail is j.de.vries@example.nl en mijn BSN 111222333.",
    "Ik woon op Kerkstraat 12, 1234 AB Utrecht.",
    "Stort het terug op NL91 ABNA 0417 1643 00 graag.",
    "U kunt me bereiken op +31 20 123 4567 of via p.bakker@example.com.",
    "Postadres: Dorpsweg 3a, 9876 ZX Ergens.",
];

fn with_personal_data(text: &str, n: usize) -> String {
    let at = text.find(". ").map_or(text.len(), |i| i + 1);
    format!(
        "{} {} {}",
        &text[..at],
        PERSONAL[n % PERSONAL.len()],
        &text[at..]
    )
    .trim()
    .to_string()
}

fn what(c: &Classification) -> (Vec<&str>, Vec<&str>, &str, &str) {
    (
        c.themes.iter().map(|t| t.id.as_str()).collect(),
        c.subjects.iter().map(|t| t.id.as_str()).collect(),
        c.cause.as_str(),
        c.kind.as_str(),
    )
}

#[test]
fn the_stored_text_classifies_as_it_was_classified() -> Result {
    let p = Pipeline::new(Classifier::default_taxonomy()?, b"secret")?;
    let signals = corpus()?;
    assert!(signals.len() >= 500, "{} corpus signals", signals.len());
    let mut redacted = 0;
    let mut differ = Vec::new();
    for (n, (id, channel, text)) in signals.iter().enumerate() {
        let text = &with_personal_data(text, n);
        let at = Utc
            .timestamp_opt(1_800_000_000 + n as i64 * 60, 0)
            .single()
            .ok_or("time")?;
        let mut s = Signal::new(*channel, "corpus", id, at, text.clone());
        s.author = Some("klant@example.nl".into());
        let first = p.process(s);
        if first.signal.text != *text {
            redacted += 1;
        }
        let again = p.reclassify(first.signal.clone());
        assert_eq!(
            again.signal.text, first.signal.text,
            "{id}: redacting twice changed the text"
        );
        assert_eq!(again.classification, first.classification, "{id}");
        assert_eq!(again.classifier, first.classifier);
        let original = p.classifier.classify(text);
        if what(&original) != what(&first.classification) {
            differ.push(format!(
                "{id}: original {:?}, redacted {:?}\n  {}",
                what(&original),
                what(&first.classification),
                first.signal.text
            ));
        }
    }
    eprintln!(
        "{} signals, {redacted} with something redacted",
        signals.len()
    );
    assert_eq!(
        redacted,
        signals.len(),
        "every signal had personal data to redact"
    );
    assert!(
        differ.is_empty(),
        "redaction changed the classification:\n{}",
        differ.join("\n")
    );
    Ok(())
}
