//! `signaal demo`: the whole pipeline in one process, no services needed.
//!
//! librdkafka's in-process mock cluster stands in for Kafka (unless `--brokers` is given), a
//! SQLite file is the store (unless `--database`), and a local replay server stands in for the X
//! and Facebook APIs. Every worker runs over the bundled samples until every sample is classified
//! and stored; then a report is printed. Running it twice adds no rows: ids are deterministic and
//! the store's writes are idempotent.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use include_dir::{include_dir, Dir};
use signaal_bus::MockKafka;
use signaal_social::replay::{self, Recordings};
use signaal_social::worker::{FacebookPage, XSearch};
use signaal_store::{redact_url, Report};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, EmailFolder, PhoneInbox};
use crate::workers::{self, Worker};

static SAMPLES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../samples");
const FACEBOOK_PAGE: &str = "104857600000001";

#[derive(Args)]
pub struct DemoArgs {
    /// Use this Kafka cluster instead of the in-process mock cluster.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Use this database instead of `sqlite:signaal-demo.db`.
    #[arg(long)]
    pub database: Option<String>,
    /// Give up when the samples are not all stored after this many seconds.
    #[arg(long, default_value_t = 120)]
    pub timeout: u64,
    /// Then keep running and serve the coordinator's page and the API over the demo's register
    /// (on `--listen`, default `api.listen`) until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Where `--serve` listens (port 0: any free port).
    #[arg(long, requires = "serve")]
    pub listen: Option<std::net::SocketAddr>,
}

fn sorted_files<'a>(dir: &'a str) -> Vec<&'a include_dir::File<'a>> {
    let mut files: Vec<_> = SAMPLES
        .get_dir(dir)
        .map(|d| d.files().collect())
        .unwrap_or_default();
    files.sort_by_key(|f| f.path());
    files
}

fn write_samples(root: &Path) -> anyhow::Result<()> {
    SAMPLES.extract(root).context("writing bundled samples")?;
    // The phone worker moves finished files; give it an inbox of its own.
    std::fs::create_dir_all(root.join("phone-inbox"))?;
    for f in sorted_files("phone") {
        if let Some(name) = f.path().file_name() {
            let path = root.join("phone-inbox").join(name);
            std::fs::write(&path, f.contents())?;
            // Complete already: no need for the inbox's wait for writers to finish.
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(
                    std::time::SystemTime::UNIX_EPOCH
                        + std::time::Duration::from_secs(1_763_000_000),
                )?;
        }
    }
    Ok(())
}

fn recordings() -> Recordings {
    let text = |dir: &str| -> Vec<String> {
        sorted_files(dir)
            .iter()
            .map(|f| String::from_utf8_lossy(f.contents()).into_owned())
            .collect()
    };
    Recordings {
        x_pages: text("twitter"),
        facebook_pages: text("facebook"),
        ..Recordings::default()
    }
}

/// The bundled samples as the workers will read them: every sample's id, and the latest time a
/// sample occurred.
struct Expected {
    ids: BTreeSet<String>,
    earliest: i64,
    latest: i64,
}

