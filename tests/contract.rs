//! The message contract: what the code puts on each topic validates against the JSON Schema
//! checked in under `schemas/`, and the schemas reject what they should.

use serde_json::Value;
use signaal_alerter::live::{Live, Seen};
use signaal_core::{AlertEventEnvelope, AlertState, ClassifiedEnvelope, RawEnvelope, Signal};

mod common;
use common::{repo, Result};

fn validator(topic: &str) -> Result<jsonschema::Validator> {
    validator_of(topic, 1)
}

fn validator_of(topic: &str, version: u32) -> Result<jsonschema::Validator> {
    let text = std::fs::read_to_string(repo().join(format!("schemas/{topic}.v{version}.json")))?;
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
        validator_of("signals.alerts", 2)?,
    );
    let classifier = signaal_classifier::Classifier::default_taxonomy()?;
    let signals = sample_signals()?;
    assert_eq!(signals.len(), 210);
    let mut classified = Vec::new();
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
        classified.push(env);
    }
    // Subjects are on the wire (the samples' DigiD flare-up names DigiD).
    let digid = classified
        .iter()
        .filter(|e| e.classification.subjects.iter().any(|t| t.id == "digid"))
        .count();
    assert!(digid >= 3, "{digid} samples name the subject `digid`");
    // The live alerter over the samples (the demo's data), closing every bucket up to half a
    // day after the last: the DigiD flare-up is one alert, and it resolves.
    let settings = signaal_detect::Settings::default();
    let first = classified
        .iter()
        .map(|e| settings.bucket_of(e.signal.occurred_at.timestamp()))
        .min()
        .ok_or("no samples")?;
    let last = classified
        .iter()
        .map(|e| settings.bucket_of(e.signal.occurred_at.timestamp()))
        .max()
        .ok_or("no samples")?;
    let mut live = Live::new(
        settings,
        signaal_detect::lifecycle::Lifecycle::default(),
        false,
        first,
        first - 1,
    );
    for env in &classified {
        live.observe(&Seen::from_envelope(env));
    }
    let events = live.close_until(last + 12, chrono::Utc::now());
    let fired: Vec<_> = events
        .iter()
        .filter(|e| e.state == AlertState::Firing)
        .collect();
    assert_eq!(fired.len(), 1, "one alert in the samples: {events:#?}");
    assert_eq!(fired[0].theme, "digital_service");
    assert!(
        events
            .iter()
            .any(|e| e.state == AlertState::Resolved && e.alert_id == fired[0].alert_id),
        "the flare-up's alert resolves: {events:#?}"
    );
    for e in events {
        let env = AlertEventEnvelope::new(e);
        check(
            &alert_v,
            &serde_json::to_value(&env)?,
            "alert event envelope",
        );
        assert_eq!(
            AlertEventEnvelope::decode(&serde_json::to_vec(&env)?)?,
            env,
            "consumers decode what the alerter wrote"
        );
    }
    Ok(())
}

