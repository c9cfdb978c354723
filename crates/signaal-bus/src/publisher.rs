//! The idempotent publisher and dead letters.

use std::time::Duration;

use futures::future::join_all;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use crate::{BusConfig, BusError, Result, Topics};

/// Header names; part of the public contract (see `schemas/`).
pub mod header {
    pub const SCHEMA_VERSION: &str = "signaal-schema-version";
    pub const CHANNEL: &str = "signaal-channel";
    pub const TYPE: &str = "signaal-type";
    pub const DLQ_REASON: &str = "signaal-dlq-reason";
    pub const DLQ_ORIGIN: &str = "signaal-dlq-origin";
    pub const DLQ_TOPIC: &str = "signaal-dlq-topic";
    pub const DLQ_PARTITION: &str = "signaal-dlq-partition";
    pub const DLQ_OFFSET: &str = "signaal-dlq-offset";
    pub const DLQ_WORKER: &str = "signaal-dlq-worker";
    pub const DLQ_TRUNCATED_FROM: &str = "signaal-dlq-truncated-from";
}

/// Largest raw signal (as JSON) a source publishes. Kafka's default limit for one message is
/// 1,000,000 bytes; half is left for what the classifier adds, so a signal that passed here is
/// never too large downstream.
pub const MAX_RAW_BYTES: usize = 512 * 1024;

/// Of a larger dead-letter payload only the beginning is kept: a 30 MB file dropped in a mail
/// folder must not be a message Kafka refuses (the worker would retry it forever).
pub const MAX_DEAD_LETTER_BYTES: usize = 512 * 1024;

/// Dead letters of one batch logged at warn; the rest go to debug.
pub const LOUD_DEAD_LETTERS: usize = 10;

/// Longest reason or origin header kept on a dead letter.
const MAX_DLQ_HEADER_BYTES: usize = 4 * 1024;

/// One record to publish. Key = signal id, so a signal's versions stay on one partition.
#[derive(Debug, Clone)]
pub struct Record {
    pub topic: String,
    pub key: String,
    pub payload: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
}

/// What cannot be processed, and why. Sent to the DLQ with its original bytes untouched.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub reason: String,
    /// Where it came from: `topic/partition/offset` for messages, `path:line` for files.
    pub origin: String,
    pub worker: &'static str,
    /// Kafka coordinates when the dead letter is a consumed message.
    pub source: Option<(String, i32, i64)>,
}

impl DeadLetter {
    /// A consumed message that `worker` cannot process, with its original key and bytes.
    pub fn from_delivery(d: crate::Delivery, reason: String, worker: &'static str) -> DeadLetter {
        DeadLetter {
            origin: d.origin(),
            source: Some((d.topic, d.partition, d.offset)),
            key: d.key,
            payload: d.payload,
            reason,
            worker,
        }
    }
}

#[derive(Clone)]
pub struct Publisher {
    producer: FutureProducer,
    topics: Topics,
}

