//! The at-least-once consumer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use crate::health::Liveness;
use crate::{BusConfig, BusError, Result};

/// Consume errors, and each kind of librdkafka client error, are logged at most this often; the
/// rest are counted.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Kinds of client error remembered for rate limiting at most; past it the oldest are forgotten.
const ERROR_KINDS_KEPT: usize = 64;

/// What makes two librdkafka messages the same error: the text without its parenthesised tail
/// ("(after 0ms in state CONNECT, 558 identical error(s) suppressed)") and with every run of
/// digits as `#` ("1/1 brokers are down", "2/2 brokers are down").
fn error_kind(message: &str) -> String {
    let head = message.split(" (").next().unwrap_or(message);
    let mut out = String::with_capacity(head.len());
    let mut in_digits = false;
    for c in head.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

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

/// Commits what was stored before partitions are taken away, so the next owner does not redo it,
/// and reports the group's lag from librdkafka's statistics.
struct CommitOnRevoke {
    group: String,
    /// When each distinct client error was last logged, and how many repeats were not.
    errors: Mutex<BTreeMap<String, (Instant, u64)>>,
}

impl CommitOnRevoke {
    fn new(group: String) -> CommitOnRevoke {
        CommitOnRevoke {
            group,
            errors: Mutex::new(BTreeMap::new()),
        }
    }

    /// Logs `message` at error unless an error of its kind ([`error_kind`]) was logged less
    /// than `ERROR_LOG_INTERVAL` ago; counts it.
    fn error_at_most_every_interval(&self, message: String) {
        metrics::counter!("signaal_kafka_client_errors_total", "group" => self.group.clone())
            .increment(1);
        let now = Instant::now();
        let key = error_kind(&message);
        let repeats = {
            let mut seen = match self.errors.lock() {
                Ok(seen) => seen,
                Err(poisoned) => poisoned.into_inner(),
            };
            match seen.get_mut(&key) {
                Some((last, n)) if now.duration_since(*last) < ERROR_LOG_INTERVAL => {
                    *n += 1;
                    return;
                }
                Some((last, n)) => {
                    *last = now;
                    std::mem::take(n)
                }
                None => {
                    if seen.len() >= ERROR_KINDS_KEPT {
                        let oldest = seen
                            .iter()
                            .min_by_key(|(_, (at, _))| *at)
                            .map(|(k, _)| k.clone());
                        if let Some(k) = oldest {
                            seen.remove(&k);
                        }
                    }
                    seen.insert(key, (now, 0));
                    0
                }
            }
        };
        let key = message;
        if repeats > 0 {
            tracing::error!(group = %self.group, repeats, "kafka client: {key} ({repeats} more since it was last logged)");
        } else {
            tracing::error!(group = %self.group, "kafka client: {key}");
        }
    }
}

/// How often librdkafka reports statistics (the lag gauge's resolution).
const STATISTICS_INTERVAL_MS: &str = "5000";

impl ClientContext for CommitOnRevoke {
    /// librdkafka reports a cluster it cannot reach ("all brokers down", "connection refused")
    /// about twice a second while it retries: each distinct error is logged at most every
    /// `ERROR_LOG_INTERVAL`, with how often it came in between, and all are counted in
    /// `signaal_kafka_client_errors_total`.
    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        self.error_at_most_every_interval(format!("{error}: {reason}"));
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                self.error_at_most_every_interval(format!("{fac} {message}"))
            }
            L::Warning => tracing::warn!(group = %self.group, "librdkafka: {fac} {message}"),
            L::Notice | L::Info => {
                tracing::info!(group = %self.group, "librdkafka: {fac} {message}")
            }
            L::Debug => tracing::debug!(group = %self.group, "librdkafka: {fac} {message}"),
        }
    }

    /// `signaal_consumer_lag{group, topic, partition}`: messages between the partition's high
    /// watermark and this consumer's position, for the partitions it fetches. A partition it no
    /// longer fetches goes to 0 (another member reports it).
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition < 0 {
                    continue; // librdkafka's internal "unassigned" partition
                }
                let lag = if p.fetch_state == "active" && p.consumer_lag >= 0 {
                    p.consumer_lag
                } else {
                    0
                };
                metrics::gauge!(
                    "signaal_consumer_lag",
                    "group" => self.group.clone(),
                    "topic" => topic.clone(),
                    "partition" => partition.to_string()
                )
                .set(lag as f64);
            }
        }
    }
}

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
    liveness: Arc<Liveness>,
    /// When a consume error was last logged, and how many were not logged since.
    error_log: Mutex<(Option<Instant>, u64)>,
}

