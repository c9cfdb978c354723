//! X API v2 filtered stream (`GET /2/tweets/search/stream`): posts matching the stream's rules,
//! pushed as they are written.
//!
//! The rules are managed from config: at every connect the stream's rules are read
//! (`GET …/stream/rules`) and changed to the configured set (`POST …/stream/rules` with `delete`
//! and `add`). The body is a sequence of `\r\n`-terminated lines: a JSON object per post, or an
//! empty keep-alive line about every 20 seconds. Silence longer than `stall` (default 20 s) is a
//! dead connection. Reconnects follow X's documented backoff: network errors and stalls back off
//! linearly from 250 ms to 16 s, HTTP errors exponentially from 5 s to 320 s, 429s exponentially
//! from a minute. A stream has no resume point: what is posted while disconnected is what a
//! recent-search source with the same query picks up, so run one next to it.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use signaal_bus::Publisher;
use signaal_source::{commit, Batch, SourceError};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::x;

/// One configured filtered stream (`[[social.x_stream]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XStream {
    pub name: String,
    #[serde(default = "default_base")]
    pub base_url: String,
    #[serde(default, skip_serializing)]
    pub bearer_token: String,
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// The stream's rules; others on the stream are deleted.
    pub rules: Vec<Rule>,
    #[serde(default)]
    pub own_user_ids: Vec<String>,
    /// Silence longer than this many seconds is a dead connection.
    #[serde(default = "default_stall")]
    pub stall_seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub value: String,
    #[serde(default)]
    pub tag: Option<String>,
}

fn default_base() -> String {
    "https://api.x.com".into()
}

fn default_stall() -> u64 {
    20
}

/// Splits a byte stream into `\r\n`-terminated lines, across chunk boundaries.
#[derive(Debug, Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Adds `chunk`; returns the complete lines it finished (without `\r\n`; keep-alives are
    /// empty lines).
    pub fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.buf.drain(..i + 2).take(i).collect();
            out.push(line);
        }
        out
    }
}

/// What one stream line is.
#[derive(Debug)]
pub enum Line {
    KeepAlive,
    Post(Box<x::SearchResponse>),
    /// An error object from X (operational disconnect, rule problems): logged.
    Errors(Vec<Value>),
}

/// Parses one line of the stream body.
pub fn parse_line(line: &[u8]) -> Result<Line, crate::ParseError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(Line::KeepAlive);
    }
    let v: Value = serde_json::from_slice(line)?;
    let Some(obj) = v.as_object() else {
        return Err(crate::ParseError::Shape(
            "stream line is not a JSON object".into(),
        ));
    };
    if obj.contains_key("data") {
        // One post per line: the same shape as a search page with one item.
        return Ok(Line::Post(Box::new(x::from_value(v)?)));
    }
    Ok(Line::Errors(
        obj.get("errors")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_else(|| vec![v.clone()]),
    ))
}

/// Why a connection ended, for the backoff.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Network error, stall, or the server closed the body.
    Network,
    Http(u16),
    RateLimited,
    Shutdown,
}

/// X's documented reconnect backoff for the `n`-th consecutive failure of a kind.
fn reconnect_wait(ended: &Ended, n: u32) -> Duration {
    match ended {
        Ended::Network => {
            Duration::from_millis(250 * u64::from(n.max(1))).min(Duration::from_secs(16))
        }
        Ended::Http(_) => {
            Duration::from_secs(5 << n.saturating_sub(1).min(6)).min(Duration::from_secs(320))
        }
        Ended::RateLimited => Duration::from_secs(60 << n.saturating_sub(1).min(4)),
        Ended::Shutdown => Duration::ZERO,
    }
}

