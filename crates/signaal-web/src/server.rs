//! `signaal serve`: the API under `/api/v1`, the coordinator's page at `/` with its assets, and
//! the live feed at `/live/signals`, on one listener.
//!
//! Access is the API's: with `api.token` (or `api.token_file`) every route but the OpenAPI
//! document needs `Authorization: Bearer <token>` or basic auth with the token as the password
//! (a browser asks for it: page routes answer 401 with `WWW-Authenticate: Basic`); without a
//! token the server listens on loopback only (`ApiConfig::validate`).

use std::sync::Arc;

use axum::extract::{Query as QueryParams, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};
use signaal_api::http::AppState;
use tokio_util::sync::CancellationToken;

use crate::live::{self, Hub, LiveFilter};
use crate::page;

/// `[web]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Serve the page and the live feed with the API (default true; false: the API only).
    pub enabled: bool,
    /// Signals the live feed keeps for reconnecting browsers (default 5,000).
    pub live_buffer: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            live_buffer: 5_000,
        }
    }
}

impl WebConfig {
    /// Names the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.live_buffer == 0 || self.live_buffer > 1_000_000 {
            return Err(format!(
                "`web.live_buffer` = {} is out of range (expected 1–1000000)",
                self.live_buffer
            ));
        }
        Ok(())
    }
}

/// What the page's handlers share.
pub struct WebState {
    pub app: Arc<AppState>,
    pub hub: Arc<Hub>,
    pub labels: page::Labels,
}

const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

async fn index(
    State(s): State<Arc<WebState>>,
    p: Result<QueryParams<page::PageParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match p {
        Ok(QueryParams(p)) => p,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Html(page::error_page(&format!(
                    "bad query parameters: {}",
                    e.body_text()
                ))),
            )
                .into_response()
        }
    };
    match page::render(&s, &p).await {
        Ok(html) => Html(html).into_response(),
        Err(page::PageError::Invalid(m)) => {
            (StatusCode::BAD_REQUEST, Html(page::error_page(&m))).into_response()
        }
        Err(page::PageError::Failed(m)) => {
            tracing::warn!(error = %m, "the page failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html(page::error_page(
                    "the register failed; see the server's log",
                )),
            )
                .into_response()
        }
    }
}

async fn asset(path: axum::extract::Path<String>) -> Response {
    let (body, kind) = match path.as_str() {
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The live feed's filters, as the page's URL has them.
#[derive(Debug, Default, Deserialize)]
pub struct LiveParams {
    theme: Option<String>,
    subject: Option<String>,
    channel: Option<String>,
    cause: Option<String>,
    kind: Option<String>,
}

async fn live_signals(
    State(s): State<Arc<WebState>>,
    headers: HeaderMap,
    QueryParams(p): QueryParams<LiveParams>,
) -> Response {
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let nonempty = |v: Option<String>| v.filter(|v| !v.is_empty());
    let filter = LiveFilter {
        theme: nonempty(p.theme),
        subject: nonempty(p.subject),
        channel: nonempty(p.channel),
        cause: nonempty(p.cause),
        kind: nonempty(p.kind),
    };
    live::stream(s.hub.clone(), filter, last.as_deref()).into_response()
}

/// Page routes: 401 with a basic-auth challenge, so a browser asks for the token.
async fn page_auth(State(s): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    match signaal_api::http::authorized(&s.app.api, req.headers()) {
        Ok(true) => next.run(req).await,
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                "Basic realm=\"signaal\", charset=\"UTF-8\"",
            )],
            "the token is required (as the password)\n",
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "token unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response()
        }
    }
}

/// The page, its assets and the live feed, with the API.
pub fn router(state: Arc<WebState>) -> Router {
    let page = Router::new()
        .route("/", get(index))
        .route("/assets/{name}", get(asset))
        .route("/live/signals", get(live_signals))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            page_auth,
        ))
        .with_state(state.clone());
    signaal_api::http::router(state.app.clone()).merge(page)
}

/// Serves the API, the page and the live feed on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<WebState>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving the page on / and the API on /api/v1");
    let hub = state.hub.clone();
    let closing = shutdown.clone();
    tokio::spawn(async move {
        closing.cancelled().await;
        hub.close();
    });
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    // A client that stopped reading would hold a graceful shutdown open for ever: give the open
    // requests 10 s after the signal, then stop.
    tokio::select! {
        r = std::future::IntoFuture::into_future(served) => r,
        _ = async {
            shutdown.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("open connections did not finish within 10 s of shutdown; closing them");
            Ok(())
        }
    }
}

/// How long a shutdown waits for open requests.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
