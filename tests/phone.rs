//! The phone worker on real Apache Kafka and PostgreSQL: `signaal phone` is killed with SIGKILL in
//! the middle of a large export and started again; every row ends up in the register exactly
//! once, the finished file moves to `done/`, and a bad row is on the dead-letter topic once.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use common::{
    base_config, drop_database, dry_run_ids, fresh_database, kcat_read, kill_after, run_setup,
    service_env, signaal_bin, start_worker, wait_for_signals, Result, Workers,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_file_and_restarted_every_row_is_stored_once() -> Result {
    const ROWS: usize = 40_000;
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("phone");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let inbox = dir.path().join("inbox");
    std::fs::create_dir_all(&inbox)?;

    // A Windows export: CRLF, semicolons, Dutch dates, notes with line breaks, one bad row.
    let mut csv = String::from("call_id;started_at;caller;wait_seconds;transfers;notes\r\n");
    for i in 0..ROWS {
        if i == 12_345 {
            csv.push_str("BAD;gisteren;0600000000;1;0;kapot\r\n");
            continue;
        }
        csv.push_str(&format!(
            "P-{i};{:02}-11-2026 {:02}:{:02};06{i:08};{};{};\"klant {i} belde over de aanslag\r\nterugbellen\"\r\n",
            1 + i % 28,
            (i / 60) % 24,
            i % 60,
            i % 1800,
            i % 4
        ));
    }
    let staged = dir.path().join("calls.csv");
    std::fs::write(&staged, csv)?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[phone]\npoll_seconds = 1\n[[phone.inboxes]]\nname = \"cc\"\npath = \"{}\"\n",
            base_config(&run, &brokers, &db, 2),
            inbox.display()
        ),
    )?;
    let mut expected = dry_run_ids(
        &bin,
        &config,
        &["phone", "--source", "cc", &staged.to_string_lossy()],
    )?;
    assert_eq!(expected.len(), ROWS - 1, "every row but the bad one");
    // The worker records the file's path on each signal, but ids depend on call ids only.
    let path = inbox.join("calls.csv");
    std::fs::rename(&staged, &path)?;
    // Written long ago: no need to wait for the inbox's settle time.
    std::fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    let fp = signaal_phone::worker::fingerprint(&path)?;

    run_setup(&bin, &config)?;
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let start = |worker: &str, log: &str| start_worker(&config, worker, &dir.path().join(log));
    let store = signaal_store::Store::connect(&db).await?;
    let rows_done = |cursor: Option<String>| {
        cursor
            .and_then(|c| c.split(':').next().and_then(|n| n.parse::<usize>().ok()))
            .unwrap_or(0)
    };

    let mut first = start("phone", "phone-1.log")?;
    let at_kill = kill_after(
        &mut first,
        3_000,
        &dir.path().join("phone-1.log"),
        || async { Ok(rows_done(store.get_cursor("cc", &fp).await?)) },
    )
    .await?;
    assert!(
        (3_000..ROWS).contains(&at_kill),
        "the worker must be killed mid-file (checkpoint at row {at_kill}):\n{}",
        log("phone-1.log")
    );
    assert!(path.exists(), "an unfinished file stays in the inbox");

    let mut workers = Workers(vec![
        ("phone".into(), start("phone", "phone-2.log")?),
        ("classifier".into(), start("classifier", "classifier.log")?),
    ]);
    wait_for_signals(&store, expected.len(), Duration::from_secs(180)).await?;
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    assert_eq!(
        stored.len(),
        expected.len(),
        "every row stored after the restart:\n{}",
        log("phone-2.log")
    );
    assert_eq!(
        stored,
        std::mem::take(&mut expected),
        "exactly the exported calls, each once"
    );
    let done = inbox.join("done/calls.csv");
    let moved = Instant::now() + Duration::from_secs(10);
    while !done.exists() && Instant::now() < moved {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(done.exists(), "the finished file moves to done/");

    workers.terminate()?;
    let raw = kcat_read(&brokers, &format!("{run}.raw"))?;
    let dlq = kcat_read(&brokers, &format!("{run}.dlq"))?;
    assert_eq!(dlq.len(), 1, "the bad row once on the DLQ: {dlq:?}");
    assert!(dlq[0].1.contains("calls.csv:"), "{}", dlq[0].1);
    eprintln!(
        "phone kill test: killed with the checkpoint at row {at_kill} of {ROWS}; {} raw messages for {} signals ({} read again)",
        raw.len(),
        ROWS - 1,
        raw.len() - (ROWS - 1)
    );
    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}