impl Consumer {
    /// Joins `group` and subscribes to `topics`. New groups start at the earliest offset: a signal
    /// published before the worker first started is still processed.
    pub fn new(config: &BusConfig, group: &str, topics: &[&str]) -> Result<Consumer> {
        let mut c = config.client_config();
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            // Stored offsets are committed often: what a killed worker did since the last
            // commit is done again (and published twice) by the next owner.
            .set("auto.commit.interval.ms", "250")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("session.timeout.ms", "10000")
            .set(
                "queued.min.messages",
                config.consumer.read_ahead_messages.to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                config.consumer.read_ahead_kbytes.to_string(),
            )
            .set(
                "fetch.max.bytes",
                config.consumer.fetch_max_bytes.to_string(),
            )
            // With a small read-ahead the queue is often "full"; librdkafka then waits this long
            // before it fetches that partition again (1 s by default, which starved the worker).
            .set("fetch.queue.backoff.ms", "5")
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        for (k, v) in &config.client {
            c.set(k, v);
        }
        let inner: StreamConsumer<CommitOnRevoke> = c
            .create_with_context(CommitOnRevoke::new(group.to_string()))
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
            liveness: Liveness::register(group, Duration::from_secs(config.consumer.stall_seconds)),
            error_log: Mutex::new((None, 0)),
        })
    }

    /// This consumer's progress, as `/healthz` sees it.
    pub fn liveness(&self) -> &Arc<Liveness> {
        &self.liveness
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Waits for the first message, then gathers more for at most `linger` or until `max`.
    /// Returns an empty batch when `shutdown` fires. Messages keep their partition order.
    ///
    /// Consume errors (broker down, partition leader moving) are logged, counted and waited
    /// through: librdkafka recovers by itself, and handling each queued error with a pause made
    /// recovery after a broker restart take minutes.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Delivery>> {
        let mut stream = self.inner.stream();
        let mut batch = Vec::new();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return Ok(batch),
                m = stream.next() => m,
            };
            match first {
                Some(Ok(m)) => {
                    batch.push(owned(&m));
                    break;
                }
                Some(Err(error)) => self.consume_failed(error),
                None => return Ok(batch),
            }
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
                Some(Err(error)) => {
                    self.consume_failed(error);
                    break;
                }
                None => break,
            }
        }
        self.liveness.taken(batch.len());
        Ok(batch)
    }

    fn consume_failed(&self, error: rdkafka::error::KafkaError) {
        let error = self.consume_error(error);
        metrics::counter!("signaal_consumer_errors_total", "group" => self.group.clone())
            .increment(1);
        self.liveness.consume_failed(&error.to_string());
        let now = Instant::now();
        let mut log = match self.error_log.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let due = log
            .0
            .is_none_or(|at| now.duration_since(at) >= ERROR_LOG_INTERVAL);
        if due {
            tracing::warn!(%error, group = %self.group, not_logged = log.1, "consume error; librdkafka retries");
            *log = (Some(now), 0);
        } else {
            log.1 += 1;
        }
    }

    fn consume_error(&self, source: rdkafka::error::KafkaError) -> BusError {
        BusError::Consume {
            topics: self.topics.clone(),
            source,
        }
    }

    /// Marks a processed batch: stores offset+1 of the last message per partition. Call only
    /// after the batch's effect (store write, publish) is durable.
    pub fn ack(&self, batch: &[Delivery]) {
        self.ack_offsets(
            batch
                .iter()
                .map(|d| (d.topic.as_str(), d.partition, d.offset)),
        );
    }

    /// As [`Consumer::ack`], for `(topic, partition, offset)` positions of processed messages.
    ///
    /// A partition taken away by a rebalance while its batch was in flight cannot store an
    /// offset any more; its new owner reads the batch again (ids make that harmless), so that
    /// is logged, not an error.
    pub fn ack_offsets<'a>(&self, positions: impl IntoIterator<Item = (&'a str, i32, i64)>) {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        let mut n = 0;
        for (topic, partition, offset) in positions {
            n += 1;
            let e = next.entry((topic, partition)).or_insert(offset + 1);
            *e = (*e).max(offset + 1);
        }
        self.liveness.acknowledged(n);
        if next.is_empty() {
            return;
        }
        metrics::counter!("signaal_consumer_messages_total", "group" => self.group.clone())
            .increment(n as u64);
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            if let Err(error) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
                tracing::warn!(%error, topic, partition, offset, "invalid offset to store");
            }
        }
        if let Err(error) = self.inner.store_offsets(&tpl) {
            tracing::info!(%error, group = %self.group, "offsets not stored (partition reassigned?); its new owner reads the batch again");
        }
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
            let batch = self.next_batch(max, linger, shutdown).await?;
            if batch.is_empty() {
                continue;
            }
            let mut backoff = Duration::from_millis(200);
            loop {
                match handle(batch.clone()).await {
                    Ok(()) => {
                        self.ack(&batch);
                        break;
                    }
                    Err(error) => {
                        metrics::counter!("signaal_consumer_batch_failures_total", "group" => self.group.clone())
                            .increment(1);
                        let error = error.to_string();
                        self.liveness.failed(&error);
                        tracing::warn!(%error, messages = batch.len(), ?backoff, "batch failed; retrying");
                        tokio::select! {
                            _ = shutdown.cancelled() => {
                                // Not acknowledged: the batch is redelivered after restart.
                                self.liveness.released(batch.len());
                                return self.commit();
                            }
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = next_backoff(backoff);
                    }
                }
            }
        }
        self.commit()
    }
}

