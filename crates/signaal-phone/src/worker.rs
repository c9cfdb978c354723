//! The phone-log worker: watches an inbox folder of call-centre exports.

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use signaal_bus::{DeadLetter, Publisher};
use signaal_source::{
    commit, record_poll_failure, record_poll_success, Batch, Skip, SourceError, Stats,
};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::csv_export::{detect_delimiter, parse_rows, CsvRead, Row};
use crate::records::Limits;
use crate::{asterisk, decode, json_export, ExportFormat, Profile};

type JsonProfile = fn(&[u8], &str, &str, u64) -> Result<json_export::Page, String>;

/// Rows per commit.
const CHUNK: usize = 1000;

/// A file modified more recently than this may still be being written: it waits a poll.
const SETTLE: Duration = Duration::from_secs(2);

/// Why an export was not (completely) read.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The file itself is the problem (unreadable, no usable header): it goes to `failed/`.
    #[error("`{path}`: {reason}")]
    File { path: PathBuf, reason: String },
    /// Kafka or the store failed: the file stays and is resumed at the next poll.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// The file's error; the reason is cut to a readable size (it may quote a 50 MB header).
fn file_err(path: &Path) -> impl FnOnce(String) -> ExportError + '_ {
    move |reason| ExportError::File {
        path: path.to_path_buf(),
        reason: signaal_core::brief(&reason).into_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct PhoneSource {
    pub name: String,
    /// Inbox folder; finished files move to `inbox/done/`.
    pub inbox: PathBuf,
    pub format: ExportFormat,
    pub poll_interval: Duration,
}

fn io_err(path: &Path, e: std::io::Error) -> SourceError {
    SourceError::Input(format!("cannot read `{}`: {e}", path.display()))
}

/// SHA-256 of the file's bytes: the same export dropped twice resumes instead of duplicating.
pub fn fingerprint(path: &Path) -> std::io::Result<String> {
    Ok(fingerprints(path, None)?.full)
}

/// A file's fingerprint, and that of its first `prefix` bytes (when it has that many), in one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprints {
    pub full: String,
    pub prefix: Option<String>,
    /// Bytes hashed.
    pub len: u64,
    /// The file ends with a line break: its last row is whole.
    pub ends_with_newline: bool,
}

pub fn fingerprints(path: &Path, prefix: Option<u64>) -> std::io::Result<Fingerprints> {
    let mut f = BufReader::new(fs::File::open(path)?);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let (mut len, mut last, mut prefix_fp) = (0u64, None, None);
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        let mut chunk = &buf[..n];
        if let Some(p) = prefix.filter(|p| prefix_fp.is_none() && *p >= len && *p <= len + n as u64)
        {
            let cut = usize::try_from(p - len).unwrap_or(n);
            h.update(&chunk[..cut]);
            prefix_fp = Some(hex::encode(&h.clone().finalize()[..12]));
            chunk = &chunk[cut..];
        }
        h.update(chunk);
        len += n as u64;
        last = buf[..n].last().copied();
    }
    if prefix == Some(0) && prefix_fp.is_none() {
        prefix_fp = Some(hex::encode(&Sha256::new().finalize()[..12]));
    }
    Ok(Fingerprints {
        full: hex::encode(&h.finalize()[..12]),
        prefix: prefix_fp,
        len,
        ends_with_newline: last == Some(b'\n'),
    })
}

/// Where an earlier copy of a file that is appended to ended, so that a grown copy resumes after
/// its rows: stored as a cursor under [`growth_key`], `{bytes}:{fingerprint of them}:{rows}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrowthMark {
    pub len: u64,
    pub fingerprint: String,
    pub rows: u64,
}

impl GrowthMark {
    pub fn parse(s: &str) -> Option<GrowthMark> {
        let mut parts = s.splitn(3, ':');
        Some(GrowthMark {
            len: parts.next()?.parse().ok()?,
            fingerprint: parts.next()?.to_string(),
            rows: parts.next()?.parse().ok()?,
        })
    }
}

impl std::fmt::Display for GrowthMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.len, self.fingerprint, self.rows)
    }
}

