//! Facebook page webhooks: Facebook pushes page changes (posts, comments, ratings, mentions,
//! Messenger messages) to an HTTPS endpoint.
//!
//! `GET` answers the subscription handshake: `hub.mode=subscribe` with the configured
//! `hub.verify_token` gets `hub.challenge` back, anything else 403. `POST` is accepted only with
//! a valid `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the raw body under the app
//! secret, compared in constant time); a missing or wrong signature gets 401, is counted in
//! `signaal_webhook_signature_failures_total`, and publishes nothing. A verified payload's
//! customer words (feed changes, mentions, ratings, Messenger messages) become signals,
//! published (and acknowledged by Kafka) before the 200 goes back; if Kafka fails the answer is
//! 503 and Facebook delivers again. Ids come from the post, comment, rating or message id, so a
//! redelivery stores nothing twice.
//!
//! What counts as a customer's words is in [`parse_payload`]. The server ([`serve_on`]) bounds
//! what a slow or hostile client can hold: a request's head and body each have a deadline, the
//! open connections are limited, and refused requests are counted exactly in
//! `signaal_webhook_refused_total{reason}` but logged at most once per reason and interval
//! ([`Limits`]).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use signaal_bus::Publisher;
use signaal_core::{brief, Channel, Signal};
use signaal_source::Skip;
use tokio_util::sync::CancellationToken;

use crate::ParseError;

/// The path Facebook is configured to call.
pub const PATH: &str = "/webhooks/facebook";

/// What the receiver needs. Secrets are never logged (`Debug` hides them).
#[derive(Clone)]
pub struct WebhookConfig {
    /// Source name on every signal.
    pub source: String,
    /// The Facebook app secret that signs every delivery.
    pub app_secret: Vec<u8>,
    /// The token entered in the app dashboard for the subscription handshake.
    pub verify_token: String,
    /// The organisation's own pages: their posts and comments are not signals.
    pub own_page_ids: Vec<String>,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("source", &self.source)
            .field("own_page_ids", &self.own_page_ids)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no X-Hub-Signature-256 header")]
    Missing,
    #[error("X-Hub-Signature-256 is not `sha256=` and 64 hex digits")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

/// Checks `header` (`sha256=<hex>`) against the HMAC-SHA256 of `body` under `secret`.
pub fn verify_signature(
    secret: &[u8],
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_sig = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let sig = hex::decode(hex_sig).map_err(|_| SignatureError::Malformed)?;
    if sig.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| SignatureError::Mismatch)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).map_err(|_| SignatureError::Mismatch)
}

