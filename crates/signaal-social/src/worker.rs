//! The social worker: polls X recent search and Facebook page feeds.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use signaal_bus::Publisher;
use signaal_source::{commit, poll_loop, Batch, SourceError, Stats};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

use crate::{facebook, x};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XSearch {
    pub name: String,
    #[serde(default = "default_x_base")]
    pub base_url: String,
    /// App bearer token. Never logged.
    #[serde(default, skip_serializing)]
    pub bearer_token: String,
    /// … or a file holding it, read at every poll (so it can be rotated while signaal runs).
    #[serde(default)]
    pub bearer_token_file: Option<std::path::PathBuf>,
    /// A recent-search query (`/2/tweets/search/recent`) …
    #[serde(default)]
    pub query: String,
    /// … or a user id whose mentions timeline (`/2/users/:id/mentions`) to follow.
    #[serde(default)]
    pub mentions_of: Option<String>,
    /// The organisation's own accounts: their posts are not signals.
    #[serde(default)]
    pub own_user_ids: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacebookPage {
    pub name: String,
    #[serde(default = "default_fb_base")]
    pub base_url: String,
    #[serde(default = "default_fb_version")]
    pub api_version: String,
    pub page_id: String,
    /// Page access token. Never logged.
    #[serde(default, skip_serializing)]
    pub access_token: String,
    /// … or a file holding it, read at every poll.
    #[serde(default)]
    pub access_token_file: Option<std::path::PathBuf>,
    /// Comments on the page's posts of the last this many days are followed (0: none).
    #[serde(default = "default_comments_days")]
    pub comments_days: u32,
}

fn default_x_base() -> String {
    "https://api.x.com".into()
}
fn default_fb_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_comments_days() -> u32 {
    7
}
fn default_fb_version() -> String {
    "v21.0".into()
}

/// How an HTTP call failed, in words an operator can act on. Tokens never appear here.
fn http_error(what: &str, e: reqwest::Error) -> SourceError {
    SourceError::Input(format!("{what}: {}", e.without_url()))
}

/// Attempts per request for server errors and timeouts before the poll fails (and is retried at
/// the next interval from the same cursor).
const ATTEMPTS: u32 = 5;
/// First backoff; it doubles per attempt, with jitter of ±50 %.
const BACKOFF: Duration = Duration::from_millis(500);
/// The token given inline or in a file (exactly one). The error names the file, never the token.
pub(crate) fn token(
    source: &str,
    key: &str,
    value: &str,
    file: &Option<std::path::PathBuf>,
) -> Result<String, SourceError> {
    // The inline token defaults to "" when only the file is configured.
    let value = (!value.is_empty()).then_some(value);
    signaal_source::Secret::from_config(key, value, file.as_deref())
        .and_then(|s| s.read())
        .map_err(|e| SourceError::Input(format!("`{source}`: {key}: {e}")))
}

/// Most pages one poll follows (100 posts each).
const MAX_PAGES: usize = 1000;
/// Longest wait for a rate-limit window to reset (X windows are 15 minutes).
const MAX_RESET_WAIT: Duration = Duration::from_secs(15 * 60);

/// `base · 2^attempt`, times a factor in [0.5, 1.5) so that many workers do not retry in step.
fn backoff(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // A cheap spread from the clock; no cryptographic quality needed.
    let mut x = u64::from(nanos) ^ 0x9e37_79b9_7f4a_7c15;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    let factor = 0.5 + (x % 1000) as f64 / 1000.0;
    BACKOFF
        .saturating_mul(1 << attempt.min(10))
        .mul_f64(factor)
        .min(Duration::from_secs(60))
}

/// How long until the rate-limit window in `headers` resets (`x-rate-limit-reset`, Unix seconds).
fn reset_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())?;
    let secs = (reset - chrono::Utc::now().timestamp()).max(1);
    Some(Duration::from_secs(u64::try_from(secs).unwrap_or(1)).min(MAX_RESET_WAIT))
}

