//! Spike alerts on real Kafka and PostgreSQL (issue 13): a flare-up raises one alert that
//! resolves; a webhook that is down while it happens, and an alerter killed with SIGKILL in the
//! middle of it, lose and duplicate nothing; the backtest over the register finds the same alert.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use hmac::{Hmac, Mac};
use signaal_core::{Channel, Signal};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Monday, 00:00 UTC.
const T0: i64 = 1_793_577_600;
const HOUR: i64 = 3600;

fn signal(n: usize, at: i64, author: &str, text: &str) -> Signal {
    let t = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default();
    let mut s = Signal::new(Channel::Twitter, "x", format!("outage-{n}"), t, text);
    s.author = Some(author.to_string());
    s
}

/// Eight days of a few DigiD questions a day, a flare-up of 30 posts by 25 people on day 8 at
/// 10:00, then an ordinary afternoon (which moves event time on, so the buckets close).
fn history() -> Vec<Signal> {
    let mut out = Vec::new();
    let mut n = 0;
    for h in 0..(8 * 24) {
        if h % 5 == 0 {
            n += 1;
            out.push(signal(
                n,
                T0 + h * HOUR + 600,
                &format!("quiet-{}", n % 40),
                "Inloggen met DigiD lukt niet op jullie website.",
            ));
        }
    }
    let flare = T0 + (8 * 24 + 10) * HOUR;
    for i in 0..30 {
        n += 1;
        out.push(signal(
            n,
            flare + 60 + i as i64 * 100,
            &format!("angry-{}", i % 25),
            "@gemeente DigiD inloggen lukt weer niet!! #storing",
        ));
    }
    for h in 1..=9 {
        n += 1;
        out.push(signal(
            n,
            flare + h * HOUR + 900,
            &format!("later-{h}"),
            "Inloggen met DigiD lukt niet op jullie website.",
        ));
    }
    out
}

/// What the webhook received: (event id, body) in arrival order.
type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on `port`: answers 500 to the first `fail_first` requests, then 200;
/// checks the signature of every request and records the accepted ones.
async fn serve_webhook(
    port: u16,
    secret: &'static str,
    fail_first: usize,
    received: Received,
    bad: Arc<Mutex<Vec<String>>>,
) -> Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let seen = Arc::new(Mutex::new(0usize));
    Ok(tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (received, bad, seen) = (received.clone(), bad.clone(), seen.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (head, body) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len: usize = header(&head, "content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break (head, buf[end + 4..end + 4 + len].to_vec());
                    }
                };
                let attempt = {
                    let mut s = seen.lock().unwrap_or_else(|p| p.into_inner());
                    *s += 1;
                    *s
                };
                let status = if attempt <= fail_first {
                    "500 Internal Server Error"
                } else {
                    let id = header(&head, "x-signaal-event-id").unwrap_or_default();
                    let ts = header(&head, "x-signaal-timestamp").unwrap_or_default();
                    let sig = header(&head, "x-signaal-signature-256").unwrap_or_default();
                    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
                        .expect("any key length");
                    mac.update(format!("{ts}.").as_bytes());
                    mac.update(&body);
                    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
                    if sig != want {
                        bad.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(format!("bad signature on {id}: {sig}"));
                    }
                    received
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((id, String::from_utf8_lossy(&body).to_string()));
                    "200 OK"
                };
                let _ = sock
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
            });
        }
    }))
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

