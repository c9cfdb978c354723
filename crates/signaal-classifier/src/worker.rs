//! The classifier worker: `signals.raw` → classify → store + `signals.classified`.
//!
//! Three stages overlap, so the CPU classifies the next batch while the register and the broker
//! take the previous one:
//! 1. **prepare** (blocking pool, several batches at once): decode, [`Signal::normalise`],
//!    redact, classify. What cannot be decoded or is invalid becomes a dead letter.
//! 2. **store**: in batch order, repeat callers are looked up (in the register, and among the
//!    callers of batches still being written) and envelopes serialised (too large for Kafka →
//!    dead letter); then the batch is written in one statement, up to `writers` batches at once
//!    on separate connections.
//! 3. **publish** (one batch at a time, in order): classified records and the batch's dead
//!    letters in flight together; once Kafka acknowledged all of them the batch's offsets are
//!    stored. Offsets therefore move strictly in order and only past what is in the register and
//!    on Kafka.
//!
//! No record can stop the worker: when the register refuses a batch for a reason a retry cannot
//! fix (a data error, not a lost connection) the batch is split in halves until the records it
//! refuses are found; those are dead-lettered with the database's reason and the rest is stored.
//! A record Kafka refuses is dead-lettered with Kafka's reason. Transient failures retry the
//! stage with backoff; dead letters already sent are not sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signaal_bus::health::Liveness;
use signaal_bus::{
    is_fatal_kafka, is_transient_kafka, next_backoff, BusConfig, Consumer, DeadLetter, Delivery,
    Publisher, Record,
};
use signaal_core::{Channel, ClassifiedEnvelope, RawEnvelope};
use signaal_store::Store;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{calls, Pipeline};

const WORKER: &str = "classifier";

/// Largest classified envelope published. Kafka's producer refuses messages over 1,000,000
/// bytes by default; key and headers need a little room.
pub const MAX_CLASSIFIED_BYTES: usize = 960_000;

/// How the worker batches. `[classifier.worker]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Most messages per batch (one register transaction, one round of publishing).
    pub batch: usize,
    /// How long to wait for a batch to fill once its first message arrived.
    pub linger_ms: u64,
    /// Batches read ahead and being classified while earlier ones are stored and published.
    pub in_flight: usize,
    /// Batches written to the register at once, each on its own connection.
    pub writers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch: 300,
            linger_ms: 20,
            in_flight: 2,
            writers: 2,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Bus(#[from] signaal_bus::BusError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
    #[error("classification task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// Shutdown was requested while a stage was waiting to retry.
    #[error("stopped before the batch was done")]
    Stopped,
}

/// A batch on its way through the stages.
#[derive(Default)]
struct Batch {
    /// Topic and `(partition, offset)` of every message, to acknowledge them at the end.
    topic: String,
    positions: Vec<(i32, i64)>,
    /// Classified signals still to store and publish, with the message each came from
    /// (its original bytes go to the DLQ if the register or Kafka refuses it).
    envs: Vec<ClassifiedEnvelope>,
    sources: Vec<Delivery>,
    /// `envs[i]` serialised; filled by the store stage.
    payloads: Vec<Vec<u8>>,
    /// Dead letters not yet acknowledged by Kafka.
    dead: Vec<DeadLetter>,
    /// NUL characters removed from the batch's signals.
    nuls: usize,
}

impl Batch {
    fn refuse(&mut self, i: usize, reason: String) {
        self.envs.remove(i);
        if i < self.payloads.len() {
            self.payloads.remove(i);
        }
        let d = self.sources.remove(i);
        self.dead.push(DeadLetter::from_delivery(d, reason, WORKER));
    }
}

/// Stage 1: decode, check, redact and classify (CPU only).
fn prepare(deliveries: Vec<Delivery>, pipeline: &Pipeline) -> Batch {
    prepare_with(deliveries, |s| pipeline.process(s))
}

/// What a panic carried, for the dead letter's reason.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_string())
}

