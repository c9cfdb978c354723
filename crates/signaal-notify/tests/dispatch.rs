//! The outbox loop against local receivers, on SQLite and PostgreSQL: an outage (port closed,
//! then 500s) loses and duplicates nothing and keeps each alert's order; a restart sends nothing
//! twice; a notifier that is down holds back no other; each notifier gets the states it wants.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{alert_event, eventually, life, on_both, BoxError, Receiver};
use signaal_core::{AlertEvent, AlertEventEnvelope, AlertState};
use signaal_notify::NotifyConfig;
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "k3y-0f-s0me-l3ngth";

/// Fast retries: 50 ms doubling to 200 ms, polled every 20 ms.
fn config(extra: &str) -> Result<NotifyConfig, BoxError> {
    let cfg: NotifyConfig = toml::from_str(&format!(
        "timeout_seconds = 2\nbackoff_initial_seconds = 0.05\nbackoff_max_seconds = 0.2\n\
         poll_interval_ms = 20\n{extra}"
    ))?;
    cfg.validate()?;
    Ok(cfg)
}

/// A dispatcher running in the background until stopped.
struct Running {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), signaal_notify::NotifyError>>,
}

fn start(store: &Store, cfg: &NotifyConfig) -> Running {
    let shutdown = CancellationToken::new();
    let (store, cfg, token) = (store.clone(), cfg.clone(), shutdown.clone());
    let task = tokio::spawn(async move { signaal_notify::dispatch(&store, &cfg, token).await });
    Running { shutdown, task }
}

impl Running {
    /// Stops it and checks that it stopped promptly and cleanly.
    async fn stop(self) -> Result<(), BoxError> {
        self.shutdown.cancel();
        let started = std::time::Instant::now();
        tokio::time::timeout(Duration::from_secs(5), self.task).await???;
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "shutdown took {:?}",
            started.elapsed()
        );
        Ok(())
    }
}

async fn queue(store: &Store, cfg: &NotifyConfig, events: &[AlertEvent]) -> Result<u64, BoxError> {
    let batch: Vec<(AlertEvent, Vec<String>)> = events
        .iter()
        .map(|e| (e.clone(), cfg.sinks_for(e)))
        .collect();
    Ok(store.save_alert_events(&batch, None).await?)
}

/// Event ids as the receiver accepted them, from the envelopes (checking each decodes).
fn accepted_ids(rx: &Receiver) -> Result<Vec<String>, BoxError> {
    rx.accepted()
        .iter()
        .map(|r| {
            let env = AlertEventEnvelope::decode(&r.body)?;
            assert_eq!(r.header("x-signaal-event-id"), Some(env.event.id.as_str()));
            Ok(env.event.id)
        })
        .collect()
}

