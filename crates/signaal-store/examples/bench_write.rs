//! Write throughput of `Store::save_classified` on PostgreSQL, and what it costs the server.
//!
//! Writes `SIGNAAL_BENCH_SIGNALS` (default 100,000) classified signals — ~300-byte texts, 1–3
//! themes with evidence, batches of 500, a third of them phone calls with an author — into a
//! fresh database next to `SIGNAAL_TEST_DATABASE_URL`, then prints signals/s and the CPU seconds
//! PostgreSQL spent:
//! - `server`: every process of the cluster (utime + stime of the postmaster's children, plus
//!   the postmaster's own and its reaped children's cutime + cstime), before vs after. Anything
//!   else running on the cluster at the same time counts too.
//! - `backends`: only the connections of the bench's own database, read just before they close;
//!   the number to trust when other work shares the cluster.
//!
//! Signals occur anywhere in a year (`SIGNAAL_BENCH_DAYS`, 365), in random order (every batch adds
//! to hundreds of rollup days); `SIGNAAL_BENCH_ARRIVAL=ordered` writes them in time order, as a
//! live feed does. `SIGNAAL_BENCH_SUBJECTS=3` gives each up to three subjects (none by default),
//! which multiplies the rollup rows (theme × subject).
//!
//! `SIGNAAL_BENCH_SETUP_SQL` (`;`-separated) runs after the migrations, to measure a schema
//! variant (a foreign key or an index put back) without a migration of its own.
//! `SIGNAAL_BENCH_OLD=1` measures the store as it was before migration 0003: schema 0001–0002
//! and its statements (multi-row inserts in a transaction, copied below).
//! `SIGNAAL_BENCH_CREATE` is appended to `create database`, e.g.
//! `template template0 locale_provider icu icu_locale 'nl-NL' locale 'C.UTF-8'` for a collation
//! as slow as a production cluster's.
//!
//! ```text
//! SIGNAAL_TEST_DATABASE_URL=postgres://signaal@127.0.0.1:15432/signaal \
//!   cargo run --release -p signaal-store --example bench_write
//! ```

use std::path::PathBuf;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use signaal_core::{
    Cause, Channel, Classification, ClassifiedEnvelope, Evidence, Kind, Signal, SubjectTag,
    ThemeTag,
};
use signaal_store::Store;
use sqlx::types::Json;

type BoxError = Box<dyn std::error::Error>;

const BATCH: usize = 500;
const THEMES: [&str; 12] = [
    "reachability",
    "unclear_communication",
    "payment",
    "handoffs",
    "repeat_story",
    "staff_conduct",
    "waiting_time",
    "digital_access",
    "privacy",
    "objection_process",
    "wrong_decision",
    "lost_documents",
];
const WORDS: [&str; 24] = [
    "de",
    "brief",
    "snapt",
    "niemand",
    "ik",
    "heb",
    "drie",
    "keer",
    "gebeld",
    "en",
    "nog",
    "steeds",
    "geen",
    "antwoord",
    "over",
    "mijn",
    "aanslag",
    "betaling",
    "termijn",
    "wachten",
    "doorverbonden",
    "onduidelijk",
    "formulier",
    "bezwaar",
];

/// xorshift64*: deterministic data without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the generated signals look like (`SIGNAAL_BENCH_DAYS`, `SIGNAAL_BENCH_ARRIVAL`,
/// `SIGNAAL_BENCH_SUBJECTS`).
struct Shape {
    /// Over how many days they occur (365).
    days: u64,
    /// In time order rather than at random.
    ordered: bool,
    /// Up to this many subjects each (0).
    subjects: u64,
}

const SUBJECTS: [&str; 8] = [
    "digid",
    "woz_assessment",
    "tax_bill",
    "app",
    "customer_portal",
    "reminder",
    "appointment",
    "parking_permit",
];

