//! The broker goes down under a running classifier and comes back: work must resume within
//! seconds of the broker being ready (issue 11 measured 7.6–133 s before, from errors queued
//! during the outage being handled one at a time with a pause each, and librdkafka's 10 s
//! reconnect backoff).
//!
//! This test kills a broker, so it runs its own: a second Apache Kafka (KRaft) on other ports,
//! started with `scripts/kafka-local` from a services folder of its own, sharing the jars of
//! the suite's broker. It is the only test in this binary.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    base_config, drop_database, fresh_database, repo, run_setup, service_env, signaal_bin,
    start_worker, wait_for_signals, Result, Workers,
};
use signaal_bus::Publisher;
use signaal_core::{Channel, Signal};

/// A broker of this test's own; stopped when dropped.
struct Broker {
    dir: PathBuf,
    port: u16,
}

impl Broker {
    fn script(&self, action: &str) -> Result<String> {
        let libs = repo().join("target/services/kafka/libs");
        let mut cmd = Command::new(repo().join("scripts/kafka-local"));
        cmd.arg(action)
            .env("SIGNAAL_SERVICES_DIR", &self.dir)
            .env("KAFKA_PORT", self.port.to_string())
            .env("KAFKA_CONTROLLER_PORT", (self.port + 1).to_string());
        if libs.join(".complete").exists() {
            cmd.env("KAFKA_LIBS", libs);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(format!(
                "kafka-local {action} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// SIGKILL, as a crashed machine would: no controlled shutdown.
    fn kill(&self) -> Result {
        let pid = std::fs::read_to_string(self.dir.join("kafka/pid"))?;
        Command::new("kill").args(["-9", pid.trim()]).status()?;
        let proc = Path::new("/proc").join(pid.trim());
        let deadline = Instant::now() + Duration::from_secs(30);
        while proc.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        std::fs::remove_file(self.dir.join("kafka/pid"))?;
        Ok(())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.script("stop");
    }
}

fn calls(run: &str, from: usize, to: usize) -> Vec<Signal> {
    (from..to)
        .map(|n| {
            Signal::new(
                Channel::Phone,
                "restart",
                format!("{run}-{n}"),
                chrono::Utc::now(),
                "al een uur in de wacht",
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_the_first_new_row_lands_within_seconds() -> Result {
    // The suite's broker must be up: its jars are shared, and a missing service fails the test.
    service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("restart");
    let services = tempfile::tempdir()?;
    let broker = Broker {
        dir: services.path().to_path_buf(),
        port: 19292,
    };
    let brokers = broker.script("start")?;
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, base_config(&run, &brokers, &db, 2))?;
    run_setup(&signaal_bin()?, &config)?;
    let bus = common::bus_config(&brokers, &run);
    let publisher = Publisher::new(&bus)?;
    publisher.publish_raw(&calls(&run, 0, 200)).await?;

    let log = dir.path().join("classifier.log");
    let show = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut workers = Workers(vec![(
        "classifier".into(),
        start_worker(&config, "classifier", &log)?,
    )]);
    let store = signaal_store::Store::connect(&db).await?;
    assert_eq!(
        wait_for_signals(&store, 200, Duration::from_secs(60)).await?,
        200,
        "log:\n{}",
        show()
    );

    // Down for 15 s: the classifier's consumer and producer pile up connection errors.
    broker.kill()?;
    tokio::time::sleep(Duration::from_secs(15)).await;
    broker.script("start")?;
    let ready = Instant::now();
    // A producer of its own, as a source worker would have.
    let publisher = Publisher::new(&bus)?;
    publisher.publish_raw(&calls(&run, 200, 201)).await?;
    let published = ready.elapsed();
    let n = wait_for_signals(&store, 201, Duration::from_secs(120)).await?;
    let first_row = ready.elapsed();
    assert_eq!(n, 201, "the new row landed; log:\n{}", show());
    let report = format!(
        "broker restart: first new row in the register {:.2} s after the broker was ready \
         (its publish took {:.2} s of that)\n",
        first_row.as_secs_f64(),
        published.as_secs_f64()
    );
    eprint!("{report}");
    let _ = std::fs::write(repo().join("target/broker-restart-report.txt"), report);
    assert!(
        first_row < Duration::from_secs(10),
        "the classifier took {:.1} s to resume after the broker was ready (limit 10 s); log:\n{}",
        first_row.as_secs_f64(),
        show()
    );
    let ids = store.signal_ids().await?;
    assert_eq!(ids.len(), 201, "each signal once");
    workers.terminate()?;
    store.close().await;
    drop_database(&admin, &run).await?;
    drop(broker);
    Ok(())
}