/// The signature header value for `body` (for tests and the replay tooling).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        // HMAC takes keys of any length.
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What one payload holds: signals, and the items that are not signals with the reason (item =
/// the comment, post, rating or message id, else `{entry}/changes/{n}`).
#[derive(Debug, Default)]
pub struct Parsed {
    pub signals: Vec<Signal>,
    pub skipped: Vec<Skip>,
}

/// A verified payload's customer words as signals (pure).
///
/// Read: `feed` changes (posts, statuses, comments, photos, videos, shares; verbs `add`,
/// `edit`, `edited`, `update`), `mention` changes that carry a message, `ratings` with a
/// `review_text` (and comments on ratings), and Messenger `messaging` / `standby` messages with
/// text. Everything else is skipped with a reason: removals, reactions, receipts, postbacks, the
/// page's own posts, comments and echoed messages. Ids may be strings or numbers (old
/// payloads); an entry that cannot be read is skipped on its own, never the whole delivery.
pub fn parse_payload(
    body: &[u8],
    source: &str,
    own_page_ids: &[String],
) -> Result<Parsed, ParseError> {
    let value: Value = serde_json::from_slice(body)?;
    from_value(&value, source, own_page_ids)
}

/// [`parse_payload`] for a value already parsed.
pub fn from_value(
    value: &Value,
    source: &str,
    own_page_ids: &[String],
) -> Result<Parsed, ParseError> {
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(items) if items.is_empty() => {
            return Err(ParseError::Shape(
                "the file is an empty JSON array `[]`, not a page webhook payload".into(),
            ))
        }
        _ => {
            return Err(ParseError::Shape(
                "not a page webhook payload (a JSON object with `object` and `entry`)".into(),
            ))
        }
    };
    let object =
        match obj.get("object") {
            Some(Value::String(o)) => o,
            _ if obj.contains_key("data") => return Err(ParseError::Shape(
                "a Graph API page (`data`), not a page webhook payload: import it as `facebook`"
                    .into(),
            )),
            _ => {
                let keys: Vec<&str> = obj.keys().take(8).map(String::as_str).collect();
                return Err(ParseError::Shape(format!(
                    "not a page webhook payload: no `object` (keys: {})",
                    keys.join(", ")
                )));
            }
        };
    if object != "page" {
        return Err(ParseError::Shape(format!(
            "webhook object is `{}`, not `page`",
            brief(object)
        )));
    }
    let entries = obj
        .get("entry")
        .and_then(Value::as_array)
        .ok_or_else(|| ParseError::Shape("webhook payload has no `entry` list".into()))?;
    let mut out = Parsed::default();
    for (n, entry) in entries.iter().enumerate() {
        let page_id = entry.get("id").and_then(id_string).unwrap_or_default();
        let name = if page_id.is_empty() {
            format!("entry/{n}")
        } else {
            page_id.clone()
        };
        if !entry.is_object() {
            out.skipped.push(Skip::new("unreadable_entry", name));
            continue;
        }
        let time = entry.get("time").and_then(unix_time);
        let ctx = Context {
            page_id: &page_id,
            time,
            source,
            own_page_ids,
        };
        let mut events = 0;
        let list = |k: &str| entry.get(k).and_then(Value::as_array).into_iter().flatten();
        for (i, change) in list("changes").enumerate() {
            events += 1;
            match change_signal(&ctx, change) {
                Ok(s) => out.signals.push(s),
                Err(reason) => {
                    let v = change.get("value").unwrap_or(&Value::Null);
                    let item = ["comment_id", "post_id", "open_graph_story_id"]
                        .iter()
                        .find_map(|k| v.get(*k).and_then(id_string))
                        .unwrap_or_else(|| format!("{name}/changes/{i}"));
                    out.skipped.push(Skip::new(reason, item));
                }
            }
        }
        for key in ["messaging", "standby"] {
            for (i, event) in list(key).enumerate() {
                events += 1;
                match messaging_signal(&ctx, event) {
                    Ok(s) => out.signals.push(s),
                    Err(reason) => {
                        let item = event
                            .pointer("/message/mid")
                            .and_then(Value::as_str)
                            .map_or_else(|| format!("{name}/{key}/{i}"), str::to_string);
                        out.skipped.push(Skip::new(reason, item));
                    }
                }
            }
        }
        if events == 0 {
            out.skipped.push(Skip::new("empty_entry", name));
        }
    }
    Ok(out)
}

/// What every item of one entry shares.
struct Context<'a> {
    page_id: &'a str,
    /// `entry.time`: when the change happened, for items without a time of their own.
    time: Option<DateTime<Utc>>,
    source: &'a str,
    own_page_ids: &'a [String],
}

impl Context<'_> {
    fn own(&self, author: Option<&str>) -> bool {
        author.is_some_and(|a| a == self.page_id || self.own_page_ids.iter().any(|o| o == a))
    }
}

/// An id as a string: Graph sends strings, old payloads numbers.
fn id_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A webhook time: Unix seconds in `changes`, Unix milliseconds in Messenger events (told
/// apart by size), a numeric string, or a Graph time string.
fn unix_time(v: &Value) -> Option<DateTime<Utc>> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => return crate::facebook::parse_time(s.trim()),
        },
        _ => None,
    }?;
    // 10^11 seconds is the year 5138; 10^11 milliseconds is 1973.
    if n.abs() >= 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

