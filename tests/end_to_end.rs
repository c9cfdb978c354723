//! End to end on real services: Apache Kafka (KRaft) and PostgreSQL, started by `scripts/test`.
//!
//! Every worker runs as its own `signaal` process over the bundled samples; X and Facebook are
//! served by the replay server. The test then checks, with `kcat` as an independent client, that
//! every sample is on `signals.classified` exactly once, that the store holds each exactly once,
//! that an undecodable message reached the dead-letter topic with its reason, and that SIGTERM
//! stops every worker cleanly.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{
    base_config, drop_database, dry_run_ids, fresh_database, kcat_read, repo, run_setup,
    service_env, signaal_bin, social_sample_ids, Result, Workers,
};

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), target)?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_is_classified_and_stored_exactly_once() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run_id = common::unique("e2e");

    // A database of this run's own.
    let (db, pool) = fresh_database(&run_id).await?;

    let dir = tempfile::tempdir()?;
    let samples = repo().join("samples");
    copy_dir(&samples.join("email"), &dir.path().join("email"))?;
    copy_dir(&samples.join("phone"), &dir.path().join("phone"))?;

    let shutdown = tokio_util_shutdown();
    let read = |d: &str| -> Result<Vec<String>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(samples.join(d))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        files
            .iter()
            .map(|f| Ok(std::fs::read_to_string(f)?))
            .collect()
    };
    let recordings = signaal_social::replay::Recordings {
        x_pages: read("twitter")?,
        facebook_pages: read("facebook")?,
        ..Default::default()
    };
    let (api, _) = signaal_social::replay::serve(recordings, shutdown.clone()).await?;

    let topic = |t: &str| format!("{run_id}.{t}");
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[bus]
brokers = "{brokers}"
partitions = 3
group_prefix = "{run_id}"
[bus.topics]
raw = "{raw}"
classified = "{classified}"
alerts = "{alerts}"
dlq = "{dlq}"
[store]
url = "{db}"
[email]
poll_seconds = 1
[[email.folders]]
name = "e2e-mail"
path = "{email}"
[phone]
poll_seconds = 1
[[phone.inboxes]]
name = "e2e-calls"
path = "{phone}"
[social]
poll_seconds = 2
[[social.x]]
name = "e2e-x"
base_url = "{api}"
bearer_token = "e2e-token"
query = "@gemeente"
[[social.facebook]]
name = "e2e-facebook"
base_url = "{api}"
page_id = "104857600000001"
access_token = "e2e-token"
[classifier]
author_secret = "e2e-secret"
[alerter]
idle_seconds = 1
lateness_seconds = 0
"#,
            raw = topic("signals.raw"),
            classified = topic("signals.classified"),
            alerts = topic("signals.alerts"),
            dlq = topic("signals.dlq"),
            email = dir.path().join("email").display(),
            phone = dir.path().join("phone").display(),
        ),
    )?;

    let mut expected = BTreeSet::new();
    expected.extend(dry_run_ids(
        &bin,
        &config,
        &["email", &dir.path().join("email").to_string_lossy()],
    )?);
    expected.extend(dry_run_ids(
        &bin,
        &config,
        &[
            "phone",
            &samples.join("phone/calls-2026-11.csv").to_string_lossy(),
        ],
    )?);
    expected.extend(social_sample_ids(&bin, &config)?);
    assert_eq!(
        expected.len(),
        210,
        "the bundled sample set has 210 signals"
    );

    run_setup(&bin, &config)?;
    // An undecodable message on the raw topic must end up on the DLQ, not stop the classifier.
    let mut produce = Command::new("kcat")
        .args([
            "-b",
            &brokers,
            "-P",
            "-t",
            &topic("signals.raw"),
            "-k",
            "garbage",
        ])
        .stdin(Stdio::piped())
        .spawn()?;
    if let Some(mut stdin) = produce.stdin.take() {
        use std::io::Write;
        stdin.write_all(b"this is not an envelope\n")?;
    }
    assert!(
        produce.wait()?.success(),
        "kcat could not produce the garbage message"
    );

    let ops_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let mut workers = Workers(Vec::new());
    for w in ["classifier", "alerter", "email", "phone", "social"] {
        let log = std::fs::File::create(dir.path().join(format!("{w}.log")))?;
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&config).arg(w);
        if w == "classifier" {
            cmd.arg("--listen").arg(format!("127.0.0.1:{ops_port}"));
        }
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn()?;
        workers.0.push((w.to_string(), child));
    }

    let store = signaal_store::Store::connect(&db).await?;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut stored = BTreeSet::new();
    while Instant::now() < deadline {
        stored = store.signal_ids().await?.into_iter().collect();
        if stored.len() >= expected.len() {
            break;
        }
        for (name, c) in &mut workers.0 {
            if let Some(status) = c.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                return Err(format!("worker `{name}` exited early ({status}):\n{log}").into());
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();
    let missing: Vec<_> = expected.difference(&stored).take(5).collect();
    assert!(
        missing.is_empty(),
        "{} of {} samples not stored after {elapsed:?}, e.g. {missing:?}",
        expected.len() - stored.len().min(expected.len()),
        expected.len()
    );
    assert_eq!(
        stored, expected,
        "the store holds exactly the samples, each once"
    );
    assert_eq!(store.count_signals().await?, 210);

    // Let the alerter see the flare-up, then stop everything with SIGTERM.
    let alert_deadline = Instant::now() + Duration::from_secs(30);
    while !store
        .latest_alert_states()
        .await?
        .iter()
        .any(|a| a.state == signaal_core::AlertState::Resolved)
        && Instant::now() < alert_deadline
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The operations endpoint: health for container checks, counters for Prometheus.
    let health = Command::new(&bin)
        .args([
            "health",
            "--url",
            &format!("http://127.0.0.1:{ops_port}/healthz"),
        ])
        .output()?;
    assert!(
        health.status.success(),
        "signaal health failed: {}",
        String::from_utf8_lossy(&health.stderr)
    );
    // The counter moves after the batch is published, a moment after the store write we waited
    // for: poll it briefly.
    let (mut metrics, mut classified_count) = (String::new(), None);
    let metrics_deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < metrics_deadline {
        metrics = reqwest::get(format!("http://127.0.0.1:{ops_port}/metrics"))
            .await?
            .text()
            .await?;
        classified_count = metrics
            .lines()
            .find(|l| l.starts_with("signaal_classifier_signals_total"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<f64>().ok());
        if classified_count == Some(210.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The garbage message is dead-lettered, not classified.
    assert_eq!(
        classified_count,
        Some(210.0),
        "classifier metrics:\n{metrics}"
    );
    assert!(
        metrics.contains("signaal_dead_letters_total{worker=\"classifier\"} 1"),
        "dead letters counted:\n{metrics}"
    );
    // Consumer lag from librdkafka's statistics (every 5 s): the classifier has read the whole
    // raw topic, so every partition it fetches reports 0.
    let raw_topic = format!("topic=\"{}\"", topic("signals.raw"));
    let lag_deadline = Instant::now() + Duration::from_secs(20);
    let lags = loop {
        let text = reqwest::get(format!("http://127.0.0.1:{ops_port}/metrics"))
            .await?
            .text()
            .await?;
        let lags: Vec<(String, f64)> = text
            .lines()
            .filter(|l| l.starts_with("signaal_consumer_lag{") && l.contains(&raw_topic))
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_string(), value.parse().ok()?))
            })
            .collect();
        if (!lags.is_empty() && lags.iter().all(|(_, v)| *v == 0.0))
            || Instant::now() > lag_deadline
        {
            break lags;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        !lags.is_empty() && lags.iter().all(|(_, v)| *v == 0.0),
        "consumer lag of the classifier on the raw topic: {lags:?}"
    );

    for (name, c) in &mut workers.0 {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status()?;
        assert!(status.success(), "could not signal {name}");
    }
    for (name, c) in &mut workers.0 {
        let stop = Instant::now();
        loop {
            if let Some(status) = c.try_wait()? {
                let log = std::fs::read_to_string(dir.path().join(format!("{name}.log")))
                    .unwrap_or_default();
                assert!(
                    status.success(),
                    "worker `{name}` did not exit cleanly on SIGTERM ({status}):\n{log}"
                );
                break;
            }
            assert!(
                stop.elapsed() < Duration::from_secs(30),
                "worker `{name}` ignored SIGTERM for 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let classified = kcat_read(&brokers, &topic("signals.classified"))?;
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (k, h, payload) in &classified {
        *per_key.entry(k.clone()).or_default() += 1;
        assert!(
            h.contains("signaal-schema-version=1"),
            "headers carry the schema version: {h}"
        );
        assert!(
            h.contains("signaal-channel="),
            "headers carry the channel: {h}"
        );
        let v: serde_json::Value = serde_json::from_str(payload)?;
        assert_eq!(
            v["signal"]["id"].as_str(),
            Some(k.as_str()),
            "kafka key = signal id"
        );
        // Nothing personal leaves the pipeline: authors are pseudonyms, addresses are redacted.
        if let Some(author) = v["signal"]["author"].as_str() {
            assert!(
                author.starts_with("a_") && author.len() == 34,
                "author not pseudonymised: {author}"
            );
        }
        // (Message-IDs in `source_id`/`thread_id` are host-generated links to the raw record.)
        for field in ["text", "subject", "author", "meta"] {
            let value = v["signal"][field].to_string();
            assert!(
                !value.contains("@voorbeeld.nl"),
                "an email address reached the classified topic in `{field}`: {value}"
            );
        }
        assert!(
            v["signal"]["meta"].get("author_name").is_none(),
            "author_name reached the classified topic"
        );
    }
    let dupes: Vec<_> = per_key.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dupes.is_empty(),
        "signals on the classified topic more than once: {dupes:?}"
    );
    let keys: BTreeSet<String> = per_key.into_keys().collect();
    assert_eq!(keys, expected, "every sample is on the classified topic");

    let dlq = kcat_read(&brokers, &topic("signals.dlq"))?;
    assert_eq!(
        dlq.len(),
        1,
        "exactly the garbage message is dead-lettered: {dlq:?}"
    );
    assert_eq!(dlq[0].0, "garbage");
    assert!(
        dlq[0]
            .1
            .contains("signaal-dlq-reason=payload is not valid JSON"),
        "reason in headers: {}",
        dlq[0].1
    );
    assert_eq!(
        dlq[0].2.trim_end(),
        "this is not an envelope",
        "the DLQ keeps the original bytes"
    );

    let alerts = store.alert_events(None).await?;
    let fired: Vec<_> = alerts
        .iter()
        .filter(|a| a.state == signaal_core::AlertState::Firing)
        .collect();
    assert!(
        fired.len() == 1 && fired[0].theme == "digital_service",
        "the DigiD flare-up raises one alert: {alerts:#?}"
    );
    assert!(
        alerts
            .iter()
            .any(|a| a.state == signaal_core::AlertState::Resolved
                && a.alert_id == fired[0].alert_id),
        "and it resolves: {alerts:#?}"
    );
    let on_topic = kcat_read(&brokers, &topic("signals.alerts"))?;
    assert_eq!(
        on_topic.len(),
        alerts.len(),
        "each stored alert event is on the alerts topic once"
    );

    let rate = expected.len() as f64 / elapsed.as_secs_f64();
    let report = format!(
        "end-to-end: {} signals from 4 channels through 5 worker processes into PostgreSQL in {:.2} s ({rate:.0} signals/s, including worker start-up and poll intervals)\n",
        expected.len(),
        elapsed.as_secs_f64()
    );
    eprint!("{report}");
    let _ = std::fs::write(repo().join("target/e2e-report.txt"), report);

    store.close().await;
    shutdown.cancel();
    drop_database(&pool, &run_id).await?;
    Ok(())
}

fn tokio_util_shutdown() -> tokio_util::sync::CancellationToken {
    tokio_util::sync::CancellationToken::new()
}

/// The classifier is killed with SIGKILL in the middle of a stream and started again: every signal
/// ends up in the store exactly once and on the classified topic at least once (at-least-once
/// delivery; the replayed tail may appear twice there, never missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_classifier_loses_nothing() -> Result {
    const ROWS: usize = 6000;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run_id = common::unique("kill");
    let (db, pool) = fresh_database(&run_id).await?;
    let dir = tempfile::tempdir()?;

    let mut csv = String::from("call_id;started_at;notes\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "K-{i};17-11-2026 09:{:02};klant {i} stond 40 minuten in de wacht\n",
            i % 60
        ));
    }
    let export = dir.path().join("calls.csv");
    std::fs::write(&export, csv)?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, base_config(&run_id, &brokers, &db, 3))?;
    let expected = dry_run_ids(&bin, &config, &["phone", &export.to_string_lossy()])?;
    assert_eq!(expected.len(), ROWS);
    common::import(&bin, &config, &["phone".as_ref(), export.as_os_str()])?;

    let store = signaal_store::Store::connect(&db).await?;
    let start = |log: &str| -> Result<Child> {
        let log = std::fs::File::create(dir.path().join(log))?;
        Ok(Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("classifier")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?)
    };
    let mut first = start("classifier-1.log")?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut stored_before_kill = 0;
    while Instant::now() < deadline {
        stored_before_kill = store.count_signals().await?;
        if stored_before_kill >= 500 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill()?; // SIGKILL: no shutdown, no final commit
    first.wait()?;
    assert!(
        (stored_before_kill as usize) < ROWS,
        "the classifier finished before it could be killed ({stored_before_kill} stored); raise ROWS"
    );

    let second = start("classifier-2.log")?;
    let mut workers = Workers(vec![("classifier".into(), second)]);
    let deadline = Instant::now() + Duration::from_secs(180);
    while store.count_signals().await? < ROWS as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    assert_eq!(
        stored.len(),
        ROWS,
        "every signal stored after the restart (killed at {stored_before_kill})"
    );
    assert_eq!(stored, expected, "exactly the exported calls, each once");

    workers.terminate()?;
    let classified = kcat_read(&brokers, &format!("{run_id}.classified"))?;
    let keys: BTreeSet<String> = classified.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(
        keys, expected,
        "every signal is on the classified topic at least once"
    );
    eprintln!(
        "kill test: killed after {stored_before_kill} of {ROWS} stored; {} classified messages for {ROWS} signals \
         ({} replayed)",
        classified.len(),
        classified.len() - ROWS
    );
    store.close().await;
    drop_database(&pool, &run_id).await?;
    Ok(())
}

