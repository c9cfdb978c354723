//! `signaal reclassify`: the current taxonomy over stored signals, so a new subject or phrase
//! reaches history and the analysis stops mixing classifier versions.

use std::io::IsTerminal;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;
use signaal_classifier::Pipeline;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::workers::{classifier, connect_store};

#[derive(Args, Debug)]
pub struct ReclassifyArgs {
    /// Only signals that occurred on or after this day (YYYY-MM-DD, UTC; default: all).
    #[arg(long)]
    pub since: Option<NaiveDate>,
    /// Signals read, classified and written per transaction.
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch: u32,
}

/// What a run did, for its closing line.
#[derive(Debug, Default)]
struct Tally {
    read: u64,
    current: u64,
    replaced: u64,
    changed: u64,
}

pub async fn run(
    args: ReclassifyArgs,
    cfg: &Config,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    // Stored authors are pseudonyms already and nothing is pseudonymised again, so the secret
    // is needed only when configured (the pipeline refuses an empty one).
    let secret = match cfg.classifier.author_secret.as_bytes() {
        [] => &b"reclassify: authors are pseudonyms already"[..],
        s => s,
    };
    let pipeline = Pipeline::new(classifier(cfg)?, secret)?
        .with_learned(crate::workers::learned(cfg)?)
        .with_calls(cfg.classifier.calls)
        .with_impact(
            cfg.analysis.impact.clone(),
            cfg.analysis.recurrence.window_days,
        );
    let version = pipeline.version().to_string();
    let store = connect_store(cfg).await?;
    let since: DateTime<Utc> = args
        .since
        .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        .unwrap_or(DateTime::UNIX_EPOCH);
    let total = store.signals_since(since).await?;
    let bar = progress_bar(total);
    tracing::info!(%version, total, since = %since.date_naive(), "reclassifying stored signals");
    let started = Instant::now();
    let mut tally = Tally::default();
    let mut after = None;
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let page = store
            .stored_signals(since, after.as_ref(), args.batch as usize)
            .await
            .context("reading stored signals")?;
        let Some(last) = page.last() else { break };
        after = Some((last.signal.occurred_at, last.signal.id.clone()));
        let read = page.len() as u64;
        tally.read += read;
        // Signals the current version classified already are done: a run that stopped
        // (Ctrl-C, a crash) starts again from the beginning and passes over them.
        let stale: Vec<_> = page
            .into_iter()
            .filter(|e| e.classifier != version)
            .collect();
        tally.current += read - stale.len() as u64;
        let pairs = signaal_classifier::worker::reclassify(&pipeline, &store, stale)
            .await
            .context("looking up repeat contacts")?;
        tally.changed += pairs.iter().filter(|(old, new)| differs(old, new)).count() as u64;
        tally.replaced += store
            .replace_classifications(&pairs)
            .await
            .context("writing the new classifications")?;
        if let Some(bar) = &bar {
            bar.set_position(tally.read);
        } else if tally.read % 100_000 < u64::from(args.batch) {
            tracing::info!(
                read = tally.read,
                total,
                replaced = tally.replaced,
                "reclassifying"
            );
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let seconds = started.elapsed().as_secs_f64();
    let stopped = shutdown.is_cancelled();
    // Read but neither current nor replaced: another run replaced them first.
    let elsewhere = tally.read - tally.current - tally.replaced;
    println!(
        "{} {} signals since {}: {} reclassified with {version} ({} changed), {} already current{}, in {seconds:.1} s ({:.0} signals/s){}",
        if stopped { "stopped after" } else { "read" },
        tally.read,
        since.date_naive(),
        tally.replaced,
        tally.changed,
        tally.current,
        if elsewhere > 0 { format!(", {elsewhere} done by another run") } else { String::new() },
        tally.read as f64 / seconds.max(1e-9),
        if stopped { "; run it again to go on" } else { "" },
    );
    store.close().await;
    if stopped {
        anyhow::bail!(
            "stopped before the end; the signals done so far keep their new classification"
        );
    }
    Ok(())
}

/// Whether the classification itself changed (themes, subjects, cause, kind, impact), not
/// only its version.
fn differs(old: &signaal_core::ClassifiedEnvelope, new: &signaal_core::ClassifiedEnvelope) -> bool {
    let (a, b) = (&old.classification, &new.classification);
    let ids = |c: &signaal_core::Classification| {
        (
            c.themes.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            c.subjects.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        )
    };
    ids(a) != ids(b) || a.cause != b.cause || a.kind != b.kind || a.impact != b.impact
}

/// A progress bar on stderr when it is a terminal (never in pipes, logs or CI).
fn progress_bar(total: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    let style = indicatif::ProgressStyle::with_template(
        "reclassify [{bar:30}] {percent}% {human_pos}/{human_len} ({per_sec}, {eta} left)",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}
