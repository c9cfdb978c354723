//! No record can stop the classifier (issue 11), on real Apache Kafka and PostgreSQL.
//!
//! Raw records that decode but that PostgreSQL or Kafka would refuse used to make their whole
//! batch retry forever: a NUL character, an id of 10 KB, a year of −100000, meta too large for
//! the classified topic. A producer's id was trusted, and duplicate JSON keys were read silently.
//! Here each of them sits between valid records: the bad ones must reach the dead-letter topic
//! exactly once with their reason, and every valid one must be stored and published, within
//! seconds. A register that is unreachable for a while holds the batch without loss, makes
//! `/healthz` answer 503 with the reason, and work resumes when it is back.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    base_config, drop_database, fresh_database, kcat_read, run_setup, service_env, signaal_bin,
    wait_for_signals, Result, Workers,
};
use signaal_bus::{BusConfig, Publisher, Record};
use signaal_core::{Channel, RawEnvelope, Signal};

fn bus(brokers: &str, run: &str) -> BusConfig {
    let mut b = common::bus_config(brokers, run);
    // The 1.5 MB record below is sent lz4-compressed, as another producer might.
    b.client
        .insert("message.max.bytes".into(), "4000000".into());
    b
}

fn call(run: &str, n: usize, text: &str) -> Signal {
    let at = chrono::Utc::now() - chrono::Duration::minutes(n as i64);
    let mut s = Signal::new(Channel::Phone, "robust", format!("{run}-{n}"), at, text);
    s.author = Some(format!("06{:08}", n));
    s
}

fn record(topic: &str, key: &str, payload: Vec<u8>) -> Record {
    Record {
        topic: topic.to_string(),
        key: key.to_string(),
        payload,
        headers: vec![],
    }
}

fn envelope(s: &Signal) -> Result<Vec<u8>> {
    Ok(serde_json::to_vec(&RawEnvelope::new(s.clone()))?)
}

/// The envelope of `s` with `field` of the signal set to the raw JSON `value`.
fn with_raw_field(s: &Signal, field: &str, value: &str) -> Result<Vec<u8>> {
    let mut v = serde_json::to_value(RawEnvelope::new(s.clone()))?;
    v["signal"][field] = serde_json::Value::String("@@RAW@@".into());
    let text = serde_json::to_string(&v)?.replace("\"@@RAW@@\"", value);
    Ok(text.into_bytes())
}

fn start_classifier(config: &Path, log: &Path, listen: Option<&str>) -> Result<Child> {
    let mut cmd = Command::new(signaal_bin()?);
    cmd.arg("--config").arg(config).arg("classifier");
    if let Some(addr) = listen {
        cmd.arg("--listen").arg(addr);
    }
    Ok(cmd
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?)
}

