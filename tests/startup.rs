//! Start-up as an operator meets it: a worker with a bad setting, a missing secret, an address in
//! use or a service that is down stops at once with an error that says which, and names the
//! address it could not reach — printed once per cause, and as JSON under `--log-format json`.
//!
//! No service is needed: "down" is a loopback port nobody listens on, and a broker that is "up"
//! is a listener that takes TCP connections (topics are not created: `create_topics = false`).

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{signaal_bin, Result};

/// Every check here must answer well within this; the old start-up took 30–60 s or ran on.
const QUICK: Duration = Duration::from_secs(15);

/// A loopback port with nobody listening.
fn closed_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

struct Outcome {
    success: bool,
    stderr: String,
    took: Duration,
}

/// Runs `signaal --config CONFIG ARGS…` with `env` (and no other `SIGNAAL_` configuration),
/// killing it if it has not exited after [`QUICK`].
fn run(dir: &Path, config: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Outcome> {
    let path = dir.join("signaal.toml");
    std::fs::write(&path, config)?;
    let log = dir.join("stderr.log");
    let mut cmd = Command::new(signaal_bin()?);
    for (key, _) in std::env::vars() {
        if key.starts_with("SIGNAAL_") && key != "SIGNAAL_BIN" {
            cmd.env_remove(key);
        }
    }
    let started = Instant::now();
    let mut child = cmd
        .arg("--config")
        .arg(&path)
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > QUICK {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&log)?;
    let took = started.elapsed();
    match status {
        None => Err(format!(
            "`signaal {}` was still running after {} s:\n{stderr}",
            args.join(" "),
            QUICK.as_secs()
        )
        .into()),
        Some(status) => Ok(Outcome {
            success: status.success(),
            stderr,
            took,
        }),
    }
}

/// A configuration whose broker is `brokers` and whose register is a SQLite file in `dir`.
fn config(dir: &Path, brokers: &str, extra: &str) -> String {
    format!(
        "[bus]\nbrokers = \"{brokers}\"\ncreate_topics = false\n[store]\nurl = \"sqlite:{}\"\n{extra}",
        dir.join("register.db").display()
    )
}

/// Fails unless the run failed quickly with every one of `want` in its error.
fn refused(outcome: &Outcome, want: &[&str]) -> Result {
    let last = outcome.stderr.trim_end().lines().last().unwrap_or_default();
    if outcome.success {
        return Err(format!("exit 0, expected an error:\n{}", outcome.stderr).into());
    }
    for w in want {
        if !last.to_lowercase().contains(&w.to_lowercase()) {
            return Err(format!("the error does not say `{w}`:\n{}", outcome.stderr).into());
        }
    }
    Ok(())
}

const SECRET: &str = "[classifier]\nauthor_secret = \"k3y-van-de-test\"\n";

#[test]
fn a_listen_address_in_use_stops_the_worker_at_once() -> Result {
    let dir = tempfile::tempdir()?;
    let taken = TcpListener::bind("127.0.0.1:0")?;
    let addr = taken.local_addr()?.to_string();
    let broker = TcpListener::bind("127.0.0.1:0")?;
    let cfg = config(dir.path(), &broker.local_addr()?.to_string(), SECRET);
    let out = run(dir.path(), &cfg, &["classifier", "--listen", &addr], &[])?;
    refused(
        &out,
        &[
            &format!("cannot listen on {addr}"),
            "address already in use",
        ],
    )
}

#[test]
fn settings_that_cannot_work_are_refused_before_connecting() -> Result {
    let dir = tempfile::tempdir()?;
    let down = format!("127.0.0.1:{}", closed_port()?);
    for (worker, extra, env, want) in [
        (
            "phone",
            "[phone]\npoll_seconds = 0\n",
            &[][..],
            &["`phone.poll_seconds` must be at least 1"][..],
        ),
        (
            "classifier",
            SECRET,
            &[("SIGNAAL_BUS__BROKERS", "")][..],
            &["`bus.brokers` is empty"][..],
        ),
        // The missing secret, not the broker that is down.
        (
            "classifier",
            "",
            &[][..],
            &[
                "author pseudonym secret is empty",
                "classifier.author_secret",
            ][..],
        ),
        (
            "classifier",
            "[classifier]\nauthor_secret = \"   \"\n",
            &[][..],
            &["`classifier.author_secret` is empty or only whitespace"][..],
        ),
        (
            "classifier",
            "",
            &[("SIGNAAL_CLASSIFIER__AUTHOR_SECRET", "20240517")][..],
            &["a secret must be text", "author_secret"][..],
        ),
        (
            "classifier",
            SECRET,
            &[(
                "SIGNAAL_STORE__URL",
                "postgres://u:hunter2@db/x?sslmode=sometimes&password=hunter3",
            )][..],
            &["invalid database url", "sometimes"][..],
        ),
    ] {
        let out = run(
            dir.path(),
            &config(dir.path(), &down, extra),
            &[worker],
            env,
        )?;
        refused(&out, want).map_err(|e| format!("{extra:?} {env:?}: {e}"))?;
        assert!(
            !out.stderr.contains("20240517") && !out.stderr.contains("hunter"),
            "a secret in the error:\n{}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("Kafka"),
            "checked only after trying the broker:\n{}",
            out.stderr
        );
    }
    Ok(())
}

#[test]
fn kafka_down_names_the_broker_at_once() -> Result {
    let dir = tempfile::tempdir()?;
    let down = format!("127.0.0.1:{}", closed_port()?);
    let out = run(
        dir.path(),
        &config(dir.path(), &down, SECRET),
        &["classifier"],
        &[],
    )?;
    refused(
        &out,
        &[&format!(
            "cannot reach Kafka at {down} (connection refused)"
        )],
    )?;
    assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);
    // `import` (not a dry run) too: it used to wait a minute and not name the broker.
    let mail = dir.path().join("klacht.eml");
    std::fs::write(
        &mail,
        "From: a@voorbeeld.nl\r\nSubject: brief\r\nMessage-ID: <k1@voorbeeld.nl>\r\n\r\nonduidelijke brief\r\n",
    )?;
    let mail = mail.to_string_lossy().to_string();
    let out = run(
        dir.path(),
        &config(dir.path(), &down, SECRET),
        &["import", "email", &mail],
        &[],
    )?;
    refused(
        &out,
        &[&format!(
            "cannot reach Kafka at {down} (connection refused)"
        )],
    )?;
    assert!(
        out.took < Duration::from_secs(10),
        "import took {:?}",
        out.took
    );
    Ok(())
}