/// [`prepare`] with the classification step given. A record whose classification panics (a bug
/// the record's content triggers) is dead-lettered with the panic's message instead of taking
/// the worker, and every later record, down with it.
fn prepare_with(
    deliveries: Vec<Delivery>,
    process: impl Fn(signaal_core::Signal) -> ClassifiedEnvelope,
) -> Batch {
    let mut b = Batch {
        topic: deliveries
            .first()
            .map(|d| d.topic.clone())
            .unwrap_or_default(),
        positions: deliveries.iter().map(|d| (d.partition, d.offset)).collect(),
        ..Batch::default()
    };
    for d in deliveries {
        let mut signal = match RawEnvelope::decode(&d.payload) {
            Ok(env) => env.signal,
            Err(error) => {
                b.dead
                    .push(DeadLetter::from_delivery(d, error.to_string(), WORKER));
                continue;
            }
        };
        // signaal's sources cut texts already; another producer may not have, and the
        // classified envelope must still fit in one message.
        signal.fit();
        match signal.normalise() {
            Ok(nuls) => b.nuls += nuls,
            Err(error) => {
                b.dead
                    .push(DeadLetter::from_delivery(d, error.to_string(), WORKER));
                continue;
            }
        }
        // The classifier holds no state a panic could leave half-changed (it only reads its
        // automaton and counts metrics), so going on after one is sound.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| process(signal))) {
            Ok(env) => {
                b.envs.push(env);
                b.sources.push(d);
            }
            Err(panic) => {
                metrics::counter!("signaal_classifier_refused_total", "by" => "panic").increment(1);
                let reason = format!(
                    "classification failed (a bug; please report it with this record): {}",
                    panic_message(panic.as_ref())
                );
                b.dead.push(DeadLetter::from_delivery(d, reason, WORKER));
            }
        }
    }
    b
}

/// Phone callers of batches that are enriched but not yet in the register, so the repeat-caller
/// lookup of a later batch sees them while several batches are written at once.
#[derive(Default)]
struct Recent {
    calls: std::sync::Mutex<CallsByAuthor>,
}

/// Author pseudonym → when they called, the call's thread, and in which batch (its sequence
/// number).
type CallsByAuthor = HashMap<String, Vec<(DateTime<Utc>, Option<String>, u64)>>;

impl Recent {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallsByAuthor> {
        match self.calls.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Calls of `authors` known here (a snapshot: taken before the register is asked, so a
    /// batch that commits in between is seen by one or the other).
    fn of(&self, authors: &[String]) -> Vec<calls::Call> {
        let calls = self.lock();
        authors
            .iter()
            .filter_map(|a| calls.get(a).map(|times| (a, times)))
            .flat_map(|(a, times)| {
                times
                    .iter()
                    .map(move |(t, th, _)| (a.clone(), *t, th.clone()))
            })
            .collect()
    }

    fn add(&self, seq: u64, envs: &[ClassifiedEnvelope]) {
        let mut calls = self.lock();
        for s in envs.iter().map(|e| &e.signal) {
            if let (Channel::Phone, Some(a)) = (s.channel, &s.author) {
                calls
                    .entry(a.clone())
                    .or_default()
                    .push((s.occurred_at, s.thread_id.clone(), seq));
            }
        }
    }

    /// Batch `seq` is in the register now: the register answers for it.
    fn remove(&self, seq: u64) {
        self.lock().retain(|_, times| {
            times.retain(|(_, _, s)| *s != seq);
            !times.is_empty()
        });
    }
}

/// Logs a failed attempt, tells `/healthz`, and waits `backoff` (or returns `Stopped`).
async fn pause(
    stage: &'static str,
    error: &str,
    signals: usize,
    backoff: &mut Duration,
    liveness: Option<&Liveness>,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    if let Some(l) = liveness {
        l.failed(error);
    }
    tracing::warn!(%error, stage, signals, ?backoff, "batch stage failed; retrying");
    metrics::counter!("signaal_classifier_retries_total", "stage" => stage).increment(1);
    tokio::select! {
        _ = shutdown.cancelled() => return Err(WorkerError::Stopped),
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = next_backoff(*backoff);
    Ok(())
}

/// Stage 2a, in batch order: repeat callers (from the register and from batches still being
/// written), then every envelope serialised; one too large for Kafka becomes a dead letter.
async fn enrich(
    b: &mut Batch,
    pipeline: &Arc<Pipeline>,
    store: &Store,
    recent: Option<&Recent>,
    liveness: Option<&Liveness>,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    let mut backoff = Duration::from_millis(100);
    let (previous, contacts) = loop {
        let lookups = async {
            let previous = previous_calls(&b.envs, pipeline, store, recent).await?;
            let contacts = repeat_contacts(&b.envs, pipeline, store, false).await?;
            Ok::<_, WorkerError>((previous, contacts))
        };
        match lookups.await {
            Ok(found) => break found,
            Err(error) => {
                let error = error.to_string();
                pause(
                    "lookup",
                    &error,
                    b.envs.len(),
                    &mut backoff,
                    liveness,
                    shutdown,
                )
                .await?;
            }
        }
    };
    let envs = std::mem::take(&mut b.envs);
    let p = Arc::clone(pipeline);
    let (envs, payloads) = tokio::task::spawn_blocking(move || {
        let mut envs = envs;
        let mut payloads = Vec::with_capacity(envs.len());
        for ((env, before), contacts) in envs.iter_mut().zip(previous).zip(contacts) {
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if before.is_some() {
                    p.calls.apply_repeat(
                        &p.classifier,
                        &env.signal,
                        before,
                        &mut env.classification,
                    );
                }
                p.score_impact(env, contacts);
                serde_json::to_vec(env)
                    .map_err(|e| format!("classified envelope cannot be serialised: {e}"))
            }));
            payloads.push(done.unwrap_or_else(|panic| {
                Err(format!(
                    "classification failed (a bug; please report it with this record): {}",
                    panic_message(panic.as_ref())
                ))
            }));
        }
        (envs, payloads)
    })
    .await?;
    b.envs = envs;
    b.payloads = Vec::with_capacity(payloads.len());
    let mut refused = Vec::new();
    for (i, payload) in payloads.into_iter().enumerate() {
        match payload {
            Ok(p) if p.len() <= MAX_CLASSIFIED_BYTES => b.payloads.push(p),
            Ok(p) => {
                refused.push((i, format!(
                    "classified envelope is {} bytes, over the {MAX_CLASSIFIED_BYTES}-byte limit of one Kafka message",
                    p.len()
                )));
                b.payloads.push(Vec::new());
            }
            Err(reason) => {
                refused.push((i, reason));
                b.payloads.push(Vec::new());
            }
        }
    }
    for (i, reason) in refused.into_iter().rev() {
        metrics::counter!("signaal_classifier_refused_total", "by" => "size").increment(1);
        b.refuse(i, reason);
    }
    Ok(())
}