/// `classification.subjects` is an additive change to version 1: a message without it (as
/// written before) still validates and decodes, and a malformed subject is refused.
#[test]
fn subjects_are_optional_in_the_classified_schema() -> Result {
    let v = validator("signals.classified")?;
    let classifier = signaal_classifier::Classifier::default_taxonomy()?;
    let mut signal = sample_signals()?.remove(0);
    signal.text = "Inloggen met DigiD op Mijn Omgeving lukt niet".into();
    let env = ClassifiedEnvelope::new(
        signal.clone(),
        classifier.classify(&signal.text),
        classifier.version(),
    );
    let good = serde_json::to_value(&env)?;
    check(&v, &good, "an envelope with subjects");
    assert_eq!(
        good["classification"]["subjects"][0]["id"],
        "customer_portal"
    );

    let mut old = good.clone();
    if let Some(c) = old["classification"].as_object_mut() {
        c.remove("subjects");
    }
    check(&v, &old, "an envelope written before subjects");
    let decoded = ClassifiedEnvelope::decode(&serde_json::to_vec(&old)?)?;
    assert!(decoded.classification.subjects.is_empty());
    assert_eq!(decoded.classification.themes, env.classification.themes);

    let mut cases: Vec<(&str, serde_json::Value)> = Vec::new();
    let mut bad = good.clone();
    bad["classification"]["subjects"][0]["id"] = "Mijn Omgeving".into();
    cases.push(("a subject id that is not snake_case", bad));
    let mut bad = good.clone();
    if let Some(t) = bad["classification"]["subjects"][0].as_object_mut() {
        t.remove("evidence");
    }
    cases.push(("a subject without evidence", bad));
    let mut bad = good;
    bad["classification"]["subjects"][0]["score"] = 1.into();
    cases.push(("an unknown field on a subject", bad));
    for (what, doc) in cases {
        assert!(
            !v.is_valid(&doc),
            "the classified schema should reject {what}"
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

/// `signals.stats`: the records of every key the samples touch — with the live alerter's events
/// over the samples as their alert states — validate against version 1 of the schema and decode
/// back; the schema refuses what a subscriber could not read.
#[test]
fn stats_records_match_their_schema() -> Result {
    use signaal_core::stats::{alert_state_in, keys_of_signal, BucketCounts, SeriesStats};
    use signaal_core::SeriesStatsEnvelope;
    use std::collections::BTreeMap;

    let v = validator("signals.stats")?;
    let classifier = signaal_classifier::Classifier::default_taxonomy()?;
    let classified: Vec<ClassifiedEnvelope> = sample_signals()?
        .into_iter()
        .map(|s| {
            let c = classifier.classify(&s.text);
            ClassifiedEnvelope::new(s, c, classifier.version())
        })
        .collect();
    let settings = signaal_detect::Settings::default();
    let buckets = classified
        .iter()
        .map(|e| settings.bucket_of(e.signal.occurred_at.timestamp()));
    let (first, last) = (
        buckets.clone().min().ok_or("no samples")?,
        buckets.max().ok_or("no samples")?,
    );
    let mut live = Live::new(
        settings,
        signaal_detect::lifecycle::Lifecycle::default(),
        true,
        first,
        first - 1,
    );
    for env in &classified {
        live.observe(&Seen::from_envelope(env));
    }
    let events = live.close_until(last + 12, chrono::Utc::now());
    let mut counts: BTreeMap<_, BucketCounts> = BTreeMap::new();
    for env in &classified {
        for k in keys_of_signal(env) {
            let c = counts.entry(k).or_default();
            c.count += 1;
            c.authors += 1;
            if let Some(i) = env.classification.impact {
                c.scored += 1;
                c.impact_milli += (f64::from(i) * 1000.0).round() as i64;
            }
            c.newest_classified = Some(env.classified_at);
        }
    }
    assert!(counts.len() > 100, "{} keys", counts.len());
    let mut alerted = 0;
    let mut good = None;
    for (k, c) in &counts {
        let alert = alert_state_in(k, &events);
        alerted += usize::from(alert.is_some());
        let env = SeriesStatsEnvelope::new(SeriesStats::new(k, c, alert));
        let doc = serde_json::to_value(&env)?;
        check(&v, &doc, &format!("stats record of {k}"));
        assert_eq!(
            SeriesStatsEnvelope::decode(&serde_json::to_vec(&env)?)?,
            env,
            "subscribers decode what the stats worker wrote"
        );
        if k.to_string().starts_with("theme:digital_service|hour:")
            && env.stats.alert_state.is_some()
        {
            good = Some(doc);
        }
    }
    assert!(alerted > 0, "the samples' flare-up shows as an alert state");
    let good = good.ok_or("no alerted theme hour in the samples")?;

    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut bad = good.clone();
    bad["stats"]["key"] = "subject:digid|channel:email|day:2026-11-03".into();
    cases.push(("a subject in a channel", bad));
    let mut bad = good.clone();
    bad["stats"]["key"] = "theme:digital_service|week:2026-45".into();
    cases.push(("a bucket that is no hour or day", bad));
    let mut bad = good.clone();
    bad["stats"]["bucket"]["grain"] = "week".into();
    cases.push(("an unknown grain", bad));
    let mut bad = good.clone();
    bad["stats"]["series"]["subject"] = "digid".into();
    cases.push(("a theme and a subject in one series", bad));
    let mut bad = good.clone();
    bad["stats"]["count"] = (-1).into();
    cases.push(("a negative count", bad));
    let mut bad = good.clone();
    bad["stats"]["mean_impact"] = 11.into();
    cases.push(("an impact over 10", bad));
    let mut bad = good.clone();
    bad["stats"]["alert_state"]["state"] = "sleeping".into();
    cases.push(("an unknown alert state", bad));
    let mut bad = good.clone();
    if let Some(o) = bad["stats"].as_object_mut() {
        o.remove("alert_state");
    }
    cases.push(("no alert_state", bad));
    let mut bad = good.clone();
    bad["schema_version"] = 2.into();
    cases.push(("another schema version", bad));
    let mut bad = good;
    bad["stats"]["running_total"] = 3.into();
    cases.push(("an unknown field", bad));
    for (what, doc) in cases {
        assert!(
            !v.is_valid(&doc),
            "the stats schema should reject a record with {what}"
        );
    }
    Ok(())
}
