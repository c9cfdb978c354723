//! The classifier worker: `signals.raw` → classify → store + `signals.classified`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use signaal_bus::{BusConfig, Consumer, DeadLetter, Delivery, Publisher};
use signaal_core::{Channel, ClassifiedEnvelope, RawEnvelope, Signal};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::{calls, Pipeline};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Bus(#[from] signaal_bus::BusError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
    #[error("classification task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// Decodes, classifies, stores and publishes one batch. Undecodable messages go to the DLQ.
pub async fn handle_batch(
    batch: Vec<Delivery>,
    pipeline: &Arc<Pipeline>,
    publisher: &Publisher,
    store: &Store,
) -> Result<(), WorkerError> {
    let mut raw = Vec::with_capacity(batch.len());
    let mut undecodable = Vec::new();
    for d in batch {
        match RawEnvelope::decode(&d.payload) {
            Ok(mut env) => {
                // signaal's sources cut texts already; another producer may not have, and the
                // classified envelope must still fit in one message.
                env.signal.fit();
                raw.push(env.signal)
            }
            Err(error) => {
                undecodable.push(DeadLetter::from_delivery(
                    d,
                    error.to_string(),
                    "classifier",
                ));
            }
        }
    }
    publisher.dead_letters(undecodable).await?;
    if raw.is_empty() {
        return Ok(());
    }
    let previous = previous_calls(&raw, pipeline, store).await?;
    // Redaction and classification are CPU-bound: keep them off the async runtime's threads.
    let p = Arc::clone(pipeline);
    let classified: Vec<ClassifiedEnvelope> = tokio::task::spawn_blocking(move || {
        raw.into_iter()
            .zip(previous)
            .map(|(s, before)| p.process_with(s, before))
            .collect()
    })
    .await?;
    let inserted = store.save_classified(&classified).await?;
    publisher.publish_classified(&classified).await?;
    metrics::counter!("signaal_classifier_signals_total").increment(classified.len() as u64);
    metrics::counter!("signaal_store_signals_inserted_total").increment(inserted);
    Ok(())
}

/// When each phone signal's caller called before (within the repeat window), from the register
/// and the batch itself; `None` for everything else.
async fn previous_calls(
    raw: &[Signal],
    pipeline: &Pipeline,
    store: &Store,
) -> Result<Vec<Option<DateTime<Utc>>>, WorkerError> {
    let days = pipeline.calls.repeat_days;
    let batch: Vec<(Option<String>, DateTime<Utc>)> = raw
        .iter()
        .map(|s| {
            let author = s
                .author
                .as_deref()
                .filter(|_| s.channel == Channel::Phone && days > 0)
                .map(|a| pipeline.pseudonym(a));
            (author, s.occurred_at)
        })
        .collect();
    let mut authors: Vec<String> = batch.iter().filter_map(|(a, _)| a.clone()).collect();
    if authors.is_empty() {
        return Ok(vec![None; raw.len()]);
    }
    authors.sort_unstable();
    authors.dedup();
    let earliest = batch.iter().map(|(_, t)| *t).min().unwrap_or_else(Utc::now);
    let since = earliest - chrono::Duration::days(i64::from(days));
    let known = store
        .author_times(Channel::Phone.as_str(), &authors, since)
        .await?;
    Ok(calls::previous_calls(&batch, &known, days))
}

pub async fn run(
    bus: &BusConfig,
    pipeline: Arc<Pipeline>,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let consumer = Consumer::new(bus, &bus.group("classifier"), &[bus.topics.raw.as_str()])?;
    tracing::info!(topic = %bus.topics.raw, "classifier started");
    consumer
        .run(500, Duration::from_millis(100), &shutdown, |batch| {
            let (c, p, s) = (&pipeline, &publisher, &store);
            async move { handle_batch(batch, c, p, s).await }
        })
        .await?;
    publisher.flush(Duration::from_secs(10));
    tracing::info!("classifier stopped");
    Ok(())
}
