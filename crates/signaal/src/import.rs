//! `signaal import CHANNEL PATH…`: read exports once; `--dry-run` prints NDJSON instead of
//! publishing, touching neither Kafka nor the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use signaal_bus::{ensure_topics, Publisher};
use signaal_core::{brief, RawEnvelope};
use signaal_source::Batch;

use crate::config::Config;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImportChannel {
    Email,
    Phone,
    Twitter,
    Facebook,
    /// Saved Facebook page webhook payloads (the POST bodies).
    #[value(alias = "facebook_webhook")]
    FacebookWebhook,
}

#[derive(Args, Clone)]
pub struct ImportArgs {
    pub channel: ImportChannel,
    /// Files or folders. Email: Maildir, mbox, .eml. The other channels: CSV exports or saved API
    /// responses; a folder stands for every file directly in it, read in name order.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print the raw envelopes that would be published, one JSON object per line.
    #[arg(long)]
    pub dry_run: bool,
    /// Say on stderr why each item was skipped (and, when publishing, why each was rejected).
    #[arg(long)]
    pub explain: bool,
    /// Source name recorded on every signal.
    #[arg(long, default_value = "import")]
    pub source: String,
    /// Facebook page id: the page's own posts are left out.
    #[arg(long)]
    pub page_id: Option<String>,
    /// X user ids of the organisation's own accounts: their posts are left out.
    #[arg(long, value_delimiter = ',')]
    pub own_user_ids: Vec<String>,
    /// Phone exports: the profile (default: the first configured inbox's, else generic CSV);
    /// the config's spelling (`asterisk_cdr`) works too.
    #[arg(long, value_enum)]
    pub profile: Option<PhoneProfile>,
}

/// The config's spelling (`asterisk_cdr`) is accepted beside the command line's (`asterisk-cdr`):
/// a profile copied from `signaal.toml` must not be refused.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PhoneProfile {
    #[value(alias = "generic_csv")]
    GenericCsv,
    #[value(alias = "asterisk_cdr")]
    AsteriskCdr,
    #[value(alias = "genesys_cloud")]
    GenesysCloud,
    Twilio,
    #[value(alias = "generic_ndjson")]
    GenericNdjson,
}

impl From<PhoneProfile> for signaal_phone::Profile {
    fn from(p: PhoneProfile) -> Self {
        match p {
            PhoneProfile::GenericCsv => signaal_phone::Profile::GenericCsv,
            PhoneProfile::AsteriskCdr => signaal_phone::Profile::AsteriskCdr,
            PhoneProfile::GenesysCloud => signaal_phone::Profile::GenesysCloud,
            PhoneProfile::Twilio => signaal_phone::Profile::Twilio,
            PhoneProfile::GenericNdjson => signaal_phone::Profile::GenericNdjson,
        }
    }
}