/// Stage 2b: the batch into the register, retried while the failure is transient. When the
/// register refuses it for a reason a retry cannot fix, the failing range is halved until the
/// refused records are found; they become dead letters with the database's reason.
async fn write(
    b: &mut Batch,
    store: &Store,
    liveness: Option<&Liveness>,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    let mut backoff = Duration::from_millis(100);
    let mut ranges = vec![(0, b.envs.len())];
    let mut refused: Vec<(usize, String)> = Vec::new();
    let mut inserted = 0;
    while let Some((from, to)) = ranges.pop() {
        if from == to {
            continue;
        }
        match store.save_classified(&b.envs[from..to]).await {
            Ok(n) => inserted += n,
            Err(error) if error.is_transient() => {
                // The same range again (what went in before is not added twice).
                ranges.push((from, to));
                let error = error.to_string();
                pause("store", &error, to - from, &mut backoff, liveness, shutdown).await?;
            }
            Err(error) if to - from == 1 => {
                refused.push((from, format!("the register refused the signal: {error}")));
            }
            Err(error) => {
                tracing::info!(%error, signals = to - from, "register refused a batch; splitting it to find the records");
                let mid = from + (to - from) / 2;
                ranges.push((mid, to));
                ranges.push((from, mid));
            }
        }
    }
    refused.sort_by_key(|(i, _)| *i);
    for (i, reason) in refused.into_iter().rev() {
        metrics::counter!("signaal_classifier_refused_total", "by" => "store").increment(1);
        b.refuse(i, reason);
    }
    metrics::counter!("signaal_store_signals_inserted_total").increment(inserted);
    Ok(())
}

