//! `signaal alerts backtest`: the spike detector over history, to tune `alpha` and `min_count`
//! before going live. Prints one JSON object per alert event on stdout and a summary per
//! series on stderr. History is the register (`--from`, `--to`), classified NDJSON, or a CSV of
//! counts; the detector's settings come from `[alerter]` in the configuration unless a flag
//! overrides them.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use clap::{Args, Subcommand};
use signaal_detect::backtest::{self, Event, SignalRow};
use signaal_detect::lifecycle::Lifecycle;
use signaal_detect::Settings;

use crate::config::Config;

#[derive(Subcommand)]
pub enum AlertsCommand {
    /// Run the detector over history: the register (`--from` [`--to`]), a CSV of counts
    /// (`timestamp,count` for one series, or `timestamp,series,count`; a header line is
    /// optional; counts carry no authors, so only `--min-count` guards), or classified signals
    /// as NDJSON (`signals.classified` envelopes). Signals make a series per theme, each author
    /// counts once per bucket, retweets not at all.
    Backtest(BacktestArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["counts", "classified", "from"])))]
pub struct BacktestArgs {
    /// The register (`[store] url` of the configuration) from this time on (RFC 3339,
    /// `YYYY-MM-DD[ HH:MM]` in UTC, or Unix seconds).
    #[arg(long, value_parser = parse_time_arg)]
    pub from: Option<DateTime<Utc>>,
    /// …up to this time (default: now).
    #[arg(long, requires = "from", value_parser = parse_time_arg)]
    pub to: Option<DateTime<Utc>>,
    /// CSV of counts.
    #[arg(long)]
    pub counts: Option<PathBuf>,
    /// NDJSON of classified envelopes (as on `signals.classified`).
    #[arg(long)]
    pub classified: Option<PathBuf>,
    /// With signals: also a series per theme and channel (`theme/channel`; default: the
    /// configuration's `alerter.by_channel`).
    #[arg(long)]
    pub by_channel: bool,
    /// Probability of an exceedance per bucket per series when nothing is going on (default:
    /// `alerter.detect.alpha`, 0.001).
    #[arg(long)]
    pub alpha: Option<f64>,
    /// Signals needed in the last four buckets before anything alerts (default:
    /// `alerter.lifecycle.min_count`, 5).
    #[arg(long)]
    pub min_count: Option<u64>,
    /// Bucket length in seconds, must divide a day (default: `alerter.detect.bucket_seconds`).
    #[arg(long)]
    pub bucket_seconds: Option<i64>,
}

fn parse_time_arg(s: &str) -> Result<DateTime<Utc>, String> {
    let t = parse_time(s)
        .or_else(|| parse_time(&format!("{} 00:00", s.trim())))
        .ok_or_else(|| {
            format!("`{s}` is not a time (RFC 3339, YYYY-MM-DD[ HH:MM] in UTC, or Unix seconds)")
        })?;
    Utc.timestamp_opt(t, 0)
        .single()
        .ok_or_else(|| format!("`{s}` is out of range"))
}

/// A time as counts files write them: RFC 3339, `YYYY-MM-DD HH:MM[:SS]` (UTC), or Unix seconds.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    for f in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t).timestamp());
        }
    }
    s.parse::<i64>().ok()
}

/// Reads `timestamp,count` or `timestamp,series,count` rows (one series is called `counts`).
pub fn read_counts(text: &str) -> anyhow::Result<Vec<(i64, String, u64)>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 1;
        let r = record.with_context(|| format!("line {line}"))?;
        let (t, series, count) = match r.len() {
            2 => (&r[0], "counts", &r[1]),
            3 => (&r[0], &r[1], &r[2]),
            n => anyhow::bail!(
                "line {line} has {n} fields; expected `timestamp,count` or `timestamp,series,count`"
            ),
        };
        let (Some(t), Ok(count)) = (parse_time(t), count.parse::<u64>()) else {
            if line == 1 {
                continue; // a header
            }
            anyhow::bail!(
                "line {line}: `{}` is not a time or `{}` not a count",
                signaal_core::brief(t),
                signaal_core::brief(count)
            );
        };
        rows.push((t, series.to_string(), count));
    }
    if rows.is_empty() {
        anyhow::bail!("no counts: expected lines of `timestamp,count` or `timestamp,series,count`");
    }
    Ok(rows)
}

