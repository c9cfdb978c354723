//! The alerter: counts classified signals per theme in fixed event-time windows and raises an
//! alert when a window's count reaches the threshold.
//!
//! [`Windows`] is the pure core: it counts *distinct* signal ids, so a replayed message never
//! counts twice, and it raises each (theme, window) alert once. The worker seeds a window from
//! the store the first time it sees it, so a restart does not forget what was already counted.
//! (Honest statistics for small hourly counts come in a later issue.)

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use signaal_bus::{BusConfig, Consumer, DeadLetter, Delivery, Publisher};
use signaal_core::{Alert, ClassifiedEnvelope};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// Window length in seconds (event time, aligned to the epoch).
    pub window_seconds: i64,
    /// Signals on one theme within one window that raise an alert.
    pub threshold: u64,
    /// Windows older than this many window lengths behind the newest are forgotten.
    pub keep_windows: i64,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            window_seconds: 3600,
            threshold: 10,
            keep_windows: 48,
        }
    }
}

#[derive(Default)]
struct WindowState {
    ids: HashSet<String>,
    alerted: bool,
}

/// Per (theme, window start) distinct-id counts.
pub struct Windows {
    cfg: AlertConfig,
    windows: BTreeMap<(i64, String), WindowState>,
    newest: i64,
}

impl Windows {
    pub fn new(cfg: AlertConfig) -> Windows {
        Windows {
            cfg,
            windows: BTreeMap::new(),
            newest: i64::MIN,
        }
    }

    pub fn window_of(&self, t: DateTime<Utc>) -> i64 {
        let w = self.cfg.window_seconds.max(1);
        t.timestamp().div_euclid(w) * w
    }

    /// Whether this (theme, window) has been seen since start (if not, seed it first).
    pub fn knows(&self, theme: &str, start: i64) -> bool {
        self.windows.contains_key(&(start, theme.to_string()))
    }

    /// Adds ids counted elsewhere (the store) and whether the alert was already raised.
    pub fn seed(
        &mut self,
        theme: &str,
        start: i64,
        ids: impl IntoIterator<Item = String>,
        alerted: bool,
    ) {
        let w = self.windows.entry((start, theme.to_string())).or_default();
        w.ids.extend(ids);
        w.alerted |= alerted;
    }

    /// Counts one classified signal; returns the alerts it raises. A retweet
    /// (`meta.retweet_of`) is not a new customer's words and counts for nothing.
    pub fn observe(&mut self, env: &ClassifiedEnvelope) -> Vec<Alert> {
        if is_repost(env) {
            return Vec::new();
        }
        let start = self.window_of(env.signal.occurred_at);
        self.newest = self.newest.max(start);
        let mut out = Vec::new();
        for tag in &env.classification.themes {
            let w = self.windows.entry((start, tag.id.clone())).or_default();
            w.ids.insert(env.signal.id.clone());
            let count = w.ids.len() as u64;
            if !w.alerted && count >= self.cfg.threshold {
                w.alerted = true;
                let window_start = Utc.timestamp_opt(start, 0).single().unwrap_or_default();
                let mut sample: Vec<String> = w.ids.iter().cloned().collect();
                sample.sort();
                sample.truncate(10);
                out.push(Alert {
                    id: Alert::id_for(&tag.id, window_start),
                    theme: tag.id.clone(),
                    window_start,
                    window_end: window_start + chrono::Duration::seconds(self.cfg.window_seconds),
                    count,
                    threshold: self.cfg.threshold,
                    raised_at: Utc::now(),
                    sample_signal_ids: sample,
                });
            }
        }
        let horizon = self.newest - self.cfg.keep_windows * self.cfg.window_seconds;
        self.windows.retain(|(s, _), _| *s >= horizon);
        out
    }
}

/// A repost of someone else's words (an X retweet): its reach belongs to the original.
pub fn is_repost(env: &ClassifiedEnvelope) -> bool {
    env.signal.meta.contains_key("retweet_of")
}