/// Stage 3: classified records and dead letters to Kafka; returns once Kafka has all of them.
async fn publish_batch(
    b: &mut Batch,
    publisher: &Publisher,
    liveness: Option<&Liveness>,
    shutdown: &CancellationToken,
) -> Result<(), WorkerError> {
    let mut backoff = Duration::from_millis(100);
    let mut records: Vec<Record> = b
        .envs
        .iter()
        .zip(std::mem::take(&mut b.payloads))
        .map(|(env, payload)| {
            publisher.classified_record(&env.signal.id, env.signal.channel.as_str(), payload)
        })
        .collect();
    let mut sources = std::mem::take(&mut b.sources);
    let published = records.len();
    loop {
        let dead = std::mem::take(&mut b.dead);
        let ndead = dead.len();
        let (results, dead_results) = tokio::join!(
            publisher.publish_each(&records),
            publisher.dead_letters_each(dead)
        );
        let fatal = results
            .iter()
            .chain(dead_results.iter().map(|(_, r)| r))
            .find_map(|r| r.as_ref().err().filter(|e| is_fatal_kafka(e)));
        if let Some(error) = fatal {
            // Nothing sent from here on can succeed; a restart makes a new producer, and the
            // batch's offsets are not stored, so it is read again.
            return Err(WorkerError::Bus(signaal_bus::BusError::Delivery {
                topic: publisher.topics().classified.clone(),
                source: error.clone(),
            }));
        }
        let mut failed = None;
        for (letter, result) in dead_results {
            if let Err(error) = result {
                // Only what Kafka did not acknowledge goes again: each dead letter once.
                failed.get_or_insert_with(|| error.to_string());
                b.dead.push(letter);
            }
        }
        let mut retry_records = Vec::new();
        let mut retry_sources = Vec::new();
        for ((result, record), source) in results.into_iter().zip(records).zip(sources) {
            match result {
                Ok(()) => {}
                Err(error) if is_transient_kafka(&error) => {
                    failed.get_or_insert_with(|| error.to_string());
                    retry_records.push(record);
                    retry_sources.push(source);
                }
                Err(error) => {
                    metrics::counter!("signaal_classifier_refused_total", "by" => "kafka")
                        .increment(1);
                    b.dead.push(DeadLetter::from_delivery(
                        source,
                        format!("kafka refused the classified signal: {error}"),
                        WORKER,
                    ));
                }
            }
        }
        records = retry_records;
        sources = retry_sources;
        if records.is_empty() && b.dead.is_empty() {
            metrics::counter!("signaal_classifier_signals_total").increment(published as u64);
            if ndead > 0 {
                tracing::debug!(dead_letters = ndead, "batch dead letters acknowledged");
            }
            return Ok(());
        }
        if let Some(error) = failed {
            if let Some(l) = liveness {
                l.failed(&error);
            }
            tracing::warn!(%error, records = records.len(), dead_letters = b.dead.len(), ?backoff, "publishing failed; retrying what Kafka has not acknowledged");
            metrics::counter!("signaal_classifier_retries_total", "stage" => "publish")
                .increment(1);
            tokio::select! {
                _ = shutdown.cancelled() => return Err(WorkerError::Stopped),
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = next_backoff(backoff);
        }
    }
}

/// Runs one batch through every stage (no offsets: the caller acknowledges). For tests and
/// tools; [`run`] overlaps the stages of consecutive batches.
pub async fn handle_batch(
    batch: Vec<Delivery>,
    pipeline: &Arc<Pipeline>,
    publisher: &Publisher,
    store: &Store,
) -> Result<(), WorkerError> {
    let p = Arc::clone(pipeline);
    let mut b = tokio::task::spawn_blocking(move || prepare(batch, &p)).await?;
    let never = CancellationToken::new();
    enrich(&mut b, pipeline, store, None, None, &never).await?;
    write(&mut b, store, None, &never).await?;
    publish_batch(&mut b, publisher, None, &never).await
}

/// When each phone signal's caller (its pseudonym) called before, within the repeat window,
/// from the register and the batch itself; `None` for everything else.
async fn previous_calls(
    envs: &[ClassifiedEnvelope],
    pipeline: &Pipeline,
    store: &Store,
    recent: Option<&Recent>,
) -> Result<Vec<Option<DateTime<Utc>>>, WorkerError> {
    let days = pipeline.calls.repeat_days;
    let batch: Vec<(Option<String>, DateTime<Utc>, Option<String>)> = envs
        .iter()
        .map(|e| {
            let s = &e.signal;
            let author = s
                .author
                .clone()
                .filter(|_| s.channel == Channel::Phone && days > 0);
            (author, s.occurred_at, s.thread_id.clone())
        })
        .collect();
    let mut authors: Vec<String> = batch.iter().filter_map(|(a, _, _)| a.clone()).collect();
    if authors.is_empty() {
        return Ok(vec![None; envs.len()]);
    }
    authors.sort_unstable();
    authors.dedup();
    let earliest = batch
        .iter()
        .map(|(_, t, _)| *t)
        .min()
        .unwrap_or_else(Utc::now);
    let since = earliest - chrono::Duration::days(i64::from(days));
    let mut known = recent.map(|r| r.of(&authors)).unwrap_or_default();
    known.extend(
        store
            .author_calls(Channel::Phone.as_str(), &authors, since)
            .await?,
    );
    Ok(calls::previous_calls(&batch, &known, days))
}

/// For each signal, how many earlier signals its author sent within the contact window, on any
/// channel: those in the register and those earlier in the batch (the impact score's repeat
/// contacts). Batches still being written are not seen: a customer writing twice within a
/// second may count one contact short. When the batch is stored already (reclassification),
/// the register alone says it.
async fn repeat_contacts(
    envs: &[ClassifiedEnvelope],
    pipeline: &Pipeline,
    store: &Store,
    batch_stored: bool,
) -> Result<Vec<u32>, WorkerError> {
    let window = chrono::Duration::days(i64::from(pipeline.contact_window_days));
    let mut authors: Vec<String> = envs
        .iter()
        .filter_map(|e| e.signal.author.clone())
        .collect();
    if authors.is_empty() || pipeline.contact_window_days == 0 {
        return Ok(vec![0; envs.len()]);
    }
    authors.sort_unstable();
    authors.dedup();
    let times = envs.iter().map(|e| e.signal.occurred_at);
    let (Some(earliest), Some(latest)) = (times.clone().min(), times.max()) else {
        return Ok(vec![0; envs.len()]);
    };
    let mut known: HashMap<String, Vec<DateTime<Utc>>> = HashMap::new();
    for (a, t) in store
        .author_contacts(&authors, earliest - window, latest)
        .await?
    {
        known.entry(a).or_default().push(t);
    }
    Ok(envs
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let Some(a) = e.signal.author.as_deref() else {
                return 0;
            };
            let t = e.signal.occurred_at;
            let earlier = |u: &DateTime<Utc>| *u < t && *u >= t - window;
            let stored = known
                .get(a)
                .map_or(0, |ts| ts.iter().filter(|u| earlier(u)).count());
            let in_batch = envs[..i]
                .iter()
                .filter(|_| !batch_stored)
                .filter(|o| {
                    o.signal.author.as_deref() == Some(a)
                        && o.signal.id != e.signal.id
                        && earlier(&o.signal.occurred_at)
                })
                .count();
            u32::try_from(stored + in_batch).unwrap_or(u32::MAX)
        })
        .collect())
}

