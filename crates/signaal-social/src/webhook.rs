//! Facebook page webhooks: Facebook pushes feed changes (posts, comments) to an HTTPS endpoint.
//!
//! `GET` answers the subscription handshake: `hub.mode=subscribe` with the configured
//! `hub.verify_token` gets `hub.challenge` back, anything else 403. `POST` is accepted only with
//! a valid `X-Hub-Signature-256` (`sha256=` + hex HMAC-SHA256 of the raw body under the app
//! secret, compared in constant time); a missing or wrong signature gets 401, is counted in
//! `signaal_webhook_signature_failures_total`, and publishes nothing. A verified payload's
//! `entry[].changes[]` with `field = "feed"` become signals, published (and acknowledged by Kafka)
//! before the 200 goes back; if Kafka fails the answer is 503 and Facebook delivers again. Ids
//! come from the post or comment id, so a redelivery stores nothing twice.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use chrono::{TimeZone, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::Sha256;
use signaal_bus::Publisher;
use signaal_core::{Channel, Signal};
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

#[derive(Debug, Deserialize)]
struct Payload {
    object: String,
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    id: String,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Debug, Deserialize)]
struct Change {
    field: String,
    #[serde(default)]
    value: Value,
}

/// What one payload holds: signals, and the changes that are not signals with the reason.
#[derive(Debug, Default)]
pub struct Parsed {
    pub signals: Vec<Signal>,
    pub skipped: Vec<&'static str>,
}

/// A verified payload's feed changes as signals (pure).
pub fn parse_payload(
    body: &[u8],
    source: &str,
    own_page_ids: &[String],
) -> Result<Parsed, ParseError> {
    let payload: Payload = serde_json::from_slice(body)?;
    if payload.object != "page" {
        return Err(ParseError::Shape(format!(
            "webhook object is `{}`, not `page`",
            payload.object
        )));
    }
    let mut out = Parsed::default();
    for entry in payload.entry {
        for change in entry.changes {
            match change_signal(&entry.id, &change, source, own_page_ids) {
                Ok(s) => out.signals.push(s),
                Err(reason) => out.skipped.push(reason),
            }
        }
    }
    Ok(out)
}

fn change_signal(
    page_id: &str,
    change: &Change,
    source: &str,
    own_page_ids: &[String],
) -> Result<Signal, &'static str> {
    if change.field != "feed" {
        return Err("not_feed");
    }
    let v = &change.value;
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let item = text("item").unwrap_or_default();
    if !matches!(
        item.as_str(),
        "post" | "status" | "comment" | "photo" | "video" | "share"
    ) {
        return Err("not_a_message");
    }
    match text("verb").as_deref() {
        Some("add" | "edited") => {}
        Some("remove" | "hide") => return Err("removed"),
        _ => return Err("unknown_verb"),
    }
    let from_id = v
        .get("from")
        .and_then(|f| f.get("id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if from_id
        .as_deref()
        .is_some_and(|f| f == page_id || own_page_ids.iter().any(|o| o == f))
    {
        return Err("own_page");
    }
    let message = text("message")
        .filter(|m| !m.trim().is_empty())
        .ok_or("no_text")?;
    let id = text("comment_id")
        .or_else(|| text("post_id"))
        .ok_or("no_id")?;
    // `created_time` is a Unix time in webhook payloads.
    let occurred_at = v
        .get("created_time")
        .and_then(Value::as_i64)
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .unwrap_or_else(Utc::now);
    let mut meta = Map::new();
    meta.insert("page_id".into(), Value::from(page_id));
    meta.insert("item".into(), Value::from(item));
    if let Some(name) = v
        .get("from")
        .and_then(|f| f.get("name"))
        .and_then(Value::as_str)
    {
        meta.insert("author_name".into(), Value::from(name));
    }
    if let Some(verb) = text("verb") {
        meta.insert("verb".into(), Value::from(verb));
    }
    if let Some(parent) = text("parent_id") {
        meta.insert("in_reply_to".into(), Value::from(parent));
    }
    let mut s = Signal::new(Channel::Facebook, source, id, occurred_at, message);
    s.author = from_id;
    s.thread_id = text("post_id");
    s.meta = meta;
    Ok(s)
}

struct Shared {
    cfg: WebhookConfig,
    publisher: Publisher,
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
            tracing::warn!(source = %shared.cfg.source, "webhook handshake refused");
            (StatusCode::FORBIDDEN, "verification failed\n".into())
        }
    }
}

async fn receive(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let source = shared.cfg.source.as_str();
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if let Err(error) = verify_signature(&shared.cfg.app_secret, &body, header) {
        metrics::counter!("signaal_webhook_signature_failures_total", "source" => source.to_string())
            .increment(1);
        tracing::warn!(source, %error, bytes = body.len(), "webhook refused");
        return (StatusCode::UNAUTHORIZED, "invalid signature\n");
    }
    let mut parsed = match parse_payload(&body, source, &shared.cfg.own_page_ids) {
        Ok(p) => p,
        Err(error) => {
            tracing::warn!(source, %error, "signed webhook payload is not a page feed change");
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
    for reason in &parsed.skipped {
        metrics::counter!("signaal_source_skipped_total", "source" => source.to_string(), "reason" => *reason)
            .increment(1);
    }
    (StatusCode::OK, "EVENT_RECEIVED")
}

/// The receiver's routes (`GET` and `POST` on [`PATH`]).
pub fn router(cfg: WebhookConfig, publisher: Publisher) -> Router {
    Router::new()
        .route(PATH, get(handshake).post(receive))
        .with_state(Arc::new(Shared { cfg, publisher }))
}

/// Serves the receiver on `addr` until `shutdown`.
pub async fn serve(
    addr: SocketAddr,
    cfg: WebhookConfig,
    publisher: Publisher,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, path = PATH, source = %cfg.source, "facebook webhook receiver listening");
    axum::serve(listener, router(cfg, publisher))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
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
        assert_eq!(parsed.skipped, ["own_page", "not_a_message", "removed"]);
        assert!(parse_payload(br#"{"object":"user","entry":[]}"#, "x", &[]).is_err());
        Ok(())
    }
}
