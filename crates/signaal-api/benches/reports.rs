//! The reports on a big register: `SIGNAAL_BENCH_DATABASE_URL=postgres://… cargo bench -p
//! signaal-api --bench reports -- [SIGNALS]` (default 5,000,000 over two years). Fills a database
//! of its own (`signaal_bench_reports_<SIGNALS>`, kept for the next run) through
//! `Store::save_classified`, as the classifier writes, then times each report over the last
//! year: p50 of 5 runs. With a `sqlite:` URL it runs on SQLite instead.

use std::time::Instant;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use signaal_analysis::AnalysisConfig;
use signaal_api::reports::{self, Query};
use signaal_core::{
    Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, SubjectTag, ThemeTag,
};
use signaal_store::analysis::{day_of, Dimension, Filter, NewAction};
use signaal_store::Store;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const THEMES: [&str; 10] = [
    "reachability",
    "digital_service",
    "response_time",
    "staff_conduct",
    "unclear_communication",
    "payment",
    "handoffs",
    "repeat_story",
    "commitments",
    "product_quality",
];
const SUBJECTS: usize = 60;
const DAYS: i64 = 730;
const BATCH: usize = 5_000;

/// Draws an index `0..n` with weights ∝ 1/(i+1): a few large groups and a long tail.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut sum = 0.0;
        let cumulative = (1..=n.max(1))
            .map(|i| {
                sum += 1.0 / i as f64;
                sum
            })
            .collect();
        Zipf { cumulative }
    }

    fn draw(&self, rng: &mut StdRng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let x = rng.random::<f64>() * total;
        self.cumulative
            .partition_point(|c| *c < x)
            .min(self.cumulative.len() - 1)
    }
}

/// The draws of one register: themes, subjects, kinds and customers.
struct Draws {
    themes: Zipf,
    subjects: Zipf,
    kinds: Zipf,
    authors: Zipf,
}

fn signal(rng: &mut StdRng, d: &Draws, i: u64, end: DateTime<Utc>) -> ClassifiedEnvelope {
    let at = end - Duration::seconds((rng.random::<f64>() * (DAYS * 86_400) as f64) as i64);
    let channel = match rng.random_range(0..10) {
        0..=3 => Channel::Phone,
        4..=6 => Channel::Email,
        7 | 8 => Channel::Twitter,
        _ => Channel::Facebook,
    };
    let mut s = Signal::new(channel, "bench", format!("b{i}"), at, "gegenereerd");
    // Customers: a third as many as signals, a few of them very often.
    s.author = Some(format!("a{}", d.authors.draw(rng)));
    let themes = (0..rng.random_range(1..=2))
        .map(|_| ThemeTag {
            id: THEMES[d.themes.draw(rng)].into(),
            score: 0.5,
            evidence: vec![],
        })
        .collect();
    let subjects = (0..rng.random_range(0..=2))
        .map(|_| SubjectTag {
            id: format!("subject_{}", d.subjects.draw(rng)),
            evidence: vec![],
        })
        .collect();
    let classification = Classification {
        themes,
        subjects,
        cause: [Cause::System, Cause::Human, Cause::Mixed, Cause::Unknown][rng.random_range(0..4)],
        kind: [
            Kind::Complaint,
            Kind::Question,
            Kind::Compliment,
            Kind::Suggestion,
        ][d.kinds.draw(rng)],
        lang: "nl".into(),
        sentiment: -rng.random::<f32>(),
        escalation: vec![],
        impact: Some(rng.random::<f32>() * 10.0),
    };
    ClassifiedEnvelope::new(s, classification, "bench")
}

async fn database(url: &str, n: u64) -> Result<String, BoxError> {
    if url.starts_with("sqlite:") {
        return Ok(url.to_string());
    }
    let name = format!("signaal_bench_reports_{n}");
    let (base, _) = url.rsplit_once('/').ok_or("database url has no name")?;
    let admin = sqlx::PgPool::connect(url).await?;
    let exists: Option<i32> = sqlx::query_scalar("select 1 from pg_database where datname = $1")
        .bind(&name)
        .fetch_optional(&admin)
        .await?;
    if exists.is_none() {
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await?;
    }
    admin.close().await;
    Ok(format!("{base}/{name}"))
}

