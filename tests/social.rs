//! The social worker as a process, against the replay servers, on real Kafka and PostgreSQL:
//! tokens from files never reach the log, even when the platforms refuse them; and a worker
//! killed in the middle of a run (while it backs off from server errors) leaves neither gaps nor
//! duplicates once it is started again.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    base_config, drop_database, fresh_database, repo, run_setup, service_env, signaal_bin,
    social_sample_ids, wait_for_signals, Result, Workers,
};
use signaal_social::replay::{serve, Failure, Recordings};
use tokio_util::sync::CancellationToken;

const X_TOKEN: &str = "AAAAx-bearer-token-9d2c";
const FB_TOKEN: &str = "EAAGfb-page-token-51be";

fn samples(dir: &str) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("samples").join(dir))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    Ok(files)
}

async fn replay(failures: Vec<Failure>, stop: &CancellationToken) -> Result<String> {
    let read = |dir: &str| -> Result<Vec<String>> {
        samples(dir)?
            .iter()
            .map(|f| Ok(std::fs::read_to_string(f)?))
            .collect()
    };
    let recordings = Recordings {
        x_pages: read("twitter")?,
        facebook_pages: read("facebook")?,
        failures,
        ..Default::default()
    };
    Ok(serve(recordings, stop.clone()).await?.0)
}

/// A config with one X search and one Facebook page against `api`, tokens in files.
fn social_config(dir: &std::path::Path, base: String, api: &str) -> Result<PathBuf> {
    std::fs::write(dir.join("x-token"), format!("{X_TOKEN}\n"))?;
    std::fs::write(dir.join("fb-token"), format!("{FB_TOKEN}\n"))?;
    let config = dir.join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{base}[social]\npoll_seconds = 1\n\
             [[social.x]]\nname = \"x\"\nbase_url = \"{api}\"\nquery = \"@gemeente\"\n\
             bearer_token_file = \"{}\"\n\
             [[social.facebook]]\nname = \"fb\"\nbase_url = \"{api}\"\npage_id = \"104857600000001\"\n\
             access_token_file = \"{}\"\n",
            dir.join("x-token").display(),
            dir.join("fb-token").display()
        ),
    )?;
    Ok(config)
}

fn start(config: &std::path::Path, worker: &str, log: PathBuf) -> Result<std::process::Child> {
    start_listening(config, worker, log, None)
}

fn start_listening(
    config: &std::path::Path,
    worker: &str,
    log: PathBuf,
    listen: Option<u16>,
) -> Result<std::process::Child> {
    let mut cmd = Command::new(signaal_bin()?);
    cmd.arg("--config").arg(config).arg(worker);
    if let Some(port) = listen {
        cmd.arg("--listen").arg(format!("127.0.0.1:{port}"));
    }
    Ok(cmd
        .env(
            "SIGNAAL_LOG",
            "debug,rdkafka=warn,sqlx=warn,hyper=info,reqwest=debug",
        )
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log)?)
        .spawn()?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_are_reported_without_the_tokens() -> Result {
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let stop = CancellationToken::new();
    let mut x_refused = Failure::server_error("/2/", 401);
    x_refused.body =
        r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#
            .into();
    let api = replay(
        vec![
            x_refused,
            Failure::graph_error(
                190,
                400,
                "Error validating access token: Session has expired",
            ),
        ],
        &stop,
    )
    .await?;
    let dir = tempfile::tempdir()?;
    let run = common::unique("tok");
    let db = format!("sqlite:{}", dir.path().join("r.db").display());
    let config = social_config(dir.path(), base_config(&run, &brokers, &db, 1), &api)?;
    run_setup(&signaal_bin()?, &config)?;
    let log = dir.path().join("social.log");
    let ops = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut workers = Workers(vec![(
        "social".into(),
        start_listening(&config, "social", log.clone(), Some(ops))?,
    )]);
    // Long enough for both refusals and a successful poll after them.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("the token was refused") && text.contains("Graph error 190") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Requests by endpoint and status on /metrics: the refusals.
    let metrics = reqwest::get(format!("http://127.0.0.1:{ops}/metrics"))
        .await?
        .text()
        .await?;
    for line in [
        "signaal_social_requests_total{endpoint=\"x recent search\",status=\"401\"} 1",
        "signaal_social_requests_total{endpoint=\"facebook feed\",status=\"400\"} 1",
    ] {
        assert!(metrics.contains(line), "`{line}` missing:\n{metrics}");
    }
    workers.terminate()?;
    stop.cancel();
    assert!(
        text.contains("the token was refused"),
        "X refusal reported:\n{text}"
    );
    assert!(
        text.contains("Graph error 190"),
        "Graph refusal reported:\n{text}"
    );
    for secret in [X_TOKEN, FB_TOKEN] {
        assert!(!text.contains(secret), "`{secret}` is in the log:\n{text}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_run_and_restarted_no_gaps_no_duplicates() -> Result {
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let stop = CancellationToken::new();
    // Server errors make the first run back off for seconds in the middle of paging.
    let api = replay(
        vec![
            Failure::server_error("/2/", 503),
            Failure::server_error("/2/", 503),
            Failure::server_error("/2/", 503),
            Failure::server_error("/v", 500),
            Failure::server_error("/v", 500),
            Failure::server_error("/v", 500),
        ],
        &stop,
    )
    .await?;
    let run = common::unique("soc");
    let (db, admin) = fresh_database(&run).await?;
    let dir = tempfile::tempdir()?;
    let config = social_config(dir.path(), base_config(&run, &brokers, &db, 2), &api)?;

    let expected = social_sample_ids(&bin, &config)?;
    run_setup(&bin, &config)?;
    let store = signaal_store::Store::connect(&db).await?;
    let mut first = start(&config, "social", dir.path().join("social-1.log"))?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    first.kill()?;
    first.wait()?;
    assert!(
        store.cursors("x").await?.is_empty(),
        "the killed run was still backing off: nothing committed"
    );

    let mut workers = Workers(vec![
        (
            "social".into(),
            start(&config, "social", dir.path().join("social-2.log"))?,
        ),
        (
            "classifier".into(),
            start(&config, "classifier", dir.path().join("classifier.log"))?,
        ),
    ]);
    wait_for_signals(&store, expected.len(), Duration::from_secs(60)).await?;
    // A few more polls: they must add nothing.
    tokio::time::sleep(Duration::from_secs(3)).await;
    workers.terminate()?;
    stop.cancel();
    let stored: BTreeSet<String> = store.signal_ids().await?.into_iter().collect();
    let log = std::fs::read_to_string(dir.path().join("social-2.log")).unwrap_or_default();
    assert_eq!(stored, expected, "every post once, none missing:\n{log}");
    assert_eq!(store.count_signals().await? as usize, expected.len());
    assert!(store.get_cursor("x", "since_id").await?.is_some());
    assert!(store.get_cursor("fb", "since").await?.is_some());
    store.close().await;
    drop_database(&admin, &run).await?;
    Ok(())
}
