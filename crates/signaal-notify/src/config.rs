//! `[alerter.notify]` in the configuration: which notifiers are on, where they post, and how often a
//! failed notification is tried again.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use signaal_core::{AlertEvent, AlertState};

/// The notifiers, by the name their outbox rows carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sink {
    Webhook,
    Slack,
    Teams,
    Alertmanager,
}

impl Sink {
    pub const ALL: [Sink; 4] = [Sink::Webhook, Sink::Slack, Sink::Teams, Sink::Alertmanager];

    pub fn as_str(self) -> &'static str {
        match self {
            Sink::Webhook => "webhook",
            Sink::Slack => "slack",
            Sink::Teams => "teams",
            Sink::Alertmanager => "alertmanager",
        }
    }

    pub fn parse(name: &str) -> Option<Sink> {
        Sink::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether this notifier wants an event in `state`. The generic webhook gets every change;
    /// people (Slack, Teams) hear when an alert fires, is still firing after `repeat_interval`,
    /// and resolves; Alertmanager has no pending state, and needs every update to keep an alert
    /// from timing out.
    pub fn wants(self, state: AlertState) -> bool {
        use AlertState::*;
        match self {
            Sink::Webhook => true,
            Sink::Slack | Sink::Teams => matches!(state, Firing | Repeat | Resolved),
            Sink::Alertmanager => matches!(state, Firing | Update | Repeat | Resolved),
        }
    }
}

impl fmt::Display for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[alerter.notify]`. Every notifier is optional; with none configured no notification is queued.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// A generic JSON webhook, signed with HMAC-SHA256 (`X-Signaal-Signature-256`).
    pub webhook: Option<WebhookConfig>,
    /// A Slack incoming webhook.
    pub slack: Option<UrlConfig>,
    /// A Microsoft Teams incoming webhook (Office 365 connector, MessageCard format).
    pub teams: Option<UrlConfig>,
    /// Alertmanager's base URL (`http://alertmanager:9093`); alerts go to `/api/v2/alerts`.
    pub alertmanager: Option<UrlConfig>,
    /// A link to the alert for people (`https://signaal.example/alerts/{alert_id}`): put in
    /// Slack and Teams messages and as Alertmanager's `generatorURL`. Placeholders:
    /// `{alert_id}`, `{event_id}`, `{series}`, `{theme}`.
    pub link: Option<String>,
    /// One delivery's limit, connecting included.
    pub timeout_seconds: f64,
    /// A failed notification is tried again after `initial * 2^attempts` seconds, at most
    /// `backoff_max_seconds`.
    pub backoff_initial_seconds: f64,
    pub backoff_max_seconds: f64,
    /// How often the outbox is looked at when nothing was due.
    pub poll_interval_ms: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: None,
            slack: None,
            teams: None,
            alertmanager: None,
            link: None,
            timeout_seconds: 10.0,
            backoff_initial_seconds: 1.0,
            backoff_max_seconds: 300.0,
            poll_interval_ms: 500,
        }
    }
}

/// `[alerter.notify.webhook]`: the URL and the signing secret, inline or in a file (re-read at every
/// delivery, so it can be rotated while signaal runs).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default, skip_serializing, deserialize_with = "secret_text")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
}

/// `[alerter.notify.slack]`, `[alerter.notify.teams]`, `[alerter.notify.alertmanager]`.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlConfig {
    pub url: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("invalid configuration: `{key}` {reason}")]
    Invalid { key: &'static str, reason: String },
}

fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

impl NotifyConfig {
    /// The notifiers that are configured, in a fixed order.
    pub fn sinks(&self) -> Vec<Sink> {
        Sink::ALL
            .into_iter()
            .filter(|s| match s {
                Sink::Webhook => self.webhook.is_some(),
                Sink::Slack => self.slack.is_some(),
                Sink::Teams => self.teams.is_some(),
                Sink::Alertmanager => self.alertmanager.is_some(),
            })
            .collect()
    }

    /// The configured notifiers that want `event` (see [`Sink::wants`]), by name: what the
    /// alerter stores next to the event in [`signaal_store::Store::save_alert_events`].
    pub fn sinks_for(&self, event: &AlertEvent) -> Vec<String> {
        self.sinks()
            .into_iter()
            .filter(|s| s.wants(event.state))
            .map(|s| s.as_str().to_string())
            .collect()
    }

