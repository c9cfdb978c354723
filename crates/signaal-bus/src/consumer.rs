//! The at-least-once consumer.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::{BusConfig, BusError, Result};

/// A consumed message, owned and detached from librdkafka.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Delivery {
    pub fn origin(&self) -> String {
        format!("{}/{}/{}", self.topic, self.partition, self.offset)
    }
}

/// Commits what was stored before partitions are taken away, so the next owner does not redo it.
struct CommitOnRevoke;

impl ClientContext for CommitOnRevoke {}

impl ConsumerContext for CommitOnRevoke {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            if tpl.count() == 0 {
                return;
            }
            match consumer.commit_consumer_state(CommitMode::Sync) {
                Ok(()) => tracing::info!(partitions = tpl.count(), "committed offsets on revoke"),
                // Nothing stored since the last commit is not an error worth a warning.
                Err(rdkafka::error::KafkaError::ConsumerCommit(
                    rdkafka::types::RDKafkaErrorCode::NoOffset,
                )) => {}
                Err(error) => tracing::warn!(%error, "failed to commit offsets on revoke"),
            }
        }
    }
}

pub struct Consumer {
    inner: StreamConsumer<CommitOnRevoke>,
    topics: Vec<String>,
    group: String,
}

impl Consumer {
    /// Joins `group` and subscribes to `topics`. New groups start at the earliest offset: a signal
    /// published before the worker first started is still processed.
    pub fn new(config: &BusConfig, group: &str, topics: &[&str]) -> Result<Consumer> {
        let mut c = config.client_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000");
        for (k, v) in &config.client {
            c.set(k, v);
        }
        let inner: StreamConsumer<CommitOnRevoke> = c
            .create_with_context(CommitOnRevoke)
            .map_err(BusError::Config)?;
        inner
            .subscribe(topics)
            .map_err(|source| BusError::Consume {
                topics: topics.iter().map(|t| t.to_string()).collect(),
                source,
            })?;
        Ok(Consumer {
            inner,
            topics: topics.iter().map(|t| t.to_string()).collect(),
            group: group.to_string(),
        })
    }

    /// Waits for the first message, then gathers more for at most `linger` or until `max`.
    /// Returns an empty batch when `shutdown` fires. Messages keep their partition order.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Delivery>> {
        let mut stream = self.inner.stream();
        let mut batch = Vec::new();
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(batch),
            m = stream.next() => m,
        };
        match first {
            Some(Ok(m)) => batch.push(owned(&m)),
            Some(Err(source)) => return Err(self.consume_error(source)),
            None => return Ok(batch),
        }
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            let next = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = shutdown.cancelled() => break,
                m = stream.next() => m,
            };
            match next {
                Some(Ok(m)) => batch.push(owned(&m)),
                Some(Err(source)) => return Err(self.consume_error(source)),
                None => break,
            }
        }
        Ok(batch)
    }

    fn consume_error(&self, source: rdkafka::error::KafkaError) -> BusError {
        BusError::Consume {
            topics: self.topics.clone(),
            source,
        }
    }

    /// Marks a processed batch: stores offset+1 of the last message per partition. Call only
    /// after the batch's effect (store write, publish) is durable.
    pub fn ack(&self, batch: &[Delivery]) -> Result<()> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for d in batch {
            let e = next
                .entry((d.topic.as_str(), d.partition))
                .or_insert(d.offset + 1);
            *e = (*e).max(d.offset + 1);
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))
                .map_err(BusError::Offsets)?;
        }
        self.inner.store_offsets(&tpl).map_err(BusError::Offsets)
    }

    /// Synchronously commits stored offsets; used on shutdown.
    pub fn commit(&self) -> Result<()> {
        match self.inner.commit_consumer_state(CommitMode::Sync) {
            Ok(()) => Ok(()),
            Err(rdkafka::error::KafkaError::ConsumerCommit(
                rdkafka::types::RDKafkaErrorCode::NoOffset,
            )) => Ok(()),
            Err(e) => Err(BusError::Offsets(e)),
        }
    }
}

fn owned(m: &rdkafka::message::BorrowedMessage<'_>) -> Delivery {
    let headers = m
        .headers()
        .map(|h| {
            h.iter()
                .map(|h| {
                    (
                        h.key.to_string(),
                        h.value.map(<[u8]>::to_vec).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Delivery {
        topic: m.topic().to_string(),
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        headers,
    }
}

impl Consumer {
    /// The at-least-once loop: read a batch, hand it to `handle`, and acknowledge it only when
    /// `handle` succeeded. A failing batch is retried with exponential backoff (a store or broker
    /// outage pauses the worker, it does not skip messages). On shutdown the loop stops between
    /// batches and commits what was acknowledged.
    pub async fn run<F, Fut, E>(
        &self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
        mut handle: F,
    ) -> Result<()>
    where
        F: FnMut(Vec<Delivery>) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<(), E>>,
        E: std::fmt::Display,
    {
        while !shutdown.is_cancelled() {
            let batch = match self.next_batch(max, linger, shutdown).await {
                Ok(b) => b,
                Err(error) => {
                    tracing::warn!(%error, "consume error; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                continue;
            }
            let mut backoff = Duration::from_millis(200);
            loop {
                match handle(batch.clone()).await {
                    Ok(()) => {
                        self.ack(&batch)?;
                        metrics::counter!("signaal_consumer_messages_total", "group" => self.group.clone())
                            .increment(batch.len() as u64);
                        break;
                    }
                    Err(error) => {
                        metrics::counter!("signaal_consumer_batch_failures_total", "group" => self.group.clone())
                            .increment(1);
                        tracing::warn!(%error, messages = batch.len(), ?backoff, "batch failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => {
                                // Not acknowledged: the batch is redelivered after restart.
                                return self.commit();
                            }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        self.commit()
    }
}