#[derive(Debug, thiserror::Error)]
pub enum AlerterError {
    #[error(transparent)]
    Bus(#[from] signaal_bus::BusError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
}

pub async fn handle_batch(
    batch: Vec<Delivery>,
    windows: &mut Windows,
    publisher: &Publisher,
    store: &Store,
) -> Result<usize, AlerterError> {
    let mut alerts = Vec::new();
    let mut undecodable = Vec::new();
    for d in batch {
        let env = match ClassifiedEnvelope::decode(&d.payload) {
            Ok(env) => env,
            Err(error) => {
                undecodable.push(DeadLetter::from_delivery(d, error.to_string(), "alerter"));
                continue;
            }
        };
        let start = windows.window_of(env.signal.occurred_at);
        let themes = if is_repost(&env) {
            &[][..]
        } else {
            &env.classification.themes[..]
        };
        for tag in themes {
            if !windows.knows(&tag.id, start) {
                let from = Utc.timestamp_opt(start, 0).single().unwrap_or_default();
                let to = from + chrono::Duration::seconds(windows.cfg.window_seconds);
                let ids = store.theme_signal_ids(&tag.id, from, to).await?;
                let alerted = store.alert_exists(&Alert::id_for(&tag.id, from)).await?;
                windows.seed(&tag.id, start, ids, alerted);
            }
        }
        alerts.extend(windows.observe(&env));
    }
    publisher.dead_letters(undecodable).await?;
    if !alerts.is_empty() {
        // Publish first: a crash before the store write republishes the same alert id.
        publisher.publish_alerts(&alerts).await?;
        for a in &alerts {
            store.save_alert(a).await?;
            metrics::counter!("signaal_alerts_total", "theme" => a.theme.clone()).increment(1);
            tracing::info!(theme = %a.theme, count = a.count, window_start = %a.window_start, "alert raised");
        }
    }
    Ok(alerts.len())
}

pub async fn run(
    bus: &BusConfig,
    cfg: AlertConfig,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), AlerterError> {
    let consumer = Consumer::new(
        bus,
        &bus.group("alerter"),
        &[bus.topics.classified.as_str()],
    )?;
    tracing::info!(topic = %bus.topics.classified, threshold = cfg.threshold, window_seconds = cfg.window_seconds, "alerter started");
    // Batches run one at a time; the async mutex only satisfies the borrow checker.
    let windows = std::sync::Arc::new(tokio::sync::Mutex::new(Windows::new(cfg)));
    consumer
        .run(500, Duration::from_millis(100), &shutdown, |batch| {
            let (w, p, s) = (windows.clone(), &publisher, &store);
            async move {
                let mut w = w.lock().await;
                handle_batch(batch, &mut w, p, s).await.map(|_| ())
            }
        })
        .await?;
    publisher.flush(Duration::from_secs(10));
    tracing::info!("alerter stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaal_core::{Cause, Channel, Classification, Kind, Signal, ThemeTag};

    fn env(id: &str, minute: i64, theme: &str) -> ClassifiedEnvelope {
        let t = Utc
            .timestamp_opt(1_800_000_000 + minute * 60, 0)
            .single()
            .unwrap_or_default();
        let s = Signal::new(Channel::Twitter, "x", id, t, "DigiD werkt niet");
        let c = Classification {
            themes: vec![ThemeTag {
                id: theme.into(),
                score: 0.5,
                evidence: vec![],
            }],
            cause: Cause::System,
            kind: Kind::Complaint,
            lang: "nl".into(),
            sentiment: -0.5,
            escalation: vec![],
        };
        ClassifiedEnvelope::new(s, c, "test")
    }

    #[test]
    fn raises_once_per_theme_window_and_ignores_replays() {
        let mut w = Windows::new(AlertConfig {
            window_seconds: 3600,
            threshold: 3,
            keep_windows: 4,
        });
        // 1_800_000_000 is 20 minutes into an hour window.
        assert!(w.observe(&env("a", 0, "digital_service")).is_empty());
        assert!(
            w.observe(&env("a", 1, "digital_service")).is_empty(),
            "replay of a must not count"
        );
        assert!(w.observe(&env("b", 2, "digital_service")).is_empty());
        assert!(w.observe(&env("z", 2, "payment")).is_empty());
        let alerts = w.observe(&env("c", 3, "digital_service"));
        assert_eq!(alerts.len(), 1);
        assert_eq!(alerts[0].count, 3);
        assert_eq!(alerts[0].theme, "digital_service");
        assert!(
            w.observe(&env("d", 4, "digital_service")).is_empty(),
            "one alert per window"
        );
        // The next hour is a new window.
        for (i, id) in ["e", "f"].iter().enumerate() {
            assert!(w
                .observe(&env(id, 60 + i as i64, "digital_service"))
                .is_empty());
        }
        assert_eq!(w.observe(&env("g", 62, "digital_service")).len(), 1);
    }

    #[test]
    fn retweets_do_not_count() {
        let mut w = Windows::new(AlertConfig {
            window_seconds: 3600,
            threshold: 2,
            keep_windows: 4,
        });
        assert!(w.observe(&env("a", 0, "digital_service")).is_empty());
        let mut rt = env("rt-of-a", 1, "digital_service");
        rt.signal
            .meta
            .insert("retweet_of".into(), serde_json::Value::from("a"));
        assert!(
            w.observe(&rt).is_empty(),
            "a retweet is not a second signal"
        );
        assert_eq!(w.observe(&env("b", 2, "digital_service")).len(), 1);
    }

    #[test]
    fn seeded_windows_continue_the_count() {
        let mut w = Windows::new(AlertConfig {
            window_seconds: 3600,
            threshold: 3,
            keep_windows: 4,
        });
        let start = w.window_of(env("a", 0, "t").signal.occurred_at);
        w.seed("t", start, ["x".to_string(), "y".to_string()], false);
        assert_eq!(w.observe(&env("a", 0, "t")).len(), 1);
        let mut done = Windows::new(AlertConfig {
            window_seconds: 3600,
            threshold: 1,
            keep_windows: 4,
        });
        done.seed("t", start, [], true);
        assert!(
            done.observe(&env("a", 0, "t")).is_empty(),
            "already-raised alerts stay raised"
        );
    }
}
