//! The stats worker (`signaal stats`): keeps `signals.stats` — per theme, subject, channel and
//! theme × channel, per UTC hour and day, the count, distinct people, mean impact and alert
//! state — for subscribers that keep no state.
//!
//! A thin loop: read a batch of `signals.classified` and `signals.alerts` (its own consumer
//! group, `<group_prefix>-stats`), collect the keys the batch touched
//! ([`signaal_core::stats::keys_of_signal`], [`signaal_core::stats::keys_of_alert_event`]),
//! read each key's value from the register (one statement per kind of series), publish one
//! record per key, acknowledge.
//!
//! **Exactly once in effect.** A record is never an increment: it is what the register holds
//! for its key when it is read. The register holds a signal before the classifier publishes it
//! and never stores one twice, so a key read after its signal was consumed counts it, and a
//! replay (a restart, a reset group, the same signal published twice) writes the same value
//! again; the compacted topic keeps the latest. Alert states are read from the register too,
//! together with the alert events the worker consumed in the last two days of event time
//! ([`Recent`]): the alerter publishes an event before it stores it, so a key read in between
//! would otherwise lose the state it was just given. The state chosen (the last change in the
//! bucket) is the same whichever copy comes first, and however often.
//!
//! **One process.** Records of one key must be written in the order their values were read:
//! within a process batches are sequential, and the producer keeps one key's records in order
//! on its partition. Two processes sharing the group could each read a key and write in the
//! other order, leaving an older value last: run one, as with the alerter.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use signaal_bus::{BusConfig, Consumer, DeadLetter, Delivery, Publisher};
use signaal_core::stats::{
    alert_state_in, keys_of_alert_event, keys_of_signal, BucketCounts, SeriesStats, StatsKey,
};
use signaal_core::{
    AlertEnvelope, AlertEvent, AlertEventEnvelope, ClassifiedEnvelope, SeriesStatsEnvelope,
};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::AlerterError;

/// `[stats]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatsConfig {
    /// Messages per batch: each key a batch touches is read and published once, so larger
    /// batches read a busy day's numbers less often.
    pub batch: usize,
    /// How long to wait for a batch to fill.
    pub linger_ms: u64,
}

impl Default for StatsConfig {
    fn default() -> Self {
        StatsConfig {
            batch: 2_000,
            linger_ms: 500,
        }
    }
}

impl StatsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.batch == 0 {
            return Err("`stats.batch` must be at least 1".into());
        }
        Ok(())
    }
}

/// What a batch asks for: the keys it touched, the alert events in it, and what cannot be read.
#[derive(Debug, Default)]
pub struct Touched {
    pub keys: BTreeSet<StatsKey>,
    pub events: Vec<AlertEvent>,
    pub dead_letters: Vec<DeadLetter>,
}

/// The keys of a batch's messages. A classified signal touches its series in its hour and day;
/// an alert event its series in the hour and day of its bucket. Version 1 alerts (no longer
/// written) change nothing; anything else that cannot be read is a dead letter.
pub fn touched(batch: &[Delivery], alerts_topic: &str) -> Touched {
    let mut out = Touched::default();
    for d in batch {
        if d.topic == alerts_topic {
            match AlertEventEnvelope::decode(&d.payload) {
                Ok(env) => {
                    out.keys.extend(keys_of_alert_event(&env.event));
                    out.events.push(env.event);
                }
                Err(_) if AlertEnvelope::decode(&d.payload).is_ok() => {}
                Err(error) => out.dead_letters.push(DeadLetter::from_delivery(
                    d.clone(),
                    error.to_string(),
                    "stats",
                )),
            }
        } else {
            match ClassifiedEnvelope::decode(&d.payload) {
                Ok(env) => out.keys.extend(keys_of_signal(&env)),
                Err(error) => out.dead_letters.push(DeadLetter::from_delivery(
                    d.clone(),
                    error.to_string(),
                    "stats",
                )),
            }
        }
    }
    out
}

/// How far behind the newest alert event consumed [`Recent`] keeps events (event time): far
/// more than the moment between the alerter's publish and its write to the register, which is
/// all it has to bridge.
const RECENT_WINDOW: chrono::Duration = chrono::Duration::days(2);

/// At most this many events are kept (the oldest go first): a few hundred bytes each.
const RECENT_MAX: usize = 20_000;

