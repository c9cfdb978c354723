//! Configuration: defaults, then a TOML file, then `SIGNAAL_`-prefixed environment variables
//! (`__` separates levels: `SIGNAAL_BUS__BROKERS`, `SIGNAAL_STORE__URL`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use signaal_alerter::stats::StatsConfig;
use signaal_alerter::AlertConfig;
use signaal_analysis::AnalysisConfig;
use signaal_api::http::ApiConfig;
use signaal_bus::BusConfig;
use signaal_phone::CsvMapping;
use signaal_social::worker::{FacebookPage, XSearch};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub bus: BusConfig,
    pub store: StoreConfig,
    pub email: EmailConfig,
    pub phone: PhoneConfig,
    pub social: SocialConfig,
    pub classifier: ClassifierConfig,
    pub alerter: AlertConfig,
    /// `[stats]`: how the stats worker batches (`signals.stats`).
    pub stats: StatsConfig,
    /// `[analysis]`: recurrence window, impact weights, improvement-action windows.
    pub analysis: AnalysisConfig,
    /// `[api]`: where `signaal serve` listens and the token it wants.
    pub api: ApiConfig,
    /// `[web]`: the coordinator's page and its live feed, served with the API.
    pub web: signaal_web::WebConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://…` or `sqlite:path` (created if missing).
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: "sqlite:signaal.db".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    pub poll_seconds: u64,
    /// Senders whose mail is not a customer signal (skipped, counted as `internal_sender`):
    /// addresses (`noreply@gemeente.nl`) or whole domains (`@gemeente.nl`).
    pub internal_addresses: Vec<String>,
    /// Larger messages go to the dead-letter topic with the reason, unparsed.
    pub max_message_bytes: usize,
    /// Skip mailing-list and bulk mail (`Precedence: list/bulk/junk`, `List-Id`); off by default
    /// because a complaints address run as a group or list would lose every customer's mail.
    pub skip_list_mail: bool,
    pub folders: Vec<EmailFolder>,
    pub imap: Vec<ImapAccount>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            poll_seconds: 30,
            internal_addresses: Vec::new(),
            max_message_bytes: signaal_email::parse::MAX_MESSAGE_BYTES,
            skip_list_mail: false,
            folders: Vec::new(),
            imap: Vec::new(),
        }
    }
}