/// Classified envelopes, one per line, as backtest rows: a series per theme (and per theme and
/// channel with `by_channel`). Retweets are no customer of their own and are left out.
pub fn read_classified(
    input: impl std::io::BufRead,
    by_channel: bool,
) -> anyhow::Result<Vec<SignalRow>> {
    let mut rows = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.with_context(|| format!("line {}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let env = signaal_core::ClassifiedEnvelope::decode(line.as_bytes()).map_err(|e| {
            anyhow::anyhow!(
                "line {} is not a classified envelope: {}",
                i + 1,
                signaal_core::brief(&e.to_string())
            )
        })?;
        if env.signal.is_repost() {
            continue;
        }
        let mut series = Vec::new();
        for t in &env.classification.themes {
            if !series.contains(&t.id) {
                series.push(t.id.clone());
                if by_channel {
                    series.push(format!("{}/{}", t.id, env.signal.channel.as_str()));
                }
            }
        }
        rows.push(SignalRow {
            at: env.signal.occurred_at.timestamp(),
            series,
            id: env.signal.id,
            author: env.signal.author,
        });
    }
    if rows.is_empty() {
        anyhow::bail!("no classified signals");
    }
    Ok(rows)
}

fn rfc3339(t: i64) -> String {
    Utc.timestamp_opt(t, 0)
        .single()
        .map(|t| t.to_rfc3339())
        .unwrap_or_else(|| t.to_string())
}

pub async fn run(cmd: AlertsCommand, cfg: &Config) -> anyhow::Result<()> {
    let AlertsCommand::Backtest(args) = cmd;
    let defaults = &cfg.alerter;
    let settings = Settings {
        alpha: args.alpha.unwrap_or(defaults.detect.alpha),
        bucket_seconds: args
            .bucket_seconds
            .unwrap_or(defaults.detect.bucket_seconds),
        ..defaults.detect.clone()
    };
    settings.validate()?;
    let life = Lifecycle {
        min_count: args.min_count.unwrap_or(defaults.lifecycle.min_count),
        ..defaults.lifecycle.clone()
    };
    let by_channel = args.by_channel || defaults.by_channel;
    let (events, summary) = match (&args.counts, &args.classified) {
        _ if args.from.is_some() => {
            let from = args.from.unwrap_or_default();
            let to = args.to.unwrap_or_else(Utc::now);
            if to <= from {
                anyhow::bail!("--to ({to}) is not after --from ({from})");
            }
            let store = crate::workers::connect_store(cfg).await?;
            let mut rows = Vec::new();
            store
                .for_each_theme_signal(from, to, |sig| {
                    let mut series = Vec::with_capacity(sig.themes.len() * 2);
                    for t in &sig.themes {
                        series.push(t.clone());
                        if by_channel {
                            series.push(format!("{t}/{}", sig.channel));
                        }
                    }
                    rows.push(SignalRow {
                        at: sig.occurred_at.timestamp(),
                        series,
                        id: sig.id,
                        author: sig.author,
                    });
                })
                .await?;
            store.close().await;
            if rows.is_empty() {
                anyhow::bail!("the register holds no signals with a theme between {from} and {to}");
            }
            eprintln!("{} signals with a theme from the register", rows.len());
            backtest::run_signals(&settings, &life, rows)
        }
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let rows = read_counts(&text).with_context(|| format!("`{}`", path.display()))?;
            backtest::run(&settings, &life, rows)
        }
        (None, Some(path)) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot read `{}`", path.display()))?;
            let rows = read_classified(std::io::BufReader::new(file), by_channel)
                .with_context(|| format!("`{}`", path.display()))?;
            backtest::run_signals(&settings, &life, rows)
        }
        (None, None) => anyhow::bail!("give `--from`, `--counts` or `--classified`"),
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for e in &events {
        serde_json::to_writer(&mut out, &event_json(e))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    for (name, s) in &summary.series {
        eprintln!(
            "{name}: {} alerts over {} buckets ({} signals): {:.2} alerts per week",
            s.alerts, s.buckets, s.signals, s.alerts_per_week
        );
    }
    Ok(())
}

fn event_json(e: &Event) -> serde_json::Value {
    serde_json::json!({
        "series": e.series,
        "state": e.state,
        "bucket_start": rfc3339(e.bucket_start),
        "alert_start": rfc3339(e.alert_start),
        "observed": e.observed,
        "expected": e.expected,
        "upper": e.upper,
        "p_value": e.p_value,
        "method": e.method,
        "peak": e.peak,
        "total": e.total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_files_of_one_or_many_series_are_read_and_bad_lines_named() -> anyhow::Result<()> {
        let one = read_counts("timestamp,count\n2026-11-02T09:00:00Z,4\n2026-11-02 10:00,5\n")?;
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].1, "counts");
        assert_eq!(one[1].0 - one[0].0, 3600);
        let many = read_counts("1793577600,payment,3\n1793581200,reachability,7\n")?;
        assert_eq!(many[1], (1_793_581_200, "reachability".to_string(), 7));
        let bad = read_counts("2026-11-02T09:00:00Z,4\nnot a time,5\n");
        assert!(
            bad.as_ref()
                .is_err_and(|e| format!("{e:#}").contains("line 2")),
            "{bad:?}"
        );
        assert!(read_counts("").is_err());
        Ok(())
    }
}
