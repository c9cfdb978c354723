//! The coordinator's page on a big register, and the live feed with many browsers:
//! `SIGNAAL_BENCH_DATABASE_URL=postgres://… cargo bench -p signaal-web --bench page -- [SIGNALS]`.
//!
//! Reads the register `cargo bench -p signaal-api --bench reports` fills
//! (`signaal_bench_reports_<SIGNALS>`, default 5,000,000 over two years), serves the page as
//! `signaal serve` does on a loopback port, and times over HTTP:
//! - the page's first full load over the last year (every view: two Pareto charts, five
//!   timelines with their band, the scatter, recurrence, actions, the newest signals), then
//!   p50/max of 5 more loads;
//! - the live feed: 200 concurrent SSE clients (and 1 for comparison) while 100 signals are
//!   pushed, 20 a second; the delay from push to each client's receipt, p50/p99/max.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use signaal_analysis::AnalysisConfig;
use signaal_api::http::{ApiConfig, AppState};
use signaal_api::reports::Vocabulary;
use signaal_store::Store;
use signaal_web::live::{Hub, LiveSignal};
use signaal_web::page::Labels;
use signaal_web::WebState;
use tokio_util::sync::CancellationToken;

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

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), v[v.len() - 1])
}

async fn load(http: &reqwest::Client, url: &str) -> Result<(f64, usize), BoxError> {
    let t = Instant::now();
    let resp = http.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    if !status.is_success() {
        return Err(format!("{url}: {status}: {body}").into());
    }
    Ok((t.elapsed().as_secs_f64() * 1000.0, body.len()))
}

/// Opens `clients` SSE streams, pushes `n` signals at `rate` a second, returns every delay (ms).
async fn fan_out(
    base: &str,
    hub: &Arc<Hub>,
    clients: usize,
    n: usize,
    rate: f64,
) -> Result<Vec<f64>, BoxError> {
    let http = reqwest::Client::new();
    let sent: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut tasks = tokio::task::JoinSet::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(clients);
    for _ in 0..clients {
        let resp = http.get(format!("{base}/live/signals")).send().await?;
        let sent = sent.clone();
        let ready = ready_tx.clone();
        tasks.spawn(async move {
            let mut resp = resp;
            let mut buf = String::new();
            let mut delays = Vec::new();
            let mut hello = false;
            while let Ok(Some(chunk)) = resp.chunk().await {
                let at = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find("\n\n") {
                    let event: String = buf.drain(..end + 2).collect();
                    if event.contains("event: hello") && !hello {
                        hello = true;
                        let _ = ready.send(()).await;
                    }
                    if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(data) {
                            if let Some(id) = v["id"].as_str() {
                                let t0 = sent.lock().ok().and_then(|m| m.get(id).copied());
                                if let Some(t0) = t0 {
                                    delays.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                                }
                                if id == "last" {
                                    return delays;
                                }
                            }
                        }
                    }
                }
            }
            delays
        });
    }
    drop(ready_tx);
    for _ in 0..clients {
        ready_rx
            .recv()
            .await
            .ok_or("a client closed before its first event")?;
    }
    let signal = |id: String| LiveSignal {
        id,
        channel: "email".into(),
        occurred_at: Utc::now(),
        subject: None,
        text: "De website geeft een storing bij het inloggen met DigiD; al drie keer gebeld."
            .repeat(4),
        themes: vec![],
        subjects: vec![],
        cause: "system".into(),
        kind: "complaint".into(),
        impact: Some(4.2),
        classifier: "bench".into(),
    };
    let gap = Duration::from_secs_f64(1.0 / rate);
    for i in 0..=n {
        let id = if i == n {
            "last".to_string()
        } else {
            format!("s{i}")
        };
        if let Ok(mut m) = sent.lock() {
            m.insert(id.clone(), Instant::now());
        }
        hub.push(&signal(id));
        tokio::time::sleep(gap).await;
    }
    let mut all = Vec::new();
    while let Some(d) = tasks.join_next().await {
        all.extend(d?);
    }
    Ok(all)
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let n: u64 = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let test_mode = std::env::args().any(|a| a == "--test");
    let url = std::env::var("SIGNAAL_BENCH_DATABASE_URL")
        .map_err(|_| "set SIGNAAL_BENCH_DATABASE_URL (postgres://…)")?;
    let db = if url.starts_with("sqlite:") {
        url.clone()
    } else {
        let (base, _) = url.rsplit_once('/').ok_or("database url has no name")?;
        format!("{base}/signaal_bench_reports_{n}")
    };
    let store = Store::connect(&db).await.map_err(|e| {
        format!("{e}: fill it first with `cargo bench -p signaal-api --bench reports -- {n}`")
    })?;
    let stored = store.count_signals().await?;
    let themes = serde_json::Value::Array(
        THEMES
            .iter()
            .map(|t| serde_json::json!({ "id": t, "label": t }))
            .collect(),
    );
    let subjects = serde_json::Value::Array(
        (0..60)
            .map(|i| serde_json::json!({ "id": format!("subject_{i}"), "label": {"nl": format!("onderwerp {i}")} }))
            .collect(),
    );
    let app = Arc::new(AppState {
        store: store.clone(),
        analysis: AnalysisConfig::default(),
        api: ApiConfig::default(),
        vocabulary: Vocabulary {
            themes: THEMES.iter().map(|t| t.to_string()).collect(),
            subjects: (0..60).map(|i| format!("subject_{i}")).collect(),
        },
        themes: themes.clone(),
        subjects: subjects.clone(),
        detect: signaal_detect::Settings::default(),
    });
    let labels = Labels::from_taxonomy(&themes, &subjects);
    let hub = Hub::new(5_000);
    let state = Arc::new(WebState {
        app,
        hub: hub.clone(),
        labels,
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(signaal_web::server::serve(
        listener,
        state,
        shutdown.clone(),
    ));
    let end = Utc
        .with_ymd_and_hms(2026, 12, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let to = (end - chrono::Duration::days(1)).date_naive();
    let from = to
        .checked_sub_signed(chrono::Duration::days(364))
        .ok_or("date")?;
    let page = format!("{base}/?from={from}&to={to}");
    let http = reqwest::Client::new();
    println!(
        "{stored} signals in {}; the page over {from} – {to}",
        store.backend()
    );
    println!();
    let (first, bytes) = load(&http, &page).await?;
    let mut again = Vec::new();
    for _ in 0..if test_mode { 1 } else { 5 } {
        again.push(load(&http, &page).await?.0);
    }
    let (p50, _, max) = stats(again);
    println!("| page, one year, all views | first load | p50 of next 5 | max | size |");
    println!("|---|---|---|---|---|");
    println!(
        "| {stored} signals | {first:.0} ms | {p50:.0} ms | {max:.0} ms | {} KiB |",
        bytes / 1024
    );
    println!();
    let (signals, rate) = if test_mode { (5, 50.0) } else { (100, 20.0) };
    println!("| live feed: SSE clients | deliveries | p50 delay | p99 | max |");
    println!("|---|---|---|---|---|");
    for clients in [1, 200] {
        let clients = if test_mode { clients.min(10) } else { clients };
        let delays = fan_out(&base, &hub, clients, signals, rate).await?;
        let expected = clients * (signals + 1);
        if delays.len() != expected {
            return Err(format!("{} of {expected} deliveries arrived", delays.len()).into());
        }
        let (p50, p99, max) = stats(delays);
        println!("| {clients} | {expected} | {p50:.1} ms | {p99:.1} ms | {max:.1} ms |");
    }
    shutdown.cancel();
    server.await??;
    store.close().await;
    Ok(())
}
