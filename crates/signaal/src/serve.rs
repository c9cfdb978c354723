//! The operations endpoint of a worker process: `/healthz` and Prometheus `/metrics`.

use std::net::SocketAddr;

use anyhow::Context;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio_util::sync::CancellationToken;

/// Installs the Prometheus recorder. Call once, before any metric is recorded.
pub fn install_recorder() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Binds the operations endpoint's address. Called before any worker starts: an address in use
/// stops the process at once, rather than leaving a worker running without `/healthz`.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (--listen)"))
}

/// Serves `/healthz` and `/metrics` until shutdown. `/healthz` answers 200 `ok` while every
/// consumer makes progress, 503 with the reasons when one has held input (or failed to consume)
/// for longer than `bus.consumer.stall_seconds`, and 503 once shutting down.
pub async fn serve(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let s = shutdown.clone();
    let app = Router::new()
        .route(
            "/healthz",
            get(move || {
                let s = s.clone();
                async move {
                    if s.is_cancelled() {
                        return (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "shutting down\n".to_string(),
                        );
                    }
                    let problems = signaal_bus::health::problems();
                    if problems.is_empty() {
                        (StatusCode::OK, "ok\n".to_string())
                    } else {
                        let mut body = String::from("stalled\n");
                        for p in problems {
                            body.push_str(&p);
                            body.push('\n');
                        }
                        (StatusCode::SERVICE_UNAVAILABLE, body)
                    }
                }
            }),
        )
        .route("/metrics", get(move || std::future::ready(handle.render())));
    tracing::info!(%addr, "serving /healthz and /metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("operations endpoint failed")
}

/// `signaal health`: exit 0 when the endpoint answers 200 (for container health checks).
pub async fn check(url: &str) -> anyhow::Result<()> {
    let resp = reqwest::Client::new()
        .get(url)
        .timeout(std::time::Duration::from_secs(3))
        .send()
        .await
        .with_context(|| format!("`{url}` did not answer"))?;
    if !resp.status().is_success() {
        anyhow::bail!("`{url}` answered {}", resp.status());
    }
    Ok(())
}