    /// Checks every setting without contacting anything; the webhook's secret file is read.
    /// Errors name the key and never show a secret or a Slack/Teams URL's token.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(w) = &self.webhook {
            check_url("notify.webhook.url", &w.url)?;
            match (&w.secret, &w.secret_file) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        "notify.webhook.secret",
                        "and `notify.webhook.secret_file` are both set: set one",
                    ))
                }
                (None, None) => {
                    return Err(invalid(
                        "notify.webhook.secret",
                        "is missing: set it or `notify.webhook.secret_file` (the receiver \
                         checks the signature with it)",
                    ))
                }
                (Some(s), None) => check_inline_secret("notify.webhook.secret", s)?,
                (None, Some(path)) => {
                    read_secret_file(path)
                        .map_err(|reason| invalid("notify.webhook.secret_file", reason))?;
                }
            }
        }
        if let Some(s) = &self.slack {
            check_url("notify.slack.url", &s.url)?;
        }
        if let Some(t) = &self.teams {
            check_url("notify.teams.url", &t.url)?;
        }
        if let Some(a) = &self.alertmanager {
            check_url("notify.alertmanager.url", &a.url)?;
        }
        if let Some(link) = &self.link {
            check_link(link)?;
        }
        let positive = |key, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(invalid(
                    key,
                    format!("must be a positive number of seconds, not {v}"),
                ))
            }
        };
        positive("notify.timeout_seconds", self.timeout_seconds)?;
        positive(
            "notify.backoff_initial_seconds",
            self.backoff_initial_seconds,
        )?;
        positive("notify.backoff_max_seconds", self.backoff_max_seconds)?;
        if self.backoff_max_seconds < self.backoff_initial_seconds {
            return Err(invalid(
                "notify.backoff_max_seconds",
                format!(
                    "({}) is below `notify.backoff_initial_seconds` ({})",
                    self.backoff_max_seconds, self.backoff_initial_seconds
                ),
            ));
        }
        // 0 would read the outbox without pause while nothing is due.
        if self.poll_interval_ms == 0 {
            return Err(invalid("notify.poll_interval_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// The wait before the next try of a notification that failed `attempts` times before this
    /// failure: `initial * 2^attempts`, at most the maximum.
    pub fn backoff(&self, attempts: u32) -> std::time::Duration {
        let factor = 2f64.powi(i32::try_from(attempts.min(62)).unwrap_or(62));
        let seconds = (self.backoff_initial_seconds * factor).min(self.backoff_max_seconds);
        std::time::Duration::try_from_secs_f64(seconds).unwrap_or(std::time::Duration::ZERO)
    }

    /// The human link for `event`, when one is configured.
    pub fn link_for(&self, event: &AlertEvent) -> Option<String> {
        self.link.as_deref().map(|t| render_link(t, event))
    }
}

impl WebhookConfig {
    /// The signing secret, trimmed: the inline value, or the file's content read now.
    pub fn read_secret(&self) -> Result<String, String> {
        match (&self.secret, &self.secret_file) {
            (Some(s), _) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            (Some(_), _) => Err("the webhook secret is empty".into()),
            (None, Some(path)) => read_secret_file(path),
            (None, None) => Err("no webhook secret is configured".into()),
        }
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the secret file {}: {e}", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("the secret file {} is empty", path.display()));
    }
    Ok(secret.to_string())
}

/// A blank secret is none, and one still in quotes was quoted once too often (`"k"` in an env
/// file passed on verbatim): the receiver would check another secret. Never shows the value.
fn check_inline_secret(key: &'static str, value: &str) -> Result<(), ConfigError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(invalid(key, "is empty or only whitespace"));
    }
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q);
    if quoted('"') || quoted('\'') {
        return Err(invalid(
            key,
            "is still wrapped in quotes after the configuration was read: remove one pair",
        ));
    }
    Ok(())
}

fn check_url(key: &'static str, url: &str) -> Result<(), ConfigError> {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(()),
        Ok(u) => Err(invalid(
            key,
            format!(
                "must be an http:// or https:// URL with a host, not `{}:…`",
                u.scheme()
            ),
        )),
        // The parser's reason, not the URL: a Slack or Teams URL carries its token.
        Err(e) => Err(invalid(key, format!("is not a URL ({e})"))),
    }
}

const PLACEHOLDERS: [&str; 4] = ["alert_id", "event_id", "series", "theme"];

fn check_link(template: &str) -> Result<(), ConfigError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err(invalid("notify.link", "has a `{` without its `}`"));
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(invalid(
                "notify.link",
                format!(
                    "has an unknown placeholder `{{{name}}}` (known: {})",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ),
            ));
        }
        rest = &after[close + 1..];
    }
    let sample = render_link(template, &sample_event());
    check_url("notify.link", &sample)
}

