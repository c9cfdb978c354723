//! Passwords, tokens and keys: given in the configuration, or in a file read every time the secret
//! is needed, so a token refresher (or a mounted Kubernetes secret) can replace it while signaal
//! runs. `Debug` shows where a secret comes from, never the secret.

use std::fmt;
use std::path::{Path, PathBuf};

#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    Value(String),
    File(PathBuf),
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("cannot read the secret file {}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the secret is empty")]
    Empty,
    #[error("set {0} or {0}_file")]
    Missing(String),
    #[error("set {0} or {0}_file, not both")]
    Both(String),
}

impl Secret {
    /// From a configuration's `KEY` / `KEY_file` pair: exactly one of them. `key` names the
    /// setting in errors; a blank value is a secret that [`Secret::read`] refuses as empty.
    pub fn from_config(
        key: &str,
        value: Option<&str>,
        file: Option<&Path>,
    ) -> Result<Secret, SecretError> {
        match (value, file) {
            (Some(v), None) => Ok(Secret::Value(v.to_string())),
            (None, Some(f)) => Ok(Secret::File(f.to_path_buf())),
            (None, None) => Err(SecretError::Missing(key.to_string())),
            (Some(_), Some(_)) => Err(SecretError::Both(key.to_string())),
        }
    }

    /// The secret, trimmed (files end with a newline); an empty one is an error.
    pub fn read(&self) -> Result<String, SecretError> {
        let s = match self {
            Secret::Value(v) => v.trim().to_string(),
            Secret::File(path) => std::fs::read_to_string(path)
                .map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?
                .trim()
                .to_string(),
        };
        if s.is_empty() {
            return Err(SecretError::Empty);
        }
        Ok(s)
    }
}

impl From<&str> for Secret {
    fn from(v: &str) -> Secret {
        Secret::Value(v.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Value(_) => f.write_str("(secret)"),
            Secret::File(path) => write!(f, "(secret in {})", path.display()),
        }
    }
}
