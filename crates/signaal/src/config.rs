//! Configuration: defaults, then a TOML file, then `SIGNAAL_`-prefixed environment variables
//! (`__` separates levels: `SIGNAAL_BUS__BROKERS`, `SIGNAAL_STORE__URL`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};
use signaal_alerter::AlertConfig;
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
    pub folders: Vec<EmailFolder>,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            poll_seconds: 30,
            folders: Vec::new(),
        }
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
    #[serde(default)]
    pub mapping: CsvMapping,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocialConfig {
    pub poll_seconds: u64,
    pub x: Vec<XSearch>,
    pub facebook: Vec<FacebookPage>,
}

impl Default for SocialConfig {
    fn default() -> Self {
        SocialConfig {
            poll_seconds: 60,
            x: Vec::new(),
            facebook: Vec::new(),
        }
    }
}

#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierConfig {
    /// An organisation's own taxonomy file (TOML); the embedded default when absent.
    pub taxonomy: Option<PathBuf>,
    /// Key for the authors' HMAC pseudonyms. Keep it secret and stable: changing it breaks
    /// recurrence counts per customer. Never logged.
    #[serde(skip_serializing)]
    pub author_secret: String,
}

impl std::fmt::Debug for ClassifierConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifierConfig")
            .field("taxonomy", &self.taxonomy)
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

impl Config {
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut f = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                anyhow::bail!("config file `{}` not found", path.display());
            }
            f = f.merge(Toml::file(path));
        }
        // Only `SIGNAAL_<SECTION>__…` configures; other SIGNAAL_ variables (SIGNAAL_LOG,
        // SIGNAAL_CONFIG, test settings) are not configuration keys.
        const SECTIONS: [&str; 7] = [
            "bus",
            "store",
            "email",
            "phone",
            "social",
            "classifier",
            "alerter",
        ];
        let env = Env::prefixed("SIGNAAL_").split("__").filter(|k| {
            let k = k.as_str().to_ascii_lowercase();
            // The key arrives with `__` already turned into `.`.
            let section = k.split(['.', '_']).next().unwrap_or_default();
            SECTIONS.contains(&section) && k.len() > section.len()
        });
        f = f.merge(env);
        f.extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
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
