//! Helpers shared by the test binaries in `tests/`.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `signaal` binary under test: `SIGNAAL_BIN`, else the debug build.
pub fn signaal_bin() -> Result<PathBuf> {
    let p = std::env::var("SIGNAAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/debug/signaal"));
    if !p.exists() {
        return Err(format!(
            "`{}` not found: build it first (cargo build -p signaal) or set SIGNAAL_BIN",
            p.display()
        )
        .into());
    }
    Ok(p)
}

/// A setting `scripts/test` provides; its absence fails the test with the fix in words.
pub fn service_env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run the suite through scripts/test, which starts Kafka, PostgreSQL and Dovecot").into()
    })
}

/// Creates a PostgreSQL database of the test's own; returns its URL and an admin pool.
pub async fn fresh_database(name: &str) -> Result<(String, sqlx::PgPool)> {
    let admin = service_env("SIGNAAL_TEST_DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&admin).await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&pool)
        .await?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("database url has no database name")?;
    Ok((format!("{base}/{name}"), pool))
}

pub async fn drop_database(pool: &sqlx::PgPool, name: &str) -> Result {
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(pool)
        .await?;
    Ok(())
}

/// All messages of a topic as (key, headers, payload), read with kcat.
pub fn kcat_read(brokers: &str, topic: &str) -> Result<Vec<(String, String, String)>> {
    let out = Command::new("kcat")
        .args([
            "-b",
            brokers,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k\t%h\t%s\n\u{1e}\n",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "kcat failed on `{topic}`: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split("\n\u{1e}\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let mut parts = r.splitn(3, '\t');
            let k = parts.next().unwrap_or_default().to_string();
            let h = parts.next().unwrap_or_default().to_string();
            let s = parts.next().unwrap_or_default().to_string();
            (k, h, s)
        })
        .collect())
}

/// Worker processes, killed when the test ends however it ends.
pub struct Workers(pub Vec<(String, Child)>);

impl Workers {
    /// SIGTERM to every worker, then waits for each to exit.
    pub fn terminate(&mut self) -> Result {
        for (_, c) in &mut self.0 {
            Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status()?;
            c.wait()?;
        }
        Ok(())
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Ids the import's dry run says each sample gets (exercises `import --dry-run` too).
pub fn dry_run_ids(bin: &Path, config: &Path, args: &[&str]) -> Result<BTreeSet<String>> {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("import")
        .args(args)
        .arg("--dry-run")
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "import {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let mut ids = BTreeSet::new();
    for line in String::from_utf8(out.stdout)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let id = v["signal"]["id"]
            .as_str()
            .ok_or("dry-run line without signal.id")?;
        ids.insert(id.to_string());
    }
    Ok(ids)
}

/// The configuration every real-service test starts from: its own topics (`RUN.raw`, …), its own
/// consumer groups and database, and an author secret for the classifier.
pub fn base_config(run: &str, brokers: &str, db: &str, partitions: i32) -> String {
    format!(
        "[bus]\nbrokers = \"{brokers}\"\npartitions = {partitions}\ngroup_prefix = \"{run}\"\n\
         [bus.topics]\nraw = \"{run}.raw\"\nclassified = \"{run}.classified\"\n\
         alerts = \"{run}.alerts\"\ndlq = \"{run}.dlq\"\nstats = \"{run}.stats\"\n\
         [store]\nurl = \"{db}\"\n[classifier]\nauthor_secret = \"k\"\n"
    )
}

/// Waits until `progress()` (a committed checkpoint) reaches `at_least`, then kills `child` with
/// SIGKILL: no shutdown, no final commit. Returns the checkpoint as it stands after the kill (the
/// worker may have committed more since the last look). Fails if the worker exits first or
/// nothing happens for two minutes; `log` is shown then.
pub async fn kill_after<F, Fut>(
    child: &mut Child,
    at_least: usize,
    log: &Path,
    mut progress: F,
) -> Result<usize>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let show = || std::fs::read_to_string(log).unwrap_or_default();
    loop {
        let now = progress().await?;
        if now >= at_least {
            break;
        }
        if let Some(status) = child.try_wait()? {
            return Err(format!(
                "the worker exited ({status}) before it was killed:\n{}",
                show()
            )
            .into());
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("no progress past {now} in 120 s:\n{}", show()).into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    child.kill()?;
    child.wait()?;
    progress().await
}

/// `signaal --config CONFIG setup`: topics and migrations, or the error it printed.
pub fn run_setup(bin: &Path, config: &Path) -> Result {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("setup")
        .output()?;
    if !out.status.success() {
        return Err(format!("setup failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// A name no other test or run uses (databases, topics, folders): `prefix`, process id, clock.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

/// The bundled X and Facebook samples' ids, as `import --dry-run` gives them.
pub fn social_sample_ids(bin: &Path, config: &Path) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for (dir, extra) in [
        ("twitter", &[][..]),
        ("facebook", &["--page-id", "104857600000001"][..]),
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("samples").join(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        files.sort();
        for f in files {
            let path = f.to_string_lossy();
            let mut args = vec![dir];
            args.extend_from_slice(extra);
            args.push(&path);
            ids.extend(dry_run_ids(bin, config, &args)?);
        }
    }
    Ok(ids)
}

/// Starts `signaal --config CONFIG WORKER` with its log (stderr) in `log`.
pub fn start_worker(config: &Path, worker: &str, log: &Path) -> Result<Child> {
    Ok(Command::new(signaal_bin()?)
        .arg("--config")
        .arg(config)
        .arg(worker)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?)
}

/// Waits until the register holds at least `n` signals or `timeout` has passed; returns the
/// count (the caller asserts on what is there).
pub async fn wait_for_signals(
    store: &signaal_store::Store,
    n: usize,
    timeout: Duration,
) -> Result<usize> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = store.count_signals().await? as usize;
        if count >= n || Instant::now() >= deadline {
            return Ok(count);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The bus configuration `base_config` describes (topics `RUN.raw`, …), for a test's own
/// publisher.
pub fn bus_config(brokers: &str, run: &str) -> signaal_bus::BusConfig {
    signaal_bus::BusConfig {
        brokers: brokers.to_string(),
        topics: signaal_bus::Topics {
            raw: format!("{run}.raw"),
            classified: format!("{run}.classified"),
            alerts: format!("{run}.alerts"),
            dlq: format!("{run}.dlq"),
            stats: format!("{run}.stats"),
        },
        ..signaal_bus::BusConfig::default()
    }
}

/// `signaal --config CONFIG import ARGS…` (publishing), or the error it printed.
pub fn import(bin: &Path, config: &Path, args: &[&std::ffi::OsStr]) -> Result {
    let out = Command::new(bin)
        .arg("--config")
        .arg(config)
        .arg("import")
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("import failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// `signaal [--config CONFIG] alerts backtest ARGS…`: the alert events it printed (one JSON
/// object a line) and its stderr (the summary), or the error it printed.
pub fn backtest(
    config: Option<&Path>,
    args: &[&std::ffi::OsStr],
) -> Result<(Vec<serde_json::Value>, String)> {
    let mut cmd = Command::new(signaal_bin()?);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let out = cmd.args(["alerts", "backtest"]).args(args).output()?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    if !out.status.success() {
        return Err(format!("alerts backtest {args:?} failed: {stderr}").into());
    }
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    Ok((events, stderr))
}
