//! The README's demo command: prints the report, exits 0, and a second run adds no rows.
//! Then the same demo pointed at real Apache Kafka and PostgreSQL with `--brokers`/`--database`.

use std::process::{Command, Output};

mod common;
use common::{drop_database, fresh_database, service_env, signaal_bin, Result};

fn signaal() -> Result<Command> {
    Ok(Command::new(signaal_bin()?))
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
        "Recurrence, ",
        "pattern  digital_service / ",
        "customers who came back: ",
        "Frequency × impact per theme",
        "act now    digital_service",
        "digital_service spiked",
    ] {
        assert!(
            stdout.contains(want),
            "the report should contain {want:?}:\n{stdout}"
        );
    }
    // The bundled flare-up is one alert, and it has resolved by the time of the report.
    let alerts: Vec<&str> = stdout.lines().filter(|l| l.contains(" spiked ")).collect();
    assert_eq!(alerts.len(), 1, "one alert:\n{stdout}");
    assert!(alerts[0].contains("resolved at"), "{}", alerts[0]);
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
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run_id = common::unique("demo");
    let rt = tokio::runtime::Runtime::new()?;
    let (db, pool) = rt.block_on(fresh_database(&run_id))?;
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
    rt.block_on(drop_database(&pool, &run_id))?;
    Ok(())
}
