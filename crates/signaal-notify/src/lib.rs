//! Spike-alert notifiers. The alerter stores each alert event with the names of the notifiers
//! that want it ([`NotifyConfig::sinks_for`]) in the register's outbox, in the same transaction
//! as the event; [`dispatch`] delivers from there: a signed JSON webhook, Slack and Teams
//! incoming webhooks, Alertmanager's `POST /api/v2/alerts`. A notifier that is down is retried
//! with backoff, so an alert is never lost to an outage, and a delivery is marked sent in the
//! register, so a restart does not send it again.
//!
//! The wire formats are pure functions in [`deliver`] (`webhook_body`, `signature`,
//! `slack_message`, `teams_card`, `alertmanager_alerts`); [`deliver::Notifier`] posts them.

pub mod config;
pub mod deliver;
mod dispatch;

pub use config::{ConfigError, NotifyConfig, Sink, UrlConfig, WebhookConfig};
pub use deliver::{DeliveryError, Notifier, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};
pub use dispatch::dispatch;

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up the HTTP client: {0}")]
    Client(#[from] DeliveryError),
}