impl EmailConfig {
    pub fn rules(&self) -> signaal_email::Rules {
        signaal_email::Rules {
            internal: self.internal_addresses.clone(),
            max_bytes: self.max_message_bytes,
            skip_list_mail: self.skip_list_mail,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapSecurity {
    /// TLS from the first byte (port 993).
    #[default]
    Tls,
    /// STARTTLS on the plain port (143).
    StartTls,
    /// No encryption: refused unless the server is on loopback.
    None,
}

/// One mailbox account read over IMAP (`[[email.imap]]`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImapAccount {
    /// Source name on every signal; keys the cursors.
    pub name: String,
    pub host: String,
    /// Defaults to 993 with `tls`, 143 otherwise.
    pub port: Option<u16>,
    #[serde(default)]
    pub security: ImapSecurity,
    /// Extra trusted CA certificates (PEM) besides the public roots.
    pub ca_file: Option<PathBuf>,
    pub user: String,
    #[serde(default, skip_serializing, deserialize_with = "secret_text_opt")]
    pub password: Option<String>,
    /// Read at every login.
    pub password_file: Option<PathBuf>,
    /// XOAUTH2 bearer token (Microsoft 365, Gmail).
    #[serde(default, skip_serializing, deserialize_with = "secret_text_opt")]
    pub oauth_token: Option<String>,
    /// XOAUTH2 bearer token in a file, read at every login so a refresher can rotate it.
    pub oauth_token_file: Option<PathBuf>,
    #[serde(default = "inbox")]
    pub folders: Vec<String>,
    /// After Kafka acknowledged: move the message to this folder …
    pub move_to: Option<String>,
    /// … or set this keyword on it. Neither: the mailbox is left exactly as it was.
    pub keyword: Option<String>,
    /// Messages per commit.
    #[serde(default = "imap_batch")]
    pub batch: usize,
    /// Wait for new mail with IMAP IDLE (one connection per folder).
    #[serde(default = "yes")]
    pub idle: bool,
}

fn inbox() -> Vec<String> {
    vec!["INBOX".into()]
}

fn imap_batch() -> usize {
    50
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for ImapAccount {
    // Passwords and tokens never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImapAccount")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.user)
            .field("folders", &self.folders)
            .finish_non_exhaustive()
    }
}

impl ImapAccount {
    /// The IMAP source this account describes, or why it cannot be one.
    pub fn source(&self, email: &EmailConfig) -> anyhow::Result<signaal_email::imap::ImapConfig> {
        use signaal_email::imap::{AfterCommit, Auth, ImapConfig, Secret, Security};
        let what = format!("[[email.imap]] `{}`", self.name);
        let user = self.user.clone();
        let auth = match (
            &self.password,
            &self.password_file,
            &self.oauth_token,
            &self.oauth_token_file,
        ) {
            (Some(p), None, None, None) => Auth::Password {
                user,
                password: Secret::Value(p.clone()),
            },
            (None, Some(f), None, None) => Auth::Password {
                user,
                password: Secret::File(f.clone()),
            },
            (None, None, Some(t), None) => Auth::XOAuth2 {
                user,
                token: Secret::Value(t.clone()),
            },
            (None, None, None, Some(f)) => Auth::XOAuth2 {
                user,
                token: Secret::File(f.clone()),
            },
            _ => anyhow::bail!(
                "{what}: set exactly one of password, password_file, oauth_token, oauth_token_file"
            ),
        };
        let after = match (&self.move_to, &self.keyword) {
            (None, None) => AfterCommit::Nothing,
            (Some(to), None) => AfterCommit::Move(to.clone()),
            (None, Some(kw)) => AfterCommit::Keyword(kw.clone()),
            (Some(_), Some(_)) => anyhow::bail!("{what}: set move_to or keyword, not both"),
        };
        if self.folders.is_empty() || self.folders.iter().any(|f| f.trim().is_empty()) {
            anyhow::bail!("{what}: folders must name at least one folder");
        }
        if self.batch == 0 {
            anyhow::bail!("{what}: batch must be at least 1");
        }
        let security = match self.security {
            ImapSecurity::Tls => Security::Tls,
            ImapSecurity::StartTls => Security::StartTls,
            ImapSecurity::None => {
                let loopback = self.host == "localhost"
                    || self
                        .host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                if !loopback {
                    anyhow::bail!(
                        "{what}: security = \"none\" would send the login unencrypted to `{}`; \
                         use \"tls\" or \"starttls\"",
                        self.host
                    );
                }
                Security::None
            }
        };
        Ok(ImapConfig {
            name: self.name.clone(),
            host: self.host.clone(),
            port: self
                .port
                .unwrap_or(if security == Security::Tls { 993 } else { 143 }),
            security,
            ca_file: self.ca_file.clone(),
            auth,
            folders: self.folders.clone(),
            after,
            batch: self.batch,
            rules: email.rules(),
            idle: self.idle,
            poll_interval: std::time::Duration::from_secs(email.poll_seconds.max(1)),
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailFolder {
    pub name: String,
    pub path: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneConfig {
    pub poll_seconds: u64,
    pub inboxes: Vec<PhoneInbox>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            poll_seconds: 30,
            inboxes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneInbox {
    pub name: String,
    pub path: PathBuf,
    /// `generic_csv` (default; columns named by `mapping`) or `asterisk_cdr`.
    #[serde(default)]
    pub profile: signaal_phone::Profile,
    #[serde(default)]
    pub mapping: CsvMapping,
    /// IANA zone of times the export writes without one (Asterisk unless `usegmtime`, CSV
    /// without offset): `Europe/Amsterdam` unless set; `UTC` for Asterisk with `usegmtime`.
    #[serde(default)]
    pub timezone: signaal_phone::Zone,
    /// A quoted CSV field longer than this (an unclosed quote) is its row's error.
    #[serde(default = "signaal_phone::default_max_field_bytes")]
    pub max_field_bytes: usize,
}

impl PhoneInbox {
    pub fn format(&self) -> signaal_phone::ExportFormat {
        signaal_phone::ExportFormat {
            profile: self.profile,
            mapping: self.mapping.clone(),
            timezone: self.timezone,
            max_field_bytes: self.max_field_bytes,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    pub poll_seconds: u64,
    pub x: Vec<XSearch>,
    pub facebook: Vec<FacebookPage>,
    /// X filtered streams (`/2/tweets/search/stream`), rules from config.
    pub x_stream: Vec<signaal_social::stream::XStream>,
    /// The Facebook page webhook receiver, served by the social worker.
    pub webhook: Option<FacebookWebhook>,
}

/// `[social.webhook]`: where Facebook delivers page feed changes, and the secrets that prove it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacebookWebhook {
    /// Address to serve `GET`/`POST /webhooks/facebook` on (behind the TLS-terminating proxy).
    pub listen: std::net::SocketAddr,
    #[serde(default = "webhook_name")]
    pub name: String,
    #[serde(default, skip_serializing, deserialize_with = "secret_text_opt")]
    pub app_secret: Option<String>,
    pub app_secret_file: Option<PathBuf>,
    #[serde(default, skip_serializing, deserialize_with = "secret_text_opt")]
    pub verify_token: Option<String>,
    pub verify_token_file: Option<PathBuf>,
    /// The organisation's own pages: their posts and comments are not signals.
    #[serde(default)]
    pub own_page_ids: Vec<String>,
}

fn webhook_name() -> String {
    "facebook-webhook".into()
}

impl std::fmt::Debug for FacebookWebhook {
    // The app secret and verify token never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FacebookWebhook")
            .field("listen", &self.listen)
            .field("name", &self.name)
            .field("own_page_ids", &self.own_page_ids)
            .finish_non_exhaustive()
    }
}

/// A secret given inline or in a file (exactly one), trimmed.
fn secret(what: &str, value: &Option<String>, file: &Option<PathBuf>) -> anyhow::Result<String> {
    use signaal_source::{Secret, SecretError};
    match Secret::from_config(what, value.as_deref(), file.as_deref()).and_then(|s| s.read()) {
        Ok(s) => Ok(s),
        Err(SecretError::Empty) => anyhow::bail!("{what} is empty"),
        Err(e) => Err(e.into()),
    }
}

impl FacebookWebhook {
    pub fn receiver(&self) -> anyhow::Result<signaal_social::webhook::WebhookConfig> {
        let what = |e: anyhow::Error| anyhow::anyhow!("[social.webhook]: {e}");
        Ok(signaal_social::webhook::WebhookConfig {
            source: self.name.clone(),
            app_secret: secret("app_secret", &self.app_secret, &self.app_secret_file)
                .map_err(what)?
                .into_bytes(),
            verify_token: secret("verify_token", &self.verify_token, &self.verify_token_file)
                .map_err(what)?,
            own_page_ids: self.own_page_ids.clone(),
        })
    }
}

impl Default for SocialConfig {
    fn default() -> Self {
        SocialConfig {
            poll_seconds: 60,
            x: Vec::new(),
            facebook: Vec::new(),
            x_stream: Vec::new(),
            webhook: None,
        }
    }
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// An organisation's own taxonomy file (TOML); the embedded default when absent.
    pub taxonomy: Option<PathBuf>,
    /// Key for the authors' HMAC pseudonyms. Keep it secret and stable: changing it breaks
    /// recurrence counts per customer. Never logged. Used exactly as read: `SIGNAAL_…` values
    /// are read like TOML values, so `"k"` in the environment is `k`, as `author_secret = "k"`
    /// is in the file.
    #[serde(skip_serializing, deserialize_with = "secret_text")]
    pub author_secret: String,
    /// Call metadata thresholds for phone signals (`long_wait_seconds`, `abandoned`,
    /// `handoff_transfers`, `repeat_days`).
    pub calls: signaal_classifier::CallRules,
    /// Batching of the worker (`batch`, `linger_ms`, `in_flight`).
    pub worker: signaal_classifier::worker::Settings,
    /// The learned layer beside the rules (`enabled`, `model`, `kind_min`, `veto_below`).
    pub learned: signaal_classifier::learned::LearnedConfig,
}

impl std::fmt::Debug for ClassifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifierConfig")
            .field("taxonomy", &self.taxonomy)
            .field("calls", &self.calls)
            .field("worker", &self.worker)
            .field("learned", &self.learned)
            .field(
                "author_secret",
                &if self.author_secret.is_empty() {
                    "(unset)"
                } else {
                    "(set)"
                },
            )
            .finish()
    }
}

/// A secret setting must be text. Serde's own type error quotes the value it found ("found
/// unsigned int `20240517`"): for a secret that would print the secret, so the error here names
/// only what was expected (figment adds the key and where it came from).
fn secret_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_any(SecretText)
}

fn secret_text_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    secret_text(d).map(Some)
}

const SECRET_NOT_TEXT: &str = "a secret must be text: put it in quotes (its value is not shown)";

/// Takes a string; refuses anything else without showing it.
struct SecretText;

macro_rules! refuse {
    ($($name:ident: $t:ty),*) => {$(
        fn $name<E: serde::de::Error>(self, _: $t) -> Result<String, E> {
            Err(E::custom(SECRET_NOT_TEXT))
        }
    )*};
}

impl<'de> serde::de::Visitor<'de> for SecretText {
    type Value = String;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a secret in quotes")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    /// Figment reads `'k'` in the environment as a character; TOML's `'k'` is the string `k`.
    fn visit_char<E: serde::de::Error>(self, v: char) -> Result<String, E> {
        Ok(v.to_string())
    }
    refuse!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_i128: i128,
        visit_u128: u128, visit_f64: f64, visit_bytes: &[u8]);
    fn visit_unit<E: serde::de::Error>(self) -> Result<String, E> {
        Err(E::custom(SECRET_NOT_TEXT))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(serde::de::Error::custom(SECRET_NOT_TEXT))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<String, A::Error> {
        Err(serde::de::Error::custom(SECRET_NOT_TEXT))
    }
}

impl Config {
    /// Settings that are wrong whatever runs, refused before anything is contacted. What only a
    /// worker needs (the author secret, the register's URL) is checked when the worker starts,
    /// also before connecting (`workers::check`).
    pub fn validate(&self) -> anyhow::Result<()> {
        // Zero would poll without pause: a busy loop on an idle folder or API.
        for (key, seconds) in [
            ("email.poll_seconds", self.email.poll_seconds),
            ("phone.poll_seconds", self.phone.poll_seconds),
            ("social.poll_seconds", self.social.poll_seconds),
        ] {
            if seconds == 0 {
                anyhow::bail!("invalid configuration: `{key}` must be at least 1");
            }
        }
        if self.bus.brokers.split(',').all(|b| b.trim().is_empty()) {
            anyhow::bail!(
                "invalid configuration: `bus.brokers` is empty: give host:port[,host:port…] \
                 (SIGNAAL_BUS__BROKERS)"
            );
        }
        if !self.classifier.author_secret.is_empty() {
            signaal_source::secret::check_value(
                "classifier.author_secret",
                &self.classifier.author_secret,
            )
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        }
        self.alerter
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.stats
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.analysis
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: [analysis] {e}"))?;
        self.api
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        self.web
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(())
    }

    /// The top-level sections, the first word of a `SIGNAAL_<SECTION>__<KEY>` variable (a test
    /// checks that every field of [`Config`] is here).
    const SECTIONS: [&'static str; 11] = [
        "bus",
        "store",
        "email",
        "phone",
        "social",
        "classifier",
        "alerter",
        "stats",
        "analysis",
        "api",
        "web",
    ];

    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        Config::load_with(file, "SIGNAAL_")
    }

    /// [`Config::load`] with another variable prefix, so a test can set variables that no other
    /// test's configuration reads.
    fn load_with(file: Option<&Path>, prefix: &str) -> anyhow::Result<Config> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file `{}` not found", path.display());
            }
            f = f.merge(Toml::file(path));
        }
        // Only `SIGNAAL_<SECTION>__…` configures; other SIGNAAL_ variables (SIGNAAL_LOG,
        // SIGNAAL_CONFIG, test settings) are not configuration keys.
        let env = Env::prefixed(prefix).split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            // The key arrives with `__` already turned into `.`.
            let section = k.split(['.', '_']).next().unwrap_or_default();
            Config::SECTIONS.contains(&section) && k.len() > section.len()
        });
        f = f.merge(env);
        let config: Config = f
            .extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn file_then_environment() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("signaal.toml");
        std::fs::write(
            &path,
            r#"
[bus]
brokers = "kafka:9092"
[bus.client]
"security.protocol" = "SASL_SSL"
[store]
url = "postgres://signaal@db/signaal"
[[email.folders]]
name = "klachten"
path = "/mail/klachten"
"#,
        )?;
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNAAL_BUS__BROKERS", "override:9092");
            let c = Config::load(Some(&path)).map_err(|e| e.to_string())?;
            assert_eq!(c.bus.brokers, "override:9092");
            assert_eq!(
                c.bus.client.get("security.protocol").map(String::as_str),
                Some("SASL_SSL")
            );
            assert_eq!(c.store.url, "postgres://signaal@db/signaal");
            assert_eq!(c.email.folders[0].name, "klachten");
            Ok(())
        });
        Ok(())
    }

    #[test]
    fn every_section_is_configurable_from_the_environment() -> anyhow::Result<()> {
        let fields = serde_json::to_value(Config::default())?;
        let mut fields: Vec<&str> = fields
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sections = Config::SECTIONS.to_vec();
        fields.sort_unstable();
        sections.sort_unstable();
        assert_eq!(fields, sections);
        Ok(())
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn the_api_token_and_analysis_come_from_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNAALAPITEST_API__TOKEN", "s3cret");
            jail.set_env("SIGNAALAPITEST_ANALYSIS__RECURRENCE__WINDOW_DAYS", "30");
            let c = Config::load_with(None, "SIGNAALAPITEST_").map_err(|e| e.to_string())?;
            assert_eq!(c.api.token, "s3cret");
            assert_eq!(c.analysis.recurrence.window_days, 30);
            Ok(())
        });
    }

    fn imap_account(toml: &str) -> anyhow::Result<signaal_email::imap::ImapConfig> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("signaal.toml");
        std::fs::write(&path, toml)?;
        let cfg = Config::load(Some(&path))?;
        let account = cfg
            .email
            .imap
            .first()
            .ok_or_else(|| anyhow::anyhow!("no account"))?;
        account.source(&cfg.email)
    }

    #[test]
    fn imap_accounts_are_checked_when_loaded() -> anyhow::Result<()> {
        use signaal_email::imap::{AfterCommit, Auth, Secret, Security};
        let ok = imap_account(
            "[email]\ninternal_addresses = [\"@gemeente.nl\"]\n[[email.imap]]\nname = \"klachten\"\n\
             host = \"imap.gemeente.nl\"\nuser = \"klachten@gemeente.nl\"\n\
             oauth_token_file = \"/run/secrets/token\"\nmove_to = \"Verwerkt\"\n",
        )?;
        assert_eq!((ok.port, ok.security), (993, Security::Tls));
        assert_eq!(ok.folders, vec!["INBOX".to_string()]);
        assert_eq!(ok.after, AfterCommit::Move("Verwerkt".into()));
        assert_eq!(
            ok.auth,
            Auth::XOAuth2 {
                user: "klachten@gemeente.nl".into(),
                token: Secret::File("/run/secrets/token".into())
            }
        );
        assert!(ok.rules.is_internal("Jan@Gemeente.nl"));
        assert!(ok.idle);

        for (bad, want) in [
            ("password = \"a\"\noauth_token = \"b\"\n", "exactly one of"),
            (
                "password = \"a\"\nmove_to = \"x\"\nkeyword = \"y\"\n",
                "not both",
            ),
            ("password = \"a\"\nfolders = []\n", "at least one folder"),
            ("password = \"a\"\nsecurity = \"none\"\n", "unencrypted"),
        ] {
            let err = imap_account(&format!(
                "[[email.imap]]\nname = \"n\"\nhost = \"imap.example.nl\"\nuser = \"u\"\n{bad}"
            ))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
            assert!(err.contains(want), "{bad}: {err}");
        }
        let plain = imap_account(
            "[[email.imap]]\nname = \"n\"\nhost = \"127.0.0.1\"\nuser = \"u\"\n\
             password = \"hunter2-secret\"\nsecurity = \"none\"\n",
        )?;
        assert_eq!((plain.port, plain.security), (143, Security::None));
        assert!(!format!("{plain:?}").contains("hunter2"), "{plain:?}");
        Ok(())
    }

    /// `deploy/signaal.toml` loads, and so does its commented IMAP example once uncommented.
    #[test]
    fn the_deploy_example_and_its_imap_example_are_valid() -> anyhow::Result<()> {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/signaal.toml");
        let cfg = Config::load(Some(&example))?;
        assert!(cfg.email.imap.is_empty());
        let text = std::fs::read_to_string(&example)?;
        let block: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with("# [[email.imap]]"))
            .take_while(|l| l.starts_with("# "))
            .map(|l| l.trim_start_matches("# "))
            .collect();
        assert!(block.len() > 5, "no IMAP example in {}", example.display());
        let account = imap_account(&format!("{text}\n{}\n", block.join("\n")))?;
        assert_eq!(account.name, "klachten-imap");
        assert!(account.rules.is_internal("iemand@gemeente.example"));
        Ok(())
    }

    #[test]
    fn webhook_secrets_come_from_the_file_or_the_value_never_both() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let secret_file = dir.path().join("app-secret");
        std::fs::write(&secret_file, "s3cr3t-from-file\n")?;
        let load = |extra: &str| -> anyhow::Result<signaal_social::webhook::WebhookConfig> {
            let path = dir.path().join("signaal.toml");
            std::fs::write(
                &path,
                format!("[social.webhook]\nlisten = \"127.0.0.1:9200\"\n{extra}"),
            )?;
            let cfg = Config::load(Some(&path))?;
            let hook = cfg
                .social
                .webhook
                .ok_or_else(|| anyhow::anyhow!("no webhook"))?;
            assert!(!format!("{hook:?}").contains("s3cr3t"));
            hook.receiver()
        };
        let ok = load(&format!(
            "app_secret_file = \"{}\"\nverify_token = \"vt\"\n",
            secret_file.display()
        ))?;
        assert_eq!(ok.app_secret, b"s3cr3t-from-file");
        assert_eq!(ok.source, "facebook-webhook");
        for (extra, want) in [
            (
                "verify_token = \"vt\"\n",
                "set app_secret or app_secret_file",
            ),
            (
                "app_secret = \"a\"\napp_secret_file = \"/x\"\nverify_token = \"vt\"\n",
                "not both",
            ),
            (
                "app_secret = \" \"\nverify_token = \"vt\"\n",
                "app_secret is empty",
            ),
            (
                "app_secret_file = \"/nonexistent\"\nverify_token = \"v\"\n",
                "cannot read",
            ),
        ] {
            let err = load(extra).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains(want), "{extra}: {err}");
        }
        Ok(())
    }

    /// A secret in `SIGNAAL_…` is read like the same value in the TOML file: `"k"` is `k` in
    /// both (so pseudonyms agree however the secret is given); a number is refused without being
    /// echoed; blank and still-quoted secrets are refused.
    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn secrets_read_the_same_from_the_file_and_the_environment() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("signaal.toml");
        let toml = |secret: &str| -> anyhow::Result<Config> {
            std::fs::write(&path, format!("[classifier]\nauthor_secret = {secret}\n"))?;
            Config::load(Some(&path))
        };
        let from_file = toml("\"k3y-van-de-gemeente\"")?.classifier.author_secret;
        assert_eq!(from_file, "k3y-van-de-gemeente");
        for (bad, want) in [
            ("20240517", "a secret must be text"),
            ("\"   \"", "is empty or only whitespace"),
            ("'\"k3y\"'", "still wrapped in quotes"),
        ] {
            let err = toml(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(
                err.contains(want) && err.contains("author_secret"),
                "{bad}: {err}"
            );
            assert!(
                !err.contains("20240517") && !err.contains("k3y"),
                "{bad}: {err}"
            );
        }

        // A prefix of this test's own: other tests load `SIGNAAL_…` meanwhile.
        figment::Jail::expect_with(|jail| {
            let load = || Config::load_with(None, "SIGNAALSECRETTEST_").map_err(|e| e.to_string());
            for (value, want) in [
                ("\"k3y-van-de-gemeente\"", "k3y-van-de-gemeente"),
                ("k3y-van-de-gemeente", "k3y-van-de-gemeente"),
                (" k3y-van-de-gemeente ", "k3y-van-de-gemeente"),
                ("\"with \\\"inner\\\" quotes\"", "with \"inner\" quotes"),
            ] {
                jail.set_env("SIGNAALSECRETTEST_CLASSIFIER__AUTHOR_SECRET", value);
                assert_eq!(load()?.classifier.author_secret, want, "{value}");
            }
            for (value, want) in [
                ("20240517", "a secret must be text"),
                ("1.5e3", "a secret must be text"),
                ("true", "a secret must be text"),
                ("[1, 2]", "a secret must be text"),
                ("\"'k3y'\"", "still wrapped in quotes"),
                ("'k3y-van-de-gemeente'", "still wrapped in quotes"),
                ("\"\\\"k3y\\\"\"", "still wrapped in quotes"),
                ("\"  \"", "is empty or only whitespace"),
            ] {
                jail.set_env("SIGNAALSECRETTEST_CLASSIFIER__AUTHOR_SECRET", value);
                let err = load().err().unwrap_or_default();
                assert!(
                    err.contains(want) && err.to_lowercase().contains("author_secret"),
                    "{value}: {err}"
                );
                for echoed in ["20240517", "1.5e3", "k3y"] {
                    assert!(!err.contains(echoed), "{value}: {err}");
                }
            }
            // Spaces only: read as nothing, which the classifier refuses before connecting.
            jail.set_env("SIGNAALSECRETTEST_CLASSIFIER__AUTHOR_SECRET", "   ");
            assert_eq!(load()?.classifier.author_secret, "");
            Ok(())
        });
        Ok(())
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
    fn settings_that_cannot_work_are_refused_when_loaded() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("signaal.toml");
        for (toml, want) in [
            (
                "[email]\npoll_seconds = 0\n",
                "`email.poll_seconds` must be at least 1",
            ),
            (
                "[phone]\npoll_seconds = 0\n",
                "`phone.poll_seconds` must be at least 1",
            ),
            (
                "[social]\npoll_seconds = 0\n",
                "`social.poll_seconds` must be at least 1",
            ),
            ("[bus]\nbrokers = \" , \"\n", "`bus.brokers` is empty"),
        ] {
            std::fs::write(&path, toml)?;
            let err = Config::load(Some(&path))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(want), "{toml}: {err}");
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("SIGNAALBROKERTEST_BUS__BROKERS", "");
            let err = Config::load_with(None, "SIGNAALBROKERTEST_")
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("`bus.brokers` is empty"), "{err}");
            Ok(())
        });
        Ok(())
    }

    #[test]
    fn unknown_keys_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[bus]\nbrokerz = \"x\"\n")?;
        let err = Config::load(Some(&path))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("brokerz"), "{err}");
        Ok(())
    }
}