async fn scalar(pool: &sqlx::PgPool, sql: &str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, log: &Path, mut f: F) -> Result
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    while !f().await? {
        if Instant::now() > deadline {
            return Err(format!(
                "timed out waiting for {what}; alerter log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flare_up_alerts_once_through_a_webhook_outage_and_a_kill() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let bin = signaal_bin()?;
    let run = unique("alerts");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    // The webhook's port, closed for now: the notifier finds nobody home.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[alerter]\nidle_seconds = 3600\nlateness_seconds = 0\n\
             [alerter.notify]\nbackoff_initial_seconds = 1\nbackoff_max_seconds = 2\n\
             [alerter.notify.webhook]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"s3cret\"\n",
            base_config(&run, &brokers, &db, 2)
        ),
    )?;
    run_setup(&bin, &config)?;
    let pool = sqlx::PgPool::connect(&db).await?;
    let store = signaal_store::Store::connect(&db).await?;

    let classifier_log = dir.path().join("classifier.log");
    let alerter_log = dir.path().join("alerter.log");
    let mut workers = Workers(vec![
        (
            "classifier".into(),
            start_worker(&config, "classifier", &classifier_log)?,
        ),
        (
            "alerter".into(),
            start_worker(&config, "alerter", &alerter_log)?,
        ),
    ]);
    let signals = history();
    let publisher = signaal_bus::Publisher::new(&bus_config(&brokers, &run))?;
    publisher.publish_raw(&signals).await?;

    // The alert fires and resolves while the webhook is down; the outbox holds its events and
    // has tried them.
    wait_until(
        "a resolved alert",
        Duration::from_secs(120),
        &alerter_log,
        || async {
            Ok(scalar(
                &pool,
                "select count(*) from alert_events where state = 'resolved'",
            )
            .await?
                >= 1)
        },
    )
    .await?;
    wait_until(
        "a failed delivery",
        Duration::from_secs(30),
        &alerter_log,
        || async {
            Ok(scalar(
                &pool,
                "select count(*) from alert_outbox where attempts > 0",
            )
            .await?
                >= 1)
        },
    )
    .await?;
    let events = store.alert_events(None).await?;
    let firing: Vec<_> = events
        .iter()
        .filter(|e| e.state == signaal_core::AlertState::Firing)
        .collect();
    assert_eq!(firing.len(), 1, "one alert: {events:#?}");
    assert_eq!(firing[0].series, "digital_service");
    assert_eq!(
        firing[0].bucket_start.timestamp(),
        T0 + (8 * 24 + 10) * HOUR,
        "it fires in the hour of the flare-up"
    );
    assert_eq!(
        events
            .iter()
            .map(|e| &e.alert_id)
            .collect::<BTreeSet<_>>()
            .len(),
        1,
        "every event belongs to that one alert: {events:#?}"
    );

    // SIGKILL the alerter while the notifications wait, start it again, then open the webhook
    // (which fails twice more before it accepts).
    let (_, mut alerter) = workers.0.remove(1);
    alerter.kill()?;
    alerter.wait()?;
    let alerter_log2 = dir.path().join("alerter-2.log");
    workers.0.push((
        "alerter".into(),
        start_worker(&config, "alerter", &alerter_log2)?,
    ));
    let received: Received = Arc::default();
    let bad: Arc<Mutex<Vec<String>>> = Arc::default();
    let server = serve_webhook(port, "s3cret", 2, received.clone(), bad.clone()).await?;
    wait_until(
        "the outbox to drain",
        Duration::from_secs(60),
        &alerter_log2,
        || async { Ok(store.outbox_pending().await? == 0) },
    )
    .await?;
    // A restart after delivery sends nothing again.
    let (_, mut alerter) = workers.0.remove(1);
    Command::new("kill")
        .arg("-TERM")
        .arg(alerter.id().to_string())
        .status()?;
    alerter.wait()?;
    let alerter_log3 = dir.path().join("alerter-3.log");
    workers.0.push((
        "alerter".into(),
        start_worker(&config, "alerter", &alerter_log3)?,
    ));
    tokio::time::sleep(Duration::from_secs(4)).await;

    let stored = store.alert_events(None).await?;
    let stored_ids: BTreeSet<String> = stored.iter().map(|e| e.id.clone()).collect();
    assert_eq!(
        stored_ids.len(),
        events.len(),
        "the restarts added no events: {stored:#?}"
    );
    let got = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut per_id: BTreeMap<&str, usize> = BTreeMap::new();
    for (id, _) in &got {
        *per_id.entry(id.as_str()).or_default() += 1;
    }
    assert!(
        per_id.values().all(|&n| n == 1),
        "each event delivered once: {per_id:?}"
    );
    assert_eq!(
        per_id
            .keys()
            .map(|s| s.to_string())
            .collect::<BTreeSet<_>>(),
        stored_ids,
        "every event delivered"
    );
    let bad = bad.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(bad.is_empty(), "{bad:?}");
    // Each event on signals.alerts once, keyed by its alert.
    let on_topic = kcat_read(&brokers, &format!("{run}.alerts"))?;
    let mut topic_ids = Vec::new();
    for (key, _, payload) in &on_topic {
        let env = signaal_core::AlertEventEnvelope::decode(payload.as_bytes())?;
        assert_eq!(key, &env.event.alert_id);
        topic_ids.push(env.event.id);
    }
    topic_ids.sort();
    assert_eq!(
        topic_ids,
        stored_ids.iter().cloned().collect::<Vec<_>>(),
        "each event on the topic once"
    );
    server.abort();
    workers.terminate()?;

    // The backtest over the register finds the same alert.
    let (from, to) = (T0.to_string(), (T0 + 10 * 24 * HOUR).to_string());
    let (lines, _) = backtest(
        Some(&config),
        &[
            "--from".as_ref(),
            from.as_ref(),
            "--to".as_ref(),
            to.as_ref(),
        ],
    )?;
    let fired: Vec<_> = lines.iter().filter(|e| e["state"] == "firing").collect();
    assert_eq!(fired.len(), 1, "{lines:#?}");
    assert_eq!(fired[0]["series"], "digital_service");
    assert_eq!(
        fired[0]["bucket_start"].as_str().map(str::to_string),
        Some(firing[0].bucket_start.to_rfc3339()),
    );

    store.close().await;
    pool.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