async fn outage(store: Store) -> Result<(), BoxError> {
    let backend = store.backend();
    // A port that is closed: bound once to learn a free one, then released.
    let addr = Receiver::start().await?.addr;
    let cfg = config(&format!(
        "[webhook]\nurl = \"http://{addr}/hook\"\nsecret = \"{SECRET}\"\n"
    ))?;
    let a = life("digital_service", 10);
    let b = life("payment/email", 11);
    let c = alert_event("reachability", 12, AlertState::Pending, 12);
    let mut events: Vec<AlertEvent> = a.iter().chain(&b).cloned().collect();
    events.push(c.clone());
    // Stored in an order of their own: delivery order comes from the buckets.
    events.reverse();
    assert_eq!(queue(&store, &cfg, &events).await?, 9, "{backend}");

    // Down: connections refused. The oldest alert's first event is the probe: it fails again
    // and again (the notifier pauses as a whole meanwhile), and nothing behind it is tried.
    let first = start(&store, &cfg);
    eventually(Duration::from_secs(10), "three failed attempts", || async {
        let heads = store
            .outbox_due(chrono::Utc::now() + chrono::Duration::days(1), 100)
            .await?;
        Ok(heads.len() == 3 && heads.iter().any(|h| h.attempts >= 3))
    })
    .await?;
    // A restart while it is down.
    first.stop().await?;
    let second = start(&store, &cfg);
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Up, but answering 500 four times first; the receiver checks every signature.
    let rx = Receiver::start_on(addr).await?;
    rx.fail_first(4);
    rx.check_signatures(SECRET.as_bytes());
    eventually(
        Duration::from_secs(20),
        "every notification delivered",
        || async { Ok(store.outbox_pending().await? == 0) },
    )
    .await?;
    second.stop().await?;

    let all = rx.received();
    assert_eq!(
        all.iter().filter(|r| r.status == 500).count(),
        4,
        "{backend}: the 500s were retried"
    );
    assert!(
        all.iter().all(|r| r.status != 401),
        "{backend}: every signature verified"
    );
    let ids = accepted_ids(&rx)?;
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 9, "{backend}: every event once: {ids:?}");
    assert_eq!(unique.len(), 9, "{backend}: none twice");
    for life in [&a, &b] {
        let order: Vec<&String> = ids
            .iter()
            .filter(|id| life.iter().any(|e| &&e.id == id))
            .collect();
        let want: Vec<&String> = life.iter().map(|e| &e.id).collect();
        assert_eq!(order, want, "{backend}: one alert's events arrive in order");
    }

    // A restart after everything was delivered sends nothing again.
    let third = start(&store, &cfg);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        accepted_ids(&rx)?.len(),
        9,
        "{backend}: nothing sent twice after a restart"
    );
    // A replay of old events with one new one: only the new one goes out, once.
    let fresh = alert_event("reachability", 12, AlertState::Firing, 13);
    let mut replay = events.clone();
    replay.push(fresh.clone());
    assert_eq!(queue(&store, &cfg, &replay).await?, 1, "{backend}");
    eventually(
        Duration::from_secs(5),
        "the new event delivered",
        || async { Ok(store.outbox_pending().await? == 0) },
    )
    .await?;
    tokio::time::sleep(Duration::from_millis(100)).await;
    third.stop().await?;
    let ids = accepted_ids(&rx)?;
    assert_eq!(ids.len(), 10, "{backend}");
    assert_eq!(ids.last(), Some(&fresh.id), "{backend}");
    Ok(())
}

#[tokio::test]
async fn an_outage_loses_and_duplicates_nothing() -> Result<(), BoxError> {
    on_both("outage", outage).await
}

