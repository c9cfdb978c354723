//! `signals.stats` against real Kafka and PostgreSQL, through the `signaal stats` binary.
//!
//! Signals go into a register and their classified envelopes onto Kafka, with alert events and
//! a message nobody can read; the worker publishes one record per series and bucket. The test
//! reads the topic with `kcat` (an independent client), keeps the last record per key as a
//! subscriber would, and holds each against numbers worked out here from the signals. Then the
//! same input is published again and a fresh consumer group reads everything once more: the
//! latest record of every key must be unchanged (a replay rewrites, never adds). The topic must
//! be compacted, every record must validate against `schemas/signals.stats.v1.json`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;
use signaal_bus::{Publisher, Record};
use signaal_core::stats::{keys_of_signal, StatsKey};
use signaal_core::{
    AlertEvent, AlertState, Cause, Channel, Classification, ClassifiedEnvelope, Count, Kind,
    SeriesStatsEnvelope, Severity, Signal, SubjectTag, ThemeTag,
};
use signaal_store::Store;

mod common;
use common::{
    base_config, bus_config, drop_database, fresh_database, kcat_read, repo, run_setup,
    service_env, signaal_bin, start_worker, unique, Result,
};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// A classified signal; classified at a whole second, so the register keeps the time exactly.
fn signal(
    channel: Channel,
    id: &str,
    t: &str,
    author: Option<&str>,
    themes: &[&str],
    subjects: &[&str],
    impact: Option<f32>,
) -> ClassifiedEnvelope {
    let mut s = Signal::new(channel, "test", id, at(t), "De aanslag klopt niet");
    s.author = author.map(str::to_string);
    let mut env = ClassifiedEnvelope::new(
        s,
        Classification {
            themes: themes
                .iter()
                .map(|t| ThemeTag {
                    id: t.to_string(),
                    score: 1.0,
                    evidence: vec![],
                })
                .collect(),
            subjects: subjects
                .iter()
                .map(|u| SubjectTag {
                    id: u.to_string(),
                    evidence: vec![],
                })
                .collect(),
            cause: Cause::System,
            kind: Kind::Complaint,
            lang: "nl".into(),
            sentiment: -0.5,
            escalation: vec![],
            impact,
        },
        "test-1",
    );
    env.classified_at = at(t) + chrono::Duration::seconds(30);
    env
}

fn signals() -> Vec<ClassifiedEnvelope> {
    use Channel::*;
    let mut out = vec![
        // 14:00–15:00 UTC: a payment flare-up.
        signal(
            Email,
            "m1",
            "2026-11-03T14:05:00Z",
            Some("a_1"),
            &["payment"],
            &["tax_bill"],
            Some(2.3),
        ),
        signal(
            Email,
            "m2",
            "2026-11-03T14:10:00Z",
            Some("a_1"),
            &["payment"],
            &[],
            Some(5.25),
        ),
        signal(
            Phone,
            "c1",
            "2026-11-03T14:20:00Z",
            None,
            &["payment", "reachability"],
            &["tax_bill"],
            Some(1.15),
        ),
        signal(
            Phone,
            "c2",
            "2026-11-03T14:59:59Z",
            Some("a_2"),
            &["reachability"],
            &[],
            None,
        ),
        signal(
            Email,
            "m3",
            "2026-11-03T14:30:00Z",
            Some("a_3"),
            &[],
            &[],
            Some(0.4),
        ),
        // 15:00–16:00.
        signal(
            Phone,
            "c3",
            "2026-11-03T15:00:00Z",
            Some("a_2"),
            &["reachability"],
            &["digid"],
            Some(7.9),
        ),
        signal(
            Twitter,
            "x1",
            "2026-11-03T15:10:00Z",
            Some("a_4"),
            &["payment"],
            &[],
            Some(3.3),
        ),
        // The next day.
        signal(
            Email,
            "m4",
            "2026-11-04T09:00:00Z",
            Some("a_1"),
            &["payment"],
            &[],
            Some(2.0),
        ),
    ];
    // A repost counts for nothing anywhere.
    let mut repost = signal(
        Twitter,
        "x2",
        "2026-11-03T15:15:00Z",
        Some("a_5"),
        &["payment"],
        &[],
        Some(9.0),
    );
    repost
        .signal
        .meta
        .insert("retweet_of".into(), Value::from("x1"));
    out.push(repost);
    // Many in one more hour, so batches hold keys more than once.
    for i in 0..40 {
        out.push(signal(
            Facebook,
            &format!("f{i}"),
            &format!("2026-11-04T10:{:02}:00Z", i),
            Some(&format!("a_{}", 10 + i % 7)),
            &["digital_service"],
            &["digid"],
            Some(1.0 + (i % 4) as f32),
        ));
    }
    out
}