/// Facebook's `x-business-use-case-usage` / `x-app-usage` headers say how many minutes until
/// calls are allowed again (`estimated_time_to_regain_access`).
fn graph_regain_wait(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    fn minutes(v: &serde_json::Value) -> Option<u64> {
        match v {
            serde_json::Value::Object(m) => m
                .get("estimated_time_to_regain_access")
                .and_then(serde_json::Value::as_u64)
                .or_else(|| m.values().filter_map(minutes).max()),
            serde_json::Value::Array(a) => a.iter().filter_map(minutes).max(),
            _ => None,
        }
    }
    ["x-business-use-case-usage", "x-app-usage"]
        .iter()
        .filter_map(|h| headers.get(*h)?.to_str().ok())
        .filter_map(|v| serde_json::from_str::<serde_json::Value>(v).ok())
        .filter_map(|v| minutes(&v))
        .max()
        // 0 minutes: access is back already; a short backoff is enough.
        .map(|m| match m {
            0 => BACKOFF,
            m => Duration::from_secs(m * 60).min(MAX_RESET_WAIT),
        })
}

/// Sends `req` (retrying a clone of it) and returns the body of a 2xx answer.
///
/// A 429 waits for `x-rate-limit-reset` (or a minute) and asks again; an answer that leaves no
/// requests in the window (`x-rate-limit-remaining: 0`) waits for the reset before returning, so
/// the next request does not run into a 429. 5xx answers and transport errors back off
/// exponentially with jitter, [`ATTEMPTS`] times. 401/403 are token problems and fail at once.
/// Counted in `signaal_social_requests_total{endpoint,status}` and
/// `signaal_social_rate_limit_waits_total{endpoint}`.
async fn get(req: reqwest::RequestBuilder, endpoint: &'static str) -> Result<Vec<u8>, SourceError> {
    let count = |status: String| {
        metrics::counter!("signaal_social_requests_total", "endpoint" => endpoint, "status" => status)
            .increment(1)
    };
    let rate_limited = |wait: Duration| {
        metrics::counter!("signaal_social_rate_limit_waits_total", "endpoint" => endpoint)
            .increment(1);
        tracing::warn!(
            endpoint,
            wait_seconds = wait.as_secs(),
            "rate limited; waiting for the window to reset"
        );
    };
    let mut failures = 0;
    let mut rate_waits = 0;
    loop {
        let attempt = req
            .try_clone()
            .ok_or_else(|| SourceError::Input(format!("{endpoint}: request cannot be repeated")))?;
        let resp = match attempt.send().await {
            Ok(resp) => resp,
            Err(e) => {
                count("error".into());
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(http_error(endpoint, e));
                }
                let wait = backoff(failures - 1);
                tracing::warn!(endpoint, error = %e.without_url(), wait_ms = wait.as_millis() as u64, "request failed; backing off");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let status = resp.status();
        count(status.as_u16().to_string());
        let headers = resp.headers().clone();
        let body = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                failures += 1;
                if failures >= ATTEMPTS {
                    return Err(http_error(endpoint, e));
                }
                tokio::time::sleep(backoff(failures - 1)).await;
                continue;
            }
        };
        let snippet = || -> String { String::from_utf8_lossy(&body).chars().take(300).collect() };
        // Graph API errors come as `{"error": {"code": …}}` with a 4xx status.
        let graph_code = (!status.is_success())
            .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .flatten()
            .and_then(|v| v.get("error")?.get("code")?.as_i64());
        // X says 429 with a reset time; Graph an error code with the time to regain access.
        let limited = match graph_code {
            _ if status == reqwest::StatusCode::TOO_MANY_REQUESTS => {
                Some(("429".to_string(), reset_wait(&headers)))
            }
            Some(code @ (4 | 17 | 32 | 613)) => {
                Some((format!("Graph error {code}"), graph_regain_wait(&headers)))
            }
            _ => None,
        };
        if let Some((what, wait)) = limited {
            rate_waits += 1;
            if rate_waits > 3 {
                return Err(SourceError::Input(format!(
                    "{endpoint}: still rate limited ({what}) after three waits"
                )));
            }
            let wait = wait.unwrap_or(Duration::from_secs(60));
            rate_limited(wait);
            tokio::time::sleep(wait).await;
            continue;
        }
        if graph_code == Some(190) {
            return Err(SourceError::Input(format!(
                "{endpoint}: the access token was refused (Graph error 190: expired or revoked); \
                 issue a new page access token: {}",
                snippet()
            )));
        }
        if status.is_server_error() {
            failures += 1;
            if failures >= ATTEMPTS {
                return Err(SourceError::Input(format!(
                    "{endpoint}: HTTP {status} after {ATTEMPTS} attempts: {}",
                    snippet()
                )));
            }
            let wait = backoff(failures - 1);
            tracing::warn!(endpoint, %status, wait_ms = wait.as_millis() as u64, "server error; backing off");
            tokio::time::sleep(wait).await;
            continue;
        }
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
            return Err(SourceError::Input(format!(
                "{endpoint}: the token was refused (HTTP {status}); check the configured token: {}",
                snippet()
            )));
        }
        if !status.is_success() {
            return Err(SourceError::Input(format!(
                "{endpoint}: HTTP {status}: {}",
                snippet()
            )));
        }
        let exhausted = headers
            .get("x-rate-limit-remaining")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() == "0");
        if exhausted {
            if let Some(wait) = reset_wait(&headers) {
                rate_limited(wait);
                tokio::time::sleep(wait).await;
            }
        }
        return Ok(body.to_vec());
    }
}

