//! The alerter: counts classified signals per series (a theme; a theme × channel when
//! configured) in event-time buckets, runs `signaal-detect`'s detector over each closed bucket,
//! and turns its verdicts into alert events: `pending`, `firing`, `update`, `repeat`,
//! `resolved`. Each event goes to `signals.alerts` and into the register together with the
//! notifications it needs (the outbox); `signaal-notify` delivers those.
//!
//! [`live::Live`] is the pure core. This module adds time and durability:
//! - **Watermark.** A bucket closes when every partition that is still delivering has moved
//!   `lateness_seconds` past its end (event time, per partition: a partition replaying last
//!   week does not close the buckets another is still filling). When nothing has arrived for
//!   `idle_seconds`, the wall clock stands in. A signal whose bucket has closed is in the
//!   register but not in the alert (counted as `signaal_alerter_late_total`).
//! - **Restarts.** The end of the newest closed bucket is a cursor in the register
//!   (`alerter`/`watermark`), written in the same transaction as the events. On start the
//!   alerter loads the counts before that from the register, replays the last `replay_buckets`
//!   buckets' signals through the detector (so an alert that was firing is firing again, with
//!   the same id), and counts the signals already stored in the buckets still open. Kafka then
//!   redelivers what was not acknowledged; ids make that harmless.
//! - **No loss, no doubles.** A batch is acknowledged only after its events are on Kafka and in
//!   the register; event ids are deterministic and the store keeps each once, queueing its
//!   notifications only the first time.
//!
//! One alerter process sees every partition of `signals.classified` (its own consumer group):
//! a series' count must see all of its signals. It is light (see `ARCHITECTURE.md`).
//!
//! [`stats`] is the stats worker beside it: each series' numbers per hour and day, read from the
//! register, on the compacted `signals.stats`.

pub mod live;
pub mod stats;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use signaal_bus::{BusConfig, Consumer, DeadLetter, Delivery, Publisher};
use signaal_core::{AlertEvent, ClassifiedEnvelope};
use signaal_detect::lifecycle::Lifecycle;
use signaal_detect::Settings;
use signaal_notify::NotifyConfig;
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::live::{Live, Observed, Seen};

/// The register cursor holding the end of the newest closed bucket (unix seconds).
const CURSOR: (&str, &str) = ("alerter", "watermark");
/// Messages per batch.
const BATCH: usize = 500;

/// `[alerter]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Also watch each theme per channel (`theme/channel` series), next to the theme itself.
    pub by_channel: bool,
    /// How long after a bucket's end signals for it may still arrive (event time).
    pub lateness_seconds: i64,
    /// With nothing arriving for this long, the wall clock closes buckets.
    pub idle_seconds: u64,
    /// On start, the detector runs again over this many buckets before the newest closed one,
    /// so that the alerts open before a restart are open after it.
    pub replay_buckets: i64,
    /// The detector (`[alerter.detect]`).
    pub detect: Settings,
    /// An alert's life (`[alerter.lifecycle]`).
    pub lifecycle: Lifecycle,
    /// Notifiers (`[alerter.notify]`); none by default.
    pub notify: NotifyConfig,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            by_channel: false,
            lateness_seconds: 300,
            idle_seconds: 60,
            replay_buckets: 168,
            detect: Settings::default(),
            lifecycle: Lifecycle::default(),
            notify: NotifyConfig::default(),
        }
    }
}

