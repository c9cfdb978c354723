//! The Facebook webhook receiver of a running `signaal social` process, on real Apache Kafka:
//! the subscription handshake, signed deliveries published, forged and unsigned ones refused with
//! 401 and nothing published, and the secrets nowhere in the logs.

mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{
    base_config, dry_run_ids, kcat_read, repo, run_setup, service_env, signaal_bin, Result, Workers,
};
use signaal_social::webhook::{sign, PATH};

const SECRET: &str = "app-secret-7f3a9c";
const VERIFY: &str = "verify-token-b41e";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_are_published_and_forged_ones_refused() -> Result {
    let bin = signaal_bin()?;
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("hook");
    let dir = tempfile::tempdir()?;
    let ops = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    std::fs::write(dir.path().join("app-secret"), format!("{SECRET}\n"))?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[social.webhook]\nlisten = \"127.0.0.1:{port}\"\napp_secret_file = \"{}\"\n\
             verify_token = \"{VERIFY}\"\nown_page_ids = [\"104857600000001\"]\n",
            // The store is not used by the receiver; SQLite keeps the test free of PostgreSQL.
            base_config(
                &run,
                &brokers,
                &format!("sqlite:{}", dir.path().join("r.db").display()),
                1
            ),
            dir.path().join("app-secret").display()
        ),
    )?;
    run_setup(&bin, &config)?;
    let log = dir.path().join("social.log");
    let mut workers = Workers(vec![(
        "social".into(),
        Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg("social")
            .arg("--listen")
            .arg(format!("127.0.0.1:{ops}"))
            .env("SIGNAAL_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?,
    )]);
    let url = format!("http://127.0.0.1:{port}{PATH}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match http.get(&url).send().await {
            Ok(_) => break,
            Err(e) if Instant::now() > deadline => {
                return Err(format!("receiver not up: {e}").into())
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    // The subscription handshake.
    let hs = |token: &str| {
        http.get(&url).query(&[
            ("hub.mode", "subscribe"),
            ("hub.verify_token", token),
            ("hub.challenge", "1158201444"),
        ])
    };
    let ok = hs(VERIFY).send().await?;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await?, "1158201444");
    assert_eq!(hs("guess").send().await?.status(), 403);

    let fixture = repo().join("crates/signaal-social/tests/fixtures/webhook-feed.json");
    let body = std::fs::read(&fixture)?;
    let post = |signature: Option<String>, body: Vec<u8>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-hub-signature-256", sig);
        }
        req
    };
    // Forged: signed with another secret, tampered after signing, not signed at all.
    let forged = [
        post(Some(sign(b"not-the-secret", &body)), body.clone()),
        post(
            Some(sign(SECRET.as_bytes(), &body)),
            String::from_utf8(body.clone())?
                .replace("drie weken", "vier weken")
                .into_bytes(),
        ),
        post(None, body.clone()),
        post(Some("sha256=zz".into()), body.clone()),
    ];
    for req in forged {
        assert_eq!(req.send().await?.status(), 401);
    }
    // Signed: accepted, and a redelivery of the same payload is accepted too.
    for _ in 0..2 {
        let resp = post(Some(sign(SECRET.as_bytes(), &body)), body.clone())
            .send()
            .await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await?, "EVENT_RECEIVED");
    }
    // The refusals and the deliveries on /metrics.
    let metrics = http
        .get(format!("http://127.0.0.1:{ops}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let value = |prefix: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    assert_eq!(
        value("signaal_webhook_signature_failures_total{source=\"facebook-webhook\"}"),
        Some(4.0),
        "{metrics}"
    );
    assert_eq!(
        value("signaal_source_signals_published_total{source=\"facebook-webhook\"}"),
        Some(4.0),
        "{metrics}"
    );
    workers.terminate()?;

    // What the one-shot import says the payload holds is exactly what was published: twice (the
    // redelivery; the register keys on the id), and nothing from the forged requests.
    let want = dry_run_ids(
        &bin,
        &config,
        &[
            "facebook-webhook",
            "--page-id",
            "104857600000001",
            &fixture.to_string_lossy(),
        ],
    )?;
    assert_eq!(
        want.len(),
        2,
        "a complaint and a compliment; the page's own reply and a reaction are not signals"
    );
    let raw = kcat_read(&brokers, &format!("{run}.raw"))?;
    let keys: BTreeSet<String> = raw.iter().map(|(k, _, _)| k.clone()).collect();
    assert_eq!(raw.len(), 4, "two signals, delivered twice");
    assert_eq!(keys, want);

    let logged = std::fs::read_to_string(&log)?;
    assert!(
        logged.contains("webhook refused"),
        "refusals are logged:\n{logged}"
    );
    for secret in [SECRET, VERIFY] {
        assert!(
            !logged.contains(secret),
            "`{secret}` appeared in the log:\n{logged}"
        );
    }
    Ok(())
}
