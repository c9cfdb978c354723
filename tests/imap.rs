//! The IMAP source against a real Dovecot server (scripts/dovecot-local, started by scripts/test),
//! with Apache Kafka and PostgreSQL.
//!
//! Every test works in a folder of its own, created and filled through a second IMAP session that
//! plays the person at the mailbox.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    base_config, drop_database, fresh_database, kcat_read, kill_after, run_setup, service_env,
    signaal_bin, Result, Workers,
};
use futures::TryStreamExt;
use signaal_bus::{BusConfig, Publisher, Topics};
use signaal_email::imap::{
    connect, poll_once, AfterCommit, Auth, ImapConfig, ImapError, Security, Session,
};
use signaal_email::{parse_message, Outcome, Rules};
use signaal_store::Store;

fn port(var: &str) -> Result<u16> {
    let addr = service_env(var)?;
    let (_, port) = addr.rsplit_once(':').ok_or("address without port")?;
    Ok(port.parse()?)
}

fn config(name: &str, security: Security, auth: Auth, folder: &str) -> Result<ImapConfig> {
    let var = if security == Security::Tls {
        "SIGNAAL_TEST_IMAPS"
    } else {
        "SIGNAAL_TEST_IMAP"
    };
    Ok(ImapConfig {
        name: name.into(),
        // The certificate is for `localhost` and 127.0.0.1; connect by name to check it.
        host: "localhost".into(),
        port: port(var)?,
        security,
        ca_file: Some(service_env("SIGNAAL_TEST_IMAP_CA")?.into()),
        auth,
        folders: vec![folder.into()],
        after: AfterCommit::Nothing,
        batch: 2,
        rules: Rules::default(),
        idle: false,
        poll_interval: Duration::from_secs(1),
    })
}

fn password() -> Auth {
    Auth::Password {
        user: "signaal".into(),
        password: "signaal-secret".into(),
    }
}

fn message(tag: &str, n: usize) -> String {
    format!(
        "From: Klant {n} <klant{n}@voorbeeld.nl>\r\nTo: klantcontact@gemeente.nl\r\nSubject: Brief {n}\r\n\
         Message-ID: <{tag}-{n}@voorbeeld.nl>\r\nDate: Mon, 2 Nov 2026 10:00:00 +0100\r\n\r\n\
         Ik snap de brief niet die ik kreeg over mijn aanslag {n}.\r\n"
    )
}

/// The signal id signaal gives `raw` when read by source `source`.
fn id_of(raw: &str, source: &str) -> Result<String> {
    match parse_message(raw.as_bytes(), source) {
        Outcome::Signal(s) => Ok(s.id),
        other => Err(format!("test message is not a signal: {other:?}").into()),
    }
}

/// The person's session: a fresh folder of their own.
async fn person_with_folder(folder: &str) -> Result<Session> {
    let cfg = config("person", Security::StartTls, password(), folder)?;
    let mut person = connect(&cfg).await?;
    person.create(folder).await?;
    Ok(person)
}

async fn deliver(person: &mut Session, folder: &str, raw: &str, seen: bool) -> Result {
    let flags = if seen { Some("(\\Seen)") } else { None };
    person.append(folder, flags, None, raw).await?;
    Ok(())
}