/// The cursor key under which copies of one appended-to file meet: a hash of its first line
/// (the first call it ever logged), which every later copy starts with too. `None` for an empty
/// file.
pub fn growth_key(path: &Path) -> std::io::Result<Option<String>> {
    let mut first = Vec::new();
    BufReader::new(fs::File::open(path)?)
        .take(64 * 1024)
        .read_until(b'\n', &mut first)?;
    if first.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "grows:{}",
        hex::encode(&Sha256::digest(&first)[..12])
    )))
}

/// How far a read has come, for progress lines and bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Rows read so far in this run (after the checkpoint's skip).
    pub rows: u64,
    pub bytes: u64,
    pub total_bytes: u64,
}

/// Counts the bytes read through it.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// The rows of an export after the first `skip`, and the items it holds that are no signals.
type Opened = (Box<dyn Iterator<Item = Row> + Send>, Vec<Skip>);

fn open_rows(
    path: &Path,
    format: &ExportFormat,
    source: &str,
    fingerprint: &str,
    skip: u64,
    read: &Arc<AtomicU64>,
) -> Result<Opened, String> {
    let read_page = |profile: JsonProfile| -> Result<Opened, String> {
        // One API page per file: refused unread when it is larger than a page can be.
        let size = fs::metadata(path).map_err(cannot_read)?.len();
        if size > json_export::MAX_PAGE_BYTES as u64 {
            return Err(format!(
                "{size} bytes is more than one API page ({}-byte limit)",
                json_export::MAX_PAGE_BYTES
            ));
        }
        let bytes = fs::read(path).map_err(cannot_read)?;
        read.store(bytes.len() as u64, Ordering::Relaxed);
        let page = profile(&bytes, source, fingerprint, skip)?;
        Ok((Box::new(page.rows.into_iter()), page.skipped))
    };
    match format.profile {
        Profile::GenericCsv | Profile::AsteriskCdr | Profile::GenericNdjson => {}
        Profile::GenesysCloud => return read_page(json_export::genesys_rows),
        Profile::Twilio => return read_page(json_export::twilio_rows),
    }
    let mut head = Vec::with_capacity(64 * 1024);
    fs::File::open(path)
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(cannot_read)?;
    let encoding = decode::detect(&head);
    tracing::debug!(file = %path.display(), encoding = decode::name(encoding), "export encoding");
    if format.profile != Profile::GenericNdjson && looks_like_json(&head) {
        return Err(format!(
            "the file is JSON, not a CSV export for the `{}` profile (an API page is read by \
             `genesys_cloud` or `twilio`, one call per line by `generic_ndjson`)",
            profile_name(format.profile)
        ));
    }
    let file = Counting {
        inner: fs::File::open(path).map_err(cannot_read)?,
        read: Arc::clone(read),
    };
    let reader = decode::utf8_reader(BufReader::new(file), encoding).map_err(cannot_read)?;
    let limits = Limits::new(format.max_field_bytes);
    let zone = format.timezone;
    let rows: Box<dyn Iterator<Item = Row> + Send> = match format.profile {
        Profile::GenericNdjson => Box::new(json_export::ndjson_rows(
            BufReader::with_capacity(64 * 1024, reader),
            &format.mapping,
            zone,
            limits.max_line_bytes,
            source,
            fingerprint,
            skip,
        )),
        Profile::AsteriskCdr => Box::new(asterisk::parse_rows(reader, source, zone, limits, skip)),
        _ => Box::new(parse_rows(
            reader,
            CsvRead {
                delimiter: detect_delimiter(&head),
                zone,
                limits,
            },
            &format.mapping,
            source,
            fingerprint,
            skip,
        )?),
    };
    Ok((rows, Vec::new()))
}

/// The start of a JSON document (after a byte-order mark and white space): `{"`, `{}`, `[{`,
/// `[]`, `[` and a line break…
fn looks_like_json(head: &[u8]) -> bool {
    let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let mut it = head.iter().copied().filter(|b| !b.is_ascii_whitespace());
    matches!(
        (it.next(), it.next()),
        (Some(b'{'), Some(b'"' | b'}')) | (Some(b'['), Some(b'{' | b']' | b'"' | b'['))
    )
}