fn alert_event(series: &str, state: AlertState, start: &str, bucket: &str) -> AlertEvent {
    let alert_id = AlertEvent::alert_id_for(series, at(start));
    AlertEvent {
        id: AlertEvent::event_id_for(&alert_id, state, at(bucket)),
        alert_id,
        series: series.into(),
        theme: series.split('/').next().unwrap_or(series).into(),
        channel: series.split_once('/').map(|(_, c)| c.to_string()),
        state,
        severity: Severity::Critical,
        alert_start: at(start),
        bucket_start: at(bucket),
        bucket_end: at(bucket) + chrono::Duration::hours(1),
        observed: 3,
        expected: 0.2,
        upper: Some(2.0),
        p_value: 0.001,
        method: "ears_c2".into(),
        peak: 3,
        total: 3,
        channels: [("email".to_string(), 2)].into(),
        top_subjects: vec![Count {
            value: "tax_bill".into(),
            count: 1,
        }],
        top_words: vec![],
        sample_signal_ids: vec![],
        emitted_at: at(bucket) + chrono::Duration::minutes(65),
    }
}

/// What a subscriber expects of each key: (count, authors, mean impact, alert state, as_of).
type Expected = (
    u64,
    u64,
    Option<f64>,
    Option<&'static str>,
    Option<DateTime<Utc>>,
);

/// The numbers worked out from the signals, independently of the register.
fn expected(signals: &[ClassifiedEnvelope]) -> BTreeMap<String, Expected> {
    let mut members: BTreeMap<StatsKey, Vec<&ClassifiedEnvelope>> = BTreeMap::new();
    for env in signals {
        for k in keys_of_signal(env) {
            members.entry(k).or_default().push(env);
        }
    }
    let mut out: BTreeMap<String, Expected> = members
        .into_iter()
        .map(|(k, envs)| {
            let people: BTreeSet<&str> = envs
                .iter()
                .map(|e| e.signal.author.as_deref().unwrap_or(&e.signal.id))
                .collect();
            let scores: Vec<i64> = envs
                .iter()
                .filter_map(|e| e.classification.impact)
                .map(|i| (f64::from(i) * 1000.0).round() as i64)
                .collect();
            let mean = (!scores.is_empty()).then(|| {
                (scores.iter().sum::<i64>() as f64 / scores.len() as f64).round() / 1000.0
            });
            let newest = envs.iter().map(|e| e.classified_at).max();
            (
                k.to_string(),
                (envs.len() as u64, people.len() as u64, mean, None, newest),
            )
        })
        .collect();
    // The alert states of the events published below.
    for (key, state) in [
        ("theme:payment|hour:2026-11-03T14", "firing"),
        ("theme:payment|hour:2026-11-03T15", "update"),
        ("theme:payment|day:2026-11-03", "resolved"),
        ("theme:payment|hour:2026-11-03T17", "resolved"),
        ("theme:payment|channel:email|hour:2026-11-03T14", "pending"),
        ("theme:payment|channel:email|day:2026-11-03", "pending"),
    ] {
        let e = out
            .entry(key.to_string())
            .or_insert((0, 0, None, None, None));
        e.3 = Some(state);
    }
    out
}

/// The last record of each key on the stats topic, and how many records each key has; checks
/// every record's headers, schema and decoding on the way.
fn latest(
    brokers: &str,
    topic: &str,
    schema: &jsonschema::Validator,
) -> Result<(BTreeMap<String, Value>, BTreeMap<String, usize>)> {
    let mut last = BTreeMap::new();
    let mut records = BTreeMap::new();
    for (key, headers, payload) in kcat_read(brokers, topic)? {
        let doc: Value = serde_json::from_str(&payload)
            .map_err(|e| format!("record of `{key}` is not JSON ({e}): {payload}"))?;
        let errors: Vec<String> = schema
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "record of `{key}` does not match schemas/signals.stats.v1.json: {errors:?}\n{doc:#}"
        );
        let env = SeriesStatsEnvelope::decode(payload.as_bytes())?;
        assert_eq!(env.stats.key, key, "the Kafka key is the record's key");
        assert!(
            headers.contains("signaal-schema-version=1")
                && headers.contains("signaal-type=series_stats"),
            "record of `{key}` has headers `{headers}`"
        );
        *records.entry(key.clone()).or_insert(0) += 1;
        last.insert(key, doc);
    }
    Ok((last, records))
}