/// Makes the stream's rules the configured ones.
async fn sync_rules(
    cfg: &XStream,
    client: &reqwest::Client,
    bearer: &str,
) -> Result<(), SourceError> {
    let url = format!(
        "{}/2/tweets/search/stream/rules",
        cfg.base_url.trim_end_matches('/')
    );
    let err =
        |e: reqwest::Error| SourceError::Input(format!("x stream rules: {}", e.without_url()));
    let current: Value = client
        .get(&url)
        .bearer_auth(bearer)
        .send()
        .await
        .map_err(err)?
        .error_for_status()
        .map_err(err)?
        .json()
        .await
        .map_err(err)?;
    let existing: Vec<(String, String)> = current
        .get("data")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| {
                    Some((
                        r.get("id")?.as_str()?.to_string(),
                        r.get("value")?.as_str()?.to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let stale: Vec<&str> = existing
        .iter()
        .filter(|(_, value)| !cfg.rules.iter().any(|r| &r.value == value))
        .map(|(id, _)| id.as_str())
        .collect();
    let missing: Vec<&Rule> = cfg
        .rules
        .iter()
        .filter(|r| !existing.iter().any(|(_, value)| value == &r.value))
        .collect();
    if !stale.is_empty() {
        client
            .post(&url)
            .bearer_auth(bearer)
            .json(&serde_json::json!({"delete": {"ids": stale}}))
            .send()
            .await
            .map_err(err)?
            .error_for_status()
            .map_err(err)?;
    }
    if !missing.is_empty() {
        client
            .post(&url)
            .bearer_auth(bearer)
            .json(&serde_json::json!({"add": missing}))
            .send()
            .await
            .map_err(err)?
            .error_for_status()
            .map_err(err)?;
    }
    tracing::info!(source = %cfg.name, deleted = stale.len(), added = missing.len(), "stream rules in sync");
    Ok(())
}

/// One connection: reads lines until it ends, committing each post as it arrives.
async fn connect_once(
    cfg: &XStream,
    client: &reqwest::Client,
    bearer: &str,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<Ended, SourceError> {
    let url = format!(
        "{}/2/tweets/search/stream",
        cfg.base_url.trim_end_matches('/')
    );
    let request = client
        .get(&url)
        .bearer_auth(bearer)
        .query(&[
            ("tweet.fields", x::TWEET_FIELDS),
            ("expansions", x::EXPANSIONS),
            ("user.fields", x::USER_FIELDS),
        ])
        .send();
    let mut resp = tokio::select! {
        _ = shutdown.cancelled() => return Ok(Ended::Shutdown),
        r = request => match r {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(source = %cfg.name, error = %e.without_url(), "stream connect failed");
                return Ok(Ended::Network);
            }
        },
    };
    let status = resp.status();
    metrics::counter!("signaal_social_requests_total", "endpoint" => "x stream", "status" => status.as_u16().to_string())
        .increment(1);
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Ok(Ended::RateLimited);
    }
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(SourceError::Input(format!(
            "x stream: the token was refused (HTTP {status}); check the configured token"
        )));
    }
    if !status.is_success() {
        return Ok(Ended::Http(status.as_u16()));
    }
    tracing::info!(source = %cfg.name, "stream connected");
    let stall = Duration::from_secs(cfg.stall_seconds.max(1));
    let mut lines = Lines::default();
    loop {
        let chunk = tokio::select! {
            _ = shutdown.cancelled() => return Ok(Ended::Shutdown),
            c = tokio::time::timeout(stall, resp.chunk()) => c,
        };
        let bytes = match chunk {
            Err(_) => {
                tracing::warn!(source = %cfg.name, stall_seconds = stall.as_secs(), "stream stalled; reconnecting");
                return Ok(Ended::Network);
            }
            Ok(Err(e)) => {
                tracing::warn!(source = %cfg.name, error = %e.without_url(), "stream broke; reconnecting");
                return Ok(Ended::Network);
            }
            Ok(Ok(None)) => {
                tracing::warn!(source = %cfg.name, "stream closed by the server; reconnecting");
                return Ok(Ended::Network);
            }
            Ok(Ok(Some(b))) => b,
        };
        for line in lines.push(&bytes) {
            match parse_line(&line) {
                Ok(Line::KeepAlive) => {}
                Ok(Line::Post(resp)) => {
                    // The last post read, for operators (a stream has no resume point).
                    let checkpoints = resp
                        .data
                        .first()
                        .map(|t| vec![("last_id".to_string(), t.id.clone())])
                        .unwrap_or_default();
                    let (signals, skipped) = x::read(&resp, &cfg.name, &cfg.own_user_ids);
                    let batch = Batch {
                        signals,
                        skipped,
                        checkpoints,
                        ..Batch::default()
                    };
                    commit(&cfg.name, batch, publisher, store).await?;
                }
                Ok(Line::Errors(errors)) => {
                    for e in errors {
                        tracing::warn!(source = %cfg.name, error = %e, "stream error message");
                    }
                }
                Err(e) => {
                    tracing::warn!(source = %cfg.name, error = %e, "unreadable stream line skipped")
                }
            }
        }
    }
}

/// Follows the stream until `shutdown`, reconnecting with X's backoff.
pub async fn run(
    cfg: XStream,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), SourceError> {
    // No overall timeout: a stream lives for hours. Connecting still times out.
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("signaal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Input(format!("http client: {e}")))?;
    let mut failures: u32 = 0;
    let mut last: Option<Ended> = None;
    while !shutdown.is_cancelled() {
        let bearer = crate::worker::token(
            &cfg.name,
            "bearer_token",
            &cfg.bearer_token,
            &cfg.bearer_token_file,
        )?;
        let ended = match sync_rules(&cfg, &client, &bearer).await {
            Ok(()) => connect_once(&cfg, &client, &bearer, &publisher, &store, &shutdown).await?,
            Err(e) => {
                tracing::warn!(source = %cfg.name, error = %e, "cannot sync stream rules");
                Ended::Http(0)
            }
        };
        if ended == Ended::Shutdown {
            break;
        }
        metrics::counter!("signaal_social_stream_reconnects_total", "source" => cfg.name.clone())
            .increment(1);
        failures = if last.as_ref() == Some(&ended) {
            failures + 1
        } else {
            1
        };
        let wait = reconnect_wait(&ended, failures);
        last = Some(ended);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!(source = %cfg.name, "stream stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_crlf_across_chunks_and_keepalives_are_empty() -> Result<(), crate::ParseError>
    {
        let mut l = Lines::default();
        assert!(l.push(b"{\"data\":{\"id\":\"1\",\"te").is_empty());
        let got = l
            .push(b"xt\":\"hoi\"}}\r\n\r\n{\"errors\":[{\"title\":\"operational-disconnect\"}]}\r");
        assert_eq!(got.len(), 2);
        assert!(matches!(parse_line(&got[0])?, Line::Post(p) if p.data[0].text == "hoi"));
        assert!(matches!(parse_line(&got[1])?, Line::KeepAlive));
        let rest = l.push(b"\n");
        assert!(matches!(parse_line(&rest[0])?, Line::Errors(e) if e.len() == 1));
        Ok(())
    }

    #[test]
    fn reconnect_backoff_follows_the_documented_schedule() {
        assert_eq!(
            reconnect_wait(&Ended::Network, 1),
            Duration::from_millis(250)
        );
        assert_eq!(
            reconnect_wait(&Ended::Network, 3),
            Duration::from_millis(750)
        );
        assert_eq!(
            reconnect_wait(&Ended::Network, 100),
            Duration::from_secs(16)
        );
        assert_eq!(reconnect_wait(&Ended::Http(503), 1), Duration::from_secs(5));
        assert_eq!(
            reconnect_wait(&Ended::Http(503), 2),
            Duration::from_secs(10)
        );
        assert_eq!(
            reconnect_wait(&Ended::Http(503), 10),
            Duration::from_secs(320)
        );
        assert_eq!(
            reconnect_wait(&Ended::RateLimited, 1),
            Duration::from_secs(60)
        );
        assert_eq!(
            reconnect_wait(&Ended::RateLimited, 2),
            Duration::from_secs(120)
        );
    }
}