/// Every export profile through the watched folder of a running `signaal phone` into Kafka and
/// the register, next to what the one-shot `import --dry-run` says each file holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_through_the_watched_folder_into_the_register() -> Result {
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("profiles");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let fixtures = common::repo().join("crates/signaal-phone/tests/fixtures");
    // (profile, fixture, rows the profile rejects)
    let cases = [
        ("generic_csv", "generic-windows-1252.csv", 0),
        ("asterisk_cdr", "asterisk-master-16.csv", 0),
        ("asterisk_cdr", "asterisk-master-18.csv", 2),
        ("genesys_cloud", "genesys-conversation-details.json", 1),
        ("twilio", "twilio-calls-page.json", 1),
        ("generic_ndjson", "generic-calls.ndjson", 4),
    ];
    let mut toml = format!(
        "{}[phone]\npoll_seconds = 1\n",
        base_config(&run, &brokers, &db, 2)
    );
    for (i, (profile, _, _)) in cases.iter().enumerate() {
        let inbox = dir.path().join(format!("inbox-{i}"));
        std::fs::create_dir_all(&inbox)?;
        toml.push_str(&format!(
            "[[phone.inboxes]]\nname = \"{profile}-{i}\"\npath = \"{}\"\nprofile = \"{profile}\"\n",
            inbox.display()
        ));
    }
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, toml)?;

    let mut expected = BTreeSet::new();
    for (i, (profile, file, _)) in cases.iter().enumerate() {
        let ids = dry_run_ids(
            &bin,
            &config,
            &[
                "phone",
                "--profile",
                &profile.replace('_', "-"),
                &fixtures.join(file).to_string_lossy(),
            ],
        )?;
        assert!(!ids.is_empty(), "{file}: the dry run found no calls");
        expected.extend(ids);
        let target = dir.path().join(format!("inbox-{i}")).join(file);
        std::fs::copy(fixtures.join(file), &target)?;
        std::fs::File::options()
            .write(true)
            .open(&target)?
            .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    }

    run_setup(&bin, &config)?;
    let start =
        |worker: &str| start_worker(&config, worker, &dir.path().join(format!("{worker}.log")));
    let mut workers = Workers(vec![
        ("phone".into(), start("phone")?),
        ("classifier".into(), start("classifier")?),
    ]);
    let store = signaal_store::Store::connect(&db).await?;
    wait_for_signals(&store, expected.len(), Duration::from_secs(120)).await?;
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    let log = std::fs::read_to_string(dir.path().join("phone.log")).unwrap_or_default();
    assert_eq!(
        stored, expected,
        "every profile's calls in the register, each once:\n{log}"
    );
    for (i, (_, file, _)) in cases.iter().enumerate() {
        let done = dir.path().join(format!("inbox-{i}/done")).join(file);
        assert!(done.exists(), "{file} not moved to done/:\n{log}");
    }
    workers.terminate()?;
    let dlq = kcat_read(&brokers, &format!("{run}.dlq"))?;
    let rejected: usize = cases.iter().map(|(_, _, n)| n).sum();
    assert_eq!(
        dlq.len(),
        rejected,
        "each bad record once on the DLQ: {dlq:?}"
    );
    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
