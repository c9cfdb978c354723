//! The Kafka backbone. The only crate that depends on rdkafka.
//!
//! - [`Publisher`]: idempotent producer (`enable.idempotence=true`, `acks=all`); `publish` returns
//!   only once the broker confirmed every record, so a source may move its cursor afterwards.
//! - [`Consumer`]: at-least-once consumer. Offsets are stored only when the caller acknowledges a
//!   batch whose effect is durable; stored offsets are committed periodically, on partition revoke
//!   and on shutdown. Messages are handed out in partition order and processed in batches.
//! - [`ensure_topics`]: creates the four topics through the admin API at startup.
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

pub use admin::ensure_topics;
pub use mock::MockKafka;

mod admin {
    use std::time::Duration;

    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::types::RDKafkaErrorCode;

    use crate::{BusConfig, BusError, Result};

    /// Creates every configured topic that does not exist yet. Existing topics are left alone
    /// (their partition count is not changed behind an operator's back).
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
                NewTopic::new(
                    t,
                    config.partitions,
                    TopicReplication::Fixed(config.replication),
                )
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
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
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