/// DLQ messages by key, with their headers.
fn dead_letters(brokers: &str, topic: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, h, _) in kcat_read(brokers, topic)? {
        by_key.entry(k).or_default().push(h);
    }
    Ok(by_key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_records_are_dead_lettered_once_and_every_valid_one_is_stored() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run = common::unique("robust");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, base_config(&run, &brokers, &db, 2))?;
    run_setup(&bin, &config)?;
    // A record the register itself refuses, whatever the classifier checks: the worker must
    // find it in its batch (by halving) and dead-letter only it, with PostgreSQL's reason.
    let pool = sqlx::PgPool::connect(&db).await?;
    sqlx::query(
        "alter table signals add constraint no_refuse_me check (text not like '%REFUSE-ME%')",
    )
    .execute(&pool)
    .await?;

    let raw = format!("{run}.raw");
    let mut records = Vec::new();
    let mut valid: BTreeSet<String> = BTreeSet::new();
    let mut push_valid = |records: &mut Vec<Record>, s: &Signal| -> Result {
        valid.insert(s.id.clone());
        records.push(record(&raw, &s.id, envelope(s)?));
        Ok(())
    };
    for n in 0..40 {
        push_valid(
            &mut records,
            &call(&run, n, "40 minuten in de wacht gestaan"),
        )?;
    }
    // Another producer's record claiming signal 0's id comes first: it must not take the row.
    let mut forged = call(&run, 1000, "vervalst: ik neem de rij van een ander");
    forged.id = call(&run, 0, "").id;
    records.insert(0, record(&raw, "bad-forged-id", envelope(&forged)?));
    // An id of 10 KB (PostgreSQL: "index row requires 10016 bytes").
    let mut long_id = call(&run, 1001, "lange id");
    long_id.id = "f".repeat(10_000);
    records.push(record(&raw, "bad-long-id", envelope(&long_id)?));
    // A year the date parser accepts and PostgreSQL cannot store.
    let ancient = call(&run, 1002, "heel oud");
    records.push(record(
        &raw,
        "bad-year",
        with_raw_field(&ancient, "occurred_at", "\"-100000-01-01T00:00:00Z\"")?,
    ));
    // Duplicate keys: which text is the signal's?
    let twice = call(&run, 1003, "eerste tekst");
    let mut dup = String::from_utf8(envelope(&twice)?)?;
    dup = dup.replacen("\"text\":", "\"text\":\"tweede tekst\",\"text\":", 1);
    records.push(record(&raw, "bad-duplicate-key", dup.into_bytes()));
    // Meta of 1.5 MB: fits on the raw topic compressed, never in one classified message.
    let mut fat = call(&run, 1004, "dikke meta");
    fat.meta
        .insert("blob".into(), "geen klacht ".repeat(125_000).into());
    records.push(record(&raw, "bad-too-large", envelope(&fat)?));
    // Refused by the register's check constraint.
    let refused = call(&run, 1005, "REFUSE-ME alstublieft");
    records.push(record(&raw, "bad-refused", envelope(&refused)?));
    // NUL characters everywhere PostgreSQL cannot take them: removed, and the signal stored.
    let mut nul = call(&run, 1006, "nul\u{0}in de tekst, 40 minuten in de wacht");
    nul.subject = Some("onderwerp\u{0}".into());
    nul.source = "robu\u{0}st".into();
    nul.meta.insert("no\u{0}te".into(), "waarde\u{0}".into());
    nul.meta
        .insert("nested".into(), serde_json::json!({"a": ["x\u{0}y"]}));
    push_valid(&mut records, &nul)?;
    let nul_id = call(&run, 0, "").id.clone();
    let mut nul_source_id = Signal::new(
        Channel::Phone,
        "robust",
        format!("{run}-nul\u{0}id"),
        chrono::Utc::now(),
        "ook een nul in de bron-id",
    );
    nul_source_id.author = Some("0611111111".into());
    push_valid(&mut records, &nul_source_id)?;
    for n in 40..80 {
        push_valid(&mut records, &call(&run, n, "de brief snap ik niet"))?;
    }
    let bad_keys: BTreeSet<&str> = [
        "bad-forged-id",
        "bad-long-id",
        "bad-year",
        "bad-duplicate-key",
        "bad-too-large",
        "bad-refused",
    ]
    .into();

    let publisher = Publisher::new(&bus(&brokers, &run))?;
    publisher.publish(&records).await?;

    let log = dir.path().join("classifier.log");
    let started = Instant::now();
    let mut workers = Workers(vec![(
        "classifier".into(),
        start_classifier(&config, &log, None)?,
    )]);
    let store = signaal_store::Store::connect(&db).await?;
    let stored = wait_for_signals(&store, valid.len(), Duration::from_secs(60)).await?;
    let took = started.elapsed();
    let show = || std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        stored,
        valid.len(),
        "every valid record stored within 60 s; log:\n{}",
        show()
    );
    // Wait for the dead letters of the last batch too.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut dlq = dead_letters(&brokers, &format!("{run}.dlq"))?;
    while dlq.len() < bad_keys.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(300)).await;
        dlq = dead_letters(&brokers, &format!("{run}.dlq"))?;
    }
    // A little longer: a retried batch would send its dead letters again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    dlq = dead_letters(&brokers, &format!("{run}.dlq"))?;
    workers.terminate()?;

    let ids: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    assert_eq!(ids, valid, "exactly the valid records are in the register");
    let keys: BTreeSet<&str> = dlq.keys().map(String::as_str).collect();
    assert_eq!(keys, bad_keys, "exactly the bad records are dead-lettered");
    let reasons = [
        ("bad-forged-id", "is not the id of"),
        ("bad-long-id", "is not the id of"),
        ("bad-year", "occurred_at"),
        ("bad-duplicate-key", "duplicate"),
        ("bad-too-large", "byte limit of one Kafka message"),
        ("bad-refused", "no_refuse_me"),
    ];
    for (key, reason) in reasons {
        let headers = &dlq[key];
        assert_eq!(headers.len(), 1, "`{key}` dead-lettered once: {headers:?}");
        assert!(
            headers[0].contains(reason),
            "`{key}`'s reason should mention `{reason}`: {}",
            headers[0]
        );
    }

    // The forged record did not take signal 0's row.
    let row: (String,) = sqlx::query_as("select text from signals where id = $1")
        .bind(&nul_id)
        .fetch_one(&pool)
        .await?;
    assert_eq!(row.0, "40 minuten in de wacht gestaan");
    // NULs removed, the rest of each string kept.
    let row: (String, Option<String>, String, serde_json::Value) =
        sqlx::query_as("select text, subject, source, meta from signals where id = $1")
            .bind(&nul.id)
            .fetch_one(&pool)
            .await?;
    assert_eq!(row.0, "nulin de tekst, 40 minuten in de wacht");
    assert_eq!(row.1.as_deref(), Some("onderwerp"));
    assert_eq!(row.2, "robust");
    assert_eq!(row.3["note"], "waarde");
    assert_eq!(row.3["nested"]["a"][0], "xy");

    // What was stored was published, each once.
    let classified = kcat_read(&brokers, &format!("{run}.classified"))?;
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (k, _, _) in &classified {
        *per_key.entry(k.clone()).or_default() += 1;
    }
    assert_eq!(
        per_key.keys().cloned().collect::<BTreeSet<_>>(),
        valid,
        "the classified topic holds exactly the stored signals"
    );
    assert!(per_key.values().all(|n| *n == 1), "each published once");

    let metrics_log = show();
    assert!(
        !metrics_log.contains("retrying"),
        "no batch was retried for a bad record:\n{metrics_log}"
    );
    eprintln!(
        "robust: {} valid records stored and {} hostile ones dead-lettered in {:.2} s (start-up included)",
        valid.len(),
        bad_keys.len(),
        took.as_secs_f64()
    );
    store.close().await;
    pool.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}