/// Fetches every page newer than the stored `since_id` and commits them as one batch.
pub async fn poll_x(
    cfg: &XSearch,
    client: &reqwest::Client,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    let bearer = token(
        &cfg.name,
        "bearer_token",
        &cfg.bearer_token,
        &cfg.bearer_token_file,
    )?;
    let since = store.get_cursor(&cfg.name, "since_id").await?;
    let base = cfg.base_url.trim_end_matches('/');
    // Search pages with `next_token`, timelines with `pagination_token`; both answer
    // `meta.next_token`.
    let (url, what, page_param, mut q): (String, &'static str, &str, Vec<(&str, &str)>) =
        match (&cfg.mentions_of, cfg.query.trim()) {
            (None, query) if !query.is_empty() => (
                format!("{base}/2/tweets/search/recent"),
                "x recent search",
                "next_token",
                vec![("query", query), ("max_results", "100")],
            ),
            (Some(user), "") if !user.trim().is_empty() => (
                format!("{base}/2/users/{}/mentions", user.trim()),
                "x mentions",
                "pagination_token",
                vec![("max_results", "100")],
            ),
            _ => {
                return Err(SourceError::Input(format!(
                    "[[social.x]] `{}`: set either `query` or `mentions_of`",
                    cfg.name
                )))
            }
        };
    q.extend([
        ("tweet.fields", x::TWEET_FIELDS),
        ("expansions", x::EXPANSIONS),
        ("user.fields", x::USER_FIELDS),
    ]);
    if let Some(s) = &since {
        q.push(("since_id", s));
    }
    let mut batch = Batch::default();
    let mut newest = since.clone();
    let mut next_token: Option<String> = None;
    for page in 0.. {
        // A paging loop that never ends is the API misbehaving; committing part of it would
        // leave a gap behind the cursor, so the poll fails instead.
        if page >= MAX_PAGES {
            return Err(SourceError::Input(format!(
                "{what}: more than {MAX_PAGES} pages in one poll; not committing a partial read"
            )));
        }
        let mut req = client.get(&url).bearer_auth(&bearer).query(&q);
        if let Some(t) = &next_token {
            req = req.query(&[(page_param, t)]);
        }
        let body = get(req, what).await?;
        let resp =
            x::parse_response(&body).map_err(|e| SourceError::Input(format!("{what}: {e}")))?;
        for e in &resp.errors {
            tracing::warn!(source = %cfg.name, error = %e, "partial error in x response");
        }
        if let Some(n) = &resp.meta.newest_id {
            if newest.as_deref().is_none_or(|cur| x::newer(n, cur)) {
                newest = Some(n.clone());
            }
        }
        let (signals, skipped) = x::read(&resp, &cfg.name, &cfg.own_user_ids);
        batch.signals.extend(signals);
        batch.skipped.extend(skipped);
        match resp.meta.next_token {
            Some(t) => next_token = Some(t),
            None => break,
        }
    }
    if let Some(n) = newest.filter(|n| Some(n) != since.as_ref()) {
        batch.checkpoints.push(("since_id".into(), n));
    }
    commit(&cfg.name, batch, publisher, store).await
}

/// Every page of a Graph list (`first` with `query`, then `paging.next`), newest first as the
/// API gives them.
async fn graph_pages(
    client: &reqwest::Client,
    first: &str,
    query: &[(&str, String)],
    access_token: &str,
    what: &'static str,
) -> Result<Vec<facebook::FeedResponse>, SourceError> {
    let mut pages = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let req = match &next {
            None => client.get(first).query(query),
            // `paging.next` carries every parameter except the token.
            Some(url) => client.get(url),
        }
        .query(&[("access_token", access_token)]);
        let body = get(req, what).await?;
        let resp = facebook::parse_response(&body)
            .map_err(|e| SourceError::Input(format!("{what}: {e}")))?;
        let more = resp.paging.as_ref().and_then(|p| p.next.clone());
        let empty = resp.data.is_empty();
        pages.push(resp);
        match more {
            Some(n) if !empty => next = Some(strip_token(&n)),
            _ => return Ok(pages),
        }
    }
    Err(SourceError::Input(format!(
        "{what}: more than {MAX_PAGES} pages in one poll; not committing a partial read"
    )))
}

