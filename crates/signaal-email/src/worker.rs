//! The email worker: polls a drop folder (Maildir, mbox, `.eml`) and publishes new messages.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use signaal_bus::{DeadLetter, Publisher};
use signaal_source::{commit, poll_loop, Batch, Skip, SourceError, Stats};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::folder::{FolderError, Messages};
use crate::parse::{parse_received, Outcome, Rules, QUOTE_STRIP_FALLBACK};

/// Messages read per commit: bounds memory and the work a crash can make us redo.
const CHUNK: usize = 500;

#[derive(Debug, Clone)]
pub struct EmailSource {
    /// Source name: appears on every signal and keys the cursor.
    pub name: String,
    pub path: PathBuf,
    pub poll_interval: Duration,
    pub rules: Rules,
}

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error(transparent)]
    Folder(#[from] FolderError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
}

/// Parses found messages into a batch. Pure apart from the clock (`received_at`).
pub fn to_batch(source: &str, found: Vec<crate::folder::Found>, rules: &Rules) -> Batch {
    metrics::counter!("signaal_email_messages_fetched_total", "source" => source.to_string())
        .increment(found.len() as u64);
    let mut batch = Batch::default();
    let mut fallbacks = 0u64;
    for f in found {
        let outcome = match rules.too_large(f.size) {
            Some(reason) => Outcome::Rejected(reason),
            None => parse_received(&f.bytes, source, rules, f.received),
        };
        let mark = match outcome {
            Outcome::Signal(mut s) => {
                if s.meta.contains_key(QUOTE_STRIP_FALLBACK) {
                    fallbacks += 1;
                }
                s.meta.insert("file".into(), Value::from(f.key.clone()));
                let id = s.id.clone();
                batch.signals.push(*s);
                id
            }
            Outcome::Skipped(reason) => {
                batch.skipped.push(Skip::new(reason, f.key.clone()));
                format!("skipped:{reason}")
            }
            Outcome::Rejected(reason) => {
                batch.dead_letters.push(DeadLetter {
                    key: None,
                    payload: f.bytes,
                    reason,
                    origin: f.key.clone(),
                    worker: "email",
                    source: None,
                });
                "dead_letter".to_string()
            }
        };
        batch.checkpoints.push((f.key, mark));
    }
    if fallbacks > 0 {
        // Stripping quotes left no text, so the whole body was kept: a stripper to improve.
        metrics::counter!("signaal_email_quote_strip_fallback_total", "source" => source.to_string())
            .increment(fallbacks);
    }
    batch
}

/// Reads every message under `path` for the one-shot import, handing on a batch per 500
/// messages: an mbox archive of any size is never held whole.
pub fn read_path_chunks<E: From<FolderError>>(
    source: &str,
    path: &Path,
    rules: &Rules,
    mut emit: impl FnMut(Batch) -> Result<(), E>,
) -> Result<(), E> {
    let mut messages = Messages::new(path, &|_| false, rules.max_bytes)?;
    loop {
        let found = messages.chunk(CHUNK)?;
        if found.is_empty() {
            return Ok(());
        }
        emit(to_batch(source, found, rules))?;
    }
}

/// Every message under `path` in one batch (small folders: samples, tests).
pub fn read_path(source: &str, path: &Path, rules: &Rules) -> Result<Batch, FolderError> {
    let mut all = Batch::default();
    read_path_chunks(source, path, rules, |b| {
        all.signals.extend(b.signals);
        all.dead_letters.extend(b.dead_letters);
        all.skipped.extend(b.skipped);
        all.checkpoints.extend(b.checkpoints);
        Ok::<_, FolderError>(())
    })?;
    Ok(all)
}

/// One pass over the folder: everything not yet checkpointed is published, in chunks.
pub async fn poll_once(
    cfg: &EmailSource,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, EmailError> {
    let mut total = Stats::default();
    let done = store.cursors(&cfg.name).await?;
    let skip = |k: &str| done.contains_key(k);
    // One walk over the folder per pass, a chunk at a time: an mbox is read once, not once per
    // chunk.
    let mut messages = Messages::new(&cfg.path, &skip, cfg.rules.max_bytes)?;
    loop {
        let found = messages.chunk(CHUNK)?;
        if found.is_empty() {
            return Ok(total);
        }
        let batch = to_batch(&cfg.name, found, &cfg.rules);
        total += commit(&cfg.name, batch, publisher, store).await?;
    }
}

pub async fn run(
    cfg: EmailSource,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) {
    tracing::info!(source = %cfg.name, path = %cfg.path.display(), "email source started");
    poll_loop(&cfg.name, cfg.poll_interval, &shutdown, || async {
        poll_once(&cfg, &publisher, &store)
            .await
            .map_err(|e| match e {
                EmailError::Source(s) => s,
                EmailError::Store(s) => SourceError::Store(s),
                EmailError::Folder(f) => {
                    tracing::warn!(source = %cfg.name, error = %f, "cannot read mail folder");
                    SourceError::Input(f.to_string())
                }
            })
    })
    .await;
}
