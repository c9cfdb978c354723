//! Social media source: X API v2 (recent search, mentions, filtered stream) and the Facebook Graph
//! API (page feeds, comments, webhooks).
//!
//! [`x::parse_response`] / [`x::to_signals`] and [`facebook::parse_response`] /
//! [`facebook::to_signals`] are pure: one documented API response in, signals out. [`worker`]
//! polls the APIs with `since_id` / `since` cursors in the store, waiting out rate limits and
//! backing off from server errors.
//! [`stream`] follows X's filtered stream. [`webhook`] receives Facebook's signed page webhooks.
//! [`replay`] is a local HTTP server that serves recorded responses in the documented wire
//! format, for the demo and tests (the real APIs are not reachable from CI).

pub mod facebook;
pub mod replay;
pub mod stream;
pub mod webhook;
pub mod worker;
pub mod x;

/// A response that does not have the documented shape.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("response is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}