fn newest_time(pages: &[facebook::FeedResponse]) -> Option<i64> {
    pages
        .iter()
        .flat_map(|p| &p.data)
        .filter_map(|p| facebook::parse_time(&p.created_time))
        .map(|t| t.timestamp())
        .max()
}

/// Fetches posts since the stored time and, for the page's posts of the last `comments_days`,
/// their comments since the stored comment time; commits them as one batch.
pub async fn poll_facebook(
    cfg: &FacebookPage,
    client: &reqwest::Client,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    let access_token = token(
        &cfg.name,
        "access_token",
        &cfg.access_token,
        &cfg.access_token_file,
    )?;
    let cursor = |key: &'static str| async move {
        Ok::<_, SourceError>(
            store
                .get_cursor(&cfg.name, key)
                .await?
                .and_then(|v| v.parse::<i64>().ok()),
        )
    };
    let since = cursor("since").await?;
    let graph = format!("{}/{}", cfg.base_url.trim_end_matches('/'), cfg.api_version);
    let feed = format!("{graph}/{}/feed", cfg.page_id);
    let mut q = vec![
        ("fields", facebook::FEED_FIELDS.to_string()),
        ("limit", "100".into()),
    ];
    if let Some(s) = since {
        q.push(("since", s.to_string()));
    }
    let pages = graph_pages(client, &feed, &q, &access_token, "facebook feed").await?;
    let mut batch = Batch::default();
    for resp in &pages {
        let (signals, skipped) = facebook::read(resp, &cfg.name, &cfg.page_id);
        batch.signals.extend(signals);
        batch.skipped.extend(skipped);
        batch
            .dead_letters
            .extend(crate::rejected_items(&feed_origin(&cfg.name, "feed"), resp));
    }
    // `since` is inclusive: the next poll asks for strictly newer items.
    if let Some(newest) = newest_time(&pages).filter(|n| Some(*n + 1) != since) {
        batch
            .checkpoints
            .push(("since".into(), (newest + 1).to_string()));
    }

    if cfg.comments_days > 0 {
        let comments_since = cursor("comments_since").await?;
        let recent = chrono::Utc::now().timestamp() - i64::from(cfg.comments_days) * 86_400;
        let recent_q = [
            ("fields", "id,created_time".to_string()),
            ("limit", "100".into()),
            ("since", recent.to_string()),
        ];
        let posts = graph_pages(client, &feed, &recent_q, &access_token, "facebook feed").await?;
        let mut newest = None;
        for post in posts.iter().flat_map(|p| &p.data) {
            let mut cq = vec![
                ("fields", facebook::COMMENT_FIELDS.to_string()),
                ("filter", "stream".into()),
                ("limit", "100".into()),
            ];
            if let Some(s) = comments_since {
                cq.push(("since", s.to_string()));
            }
            let url = format!("{graph}/{}/comments", post.id);
            let comments =
                graph_pages(client, &url, &cq, &access_token, "facebook comments").await?;
            for resp in &comments {
                let (signals, skipped) =
                    facebook::read_comments_page(resp, &cfg.name, &cfg.page_id, Some(&post.id));
                batch.signals.extend(signals);
                batch.skipped.extend(skipped);
                batch.dead_letters.extend(crate::rejected_items(
                    &feed_origin(&cfg.name, &format!("{}/comments", post.id)),
                    resp,
                ));
            }
            newest = newest.max(newest_time(&comments));
        }
        if let Some(n) = newest.filter(|n| Some(*n + 1) != comments_since) {
            batch
                .checkpoints
                .push(("comments_since".into(), (n + 1).to_string()));
        }
    }
    commit(&cfg.name, batch, publisher, store).await
}