/// A second classifier joins the group mid-stream and the first one leaves (SIGTERM) while work
/// is in flight: partitions move twice, batches are read ahead and in flight at each move, and
/// still every signal is stored exactly once and published at least once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebalance_mid_stream_stores_every_signal_once() -> Result {
    const ROWS: usize = 20_000;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run_id = common::unique("rebalance");
    let (db, pool) = fresh_database(&run_id).await?;
    let dir = tempfile::tempdir()?;
    let mut csv = String::from("call_id;started_at;caller;notes\n");
    for i in 0..ROWS {
        csv.push_str(&format!(
            "R-{i};17-11-2026 {:02}:{:02};06{:08};klant {i}: brief onduidelijk, drie keer doorverbonden\n",
            i / 60 % 24,
            i % 60,
            i % 3000
        ));
    }
    let export = dir.path().join("calls.csv");
    std::fs::write(&export, csv)?;
    let config = dir.path().join("signaal.toml");
    // Small batches: many of them are in flight when the partitions move.
    std::fs::write(
        &config,
        format!(
            "{}[classifier.worker]\nbatch = 200\nin_flight = 3\n",
            base_config(&run_id, &brokers, &db, 4)
        ),
    )?;
    let expected = dry_run_ids(&bin, &config, &["phone", &export.to_string_lossy()])?;
    assert_eq!(expected.len(), ROWS);
    common::import(&bin, &config, &["phone".as_ref(), export.as_os_str()])?;
    let store = signaal_store::Store::connect(&db).await?;
    let log = |n: &str| dir.path().join(n);
    let mut first = Workers(vec![(
        "classifier-1".into(),
        common::start_worker(&config, "classifier", &log("c1.log"))?,
    )]);
    let reached = |n: i64| {
        let store = store.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let c = store.count_signals().await?;
                if c >= n || Instant::now() > deadline {
                    return Ok::<i64, Box<dyn std::error::Error>>(c);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let at_join = reached(1_000).await?;
    let mut second = Workers(vec![(
        "classifier-2".into(),
        common::start_worker(&config, "classifier", &log("c2.log"))?,
    )]);
    let at_leave = reached(at_join + 4_000).await?;
    first.terminate()?;
    assert!(
        (at_leave as usize) < ROWS,
        "all {ROWS} were stored before the first classifier left; raise ROWS"
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    while store.count_signals().await? < ROWS as i64 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    let show = |n: &str| std::fs::read_to_string(log(n)).unwrap_or_default();
    assert_eq!(
        stored,
        expected,
        "every signal stored once after two rebalances; second log:\n{}",
        show("c2.log")
    );
    second.terminate()?;
    let classified = kcat_read(&brokers, &format!("{run_id}.classified"))?;
    let keys: BTreeSet<String> = classified.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(keys, expected, "every signal on the classified topic");
    eprintln!(
        "rebalance test: joined at {at_join}, left at {at_leave} of {ROWS}; {} classified messages ({} published twice)",
        classified.len(),
        classified.len() - ROWS
    );
    store.close().await;
    drop_database(&pool, &run_id).await?;
    Ok(())
}

/// Register writes of consecutive batches overlap (`writers`), so the repeat-caller lookup of a
/// batch cannot rely on the batch before being in the register yet. Every caller here calls
/// again in the next batch: each second call must be tagged `repeat_story`, however the writes
/// interleave, and no first call may be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeat_callers_are_seen_while_batches_are_written_concurrently() -> Result {
    const ROWS: usize = 3000;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run_id = common::unique("repeat");
    let (db, pool) = fresh_database(&run_id).await?;
    let dir = tempfile::tempdir()?;
    let mut csv = String::from("call_id;started_at;caller;notes\n");
    for i in 0..ROWS {
        // One partition, times rising with i; caller i % 50 calls again 50 calls (one batch) later.
        csv.push_str(&format!(
            "P-{i};{:02}-11-2026 {:02}:{:02};06{:08};vraag over de aanslag\n",
            1 + i / 1440,
            i / 60 % 24,
            i % 60,
            i % 50
        ));
    }
    let export = dir.path().join("calls.csv");
    std::fs::write(&export, csv)?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[classifier.worker]\nbatch = 50\nlinger_ms = 5\nin_flight = 4\nwriters = 3\n",
            base_config(&run_id, &brokers, &db, 1)
        ),
    )?;
    common::run_setup(&bin, &config)?;
    // Every register write takes 50 ms, so writes of consecutive batches really overlap and a
    // lookup that trusted the register alone would miss the batch before.
    let db_pool = sqlx::PgPool::connect(&db).await?;
    sqlx::raw_sql(
        "create function slow_write() returns trigger language plpgsql as \
         $$ begin perform pg_sleep(0.05); return null; end $$; \
         create trigger slow_write before insert on signals \
         for each statement execute function slow_write();",
    )
    .execute(&db_pool)
    .await?;
    common::import(&bin, &config, &["phone".as_ref(), export.as_os_str()])?;
    let log = dir.path().join("classifier.log");
    let mut workers = Workers(vec![(
        "classifier".into(),
        common::start_worker(&config, "classifier", &log)?,
    )]);
    let store = signaal_store::Store::connect(&db).await?;
    let n = common::wait_for_signals(&store, ROWS, Duration::from_secs(120)).await?;
    assert_eq!(
        n,
        ROWS,
        "log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    workers.terminate()?;
    let rows: Vec<(String, bool)> =
        sqlx::query_as("select source_id, themes @> '[{\"id\": \"repeat_story\"}]' from signals")
            .fetch_all(&db_pool)
            .await?;
    let mut wrong = Vec::new();
    for (source_id, repeat) in &rows {
        let i: usize = source_id.trim_start_matches("P-").parse()?;
        if *repeat != (i >= 50) {
            wrong.push(format!("{source_id}: repeat_story {repeat}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {ROWS} calls tagged wrongly, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    db_pool.close().await;
    store.close().await;
    drop_database(&pool, &run_id).await?;
    Ok(())
}