/// Polls the topic until `done` says the records are complete, or fails after `timeout` with
/// the worker's log.
fn wait_for(
    brokers: &str,
    topic: &str,
    schema: &jsonschema::Validator,
    log: &Path,
    timeout: Duration,
    mut done: impl FnMut(&BTreeMap<String, Value>, &BTreeMap<String, usize>) -> bool,
) -> Result<(BTreeMap<String, Value>, BTreeMap<String, usize>)> {
    let deadline = Instant::now() + timeout;
    loop {
        let (last, counts) = latest(brokers, topic, schema)?;
        if done(&last, &counts) {
            return Ok((last, counts));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "signals.stats incomplete after {timeout:?}: {} keys, {} records\nworker log:\n{}",
                last.len(),
                counts.values().sum::<usize>(),
                std::fs::read_to_string(log).unwrap_or_default()
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGTERM, then the exit status: a worker stops between batches and exits 0.
fn stop(mut child: Child, log: &Path) -> Result {
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    let status = child.wait()?;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    assert!(
        status.success(),
        "the stats worker exited with {status}:\n{text}"
    );
    assert!(
        text.contains("stats worker stopped"),
        "no clean stop in the log:\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn stats_hold_the_register_and_a_replay_rewrites_the_same_values() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run = unique("stats");
    let (db, admin) = fresh_database(&run).await?;
    let result = scenario(&brokers, &bin, &run, &db).await;
    drop_database(&admin, &run).await?;
    result
}

async fn scenario(brokers: &str, bin: &Path, run: &str, db: &str) -> Result {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, base_config(run, brokers, db, 3))?;
    run_setup(bin, &config)?;
    let bus = bus_config(brokers, run);
    let topic = bus.topics.stats.clone();

    // The topic is compacted: the latest record per key is kept, older ones may go.
    let settings = signaal_bus::topic_config(&bus, &topic).await?;
    assert_eq!(
        settings.get("cleanup.policy").map(String::as_str),
        Some("compact"),
        "{topic} settings: {settings:?}"
    );
    let classified_settings = signaal_bus::topic_config(&bus, &bus.topics.classified).await?;
    assert_eq!(
        classified_settings
            .get("cleanup.policy")
            .map(String::as_str),
        Some("delete"),
        "only the stats topic is compacted"
    );
    // A stats topic made elsewhere without compaction is left alone, and said so.
    let uncompacted = dir.path().join("uncompacted.toml");
    std::fs::write(
        &uncompacted,
        base_config(run, brokers, db, 3)
            .replacen(
                &format!("dlq = \"{run}.dlq\""),
                &format!("dlq = \"{run}.dead\""),
                1,
            )
            .replacen(
                &format!("stats = \"{run}.stats\""),
                &format!("stats = \"{run}.dlq\""),
                1,
            ),
    )?;
    let out = Command::new(bin)
        .arg("--config")
        .arg(&uncompacted)
        .arg("setup")
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("the stats topic is not compacted"),
        "setup with an uncompacted stats topic: {}\n{stderr}",
        out.status
    );

    // The classifier's order: the register first, then Kafka.
    let store = Store::connect(db).await?;
    let signals = signals();
    store.save_classified(&signals).await?;
    let events = [
        alert_event(
            "payment",
            AlertState::Firing,
            "2026-11-03T14:00:00Z",
            "2026-11-03T14:00:00Z",
        ),
        alert_event(
            "payment",
            AlertState::Update,
            "2026-11-03T14:00:00Z",
            "2026-11-03T15:00:00Z",
        ),
        alert_event(
            "payment",
            AlertState::Resolved,
            "2026-11-03T14:00:00Z",
            "2026-11-03T17:00:00Z",
        ),
        alert_event(
            "payment/email",
            AlertState::Pending,
            "2026-11-03T14:00:00Z",
            "2026-11-03T14:00:00Z",
        ),
    ];
    // The alerter's order: Kafka first, then the register; the last event is on Kafka only
    // (as between the two), and must still count.
    let queued: Vec<_> = events[..3]
        .iter()
        .map(|e| (e.clone(), Vec::new()))
        .collect();
    store.save_alert_events(&queued, None).await?;
    let publisher = Publisher::new(&bus)?;
    publisher.publish_classified(&signals).await?;
    publisher.publish_alert_events(&events).await?;
    publisher
        .publish(&[Record {
            topic: bus.topics.classified.clone(),
            key: "garbage".into(),
            payload: b"{not json".to_vec(),
            headers: vec![],
        }])
        .await?;

    let schema_text = std::fs::read_to_string(repo().join("schemas/signals.stats.v1.json"))?;
    let schema = jsonschema::options()
        .should_validate_formats(true)
        .build(&serde_json::from_str(&schema_text)?)?;
    let want = expected(&signals);

    // First run.
    let log = dir.path().join("stats-1.log");
    let worker = start_worker(&config, "stats", &log)?;
    let (first, first_counts) = wait_for(
        brokers,
        &topic,
        &schema,
        &log,
        Duration::from_secs(90),
        |last, _| want.keys().all(|k| last.contains_key(k)),
    )?;
    // The unreadable message goes to the dead-letter topic, from this worker.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let dead = kcat_read(brokers, &bus.topics.dlq)?;
        if dead
            .iter()
            .any(|(k, h, _)| k == "garbage" && h.contains("signaal-dlq-worker=stats"))
        {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("no dead letter from the stats worker: {dead:?}").into());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    stop(worker, &log)?;
    let keys: BTreeSet<&String> = first.keys().collect();
    let want_keys: BTreeSet<&String> = want.keys().collect();
    assert_eq!(
        keys, want_keys,
        "one key per series and bucket the input touched, no other"
    );
    for (key, (count, authors, mean, state, as_of)) in &want {
        let s = &first[key]["stats"];
        let got = (
            s["count"].as_u64(),
            s["authors"].as_u64(),
            s["mean_impact"].as_f64(),
            s["alert_state"]["state"].as_str(),
            s["as_of"].as_str().map(at),
        );
        assert_eq!(
            got,
            (Some(*count), Some(*authors), *mean, *state, *as_of),
            "{key}: (count, authors, mean impact, alert state, as of) on the topic against the input"
        );
    }
    // A few by hand, so the worked-out numbers are not the only judge.
    let of = |k: &str| first[k]["stats"].clone();
    assert_eq!(of("theme:payment|hour:2026-11-03T14")["count"], 3);
    assert_eq!(
        of("theme:payment|hour:2026-11-03T14")["authors"],
        2,
        "a_1 twice, one without author"
    );
    assert_eq!(of("theme:payment|hour:2026-11-03T14")["mean_impact"], 2.9);
    assert_eq!(
        of("channel:twitter|day:2026-11-03")["count"],
        1,
        "the repost counts for nothing"
    );
    assert_eq!(
        of("theme:reachability|hour:2026-11-03T14")["mean_impact"],
        1.15,
        "unscored: counted, not averaged"
    );
    assert_eq!(
        of("theme:payment|hour:2026-11-03T17")["count"],
        0,
        "an alert-only bucket"
    );
    assert_eq!(of("subject:digid|day:2026-11-04")["count"], 40);
    assert_eq!(of("subject:digid|day:2026-11-04")["authors"], 7);
    assert_eq!(
        of("channel:facebook|hour:2026-11-04T10")["mean_impact"],
        2.5
    );
    assert!(of("subject:digid|day:2026-11-04")["alert_state"].is_null());

    // Replay: the same input published again, and a new consumer group (as after a reset)
    // reads all of it, both copies, in small batches (a key is written many times over).
    publisher.publish_classified(&signals).await?;
    publisher.publish_alert_events(&events).await?;
    let replay = dir.path().join("replay.toml");
    std::fs::write(
        &replay,
        base_config(run, brokers, db, 3).replacen(
            &format!("group_prefix = \"{run}\""),
            &format!("group_prefix = \"{run}-replay\""),
            1,
        ) + "[stats]\nbatch = 7\nlinger_ms = 5\n",
    )?;
    let log = dir.path().join("stats-2.log");
    let worker = start_worker(&replay, "stats", &log)?;
    let (second, _) = wait_for(
        brokers,
        &topic,
        &schema,
        &log,
        Duration::from_secs(90),
        |_, counts| {
            // Every key written again (both copies of its input may fall in one batch).
            first_counts
                .iter()
                .all(|(k, n)| counts.get(k).copied().unwrap_or(0) > *n)
        },
    )?;
    stop(worker, &log)?;
    assert_eq!(
        second.keys().collect::<Vec<_>>(),
        first.keys().collect::<Vec<_>>(),
        "the replay adds no key"
    );
    for (key, value) in &first {
        assert_eq!(
            &second[key], value,
            "{key}: the replay must rewrite the same record, not another"
        );
    }
    assert_eq!(store.count_signals().await?, signals.len() as i64);
    eprintln!(
        "signals.stats: {} keys; {} records after the first run, {} after the replay",
        first.len(),
        first_counts.values().sum::<usize>(),
        latest(brokers, &topic, &schema)?.1.values().sum::<usize>()
    );
    store.close().await;
    Ok(())
}