/// Deletes and creates the folder again. Dovecot finishes a logged-out session (the poller's) after
/// its "OK Logout", and that session may still write its index into the folder just deleted, which
/// leaves a `\Noselect` directory behind: CREATE then says ALREADYEXISTS. Delete it again then.
async fn recreate(person: &mut Session, folder: &str) -> Result {
    for attempt in 1..=20 {
        if let Err(e) = person.delete(folder).await {
            // A retry may find the leftover already cleaned up.
            if attempt == 1 {
                return Err(e.into());
            }
        }
        match person.create(folder).await {
            Ok(()) => return Ok(()),
            Err(e) if attempt < 20 && e.to_string().contains("ALREADYEXISTS") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(format!("could not recreate {folder}").into())
}

/// Deletes the test folder. A folder cannot be deleted while selected: Dovecot drops the session.
async fn remove_folder(mut person: Session, folder: &str) -> Result {
    person.select("INBOX").await?;
    person.delete(folder).await?;
    person.logout().await?;
    Ok(())
}

/// Kafka topics, a database and a publisher of one test's own.
struct Services {
    run: String,
    admin: sqlx::PgPool,
    store: Store,
    bus: BusConfig,
    publisher: Publisher,
}

impl Services {
    async fn start(prefix: &str) -> Result<Services> {
        let run = common::unique(prefix);
        let (url, admin) = fresh_database(&run).await?;
        let store = Store::connect(&url).await?;
        let bus = bus_with_topics(&run)?;
        signaal_bus::ensure_topics(&bus).await?;
        let publisher = Publisher::new(&bus)?;
        Ok(Services {
            run,
            admin,
            store,
            bus,
            publisher,
        })
    }

    async fn stop(self) -> Result {
        self.store.close().await;
        drop_database(&self.admin, &self.run).await
    }
}

fn bus_with_topics(run: &str) -> Result<BusConfig> {
    Ok(BusConfig {
        brokers: service_env("SIGNAAL_TEST_BROKERS")?,
        topics: Topics {
            raw: format!("{run}.raw"),
            classified: format!("{run}.classified"),
            alerts: format!("{run}.alerts"),
            dlq: format!("{run}.dlq"),
            stats: format!("{run}.stats"),
        },
        partitions: 1,
        ..BusConfig::default()
    })
}

#[tokio::test]
async fn new_mail_is_read_once_and_seen_flags_are_left_alone() -> Result {
    let t = Services::start("imapseen").await?;
    let (run, store, bus, publisher) = (&t.run, &t.store, &t.bus, &t.publisher);
    let cfg = config("imap-test", Security::StartTls, password(), run)?;

    // The person delivers three messages and has read the first.
    let mut person = person_with_folder(run).await?;
    for n in 1..=3 {
        deliver(&mut person, run, &message(run, n), n == 1).await?;
    }

    let first = poll_once(&cfg, publisher, store).await?;
    assert_eq!(first.published, 3, "three messages, in batches of two");
    assert_eq!(
        poll_once(&cfg, publisher, store).await?.published,
        0,
        "nothing twice"
    );

    // Flags are what the person left: signaal fetched with BODY.PEEK[] from a read-only EXAMINE.
    person.select(run).await?;
    let unseen = person.uid_search("UNSEEN").await?;
    assert_eq!(unseen.len(), 2, "signaal must not mark mail read");

    // The person marks everything read and new mail arrives: only the new mail is read.
    person
        .uid_store("1:*", "+FLAGS (\\Seen)")
        .await?
        .try_collect::<Vec<_>>()
        .await?;
    deliver(&mut person, run, &message(run, 4), false).await?;
    assert_eq!(poll_once(&cfg, publisher, store).await?.published, 1);

    let cursors = store.cursors("imap-test").await?;
    let cursor = cursors.get(&format!("imap:{run}")).ok_or("no cursor")?;
    assert!(cursor.ends_with(":4"), "cursor {cursor} should be at UID 4");

    // Four distinct signals on the raw topic, each once, keyed by the ids the parser gives.
    let mut want = BTreeSet::new();
    for n in 1..=4 {
        want.insert(id_of(&message(run, n), "imap-test")?);
    }
    let keys: Vec<String> = kcat_read(&bus.brokers, &bus.topics.raw)?
        .into_iter()
        .map(|(k, _, _)| k)
        .collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), want);

    remove_folder(person, run).await?;
    t.stop().await
}

