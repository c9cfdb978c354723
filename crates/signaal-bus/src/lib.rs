//! The Kafka backbone. The only crate that depends on rdkafka.
//!
//! - [`Publisher`]: idempotent producer (`enable.idempotence=true`, `acks=all`); `publish` returns
//!   only once the broker confirmed every record, so a source may move its cursor afterwards.
//! - [`Consumer`]: at-least-once consumer. Offsets are stored only when the caller acknowledges a
//!   batch whose effect is durable; stored offsets are committed periodically, on partition revoke
//!   and on shutdown. Messages are handed out in partition order and processed in batches.
//! - [`ensure_topics`]: creates the five topics through the admin API at startup, the stats topic
//!   compacted; [`topic_config`] reads a topic's settings back.
//! - Dead letters: [`Publisher::dead_letter`] copies an undecodable payload to the DLQ topic with
//!   the reason and origin in headers.

mod config;
mod consumer;
pub mod health;
mod publisher;

pub use config::{BusConfig, ConsumerSettings, Topics};
pub use consumer::{next_backoff, Consumer, Delivery};
pub use publisher::{header, DeadLetter, Publisher, Record, MAX_DEAD_LETTER_BYTES, MAX_RAW_BYTES};

/// Errors from the bus. Messages name the topic or setting involved.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("kafka client setting rejected: {0}")]
    Config(#[source] rdkafka::error::KafkaError),
    #[error("could not create topic `{topic}`: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error("admin request failed: {0}")]
    Admin(#[source] rdkafka::error::KafkaError),
    #[error("delivery to `{topic}` failed: {source}")]
    Delivery {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("consuming from {topics:?} failed: {source}")]
    Consume {
        topics: Vec<String>,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("storing or committing offsets failed: {0}")]
    Offsets(#[source] rdkafka::error::KafkaError),
    #[error("in-process mock cluster could not start: {0}")]
    Mock(#[source] rdkafka::error::KafkaError),
}

pub type Result<T, E = BusError> = std::result::Result<T, E>;

impl BusError {
    /// Whether retrying the same records can succeed (broker unreachable, timeouts) as opposed
    /// to the broker refusing these records whatever happens (too large, invalid).
    pub fn is_transient(&self) -> bool {
        match self {
            BusError::Delivery { source, .. } => is_transient_kafka(source),
            _ => true,
        }
    }
}

/// Whether a produce error is worth retrying. The codes below are about the record itself: the
/// same record fails the same way on every retry, and retrying it forever stops the pipeline.
pub fn is_transient_kafka(error: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as C;
    !matches!(
        error.rdkafka_error_code(),
        Some(
            C::MessageSizeTooLarge
                | C::InvalidMessageSize
                | C::InvalidMessage
                | C::InvalidRecord
                | C::MessageBatchTooLarge
                | C::InvalidArgument
                | C::BadMessage
                | C::UnsupportedForMessageFormat,
        )
    )
}

/// Whether the producer hit a fatal error (the idempotent producer lost its guarantee, e.g. an
/// out-of-order sequence): every later send fails the same way, so the only way on is a new
/// producer, which means a restart of the process. Workers stop with this error instead of
/// retrying forever.
pub fn is_fatal_kafka(error: &rdkafka::error::KafkaError) -> bool {
    error.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal)
}

pub use admin::{ensure_topics, topic_config};
pub use mock::MockKafka;

mod admin {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use rdkafka::admin::{
        AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication,
    };
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    use crate::{BusConfig, BusError, Result};

    /// Creates every configured topic that does not exist yet. Existing topics are left alone
    /// (their partition count is not changed behind an operator's back). The stats topic is
    /// created compacted (`cleanup.policy=compact`): its latest record per key is the truth. An
    /// existing stats topic that is not compacted is left as it is and logged at warn, since
    /// deleting old segments by time loses keys that no later record repeats.
    pub async fn ensure_topics(config: &BusConfig) -> Result<()> {
        if !config.create_topics {
            return Ok(());
        }
        let admin: AdminClient<DefaultClientContext> =
            config.client_config().create().map_err(BusError::Config)?;
        let names = config.topics.all();
        let new: Vec<NewTopic<'_>> = names
            .iter()
            .map(|t| {
                let topic = NewTopic::new(
                    t,
                    config.partitions,
                    TopicReplication::Fixed(config.replication),
                );
                if *t == config.topics.stats {
                    topic.set("cleanup.policy", "compact")
                } else {
                    topic
                }
            })
            .collect();
        let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .create_topics(&new, &opts)
            .await
            .map_err(BusError::Admin)?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, "created topic"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    if topic == config.topics.stats {
                        warn_unless_compacted(&admin, &topic).await;
                    }
                }
                Err((topic, code)) => {
                    return Err(BusError::CreateTopic {
                        topic,
                        reason: code.to_string(),
                    })
                }
            }
        }
        Ok(())
    }

    async fn warn_unless_compacted(admin: &AdminClient<DefaultClientContext>, topic: &str) {
        match describe(admin, topic).await {
            Ok(settings) => {
                let policy = settings.get("cleanup.policy").map(String::as_str);
                if !policy.is_some_and(|p| p.split(',').any(|p| p.trim() == "compact")) {
                    tracing::warn!(
                        topic,
                        policy = policy.unwrap_or("?"),
                        "the stats topic is not compacted: set cleanup.policy=compact, or \
                         subscribers reading it from the beginning miss the keys deleted by time"
                    );
                }
            }
            Err(error) => {
                tracing::warn!(%error, topic, "cannot read the stats topic's configuration")
            }
        }
    }

    /// A topic's configuration as the broker reports it (every setting, defaults included).
    pub async fn topic_config(config: &BusConfig, topic: &str) -> Result<BTreeMap<String, String>> {
        let admin: AdminClient<DefaultClientContext> =
            config.client_config().create().map_err(BusError::Config)?;
        describe(&admin, topic).await
    }

    async fn describe(
        admin: &AdminClient<DefaultClientContext>,
        topic: &str,
    ) -> Result<BTreeMap<String, String>> {
        let opts = AdminOptions::new().request_timeout(Some(Duration::from_secs(30)));
        let results = admin
            .describe_configs(&[ResourceSpecifier::Topic(topic)], &opts)
            .await
            .map_err(BusError::Admin)?;
        let mut out = BTreeMap::new();
        for result in results {
            let resource = result
                .map_err(|code| BusError::Admin(rdkafka::error::KafkaError::AdminOp(code)))?;
            for entry in resource.entries {
                if let Some(value) = entry.value {
                    out.insert(entry.name, value);
                }
            }
        }
        Ok(out)
    }
}