/// Fills in the placeholders; values other than the (hex) ids are percent-encoded, so a series
/// `theme/channel` stays one path segment.
fn render_link(template: &str, event: &AlertEvent) -> String {
    template
        .replace("{alert_id}", &event.alert_id)
        .replace("{event_id}", &event.id)
        .replace("{series}", &percent_encode(&event.series))
        .replace("{theme}", &percent_encode(&event.theme))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn sample_event() -> AlertEvent {
    let t = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    AlertEvent {
        id: "0".repeat(32),
        alert_id: "0".repeat(32),
        series: "theme/channel".into(),
        theme: "theme".into(),
        channel: None,
        state: AlertState::Firing,
        severity: signaal_core::Severity::Warning,
        alert_start: t,
        bucket_start: t,
        bucket_end: t,
        observed: 0,
        expected: 0.0,
        upper: None,
        p_value: 1.0,
        method: "sample".into(),
        peak: 0,
        total: 0,
        channels: Default::default(),
        top_subjects: vec![],
        top_words: vec![],
        sample_signal_ids: vec![],
        emitted_at: t,
    }
}

/// `https://hooks.slack.com/…`: the scheme and host of a URL whose path or user info may be a
/// credential (Slack and Teams URLs are their own token).
pub(crate) fn url_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}/…", u.scheme(), u.host_str().unwrap_or("?")),
        Err(_) => "(not a URL)".into(),
    }
}

impl fmt::Debug for NotifyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifyConfig")
            .field("webhook", &self.webhook)
            .field("slack", &self.slack)
            .field("teams", &self.teams)
            .field("alertmanager", &self.alertmanager)
            .field("link", &self.link)
            .field("timeout_seconds", &self.timeout_seconds)
            .field("backoff_initial_seconds", &self.backoff_initial_seconds)
            .field("backoff_max_seconds", &self.backoff_max_seconds)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .finish()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret = match (&self.secret, &self.secret_file) {
            (Some(_), _) => "(secret)".to_string(),
            (None, Some(p)) => format!("(secret in {})", p.display()),
            (None, None) => "(unset)".to_string(),
        };
        f.debug_struct("WebhookConfig")
            .field("url", &url_origin(&self.url))
            .field("secret", &secret)
            .finish()
    }
}

impl fmt::Debug for UrlConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UrlConfig")
            .field("url", &url_origin(&self.url))
            .finish()
    }
}