/// With IDLE, every configured folder is watched (a connection each), not only the first: mail
/// arriving in the second folder is read within seconds although the poll interval is two
/// minutes.
#[tokio::test]
async fn idle_watches_every_folder() -> Result {
    let t = Services::start("imapidle").await?;
    let (run, store, publisher) = (&t.run, &t.store, &t.publisher);
    let second = format!("{run}-b");
    let mut cfg = config("imap-idle", Security::StartTls, password(), run)?;
    cfg.folders.push(second.clone());
    cfg.idle = true;
    cfg.poll_interval = Duration::from_secs(120);

    let mut person = person_with_folder(run).await?;
    person.create(&second).await?;
    deliver(&mut person, run, &message(run, 1), false).await?;
    deliver(&mut person, &second, &message(run, 2), false).await?;

    let shutdown = tokio_util::sync::CancellationToken::new();
    let worker = tokio::spawn(signaal_email::imap::run(
        cfg,
        publisher.clone(),
        store.clone(),
        shutdown.clone(),
    ));
    // The cursor of each folder reaching `uid`.
    let at = |folder: String, uid: u32| async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let cursors = store.cursors("imap-idle").await?;
            let cursor = cursors.get(&format!("imap:{folder}")).cloned();
            if cursor
                .as_deref()
                .is_some_and(|c| c.ends_with(&format!(":{uid}")))
            {
                return Ok::<_, Box<dyn std::error::Error>>(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(format!("`{folder}` not at UID {uid}: {cursor:?}").into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    at(run.clone(), 1).await?;
    at(second.clone(), 1).await?;

    // Both connections are idling now; new mail in either folder is read at once.
    let delivered = Instant::now();
    deliver(&mut person, &second, &message(run, 3), false).await?;
    let second_read = at(second.clone(), 2).await? - delivered;
    let delivered = Instant::now();
    deliver(&mut person, run, &message(run, 4), false).await?;
    let first_read = at(run.clone(), 2).await? - delivered;
    // `at` gives up after 20 s, long before the two-minute poll: IDLE read them.
    eprintln!("imap idle: second folder read {second_read:?} after delivery, first {first_read:?}");

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), worker).await??;
    person.delete(&second).await?;
    remove_folder(person, run).await?;
    t.stop().await
}

/// A message without a Date header (a web form's mailer, a scanner) is dated by the server's
/// INTERNALDATE, not by when signaal happened to read it: a restart re-reading it gives the
/// same time.
#[tokio::test]
async fn a_message_without_a_date_header_gets_the_servers_internaldate() -> Result {
    let t = Services::start("imapdate").await?;
    let (run, store, bus, publisher) = (&t.run, &t.store, &t.bus, &t.publisher);
    let cfg = config("imap-date", Security::StartTls, password(), run)?;

    let mut person = person_with_folder(run).await?;
    let undated = format!(
        "From: Klant <klant@voorbeeld.nl>\r\nSubject: Formulier\r\nMessage-ID: <{run}@form>\r\n\r\n\
         Het formulier op de website geeft een foutmelding.\r\n"
    );
    person
        .append(run, None, Some("\"02-Nov-2026 09:15:00 +0100\""), &undated)
        .await?;
    // A Date header wins over the INTERNALDATE.
    person
        .append(
            run,
            None,
            Some("\"02-Nov-2026 09:15:00 +0100\""),
            message(run, 1),
        )
        .await?;
    assert_eq!(poll_once(&cfg, publisher, store).await?.published, 2);

    let mut times = BTreeMap::new();
    for (key, _, payload) in kcat_read(&bus.brokers, &bus.topics.raw)? {
        let envelope: serde_json::Value = serde_json::from_str(&payload)?;
        let at = envelope["signal"]["occurred_at"]
            .as_str()
            .ok_or("no occurred_at")?;
        let at = chrono::DateTime::parse_from_rfc3339(at)?.to_utc();
        times.insert(key, at.to_rfc3339());
    }
    let want = BTreeMap::from([
        (
            id_of(&undated, "imap-date")?,
            "2026-11-02T08:15:00+00:00".to_string(),
        ),
        (
            id_of(&message(run, 1), "imap-date")?,
            "2026-11-02T09:00:00+00:00".to_string(),
        ),
    ]);
    assert_eq!(times, want);

    remove_folder(person, run).await?;
    t.stop().await
}

/// The mailbox is rebuilt (restored from a backup, migrated to another server): UIDVALIDITY
/// changes and every UID means something else. signaal reads the folder again; the ids come from
/// Message-ID, so the old messages get the ids they had and the register stores nothing twice.
#[tokio::test]
async fn a_uidvalidity_change_rereads_the_folder_under_the_same_ids() -> Result {
    let t = Services::start("imapvalidity").await?;
    let (run, store, bus, publisher) = (&t.run, &t.store, &t.bus, &t.publisher);
    let cfg = config("imap-validity", Security::StartTls, password(), run)?;

    let mut person = person_with_folder(run).await?;
    for n in 1..=3 {
        deliver(&mut person, run, &message(run, n), false).await?;
    }
    assert_eq!(poll_once(&cfg, publisher, store).await?.published, 3);
    let before = store.cursors("imap-validity").await?;

    // Rebuilt: same name, same three messages, one new one, a new UIDVALIDITY.
    recreate(&mut person, run).await?;
    for n in 1..=4 {
        deliver(&mut person, run, &message(run, n), false).await?;
    }
    assert_eq!(poll_once(&cfg, publisher, store).await?.published, 4);
    let after = store.cursors("imap-validity").await?;
    let key = format!("imap:{run}");
    let (old, new) = (
        before.get(&key).ok_or("no cursor before")?,
        after.get(&key).ok_or("no cursor after")?,
    );
    assert_ne!(
        old.split(':').next(),
        new.split(':').next(),
        "the server gave the rebuilt folder a new UIDVALIDITY ({old} → {new})"
    );
    assert!(new.ends_with(":4"), "{new}");

    // On the topic: the three old messages twice under their old ids, the new one once. The
    // register keys on the id, so it holds four.
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for (k, _, _) in kcat_read(&bus.brokers, &bus.topics.raw)? {
        *per_key.entry(k).or_default() += 1;
    }
    let mut want = BTreeMap::new();
    for n in 1..=4 {
        want.insert(
            id_of(&message(run, n), "imap-validity")?,
            if n == 4 { 1 } else { 2 },
        );
    }
    assert_eq!(per_key, want);

    remove_folder(person, run).await?;
    t.stop().await
}

/// After-commit actions, the size limit and internal senders over IMAP.
#[tokio::test]
async fn oversized_mail_is_dead_lettered_unread_and_committed_mail_is_moved() -> Result {
    let t = Services::start("imapmove").await?;
    let (run, store, bus, publisher) = (&t.run, &t.store, &t.bus, &t.publisher);
    let done = format!("{run}-done");
    let mut cfg = config("imap-move", Security::StartTls, password(), run)?;
    cfg.after = AfterCommit::Move(done.clone());
    cfg.rules = Rules {
        internal: vec!["@gemeente.nl".into()],
        max_bytes: 64 * 1024,
        ..Rules::default()
    };

    let mut person = person_with_folder(run).await?;
    person.create(&done).await?;
    let big = format!(
        "{}{}\r\n",
        message(run, 2).trim_end(),
        "\r\nbijlage ".repeat(10_000)
    );
    let internal = "From: Collega <collega@gemeente.nl>\r\nSubject: intern\r\n\
                    Message-ID: <intern@gemeente.nl>\r\n\r\nzie hieronder\r\n";
    deliver(&mut person, run, &message(run, 1), false).await?;
    deliver(&mut person, run, &big, false).await?;
    deliver(&mut person, run, internal, false).await?;

    let stats = poll_once(&cfg, publisher, store).await?;
    assert_eq!(
        (stats.published, stats.dead_lettered, stats.skipped),
        (1, 1, 1)
    );
    // Every message was committed, so every message moved; the inbox folder is empty.
    person.select(run).await?;
    assert_eq!(person.uid_search("ALL").await?.len(), 0);
    person.select(&done).await?;
    assert_eq!(person.uid_search("ALL").await?.len(), 3);

    let dlq = kcat_read(&bus.brokers, &bus.topics.dlq)?;
    assert_eq!(dlq.len(), 1, "{dlq:?}");
    let (_, headers, payload) = &dlq[0];
    assert!(
        headers.contains(&format!("{} bytes, over the 65536-byte limit", big.len())),
        "{headers}"
    );
    // Only the header was downloaded and kept, never the 90 kB body.
    assert!(payload.contains(&format!("Message-ID: <{run}-2@voorbeeld.nl>")));
    assert!(!payload.contains("bijlage"), "{} bytes", payload.len());

    remove_folder(person, run).await?;
    let cleanup = config("person", Security::StartTls, password(), &done)?;
    let mut person = connect(&cleanup).await?;
    person.delete(&done).await?;
    person.logout().await?;
    t.stop().await
}

/// With `keyword`, committed mail is flagged for the people working the mailbox; nothing else
/// changes (it stays unread, in its folder).
#[tokio::test]
async fn committed_mail_gets_the_keyword_and_stays_unread() -> Result {
    let t = Services::start("imapkw").await?;
    let (run, store, publisher) = (&t.run, &t.store, &t.publisher);
    let mut cfg = config("imap-keyword", Security::StartTls, password(), run)?;
    cfg.after = AfterCommit::Keyword("$Signaal".into());

    let mut person = person_with_folder(run).await?;
    for n in 1..=3 {
        deliver(&mut person, run, &message(run, n), false).await?;
    }
    assert_eq!(poll_once(&cfg, publisher, store).await?.published, 3);
    deliver(&mut person, run, &message(run, 4), false).await?;

    person.select(run).await?;
    let mut flagged = person
        .uid_search("KEYWORD $Signaal")
        .await?
        .into_iter()
        .collect::<Vec<_>>();
    flagged.sort_unstable();
    assert_eq!(
        flagged,
        vec![1, 2, 3],
        "the three committed messages, not the new one"
    );
    assert_eq!(
        person.uid_search("UNSEEN").await?.len(),
        4,
        "all still unread"
    );

    remove_folder(person, run).await?;
    t.stop().await
}

#[tokio::test]
async fn xoauth2_over_imaps_and_a_wrong_token_is_a_clear_error() -> Result {
    let good = Auth::XOAuth2 {
        user: "oauth".into(),
        token: "signaal-test-token".into(),
    };
    let mut s = connect(&config("x", Security::Tls, good, "INBOX")?).await?;
    s.select("INBOX").await?;
    s.logout().await?;

    let bad = Auth::XOAuth2 {
        user: "oauth".into(),
        token: "expired".into(),
    };
    match connect(&config("x", Security::Tls, bad, "INBOX")?).await {
        Err(ImapError::Login { user, .. }) => assert_eq!(user, "oauth"),
        Err(e) => return Err(format!("want a login error, got {e}").into()),
        Ok(_) => return Err("a wrong token was accepted".into()),
    }

    // A server whose certificate is not trusted is refused before any password is sent.
    let mut untrusted = config("x", Security::Tls, password(), "INBOX")?;
    untrusted.ca_file = None;
    match connect(&untrusted).await {
        Err(ImapError::Tls { reason, .. }) => assert!(reason.contains("certificate"), "{reason}"),
        Err(e) => return Err(format!("want a TLS error, got {e}").into()),
        Ok(_) => return Err("an untrusted certificate was accepted".into()),
    }
    Ok(())
}

/// The `signaal email` and `signaal classifier` processes against Dovecot: the email worker is
/// killed with SIGKILL while it works through a backlog and started again; every message ends up
/// in the register exactly once. Mail delivered while it runs arrives through IDLE, and SIGTERM
/// stops it cleanly while it waits in IDLE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_backlog_and_restarted_every_message_is_stored_once() -> Result {
    const BACKLOG: usize = 400;
    const LATER: usize = 5;
    let run = common::unique("imapkill");
    let source = "imap-kill";
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;

    let mut person = person_with_folder(&run).await?;
    let mut expected = BTreeSet::new();
    for n in 0..BACKLOG {
        let raw = message(&run, n);
        expected.insert(id_of(&raw, source)?);
        deliver(&mut person, &run, &raw, n % 3 == 0).await?;
    }

    let ops_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            r#"{base}
[email]
poll_seconds = 20
[[email.imap]]
name = "{source}"
host = "localhost"
port = {port}
security = "starttls"
ca_file = "{ca}"
user = "signaal"
password_file = "{secret}"
folders = ["{run}"]
batch = 3
"#,
            base = base_config(&run, &brokers, &db, 2),
            port = port("SIGNAAL_TEST_IMAP")?,
            ca = service_env("SIGNAAL_TEST_IMAP_CA")?,
            secret = dir.path().join("imap-password").display(),
        ),
    )?;
    std::fs::write(dir.path().join("imap-password"), "signaal-secret\n")?;
    run_setup(&bin, &config)?;
    let start = |worker: &str, log: &str, listen: bool| -> Result<std::process::Child> {
        let mut cmd = Command::new(&bin);
        cmd.arg("--config").arg(&config).arg(worker);
        if listen {
            cmd.arg("--listen").arg(format!("127.0.0.1:{ops_port}"));
        }
        Ok(cmd
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join(log))?)
            .spawn()?)
    };
    let log = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap_or_default();
    let mut workers = Workers(vec![(
        "classifier".into(),
        start("classifier", "classifier.log", false)?,
    )]);

    // Kill the email worker once it has committed part of the backlog.
    let store = Store::connect(&db).await?;
    let cursor_uid = |cursors: BTreeMap<String, String>| {
        cursors
            .get(&format!("imap:{run}"))
            .and_then(|c| signaal_email::imap::parse_cursor(c))
            .map_or(0, |(_, uid)| uid as usize)
    };
    let mut first = start("email", "email-1.log", false)?;
    let at_kill = kill_after(&mut first, 30, &dir.path().join("email-1.log"), || async {
        Ok(cursor_uid(store.cursors(source).await?))
    })
    .await?;
    assert!(
        (30..BACKLOG).contains(&at_kill),
        "the worker must be killed mid-backlog (cursor at {at_kill}):\n{}",
        log("email-1.log")
    );

    let restarted = Instant::now();
    workers
        .0
        .push(("email".into(), start("email", "email-2.log", true)?));
    let wait_for = |n: usize, what: &'static str| {
        let store = store.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let stored = store.count_signals().await? as usize;
                if stored >= n {
                    return Ok::<_, Box<dyn std::error::Error>>(stored);
                }
                if Instant::now() > deadline {
                    return Err(format!("{what}: {stored} of {n} stored after 120 s").into());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    if let Err(e) = wait_for(BACKLOG, "backlog after the restart").await {
        return Err(format!("{e}\n{}\n{}", log("email-2.log"), log("classifier.log")).into());
    }
    let catch_up = restarted.elapsed();

    // New mail while the worker waits in IDLE (the poll interval is 20 s: IDLE must wake it).
    let delivered = Instant::now();
    for n in BACKLOG..BACKLOG + LATER {
        let raw = message(&run, n);
        expected.insert(id_of(&raw, source)?);
        deliver(&mut person, &run, &raw, false).await?;
    }
    wait_for(BACKLOG + LATER, "mail delivered while running").await?;
    let idle_latency = delivered.elapsed();
    assert!(
        idle_latency < Duration::from_secs(15),
        "new mail took {idle_latency:?}: IDLE did not wake the worker before the 20 s poll"
    );

    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    assert_eq!(
        stored, expected,
        "every message in the register exactly once"
    );

    // Metrics of the email worker.
    let metrics = reqwest::get(format!("http://127.0.0.1:{ops_port}/metrics"))
        .await?
        .text()
        .await?;
    let value = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("source=\"{source}\"")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    let fetched = value("signaal_email_messages_fetched_total").ok_or(metrics.clone())?;
    assert!(
        fetched >= (BACKLOG + LATER - at_kill) as f64,
        "fetched {fetched}"
    );
    assert!(value("signaal_source_last_poll_timestamp_seconds").is_some_and(|t| t > 1.7e9));

    // SIGTERM while in IDLE: a clean exit, promptly.
    for (name, child) in &mut workers.0 {
        Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()?;
        let stop = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            assert!(
                stop.elapsed() < Duration::from_secs(20),
                "`{name}` ignored SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "`{name}` exit {status}:\n{}",
            log(&format!("{name}.log"))
        );
    }

    let raw = kcat_read(&brokers, &format!("{run}.raw"))?;
    let on_topic: BTreeSet<String> = raw.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(on_topic, expected, "every message on the raw topic");
    let report = format!(
        "imap: killed with the cursor at UID {at_kill} of {BACKLOG}; {} raw messages for {} signals \
         ({} read again after the kill); the restarted worker caught up {} messages in {:.2} s \
         ({:.0}/s from Dovecot through Kafka and the classifier into PostgreSQL, debug build, \
         including start-up); new mail stored {:.2} s after delivery (IDLE)\n",
        raw.len(),
        expected.len(),
        raw.len() - expected.len(),
        BACKLOG - at_kill,
        catch_up.as_secs_f64(),
        (BACKLOG - at_kill) as f64 / catch_up.as_secs_f64(),
        idle_latency.as_secs_f64(),
    );
    eprint!("{report}");
    let _ = std::fs::write(common::repo().join("target/imap-report.txt"), report);

    remove_folder(person, &run).await?;
    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