/// PostgreSQL down: the server's address and "connection refused", each cause once, no password,
/// in seconds (the pool used to retry in silence and say "pool timed out" after 30 s) — and as
/// one JSON line under `--log-format json`.
#[test]
fn postgres_down_is_named_once_without_the_password_in_both_log_formats() -> Result {
    let dir = tempfile::tempdir()?;
    let broker = TcpListener::bind("127.0.0.1:0")?;
    let pg = format!("127.0.0.1:{}", closed_port()?);
    let cfg = config(dir.path(), &broker.local_addr()?.to_string(), SECRET);
    let url = format!("postgres://signaal:hunter2@{pg}/signaal?password=hunter3&sslmode=prefer");
    let env = [("SIGNAAL_STORE__URL", url.as_str())];

    let out = run(dir.path(), &cfg, &["classifier"], &env)?;
    refused(
        &out,
        &[
            "signaal: store `postgres://signaal:***@",
            &format!("could not connect to postgresql at {pg}"),
            "connection refused",
        ],
    )?;
    let last = out
        .stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_lowercase();
    assert_eq!(last.matches("connection refused").count(), 1, "{last}");
    assert!(!out.stderr.contains("hunter"), "{}", out.stderr);
    assert!(out.took < Duration::from_secs(10), "took {:?}", out.took);

    let out = run(
        dir.path(),
        &cfg,
        &["--log-format", "json", "classifier"],
        &env,
    )?;
    assert!(!out.success);
    let last = out.stderr.trim_end().lines().last().unwrap_or_default();
    let line: serde_json::Value = serde_json::from_str(last)
        .map_err(|e| format!("the final error line is not JSON ({e}): {last}"))?;
    assert_eq!(line["level"], "ERROR", "{last}");
    let error = line["fields"]["error"].as_str().unwrap_or_default();
    assert!(
        error.contains(&format!("could not connect to postgresql at {pg}"))
            && error.to_lowercase().matches("connection refused").count() == 1,
        "{last}"
    );
    assert!(!out.stderr.contains("hunter"), "{}", out.stderr);
    Ok(())
}