/// The ids every bundled sample must end up with, computed by the same pure parsers.
fn expected_ids(root: &Path, rec: &Recordings, cfg: &Config) -> anyhow::Result<Expected> {
    let mut ids = BTreeSet::new();
    let (mut earliest, mut latest) = (i64::MAX, i64::MIN);
    let mut note = |s: &signaal_core::Signal| {
        earliest = earliest.min(s.occurred_at.timestamp());
        latest = latest.max(s.occurred_at.timestamp());
        s.id.clone()
    };
    let mail = signaal_email::worker::read_path(
        "demo-mail",
        &root.join("email"),
        &signaal_email::Rules::default(),
    )?;
    ids.extend(mail.signals.iter().map(&mut note));
    for inbox in &cfg.phone.inboxes {
        for entry in std::fs::read_dir(&inbox.path)? {
            let path = entry?.path();
            if path.is_file() {
                signaal_phone::worker::read_export(&inbox.name, &path, &inbox.format(), 0, |b| {
                    ids.extend(b.signals.iter().map(&mut note));
                    Ok(())
                })?;
            }
        }
    }
    for body in &rec.x_pages {
        let resp = signaal_social::x::parse_response(body.as_bytes())?;
        ids.extend(
            signaal_social::x::to_signals(&resp, "demo-x", &[])
                .iter()
                .map(&mut note),
        );
    }
    for body in &rec.facebook_pages {
        let resp = signaal_social::facebook::parse_response(body.as_bytes())?;
        ids.extend(
            signaal_social::facebook::to_signals(&resp, "demo-facebook", FACEBOOK_PAGE)
                .iter()
                .map(&mut note),
        );
    }
    if ids.is_empty() {
        anyhow::bail!("the bundled samples hold no signals");
    }
    Ok(Expected {
        ids,
        earliest,
        latest,
    })
}