/// A secret setting must be text. Serde's own type error quotes the value it found ("found
/// integer `20240517`"), which would print the secret; this names only what was expected.
fn secret_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Text;
    const NOT_TEXT: &str = "a secret must be text: put it in quotes (its value is not shown)";
    impl<'v> serde::de::Visitor<'v> for Text {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a secret in quotes")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<String, E> {
            Err(E::custom(NOT_TEXT))
        }
        fn visit_seq<A: serde::de::SeqAccess<'v>>(self, _: A) -> Result<String, A::Error> {
            Err(serde::de::Error::custom(NOT_TEXT))
        }
    }
    d.deserialize_any(Text).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> Result<NotifyConfig, String> {
        toml::from_str(toml_text).map_err(|e| e.to_string())
    }

    fn event(state: AlertState) -> AlertEvent {
        AlertEvent {
            state,
            ..sample_event()
        }
    }

    #[test]
    fn defaults_and_a_full_section() -> Result<(), String> {
        let cfg = parse("")?;
        assert_eq!(cfg, NotifyConfig::default());
        assert!(cfg.sinks().is_empty());
        assert_eq!(cfg.validate(), Ok(()));
        let cfg = parse(
            r#"
            link = "https://signaal.example/alerts/{alert_id}?s={series}"
            timeout_seconds = 5
            backoff_initial_seconds = 2
            backoff_max_seconds = 60
            poll_interval_ms = 250
            [webhook]
            url = "https://hooks.example/signaal"
            secret = "k3y"
            [slack]
            url = "https://hooks.slack.com/services/T0/B0/XXXX"
            [teams]
            url = "https://example.webhook.office.com/webhookb2/abc"
            [alertmanager]
            url = "http://alertmanager:9093"
            "#,
        )?;
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(cfg.sinks(), Sink::ALL.to_vec());
        assert_eq!(cfg.timeout_seconds, 5.0);
        let mut e = event(AlertState::Firing);
        e.series = "payment/email".into();
        assert_eq!(
            cfg.link_for(&e).as_deref(),
            Some(
                "https://signaal.example/alerts/00000000000000000000000000000000?s=payment%2Femail"
            )
        );
        // Neither the secret nor the Slack token shows in Debug.
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("k3y") && !debug.contains("XXXX"), "{debug}");
        assert!(debug.contains("hooks.slack.com"), "{debug}");
        Ok(())
    }

    #[test]
    fn which_sinks_want_which_states() -> Result<(), String> {
        let all = parse(
            r#"
            [webhook]
            url = "https://hooks.example/x"
            secret = "k"
            [slack]
            url = "https://hooks.slack.com/x"
            [teams]
            url = "https://teams.example/x"
            [alertmanager]
            url = "http://am:9093"
            "#,
        )?;
        use AlertState::*;
        for (state, want) in [
            (Pending, vec!["webhook"]),
            (Firing, vec!["webhook", "slack", "teams", "alertmanager"]),
            (Update, vec!["webhook", "alertmanager"]),
            (Repeat, vec!["webhook", "slack", "teams", "alertmanager"]),
            (Resolved, vec!["webhook", "slack", "teams", "alertmanager"]),
        ] {
            assert_eq!(all.sinks_for(&event(state)), want, "{state:?}");
        }
        let slack_only = parse("[slack]\nurl = \"https://hooks.slack.com/x\"\n")?;
        assert!(slack_only.sinks_for(&event(Update)).is_empty());
        assert_eq!(slack_only.sinks_for(&event(Firing)), vec!["slack"]);
        assert!(NotifyConfig::default().sinks_for(&event(Firing)).is_empty());
        for s in Sink::ALL {
            assert_eq!(Sink::parse(s.as_str()), Some(s));
        }
        Ok(())
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let cfg = NotifyConfig::default();
        let secs: Vec<f64> = [0, 1, 2, 3, 8, 9, 100, u32::MAX]
            .iter()
            .map(|a| cfg.backoff(*a).as_secs_f64())
            .collect();
        assert_eq!(secs, [1.0, 2.0, 4.0, 8.0, 256.0, 300.0, 300.0, 300.0]);
    }

    #[test]
    fn mistakes_are_named_without_secrets() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n")?;
        let good = dir.path().join("good");
        std::fs::write(&good, "s3cr3t-fr0m-f1le\n")?;
        let ok = format!(
            "[webhook]\nurl = \"https://h/x\"\nsecret_file = \"{}\"\n",
            good.display()
        );
        let cfg = parse(&ok)?;
        assert_eq!(cfg.validate(), Ok(()));
        assert_eq!(
            cfg.webhook.as_ref().map(|w| w.read_secret()),
            Some(Ok("s3cr3t-fr0m-f1le".to_string()))
        );
        let cases = [
            (
                "[webhook]\nurl = \"https://h/x\"\n".to_string(),
                "`notify.webhook.secret` is missing",
            ),
            (
                "[webhook]\nurl = \"https://h/x\"\nsecret = \"  \"\n".to_string(),
                "`notify.webhook.secret` is empty",
            ),
            (
                "[webhook]\nurl = \"https://h/x\"\nsecret = \"'s3cr3t'\"\n".to_string(),
                "still wrapped in quotes",
            ),
            (
                format!(
                    "[webhook]\nurl = \"https://h/x\"\nsecret = \"s3cr3t\"\nsecret_file = \"{}\"\n",
                    good.display()
                ),
                "both set",
            ),
            (
                format!(
                    "[webhook]\nurl = \"https://h/x\"\nsecret_file = \"{}\"\n",
                    empty.display()
                ),
                "is empty",
            ),
            (
                "[webhook]\nurl = \"https://h/x\"\nsecret_file = \"/nonexistent/s\"\n".to_string(),
                "cannot read the secret file /nonexistent/s",
            ),
            (
                "[slack]\nurl = \"hooks.slack.com/services/s3cr3t\"\n".to_string(),
                "`notify.slack.url` is not a URL",
            ),
            (
                "[teams]\nurl = \"ftp://teams.example/s3cr3t\"\n".to_string(),
                "`notify.teams.url` must be an http:// or https:// URL",
            ),
            (
                "link = \"https://x/{alert}\"\n".to_string(),
                "unknown placeholder `{alert}`",
            ),
            (
                "link = \"https://x/{alert_id\"\n".to_string(),
                "without its `}`",
            ),
            (
                "link = \"/alerts/{alert_id}\"\n".to_string(),
                "`notify.link` is not a URL",
            ),
            (
                "timeout_seconds = 0\n".to_string(),
                "`notify.timeout_seconds` must be a positive",
            ),
            (
                "backoff_initial_seconds = 10\nbackoff_max_seconds = 5\n".to_string(),
                "`notify.backoff_max_seconds` (5) is below",
            ),
            (
                "poll_interval_ms = 0\n".to_string(),
                "`notify.poll_interval_ms` must be at least 1",
            ),
        ];
        for (text, want) in cases {
            let err = parse(&text)?
                .validate()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{text}: {err}");
            assert!(!err.contains("s3cr3t"), "{text}: {err}");
        }
        // A secret that is not text is refused without its value (read from a parsed document,
        // as figment does: the TOML parser's own error would quote the line).
        let doc: toml::Value =
            toml::from_str("[webhook]\nurl = \"https://h/x\"\nsecret = 20240517\n")?;
        let err = doc
            .try_into::<NotifyConfig>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("must be text") && !err.contains("20240517"),
            "{err}"
        );
        let err = parse("[slack]\nurl = \"https://h/x\"\nchannel = \"#x\"\n")
            .err()
            .unwrap_or_default();
        assert!(err.contains("unknown field `channel`"), "{err}");
        Ok(())
    }
}
