//! The outbox loop: each configured notifier works through its own queue of due notifications
//! (oldest bucket first, one alert's events in order), marks each sent or failed, and backs off
//! when it is down — without holding back any other notifier.

use std::time::Duration;

use chrono::Utc;
use signaal_store::{OutboxItem, Store};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{NotifyConfig, Sink};
use crate::deliver::Notifier;
use crate::NotifyError;

/// Notifications read from the outbox at once, per notifier.
const BATCH: usize = 100;

/// How long a delivery under way may still finish after shutdown was asked for: its outcome is
/// then recorded, and the receiver does not get it again after the restart.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Delivers queued notifications until `shutdown`. Each configured notifier runs its own loop:
/// `outbox_due_for`, deliver, `outbox_sent` or `outbox_failed` (next try after
/// `backoff_initial_seconds * 2^attempts`, at most `backoff_max_seconds`); when nothing is due it
/// sleeps `poll_interval_ms`. A notifier that is down (no connection, a timeout, 5xx, 408, 429)
/// pauses with the same backoff while the others go on. Errors only when the configuration is
/// invalid; a register that cannot be read is logged and tried again.
///
/// Delivery is at least once: a crash between a receiver's 2xx and `outbox_sent` sends that one
/// notification again after the restart, with the same `X-Signaal-Event-Id`.
pub async fn dispatch(
    store: &Store,
    cfg: &NotifyConfig,
    shutdown: CancellationToken,
) -> Result<(), NotifyError> {
    cfg.validate()?;
    let notifier = Notifier::new(cfg.timeout_seconds)?;
    let sinks = cfg.sinks();
    info!(
        sinks = ?sinks.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "alert notifier started"
    );
    let run = |sink: Sink| {
        let configured = sinks.contains(&sink);
        let (notifier, shutdown) = (&notifier, &shutdown);
        async move {
            if configured {
                run_sink(store, cfg, notifier, sink, shutdown).await;
            }
        }
    };
    tokio::join!(
        run(Sink::Webhook),
        run(Sink::Slack),
        run(Sink::Teams),
        run(Sink::Alertmanager),
        pending_gauge(store, cfg, &shutdown),
    );
    info!("alert notifier stopped");
    Ok(())
}

/// Sleeps `d`; false when shutdown came first.
async fn sleep_or_shutdown(d: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

async fn run_sink(
    store: &Store,
    cfg: &NotifyConfig,
    notifier: &Notifier,
    sink: Sink,
    shutdown: &CancellationToken,
) {
    let name = sink.as_str();
    let poll = Duration::from_millis(cfg.poll_interval_ms);
    // Consecutive failures that said the notifier itself is down.
    let mut down = 0u32;
    while !shutdown.is_cancelled() {
        let due = match store.outbox_due_for(name, Utc::now(), BATCH).await {
            Ok(due) => due,
            Err(error) => {
                warn!(%error, sink = name, "could not read the alert outbox");
                if !sleep_or_shutdown(poll, shutdown).await {
                    break;
                }
                continue;
            }
        };
        if due.is_empty() {
            if !sleep_or_shutdown(poll, shutdown).await {
                break;
            }
            continue;
        }
        let (mut sent, mut failed) = (0u64, 0u64);
        let mut pause = None;
        for item in &due {
            if shutdown.is_cancelled() {
                break;
            }
            let grace = async {
                shutdown.cancelled().await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            };
            let outcome = tokio::select! {
                biased;
                outcome = notifier.deliver(cfg, sink, &item.event, Utc::now()) => outcome,
                () = grace => {
                    info!(sink = name, event_id = %item.event.id, "delivery abandoned at shutdown; it stays queued");
                    break;
                }
            };
            match outcome {
                Ok(()) => {
                    mark_sent(store, item, poll, shutdown).await;
                    sent += 1;
                    down = 0;
                }
                Err(error) => {
                    failed += 1;
                    let wait = cfg.backoff(item.attempts);
                    let next = Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    warn!(
                        sink = name,
                        event_id = %item.event.id,
                        alert_id = %item.event.alert_id,
                        series = %item.event.series,
                        attempts = item.attempts + 1,
                        reason = %error,
                        retry_in_seconds = wait.as_secs_f64(),
                        "alert notification failed"
                    );
                    if let Err(error) = store
                        .outbox_failed(&item.event.id, name, &error.to_string(), next)
                        .await
                    {
                        warn!(%error, sink = name, event_id = %item.event.id, "could not record a failed notification");
                    }
                    if error.sink_down() {
                        pause = Some(cfg.backoff(down));
                        down = down.saturating_add(1);
                        break;
                    }
                }
            }
        }
        if sent > 0 {
            metrics::counter!("signaal_notify_sent_total", "sink" => name).increment(sent);
        }
        if failed > 0 {
            metrics::counter!("signaal_notify_failed_total", "sink" => name).increment(failed);
        }
        if let Some(pause) = pause {
            if !sleep_or_shutdown(pause, shutdown).await {
                break;
            }
        }
    }
}

/// Records a delivery. Tried until it is stored (or shutdown): a delivered notification left
/// unmarked would be sent again.
async fn mark_sent(store: &Store, item: &OutboxItem, poll: Duration, shutdown: &CancellationToken) {
    loop {
        match store
            .outbox_sent(&item.event.id, &item.sink, Utc::now())
            .await
        {
            Ok(_) => return,
            Err(error) => {
                warn!(%error, sink = %item.sink, event_id = %item.event.id, "could not mark a notification sent; trying again");
                if !sleep_or_shutdown(poll, shutdown).await {
                    return;
                }
            }
        }
    }
}

/// `signaal_notify_outbox_pending`: notifications not delivered yet.
async fn pending_gauge(store: &Store, cfg: &NotifyConfig, shutdown: &CancellationToken) {
    let every = Duration::from_millis(cfg.poll_interval_ms).max(Duration::from_secs(1));
    loop {
        match store.outbox_pending().await {
            Ok(n) => metrics::gauge!("signaal_notify_outbox_pending").set(n as f64),
            Err(error) => warn!(%error, "could not count the alert outbox"),
        }
        if !sleep_or_shutdown(every, shutdown).await {
            return;
        }
    }
}
