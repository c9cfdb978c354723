//! A flood of forged webhook deliveries is counted exactly but logged once. Alone in its test
//! binary: `tracing` caches per call site whether anyone listens, and a test running beside it
//! could hit the same call site first.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use signaal_bus::{MockKafka, Publisher};
use signaal_social::webhook::{serve_on, sign, Limits, WebhookConfig, PATH};
use tokio_util::sync::CancellationToken;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A `tracing` writer that keeps what was written.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

// One thread, so the spawned receiver logs to this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_forged_deliveries_is_counted_exactly_and_logged_once() -> Result {
    let log = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(log.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let recorder = PrometheusBuilder::new().build_recorder();
    let metrics = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let cfg = WebhookConfig {
        source: "hook-flood".into(),
        app_secret: b"app-secret-for-tests".to_vec(),
        verify_token: "verify".into(),
        own_page_ids: vec![],
    };
    let limits = Limits {
        log_every: Duration::from_secs(600),
        ..Limits::default()
    };
    let stop = CancellationToken::new();
    let _stop = stop.clone().drop_guard();
    tokio::spawn(serve_on(listener, cfg, limits, publisher, stop));
    let url = format!("http://{addr}{PATH}");
    let http = reqwest::Client::new();
    let body = br#"{"object":"page","entry":[]}"#.to_vec();
    for _ in 0..1000 {
        let status = http
            .post(&url)
            .header("x-hub-signature-256", sign(b"forged", &body))
            .body(body.clone())
            .send()
            .await?
            .status();
        assert_eq!(status, 401);
    }
    let text = String::from_utf8(log.0.lock().map_err(|_| "log lock")?.clone())?;
    let lines = text
        .lines()
        .filter(|l| l.contains("webhook refused"))
        .count();
    assert_eq!(lines, 1, "{text}");
    for metric in [
        r#"signaal_webhook_refused_total{source="hook-flood",reason="signature"}"#,
        r#"signaal_webhook_signature_failures_total{source="hook-flood"}"#,
    ] {
        let value = metrics
            .render()
            .lines()
            .find(|l| l.starts_with(metric))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok());
        assert_eq!(value, Some(1000.0), "{metric}");
    }
    Ok(())
}
