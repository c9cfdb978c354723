//! The wire formats, one function each: what is posted (pure, `*_body`/`*_message` functions)
//! and the post itself ([`Notifier`]). A 2xx answer is a delivery; anything else — another
//! status, no connection, a timeout — is a [`DeliveryError`] with a short reason.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use signaal_core::{AlertEvent, AlertEventEnvelope, AlertState, Count, Severity};

use crate::config::{NotifyConfig, Sink, WebhookConfig};

/// The event's id: the same on every retry, so a receiver can drop a delivery it already has.
pub const EVENT_ID_HEADER: &str = "X-Signaal-Event-Id";
/// Unix seconds when the delivery was signed; a receiver refuses old ones (replays).
pub const TIMESTAMP_HEADER: &str = "X-Signaal-Timestamp";
/// `sha256=<hex HMAC-SHA256 over "<timestamp>.<body>" with the shared secret>`.
pub const SIGNATURE_HEADER: &str = "X-Signaal-Signature-256";

/// Alertmanager's `alertname` label for every signaal alert.
pub const ALERTNAME: &str = "SignaalSpike";

/// What a receiver's error body may add to the reason.
const MAX_REASON_BODY: usize = 200;

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("HTTP {status}{}", if .body.is_empty() { String::new() } else { format!(": {}", .body) })]
    Status { status: u16, body: String },
    #[error("no answer within {0} s")]
    Timeout(f64),
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Transport(String),
    /// The webhook's secret could not be had (its file is gone or empty).
    #[error("{0}")]
    Secret(String),
    #[error("could not encode the message: {0}")]
    Encode(String),
}

impl DeliveryError {
    /// Whether the notifier as a whole is failing (down, overloaded, unreachable, no secret),
    /// rather than refusing this one message: its other notifications wait too, instead of each
    /// taking its own timeout.
    pub fn sink_down(&self) -> bool {
        match self {
            DeliveryError::Status { status, .. } => {
                *status >= 500 || *status == 408 || *status == 429
            }
            DeliveryError::Timeout(_)
            | DeliveryError::Connect(_)
            | DeliveryError::Transport(_)
            | DeliveryError::Secret(_) => true,
            DeliveryError::Encode(_) => false,
        }
    }
}

/// `sha256=<hex>` of HMAC-SHA256 over `"<timestamp>.<body>"`: what [`SIGNATURE_HEADER`] carries.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The generic webhook's body: the event in its `signals.alerts` envelope (schema version 2),
/// byte for byte what [`SIGNATURE_HEADER`] signs.
pub fn webhook_body(event: &AlertEvent) -> Result<Vec<u8>, DeliveryError> {
    serde_json::to_vec(&AlertEventEnvelope::new(event.clone()))
        .map_err(|e| DeliveryError::Encode(e.to_string()))
}

/// "[FIRING] digital_service (critical)".
pub fn title(event: &AlertEvent) -> String {
    format!(
        "[{}] {} ({})",
        event.state.as_str().to_ascii_uppercase(),
        event.series,
        event.severity.as_str()
    )
}

