//! The coordinator's page in a real browser (issue 15, item 5): `signaal serve` over the demo's
//! register on real PostgreSQL, its live feed on real Kafka fed by a real classifier, driven in
//! Debian's Chromium by `tests/browser/coordinator.mjs` (playwright-core, pinned in
//! `tests/browser/package-lock.json`, installed by `scripts/install-deps`). The script compares
//! every chart's marks with the API's numbers, publishes a signal and waits for it in the live
//! feed (≤ 2 s, evidence highlighted), narrows the page with a filter and reloads it, drills
//! down, checks 401s, and leaves screenshots in `target/screenshots/`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use signaal_core::{Channel, RawEnvelope, Signal};

mod common;
use common::{
    base_config, drop_database, fresh_database, repo, run_setup, service_env, signaal_bin,
    start_worker, unique, Result, Workers,
};

const TOKEN: &str = "coordinator-test-token";

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until the server answers its API with the token.
async fn wait_until_serving(base: &str, log: &Path) -> Result {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = client
            .get(format!("{base}/api/v1/themes"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if up {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "`signaal serve` did not answer in 60 s:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn the_coordinators_page_in_chromium() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let script_dir = repo().join("tests/browser");
    if !script_dir.join("node_modules/playwright-core").exists() {
        return Err(
            "tests/browser/node_modules is missing: run scripts/install-deps \
                    (npm ci in tests/browser)"
                .into(),
        );
    }
    let chromium = std::env::var("SIGNAAL_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Err(
            format!("{chromium} is missing: run scripts/install-deps (apt chromium)").into(),
        );
    }
    let run = unique("browser");
    let rt = tokio::runtime::Runtime::new()?;
    let (db, admin) = rt.block_on(fresh_database(&run))?;
    let result = (|| -> Result {
        // The demo's register: its samples fall in 2026-11-10 … 2026-11-17, with a spike.
        let demo = Command::new(signaal_bin()?)
            .args(["demo", "--database", &db])
            .output()?;
        if !demo.status.success() {
            return Err(format!("demo: {}", String::from_utf8_lossy(&demo.stderr)).into());
        }
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let config = dir.path().join("signaal.toml");
        std::fs::write(
            &config,
            base_config(&run, &brokers, &db, 1)
                + &format!("[api]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"),
        )?;
        run_setup(&signaal_bin()?, &config)?;
        let serve_log = dir.path().join("serve.log");
        let mut workers = Workers(vec![
            (
                "classifier".into(),
                start_worker(&config, "classifier", &dir.path().join("classifier.log"))?,
            ),
            ("serve".into(), start_worker(&config, "serve", &serve_log)?),
        ]);
        let base = format!("http://127.0.0.1:{port}");
        rt.block_on(wait_until_serving(&base, &serve_log))?;

        // The signal the script publishes while the page is open.
        let signal = Signal::new(
            Channel::Email,
            "browser-test",
            run.clone(),
            chrono::Utc::now(),
            "Al drie weken wacht ik op een reactie. De monteur is niet verschenen en de website \
             geeft een storing als ik wil inloggen met DigiD.",
        );
        let publish = dir.path().join("publish.json");
        std::fs::write(
            &publish,
            serde_json::to_string(&serde_json::json!({
                "brokers": brokers,
                "topic": format!("{run}.raw"),
                "key": signal.id,
                "id": signal.id,
                "payload": serde_json::to_string(&RawEnvelope::new(signal.clone()))?,
            }))?,
        )?;
        let shots = repo().join("target/screenshots");
        let out = Command::new("node")
            .arg(script_dir.join("coordinator.mjs"))
            .current_dir(&script_dir)
            .env("SIGNAAL_WEB", &base)
            .env("SIGNAAL_TOKEN", TOKEN)
            .env("SIGNAAL_FROM", "2026-11-01")
            .env("SIGNAAL_TO", "2026-11-30")
            .env("SIGNAAL_PUBLISH", &publish)
            .env("SIGNAAL_SHOTS", &shots)
            .env("SIGNAAL_CHROMIUM", &chromium)
            .stdin(Stdio::null())
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        println!("{stdout}");
        workers.terminate()?;
        let logs = || {
            ["serve.log", "classifier.log"]
                .iter()
                .map(|f| {
                    format!(
                        "--- {f}\n{}",
                        std::fs::read_to_string(dir.path().join(f)).unwrap_or_default()
                    )
                })
                .collect::<String>()
        };
        if !out.status.success() {
            return Err(format!(
                "the browser checks failed:\n{stdout}\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                logs()
            )
            .into());
        }
        assert!(stdout.contains("all checks passed"), "{stdout}");
        for shot in [
            "overview",
            "pareto",
            "timeline",
            "impact",
            "recurrence",
            "actions",
            "live",
            "filtered",
            "phone",
        ] {
            let p = shots.join(format!("{shot}.png"));
            assert!(
                std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000),
                "no screenshot {}",
                p.display()
            );
        }
        Ok(())
    })();
    rt.block_on(drop_database(&admin, &run))?;
    result
}