fn profile_name(p: Profile) -> &'static str {
    match p {
        Profile::GenericCsv => "generic_csv",
        Profile::AsteriskCdr => "asterisk_cdr",
        Profile::GenesysCloud => "genesys_cloud",
        Profile::Twilio => "twilio",
        Profile::GenericNdjson => "generic_ndjson",
    }
}

fn cannot_read(e: std::io::Error) -> String {
    format!("cannot read: {e}")
}

/// Reads a whole export into batches of `CHUNK` rows, calling `emit` for each (for the one-shot
/// import and the worker alike). Each batch's checkpoint is `(fingerprint, rows done)`.
pub fn read_export<F>(
    source: &str,
    path: &Path,
    format: &ExportFormat,
    skip: u64,
    emit: F,
) -> Result<(), ExportError>
where
    F: FnMut(Batch) -> Result<(), SourceError>,
{
    read_export_with_progress(source, path, format, skip, emit, |_| {})
}

/// [`read_export`], reporting progress after every batch to `progress`, and in the log every
/// five seconds (rows, rows/s, percent of the file).
pub fn read_export_with_progress<F, P>(
    source: &str,
    path: &Path,
    format: &ExportFormat,
    skip: u64,
    emit: F,
    progress: P,
) -> Result<(), ExportError>
where
    F: FnMut(Batch) -> Result<(), SourceError>,
    P: FnMut(Progress),
{
    let fp = fingerprint(path).map_err(|e| file_err(path)(format!("cannot read: {e}")))?;
    read_rows(source, path, fp, None, format, skip, emit, progress)
}

/// Where to leave a [`GrowthMark`] once a file that is appended to has been read.
struct Growth {
    key: String,
    len: u64,
    ends_with_newline: bool,
}

/// The reading itself, for a file whose fingerprint `fp` is known (hashing a large export twice
/// would read it twice). With `growth`, the last batch also leaves the file's [`GrowthMark`].
#[allow(clippy::too_many_arguments)]
fn read_rows<F, P>(
    source: &str,
    path: &Path,
    fp: String,
    growth: Option<Growth>,
    format: &ExportFormat,
    skip: u64,
    mut emit: F,
    mut progress: P,
) -> Result<(), ExportError>
where
    F: FnMut(Batch) -> Result<(), SourceError>,
    P: FnMut(Progress),
{
    let total_bytes = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let read = Arc::new(AtomicU64::new(0));
    let (rows, skipped) =
        open_rows(path, format, source, &fp, skip, &read).map_err(file_err(path))?;
    let started = std::time::Instant::now();
    let mut logged = started;
    let mut report = |rows: u64, last: bool| {
        let p = Progress {
            rows,
            bytes: read.load(Ordering::Relaxed).min(total_bytes),
            total_bytes,
        };
        progress(p);
        if logged.elapsed() >= Duration::from_secs(5)
            || (last && started.elapsed() >= Duration::from_secs(5))
        {
            logged = std::time::Instant::now();
            let secs = started.elapsed().as_secs_f64().max(1e-9);
            tracing::info!(
                source,
                file = %path.display(),
                rows,
                rows_per_second = (rows as f64 / secs) as u64,
                percent = format!("{:.1}", 100.0 * p.bytes as f64 / total_bytes.max(1) as f64),
                "reading export"
            );
        }
    };
    let mut batch = Batch {
        skipped,
        ..Batch::default()
    };
    let mut done = skip;
    // A quoted field still open at the end: the file may not be finished, so no growth mark.
    let mut unfinished = false;
    for row in rows {
        // Not `index + 1`: a merged Asterisk call holds back the rows of calls still open.
        done = done.max(row.rows_done);
        match row.result {
            Ok(mut s) => {
                s.meta
                    .insert("file".into(), path.display().to_string().into());
                s.meta.insert("line".into(), row.line.into());
                batch.signals.push(s);
            }
            Err(e) => {
                unfinished |= e.unfinished;
                batch.dead_letters.push(DeadLetter {
                    key: None,
                    payload: e.raw,
                    reason: e.reason,
                    origin: format!("{}:{}", path.display(), row.line),
                    worker: "phone",
                    source: None,
                });
            }
        }
        if batch.signals.len() + batch.dead_letters.len() >= CHUNK {
            batch.checkpoints.push((fp.clone(), done.to_string()));
            emit(std::mem::take(&mut batch))?;
            report(done - skip, false);
        }
    }
    if let Some(g) = growth.filter(|g| g.ends_with_newline && !unfinished) {
        let mark = GrowthMark {
            len: g.len,
            fingerprint: fp.clone(),
            rows: done,
        };
        batch.checkpoints.push((g.key, mark.to_string()));
    }
    batch.checkpoints.push((fp, format!("{done}:complete")));
    emit(batch)?;
    report(done - skip, true);
    Ok(())
}