impl Publisher {
    pub fn new(config: &BusConfig) -> Result<Publisher> {
        let mut c = config.client_config();
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "120000");
        // Operators may still override the defaults above.
        for (k, v) in &config.client {
            c.set(k, v);
        }
        let producer: FutureProducer = c.create().map_err(BusError::Config)?;
        Ok(Publisher {
            producer,
            topics: config.topics.clone(),
        })
    }

    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// Publishes every record and returns once the broker acknowledged all of them (acks=all).
    /// Records are enqueued in order; with idempotence the broker keeps that order per partition.
    /// On error some records may have been written: callers must not move their cursor, and a
    /// retry is safe because signal ids are deterministic.
    pub async fn publish(&self, records: &[Record]) -> Result<()> {
        for (result, r) in self.publish_each(records).await.into_iter().zip(records) {
            if let Err(source) = result {
                return Err(BusError::Delivery {
                    topic: r.topic.clone(),
                    source,
                });
            }
        }
        Ok(())
    }

    /// Publishes every record, all in flight at once, and returns each one's outcome once the
    /// broker answered for all of them: a caller can tell which records the broker refused.
    pub async fn publish_each(
        &self,
        records: &[Record],
    ) -> Vec<std::result::Result<(), rdkafka::error::KafkaError>> {
        let sends = records.iter().map(|r| {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for (k, v) in &r.headers {
                headers = headers.insert(Header {
                    key: k,
                    value: Some(v.as_bytes()),
                });
            }
            let record = FutureRecord::to(&r.topic)
                .key(&r.key)
                .payload(&r.payload)
                .headers(headers);
            self.producer.send(record, Timeout::Never)
        });
        join_all(sends)
            .await
            .into_iter()
            .map(|r| r.map(|_| ()).map_err(|(e, _)| e))
            .collect()
    }

    /// Copies an unprocessable item to the dead-letter topic and waits for the broker.
    pub async fn dead_letter(&self, letter: DeadLetter) -> Result<()> {
        self.dead_letters(vec![letter]).await
    }

    /// Copies unprocessable items to the dead-letter topic, all in flight at once, and returns
    /// once the broker acknowledged every one. (One at a time, each waiting for its ack, an export
    /// whose every row was bad went at 170 rows/s.) A payload over [`MAX_DEAD_LETTER_BYTES`]
    /// keeps its beginning, with its original size in the `signaal-dlq-truncated-from` header.
    ///
    /// The first [`LOUD_DEAD_LETTERS`] of a batch are logged at warn, the rest at debug with one
    /// warn line for how many: a file of a million bad rows must not bury the log.
    pub async fn dead_letters(&self, letters: Vec<DeadLetter>) -> Result<()> {
        for (_, result) in self.dead_letters_each(letters).await {
            result.map_err(|source| BusError::Delivery {
                topic: self.topics.dlq.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Sends every dead letter and hands each back with Kafka's answer, so a caller retries only
    /// those Kafka did not acknowledge (a dead letter is published once, not once per retry).
    pub async fn dead_letters_each(
        &self,
        letters: Vec<DeadLetter>,
    ) -> Vec<(
        DeadLetter,
        std::result::Result<(), rdkafka::error::KafkaError>,
    )> {
        if letters.len() > LOUD_DEAD_LETTERS {
            tracing::warn!(
                count = letters.len(),
                logged = LOUD_DEAD_LETTERS,
                worker = letters[0].worker,
                "many dead letters in one batch: the rest are logged at debug (each carries its reason)"
            );
        }
        let prepared: Vec<(DeadLetter, OwnedHeaders)> = letters
            .into_iter()
            .enumerate()
            .map(|(i, letter)| prepare_dead_letter(letter, i < LOUD_DEAD_LETTERS))
            .collect();
        let sends = prepared.iter().map(|(letter, headers)| {
            let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topics.dlq)
                .payload(letter.payload.as_slice())
                .headers(headers.clone());
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            self.producer.send(record, Timeout::Never)
        });
        let results = join_all(sends).await;
        prepared
            .into_iter()
            .zip(results)
            .map(|((letter, _), r)| (letter, r.map(|_| ()).map_err(|(e, _)| e)))
            .collect()
    }

    /// Waits for everything in flight (used on shutdown).
    pub fn flush(&self, timeout: Duration) {
        use rdkafka::producer::Producer;
        if let Err(error) = self.producer.flush(Timeout::After(timeout)) {
            tracing::warn!(%error, "producer flush on shutdown did not complete");
        }
    }
}

impl Publisher {
    /// Publishes raw signals to the raw topic (key = signal id) and waits for every ack.
    pub async fn publish_raw(&self, signals: &[signaal_core::Signal]) -> Result<()> {
        let records: Vec<Record> = signals
            .iter()
            .map(|s| {
                let mut payload = Vec::with_capacity(512 + s.text.len());
                if let Err(e) = signaal_core::RawEnvelope::write_json(&mut payload, s) {
                    tracing::error!(error = %e, "envelope serialisation failed");
                    payload.clear();
                }
                Record {
                    topic: self.topics.raw.clone(),
                    key: s.id.clone(),
                    payload,
                    headers: envelope_headers(signaal_core::TYPE_RAW, Some(s.channel.as_str())),
                }
            })
            .collect();
        self.publish(&records).await
    }

    /// The record of a classified envelope already serialised as `payload`.
    pub fn classified_record(&self, id: &str, channel: &str, payload: Vec<u8>) -> Record {
        Record {
            topic: self.topics.classified.clone(),
            key: id.to_string(),
            payload,
            headers: envelope_headers(signaal_core::TYPE_CLASSIFIED, Some(channel)),
        }
    }

    /// Publishes classified signals to the classified topic and waits for every ack.
    pub async fn publish_classified(
        &self,
        batch: &[signaal_core::ClassifiedEnvelope],
    ) -> Result<()> {
        let records: Vec<Record> = batch
            .iter()
            .map(|env| Record {
                topic: self.topics.classified.clone(),
                key: env.signal.id.clone(),
                payload: to_json(env),
                headers: envelope_headers(
                    signaal_core::TYPE_CLASSIFIED,
                    Some(env.signal.channel.as_str()),
                ),
            })
            .collect();
        self.publish(&records).await
    }

    /// Publishes alerts (key = alert id) and waits for every ack.
    pub async fn publish_alerts(&self, alerts: &[signaal_core::Alert]) -> Result<()> {
        let records: Vec<Record> = alerts
            .iter()
            .map(|a| Record {
                topic: self.topics.alerts.clone(),
                key: a.id.clone(),
                payload: to_json(&signaal_core::AlertEnvelope::new(a.clone())),
                headers: envelope_headers(signaal_core::TYPE_ALERT, None),
            })
            .collect();
        self.publish(&records).await
    }

    /// Publishes alert events (key = alert id, so one alert's changes stay in order) and waits for
    /// every ack.
    pub async fn publish_alert_events(&self, events: &[signaal_core::AlertEvent]) -> Result<()> {
        let records: Vec<Record> = events
            .iter()
            .map(|e| Record {
                topic: self.topics.alerts.clone(),
                key: e.alert_id.clone(),
                payload: to_json(&signaal_core::AlertEventEnvelope::new(e.clone())),
                headers: vec![
                    (
                        header::SCHEMA_VERSION,
                        signaal_core::ALERT_EVENT_SCHEMA_VERSION.to_string(),
                    ),
                    (header::TYPE, signaal_core::TYPE_ALERT_EVENT.to_string()),
                ],
            })
            .collect();
        self.publish(&records).await
    }
}

impl Publisher {
    /// The records of a series' numbers for the stats topic: key = `series|bucket`, so the
    /// compacted topic keeps the latest per key and one key's records stay in order on one
    /// partition.
    pub fn stats_records(&self, stats: &[signaal_core::SeriesStatsEnvelope]) -> Vec<Record> {
        stats
            .iter()
            .map(|env| Record {
                topic: self.topics.stats.clone(),
                key: env.stats.key.clone(),
                payload: to_json(env),
                headers: vec![
                    (
                        header::SCHEMA_VERSION,
                        signaal_core::STATS_SCHEMA_VERSION.to_string(),
                    ),
                    (header::TYPE, signaal_core::TYPE_SERIES_STATS.to_string()),
                ],
            })
            .collect()
    }
}

fn envelope_headers(kind: &str, channel: Option<&str>) -> Vec<(&'static str, String)> {
    let mut h = vec![
        (
            header::SCHEMA_VERSION,
            signaal_core::SCHEMA_VERSION.to_string(),
        ),
        (header::TYPE, kind.to_string()),
    ];
    if let Some(c) = channel {
        h.push((header::CHANNEL, c.to_string()));
    }
    h
}

/// Counts and logs `letter` (at warn when `loud`, else at debug), cuts what is too large, and
/// builds its headers.
fn prepare_dead_letter(mut letter: DeadLetter, loud: bool) -> (DeadLetter, OwnedHeaders) {
    metrics::counter!("signaal_dead_letters_total", "worker" => letter.worker).increment(1);
    if loud {
        tracing::warn!(
            reason = %letter.reason,
            origin = %letter.origin,
            worker = letter.worker,
            bytes = letter.payload.len(),
            "sending to dead-letter topic"
        );
    } else {
        tracing::debug!(
            reason = %letter.reason,
            origin = %letter.origin,
            worker = letter.worker,
            bytes = letter.payload.len(),
            "sending to dead-letter topic"
        );
    }
    let truncated_from = (letter.payload.len() > MAX_DEAD_LETTER_BYTES).then(|| {
        let original = letter.payload.len();
        letter.payload.truncate(MAX_DEAD_LETTER_BYTES);
        original.to_string()
    });
    // Another producer's key may be of any size; the DLQ record must still fit in a message.
    if let Some(key) = letter.key.as_mut() {
        key.truncate(MAX_DLQ_HEADER_BYTES);
    }
    signaal_core::truncate(&mut letter.reason, MAX_DLQ_HEADER_BYTES);
    signaal_core::truncate(&mut letter.origin, MAX_DLQ_HEADER_BYTES);
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: header::DLQ_REASON,
            value: Some(letter.reason.as_bytes()),
        })
        .insert(Header {
            key: header::DLQ_ORIGIN,
            value: Some(letter.origin.as_bytes()),
        })
        .insert(Header {
            key: header::DLQ_WORKER,
            value: Some(letter.worker.as_bytes()),
        });
    if let Some((topic, partition, offset)) = &letter.source {
        headers = headers
            .insert(Header {
                key: header::DLQ_TOPIC,
                value: Some(topic.as_bytes()),
            })
            .insert(Header {
                key: header::DLQ_PARTITION,
                value: Some(partition.to_string().as_bytes()),
            })
            .insert(Header {
                key: header::DLQ_OFFSET,
                value: Some(offset.to_string().as_bytes()),
            });
    }
    if let Some(original) = &truncated_from {
        headers = headers.insert(Header {
            key: header::DLQ_TRUNCATED_FROM,
            value: Some(original.as_bytes()),
        });
    }
    (letter, headers)
}

/// Envelopes are plain data with string keys: serialisation cannot fail.
fn to_json<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "envelope serialisation failed");
        Vec::new()
    })
}