/// The numbers beyond [`AlertEvent::summary`], one line each, for people.
pub fn details(event: &AlertEvent) -> Vec<String> {
    let counts = |c: &[Count]| {
        c.iter()
            .take(5)
            .map(|c| format!("{} ({})", c.value, c.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut lines = vec![format!(
        "Peak {} in a bucket, {} signals since {} UTC",
        event.peak,
        event.total,
        event.alert_start.format("%Y-%m-%d %H:%M")
    )];
    if !event.channels.is_empty() {
        let mut channels: Vec<(&String, &u64)> = event.channels.iter().collect();
        channels.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        lines.push(format!(
            "Channels: {}",
            channels
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !event.top_subjects.is_empty() {
        lines.push(format!("Top subjects: {}", counts(&event.top_subjects)));
    }
    if !event.top_words.is_empty() {
        lines.push(format!("Top words: {}", counts(&event.top_words)));
    }
    lines
}

/// Slack's `mrkdwn` escapes only these three.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack incoming-webhook message: `{"text": …}` with the title, the numbers and the link.
pub fn slack_message(event: &AlertEvent, link: Option<&str>) -> Value {
    let mut text = format!(
        "*{}*\n{}",
        slack_escape(&title(event)),
        slack_escape(&event.summary())
    );
    for line in details(event) {
        text.push('\n');
        text.push_str(&slack_escape(&line));
    }
    if let Some(link) = link {
        // `<url|label>`: a `|` or `>` in the URL would end it early.
        let url = link.replace('|', "%7C").replace('>', "%3E");
        text.push_str(&format!("\n<{url}|Open the alert>"));
    }
    json!({ "text": text })
}

/// Every text field of a MessageCard is Markdown: a theme like `digital_service` must not turn
/// into italics.
fn markdown_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '<' | '>' | '~' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The card's accent: red for critical, amber for a warning, green when resolved.
pub fn theme_color(event: &AlertEvent) -> &'static str {
    match (event.state, event.severity) {
        (AlertState::Resolved, _) => "2EB67D",
        (AlertState::Pending, _) | (AlertState::Update, _) => "6264A7",
        (_, Severity::Critical) => "D13438",
        (_, Severity::Warning) => "F2A93B",
    }
}

/// A Microsoft Teams incoming-webhook message: a legacy actionable MessageCard (`@type`,
/// `@context`, `summary`, `title`, `text`, `themeColor`, an `OpenUri` action for the link), the
/// format Office 365 connectors take.
pub fn teams_card(event: &AlertEvent, link: Option<&str>) -> Value {
    let mut paragraphs = vec![markdown_escape(&event.summary())];
    paragraphs.extend(details(event).iter().map(|l| markdown_escape(l)));
    if let Some(link) = link {
        paragraphs.push(format!("[Open the alert]({link})"));
    }
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "http://schema.org/extensions",
        "summary": format!("{} {}", event.series, event.state.as_str()),
        "title": markdown_escape(&title(event)),
        "text": paragraphs.join("\n\n"),
        "themeColor": theme_color(event),
    });
    if let (Some(link), Some(obj)) = (link, card.as_object_mut()) {
        obj.insert(
            "potentialAction".into(),
            json!([{
                "@type": "OpenUri",
                "name": "Open the alert",
                "targets": [{ "os": "default", "uri": link }]
            }]),
        );
    }
    card
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Alertmanager's `POST /api/v2/alerts` body: an array of one alert. Labels identify it
/// (`alertname`, `theme`, `severity`, `series`, `channel`); `startsAt` is the alert's first
/// bucket; `endsAt` the end of the resolving bucket, or, while it fires, `now` plus three
/// buckets, so Alertmanager keeps it firing until the next update and lets it lapse if signaal
/// stops sending.
pub fn alertmanager_alerts(event: &AlertEvent, link: Option<&str>, now: DateTime<Utc>) -> Value {
    let mut labels = Map::new();
    labels.insert("alertname".into(), ALERTNAME.into());
    labels.insert("theme".into(), event.theme.clone().into());
    labels.insert("severity".into(), event.severity.as_str().into());
    labels.insert("series".into(), event.series.clone().into());
    if let Some(channel) = &event.channel {
        labels.insert("channel".into(), channel.clone().into());
    }
    let ends_at = if event.state == AlertState::Resolved {
        event.bucket_end
    } else {
        let bucket = event.bucket_end - event.bucket_start;
        let bucket = if bucket > chrono::Duration::zero() {
            bucket
        } else {
            chrono::Duration::hours(1)
        };
        now + bucket * 3
    };
    let mut alert = Map::new();
    alert.insert("labels".into(), Value::Object(labels));
    alert.insert(
        "annotations".into(),
        json!({
            "summary": event.summary(),
            "description": details(event).join("\n"),
        }),
    );
    alert.insert("startsAt".into(), rfc3339(event.alert_start).into());
    alert.insert("endsAt".into(), rfc3339(ends_at).into());
    if let Some(link) = link {
        alert.insert("generatorURL".into(), link.into());
    }
    Value::Array(vec![Value::Object(alert)])
}

/// `{base}/api/v2/alerts`, whether or not the base ends in `/`.
pub fn alertmanager_url(base: &str) -> String {
    format!("{}/api/v2/alerts", base.trim_end_matches('/'))
}

/// Posts notifications; one HTTP client (connection pool) for every notifier.
#[derive(Debug, Clone)]
pub struct Notifier {
    http: reqwest::Client,
    timeout_seconds: f64,
}

impl Notifier {
    pub fn new(timeout_seconds: f64) -> Result<Notifier, DeliveryError> {
        let timeout = Duration::try_from_secs_f64(timeout_seconds)
            .map_err(|e| DeliveryError::Transport(format!("timeout: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect is a misconfigured URL, said so, not followed (a POST would turn into
            // a GET, and the signature headers would go wherever it points).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("signaal/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| DeliveryError::Transport(e.without_url().to_string()))?;
        Ok(Notifier {
            http,
            timeout_seconds,
        })
    }

    /// Delivers `event` to `sink` as configured in `cfg`.
    pub async fn deliver(
        &self,
        cfg: &NotifyConfig,
        sink: Sink,
        event: &AlertEvent,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let link = cfg.link_for(event);
        let link = link.as_deref();
        let not_configured = || DeliveryError::Transport(format!("`{sink}` is not configured"));
        match sink {
            Sink::Webhook => {
                let w = cfg.webhook.as_ref().ok_or_else(not_configured)?;
                self.webhook(w, event, now).await
            }
            Sink::Slack => {
                let s = cfg.slack.as_ref().ok_or_else(not_configured)?;
                self.slack(&s.url, event, link).await
            }
            Sink::Teams => {
                let t = cfg.teams.as_ref().ok_or_else(not_configured)?;
                self.teams(&t.url, event, link).await
            }
            Sink::Alertmanager => {
                let a = cfg.alertmanager.as_ref().ok_or_else(not_configured)?;
                self.alertmanager(&a.url, event, link, now).await
            }
        }
    }

    /// The signed generic webhook (see [`SIGNATURE_HEADER`]).
    pub async fn webhook(
        &self,
        cfg: &WebhookConfig,
        event: &AlertEvent,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let secret = cfg.read_secret().map_err(DeliveryError::Secret)?;
        let body = webhook_body(event)?;
        let timestamp = now.timestamp();
        let request = self
            .http
            .post(&cfg.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &event.id)
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(
                SIGNATURE_HEADER,
                signature(secret.as_bytes(), timestamp, &body),
            )
            .body(body);
        self.send(request).await
    }

    pub async fn slack(
        &self,
        url: &str,
        event: &AlertEvent,
        link: Option<&str>,
    ) -> Result<(), DeliveryError> {
        self.send(self.http.post(url).json(&slack_message(event, link)))
            .await
    }

    pub async fn teams(
        &self,
        url: &str,
        event: &AlertEvent,
        link: Option<&str>,
    ) -> Result<(), DeliveryError> {
        self.send(self.http.post(url).json(&teams_card(event, link)))
            .await
    }

    pub async fn alertmanager(
        &self,
        base_url: &str,
        event: &AlertEvent,
        link: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), DeliveryError> {
        let body = alertmanager_alerts(event, link, now);
        self.send(self.http.post(alertmanager_url(base_url)).json(&body))
            .await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(), DeliveryError> {
        let mut response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // The start of the answer often says why (Slack: `invalid_payload`, `no_team`).
        let mut body = Vec::new();
        while body.len() < MAX_REASON_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
        body.truncate(MAX_REASON_BODY);
        let body: String = String::from_utf8_lossy(&body)
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        Err(DeliveryError::Status {
            status: status.as_u16(),
            body: body.trim().to_string(),
        })
    }

    /// A transport error's reason, never with the URL (a Slack or Teams URL is its token).
    fn transport(&self, e: reqwest::Error) -> DeliveryError {
        if e.is_timeout() {
            return DeliveryError::Timeout(self.timeout_seconds);
        }
        let connect = e.is_connect();
        let e = e.without_url();
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(s) = source {
            reason.push_str(": ");
            reason.push_str(&s.to_string());
            source = s.source();
        }
        if connect {
            DeliveryError::Connect(reason)
        } else {
            DeliveryError::Transport(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_openssl() {
        // printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac k3y
        assert_eq!(
            signature(b"k3y", 1_700_000_000, br#"{"a":1}"#),
            "sha256=fd5a70e965043f7df6309c2c3b5ff5a8ffa99b1f5175e9a311459e73c4634d4a"
        );
    }

    #[test]
    fn markdown_and_slack_escapes() {
        assert_eq!(
            markdown_escape("digital_service *x*"),
            "digital\\_service \\*x\\*"
        );
        assert_eq!(slack_escape("a < b & c > d"), "a &lt; b &amp; c &gt; d");
    }

    #[test]
    fn alertmanager_url_with_or_without_slash() {
        assert_eq!(
            alertmanager_url("http://am:9093"),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(
            alertmanager_url("http://am:9093/"),
            "http://am:9093/api/v2/alerts"
        );
        assert_eq!(
            alertmanager_url("https://x/alertmanager/"),
            "https://x/alertmanager/api/v2/alerts"
        );
    }
}
