//! The inbox folder: finished files go to `done/`, files that cannot be read to `failed/` with a
//! `.error` file saying why, and files still being written wait. Kafka is librdkafka's in-process
//! mock cluster here (fast unit test); the real-broker runs are in `tests/end_to_end.rs`.

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime};

use signaal_bus::{MockKafka, Publisher};
use signaal_phone::worker::{poll_once, PhoneSource};
use signaal_store::Store;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Writes `name` as if its writer finished a minute ago.
fn drop_file(inbox: &Path, name: &str, content: &str) -> Result {
    let path = inbox.join(name);
    fs::write(&path, content)?;
    fs::File::options()
        .write(true)
        .open(&path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    Ok(())
}

#[tokio::test]
async fn done_failed_and_still_being_written() -> Result {
    let dir = tempfile::tempdir()?;
    let inbox = dir.path().join("inbox");
    fs::create_dir_all(&inbox)?;
    let mock = MockKafka::start(1)?;
    let bus = mock.bus_config(1)?;
    let publisher = Publisher::new(&bus)?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("s.db").display())).await?;
    let cfg = PhoneSource {
        name: "inbox-test".into(),
        inbox: inbox.clone(),
        format: Default::default(),
        poll_interval: Duration::from_secs(1),
    };

    drop_file(
        &inbox,
        "good.csv",
        "call_id,started_at,notes\nA,2026-11-17 09:00:00,lang gewacht\nB,2026-11-17 09:05:00,\n",
    )?;
    drop_file(
        &inbox,
        "wrong-columns.csv",
        "id,datum,notitie\n1,2026-11-17,x\n",
    )?;
    drop_file(&inbox, "empty.csv", "")?;
    // Just written: its writer may not be done.
    fs::write(
        inbox.join("fresh.csv"),
        "call_id,started_at\nC,2026-11-17 09:10:00\n",
    )?;
    // Still being written under a temporary name.
    drop_file(&inbox, "next.csv.part", "call_id,started_at\n")?;

    let stats = poll_once(&cfg, &publisher, &store).await?;
    assert_eq!(stats.published, 2);
    assert!(inbox.join("done/good.csv").exists());
    let why = fs::read_to_string(inbox.join("failed/wrong-columns.csv.error"))?;
    assert!(why.contains("no `started_at` column"), "{why}");
    assert!(inbox.join("failed/wrong-columns.csv").exists());
    let why = fs::read_to_string(inbox.join("failed/empty.csv.error"))?;
    assert!(why.contains("empty"), "{why}");
    assert!(
        inbox.join("fresh.csv").exists(),
        "a file still being written waits"
    );
    assert!(inbox.join("next.csv.part").exists());

    // Once it has settled it is read; the same file dropped again adds nothing.
    fs::File::options()
        .write(true)
        .open(inbox.join("fresh.csv"))?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    assert_eq!(poll_once(&cfg, &publisher, &store).await?.published, 1);
    fs::copy(inbox.join("done/good.csv"), inbox.join("good-again.csv"))?;
    fs::File::options()
        .write(true)
        .open(inbox.join("good-again.csv"))?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    assert_eq!(poll_once(&cfg, &publisher, &store).await?.published, 0);
    assert!(inbox.join("done/good-again.csv").exists());
    Ok(())
}

