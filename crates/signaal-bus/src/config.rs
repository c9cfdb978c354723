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
}

impl Default for Topics {
    fn default() -> Self {
        Topics {
            raw: "signals.raw".into(),
            classified: "signals.classified".into(),
            alerts: "signals.alerts".into(),
            dlq: "signals.dlq".into(),
        }
    }
}

impl Topics {
    pub fn all(&self) -> [String; 4] {
        [
            self.raw.clone(),
            self.classified.clone(),
            self.alerts.clone(),
            self.dlq.clone(),
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
    /// Consumer group ids are `<group_prefix>-classifier` and `<group_prefix>-alerter`.
    pub group_prefix: String,
    /// Create missing topics through the admin API at startup. Turn off where the service
    /// account has no admin rights and topics are managed elsewhere.
    pub create_topics: bool,
    /// Any librdkafka setting (`security.protocol`, `sasl.mechanism`, `ssl.ca.location`, …),
    /// applied to every client after signaal's own defaults, so an operator can override them.
    pub client: BTreeMap<String, String>,
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
        c.set("bootstrap.servers", &self.brokers);
        for (k, v) in &self.client {
            c.set(k, v);
        }
        c
    }
}
