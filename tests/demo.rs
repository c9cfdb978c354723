//! The README's demo command: prints the report, exits 0, and a second run adds no rows.
//! Then the same demo pointed at real Apache Kafka and PostgreSQL with `--brokers`/`--database`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn signaal() -> Result<Command> {
    let bin = std::env::var("SIGNAAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/debug/signaal"));
    if !bin.exists() {
        return Err(format!(
            "`{}` not found: build it first (cargo build -p signaal) or set SIGNAAL_BIN",
            bin.display()
        )
        .into());
    }
    Ok(Command::new(bin))
}

fn report(out: &Output) -> Result<String> {
    let stdout = String::from_utf8(out.stdout.clone())?;
    if !out.status.success() {
        return Err(format!(
            "demo exited with {}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(stdout)
}

fn check_report(stdout: &str) {
    for want in [
        "210 signals in the register",
        "Per channel",
        "phone         60",
        "twitter       60",
        "email         50",
        "facebook      40",
        "Themes (Pareto",
        "digital_service spiked",
    ] {
        assert!(
            stdout.contains(want),
            "the report should contain {want:?}:\n{stdout}"
        );
    }
}

#[test]
fn demo_runs_twice_without_duplicates() -> Result {
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("demo.db").display());
    let first = report(
        &signaal()?
            .current_dir(dir.path())
            .args(["demo", "--database", &db])
            .output()?,
    )?;
    check_report(&first);
    let second = report(
        &signaal()?
            .current_dir(dir.path())
            .args(["demo", "--database", &db])
            .output()?,
    )?;
    check_report(&second);
    Ok(())
}

#[test]
fn demo_runs_on_real_kafka_and_postgres() -> Result {
    let brokers = std::env::var("SIGNAAL_TEST_BROKERS")
        .map_err(|_| "SIGNAAL_TEST_BROKERS is not set: run through scripts/test")?;
    let admin = std::env::var("SIGNAAL_TEST_DATABASE_URL")
        .map_err(|_| "SIGNAAL_TEST_DATABASE_URL is not set: run through scripts/test")?;
    let run_id = format!(
        "demo{}x{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis()
    );
    let rt = tokio::runtime::Runtime::new()?;
    let pool = rt.block_on(sqlx::PgPool::connect(&admin))?;
    rt.block_on(sqlx::query(&format!("create database {run_id}")).execute(&pool))?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("database url has no database name")?;
    let db = format!("{base}/{run_id}");
    let run = || -> Result<String> {
        let mut cmd = signaal()?;
        // Topics and consumer groups of this run's own, set through the environment.
        for (k, v) in [
            ("SIGNAAL_BUS__TOPICS__RAW", format!("{run_id}.raw")),
            (
                "SIGNAAL_BUS__TOPICS__CLASSIFIED",
                format!("{run_id}.classified"),
            ),
            ("SIGNAAL_BUS__TOPICS__ALERTS", format!("{run_id}.alerts")),
            ("SIGNAAL_BUS__TOPICS__DLQ", format!("{run_id}.dlq")),
            ("SIGNAAL_BUS__GROUP_PREFIX", run_id.clone()),
        ] {
            cmd.env(k, v);
        }
        report(
            &cmd.args(["demo", "--brokers", &brokers, "--database", &db])
                .output()?,
        )
    };
    let first = run()?;
    check_report(&first);
    let second = run()?;
    check_report(&second);
    rt.block_on(
        sqlx::query(&format!("drop database if exists {run_id} with (force)")).execute(&pool),
    )?;
    Ok(())
}
