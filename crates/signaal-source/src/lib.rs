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

use signaal_bus::{DeadLetter, Publisher, MAX_RAW_BYTES};
use signaal_core::{Channel, Signal};
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
    pub skipped: Vec<Skip>,
    /// Cursor entries to write once everything above is durable.
    pub checkpoints: Vec<(String, String)>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.signals.is_empty() && self.dead_letters.is_empty() && self.checkpoints.is_empty()
    }
}

/// An item that is not a signal, and why: `reason` is a fixed snake_case word (the metric label),
/// `item` names what was passed over (a file, a row, a post id) for `import --explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub reason: &'static str,
    pub item: String,
}

impl Skip {
    pub fn new(reason: &'static str, item: impl Into<String>) -> Self {
        Skip {
            reason,
            item: item.into(),
        }
    }
}

/// Makes every signal fit in one Kafka message: long texts and subjects are cut
/// ([`Signal::fit`], logged and counted in `signaal_source_truncated_total`), and a signal still
/// over [`MAX_RAW_BYTES`] as JSON (thousands of attachments, say) moves to `dead_letters` with
/// the reason. Without this one oversized item would fail every publish of its batch, and the
/// source would retry it forever.
pub fn fit(signals: &mut Vec<Signal>, dead_letters: &mut Vec<DeadLetter>) {
    signals.retain_mut(|signal| {
        if signal.fit() {
            metrics::counter!("signaal_source_truncated_total", "source" => signal.source.clone())
                .increment(1);
            tracing::warn!(source = %signal.source, id = %signal.id, truncated = ?signal.meta.get("truncated"),
                "signal text cut to fit one message");
        }
        // Nearly every signal is far below the limit: a cheap bound spares serialising it twice.
        if json_len_bound(signal) <= MAX_RAW_BYTES {
            return true;
        }
        let bytes = json_len(signal);
        if bytes <= MAX_RAW_BYTES {
            return true;
        }
        dead_letters.push(DeadLetter {
            key: Some(signal.id.clone().into_bytes()),
            payload: serde_json::to_vec(signal).unwrap_or_default(),
            reason: format!(
                "signal is {bytes} bytes as JSON, over the {MAX_RAW_BYTES}-byte limit for one message"
            ),
            origin: format!("{}:{}", signal.source, signal.source_id),
            worker: match signal.channel {
                Channel::Email => "email",
                Channel::Phone => "phone",
                Channel::Twitter | Channel::Facebook => "social",
                // No worker of its own: any other source.
                Channel::Internal => "source",
            },
            source: None,
        });
        false
    });
}

/// At least the length of `signal` as JSON: a string byte becomes at most six (`\u001f`), field
/// names, dates, numbers and punctuation are counted generously.
fn json_len_bound(signal: &Signal) -> usize {
    fn string(s: &str) -> usize {
        6 * s.len() + 2
    }
    fn value(v: &serde_json::Value) -> usize {
        match v {
            serde_json::Value::String(s) => string(s),
            serde_json::Value::Array(items) => {
                2 + items.iter().map(|i| value(i) + 1).sum::<usize>()
            }
            serde_json::Value::Object(map) => {
                2 + map
                    .iter()
                    .map(|(k, v)| string(k) + value(v) + 2)
                    .sum::<usize>()
            }
            // Numbers (at most 24 characters as serde_json writes them), booleans, null.
            _ => 32,
        }
    }
    let strings = [
        Some(signal.id.as_str()),
        Some(signal.source.as_str()),
        Some(signal.source_id.as_str()),
        signal.author.as_deref(),
        Some(signal.text.as_str()),
        signal.subject.as_deref(),
        signal.thread_id.as_deref(),
    ];
    // Field names, the channel, two timestamps and punctuation: under 512 bytes.
    512 + strings.iter().flatten().map(|s| string(s)).sum::<usize>()
        + signal
            .meta
            .iter()
            .map(|(k, v)| string(k) + value(v) + 2)
            .sum::<usize>()
}

/// Length of `signal` as JSON, without building the text.
fn json_len(signal: &Signal) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail; a signal that cannot be serialised is not published.
    match serde_json::to_writer(&mut count, signal) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
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
    mut batch: Batch,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    fit(&mut batch.signals, &mut batch.dead_letters);
    publisher.publish_raw(&batch.signals).await?;
    let dead_lettered = batch.dead_letters.len();
    publisher.dead_letters(batch.dead_letters).await?;
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
    for skip in &batch.skipped {
        metrics::counter!("signaal_source_skipped_total", "source" => source.to_string(), "reason" => skip.reason)
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

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn signal(channel: Channel, source_id: &str, text: &str) -> Signal {
        Signal::new(channel, "src", source_id, Utc::now(), text)
    }

    #[test]
    fn fit_cuts_long_texts_and_dead_letters_what_still_does_not_fit() {
        let mut huge_meta = signal(Channel::Email, "<many@x>", "zie bijlagen");
        let attachments: Vec<serde_json::Value> = (0..20_000)
            .map(|i| serde_json::json!({"name": format!("scan-{i:05}.pdf"), "type": "application/pdf", "size": 1}))
            .collect();
        huge_meta
            .meta
            .insert("attachments".into(), attachments.into());
        let mut signals = vec![
            signal(Channel::Phone, "K-1", "kort"),
            signal(Channel::Email, "<long@x>", &"a".repeat(3 * MAX_RAW_BYTES)),
            huge_meta,
        ];
        let mut dead = Vec::new();
        fit(&mut signals, &mut dead);

        let kept: Vec<(&str, usize)> = signals
            .iter()
            .map(|s| (s.source_id.as_str(), s.text.len()))
            .collect();
        assert_eq!(
            kept,
            [("K-1", 4), ("<long@x>", signaal_core::MAX_TEXT_BYTES)]
        );
        assert_eq!(dead.len(), 1);
        let letter = &dead[0];
        assert_eq!(
            (letter.origin.as_str(), letter.worker),
            ("src:<many@x>", "email")
        );
        assert!(
            letter.reason.starts_with("signal is ")
                && letter.reason.ends_with(&format!(
                    "over the {MAX_RAW_BYTES}-byte limit for one message"
                )),
            "{}",
            letter.reason
        );
        // The payload is the signal as JSON; the publisher keeps its beginning.
        assert!(letter.payload.len() > MAX_RAW_BYTES);
        assert!(letter.payload.starts_with(b"{\"id\":"));
    }

    #[test]
    fn the_cheap_bound_is_never_below_the_real_length() {
        let mut worst = signal(Channel::Twitter, "1", "\u{1}\"\\ é 😀");
        worst.author = Some("\u{2}".repeat(10));
        worst.subject = Some("\n".repeat(10));
        worst.meta.insert(
            "nested".into(),
            serde_json::json!({"\u{3}": [1.5e300, -12345678901234567i64, true, null, "\u{4}"], "": {}}),
        );
        for s in [signal(Channel::Phone, "K-1", ""), worst] {
            let exact = serde_json::to_vec(&s)
                .map(|v| v.len())
                .unwrap_or(usize::MAX);
            assert_eq!(json_len(&s), exact);
            assert!(
                json_len_bound(&s) >= exact,
                "{} < {exact}",
                json_len_bound(&s)
            );
        }
    }
}