fn change_signal(ctx: &Context<'_>, change: &Value) -> Result<Signal, &'static str> {
    let field = change.get("field").and_then(Value::as_str).unwrap_or("");
    let v = change.get("value").unwrap_or(&Value::Null);
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let id = |k: &str| v.get(k).and_then(id_string);
    let item = text("item").unwrap_or_default();
    let readable = match field {
        "feed" | "mention" => matches!(
            item.as_str(),
            "post" | "status" | "comment" | "photo" | "video" | "share"
        ),
        "ratings" => matches!(item.as_str(), "rating" | "comment"),
        _ => return Err("unsupported_field"),
    };
    if !readable {
        return Err("not_a_message");
    }
    match text("verb").as_deref() {
        Some("add" | "edit" | "edited" | "update") => {}
        Some("remove" | "delete" | "hide") => return Err("removed"),
        _ => return Err("unknown_verb"),
    }
    // Current payloads name the author in `from`; older ones (and `mention`) in
    // `sender_id`/`sender_name`; ratings in `reviewer_id`/`reviewer_name` or `reviewer`.
    let author = v
        .pointer("/from/id")
        .and_then(id_string)
        .or_else(|| id("sender_id"))
        .or_else(|| id("reviewer_id"))
        .or_else(|| v.pointer("/reviewer/id").and_then(id_string));
    if ctx.own(author.as_deref()) {
        return Err("own_page");
    }
    let author_name = v
        .pointer("/from/name")
        .and_then(Value::as_str)
        .or_else(|| v.get("sender_name").and_then(Value::as_str))
        .or_else(|| v.get("reviewer_name").and_then(Value::as_str))
        .or_else(|| v.pointer("/reviewer/name").and_then(Value::as_str));
    let rating = field == "ratings" && item == "rating";
    let message = if rating {
        text("review_text")
    } else {
        text("message")
    };
    let message = message.filter(|m| !m.trim().is_empty()).ok_or("no_text")?;
    // A rating's id is its story; one reviewer has one rating per page, so without a story id
    // the pair names it (an edit keeps the id).
    let source_id = if rating {
        id("open_graph_story_id").or_else(|| {
            author
                .as_ref()
                .map(|a| format!("rating_{}_{a}", ctx.page_id))
        })
    } else {
        id("comment_id").or_else(|| id("post_id"))
    }
    .ok_or("no_id")?;
    let occurred_at = v
        .get("created_time")
        .and_then(unix_time)
        .or(ctx.time)
        .unwrap_or_else(Utc::now);
    let mut meta = Map::new();
    meta.insert("page_id".into(), Value::from(ctx.page_id));
    meta.insert("item".into(), Value::from(item));
    if field != "feed" {
        meta.insert("field".into(), Value::from(field));
    }
    if let Some(name) = author_name {
        meta.insert("author_name".into(), Value::from(name));
    }
    if let Some(verb) = text("verb") {
        meta.insert("verb".into(), Value::from(verb));
    }
    if let Some(parent) = id("parent_id") {
        meta.insert("in_reply_to".into(), Value::from(parent));
    }
    for k in ["rating", "recommendation_type"] {
        if let Some(x) = v.get(k).filter(|x| !x.is_null()) {
            meta.insert(k.into(), x.clone());
        }
    }
    let mut s = Signal::new(
        Channel::Facebook,
        ctx.source,
        source_id.clone(),
        occurred_at,
        message,
    );
    s.author = author;
    s.thread_id = if rating {
        Some(source_id)
    } else {
        id("post_id")
    };
    s.meta = meta;
    Ok(s)
}

/// One Messenger event (`messaging` or `standby`): a customer's text message is a signal;
/// echoes of the page's own messages, receipts, postbacks and reactions are not.
fn messaging_signal(ctx: &Context<'_>, event: &Value) -> Result<Signal, &'static str> {
    let Some(message) = event.get("message") else {
        let has = |k: &str| event.get(k).is_some();
        return Err(if has("delivery") || has("read") {
            "receipt"
        } else if has("postback") {
            "postback"
        } else if has("reaction") {
            "reaction"
        } else if has("message_edit") {
            "message_edit"
        } else {
            "not_a_message"
        });
    };
    let sender = event.pointer("/sender/id").and_then(id_string);
    if message.get("is_echo").and_then(Value::as_bool) == Some(true) || ctx.own(sender.as_deref()) {
        return Err("own_page");
    }
    let text = message
        .get("text")
        .and_then(Value::as_str)
        .filter(|t| !t.trim().is_empty())
        .ok_or("no_text")?;
    let mid = message.get("mid").and_then(id_string).ok_or("no_id")?;
    let page = event
        .pointer("/recipient/id")
        .and_then(id_string)
        .unwrap_or_else(|| ctx.page_id.to_string());
    let occurred_at = event
        .get("timestamp")
        .and_then(unix_time)
        .or(ctx.time)
        .unwrap_or_else(Utc::now);
    let mut meta = Map::new();
    meta.insert("page_id".into(), Value::from(page.clone()));
    meta.insert("item".into(), Value::from("message"));
    if let Some(r) = message.pointer("/reply_to/mid").and_then(id_string) {
        meta.insert("in_reply_to".into(), Value::from(r));
    }
    let mut s = Signal::new(Channel::Facebook, ctx.source, mid, occurred_at, text);
    // The conversation is the customer's with the page: its id is the pair.
    s.thread_id = sender.as_ref().map(|p| format!("messenger_{page}_{p}"));
    s.author = sender;
    s.meta = meta;
    Ok(s)
}

/// What keeps a slow or hostile client from holding the receiver: every request must arrive
/// in time, the open connections are bounded, and refusals are logged at a bounded rate (the
/// metrics count every one).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time for a request's head (request line and headers). It also bounds how long a
    /// kept-alive connection may sit idle before its next request.
    pub header_timeout: Duration,
    /// Time for a request's body once its head is in.
    pub body_timeout: Duration,
    /// Connections open at once; further ones wait in the listen backlog until one closes.
    pub max_connections: usize,
    /// Largest body read (Facebook batches changes, a delivery stays far below this).
    pub max_body_bytes: usize,
    /// A refusal of each kind is logged at most once per this interval; the line says how many
    /// were not logged since the last.
    pub log_every: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_body_bytes: 4 << 20,
            log_every: Duration::from_secs(10),
        }
    }
}

