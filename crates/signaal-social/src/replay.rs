//! A local stand-in for the X and Facebook APIs that serves recorded responses as they were
//! recorded, so the worker's real HTTP path runs in the demo and tests without the internet.
//!
//! Pages are chained the way the APIs chain them: X's `meta.next_token` selects the next page of
//! `/2/tweets/search/recent`; Facebook's `paging.cursors.after` selects the next page of
//! `/{version}/{page-id}/feed` (and `paging.next`, recorded against graph.facebook.com, is
//! rewritten to point here). A request whose `since_id` / `since` is at or past the newest
//! recorded item gets the documented empty response.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio_util::sync::CancellationToken;

use crate::{facebook, x};

#[derive(Default)]
pub struct Recordings {
    /// Recorded `/2/tweets/search/recent` bodies, first page first.
    pub x_pages: Vec<String>,
    /// Recorded `/{page-id}/feed` bodies, first page first.
    pub facebook_pages: Vec<String>,
    /// Recorded `/{post-id}/comments` bodies per post id, first page first.
    pub facebook_comments: HashMap<String, Vec<String>>,
    /// What each successive connection to `/2/tweets/search/stream` gets; connections past the
    /// end get a stalled stream.
    pub stream_connections: Vec<Vec<StreamPart>>,
    /// Rules the stream has before signaal connects: `(id, value)`.
    pub stream_rules: Vec<(String, String)>,
    /// Failure answers, served in order, one per request, before the recorded pages resume:
    /// rate limits, server errors, token errors as the APIs send them.
    pub failures: Vec<Failure>,
}

/// One piece of a recorded stream connection.
#[derive(Debug, Clone)]
pub enum StreamPart {
    /// A JSON line (sent with `\r\n`).
    Line(String),
    /// The keep-alive: an empty `\r\n`.
    KeepAlive,
    Pause(std::time::Duration),
    /// Nothing more, but the connection stays open.
    Stall,
}

/// One scripted failure answer.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Requests whose path starts with this get it (`/2/` for X, `/v` for Graph).
    pub path_prefix: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Failure {
    /// X's 429: `x-rate-limit-remaining: 0` and the window's reset time.
    pub fn x_rate_limited(reset_in_seconds: i64) -> Failure {
        let reset = chrono::Utc::now().timestamp() + reset_in_seconds;
        Failure {
            path_prefix: "/2/".into(),
            status: 429,
            headers: vec![
                ("x-rate-limit-limit".into(), "450".into()),
                ("x-rate-limit-remaining".into(), "0".into()),
                ("x-rate-limit-reset".into(), reset.to_string()),
            ],
            body: r#"{"title":"Too Many Requests","detail":"Too Many Requests","type":"about:blank","status":429}"#.into(),
        }
    }

    /// A server error with the platform's error body.
    pub fn server_error(path_prefix: &str, status: u16) -> Failure {
        Failure {
            path_prefix: path_prefix.into(),
            status,
            headers: vec![],
            body: r#"{"title":"Service Unavailable","detail":"Service Unavailable","type":"about:blank","status":503}"#.into(),
        }
    }

    /// A Graph API error object (`code` 4, 17, 32, 613: rate limits; 190: token), with the
    /// usage header saying when access is back.
    pub fn graph_error(code: i64, http_status: u16, message: &str) -> Failure {
        Failure {
            path_prefix: "/v".into(),
            status: http_status,
            headers: vec![(
                "x-business-use-case-usage".into(),
                r#"{"104857600000001":[{"type":"pages","call_count":100,"total_cputime":12,"total_time":40,"estimated_time_to_regain_access":0}]}"#.into(),
            )],
            body: format!(
                r#"{{"error":{{"message":"{message}","type":"OAuthException","code":{code},"fbtrace_id":"Areplay"}}}}"#
            ),
        }
    }
}

struct Shared {
    stream_connects: std::sync::atomic::AtomicUsize,
    rules: std::sync::Mutex<Vec<(String, String)>>,
    failures: std::sync::Mutex<std::collections::VecDeque<Failure>>,
    x_first: Option<usize>,
    x_by_token: HashMap<String, usize>,
    x_newest: Option<String>,
    fb_by_after: HashMap<String, usize>,
    fb_newest: i64,
    recordings: Recordings,
    base: String,
}