async fn health(addr: &str) -> Result<(u16, String)> {
    let resp = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(3))
        .send()
        .await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

async fn wait_health(addr: &str, status: u16, timeout: Duration) -> Result<(u16, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let now = health(addr).await;
        if let Ok((s, _)) = &now {
            if *s == status || Instant::now() > deadline {
                return now;
            }
        } else if Instant::now() > deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_register_holds_the_batch_fails_healthz_and_recovers() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run = common::unique("stall");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[bus.consumer]\nstall_seconds = 3\n",
            base_config(&run, &brokers, &db, 2)
        ),
    )?;
    run_setup(&bin, &config)?;
    let raw = format!("{run}.raw");
    let publisher = Publisher::new(&bus(&brokers, &run))?;
    let first: Vec<Signal> = (0..10).map(|n| call(&run, n, "in de wacht")).collect();
    let recs: Vec<Record> = first
        .iter()
        .map(|s| Ok(record(&raw, &s.id, envelope(s)?)))
        .collect::<Result<_>>()?;
    publisher.publish(&recs).await?;

    let listen = format!("127.0.0.1:{}", 20000 + std::process::id() % 20000);
    let log = dir.path().join("classifier.log");
    let mut workers = Workers(vec![(
        "classifier".into(),
        start_classifier(&config, &log, Some(&listen))?,
    )]);
    let show = || std::fs::read_to_string(&log).unwrap_or_default();
    let store = signaal_store::Store::connect(&db).await?;
    assert_eq!(
        wait_for_signals(&store, 10, Duration::from_secs(60)).await?,
        10,
        "first records stored; log:\n{}",
        show()
    );
    store.close().await;
    let (status, body) = wait_health(&listen, 200, Duration::from_secs(10)).await?;
    assert_eq!(status, 200, "healthy while it works: {body}");

    // The register goes away: no new connections, the open ones cut.
    sqlx::query(&format!("alter database {run} allow_connections false"))
        .execute(&admin)
        .await?;
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&run)
        .execute(&admin)
        .await?;
    // Without callers: no repeat-caller lookup, so the register write itself meets the refused
    // connection (which must be retried, not taken for a refusal of the records).
    let second: Vec<Signal> = (10..20)
        .map(|n| {
            let mut s = call(&run, n, "brief onduidelijk");
            s.author = None;
            s
        })
        .collect();
    let mut recs: Vec<Record> = second
        .iter()
        .map(|s| Ok(record(&raw, &s.id, envelope(s)?)))
        .collect::<Result<_>>()?;
    recs.push(record(&raw, "bad-not-json", b"{not json".to_vec()));
    publisher.publish(&recs).await?;

    let (status, body) = wait_health(&listen, 503, Duration::from_secs(30)).await?;
    assert_eq!(
        status,
        503,
        "a classifier that cannot store for over 3 s is unhealthy: {body}\nlog:\n{}",
        show()
    );
    assert!(
        body.contains("no progress") && body.contains(&format!("{run}-classifier")),
        "the reason names the worker: {body}"
    );
    assert!(
        body.contains("not currently accepting connections"),
        "the reason carries the database's error: {body}"
    );
    eprintln!("stalled classifier's /healthz: {}", body.trim());

    sqlx::query(&format!("alter database {run} allow_connections true"))
        .execute(&admin)
        .await?;
    let back = Instant::now();
    let store = signaal_store::Store::connect(&db).await?;
    assert_eq!(
        wait_for_signals(&store, 20, Duration::from_secs(60)).await?,
        20,
        "everything held is stored once the register is back; log:\n{}",
        show()
    );
    let resumed = back.elapsed();
    let (status, body) = wait_health(&listen, 200, Duration::from_secs(15)).await?;
    assert_eq!(status, 200, "healthy again: {body}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    workers.terminate()?;
    let dlq = dead_letters(&brokers, &format!("{run}.dlq"))?;
    assert_eq!(
        dlq.keys().collect::<Vec<_>>(),
        vec!["bad-not-json"],
        "only the bad record is dead-lettered"
    );
    assert_eq!(
        dlq["bad-not-json"].len(),
        1,
        "once, though its batch was retried"
    );
    eprintln!(
        "register back: held records stored {:.2} s later",
        resumed.as_secs_f64()
    );
    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