/// When signal `n` of `total` occurred: anywhere in the period (the worst case for the rollup:
/// every batch adds to hundreds of days), or, `ordered`, in arrival order as a live feed writes.
fn envelope(rng: &mut Rng, n: usize, total: usize, shape: &Shape) -> ClassifiedEnvelope {
    let start = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let span = shape.days * 86_400;
    let second = if shape.ordered {
        n as u64 * span / total.max(1) as u64
    } else {
        rng.below(span)
    };
    let at = start + Duration::seconds(second as i64);
    let mut text = String::with_capacity(320);
    while text.len() < 300 {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    let channel = [Channel::Email, Channel::Phone, Channel::Twitter][n % 3];
    let mut s = Signal::new(channel, "bench", format!("item-{n}"), at, text);
    if channel == Channel::Phone {
        s.author = Some(format!("a_{:016x}", rng.below(50_000)));
        s.meta.insert("wait_s".into(), rng.below(900).into());
    } else {
        s.subject = Some("Vraag over mijn aanslag".into());
        s.meta.insert("to".into(), "klachten@example.nl".into());
    }
    let themes = (0..1 + rng.below(3))
        .map(|i| {
            let word_at = (rng.below(250)) as usize;
            ThemeTag {
                id: THEMES[(rng.below(4) * 3 + i) as usize].to_string(),
                score: 0.25 + rng.below(75) as f32 / 100.0,
                evidence: vec![Evidence {
                    start: word_at,
                    end: word_at + 8,
                    text: "wachten".into(),
                    field: None,
                }],
            }
        })
        .collect();
    let subjects = (0..rng.below(shape.subjects + 1))
        .map(|_| SubjectTag {
            id: SUBJECTS[rng.below(SUBJECTS.len() as u64) as usize].to_string(),
            evidence: vec![Evidence {
                start: 0,
                end: 5,
                text: "DigiD".into(),
                field: None,
            }],
        })
        .collect();
    let c = Classification {
        themes,
        subjects,
        cause: Cause::System,
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.4,
        escalation: vec!["ombudsman".into()],
        impact: None,
    };
    ClassifiedEnvelope::new(s, c, "bench")
}

/// The schema before 0003: the embedded migrations up to 0002.
async fn migrate_old(url: &str) -> Result<(), BoxError> {
    let all = sqlx::migrate!("migrations/postgres");
    let old = sqlx::migrate::Migrator {
        migrations: all
            .migrations
            .iter()
            .filter(|m| m.version <= 2)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..all
    };
    let pool = sqlx::PgPool::connect(url).await?;
    old.run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// `save_classified` as it was before 0003, for PostgreSQL: one transaction, a multi-row insert
/// of signals returning the new ids, then a multi-row insert of their theme rows.
async fn save_old(pool: &sqlx::PgPool, batch: &[ClassifiedEnvelope]) -> Result<u64, BoxError> {
    let mut tx = pool.begin().await?;
    let mut q = sqlx::QueryBuilder::new(
        "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
         classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
         sentiment, escalation, classifier) ",
    );
    q.push_values(batch, |mut b, env| {
        let s = &env.signal;
        let c = &env.classification;
        b.push_bind(&s.id)
            .push_bind(s.channel.as_str())
            .push_bind(&s.source)
            .push_bind(&s.source_id)
            .push_bind(s.occurred_at)
            .push_bind(s.received_at)
            .push_bind(env.classified_at)
            .push_bind(&s.author)
            .push_bind(&s.subject)
            .push_bind(&s.thread_id)
            .push_bind(&s.text)
            .push_bind(Json(&s.meta))
            .push_bind(Json(&c.themes))
            .push_bind(c.cause.as_str())
            .push_bind(c.kind.as_str())
            .push_bind(&c.lang)
            .push_bind(c.sentiment)
            .push_bind(Json(&c.escalation))
            .push_bind(&env.classifier);
    });
    q.push(" on conflict (id) do nothing returning id");
    let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
    let new: std::collections::HashSet<String> = new.into_iter().map(|(id,)| id).collect();
    let tags: Vec<(&str, &str, f32, i64)> = batch
        .iter()
        .filter(|env| new.contains(&env.signal.id))
        .flat_map(|env| {
            env.classification.themes.iter().map(move |t| {
                (
                    env.signal.id.as_str(),
                    t.id.as_str(),
                    t.score,
                    env.signal.occurred_at.timestamp_millis(),
                )
            })
        })
        .collect();
    // 500 theme rows a statement, as the old store did.
    for chunk in tags.chunks(BATCH) {
        let mut q = sqlx::QueryBuilder::new(
            "insert into signal_themes (signal_id, theme, score, occurred_ms) ",
        );
        q.push_values(chunk, |mut b, (id, theme, score, ms)| {
            b.push_bind(*id)
                .push_bind(*theme)
                .push_bind(*score)
                .push_bind(*ms);
        });
        q.push(" on conflict (signal_id, theme) do nothing");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(new.len() as u64)
}

/// Clock ticks per second for `/proc/*/stat` times.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of `/proc/<pid>/stat` after the command name: state is index 0, ppid 1, utime 11,
/// stime 12, cutime 13, cstime 14.
fn stat(pid: u32) -> Option<Vec<u64>> {
    let raw = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &raw[raw.rfind(')')? + 2..];
    Some(
        rest.split(' ')
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .collect(),
    )
}

/// CPU ticks of the whole cluster: the postmaster with its reaped children, and every live child.
fn server_ticks(postmaster: u32) -> Result<u64, BoxError> {
    let pm = stat(postmaster).ok_or("postmaster is not running")?;
    let mut ticks = pm[11] + pm[12] + pm[13] + pm[14];
    for entry in std::fs::read_dir("/proc")? {
        let Some(pid) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(f) = stat(pid) {
            if f[1] == u64::from(postmaster) {
                ticks += f[11] + f[12];
            }
        }
    }
    Ok(ticks)
}

fn backend_ticks(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| stat(u32::try_from(pid).ok()?))
        .map(|f| f[11] + f[12])
        .sum()
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let admin = std::env::var("SIGNAAL_TEST_DATABASE_URL")
        .map_err(|_| "set SIGNAAL_TEST_DATABASE_URL (scripts/pg-local start prints one)")?;
    let total: usize = std::env::var("SIGNAAL_BENCH_SIGNALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let env_u64 = |k: &str, default: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let shape = Shape {
        days: env_u64("SIGNAAL_BENCH_DAYS", 365).max(1),
        ordered: std::env::var("SIGNAAL_BENCH_ARRIVAL").is_ok_and(|v| v == "ordered"),
        subjects: env_u64("SIGNAAL_BENCH_SUBJECTS", 0),
    };
    let pid_file = std::env::var("SIGNAAL_BENCH_POSTMASTER_PID")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/services/postgres/data/postmaster.pid")
        });
    let postmaster: u32 = std::fs::read_to_string(&pid_file)
        .map_err(|e| format!("{}: {e}", pid_file.display()))?
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or("postmaster.pid has no pid on its first line")?;
    let ticks_per_s = clock_ticks();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Leaked so each batch can be handed to a future by reference; the process ends after.
    let envelopes: &'static [ClassifiedEnvelope] = Vec::leak(
        (0..total)
            .map(|n| envelope(&mut rng, n, total, &shape))
            .collect(),
    );

    let name = format!(
        "signaal_bench_{}_{}",
        std::process::id(),
        Utc::now().timestamp_millis()
    );
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("database url has no database name")?;
    let pool = sqlx::PgPool::connect(&admin).await?;
    let create = std::env::var("SIGNAAL_BENCH_CREATE").unwrap_or_default();
    sqlx::query(&format!("create database {name} {create}"))
        .execute(&pool)
        .await?;
    let url = format!("{base}/{name}");
    let old = std::env::var("SIGNAAL_BENCH_OLD").is_ok_and(|v| v == "1");
    let result = async {
        // Setup, counting and the backend list go through a connection of their own, so the
        // writers' backends are never the one asking (`pid <> pg_backend_pid()`).
        let probe = sqlx::postgres::PgPoolOptions::new().max_connections(1).connect(&url).await?;
        let db = sqlx::PgPool::connect(&url).await?;
        let store = if old {
            migrate_old(&url).await?;
            None
        } else {
            Some(Store::connect(&url).await?)
        };
        let save = |batch: &'static [ClassifiedEnvelope]| {
            let store = store.clone();
            let db = db.clone();
            async move {
                match store {
                    Some(store) => Ok::<_, BoxError>(store.save_classified(batch).await?),
                    None => save_old(&db, batch).await,
                }
            }
        };
        if let Ok(setup) = std::env::var("SIGNAAL_BENCH_SETUP_SQL") {
            for statement in setup.split(';').filter(|s| !s.trim().is_empty()) {
                sqlx::query(statement).execute(&probe).await?;
            }
        }
        let pids = |db: sqlx::PgPool, name: String| async move {
            sqlx::query_scalar::<_, i32>(
                "select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
            )
            .bind(name)
            .fetch_all(&db)
            .await
        };
        let backends_before = backend_ticks(&pids(probe.clone(), name.clone()).await?);
        let server_before = server_ticks(postmaster)?;
        let started = Instant::now();
        let mut new = 0;
        for batch in envelopes.chunks(BATCH) {
            new += save(batch).await?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        let backends_after = backend_ticks(&pids(probe.clone(), name.clone()).await?);
        let server_after = server_ticks(postmaster)?;
        // A replayed batch must add nothing: the bench checks it measured the real path.
        let replayed = save(&envelopes[..BATCH.min(total)]).await?;
        let themes: i64 = sqlx::query_scalar("select count(*) from signal_themes").fetch_one(&probe).await?;
        println!(
            "{} store, {new} new signals ({themes} theme rows, replay added {replayed}) in {elapsed:.2} s: {:.0} signals/s",
            if old { "old (0001-0002)" } else { "current" },
            new as f64 / elapsed
        );
        println!(
            "postgresql cpu: server {:.2} s, bench backends {:.2} s ({:.2} s per 100k signals)",
            (server_after - server_before) as f64 / ticks_per_s,
            (backends_after - backends_before) as f64 / ticks_per_s,
            (backends_after - backends_before) as f64 / ticks_per_s * 100_000.0 / total as f64,
        );
        if let Some(store) = store {
            store.close().await;
        }
        db.close().await;
        probe.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(&pool)
        .await?;
    result
}
