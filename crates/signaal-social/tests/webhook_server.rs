//! The webhook receiver against slow clients: trickled heads and bodies are cut off, and
//! connections beyond the limit wait. Kafka is librdkafka's in-process mock cluster. (The flood
//! of forged deliveries is in `webhook_flood.rs`, alone in its process: `tracing` caches per
//! call site whether anyone listens, which a test running beside it could decide first.)

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use signaal_bus::{MockKafka, Publisher};
use signaal_social::webhook::{serve_on, sign, Limits, LogGate, WebhookConfig, PATH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const SECRET: &[u8] = b"app-secret-for-tests";

/// The metrics of this test binary (one recorder per process).
fn metrics() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Another test may have won the race; then its recorder is the one in use.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

fn counter(name_and_labels: &str) -> Option<f64> {
    metrics()
        .render()
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

struct Receiver {
    addr: std::net::SocketAddr,
    _mock: MockKafka,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(source: &str, limits: Limits) -> Result<Receiver> {
    metrics();
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cfg = WebhookConfig {
        source: source.into(),
        app_secret: SECRET.to_vec(),
        verify_token: "verify".into(),
        own_page_ids: vec![],
    };
    let stop = CancellationToken::new();
    tokio::spawn(serve_on(listener, cfg, limits, publisher, stop.clone()));
    Ok(Receiver {
        addr,
        _mock: mock,
        _stop: stop.drop_guard(),
    })
}

fn quick(max_connections: usize) -> Limits {
    Limits {
        header_timeout: Duration::from_millis(600),
        body_timeout: Duration::from_millis(600),
        max_connections,
        log_every: Duration::from_secs(600),
        ..Limits::default()
    }
}

/// Sends `head` then `trickle` one byte per 100 ms; returns what the server answered and when
/// it closed (or `None` if it still held the connection after 5 s).
async fn trickle(
    addr: std::net::SocketAddr,
    head: &str,
    trickle: &[u8],
) -> Result<(String, Option<Duration>)> {
    let started = Instant::now();
    let stream = TcpStream::connect(addr).await?;
    let (mut read, mut write) = stream.into_split();
    write.write_all(head.as_bytes()).await?;
    let bytes = trickle.to_vec();
    let writer = tokio::spawn(async move {
        for b in bytes {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if write.write_all(&[b]).await.is_err() {
                return;
            }
        }
        // Keep the write side open: the client is slow, not gone.
        tokio::time::sleep(Duration::from_secs(10)).await;
    });
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok();
    writer.abort();
    Ok((String::from_utf8_lossy(&answer).into_owned(), closed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_head_is_cut_off_at_the_header_timeout() -> Result {
    let rx = start("hook-head", quick(8)).await?;
    let head = format!("POST {PATH} HTTP/1.1\r\nHost: x\r\n");
    let rest = "X-Hub-Signature-256: sha256=00\r\nContent-Length: 2\r\n\r\n{}";
    let (_, closed) = trickle(rx.addr, &head, rest.as_bytes()).await?;
    let closed = closed.ok_or("a head trickled one byte per 100 ms held the connection for 5 s")?;
    assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_gets_408_at_the_body_timeout() -> Result {
    let rx = start("hook-body", quick(8)).await?;
    let body = br#"{"object":"page","entry":[]}"#;
    let head = format!(
        "POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         X-Hub-Signature-256: {}\r\nContent-Length: {}\r\n\r\n",
        sign(SECRET, body),
        body.len()
    );
    let (answer, closed) = trickle(rx.addr, &head, body).await?;
    let closed = closed.ok_or("a body trickled one byte per 100 ms held the connection for 5 s")?;
    assert!(closed < Duration::from_secs(2), "closed after {closed:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "answer: {answer:?}");
    assert_eq!(
        counter(r#"signaal_webhook_refused_total{source="hook-body",reason="body_timeout"}"#),
        Some(1.0)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_wait_for_a_free_one() -> Result {
    let rx = start("hook-limit", quick(2)).await?;
    // Two clients that connect and say nothing hold both places ...
    let idle = [
        TcpStream::connect(rx.addr).await?,
        TcpStream::connect(rx.addr).await?,
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ... so a handshake waits until the header timeout frees one of them.
    let started = Instant::now();
    let mut third = TcpStream::connect(rx.addr).await?;
    third
        .write_all(
            format!(
                "GET {PATH}?hub.mode=subscribe&hub.verify_token=verify&hub.challenge=4242 \
                 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), third.read_to_string(&mut answer)).await??;
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(answer.ends_with("4242"), "{answer:?}");
    assert!(
        waited >= Duration::from_millis(300),
        "answered after {waited:?}: the limit did not hold"
    );
    drop(idle);
    Ok(())
}

#[test]
fn the_log_gate_lets_one_line_through_per_interval_and_counts_the_rest() {
    let t0 = Instant::now();
    let mut gate = LogGate::new(Duration::from_secs(10));
    assert_eq!(gate.admit(t0), Some(0));
    let passed = (1..1000)
        .filter_map(|i| gate.admit(t0 + Duration::from_millis(i)))
        .count();
    assert_eq!(passed, 0);
    assert_eq!(gate.admit(t0 + Duration::from_secs(10)), Some(999));
    assert_eq!(gate.admit(t0 + Duration::from_secs(11)), None);
    assert_eq!(gate.admit(t0 + Duration::from_secs(25)), Some(1));
}