fn p50(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let url = std::env::var("SIGNAAL_BENCH_DATABASE_URL")
        .map_err(|_| "set SIGNAAL_BENCH_DATABASE_URL (postgres://… or sqlite:…)")?;
    let url = database(&url, n).await?;
    let store = Store::connect(&url).await?;
    let end = Utc
        .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let stored = store.count_signals().await? as u64;
    if stored < n {
        let started = Instant::now();
        let mut rng = StdRng::seed_from_u64(2026 + stored);
        let draws = Draws {
            themes: Zipf::new(THEMES.len()),
            subjects: Zipf::new(SUBJECTS),
            kinds: Zipf::new(4),
            authors: Zipf::new((n / 3).max(1) as usize),
        };
        let mut i = stored;
        while i < n {
            let batch: Vec<ClassifiedEnvelope> = (i..(i + BATCH as u64).min(n))
                .map(|k| signal(&mut rng, &draws, k, end))
                .collect();
            i += batch.len() as u64;
            store.save_classified(&batch).await?;
            if i % 250_000 < BATCH as u64 {
                eprintln!(
                    "filled {i} of {n} ({:.0} signals/s)",
                    (i - stored) as f64 / started.elapsed().as_secs_f64()
                );
            }
        }
        eprintln!("filled in {:.0} s", started.elapsed().as_secs_f64());
    }
    let actions = store.actions().await?;
    if actions.is_empty() {
        for (theme, subject, start) in [
            (Some("payment"), None, (2026, 6, 1)),
            (None, Some("subject_3"), (2026, 9, 1)),
            (Some("reachability"), Some("subject_0"), (2026, 3, 1)),
        ] {
            store
                .add_action(
                    &NewAction {
                        theme: theme.map(String::from),
                        subject: subject.map(String::from),
                        description: "bench".into(),
                        owner: "bench".into(),
                        start_date: NaiveDate::from_ymd_opt(start.0, start.1, start.2)
                            .ok_or("date")?,
                        status: "running".into(),
                    },
                    Utc::now(),
                )
                .await?;
        }
    }
    let to = (end - Duration::days(1)).date_naive();
    let from = to.checked_sub_signed(Duration::days(364)).ok_or("date")?;
    let year = Query::new(from, to);
    let mut by_phone = year.clone();
    by_phone.channel = Some("phone".into());
    let cfg = AnalysisConfig::default();
    let now = end;
    println!(
        "{} signals over {DAYS} days in {}; each report over {from} – {to}, p50 of 5 runs",
        store.count_signals().await?,
        store.backend()
    );
    println!();
    println!("| report | p50 | min | max |");
    println!("|---|---|---|---|");
    macro_rules! time {
        ($name:expr, $e:expr) => {{
            let mut times = Vec::new();
            for _ in 0..5 {
                let t = Instant::now();
                let r = $e;
                std::hint::black_box(&r);
                times.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let (min, max) = (
                times.iter().cloned().fold(f64::MAX, f64::min),
                times.iter().cloned().fold(0.0, f64::max),
            );
            println!(
                "| {} | {:.0} ms | {:.0} ms | {:.0} ms |",
                $name,
                p50(times),
                min,
                max
            );
        }};
    }
    time!(
        "pareto by theme",
        reports::pareto_report(&store, &year, Dimension::Theme).await?
    );
    time!(
        "pareto by subject",
        reports::pareto_report(&store, &year, Dimension::Subject).await?
    );
    time!(
        "pareto by theme × subject",
        reports::pareto_report(&store, &year, Dimension::ThemeSubject).await?
    );
    time!(
        "pareto by theme, phone only",
        reports::pareto_report(&store, &by_phone, Dimension::Theme).await?
    );
    time!(
        "recurrence (90 days: theme × subject, subject, customers)",
        reports::recurrence_report(&store, &cfg.recurrence, &year).await?
    );
    time!(
        "frequency × impact by theme",
        reports::impact_report(&store, &year, Dimension::Theme).await?
    );
    time!(
        "frequency × impact by theme × subject",
        reports::impact_report(&store, &year, Dimension::ThemeSubject).await?
    );
    time!(
        "actions (3, measured)",
        reports::actions_report(&store, &cfg.action, now, true).await?
    );
    time!("summary", reports::summary(&store, &cfg, &year, now).await?);
    let page = |theme: Option<&str>| Filter {
        from_day: day_of(end - Duration::days(365)),
        to_day: day_of(end),
        theme: theme.map(String::from),
        ..Filter::default()
    };
    time!(
        "signals, first page of 50",
        store.signals_page(&page(None), None, 50).await?
    );
    time!(
        "signals of one theme, first page of 50",
        store
            .signals_page(&page(Some("handoffs")), None, 50)
            .await?
    );
    store.close().await;
    Ok(())
}