mod mock {
    use rdkafka::mocking::MockCluster;
    use rdkafka::producer::DefaultProducerContext;

    use crate::{BusError, Result};

    /// librdkafka's in-process mock cluster, for the one-command demo and fast unit tests only.
    /// Real-broker tests use Apache Kafka (`scripts/kafka-local`).
    pub struct MockKafka {
        cluster: MockCluster<'static, DefaultProducerContext>,
    }

    impl MockKafka {
        pub fn start(brokers: i32) -> Result<MockKafka> {
            let cluster = MockCluster::new(brokers).map_err(BusError::Mock)?;
            Ok(MockKafka { cluster })
        }

        pub fn bootstrap_servers(&self) -> String {
            self.cluster.bootstrap_servers()
        }

        /// The mock cluster does not serve the admin API; topics are created through its own.
        pub fn create_topics(&self, topics: &crate::Topics, partitions: i32) -> Result<()> {
            for t in topics.all() {
                self.cluster
                    .create_topic(&t, partitions, 1)
                    .map_err(BusError::Mock)?;
            }
            Ok(())
        }

        /// A bus configuration for this cluster, with the default topics created (`partitions`
        /// each) and topic creation through the admin API switched off.
        pub fn bus_config(&self, partitions: i32) -> Result<crate::BusConfig> {
            let cfg = crate::BusConfig {
                brokers: self.bootstrap_servers(),
                create_topics: false,
                ..crate::BusConfig::default()
            };
            self.create_topics(&cfg.topics, partitions)?;
            Ok(cfg)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode as C;

    #[test]
    fn produce_errors_are_sorted_into_retry_refuse_and_stop() {
        let err = |code| KafkaError::MessageProduction(code);
        // A broker away: retry.
        assert!(is_transient_kafka(&err(C::MessageTimedOut)));
        assert!(is_transient_kafka(&err(C::AllBrokersDown)));
        assert!(!is_fatal_kafka(&err(C::AllBrokersDown)));
        // The record itself: refuse it (dead letter), never retry.
        assert!(!is_transient_kafka(&err(C::MessageSizeTooLarge)));
        assert!(!is_transient_kafka(&err(C::InvalidRecord)));
        // The producer is broken for good: stop, so a restart makes a new one.
        assert!(is_fatal_kafka(&err(C::Fatal)));
    }
}
