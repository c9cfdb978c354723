//! Social media source: X API v2 (recent search, mentions, filtered stream) and the Facebook Graph
//! API (page feeds, comments, webhooks).
//!
//! [`x::parse_response`] / [`x::to_signals`] and [`facebook::parse_response`] /
//! [`facebook::to_signals`] are pure: one documented API response in, signals out. [`worker`]
//! polls the APIs with `since_id` / `since` cursors in the store, waiting out rate limits and
//! backing off from server errors.
//! [`stream`] follows X's filtered stream. [`webhook`] receives Facebook's signed page webhooks.
//! [`replay`] is a local HTTP server that serves recorded responses in the documented wire
//! format, for the demo and tests (the real APIs are not reachable from CI). [`saved`] reads
//! saved responses, stream captures and webhook bodies into a `Batch` for `signaal import`.

pub mod facebook;
pub mod replay;
pub mod saved;
pub mod stream;
pub mod webhook;
pub mod worker;
pub mod x;

use signaal_bus::DeadLetter;

/// A response that does not have the documented shape.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{}", json_message(.0))]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

/// Says whether the bytes were not JSON at all, or JSON without the documented fields.
fn json_message(e: &serde_json::Error) -> String {
    if e.is_data() {
        format!("response does not have the documented shape: {e}")
    } else {
        format!("response is not JSON: {e}")
    }
}

/// A dead letter for something read from a social source (a saved file's line, a Graph item).
pub(crate) fn dead_letter(origin: String, reason: String, payload: Vec<u8>) -> DeadLetter {
    DeadLetter {
        key: None,
        payload,
        reason: signaal_core::brief(&reason).into_owned(),
        origin,
        worker: "social",
        source: None,
    }
}

/// The items of a Graph page that could not be read, as dead letters (`origin` + item number).
pub(crate) fn rejected_items(origin: &str, resp: &facebook::FeedResponse) -> Vec<DeadLetter> {
    resp.rejected
        .iter()
        .map(|r| {
            dead_letter(
                origin.to_string(),
                r.reason.clone(),
                serde_json::to_vec(&r.item).unwrap_or_default(),
            )
        })
        .collect()
}
