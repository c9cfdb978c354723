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
}

#[derive(Args)]
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

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum PhoneProfile {
    GenericCsv,
    AsteriskCdr,
}

/// Reads every path of one channel into batches (pure apart from file reads).
pub fn read(args: &ImportArgs, cfg: &Config) -> anyhow::Result<Vec<Batch>> {
    let mut batches = Vec::new();
    for path in &args.paths {
        match args.channel {
            ImportChannel::Email => batches.push(signaal_email::worker::read_path(
                &args.source,
                path,
                &cfg.email.rules(),
            )?),
            ImportChannel::Phone => {
                let mut format = cfg
                    .phone
                    .inboxes
                    .first()
                    .map(|i| i.format())
                    .unwrap_or_default();
                match args.profile {
                    Some(PhoneProfile::GenericCsv) => {
                        format.profile = signaal_phone::Profile::GenericCsv
                    }
                    Some(PhoneProfile::AsteriskCdr) => {
                        format.profile = signaal_phone::Profile::AsteriskCdr
                    }
                    None => {}
                }
                signaal_phone::worker::read_export(&args.source, path, &format, 0, |b| {
                    batches.push(b);
                    Ok(())
                })?;
            }
            ImportChannel::Twitter => {
                let body = read_file(path)?;
                let resp = signaal_social::x::parse_response(&body).with_context(|| {
                    format!("`{}` is not an X recent-search response", path.display())
                })?;
                batches.push(Batch {
                    signals: signaal_social::x::to_signals(&resp, &args.source, &args.own_user_ids),
                    ..Batch::default()
                });
            }
            ImportChannel::Facebook => {
                let body = read_file(path)?;
                let resp = signaal_social::facebook::parse_response(&body).with_context(|| {
                    format!("`{}` is not a Graph API feed response", path.display())
                })?;
                let page = args.page_id.clone().unwrap_or_default();
                batches.push(Batch {
                    signals: signaal_social::facebook::to_signals(&resp, &args.source, &page),
                    ..Batch::default()
                });
            }
        }
    }
    Ok(batches)
}

fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

pub async fn run(args: ImportArgs, cfg: &Config) -> anyhow::Result<()> {
    let batches = read(&args, cfg)?;
    let (mut signals, mut rejected, mut skipped) = (0usize, 0usize, 0usize);
    if args.dry_run {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        for b in &batches {
            for s in &b.signals {
                serde_json::to_writer(&mut out, &RawEnvelope::new(s.clone()))?;
                out.write_all(b"\n")?;
            }
            for d in &b.dead_letters {
                eprintln!("rejected {}: {}", d.origin, d.reason);
            }
            signals += b.signals.len();
            rejected += b.dead_letters.len();
            skipped += b.skipped.len();
        }
        out.flush()?;
    } else {
        ensure_topics(&cfg.bus).await.context("creating topics")?;
        let publisher = Publisher::new(&cfg.bus)?;
        for b in batches {
            publisher.publish_raw(&b.signals).await?;
            signals += b.signals.len();
            rejected += b.dead_letters.len();
            skipped += b.skipped.len();
            for d in b.dead_letters {
                publisher.dead_letter(d).await?;
            }
        }
    }
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