/// Reads every path of one channel, handing each batch to `emit` as it fills: a phone export is
/// streamed, never held whole (pure apart from file reads). Signals are cut or refused to fit
/// one Kafka message first, so a dry run shows what a real run publishes.
pub fn read(
    args: &ImportArgs,
    cfg: &Config,
    mut emit_as_read: impl FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut emit = |mut b: Batch| {
        signaal_source::fit(&mut b.signals, &mut b.dead_letters);
        emit_as_read(b)
    };
    for path in &args.paths {
        match args.channel {
            ImportChannel::Email => signaal_email::worker::read_path_chunks(
                &args.source,
                path,
                &cfg.email.rules(),
                &mut emit,
            )?,
            ImportChannel::Phone => {
                let mut format = cfg
                    .phone
                    .inboxes
                    .first()
                    .map(|i| i.format())
                    .unwrap_or_default();
                if let Some(p) = args.profile {
                    format.profile = p.into();
                }
                // `emit` errors (stdout closed, Kafka down) stop the read with their reason.
                let mut failure = None;
                let bar = progress_bar(path);
                let read = signaal_phone::worker::read_export_with_progress(
                    &args.source,
                    path,
                    &format,
                    0,
                    |b| {
                        emit(b).map_err(|e| {
                            let reason = format!("{e:#}");
                            failure = Some(e);
                            signaal_source::SourceError::Input(reason)
                        })
                    },
                    |p| {
                        if let Some(bar) = &bar {
                            bar.set_length(p.total_bytes);
                            bar.set_position(p.bytes);
                            bar.set_message(format!("{} rows", p.rows));
                        }
                    },
                );
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
                if let Some(e) = failure {
                    return Err(e);
                }
                read?;
            }
            ImportChannel::Twitter => {
                let body = read_file(path)?;
                let origin = path.display().to_string();
                let batch =
                    signaal_social::saved::read_x(&origin, &body, &args.source, &args.own_user_ids)
                        .with_context(|| format!("`{origin}`"))?;
                emit(batch)?;
            }
            ImportChannel::Facebook => {
                let body = read_file(path)?;
                let origin = path.display().to_string();
                let page = args.page_id.clone().unwrap_or_default();
                let batch =
                    signaal_social::saved::read_facebook(&origin, &body, &args.source, &page)
                        .with_context(|| format!("`{origin}`"))?;
                emit(batch)?;
            }
            ImportChannel::FacebookWebhook => {
                let body = read_file(path)?;
                let origin = path.display().to_string();
                let own: Vec<String> = args.page_id.iter().cloned().collect();
                let batch = signaal_social::saved::read_webhook(&origin, &body, &args.source, &own)
                    .with_context(|| format!("`{origin}`"))?;
                emit(batch)?;
            }
        }
    }
    Ok(())
}

/// How many files [`read_each`] tried, and how many of them could not be read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub tried: usize,
    pub failed: usize,
}

/// [`read`] file by file (folders expanded by [`files`]): a file that cannot be read — missing,
/// not the format the channel or profile reads — is reported on stderr with its reason and the
/// next one is read, so one stray file does not hold back a folder; the caller fails the import
/// when `failed` is not 0. An `emit` failure (stdout closed, Kafka down) stops everything.
pub fn read_each(
    args: &ImportArgs,
    cfg: &Config,
    mut emit: impl FnMut(Batch) -> anyhow::Result<()>,
) -> anyhow::Result<Files> {
    let mut count = Files::default();
    for path in &args.paths {
        let listed = match files(args.channel, path) {
            Ok(listed) => listed,
            Err(e) => {
                count.tried += 1;
                count.failed += 1;
                let e = anyhow::Error::new(e).context(format!("cannot read `{}`", path.display()));
                not_imported(&e);
                continue;
            }
        };
        if listed.is_empty() {
            tracing::warn!(folder = %path.display(), "no files to read in the folder");
        }
        for file in listed {
            count.tried += 1;
            let one = ImportArgs {
                paths: vec![file],
                ..args.clone()
            };
            let mut stopped = false;
            let result = read(&one, cfg, |b| {
                let sent = emit(b);
                stopped |= sent.is_err();
                sent
            });
            match result {
                Err(e) if stopped => return Err(e),
                Err(e) => {
                    count.failed += 1;
                    not_imported(&e);
                }
                Ok(()) => {}
            }
        }
    }
    Ok(count)
}

/// Why a file was not imported, each cause said once and cut to a readable size (a reason may
/// quote the file: a 50 MB header line).
fn not_imported(e: &anyhow::Error) {
    eprintln!("not imported: {}", brief(&crate::error_chain(e)));
}

