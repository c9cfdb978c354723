//! Bus configuration: brokers, topic names and pass-through client settings.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Topics {
    pub raw: String,
    pub classified: String,
    pub alerts: String,
    pub dlq: String,
    /// Each series' numbers per hour and day, keyed `series|bucket`; created compacted.
    pub stats: String,
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            raw: "signals.raw".into(),
            classified: "signals.classified".into(),
            alerts: "signals.alerts".into(),
            dlq: "signals.dlq".into(),
            stats: "signals.stats".into(),
        }
    }
}

impl Topics {
    pub fn all(&self) -> [String; 5] {
        [
            self.raw.clone(),
            self.classified.clone(),
            self.alerts.clone(),
            self.dlq.clone(),
            self.stats.clone(),
        ]
    }

    /// The same topic names with a prefix, for isolated test runs on a shared broker.
    pub fn prefixed(prefix: &str) -> Topics {
        let d = Topics::default();
        Topics {
            raw: format!("{prefix}{}", d.raw),
            classified: format!("{prefix}{}", d.classified),
            alerts: format!("{prefix}{}", d.alerts),
            dlq: format!("{prefix}{}", d.dlq),
            stats: format!("{prefix}{}", d.stats),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BusConfig {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topics: Topics,
    /// Partitions for topics created at startup.
    pub partitions: i32,
    /// Replication factor for topics created at startup.
    pub replication: i32,
    /// Consumer group ids are `<group_prefix>-classifier`, `<group_prefix>-alerter` and
    /// `<group_prefix>-stats`.
    pub group_prefix: String,
    /// Create missing topics through the admin API at startup. Turn off where the service
    /// account has no admin rights and topics are managed elsewhere.
    pub create_topics: bool,
    /// How consumers read: read-ahead caps and when a stuck consumer makes `/healthz` fail.
    pub consumer: ConsumerSettings,
    /// Any librdkafka setting (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`, …),
    /// applied to every client after signaal's own defaults, so an operator can override them.
    pub client: BTreeMap<String, String>,
}

/// Consumer behaviour shared by every consuming worker (classifier, alerter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsumerSettings {
    /// librdkafka's `queued.min.messages`: how many messages per partition it reads ahead of
    /// the worker. Its default, 100,000, kept tens of MiB of decompressed batches in memory
    /// while a classifier lagged (175 MiB RSS); a few thousand per partition are a second of
    /// work and keep the fetcher ahead.
    pub read_ahead_messages: u32,
    /// librdkafka's `queued.max.messages.kbytes`: the same read-ahead capped in size (as
    /// fetched, i.e. compressed: decompressed it takes several times as much).
    pub read_ahead_kbytes: u32,
    /// librdkafka's `fetch.max.bytes`: the most one fetch response may carry.
    pub fetch_max_bytes: u32,
    /// A worker holding unacknowledged input (or failing to consume) for this long without
    /// progress makes `/healthz` answer 503 with the reason. 0 switches the check off.
    pub stall_seconds: u64,
}

impl Default for ConsumerSettings {
    fn default() -> Self {
        ConsumerSettings {
            read_ahead_messages: 2_000,
            read_ahead_kbytes: 8 * 1024,
            fetch_max_bytes: 1024 * 1024,
            stall_seconds: 120,
        }
    }
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            brokers: "127.0.0.1:9092".into(),
            topics: Topics::default(),
            partitions: 3,
            replication: 1,
            create_topics: true,
            group_prefix: "signaal".into(),
            consumer: ConsumerSettings::default(),
            client: BTreeMap::new(),
        }
    }
}

impl BusConfig {
    /// The consumer group id of a worker.
    pub fn group(&self, worker: &str) -> String {
        format!("{}-{worker}", self.group_prefix)
    }

    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            // librdkafka backs off up to 10 s between reconnects by default: after a broker
            // restart that was most of the time to the first new row. A local cluster answers
            // in milliseconds; 1 s keeps a dead broker from being hammered.
            .set("reconnect.backoff.max.ms", "1000");
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }
}