impl AlertConfig {
    /// Every problem, one per line, named by its key.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.lateness_seconds < 0 {
            problems.push("`alerter.lateness_seconds` must not be negative".to_string());
        }
        if self.idle_seconds == 0 {
            problems.push("`alerter.idle_seconds` must be at least 1".to_string());
        }
        if self.replay_buckets < 0 {
            problems.push("`alerter.replay_buckets` must not be negative".to_string());
        }
        if let Err(e) = self.detect.validate() {
            problems.push(format!("`alerter.detect`: {e}"));
        }
        let l = &self.lifecycle;
        if l.for_buckets == 0 {
            problems.push("`alerter.lifecycle.for_buckets` must be at least 1".to_string());
        }
        if l.keep_firing_for == 0 {
            problems.push("`alerter.lifecycle.keep_firing_for` must be at least 1".to_string());
        }
        if l.repeat_interval == 0 {
            problems.push("`alerter.lifecycle.repeat_interval` must be at least 1".to_string());
        }
        if !(0.0..=1.0).contains(&l.recovery) {
            problems.push("`alerter.lifecycle.recovery` must be between 0 and 1".to_string());
        }
        if let Err(signaal_notify::ConfigError::Invalid { key, reason }) = self.notify.validate() {
            problems.push(format!("`alerter.{key}` {reason}"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AlerterError {
    #[error(transparent)]
    Bus(#[from] signaal_bus::BusError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
    #[error(transparent)]
    Notify(#[from] signaal_notify::NotifyError),
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// The event-time watermark over partitions.
struct Clock {
    lateness: i64,
    idle: Duration,
    started: Instant,
    /// Per partition: the newest event time seen and when a message last came.
    partitions: HashMap<(String, i32), (i64, Instant)>,
}

impl Clock {
    fn new(lateness: i64, idle: Duration) -> Clock {
        Clock {
            lateness,
            idle,
            started: Instant::now(),
            partitions: HashMap::new(),
        }
    }

    fn saw(&mut self, d: &Delivery, at: i64, now: Instant) {
        let e = self
            .partitions
            .entry((d.topic.clone(), d.partition))
            .or_insert((at, now));
        e.0 = e.0.max(at);
        e.1 = now;
    }

    /// The time (unix seconds) up to which buckets may close.
    fn watermark(&self, now: Instant, wall: i64) -> i64 {
        let busy = self
            .partitions
            .values()
            .filter(|(_, seen)| now.duration_since(*seen) < self.idle)
            .map(|(at, _)| *at)
            .min();
        match busy {
            Some(at) => at - self.lateness,
            None if now.duration_since(self.started) >= self.idle => wall - self.lateness,
            // Just started: give the partitions time to speak.
            None => i64::MIN,
        }
    }
}

fn at(settings: &Settings, bucket: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(bucket.saturating_mul(settings.bucket_seconds), 0)
        .single()
        .unwrap_or_default()
}

/// Later than any signal (and within every backend's range).
fn far_future() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Rebuilds the alerter's state from the register, with `closed` the newest closed bucket:
/// counts before the replay window loaded, the replay window's signals run through the
/// detector (its events were stored before; they are dropped here), the open buckets' stored
/// signals counted.
pub async fn rebuild(store: &Store, cfg: &AlertConfig, closed: i64) -> Result<Live, AlerterError> {
    let settings = &cfg.detect;
    let bucket_seconds = u32::try_from(settings.bucket_seconds).unwrap_or(u32::MAX);
    let history = settings.history_buckets() as i64;
    let replay_from = closed + 1 - cfg.replay_buckets;
    let load_from = replay_from - history;
    let mut counts = store
        .theme_bucket_counts(
            at(settings, load_from),
            at(settings, replay_from),
            bucket_seconds,
            false,
        )
        .await?;
    if cfg.by_channel {
        counts.extend(
            store
                .theme_bucket_counts(
                    at(settings, load_from),
                    at(settings, replay_from),
                    bucket_seconds,
                    true,
                )
                .await?,
        );
    }
    // History starts where the register does: weeks of zeros before the first signal would
    // make every early signal a spike.
    let first = match counts
        .iter()
        .map(|c| c.bucket.div_euclid(settings.bucket_seconds))
        .min()
    {
        Some(first) => Some(first),
        None => store
            .first_theme_signal(at(settings, replay_from), at(settings, closed + 1))
            .await?
            .map(|t| settings.bucket_of(t.timestamp())),
    };
    let origin = first.unwrap_or(closed + 1).max(load_from);
    // The replay starts where history does when that is inside the replay window.
    let mut live = Live::new(
        settings.clone(),
        cfg.lifecycle.clone(),
        cfg.by_channel,
        origin,
        replay_from.max(origin) - 1,
    );
    for c in &counts {
        let bucket = c.bucket.div_euclid(settings.bucket_seconds);
        live.load_count(&c.theme, c.channel.as_deref(), bucket, c.count);
    }
    let mut replayed = 0u64;
    let now = Utc::now();
    let seen = store
        .for_each_theme_signal(at(settings, replay_from), far_future(), |s| {
            let bucket = settings.bucket_of(s.occurred_at.timestamp());
            if bucket <= closed && bucket > live.closed() + 1 {
                replayed += live.close_until(bucket - 1, now).len() as u64;
            }
            if bucket > closed && live.closed() < closed {
                replayed += live.close_until(closed, now).len() as u64;
            }
            live.observe(&Seen {
                id: &s.id,
                at: s.occurred_at.timestamp(),
                channel: &s.channel,
                author: s.author.as_deref(),
                subject: s.subject.as_deref(),
                text: &s.text,
                themes: s.themes.iter().map(String::as_str).collect(),
            });
        })
        .await?;
    replayed += live.close_until(closed, now).len() as u64;
    tracing::info!(
        series = live.series_count(),
        open_alerts = live.open_alerts(),
        signals = seen,
        replayed_events = replayed,
        closed = %at(settings, closed + 1),
        "alerter state rebuilt from the register"
    );
    Ok(live)
}

/// Stores and publishes alert events and the new watermark; retried until it works or
/// `shutdown`. Returns false on shutdown (nothing acknowledged then).
async fn persist(
    events: &[AlertEvent],
    watermark: i64,
    cfg: &AlertConfig,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) -> bool {
    let queued: Vec<(AlertEvent, Vec<String>)> = events
        .iter()
        .map(|e| (e.clone(), cfg.notify.sinks_for(e)))
        .collect();
    let value = watermark.to_string();
    let mut backoff = Duration::from_millis(200);
    loop {
        // Kafka first: a crash between the two publishes the same ids again, and the store,
        // which decides what is notified, keeps each once.
        let published = if events.is_empty() {
            Ok(())
        } else {
            publisher.publish_alert_events(events).await
        };
        let result = match published {
            Ok(()) => store
                .save_alert_events(&queued, Some((CURSOR.0, CURSOR.1, &value)))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(new) => {
                for e in events {
                    metrics::counter!("signaal_alert_events_total", "state" => e.state.as_str())
                        .increment(1);
                    tracing::info!(series = %e.series, state = e.state.as_str(), bucket = %e.bucket_start, observed = e.observed, expected = e.expected, method = %e.method, "alert event");
                }
                if new < events.len() as u64 {
                    tracing::debug!(
                        replayed = events.len() as u64 - new,
                        "alert events already stored"
                    );
                }
                return true;
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?backoff, "cannot store alert events; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return false,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = signaal_bus::next_backoff(backoff);
            }
        }
    }
}

/// Runs the alerter and its notifiers until `shutdown`.
pub async fn run(
    bus: &BusConfig,
    cfg: AlertConfig,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), AlerterError> {
    cfg.validate().map_err(AlerterError::Config)?;
    let consumer = Consumer::new(
        bus,
        &bus.group("alerter"),
        &[bus.topics.classified.as_str()],
    )?;
    let notify = signaal_notify::dispatch(&store, &cfg.notify, shutdown.clone());
    let alert = watch(&consumer, &cfg, &publisher, &store, &shutdown);
    let (alerted, notified) = tokio::join!(
        async {
            let r = alert.await;
            if r.is_err() {
                shutdown.cancel();
            }
            r
        },
        notify
    );
    publisher.flush(Duration::from_secs(10));
    if let Err(error) = consumer.commit() {
        tracing::warn!(%error, "cannot commit the alerter's offsets on shutdown");
    }
    alerted?;
    notified?;
    tracing::info!("alerter stopped");
    Ok(())
}

async fn watch(
    consumer: &Consumer,
    cfg: &AlertConfig,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(), AlerterError> {
    let settings = &cfg.detect;
    let mut live = match store.get_cursor(CURSOR.0, CURSOR.1).await? {
        Some(v) => {
            let end: i64 = v.parse().map_err(|_| {
                AlerterError::Config(format!(
                    "the register's alerter watermark {v:?} is not a number of seconds"
                ))
            })?;
            Some(rebuild(store, cfg, settings.bucket_of(end) - 1).await?)
        }
        None => None,
    };
    tracing::info!(
        topic = %consumer.group(),
        bucket_seconds = settings.bucket_seconds,
        alpha = settings.alpha,
        by_channel = cfg.by_channel,
        "alerter started"
    );
    let mut clock = Clock::new(cfg.lateness_seconds, Duration::from_secs(cfg.idle_seconds));
    while !shutdown.is_cancelled() {
        // Wake at least once a second, so that the wall clock can close buckets.
        let tick = shutdown.child_token();
        let timer = {
            let tick = tick.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                tick.cancel();
            })
        };
        let batch = consumer
            .next_batch(BATCH, Duration::from_millis(100), &tick)
            .await;
        timer.abort();
        let batch = batch?;
        let wall = Utc::now();
        let now = Instant::now();
        let mut envelopes = Vec::with_capacity(batch.len());
        let mut undecodable = Vec::new();
        for d in &batch {
            match ClassifiedEnvelope::decode(&d.payload) {
                Ok(env) => {
                    // A clock running ahead must not close buckets early.
                    clock.saw(
                        d,
                        env.signal.occurred_at.timestamp().min(wall.timestamp()),
                        now,
                    );
                    envelopes.push(env);
                }
                Err(error) => undecodable.push(DeadLetter::from_delivery(
                    d.clone(),
                    error.to_string(),
                    "alerter",
                )),
            }
        }
        if !undecodable.is_empty() {
            publisher.dead_letters(undecodable).await?;
        }
        if live.is_none() {
            // First start: history begins with the first signal seen, or as far before the
            // newest as signals may come late, whichever is earlier (another partition's first
            // batch may still hold older ones).
            let times = envelopes.iter().map(|e| e.signal.occurred_at.timestamp());
            if let (Some(first), Some(newest)) = (times.clone().min(), times.max()) {
                let from = first.min(newest.saturating_sub(cfg.lateness_seconds));
                let closed = settings.bucket_of(from) - 1;
                live = Some(rebuild(store, cfg, closed).await?);
            }
        }
        let Some(state) = live.as_mut() else {
            consumer.ack(&batch);
            continue;
        };
        let mut late = 0u64;
        for env in &envelopes {
            if state.observe(&Seen::from_envelope(env)) == Observed::Late {
                late += 1;
            }
        }
        if late > 0 {
            metrics::counter!("signaal_alerter_late_total").increment(late);
            tracing::debug!(late, "signals for buckets already closed");
        }
        let watermark = clock.watermark(now, wall.timestamp());
        let target = if watermark == i64::MIN {
            state.closed()
        } else {
            settings.bucket_of(watermark) - 1
        };
        if target > state.closed() {
            let events = state.close_until(target, wall);
            let end = at(settings, state.closed() + 1).timestamp();
            if !persist(&events, end, cfg, publisher, store, shutdown).await {
                break;
            }
            metrics::gauge!("signaal_alerter_watermark_seconds").set(end as f64);
        }
        metrics::gauge!("signaal_alerter_series").set(state.series_count() as f64);
        metrics::gauge!("signaal_alerter_open_alerts").set(state.open_alerts() as f64);
        consumer.ack(&batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_nonsense_is_named() {
        assert_eq!(AlertConfig::default().validate(), Ok(()));
        let bad = AlertConfig {
            lateness_seconds: -1,
            idle_seconds: 0,
            lifecycle: Lifecycle {
                recovery: 2.0,
                ..Lifecycle::default()
            },
            ..AlertConfig::default()
        };
        let Err(e) = bad.validate() else {
            panic!("invalid config accepted");
        };
        for key in ["lateness_seconds", "idle_seconds", "lifecycle.recovery"] {
            assert!(e.contains(key), "{key} not named in {e}");
        }
    }

    fn delivery(partition: i32) -> Delivery {
        Delivery {
            topic: "t".into(),
            partition,
            offset: 0,
            key: None,
            payload: vec![],
            headers: vec![],
        }
    }

    #[test]
    fn the_watermark_waits_for_the_slowest_busy_partition() {
        let t0 = Instant::now();
        let mut c = Clock::new(300, Duration::from_secs(60));
        assert_eq!(c.watermark(t0, 10_000), i64::MIN, "nothing seen yet");
        c.saw(&delivery(0), 5_000, t0);
        c.saw(&delivery(1), 9_000, t0);
        assert_eq!(c.watermark(t0, 10_000), 4_700, "the slower partition");
        c.saw(&delivery(0), 4_000, t0);
        assert_eq!(c.watermark(t0, 10_000), 4_700, "never back in time");
        let later = t0 + Duration::from_secs(61);
        c.saw(&delivery(1), 9_500, later);
        assert_eq!(
            c.watermark(later, 10_000),
            9_200,
            "an idle partition holds nothing"
        );
        let idle = t0 + Duration::from_secs(200);
        assert_eq!(c.watermark(idle, 10_000), 9_700, "all idle: the wall clock");
    }
}