/// Starts the server on `127.0.0.1:0`; returns its base URL. Stops when `shutdown` fires.
pub async fn serve(
    recordings: Recordings,
    shutdown: CancellationToken,
) -> std::io::Result<(String, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let mut x_by_token = HashMap::new();
    let mut x_newest: Option<String> = None;
    for (i, body) in recordings.x_pages.iter().enumerate() {
        if let Ok(resp) = x::parse_response(body.as_bytes()) {
            if let Some(t) = resp.meta.next_token {
                x_by_token.insert(t, i + 1);
            }
            if let Some(n) = resp.meta.newest_id {
                if x_newest.as_deref().is_none_or(|cur| x::newer(&n, cur)) {
                    x_newest = Some(n);
                }
            }
        }
    }
    let mut fb_by_after = HashMap::new();
    let mut fb_newest = 0;
    for (i, body) in recordings.facebook_pages.iter().enumerate() {
        if let Ok(resp) = facebook::parse_response(body.as_bytes()) {
            if let Some(after) = resp.paging.and_then(|p| p.cursors).and_then(|c| c.after) {
                fb_by_after.insert(after, i + 1);
            }
            for p in &resp.data {
                if let Some(t) = facebook::parse_time(&p.created_time) {
                    fb_newest = fb_newest.max(t.timestamp());
                }
            }
        }
    }
    let failures = std::sync::Mutex::new(recordings.failures.iter().cloned().collect());
    let rules = std::sync::Mutex::new(recordings.stream_rules.clone());
    let shared = Arc::new(Shared {
        stream_connects: std::sync::atomic::AtomicUsize::new(0),
        rules,
        failures,
        x_first: (!recordings.x_pages.is_empty()).then_some(0),
        x_by_token,
        x_newest,
        fb_by_after,
        fb_newest,
        recordings,
        base: base.clone(),
    });
    let app = Router::new()
        .route("/2/tweets/search/recent", get(x_search))
        .route("/2/users/{id}/mentions", get(x_mentions))
        .route("/2/tweets/search/stream", get(x_stream))
        .route(
            "/2/tweets/search/stream/rules",
            get(x_rules).post(x_change_rules),
        )
        .route("/{version}/{page}/feed", get(fb_feed))
        .route("/{version}/{post}/comments", get(fb_comments))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&shared),
            scripted_failures,
        ))
        .with_state(shared);
    tokio::spawn(async move {
        let stop = shutdown.cancelled_owned();
        if let Err(error) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(%error, "replay server stopped");
        }
    });
    Ok((base, addr))
}

/// Serves the next scripted failure for this path, if any, instead of the recorded answer.
async fn scripted_failures(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let path = req.uri().path().to_string();
    let failure = s.failures.lock().ok().and_then(|mut q| {
        let i = q.iter().position(|f| path.starts_with(&f.path_prefix))?;
        q.remove(i)
    });
    match failure {
        Some(f) => {
            let mut resp = json(
                StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                f.body,
            );
            for (k, v) in f.headers {
                if let (Ok(k), Ok(v)) = (
                    axum::http::HeaderName::try_from(k),
                    axum::http::HeaderValue::try_from(v),
                ) {
                    resp.headers_mut().insert(k, v);
                }
            }
            resp
        }
        None => next.run(req).await,
    }
}