async fn independent(store: Store) -> Result<(), BoxError> {
    let backend = store.backend();
    let closed = Receiver::start().await?.addr;
    let failing = Receiver::start().await?;
    failing.always(503);
    let slack = Receiver::start().await?;
    let cfg = config(&format!(
        "[webhook]\nurl = \"http://{closed}/hook\"\nsecret = \"{SECRET}\"\n\
         [teams]\nurl = \"{}\"\n[slack]\nurl = \"{}\"\n",
        failing.url("/teams"),
        slack.url("/slack")
    ))?;
    // Many alerts, so a down notifier has plenty queued.
    let mut events = Vec::new();
    for i in 0..20 {
        events.extend(life(&format!("theme_{i:02}"), 10 + i));
    }
    queue(&store, &cfg, &events).await?;
    let running = start(&store, &cfg);
    // Slack wants firing, repeat and resolved: 3 of each alert's 4 events.
    eventually(
        Duration::from_secs(10),
        "slack got all of its notifications",
        || async { Ok(slack.accepted().len() == 60) },
    )
    .await?;
    running.stop().await?;
    assert!(
        failing.received().iter().all(|r| r.status == 503) && !failing.received().is_empty(),
        "{backend}: teams was tried and kept failing"
    );
    // Teams backs off as a whole: far fewer tries than queued notifications per round.
    assert!(
        failing.received().len() < 60,
        "{backend}: a down notifier is not hammered ({} tries)",
        failing.received().len()
    );
    let pending = store.outbox_pending().await?;
    assert_eq!(
        pending,
        80 + 60,
        "{backend}: webhook (all 80) and teams (60) still queued"
    );
    let slack_ids: Vec<String> = slack
        .accepted()
        .iter()
        .map(|r| {
            r.json()
                .map(|v| v["text"].as_str().unwrap_or_default().to_string())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(
        slack_ids.iter().filter(|t| t.contains("[UPDATE]")).count(),
        0,
        "{backend}: no updates for people"
    );
    Ok(())
}

#[tokio::test]
async fn a_notifier_that_is_down_holds_back_no_other() -> Result<(), BoxError> {
    on_both("independent", independent).await
}

async fn routing(store: Store) -> Result<(), BoxError> {
    let backend = store.backend();
    let rx = Receiver::start().await?;
    let cfg = config(&format!(
        "link = \"https://signaal.example/alerts/{{alert_id}}\"\n\
         [webhook]\nurl = \"{}\"\nsecret = \"{SECRET}\"\n\
         [slack]\nurl = \"{}\"\n[teams]\nurl = \"{}\"\n[alertmanager]\nurl = \"{}\"\n",
        rx.url("/hook"),
        rx.url("/slack"),
        rx.url("/teams"),
        rx.url("/am")
    ))?;
    let mut events = vec![alert_event("payment", 9, AlertState::Pending, 9)];
    events.extend(life("payment", 10));
    queue(&store, &cfg, &events).await?;
    let running = start(&store, &cfg);
    eventually(Duration::from_secs(10), "all delivered", || async {
        Ok(store.outbox_pending().await? == 0)
    })
    .await?;
    running.stop().await?;
    let mut by_path: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in rx.accepted() {
        let v = r.json()?;
        let state = match r.path.as_str() {
            "/hook" => v["event"]["state"].as_str().unwrap_or_default().to_string(),
            "/slack" => v["text"]
                .as_str()
                .and_then(|t| t.split(['[', ']']).nth(1))
                .unwrap_or_default()
                .to_ascii_lowercase(),
            "/teams" => v["summary"]
                .as_str()
                .and_then(|s| s.rsplit(' ').next())
                .unwrap_or_default()
                .to_string(),
            "/am/api/v2/alerts" => {
                assert_eq!(
                    v[0]["generatorURL"],
                    format!("https://signaal.example/alerts/{}", events[1].alert_id)
                );
                if v[0]["endsAt"] == "2027-01-15T22:00:00Z" {
                    "resolved"
                } else {
                    "open"
                }
                .to_string()
            }
            other => format!("unexpected path {other}"),
        };
        by_path.entry(r.path.clone()).or_default().push(state);
    }
    let want: BTreeMap<String, Vec<String>> = [
        (
            "/hook",
            vec!["pending", "firing", "update", "repeat", "resolved"],
        ),
        ("/slack", vec!["firing", "repeat", "resolved"]),
        ("/teams", vec!["firing", "repeat", "resolved"]),
        (
            "/am/api/v2/alerts",
            vec!["open", "open", "open", "resolved"],
        ),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(
        by_path, want,
        "{backend}: each notifier its states, in order"
    );
    Ok(())
}

#[tokio::test]
async fn each_notifier_gets_the_states_it_wants() -> Result<(), BoxError> {
    on_both("routing", routing).await
}

async fn backoff(store: Store) -> Result<(), BoxError> {
    let backend = store.backend();
    let rx = Receiver::start().await?;
    rx.always(500);
    let cfg: NotifyConfig = toml::from_str(&format!(
        "backoff_initial_seconds = 30\nbackoff_max_seconds = 600\npoll_interval_ms = 20\n\
         [webhook]\nurl = \"{}\"\nsecret = \"{SECRET}\"\n",
        rx.url("/hook")
    ))?;
    let event = alert_event("payment", 10, AlertState::Firing, 10);
    queue(&store, &cfg, std::slice::from_ref(&event)).await?;
    let before = chrono::Utc::now();
    let running = start(&store, &cfg);
    eventually(Duration::from_secs(5), "one failed attempt", || async {
        Ok(!rx.received().is_empty())
    })
    .await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    running.stop().await?;
    let after = chrono::Utc::now();
    assert_eq!(
        rx.received().len(),
        1,
        "{backend}: no second try within the backoff"
    );
    assert!(
        store.outbox_due(after, 10).await?.is_empty(),
        "{backend}: not due again at once"
    );
    assert!(
        store
            .outbox_due(before + chrono::Duration::seconds(29), 10)
            .await?
            .is_empty(),
        "{backend}: waits the initial backoff"
    );
    let due = store
        .outbox_due(after + chrono::Duration::seconds(31), 10)
        .await?;
    assert_eq!(due.len(), 1, "{backend}: due after 30 s");
    assert_eq!(due[0].attempts, 1, "{backend}");
    Ok(())
}

#[tokio::test]
async fn a_failed_notification_waits_its_backoff() -> Result<(), BoxError> {
    on_both("backoff", backoff).await
}
