//! The message contract: what the code puts on each topic validates against the JSON Schema
//! checked in under `schemas/`, and the schemas reject what they should.

use serde_json::Value;
use signaal_core::{AlertEnvelope, ClassifiedEnvelope, RawEnvelope, Signal};

mod common;
use common::{repo, Result};

fn validator(topic: &str) -> Result<jsonschema::Validator> {
    let text = std::fs::read_to_string(repo().join(format!("schemas/{topic}.v1.json")))?;
    let schema: Value = serde_json::from_str(&text)?;
    Ok(jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)?)
}

fn check(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match its schema: {errors:?}\n{doc:#}"
    );
}

/// Every bundled sample, read by the real parsers of each channel.
fn sample_signals() -> Result<Vec<Signal>> {
    let s = repo().join("samples");
    let mut out =
        signaal_email::worker::read_path("mail", &s.join("email"), &Default::default())?.signals;
    signaal_phone::worker::read_export(
        "calls",
        &s.join("phone/calls-2026-11.csv"),
        &Default::default(),
        0,
        |b| {
            out.extend(b.signals);
            Ok(())
        },
    )?;
    for f in ["search-recent-page-1.json", "search-recent-page-2.json"] {
        let resp = signaal_social::x::parse_response(&std::fs::read(s.join("twitter").join(f))?)?;
        out.extend(signaal_social::x::to_signals(&resp, "x", &[]));
    }
    for f in ["feed-page-1.json", "feed-page-2.json", "feed-page-3.json"] {
        let resp =
            signaal_social::facebook::parse_response(&std::fs::read(s.join("facebook").join(f))?)?;
        out.extend(signaal_social::facebook::to_signals(
            &resp,
            "fb",
            "104857600000001",
        ));
    }
    Ok(out)
}

#[test]
fn produced_messages_match_the_schemas() -> Result {
    let (raw_v, cls_v, alert_v) = (
        validator("signals.raw")?,
        validator("signals.classified")?,
        validator("signals.alerts")?,
    );
    let classifier = signaal_classifier::Classifier::default_taxonomy()?;
    let signals = sample_signals()?;
    assert_eq!(signals.len(), 210);
    let mut windows = signaal_alerter::Windows::new(signaal_alerter::AlertConfig {
        window_seconds: 3600,
        threshold: 5,
        keep_windows: 1000,
    });
    let mut alerts = Vec::new();
    for s in signals {
        let raw = serde_json::to_value(RawEnvelope::new(s.clone()))?;
        check(&raw_v, &raw, &format!("raw envelope of {}", s.source_id));
        let env = ClassifiedEnvelope::new(
            s.clone(),
            classifier.classify(&s.text),
            classifier.version(),
        );
        let doc = serde_json::to_value(&env)?;
        check(
            &cls_v,
            &doc,
            &format!("classified envelope of {}", s.source_id),
        );
        // What consumers decode is what producers wrote.
        assert_eq!(ClassifiedEnvelope::decode(&serde_json::to_vec(&env)?)?, env);
        alerts.extend(windows.observe(&env));
    }
    assert!(
        !alerts.is_empty(),
        "the flare-up in the samples raises at least one alert"
    );
    for a in alerts {
        check(
            &alert_v,
            &serde_json::to_value(AlertEnvelope::new(a))?,
            "alert envelope",
        );
    }
    Ok(())
}

#[test]
fn schemas_reject_broken_messages() -> Result {
    let v = validator("signals.raw")?;
    let good = serde_json::to_value(RawEnvelope::new(sample_signals()?.remove(0)))?;
    assert!(v.is_valid(&good));
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut bad = good.clone();
    bad["schema_version"] = 2.into();
    cases.push(("unknown schema version", bad));
    let mut bad = good.clone();
    bad["signal"]["channel"] = "fax".into();
    cases.push(("unknown channel", bad));
    let mut bad = good.clone();
    if let Some(o) = bad["signal"].as_object_mut() {
        o.remove("id");
    }
    cases.push(("missing id", bad));
    let mut bad = good.clone();
    bad["signal"]["occurred_at"] = "gisteren".into();
    cases.push(("bad timestamp", bad));
    let mut bad = good;
    bad["signal"]["surprise"] = true.into();
    cases.push(("unknown field", bad));
    for (what, doc) in cases {
        assert!(
            !v.is_valid(&doc),
            "the raw schema should reject a message with {what}"
        );
    }
    Ok(())
}