/// Lets the first of a run of like events be logged, then at most one per `every`; each line
/// it lets through says how many were passed over since the previous one.
#[derive(Debug)]
pub struct LogGate {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl LogGate {
    pub fn new(every: Duration) -> Self {
        LogGate {
            every,
            last: None,
            suppressed: 0,
        }
    }

    /// `Some(n)`: log this event, `n` were not logged since the last line. `None`: count only.
    pub fn admit(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < self.every => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

struct Shared {
    cfg: WebhookConfig,
    limits: Limits,
    publisher: Publisher,
    gates: std::sync::Mutex<HashMap<&'static str, LogGate>>,
}

impl Shared {
    /// Counts a refused request in `signaal_webhook_refused_total{source,reason}` and logs it
    /// through the reason's [`LogGate`].
    fn refused(&self, reason: &'static str, error: &dyn std::fmt::Display) {
        let source = self.cfg.source.as_str();
        metrics::counter!("signaal_webhook_refused_total", "source" => source.to_string(), "reason" => reason)
            .increment(1);
        let admitted = match self.gates.lock() {
            Ok(mut gates) => gates
                .entry(reason)
                .or_insert_with(|| LogGate::new(self.limits.log_every))
                .admit(Instant::now()),
            // A poisoned lock only loses the rate limit, never the line.
            Err(_) => Some(0),
        };
        if let Some(not_logged) = admitted {
            tracing::warn!(
                source,
                reason,
                %error,
                not_logged_since_last = not_logged,
                "webhook refused"
            );
        }
    }
}

#[derive(Deserialize)]
struct Handshake {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

async fn handshake(
    State(shared): State<Arc<Shared>>,
    Query(q): Query<Handshake>,
) -> (StatusCode, String) {
    let token_ok = q.verify_token.as_deref().is_some_and(|t| {
        // Constant time, like the signature: the token is a secret too.
        let (a, b) = (t.as_bytes(), shared.cfg.verify_token.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    });
    match (q.mode.as_deref(), token_ok, q.challenge) {
        (Some("subscribe"), true, Some(challenge)) => (StatusCode::OK, challenge),
        _ => {
            shared.refused("handshake", &"verify token or mode wrong");
            (StatusCode::FORBIDDEN, "verification failed\n".into())
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> (StatusCode, &'static str) {
    let source = shared.cfg.source.as_str();
    let limits = &shared.limits;
    // The head is in; the body gets its own deadline, so a trickled body cannot hold the
    // connection.
    let body = match tokio::time::timeout(
        limits.body_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(body)) => body,
        Ok(Err(error)) => {
            shared.refused("unreadable_body", &error);
            return (StatusCode::PAYLOAD_TOO_LARGE, "body too large or broken\n");
        }
        Err(_) => {
            shared.refused("body_timeout", &"the body did not arrive in time");
            return (StatusCode::REQUEST_TIMEOUT, "body too slow\n");
        }
    };
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(error) = verify_signature(&shared.cfg.app_secret, &body, header) {
        metrics::counter!("signaal_webhook_signature_failures_total", "source" => source.to_string())
            .increment(1);
        shared.refused("signature", &error);
        return (StatusCode::UNAUTHORIZED, "invalid signature\n");
    }
    let mut parsed = match parse_payload(&body, source, &shared.cfg.own_page_ids) {
        Ok(p) => p,
        Err(error) => {
            shared.refused("unreadable_payload", &error);
            return (StatusCode::BAD_REQUEST, "unreadable payload\n");
        }
    };
    let mut too_large = Vec::new();
    signaal_source::fit(&mut parsed.signals, &mut too_large);
    let published = async {
        shared.publisher.publish_raw(&parsed.signals).await?;
        shared.publisher.dead_letters(too_large).await
    };
    if let Err(error) = published.await {
        // Facebook delivers again after a failure; the ids make that harmless.
        tracing::warn!(source, %error, "cannot publish webhook signals; asking for a redelivery");
        return (StatusCode::SERVICE_UNAVAILABLE, "try again\n");
    }
    metrics::counter!("signaal_source_signals_published_total", "source" => source.to_string())
        .increment(parsed.signals.len() as u64);
    for skip in &parsed.skipped {
        metrics::counter!("signaal_source_skipped_total", "source" => source.to_string(), "reason" => skip.reason)
            .increment(1);
    }
    (StatusCode::OK, "EVENT_RECEIVED")
}

/// The receiver's routes (`GET` and `POST` on [`PATH`]) with the default [`Limits`].
pub fn router(cfg: WebhookConfig, publisher: Publisher) -> Router {
    router_with(cfg, Limits::default(), publisher)
}

/// The receiver's routes; `limits` bound the body's time and size and the refusal logging.
pub fn router_with(cfg: WebhookConfig, limits: Limits, publisher: Publisher) -> Router {
    Router::new()
        .route(PATH, get(handshake).post(receive))
        .with_state(Arc::new(Shared {
            cfg,
            limits,
            publisher,
            gates: std::sync::Mutex::new(HashMap::new()),
        }))
}

/// Serves the receiver on `addr` until `shutdown`, with the default [`Limits`].
pub async fn serve(
    addr: SocketAddr,
    cfg: WebhookConfig,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    serve_on(listener, cfg, Limits::default(), publisher, shutdown).await
}

/// Serves the receiver on a bound `listener` until `shutdown`.
///
/// HTTP/1.1 only (what Facebook sends). A connection is accepted only while fewer than
/// `limits.max_connections` are open; each request's head must arrive within
/// `limits.header_timeout` (hyper's header read timeout, which also ends idle kept-alive
/// connections) and its body within `limits.body_timeout`. On shutdown no new connection is
/// accepted, open ones finish their request, and the rest are closed after a grace period.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    cfg: WebhookConfig,
    limits: Limits,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, path = PATH, source = %cfg.source, max_connections = limits.max_connections,
        "facebook webhook receiver listening");
    let source = cfg.source.clone();
    let app = router_with(cfg, limits.clone(), publisher);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut full = LogGate::new(limits.log_every);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        if permits.available_permits() == 0 {
            metrics::counter!("signaal_webhook_connection_limit_waits_total", "source" => source.clone())
                .increment(1);
            if let Some(not_logged) = full.admit(Instant::now()) {
                tracing::warn!(
                    source,
                    max_connections = limits.max_connections,
                    not_logged_since_last = not_logged,
                    "webhook connection limit reached; new connections wait"
                );
            }
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(source, %error, "cannot accept a webhook connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let service = TowerToHyperService::new(app.clone());
        let (stop, header_timeout, source) =
            (shutdown.clone(), limits.header_timeout, source.clone());
        connections.spawn(async move {
            let _permit = permit;
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(error) = result {
                if error.is_timeout() {
                    metrics::counter!("signaal_webhook_refused_total", "source" => source, "reason" => "header_timeout")
                        .increment(1);
                } else {
                    tracing::debug!(%error, "webhook connection ended with an error");
                }
            }
        });
    }
    // In-flight requests finish (their publish included); stragglers are cut off.
    let grace = limits.header_timeout + limits.body_timeout;
    if tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await
    .is_err()
    {
        connections.abort_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str = r#"{"object":"page","entry":[{"id":"104857600000001","time":1763370000,"changes":[
      {"field":"feed","value":{"from":{"id":"555","name":"Piet"},"item":"comment","comment_id":"104857600000001_77_88","post_id":"104857600000001_77","parent_id":"104857600000001_77","verb":"add","created_time":1763370000,"message":"Al drie weken geen reactie op mijn melding!"}},
      {"field":"feed","value":{"from":{"id":"104857600000001","name":"Gemeente"},"item":"comment","comment_id":"104857600000001_77_89","post_id":"104857600000001_77","verb":"add","created_time":1763370060,"message":"Wij nemen contact met u op."}},
      {"field":"feed","value":{"from":{"id":"556"},"item":"reaction","post_id":"104857600000001_77","verb":"add","reaction_type":"angry","created_time":1763370100}},
      {"field":"feed","value":{"from":{"id":"557"},"item":"comment","comment_id":"104857600000001_77_90","post_id":"104857600000001_77","verb":"remove","created_time":1763370200}}
    ]}]}"#;

    #[test]
    fn signatures_are_checked_against_the_raw_body() {
        let secret = b"app-secret";
        let good = sign(secret, PAYLOAD.as_bytes());
        assert_eq!(
            verify_signature(secret, PAYLOAD.as_bytes(), Some(&good)),
            Ok(())
        );
        assert_eq!(
            verify_signature(secret, PAYLOAD.as_bytes(), None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(b"other-secret", PAYLOAD.as_bytes(), Some(&good)),
            Err(SignatureError::Mismatch)
        );
        let tampered = PAYLOAD.replace("drie weken", "vier weken");
        assert_eq!(
            verify_signature(secret, tampered.as_bytes(), Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(secret, PAYLOAD.as_bytes(), Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
        // X-Hub-Signature (SHA-1) style values are not accepted for the SHA-256 header.
        assert_eq!(
            verify_signature(
                secret,
                PAYLOAD.as_bytes(),
                Some(&format!("sha256={}", "0".repeat(40)))
            ),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn feed_changes_become_signals_and_the_rest_is_skipped_with_a_reason() -> Result<(), ParseError>
    {
        let parsed = parse_payload(PAYLOAD.as_bytes(), "fb-hook", &[])?;
        assert_eq!(parsed.signals.len(), 1);
        let s = &parsed.signals[0];
        assert_eq!(s.source_id, "104857600000001_77_88");
        assert_eq!(s.thread_id.as_deref(), Some("104857600000001_77"));
        assert_eq!(s.author.as_deref(), Some("555"));
        assert_eq!(s.occurred_at.timestamp(), 1763370000);
        assert_eq!(s.meta["in_reply_to"], "104857600000001_77");
        let skipped: Vec<(&str, &str)> = parsed
            .skipped
            .iter()
            .map(|s| (s.reason, s.item.as_str()))
            .collect();
        assert_eq!(
            skipped,
            [
                ("own_page", "104857600000001_77_89"),
                ("not_a_message", "104857600000001_77"),
                ("removed", "104857600000001_77_90")
            ]
        );
        assert!(parse_payload(br#"{"object":"user","entry":[]}"#, "x", &[]).is_err());
        Ok(())
    }

    #[test]
    fn webhook_times_are_seconds_milliseconds_or_graph_strings() {
        for (v, want) in [
            (serde_json::json!(1763373600), Some(1763373600000)),
            (serde_json::json!(1763373690456_i64), Some(1763373690456)),
            (serde_json::json!("1763373600"), Some(1763373600000)),
            (
                serde_json::json!("2026-11-17T09:00:00+0000"),
                Some(1794906000000),
            ),
            (serde_json::json!("gisteren"), None),
            (serde_json::json!(null), None),
        ] {
            assert_eq!(unix_time(&v).map(|t| t.timestamp_millis()), want, "{v}");
        }
    }

    #[test]
    fn the_author_is_read_from_every_payload_generation() -> Result<(), ParseError> {
        let own = ["104857600000001".to_string()];
        for (value, author) in [
            (r#""from":{"id":"555","name":"Piet"}"#, Ok("555")),
            (r#""from":{"id":555,"name":"Piet"}"#, Ok("555")),
            (r#""sender_id":"555","sender_name":"Piet""#, Ok("555")),
            (r#""sender_id":555"#, Ok("555")),
            (r#""sender_id":104857600000001"#, Err("own_page")),
            (r#""sender_id":"104857600000001""#, Err("own_page")),
            (r#""from":{"id":104857600000001}"#, Err("own_page")),
        ] {
            let body = format!(
                r#"{{"object":"page","entry":[{{"id":"104857600000001","time":1763370000,"changes":[{{"field":"feed","value":{{{value},"item":"comment","comment_id":"77_88","post_id":"104857600000001_77","verb":"add","message":"Geen reactie"}}}}]}}]}}"#
            );
            let parsed = parse_payload(body.as_bytes(), "h", &own)?;
            let got = match (parsed.signals.first(), parsed.skipped.first()) {
                (Some(s), None) => Ok(s.author.as_deref().unwrap_or("")),
                (None, Some(k)) => Err(k.reason),
                _ => Err("neither"),
            };
            assert_eq!(got, author, "{value}");
        }
        Ok(())
    }
}