/// With a one-hour rescan interval, a file dropped while the worker runs is still read within
/// seconds: the file-system event wakes the worker, and a file too fresh to read is looked at
/// again once it has settled.
#[tokio::test]
async fn file_events_wake_the_worker() -> Result {
    let dir = tempfile::tempdir()?;
    let inbox = dir.path().join("inbox");
    fs::create_dir_all(&inbox)?;
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("s.db").display())).await?;
    let cfg = PhoneSource {
        name: "events".into(),
        inbox: inbox.clone(),
        format: Default::default(),
        poll_interval: Duration::from_secs(3600),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(signaal_phone::worker::run(
        cfg,
        publisher,
        store.clone(),
        shutdown.clone(),
    ));
    // Let the first (empty) poll pass, then deliver the way exporters do: write, then rename.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let dropped = std::time::Instant::now();
    fs::write(
        inbox.join("calls.csv.part"),
        "call_id,started_at,notes\nE-1,2026-11-17 09:00:00,x\n",
    )?;
    fs::rename(inbox.join("calls.csv.part"), inbox.join("calls.csv"))?;
    while !inbox.join("done/calls.csv").exists() {
        assert!(
            dropped.elapsed() < Duration::from_secs(15),
            "the dropped file was not read within 15 s (the rescan interval is an hour)"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Read after it settled (2 s), not before.
    assert!(
        dropped.elapsed() >= Duration::from_secs(2),
        "{:?}",
        dropped.elapsed()
    );
    shutdown.cancel();
    worker.await?;
    Ok(())
}

fn fixture(name: &str) -> Result<String> {
    Ok(fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )?)
}

/// Issue 12, item 4: Asterisk appends to `Master.csv` for ever. A grown copy dropped in the
/// inbox again resumes after the rows its first copy had; before, it was read from the start
/// and every old row of a 16-column file came back under a new id.
#[tokio::test]
async fn a_grown_master_csv_resumes_after_the_rows_read_before() -> Result {
    let dir = tempfile::tempdir()?;
    let inbox = dir.path().join("inbox");
    fs::create_dir_all(&inbox)?;
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("s.db").display())).await?;
    let cfg = PhoneSource {
        name: "pbx".into(),
        inbox: inbox.clone(),
        format: signaal_phone::ExportFormat {
            profile: signaal_phone::Profile::AsteriskCdr,
            ..Default::default()
        },
        poll_interval: Duration::from_secs(1),
    };
    drop_file(&inbox, "Master.csv", &fixture("asterisk-master-16.csv")?)?;
    assert_eq!(poll_once(&cfg, &publisher, &store).await?.published, 4);
    assert!(inbox.join("done/Master.csv").exists());

    drop_file(
        &inbox,
        "Master.csv",
        &fixture("asterisk-master-16-grown.csv")?,
    )?;
    assert_eq!(
        poll_once(&cfg, &publisher, &store).await?.published,
        2,
        "only the two rows added since"
    );

    // A file that only starts the same way (not a grown copy) is read whole.
    let other =
        fixture("asterisk-master-16.csv")?.replace("2026-11-17 11:10:00", "2026-11-18 11:10:00");
    drop_file(&inbox, "Master.csv", &other)?;
    assert_eq!(poll_once(&cfg, &publisher, &store).await?.published, 4);
    Ok(())
}

/// Issue 12, items 12 and 20: a JSON page that is not the profile's (here an error body given
/// to the Twilio inbox) moves to `failed/` with the reason; an error about a 2 MB header line
/// leaves a `.error` file of a readable size.
#[tokio::test]
async fn wrong_files_fail_with_a_brief_reason() -> Result {
    let dir = tempfile::tempdir()?;
    let inbox = dir.path().join("inbox");
    fs::create_dir_all(&inbox)?;
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("s.db").display())).await?;
    let mut cfg = PhoneSource {
        name: "twilio".into(),
        inbox: inbox.clone(),
        format: signaal_phone::ExportFormat {
            profile: signaal_phone::Profile::Twilio,
            ..Default::default()
        },
        poll_interval: Duration::from_secs(1),
    };
    drop_file(&inbox, "calls.json", &fixture("twilio-error-20003.json")?)?;
    drop_file(
        &inbox,
        "conversations.json",
        &fixture("genesys-conversation-details.json")?,
    )?;
    poll_once(&cfg, &publisher, &store).await?;
    let why = fs::read_to_string(inbox.join("failed/calls.json.error"))?;
    assert!(why.contains("API error response 401 (code 20003)"), "{why}");
    let why = fs::read_to_string(inbox.join("failed/conversations.json.error"))?;
    assert!(why.contains("not a Twilio Calls page"), "{why}");

    cfg.format = Default::default();
    let header = format!("{};datum\n1;2026-11-17\n", "kolom;".repeat(150_000));
    drop_file(&inbox, "wide.csv", &header)?;
    poll_once(&cfg, &publisher, &store).await?;
    let why = fs::read_to_string(inbox.join("failed/wide.csv.error"))?;
    assert!(
        why.contains("no `started_at` column"),
        "{}",
        why.chars().take(200).collect::<String>()
    );
    assert!(why.len() < 2048, "the .error file is {} bytes", why.len());
    Ok(())
}
