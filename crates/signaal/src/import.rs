//! `signaal import CHANNEL PATH…`: read exports once; `--dry-run` prints NDJSON instead of
//! publishing, touching neither Kafka nor the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, ValueEnum};
use signaal_bus::{ensure_topics, Publisher};
use signaal_core::RawEnvelope;
use signaal_source::Batch;

use crate::config::Config;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ImportChannel {
    Email,
    Phone,
    Twitter,
    Facebook,
    /// Saved Facebook page webhook payloads (the POST bodies).
    FacebookWebhook,
}

#[derive(Args, Clone)]
pub struct ImportArgs {
    pub channel: ImportChannel,
    /// Files or folders (Maildir, mbox, .eml; CSV exports; saved API responses).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Print the raw envelopes that would be published, one JSON object per line.
    #[arg(long)]
    pub dry_run: bool,
    /// Source name recorded on every signal.
    #[arg(long, default_value = "import")]
    pub source: String,
    /// Facebook page id: the page's own posts are left out.
    #[arg(long)]
    pub page_id: Option<String>,
    /// X user ids of the organisation's own accounts: their posts are left out.
    #[arg(long, value_delimiter = ',')]
    pub own_user_ids: Vec<String>,
    /// Phone exports: the profile (default: the first configured inbox's, else generic CSV).
    #[arg(long, value_enum)]
    pub profile: Option<PhoneProfile>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PhoneProfile {
    GenericCsv,
    AsteriskCdr,
    GenesysCloud,
    Twilio,
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
                let resp = signaal_social::x::parse_response(&body).with_context(|| {
                    format!("`{}` is not an X recent-search response", path.display())
                })?;
                emit(Batch {
                    signals: signaal_social::x::to_signals(&resp, &args.source, &args.own_user_ids),
                    ..Batch::default()
                })?;
            }
            ImportChannel::Facebook => {
                let body = read_file(path)?;
                let resp = signaal_social::facebook::parse_response(&body).with_context(|| {
                    format!("`{}` is not a Graph API feed response", path.display())
                })?;
                let page = args.page_id.clone().unwrap_or_default();
                emit(Batch {
                    signals: signaal_social::facebook::to_signals(&resp, &args.source, &page),
                    ..Batch::default()
                })?;
            }
            ImportChannel::FacebookWebhook => {
                let body = read_file(path)?;
                let own: Vec<String> = args.page_id.iter().cloned().collect();
                let parsed = signaal_social::webhook::parse_payload(&body, &args.source, &own)
                    .with_context(|| {
                        format!("`{}` is not a page webhook payload", path.display())
                    })?;
                emit(Batch {
                    signals: parsed.signals,
                    skipped: parsed
                        .skipped
                        .into_iter()
                        .map(|r| signaal_source::Skip::new(r, path.display().to_string()))
                        .collect(),
                    ..Batch::default()
                })?;
            }
        }
    }
    Ok(())
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
#[derive(Default)]
struct Tally {
    signals: usize,
    rejected: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, b: &Batch) {
        self.signals += b.signals.len();
        self.rejected += b.dead_letters.len();
        self.skipped += b.skipped.len();
    }
}

pub async fn run(args: ImportArgs, cfg: &Config) -> anyhow::Result<()> {
    let mut tally = Tally::default();
    if args.dry_run {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        read(&args, cfg, |b| {
            for s in &b.signals {
                RawEnvelope::write_json(&mut out, s)?;
                out.write_all(b"\n")?;
            }
            for d in &b.dead_letters {
                eprintln!("rejected {}: {}", d.origin, d.reason);
            }
            tally.add(&b);
            Ok(())
        })?;
        out.flush()?;
    } else {
        ensure_topics(&cfg.bus).await.context("creating topics")?;
        let publisher = Publisher::new(&cfg.bus)?;
        // Reading is synchronous and streams; batches are published as they fill, two in flight.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Batch>(2);
        let (reader_args, reader_cfg) = (args.clone(), cfg.clone());
        let reader = tokio::task::spawn_blocking(move || {
            read(&reader_args, &reader_cfg, |b| {
                tx.blocking_send(b)
                    .map_err(|_| anyhow::anyhow!("publishing stopped"))
            })
        });
        let mut published = Ok(());
        while let Some(b) = rx.recv().await {
            tally.add(&b);
            if let Err(e) = publish(&publisher, b).await {
                published = Err(e);
                break;
            }
        }
        drop(rx);
        let read_result = reader.await.context("reader task")?;
        published?;
        read_result?;
        publisher.flush(std::time::Duration::from_secs(10));
    }
    let Tally {
        signals,
        rejected,
        skipped,
    } = tally;
    eprintln!(
        "{} {signals} signals, {rejected} rejected{}, {skipped} skipped",
        if args.dry_run {
            "would publish"
        } else {
            "published"
        },
        if args.dry_run {
            ""
        } else {
            " (sent to the dead-letter topic)"
        },
    );
    Ok(())
}

async fn publish(publisher: &Publisher, b: Batch) -> anyhow::Result<()> {
    publisher.publish_raw(&b.signals).await?;
    publisher.dead_letters(b.dead_letters).await?;
    Ok(())
}