/// Where a dead-lettered Graph item came from: the source and the list it was in.
fn feed_origin(source: &str, list: &str) -> String {
    format!("{source}:{list}")
}

/// Removes an `access_token` parameter from a `paging.next` URL (we add our own).
fn strip_token(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_string(),
        Some((base, query)) => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| !p.starts_with("access_token="))
                .collect();
            if kept.is_empty() {
                base.to_string()
            } else {
                format!("{base}?{}", kept.join("&"))
            }
        }
    }
}

pub fn http_client() -> Result<reqwest::Client, SourceError> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("signaal/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SourceError::Input(format!("http client: {e}")))
}

/// One configured social source.
#[derive(Debug, Clone)]
pub enum SocialSource {
    X(XSearch),
    Facebook(FacebookPage),
}

impl SocialSource {
    fn name(&self) -> &str {
        match self {
            SocialSource::X(c) => &c.name,
            SocialSource::Facebook(c) => &c.name,
        }
    }
}

/// Polls one source every `interval` until shutdown.
pub async fn run(
    source: SocialSource,
    interval: Duration,
    publisher: Publisher,
    store: Store,
    shutdown: CancellationToken,
) -> Result<(), SourceError> {
    let client = http_client()?;
    tracing::info!(source = %source.name(), "social source started");
    poll_loop(source.name(), interval, &shutdown, || async {
        match &source {
            SocialSource::X(c) => poll_x(c, &client, &publisher, &store).await,
            SocialSource::Facebook(c) => poll_facebook(c, &client, &publisher, &store).await,
        }
    })
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for attempt in 0..4 {
            let base = BACKOFF.saturating_mul(1 << attempt);
            let d = backoff(attempt);
            assert!(
                d >= base.mul_f64(0.5) && d < base.mul_f64(1.5),
                "{attempt}: {d:?}"
            );
        }
        assert!(backoff(30) <= Duration::from_secs(60));
    }

    #[test]
    fn rate_limit_headers() {
        let mut h = reqwest::header::HeaderMap::new();
        let reset = chrono::Utc::now().timestamp() + 30;
        h.insert(
            "x-rate-limit-reset",
            reset.to_string().parse().unwrap_or_else(|_| unreachable!()),
        );
        let wait = reset_wait(&h).unwrap_or_default();
        assert!(
            wait >= Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let mut g = reqwest::header::HeaderMap::new();
        g.insert(
            "x-business-use-case-usage",
            r#"{"104857600000001":[{"type":"pages","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":7}]}"#
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(graph_regain_wait(&g), Some(Duration::from_secs(7 * 60)));
        assert_eq!(graph_regain_wait(&reqwest::header::HeaderMap::new()), None);
        let mut now = reqwest::header::HeaderMap::new();
        now.insert(
            "x-app-usage",
            r#"{"estimated_time_to_regain_access":0}"#
                .parse()
                .unwrap_or_else(|_| unreachable!()),
        );
        assert_eq!(graph_regain_wait(&now), Some(BACKOFF));
    }

    #[test]
    fn paging_next_loses_its_token() {
        assert_eq!(
            strip_token("https://h/v21.0/1/feed?access_token=SECRET&after=abc"),
            "https://h/v21.0/1/feed?after=abc"
        );
        assert_eq!(strip_token("https://h/feed"), "https://h/feed");
    }
}