/// Doubles a retry pause up to 5 s: long enough not to hammer a database that is down, short
/// enough that work resumes within seconds of it coming back.
pub fn next_backoff(current: Duration) -> Duration {
    (current * 2).min(Duration::from_secs(5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_client_error_is_logged_once_per_interval_and_counted() {
        let ctx = CommitOnRevoke::new("g".into());
        let repeats = |kind: &str| {
            ctx.errors
                .lock()
                .ok()
                .and_then(|m| m.get(kind).map(|(_, n)| *n))
        };
        for _ in 0..5 {
            ctx.error_at_most_every_interval("all brokers down".into());
        }
        // Logged once; the four repeats wait for the next interval.
        assert_eq!(repeats("all brokers down"), Some(4));
        // librdkafka's changing details make no new kind.
        for n in 1..4 {
            ctx.error_at_most_every_interval(format!(
                "FAIL Connect to ipv4#127.0.0.1:{n}9092 failed: Connection refused \
                 (after {n}ms in state CONNECT, {n} identical error(s) suppressed)"
            ));
        }
        let kind = error_kind("FAIL Connect to ipv4#127.0.0.1:9092 failed: Connection refused");
        assert_eq!(
            kind,
            "FAIL Connect to ipv###.#.#.#:# failed: Connection refused"
        );
        assert_eq!(repeats(&kind), Some(2));
        assert_eq!(
            error_kind("1/1 brokers are down"),
            error_kind("2/2 brokers are down")
        );
        // However many kinds come, the map stays small.
        for n in 0..200 {
            ctx.error_at_most_every_interval(format!("error of kind {}", "x".repeat(n)));
        }
        let kept = ctx.errors.lock().map(|m| m.len()).unwrap_or(usize::MAX);
        assert!(kept <= ERROR_KINDS_KEPT, "{kept} kinds kept");
    }
}