/// The alert events consumed lately, by id: what the register may not hold yet. Only what a
/// record needs is kept of each.
#[derive(Debug, Default)]
pub struct Recent {
    events: BTreeMap<String, AlertEvent>,
    newest: Option<DateTime<Utc>>,
}

impl Recent {
    pub fn add(&mut self, events: &[AlertEvent]) {
        for e in events {
            let mut slim = e.clone();
            slim.channels.clear();
            slim.top_subjects.clear();
            slim.top_words.clear();
            slim.sample_signal_ids.clear();
            self.newest = self.newest.max(Some(e.bucket_start));
            self.events.insert(e.id.clone(), slim);
        }
        if let Some(newest) = self.newest {
            let from = newest - RECENT_WINDOW;
            self.events.retain(|_, e| e.bucket_start >= from);
        }
        if self.events.len() > RECENT_MAX {
            let mut starts: Vec<DateTime<Utc>> =
                self.events.values().map(|e| e.bucket_start).collect();
            starts.sort_unstable();
            let cut = starts[self.events.len() - RECENT_MAX];
            self.events.retain(|_, e| e.bucket_start >= cut);
        }
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &AlertEvent> {
        self.events.values()
    }
}

/// One record per key: the register's numbers (zero for a key it holds nothing for) and the
/// series' alert state in the bucket, from the stored events and the recently consumed ones.
pub fn records(
    keys: &BTreeSet<StatsKey>,
    counts: &BTreeMap<StatsKey, BucketCounts>,
    stored: &[AlertEvent],
    recent: &Recent,
) -> Vec<SeriesStatsEnvelope> {
    keys.iter()
        .map(|k| {
            let counts = counts.get(k).copied().unwrap_or_default();
            let alert = alert_state_in(k, stored.iter().chain(recent.iter()));
            SeriesStatsEnvelope::new(SeriesStats::new(k, &counts, alert))
        })
        .collect()
}

/// Reads the keys' values from the register and publishes them; returns how many records.
async fn publish(
    touched: &Touched,
    recent: &Recent,
    publisher: &Publisher,
    store: &Store,
) -> Result<usize, AlerterError> {
    if touched.keys.is_empty() {
        return Ok(0);
    }
    let keys: Vec<StatsKey> = touched.keys.iter().cloned().collect();
    let counts = store.bucket_counts(&keys).await?;
    let stored = store.alert_events_in(&keys).await?;
    let envelopes = records(&touched.keys, &counts, &stored, recent);
    publisher
        .publish(&publisher.stats_records(&envelopes))
        .await?;
    Ok(envelopes.len())
}

/// Runs the stats worker until `shutdown`.
pub async fn run(
    bus: &BusConfig,
    cfg: StatsConfig,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), AlerterError> {
    cfg.validate().map_err(AlerterError::Config)?;
    let consumer = Consumer::new(
        bus,
        &bus.group("stats"),
        &[bus.topics.classified.as_str(), bus.topics.alerts.as_str()],
    )?;
    tracing::info!(
        group = %consumer.group(),
        topic = %bus.topics.stats,
        batch = cfg.batch,
        "stats worker started"
    );
    let result = work(&consumer, cfg, bus, &publisher, &store, &shutdown).await;
    publisher.flush(Duration::from_secs(10));
    if let Err(error) = consumer.commit() {
        tracing::warn!(%error, "cannot commit the stats worker's offsets on shutdown");
    }
    result?;
    tracing::info!("stats worker stopped");
    Ok(())
}

async fn work(
    consumer: &Consumer,
    cfg: StatsConfig,
    bus: &BusConfig,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(), AlerterError> {
    let linger = Duration::from_millis(cfg.linger_ms);
    let mut recent = Recent::default();
    while !shutdown.is_cancelled() {
        let batch = consumer.next_batch(cfg.batch, linger, shutdown).await?;
        if batch.is_empty() {
            continue;
        }
        let mut touched = touched(&batch, &bus.topics.alerts);
        recent.add(&touched.events);
        let mut backoff = Duration::from_millis(200);
        loop {
            // Dead letters first, each sent once however often the rest is retried.
            let letters = std::mem::take(&mut touched.dead_letters);
            let mut failed = None;
            for (letter, result) in publisher.dead_letters_each(letters).await {
                if let Err(error) = result {
                    failed.get_or_insert_with(|| error.to_string());
                    touched.dead_letters.push(letter);
                }
            }
            let result = match failed {
                Some(error) => Err(error),
                None => publish(&touched, &recent, publisher, store)
                    .await
                    .map_err(|e| e.to_string()),
            };
            match result {
                Ok(published) => {
                    metrics::counter!("signaal_stats_records_total").increment(published as u64);
                    metrics::counter!("signaal_stats_batches_total").increment(1);
                    metrics::gauge!("signaal_stats_batch_keys").set(published as f64);
                    tracing::debug!(
                        messages = batch.len(),
                        keys = published,
                        "series stats published"
                    );
                    break;
                }
                Err(error) => {
                    metrics::counter!("signaal_consumer_batch_failures_total", "group" => consumer.group().to_string())
                        .increment(1);
                    consumer.liveness().failed(&error);
                    tracing::warn!(%error, retry_in = ?backoff, "cannot publish series stats; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => {
                            // Not acknowledged: read again after a restart.
                            consumer.liveness().released(batch.len());
                            return Ok(());
                        }
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = signaal_bus::next_backoff(backoff);
                }
            }
        }
        consumer.ack(&batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use signaal_core::{AlertState, Channel, Classification, Signal, ThemeTag};

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn delivery(topic: &str, offset: i64, payload: Vec<u8>) -> Delivery {
        Delivery {
            topic: topic.into(),
            partition: 0,
            offset,
            key: None,
            payload,
            headers: vec![],
        }
    }

    fn classified(source_id: &str, t: &str, theme: &str) -> ClassifiedEnvelope {
        ClassifiedEnvelope::new(
            Signal::new(Channel::Email, "inbox", source_id, at(t), "tekst"),
            Classification {
                themes: vec![ThemeTag {
                    id: theme.into(),
                    score: 1.0,
                    evidence: vec![],
                }],
                subjects: vec![],
                cause: signaal_core::Cause::System,
                kind: signaal_core::Kind::Complaint,
                lang: "nl".into(),
                sentiment: 0.0,
                escalation: vec![],
                impact: Some(1.0),
            },
            "test",
        )
    }

    fn event(state: AlertState, bucket: &str) -> AlertEvent {
        let start = at("2026-11-03T14:00:00Z");
        let alert_id = AlertEvent::alert_id_for("billing", start);
        AlertEvent {
            id: AlertEvent::event_id_for(&alert_id, state, at(bucket)),
            alert_id,
            series: "billing".into(),
            theme: "billing".into(),
            channel: None,
            state,
            severity: signaal_core::Severity::Warning,
            alert_start: start,
            bucket_start: at(bucket),
            bucket_end: at(bucket) + chrono::Duration::hours(1),
            observed: 9,
            expected: 1.0,
            upper: Some(5.0),
            p_value: 0.001,
            method: "farrington".into(),
            peak: 9,
            total: 9,
            channels: Default::default(),
            top_subjects: vec![],
            top_words: vec![],
            sample_signal_ids: vec![],
            emitted_at: at(bucket),
        }
    }

    #[test]
    fn a_batch_touches_each_key_once_and_dead_letters_what_it_cannot_read(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let one = classified("1", "2026-11-03T14:10:00Z", "billing");
        let two = classified("2", "2026-11-03T14:50:00Z", "billing");
        let firing = event(AlertState::Firing, "2026-11-03T14:00:00Z");
        let old_alert = AlertEnvelope::new(signaal_core::Alert {
            id: "x".into(),
            theme: "billing".into(),
            window_start: at("2026-11-03T14:00:00Z"),
            window_end: at("2026-11-03T15:00:00Z"),
            count: 3,
            threshold: 2,
            raised_at: at("2026-11-03T15:00:00Z"),
            sample_signal_ids: vec![],
        });
        let batch = vec![
            delivery("c", 0, serde_json::to_vec(&one)?),
            delivery("c", 1, serde_json::to_vec(&two)?),
            delivery("c", 2, serde_json::to_vec(&one)?),
            delivery("c", 3, b"not json".to_vec()),
            delivery(
                "a",
                0,
                serde_json::to_vec(&AlertEventEnvelope::new(firing.clone()))?,
            ),
            delivery("a", 1, serde_json::to_vec(&old_alert)?),
            delivery("a", 2, serde_json::to_vec(&one)?),
        ];
        let t = touched(&batch, "a");
        let keys: Vec<String> = t.keys.iter().map(|k| k.to_string()).collect();
        assert_eq!(
            keys,
            [
                "theme:billing|hour:2026-11-03T14",
                "theme:billing|day:2026-11-03",
                "channel:email|hour:2026-11-03T14",
                "channel:email|day:2026-11-03",
                "theme:billing|channel:email|hour:2026-11-03T14",
                "theme:billing|channel:email|day:2026-11-03",
            ]
        );
        assert_eq!(t.events, vec![firing]);
        let dead: Vec<(String, bool)> = t
            .dead_letters
            .iter()
            .map(|d| (d.origin.clone(), d.reason.contains("not valid JSON")))
            .collect();
        assert_eq!(
            dead,
            [("c/0/3".to_string(), true), ("a/0/2".to_string(), false)],
            "garbage and a classified message on the alerts topic; the old alert is passed over"
        );
        Ok(())
    }

    #[test]
    fn records_read_the_register_and_the_batch_alike() {
        let env = classified("1", "2026-11-03T14:10:00Z", "billing");
        let keys: BTreeSet<StatsKey> = keys_of_signal(&env).into_iter().collect();
        let hour = keys
            .iter()
            .find(|k| k.to_string() == "theme:billing|hour:2026-11-03T14")
            .cloned();
        let Some(hour) = hour else {
            panic!("no hour key in {keys:?}");
        };
        let counts = [(
            hour.clone(),
            BucketCounts {
                count: 2,
                authors: 1,
                scored: 2,
                impact_milli: 3_000,
                newest_classified: None,
            },
        )]
        .into();
        let stored = [event(AlertState::Firing, "2026-11-03T14:00:00Z")];
        let mut recent = Recent::default();
        recent.add(&[event(AlertState::Pending, "2026-11-03T14:00:00Z")]);
        let out = records(&keys, &counts, &stored, &recent);
        assert_eq!(out.len(), keys.len(), "one record per key");
        let Some(rec) = out.iter().find(|r| r.stats.key == hour.to_string()) else {
            panic!("no record for {hour}");
        };
        assert_eq!(
            (rec.stats.count, rec.stats.authors, rec.stats.mean_impact),
            (2, 1, Some(1.5))
        );
        assert_eq!(
            rec.stats.alert_state.as_ref().map(|a| a.state),
            Some(AlertState::Firing),
            "the later change wins, wherever it was read"
        );
        // A key the register holds nothing for is published with zeros.
        assert!(out
            .iter()
            .filter(|r| r.stats.key != hour.to_string())
            .all(|r| r.stats.count == 0 && r.stats.mean_impact.is_none()));
        // The same whichever side knows which event.
        let mut swapped = Recent::default();
        swapped.add(&stored);
        let pending = [event(AlertState::Pending, "2026-11-03T14:00:00Z")];
        assert_eq!(out, records(&keys, &counts, &pending, &swapped));
        // An event only Kafka has told of yet still counts.
        let only_recent = records(&keys, &counts, &[], &swapped);
        assert_eq!(out, only_recent);
    }

    #[test]
    fn recent_events_are_kept_once_and_for_two_days_of_event_time() {
        let mut r = Recent::default();
        let first = event(AlertState::Firing, "2026-11-03T14:00:00Z");
        r.add(&[first.clone(), first.clone()]);
        r.add(std::slice::from_ref(&first));
        assert_eq!(r.len(), 1, "an event consumed twice is kept once");
        assert!(r.iter().all(|e| e.top_words.is_empty()), "kept slim");
        r.add(&[event(AlertState::Update, "2026-11-05T13:00:00Z")]);
        assert_eq!(r.len(), 2, "47 hours later the first is still kept");
        r.add(&[event(AlertState::Update, "2026-11-05T15:00:00Z")]);
        assert_eq!(r.len(), 2, "49 hours later it is not");
        assert!(r.iter().all(|e| e.id != first.id));
        // An old event arriving late is dropped at once; the window follows the newest.
        r.add(&[event(AlertState::Update, "2026-10-01T15:00:00Z")]);
        assert_eq!(r.len(), 2);
    }
}