pub async fn run(args: DemoArgs, mut cfg: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    // Kept alive until the end of the demo: dropping it stops the mock cluster.
    let _mock = match &args.brokers {
        Some(b) => {
            cfg.bus.brokers = b.clone();
            None
        }
        None => {
            let mock = MockKafka::start(1)?;
            cfg.bus.brokers = mock.bootstrap_servers();
            mock.create_topics(&cfg.bus.topics, 3)?;
            cfg.bus.create_topics = false;
            Some(mock)
        }
    };
    cfg.store.url = args
        .database
        .clone()
        .unwrap_or_else(|| "sqlite:signaal-demo.db".into());

    let dir = tempfile::tempdir()?;
    write_samples(dir.path())?;
    let stop_replay = CancellationToken::new();
    let rec = recordings();
    let (base, _) = replay::serve(recordings(), stop_replay.clone()).await?;

    cfg.email.poll_seconds = 1;
    cfg.email.folders = vec![EmailFolder {
        name: "demo-mail".into(),
        path: dir.path().join("email"),
    }];
    cfg.phone.poll_seconds = 1;
    cfg.phone.inboxes = vec![PhoneInbox {
        name: "demo-calls".into(),
        path: dir.path().join("phone-inbox"),
        profile: Default::default(),
        mapping: Default::default(),
        timezone: Default::default(),
        max_field_bytes: signaal_phone::DEFAULT_MAX_FIELD_BYTES,
    }];
    cfg.social.poll_seconds = 2;
    cfg.social.x = vec![XSearch {
        name: "demo-x".into(),
        base_url: base.clone(),
        bearer_token: "demo-token".into(),
        query: "@gemeente -is:retweet".into(),
        own_user_ids: vec![],
        mentions_of: None,
        bearer_token_file: None,
    }];
    cfg.social.facebook = vec![FacebookPage {
        name: "demo-facebook".into(),
        base_url: base,
        api_version: "v21.0".into(),
        page_id: FACEBOOK_PAGE.into(),
        access_token: "demo-token".into(),
        access_token_file: None,
        comments_days: 0,
    }];
    if cfg.classifier.author_secret.is_empty() {
        // The demo's pseudonyms only need to be stable within the demo.
        cfg.classifier.author_secret = "signaal-demo".into();
    }
    let Expected {
        ids: expected,
        earliest,
        latest,
    } = expected_ids(dir.path(), &rec, &cfg)?;
    // The samples are history, read in no particular order: the alerter starts once they are
    // all on `signals.classified`, allows lateness up to their whole span (so nothing closes
    // while it reads them), and once nothing has come for a second its clock closes every
    // bucket up to now minus that lateness — well past the last sample.
    let bucket = cfg.alerter.detect.bucket_seconds;
    cfg.alerter.idle_seconds = 1;
    cfg.alerter.lateness_seconds = (latest - earliest).max(0) + bucket;
    // The alerter has seen the flare-up through when its watermark is past the last sample by
    // long enough for an alert to resolve.
    let seen_through = latest + (i64::from(cfg.alerter.lifecycle.keep_firing_for) + 2) * bucket;
    let store = workers::connect_store(&cfg).await?;
    eprintln!(
        "signaal demo: {} samples, kafka {}, store {}",
        expected.len(),
        if args.brokers.is_some() {
            cfg.bus.brokers.clone()
        } else {
            "in-process mock cluster".into()
        },
        redact_url(&cfg.store.url)
    );

    let shutdown = CancellationToken::new();
    let mut pipeline = tokio::task::JoinSet::new();
    for which in [
        Worker::Email,
        Worker::Phone,
        Worker::Social,
        Worker::Classifier,
    ] {
        let (cfg, shutdown) = (cfg.clone(), shutdown.clone());
        pipeline.spawn(async move { workers::run(which, &cfg, shutdown).await });
    }

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    let mut missing = expected.len();
    while Instant::now() < deadline && pipeline.len() == 4 {
        let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
        missing = expected.difference(&stored).count();
        if missing == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    if missing == 0 {
        // Stored means classified and published: the alerter finds them all on the topic.
        let (cfg, shutdown) = (cfg.clone(), shutdown.clone());
        pipeline.spawn(async move { workers::run(Worker::Alerter, &cfg, shutdown).await });
        let grace = Instant::now() + Duration::from_secs(30);
        while Instant::now() < grace
            && pipeline.len() == 5
            && !alerter_done(&store, seen_through).await?
        {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    shutdown.cancel();
    stop_replay.cancel();
    while let Some(outcome) = pipeline.join_next().await {
        outcome
            .context("pipeline task")?
            .context("pipeline failed")?;
    }
    if missing > 0 {
        anyhow::bail!(
            "{missing} of {} samples were not stored within {} s",
            expected.len(),
            args.timeout
        );
    }
    if !alerter_done(&store, seen_through).await? {
        anyhow::bail!("the alerter did not see the samples through within 30 s");
    }
    let report = store.report().await?;
    let day = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .map(|d| d.date_naive())
            .context("sample time out of range")
    };
    let period = signaal_api::Query::new(day(earliest)?, day(latest)?);
    let analysis = Analysis {
        recurrence: signaal_api::reports::recurrence_report(
            &store,
            &cfg.analysis.recurrence,
            &period,
        )
        .await?,
        impact: signaal_api::reports::impact_report(
            &store,
            &period,
            signaal_store::analysis::Dimension::Theme,
        )
        .await?,
    };
    store.close().await;
    print!(
        "{}",
        render(&report, Some(&analysis), expected.len(), started.elapsed())
    );
    if args.serve {
        let addr = args.listen.unwrap_or(cfg.api.listen);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--listen)"))?;
        let at = listener.local_addr()?;
        println!(
            "\nThe coordinator's page: http://{at}/?from={}&to={} (Ctrl-C stops)",
            period.from, period.to
        );
        use std::io::Write as _;
        std::io::stdout().flush()?;
        crate::report::serve_on(&cfg, listener, crate::shutdown_on_signals()).await?;
    }
    Ok(())
}

/// The register's analysis over the samples' days, for the report.
pub struct Analysis {
    pub recurrence: signaal_api::reports::RecurrenceReport,
    pub impact: signaal_api::reports::ImpactReport,
}

fn render_analysis(o: &mut String, a: &Analysis) {
    use std::fmt::Write;
    let r = &a.recurrence;
    let _ = writeln!(
        o,
        "\nRecurrence, {} – {} (1x coincidence, 2x notable, 3x pattern)",
        r.since.format("%Y-%m-%d"),
        (r.until - chrono::Duration::days(1)).format("%Y-%m-%d")
    );
    let repeated: Vec<_> = r.theme_subject.iter().filter(|g| g.count >= 2).collect();
    if repeated.is_empty() {
        let _ = writeln!(o, "  no theme and subject came back");
    }
    for g in repeated.iter().take(8) {
        let level = crate::report::level_name(g.level);
        let _ = writeln!(o, "  {level:<8} {:<40} {:>3}x", g.key.label(), g.count);
    }
    let once = r.theme_subject.iter().filter(|g| g.count < 2).count();
    let _ = writeln!(
        o,
        "  …{once} once; customers who came back: {}, once: {}",
        r.author.len(),
        r.authors_once
    );
    let q = &a.impact.quadrants;
    let _ = writeln!(
        o,
        "\nFrequency × impact per theme (medians: {:.0} signals, impact {:.1} of 10)",
        q.median_count, q.median_impact
    );
    for row in &q.rows {
        let quadrant = crate::report::quadrant_name(row.quadrant);
        let _ = writeln!(
            o,
            "  {quadrant:<10} {:<24} {:>4} signals  impact {:.1}",
            row.key.label(),
            row.count,
            row.mean_impact
        );
    }
}

/// Whether the alerter's watermark has passed `seen_through` and every alert has resolved.
async fn alerter_done(store: &signaal_store::Store, seen_through: i64) -> anyhow::Result<bool> {
    let watermark = store
        .get_cursor("alerter", "watermark")
        .await?
        .and_then(|v| v.parse::<i64>().ok());
    if watermark.is_none_or(|w| w < seen_through) {
        return Ok(false);
    }
    let alerts = store.latest_alert_states().await?;
    Ok(alerts
        .iter()
        .all(|a| a.state == signaal_core::AlertState::Resolved))
}

fn bar(n: i64, max: i64, width: usize) -> String {
    let len = if max > 0 {
        (n as f64 / max as f64 * width as f64).round() as usize
    } else {
        0
    };
    "█".repeat(len.max(usize::from(n > 0)))
}

pub fn render(
    r: &Report,
    analysis: Option<&Analysis>,
    samples: usize,
    elapsed: Duration,
) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\nsignaal demo — {} signals in the register ({samples} samples this run)\n",
        r.total
    );
    let _ = writeln!(o, "Per channel");
    for (c, n) in &r.by_channel {
        let _ = writeln!(o, "  {c:<10} {n:>5}");
    }
    let tagged: i64 = r.by_theme.iter().map(|(_, n)| n).sum();
    let max = r.by_theme.first().map(|(_, n)| *n).unwrap_or(0);
    let _ = writeln!(
        o,
        "\nThemes (Pareto: most frequent first, cumulative share)"
    );
    let mut cum = 0;
    for (t, n) in &r.by_theme {
        cum += n;
        let _ = writeln!(
            o,
            "  {t:<22} {n:>5}  {:>4.0}%  cum {:>4.0}%  {}",
            *n as f64 * 100.0 / tagged.max(1) as f64,
            cum as f64 * 100.0 / tagged.max(1) as f64,
            bar(*n, max, 30)
        );
    }
    let _ = writeln!(o, "\nCause");
    for (c, n) in &r.by_cause {
        let _ = writeln!(o, "  {c:<10} {n:>5}");
    }
    let _ = writeln!(o, "\nKind");
    for (k, n) in &r.by_kind {
        let _ = writeln!(o, "  {k:<10} {n:>5}");
    }
    if let Some(a) = analysis {
        render_analysis(&mut o, a);
    }
    let _ = writeln!(o, "\nAlerts");
    if r.alerts.is_empty() {
        let _ = writeln!(o, "  none");
    }
    for a in &r.alerts {
        let words: Vec<&str> = a.top_words.iter().map(|w| w.value.as_str()).collect();
        let _ = writeln!(
            o,
            "  {} spiked {} UTC: peak {} people an hour, {} in all (signals: {}); {} at {} UTC; \
             words: {}",
            a.series,
            a.alert_start.format("%Y-%m-%d %H:%M"),
            a.peak,
            a.total,
            a.channels
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            a.state.as_str(),
            a.bucket_start.format("%Y-%m-%d %H:%M"),
            words.join(", ")
        );
    }
    let _ = writeln!(o, "\nWall time {:.1} s", elapsed.as_secs_f64());
    o
}
