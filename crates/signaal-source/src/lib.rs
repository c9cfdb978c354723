//! What every source worker does after reading its input, in the one order that loses nothing:
//! publish the signals, wait until Kafka acknowledged all of them, send rejects to the
//! dead-letter topic, and only then record the source's progress in the store.
//!
//! A crash anywhere before the checkpoint means the same items are read again next time; their
//! deterministic ids make the replay collapse downstream.

pub mod secret;

pub use secret::{Secret, SecretError};

use std::future::Future;
use std::time::Duration;

use signaal_bus::{DeadLetter, Publisher};
use signaal_core::Signal;
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Bus(#[from] signaal_bus::BusError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
    /// The source's own input could not be read (folder missing, HTTP API down, …).
    #[error("{0}")]
    Input(String),
}

/// The result of reading one chunk of input.
#[derive(Debug, Default)]
pub struct Batch {
    pub signals: Vec<Signal>,
    pub dead_letters: Vec<DeadLetter>,
    /// Items that are not signals (auto-replies, …), with the reason.
    pub skipped: Vec<&'static str>,
    /// Cursor entries to write once everything above is durable.
    pub checkpoints: Vec<(String, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty() && self.dead_letters.is_empty() && self.checkpoints.is_empty()
    }
}

/// Counts from one commit, for logs and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub published: usize,
    pub dead_lettered: usize,
    pub skipped: usize,
}

impl std::ops::AddAssign for Stats {
    fn add_assign(&mut self, o: Stats) {
        self.published += o.published;
        self.dead_lettered += o.dead_lettered;
        self.skipped += o.skipped;
    }
}

/// Publishes, dead-letters, then checkpoints `batch` for source `source`.
pub async fn commit(
    source: &str,
    batch: Batch,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    publisher.publish_raw(&batch.signals).await?;
    let dead_lettered = batch.dead_letters.len();
    for letter in batch.dead_letters {
        publisher.dead_letter(letter).await?;
    }
    store.set_cursors(source, &batch.checkpoints).await?;
    let stats = Stats {
        published: batch.signals.len(),
        dead_lettered,
        skipped: batch.skipped.len(),
    };
    metrics::counter!("signaal_source_signals_published_total", "source" => source.to_string())
        .increment(stats.published as u64);
    metrics::counter!("signaal_source_dead_letters_total", "source" => source.to_string())
        .increment(stats.dead_lettered as u64);
    for reason in &batch.skipped {
        metrics::counter!("signaal_source_skipped_total", "source" => source.to_string(), "reason" => *reason)
            .increment(1);
    }
    if stats != Stats::default() {
        tracing::info!(
            source,
            published = stats.published,
            dead_lettered = stats.dead_lettered,
            skipped = stats.skipped,
            "source batch committed"
        );
    }
    Ok(stats)
}

/// Runs `poll` every `interval` until `shutdown`. A failed poll is logged and retried at the next
/// tick: a broker or database outage delays ingestion but loses nothing.
pub async fn poll_loop<F, Fut>(
    source: &str,
    interval: Duration,
    shutdown: &CancellationToken,
    mut poll: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Stats, SourceError>>,
{
    loop {
        let result = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = poll() => r,
        };
        match result {
            Ok(_) => record_poll_success(source),
            Err(error) => {
                record_poll_failure(source);
                tracing::warn!(source, %error, "poll failed; retrying at the next interval");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    tracing::info!(source, "source stopped");
}

/// Sets `signaal_source_last_poll_timestamp_seconds` to now: the source read its input and
/// committed everything it found.
pub fn record_poll_success(source: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    metrics::gauge!("signaal_source_last_poll_timestamp_seconds", "source" => source.to_string())
        .set(now);
}

/// Counts a failed poll in `signaal_source_poll_failures_total`.
pub fn record_poll_failure(source: &str) {
    metrics::counter!("signaal_source_poll_failures_total", "source" => source.to_string())
        .increment(1);
}