/// Classifies stored signals again with the pipeline's taxonomy, as the worker would have:
/// the stored (redacted) text, the same repeat-call rule and impact score from the register.
/// Returns each stored envelope with its new classification, for
/// [`Store::replace_classifications`].
pub async fn reclassify(
    pipeline: &Pipeline,
    store: &Store,
    stored: Vec<ClassifiedEnvelope>,
) -> Result<Vec<(ClassifiedEnvelope, ClassifiedEnvelope)>, WorkerError> {
    let mut fresh: Vec<ClassifiedEnvelope> = stored
        .iter()
        .map(|old| pipeline.reclassify(old.signal.clone()))
        .collect();
    let previous = previous_calls(&fresh, pipeline, store, None).await?;
    let contacts = repeat_contacts(&fresh, pipeline, store, true).await?;
    for ((env, before), contacts) in fresh.iter_mut().zip(previous).zip(contacts) {
        if before.is_some() {
            pipeline.calls.apply_repeat(
                &pipeline.classifier,
                &env.signal,
                before,
                &mut env.classification,
            );
        }
        pipeline.score_impact(env, contacts);
    }
    Ok(stored.into_iter().zip(fresh).collect())
}

pub async fn run(
    bus: &BusConfig,
    settings: Settings,
    pipeline: Arc<Pipeline>,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), WorkerError> {
    let consumer = Consumer::new(bus, &bus.group("classifier"), &[bus.topics.raw.as_str()])?;
    tracing::info!(topic = %bus.topics.raw, ?settings, "classifier started");
    let (prepared_tx, mut prepared_rx) =
        mpsc::channel::<JoinHandle<Batch>>(settings.in_flight.max(1));
    // Register writes of consecutive batches overlap on separate connections: one PostgreSQL
    // backend working a batch at a time was the pipeline's slowest stage.
    let (stored_tx, mut stored_rx) =
        mpsc::channel::<JoinHandle<(Batch, Result<(), WorkerError>)>>(settings.writers.max(1));
    let linger = Duration::from_millis(settings.linger_ms);
    let liveness = consumer.liveness();
    let recent = Arc::new(Recent::default());

    let read = async {
        while !shutdown.is_cancelled() {
            let deliveries = consumer
                .next_batch(settings.batch.max(1), linger, &shutdown)
                .await?;
            if deliveries.is_empty() {
                continue;
            }
            let p = Arc::clone(&pipeline);
            let handle = tokio::task::spawn_blocking(move || prepare(deliveries, &p));
            if prepared_tx.send(handle).await.is_err() {
                break;
            }
        }
        drop(prepared_tx);
        Ok::<(), WorkerError>(())
    };
    let store_stage = async {
        let mut seq = 0u64;
        while let Some(handle) = prepared_rx.recv().await {
            let mut b = handle.await?;
            if b.nuls > 0 {
                metrics::counter!("signaal_classifier_nul_removed_total").increment(b.nuls as u64);
                tracing::info!(
                    removed = b.nuls,
                    "NUL characters removed from signals (PostgreSQL cannot store them)"
                );
            }
            let enriched = enrich(
                &mut b,
                &pipeline,
                &store,
                Some(&recent),
                Some(liveness),
                &shutdown,
            )
            .await;
            match enriched {
                Ok(()) => {}
                Err(WorkerError::Stopped) => break,
                Err(e) => return Err(e),
            }
            seq += 1;
            recent.add(seq, &b.envs);
            let (store, recent, liveness, shutdown) = (
                store.clone(),
                Arc::clone(&recent),
                Arc::clone(liveness),
                shutdown.clone(),
            );
            let task = tokio::spawn(async move {
                let written = write(&mut b, &store, Some(&liveness), &shutdown).await;
                recent.remove(seq);
                (b, written)
            });
            if stored_tx.send(task).await.is_err() {
                break;
            }
        }
        // Batches still queued are not acknowledged: they are read again after a restart.
        prepared_rx.close();
        drop(stored_tx);
        Ok(())
    };
    let publish = async {
        while let Some(task) = stored_rx.recv().await {
            let (mut b, written) = task.await?;
            match written {
                Ok(()) => {}
                Err(WorkerError::Stopped) => break,
                Err(e) => return Err(e),
            }
            match publish_batch(&mut b, &publisher, Some(liveness), &shutdown).await {
                Ok(()) => {}
                Err(WorkerError::Stopped) => break,
                Err(e) => return Err(e),
            }
            let topic = b.topic.as_str();
            consumer.ack_offsets(b.positions.iter().map(|&(p, o)| (topic, p, o)));
        }
        // Stopped (or drained): a store stage waiting to hand over a batch must not wait forever.
        stored_rx.close();
        Ok(())
    };
    let outcome = tokio::try_join!(read, store_stage, publish);
    let committed = consumer.commit();
    publisher.flush(Duration::from_secs(10));
    outcome?;
    committed?;
    tracing::info!("classifier stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Classifier;
    use signaal_core::Signal;

    fn delivery(offset: i64, text: &str) -> Delivery {
        let signal = Signal::new(
            Channel::Email,
            "test",
            format!("<{offset}@example.nl>"),
            chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default(),
            text,
        );
        let mut payload = Vec::new();
        let written = RawEnvelope::write_json(&mut payload, &signal);
        assert!(written.is_ok(), "{written:?}");
        Delivery {
            topic: "signals.raw".into(),
            partition: 0,
            offset,
            key: None,
            payload,
            headers: Vec::new(),
        }
    }

    #[test]
    fn a_record_whose_classification_panics_is_dead_lettered_and_the_rest_goes_on(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let pipeline = Pipeline::new(Classifier::default_taxonomy()?, b"k")?;
        let deliveries = vec![
            delivery(1, "de brief is onduidelijk"),
            delivery(2, "BOOM"),
            delivery(3, "niemand neemt op"),
        ];
        let b = prepare_with(deliveries, |signal| {
            assert!(
                signal.text != "BOOM",
                "classifier bug triggered by this text"
            );
            pipeline.process(signal)
        });
        let kept: Vec<&str> = b.envs.iter().map(|e| e.signal.text.as_str()).collect();
        assert_eq!(kept, ["de brief is onduidelijk", "niemand neemt op"]);
        assert_eq!(b.sources.len(), 2);
        assert_eq!(b.positions.len(), 3, "every offset is still acknowledged");
        assert_eq!(b.dead.len(), 1);
        assert_eq!(b.dead[0].origin, "signals.raw/0/2");
        assert!(
            b.dead[0]
                .reason
                .contains("classifier bug triggered by this text"),
            "{}",
            b.dead[0].reason
        );
        Ok(())
    }
}