/// The files a path stands for. Email reads folders itself (Maildir, mbox); for the other
/// channels a folder is every file directly in it in name order, leaving out subfolders (a phone
/// inbox's `done/` and `failed/`), hidden files and `.part`/`.tmp` files still being written.
fn files(channel: ImportChannel, path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if matches!(channel, ImportChannel::Email) || !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let p = entry?.path();
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let partial = name.ends_with(".part") || name.ends_with(".tmp");
        if p.is_file() && !name.starts_with('.') && !partial {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// A progress bar on stderr when it is a terminal (never in pipes, logs or CI).
fn progress_bar(path: &Path) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix} [{bar:30}] {percent}% {binary_bytes}/{binary_total_bytes} {msg} ({binary_bytes_per_sec}, {eta} left)",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_prefix(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    Some(bar)
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// Counts for the closing line. (Progress lines come from the readers: phone exports log rows,
/// rows/s and percent every five seconds.)
#[derive(Debug, Default)]
struct Tally {
    signals: usize,
    rejected: usize,
    /// Skipped items by reason, so a run that skipped everything says why in one line.
    skipped: std::collections::BTreeMap<&'static str, usize>,
}

impl Tally {
    fn add(&mut self, b: &Batch) {
        self.signals += b.signals.len();
        self.rejected += b.dead_letters.len();
        for s in &b.skipped {
            *self.skipped.entry(s.reason).or_default() += 1;
        }
    }

    /// The closing line: what was read, and what became of it.
    fn summary(&self, dry_run: bool, files: &Files) -> String {
        let skipped: usize = self.skipped.values().sum();
        let mut line = format!(
            "read {}: {} {}, {} rejected{}, {skipped} skipped",
            count(self.signals + self.rejected + skipped, "item"),
            if dry_run {
                "would publish"
            } else {
                "published"
            },
            count(self.signals, "signal"),
            self.rejected,
            if dry_run || self.rejected == 0 {
                ""
            } else {
                " (sent to the dead-letter topic)"
            },
        );
        if skipped > 0 {
            let reasons: Vec<String> = self
                .skipped
                .iter()
                .map(|(reason, n)| format!("{reason}: {n}"))
                .collect();
            line.push_str(&format!(" ({})", reasons.join(", ")));
        }
        if files.failed > 0 {
            line.push_str(&format!(
                "; {} of {} could not be read",
                files.failed,
                count(files.tried, "file")
            ));
        }
        line
    }

    /// Why the import failed although it ran to the end: a file it could not read, or rows that
    /// were all rejected (a wrong profile or mapping would otherwise look like an empty export).
    fn verdict(&self, files: &Files) -> Result<(), String> {
        if files.tried == 1 && files.failed == 1 {
            return Err("the file could not be read (the reason is above)".into());
        }
        if files.failed > 0 {
            return Err(format!(
                "{} of {} could not be read (the reasons are above)",
                files.failed,
                count(files.tried, "file")
            ));
        }
        if self.signals == 0 && self.rejected > 0 {
            return Err(format!(
                "nothing to publish: {} rejected, none read as a signal",
                count(self.rejected, "item")
            ));
        }
        Ok(())
    }
}

/// `1 file`, `2 files`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// With `--explain`, why each item of a batch was skipped (and rejected, when `rejected`: a dry
/// run always says that), on stderr; every line cut to a readable size, as it may quote input.
fn explain(b: &Batch, skipped: bool, rejected: bool) {
    if rejected {
        for d in &b.dead_letters {
            eprintln!("{}", brief(&format!("rejected {}: {}", d.origin, d.reason)));
        }
    }
    if skipped {
        for s in &b.skipped {
            eprintln!("{}", brief(&format!("skipped {}: {}", s.item, s.reason)));
        }
    }
}

pub async fn run(args: ImportArgs, cfg: &Config) -> anyhow::Result<()> {
    if matches!(
        args.channel,
        ImportChannel::Facebook | ImportChannel::FacebookWebhook
    ) && args.page_id.is_none()
    {
        tracing::warn!(
            "no `--page-id`: the page's own posts and replies cannot be told from customers' \
             and are imported as signals"
        );
    }
    let mut tally = Tally::default();
    let files = if args.dry_run {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        let files = read_each(&args, cfg, |b| {
            for s in &b.signals {
                RawEnvelope::write_json(&mut out, s)?;
                out.write_all(b"\n")?;
            }
            explain(&b, args.explain, true);
            tally.add(&b);
            Ok(())
        })?;
        out.flush()?;
        files
    } else {
        crate::workers::reach_kafka(&cfg.bus.brokers).await?;
        ensure_topics(&cfg.bus)
            .await
            .with_context(|| format!("creating topics on Kafka at `{}`", cfg.bus.brokers))?;
        let publisher = Publisher::new(&cfg.bus)?;
        // Reading is synchronous and streams; batches are published as they fill, two in flight.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let (reader_args, reader_cfg) = (args.clone(), cfg.clone());
        let reader = tokio::task::spawn_blocking(move || {
            read_each(&reader_args, &reader_cfg, |b| {
                tx.blocking_send(b)
                    .map_err(|_| anyhow::anyhow!("publishing stopped"))
            })
        });
        let mut published = Ok(());
        while let Some(b) = rx.recv().await {
            tally.add(&b);
            explain(&b, args.explain, args.explain);
            if let Err(e) = publish(&publisher, b).await {
                published = Err(e);
                break;
            }
        }
        drop(rx);
        let read_result = reader.await.context("reader task")?;
        published?;
        let files = read_result?;
        publisher.flush(std::time::Duration::from_secs(10));
        files
    };
    eprintln!("{}", tally.summary(args.dry_run, &files));
    tally.verdict(&files).map_err(anyhow::Error::msg)
}

async fn publish(publisher: &Publisher, b: Batch) -> anyhow::Result<()> {
    publisher.publish_raw(&b.signals).await?;
    publisher.dead_letters(b.dead_letters).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use signaal_source::Skip;

    fn tally(signals: usize, rejected: usize, skipped: &[(&'static str, usize)]) -> Tally {
        Tally {
            signals,
            rejected,
            skipped: skipped.iter().copied().collect(),
        }
    }

    #[test]
    fn the_closing_line_and_the_verdict() {
        let files = |tried, failed| Files { tried, failed };
        #[rustfmt::skip]
        let cases = [
            (tally(3, 0, &[]), true, files(1, 0),
             "read 3 items: would publish 3 signals, 0 rejected, 0 skipped", None),
            (tally(1, 2, &[("auto_reply", 1)]), false, files(2, 0),
             "read 4 items: published 1 signal, 2 rejected (sent to the dead-letter topic), \
              1 skipped (auto_reply: 1)", None),
            (tally(0, 0, &[("delivery_status", 2), ("auto_submitted", 1)]), true, files(1, 0),
             "read 3 items: would publish 0 signals, 0 rejected, 3 skipped \
              (auto_submitted: 1, delivery_status: 2)", None),
            (tally(0, 2, &[]), true, files(1, 0),
             "read 2 items: would publish 0 signals, 2 rejected, 0 skipped",
             Some("nothing to publish: 2 items rejected, none read as a signal")),
            (tally(0, 2, &[("auto_reply", 1)]), true, files(1, 0),
             "read 3 items: would publish 0 signals, 2 rejected, 1 skipped (auto_reply: 1)",
             Some("nothing to publish: 2 items rejected, none read as a signal")),
            (tally(5, 0, &[]), true, files(3, 1),
             "read 5 items: would publish 5 signals, 0 rejected, 0 skipped; \
              1 of 3 files could not be read",
             Some("1 of 3 files could not be read (the reasons are above)")),
            (tally(0, 0, &[]), true, files(1, 1),
             "read 0 items: would publish 0 signals, 0 rejected, 0 skipped; \
              1 of 1 file could not be read",
             Some("the file could not be read (the reason is above)")),
            (tally(0, 0, &[]), true, files(0, 0),
             "read 0 items: would publish 0 signals, 0 rejected, 0 skipped", None),
        ];
        for (t, dry_run, files, line, verdict) in cases {
            assert_eq!(t.summary(dry_run, &files), line);
            assert_eq!(t.verdict(&files).err().as_deref(), verdict, "{line}");
        }
    }

    #[test]
    fn skips_are_counted_by_reason() {
        let mut t = Tally::default();
        t.add(&Batch {
            skipped: vec![
                Skip::new("auto_reply", "a.eml"),
                Skip::new("bounce", "b.eml"),
                Skip::new("auto_reply", "c.eml"),
            ],
            ..Batch::default()
        });
        assert_eq!(
            t.skipped.into_iter().collect::<Vec<_>>(),
            [("auto_reply", 2), ("bounce", 1)]
        );
    }
}