/// Whether `path` has not changed for [`SETTLE`]: writers that neither use a temporary name nor
/// rename get that long to finish.
fn settled(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age >= SETTLE)
}

/// Moves `path` into `dir` under the inbox (created if needed).
fn move_into(path: &Path, dir: &Path) -> Result<PathBuf, SourceError> {
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let target = dir.join(path.file_name().unwrap_or_default());
    fs::rename(path, &target).map_err(|e| io_err(path, e))?;
    Ok(target)
}

fn pending_files(inbox: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(inbox).map_err(|e| io_err(inbox, e))? {
        let entry = entry.map_err(|e| io_err(inbox, e))?;
        let p = entry.path();
        let name = entry.file_name().to_string_lossy().to_lowercase();
        // `.tmp` / `.part` files are still being written; they are picked up once renamed.
        let export = [".csv", ".txt", ".json", ".ndjson", ".jsonl"]
            .iter()
            .any(|e| name.ends_with(e));
        if p.is_file() && export {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

pub async fn poll_once(
    cfg: &PhoneSource,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    Ok(poll_inbox(cfg, publisher, store).await?.0)
}

/// One pass over the inbox: what was committed, and how many files are still being written.
async fn poll_inbox(
    cfg: &PhoneSource,
    publisher: &Publisher,
    store: &Store,
) -> Result<(Stats, usize), SourceError> {
    let mut total = Stats::default();
    let mut waiting = 0;
    for path in pending_files(&cfg.inbox)? {
        if !settled(&path) {
            tracing::debug!(source = %cfg.name, file = %path.display(), "still being written");
            waiting += 1;
            continue;
        }
        match read_file(cfg, &path, publisher, store).await {
            Ok(stats) => {
                total += stats;
                move_into(&path, &cfg.inbox.join("done"))?;
            }
            Err(ExportError::File { reason, .. }) => {
                let target = move_into(&path, &cfg.inbox.join("failed"))?;
                let note = target.with_file_name(format!(
                    "{}.error",
                    target.file_name().unwrap_or_default().to_string_lossy()
                ));
                let reason = signaal_core::brief(&reason);
                fs::write(&note, format!("{reason}\n")).map_err(|e| io_err(&note, e))?;
                metrics::counter!("signaal_phone_files_failed_total", "source" => cfg.name.clone())
                    .increment(1);
                tracing::warn!(source = %cfg.name, file = %target.display(), %reason,
                    "export cannot be read; moved to failed/");
            }
            Err(ExportError::Source(e)) => return Err(e),
        }
    }
    Ok((total, waiting))
}

/// Reads one export from its checkpoint on, committing as batches fill.
async fn read_file(
    cfg: &PhoneSource,
    path: &Path,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, ExportError> {
    let cannot = |e: std::io::Error| file_err(path)(format!("cannot read: {e}"));
    // A file that is appended to (`Master.csv`) may be a grown copy of one read before.
    let growth_key = if cfg.format.profile.appended_to() {
        growth_key(path).map_err(cannot)?
    } else {
        None
    };
    let mark = match &growth_key {
        Some(key) => store
            .get_cursor(&cfg.name, key)
            .await
            .map_err(SourceError::from)?
            .as_deref()
            .and_then(GrowthMark::parse),
        None => None,
    };
    let prints = fingerprints(path, mark.as_ref().map(|m| m.len)).map_err(cannot)?;
    let fp = prints.full.clone();
    let cursor = store
        .get_cursor(&cfg.name, &fp)
        .await
        .map_err(SourceError::from)?;
    if cursor.as_deref().is_some_and(|c| c.ends_with(":complete")) {
        return Ok(Stats::default());
    }
    let mut skip: u64 = cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
    if let Some(m) = &mark {
        // The file begins with every byte of the copy read before: its rows are done.
        if skip < m.rows && prints.len > m.len && prints.prefix.as_deref() == Some(&m.fingerprint) {
            tracing::info!(source = %cfg.name, file = %path.display(), rows = m.rows,
                "a grown copy of a file read before: resuming after its rows");
            skip = m.rows;
        }
    }
    let growth = growth_key.map(|key| Growth {
        key,
        len: prints.len,
        ends_with_newline: prints.ends_with_newline,
    });
    tracing::info!(source = %cfg.name, file = %path.display(), skip, "reading export");
    // Parsing is synchronous and streams the file; batches are committed as they fill.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
    let (name, p, format) = (cfg.name.clone(), path.to_path_buf(), cfg.format.clone());
    let reader = tokio::task::spawn_blocking(move || {
        read_rows(
            &name,
            &p,
            fp,
            growth,
            &format,
            skip,
            |b| {
                tx.blocking_send(b)
                    .map_err(|_| SourceError::Input("worker stopped".into()))
            },
            |_| {},
        )
    });
    let mut total = Stats::default();
    while let Some(batch) = rx.recv().await {
        total += commit(&cfg.name, batch, publisher, store).await?;
    }
    reader
        .await
        .map_err(|e| SourceError::Input(format!("reader task failed: {e}")))??;
    Ok(total)
}

/// Watches the inbox until `shutdown`: file-system events wake the worker at once, a rescan every
/// `poll_interval` catches whatever events miss (network shares, a watcher that could not start),
/// and a file still being written is looked at again once it has had time to settle.
pub async fn run(
    cfg: PhoneSource,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) {
    tracing::info!(source = %cfg.name, inbox = %cfg.inbox.display(), "phone source started");
    let wake = Arc::new(tokio::sync::Notify::new());
    // Dropped (and the watch ended) when the loop ends.
    let _watcher = watch(&cfg, Arc::clone(&wake));
    loop {
        let next = match poll_inbox(&cfg, &publisher, &store).await {
            Ok((_, waiting)) => {
                record_poll_success(&cfg.name);
                if waiting > 0 {
                    SETTLE.min(cfg.poll_interval)
                } else {
                    cfg.poll_interval
                }
            }
            Err(error) => {
                record_poll_failure(&cfg.name);
                tracing::warn!(source = %cfg.name, %error, "poll failed; retrying at the next interval");
                cfg.poll_interval
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(next) => {}
            _ = wake.notified() => {}
        }
    }
    tracing::info!(source = %cfg.name, "source stopped");
}

/// File-system events on the inbox wake the worker. Without them (no inotify, an unsupported
/// file system) the periodic rescan still finds every file.
fn watch(cfg: &PhoneSource, wake: Arc<tokio::sync::Notify>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher;
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok() {
            wake.notify_one();
        }
    };
    let watched = notify::recommended_watcher(handler).and_then(|mut w| {
        w.watch(&cfg.inbox, notify::RecursiveMode::NonRecursive)
            .map(|()| w)
    });
    match watched {
        Ok(w) => Some(w),
        Err(error) => {
            tracing::warn!(source = %cfg.name, inbox = %cfg.inbox.display(), %error,
                "cannot watch the inbox; relying on the periodic rescan");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_fingerprint_is_that_of_the_shorter_file() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (short, long) = (dir.path().join("short.csv"), dir.path().join("long.csv"));
        let head = "a,b\n".repeat(40_000);
        fs::write(&short, &head)?;
        fs::write(&long, format!("{head}c,d\n"))?;
        for cut in [0, 1, 65_536, head.len() as u64] {
            fs::write(&short, &head.as_bytes()[..cut as usize])?;
            let got = fingerprints(&long, Some(cut))?;
            assert_eq!(got.prefix, Some(fingerprint(&short)?), "cut at {cut}");
            assert_eq!(got.full, fingerprint(&long)?);
            assert!(got.ends_with_newline);
        }
        assert_eq!(fingerprints(&long, Some(1 << 40))?.prefix, None);
        assert_eq!(
            GrowthMark::parse("160000:abc:40000"),
            Some(GrowthMark {
                len: 160_000,
                fingerprint: "abc".into(),
                rows: 40_000
            })
        );
        Ok(())
    }
}