/// `/{post-id}/comments`: the recorded pages of that post, chained by `paging.cursors.after`;
/// a `since` past the newest recorded comment gets the empty page.
async fn fb_comments(
    State(s): State<Arc<Shared>>,
    Path((_version, post)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = no_graph_token(&q) {
        return refused;
    }
    let pages = s
        .recordings
        .facebook_comments
        .get(&post)
        .map_or(&[][..], Vec::as_slice);
    let parsed: Vec<_> = pages
        .iter()
        .filter_map(|b| facebook::parse_response(b.as_bytes()).ok())
        .collect();
    let newest = parsed
        .iter()
        .flat_map(|p| &p.data)
        .filter_map(|c| facebook::parse_time(&c.created_time))
        .map(|t| t.timestamp())
        .max()
        .unwrap_or(0);
    if q.get("since")
        .and_then(|v| v.parse::<i64>().ok())
        .is_some_and(|since| since > newest)
    {
        return json(StatusCode::OK, r#"{"data":[]}"#.into());
    }
    let index = match q.get("after") {
        None => Some(0),
        Some(after) => parsed
            .iter()
            .position(|p| {
                p.paging
                    .as_ref()
                    .and_then(|pg| pg.cursors.as_ref())
                    .and_then(|c| c.after.as_deref())
                    == Some(after.as_str())
            })
            .map(|i| i + 1),
    };
    match index.and_then(|i| pages.get(i)) {
        Some(body) => json(
            StatusCode::OK,
            body.replace("https://graph.facebook.com", &s.base),
        ),
        None => json(StatusCode::OK, r#"{"data":[]}"#.into()),
    }
}

/// The filtered stream: each connection plays the next recorded script.
async fn x_stream(State(s): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    if let Some(refused) = no_bearer(&headers) {
        return refused;
    }
    let n = s
        .stream_connects
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let parts = s
        .recordings
        .stream_connections
        .get(n)
        .cloned()
        .unwrap_or_else(|| vec![StreamPart::Stall]);
    let body = futures::stream::unfold(parts.into_iter(), |mut it| async move {
        loop {
            let bytes = match it.next()? {
                StreamPart::Line(l) => axum::body::Bytes::from(format!("{l}\r\n")),
                StreamPart::KeepAlive => axum::body::Bytes::from_static(b"\r\n"),
                StreamPart::Pause(d) => {
                    tokio::time::sleep(d).await;
                    continue;
                }
                StreamPart::Stall => {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                    return None;
                }
            };
            return Some((Ok::<_, std::convert::Infallible>(bytes), it));
        }
    });
    (
        [("content-type", "application/json; charset=utf-8")],
        axum::body::Body::from_stream(body),
    )
        .into_response()
}

async fn x_rules(State(s): State<Arc<Shared>>) -> Response {
    let rules = s.rules.lock().map(|r| r.clone()).unwrap_or_default();
    let data: Vec<serde_json::Value> = rules
        .iter()
        .map(|(id, value)| serde_json::json!({"id": id, "value": value}))
        .collect();
    let count = data.len();
    json(
        StatusCode::OK,
        serde_json::json!({"data": data, "meta": {"sent": "2026-11-17T09:00:00.000Z", "result_count": count}})
            .to_string(),
    )
}

async fn x_change_rules(State(s): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    let Ok(change) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"title":"Invalid Request"}"#.into(),
        );
    };
    let Ok(mut rules) = s.rules.lock() else {
        return json(StatusCode::INTERNAL_SERVER_ERROR, "{}".into());
    };
    if let Some(ids) = change.pointer("/delete/ids").and_then(|v| v.as_array()) {
        rules.retain(|(id, _)| !ids.iter().any(|d| d.as_str() == Some(id.as_str())));
    }
    if let Some(add) = change.get("add").and_then(|v| v.as_array()) {
        for r in add {
            if let Some(value) = r.get("value").and_then(|v| v.as_str()) {
                let id = format!("18580000000000{:05}", rules.len() + 1);
                rules.push((id, value.to_string()));
            }
        }
    }
    json(
        StatusCode::OK,
        r#"{"meta":{"sent":"2026-11-17T09:00:00.000Z","summary":{}}}"#.into(),
    )
}

/// X's answer to a request without a bearer token.
fn no_bearer(headers: &HeaderMap) -> Option<Response> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer "));
    (!bearer).then(|| {
        json(
            StatusCode::UNAUTHORIZED,
            r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#
                .into(),
        )
    })
}

/// Graph's answer to a request without `access_token`.
fn no_graph_token(q: &HashMap<String, String>) -> Option<Response> {
    q.get("access_token").is_none_or(|t| t.is_empty()).then(|| {
        json(
            StatusCode::BAD_REQUEST,
            r#"{"error":{"message":"An active access token must be used to query information about the current user.","type":"OAuthException","code":2500,"fbtrace_id":"replay"}}"#.into(),
        )
    })
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn x_search(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    x_pages(&s, &headers, &q, "next_token")
}

/// The mentions timeline pages like search, with `pagination_token` for the next page.
async fn x_mentions(
    State(s): State<Arc<Shared>>,
    Path(_user): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    x_pages(&s, &headers, &q, "pagination_token")
}

fn x_pages(
    s: &Shared,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    page_param: &str,
) -> Response {
    if let Some(refused) = no_bearer(headers) {
        return refused;
    }
    if let (Some(since), Some(newest)) = (q.get("since_id"), &s.x_newest) {
        if !x::newer(newest, since) {
            return json(StatusCode::OK, r#"{"meta":{"result_count":0}}"#.into());
        }
    }
    let page = match q.get(page_param) {
        Some(t) => s.x_by_token.get(t).copied(),
        None => s.x_first,
    };
    match page.and_then(|i| s.recordings.x_pages.get(i)) {
        Some(body) => json(StatusCode::OK, body.clone()),
        None => json(StatusCode::OK, r#"{"meta":{"result_count":0}}"#.into()),
    }
}

async fn fb_feed(
    State(s): State<Arc<Shared>>,
    Path((_version, _page)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = no_graph_token(&q) {
        return refused;
    }
    if let Some(since) = q.get("since").and_then(|v| v.parse::<i64>().ok()) {
        if since > s.fb_newest {
            return json(StatusCode::OK, r#"{"data":[]}"#.into());
        }
    }
    let page = match q.get("after") {
        Some(a) => s.fb_by_after.get(a).copied(),
        None => (!s.recordings.facebook_pages.is_empty()).then_some(0),
    };
    match page.and_then(|i| s.recordings.facebook_pages.get(i)) {
        Some(body) => json(
            StatusCode::OK,
            body.replace("https://graph.facebook.com", &s.base),
        ),
        None => json(StatusCode::OK, r#"{"data":[]}"#.into()),
    }
}
