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
    pub query: String,
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
}

fn default_x_base() -> String {
    "https://api.x.com".into()
}
fn default_fb_base() -> String {
    "https://graph.facebook.com".into()
}
fn default_fb_version() -> String {
    "v21.0".into()
}

/// How an HTTP call failed, in words an operator can act on. Tokens never appear here.
fn http_error(what: &str, e: reqwest::Error) -> SourceError {
    SourceError::Input(format!("{what}: {}", e.without_url()))
}

async fn get(req: reqwest::RequestBuilder, what: &str) -> Result<Vec<u8>, SourceError> {
    let resp = req.send().await.map_err(|e| http_error(what, e))?;
    let status = resp.status();
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        let reset = resp
            .headers()
            .get("x-rate-limit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i64>().ok());
        let wait = reset
            .map(|r| (r - chrono::Utc::now().timestamp()).clamp(1, 900))
            .unwrap_or(60);
        tracing::warn!(
            what,
            wait_seconds = wait,
            "rate limited; waiting for the reset"
        );
        tokio::time::sleep(Duration::from_secs(u64::try_from(wait).unwrap_or(60))).await;
        return Err(SourceError::Input(format!("{what}: rate limited (429)")));
    }
    let body = resp.bytes().await.map_err(|e| http_error(what, e))?;
    if !status.is_success() {
        let snippet: String = String::from_utf8_lossy(&body).chars().take(300).collect();
        return Err(SourceError::Input(format!(
            "{what}: HTTP {status}: {snippet}"
        )));
    }
    Ok(body.to_vec())
}

/// Fetches every page newer than the stored `since_id` and commits them as one batch.
pub async fn poll_x(
    cfg: &XSearch,
    client: &reqwest::Client,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    let since = store.get_cursor(&cfg.name, "since_id").await?;
    let url = format!(
        "{}/2/tweets/search/recent",
        cfg.base_url.trim_end_matches('/')
    );
    let mut batch = Batch::default();
    let mut newest = since.clone();
    let mut next_token: Option<String> = None;
    loop {
        let mut q: Vec<(&str, &str)> = vec![
            ("query", &cfg.query),
            ("max_results", "100"),
            ("tweet.fields", x::TWEET_FIELDS),
            ("expansions", "author_id"),
            ("user.fields", x::USER_FIELDS),
        ];
        if let Some(s) = &since {
            q.push(("since_id", s));
        }
        if let Some(t) = &next_token {
            q.push(("next_token", t));
        }
        let req = client.get(&url).bearer_auth(&cfg.bearer_token).query(&q);
        let body = get(req, "x recent search").await?;
        let resp = x::parse_response(&body)
            .map_err(|e| SourceError::Input(format!("x recent search: {e}")))?;
        for e in &resp.errors {
            tracing::warn!(source = %cfg.name, error = %e, "partial error in x response");
        }
        if let Some(n) = &resp.meta.newest_id {
            if newest.as_deref().is_none_or(|cur| x::newer(n, cur)) {
                newest = Some(n.clone());
            }
        }
        batch
            .signals
            .extend(x::to_signals(&resp, &cfg.name, &cfg.own_user_ids));
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

/// Fetches posts since the stored time, following `paging.next`, and commits them.
pub async fn poll_facebook(
    cfg: &FacebookPage,
    client: &reqwest::Client,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, SourceError> {
    let since: Option<i64> = store
        .get_cursor(&cfg.name, "since")
        .await?
        .and_then(|v| v.parse().ok());
    let first = format!(
        "{}/{}/{}/feed",
        cfg.base_url.trim_end_matches('/'),
        cfg.api_version,
        cfg.page_id
    );
    let mut batch = Batch::default();
    let mut newest = since.unwrap_or(0);
    let mut next: Option<String> = None;
    for _page in 0..1000 {
        let req = match &next {
            None => {
                let mut q = vec![
                    ("fields", facebook::FEED_FIELDS.to_string()),
                    ("limit", "100".into()),
                ];
                if let Some(s) = since {
                    q.push(("since", s.to_string()));
                }
                client
                    .get(&first)
                    .query(&q)
                    .query(&[("access_token", &cfg.access_token)])
            }
            // `paging.next` carries every parameter except the token.
            Some(url) => client
                .get(url)
                .query(&[("access_token", &cfg.access_token)]),
        };
        let body = get(req, "facebook feed").await?;
        let resp = facebook::parse_response(&body)
            .map_err(|e| SourceError::Input(format!("facebook feed: {e}")))?;
        for p in &resp.data {
            if let Some(t) = facebook::parse_time(&p.created_time) {
                newest = newest.max(t.timestamp());
            }
        }
        batch
            .signals
            .extend(facebook::to_signals(&resp, &cfg.name, &cfg.page_id));
        match resp.paging.and_then(|p| p.next) {
            Some(n) if !resp.data.is_empty() => next = Some(strip_token(&n)),
            _ => break,
        }
    }
    if Some(newest) != since && newest > 0 {
        // `since` is inclusive: the next poll asks for strictly newer posts.
        batch
            .checkpoints
            .push(("since".into(), (newest + 1).to_string()));
    }
    commit(&cfg.name, batch, publisher, store).await
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
    use super::strip_token;

    #[test]
    fn paging_next_loses_its_token() {
        assert_eq!(
            strip_token("https://h/v21.0/1/feed?access_token=SECRET&after=abc"),
            "https://h/v21.0/1/feed?after=abc"
        );
        assert_eq!(strip_token("https://h/feed"), "https://h/feed");
    }
}
