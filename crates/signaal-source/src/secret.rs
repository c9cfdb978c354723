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
    #[error("`{0}` is empty or only whitespace")]
    Blank(String),
    #[error(
        "`{0}` is still wrapped in quotes after the configuration was read: remove one pair \
         (a TOML string and a `SIGNAAL_…` variable each take exactly one)"
    )]
    Quoted(String),
}

/// Checks a secret given inline in the configuration, where it is read: a blank value (a variable
/// set to spaces) is no secret, and a value still wrapped in a pair of quotes was quoted once too
/// often — `"k"` in an env file that the tool passes on verbatim — so the same setting would give
/// a different secret (and, for `author_secret`, different pseudonyms) depending on how it was
/// deployed. Errors name `key`, never the value.
pub fn check_value(key: &str, value: &str) -> Result<(), SecretError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(SecretError::Blank(key.to_string()));
    }
    let quoted = |q: char| v.len() >= 2 && v.starts_with(q) && v.ends_with(q);
    if quoted('"') || quoted('\'') {
        return Err(SecretError::Quoted(key.to_string()));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_and_still_quoted_secrets_are_refused_without_their_value() {
        for (value, want) in [
            ("k3y-0f-s0me-l3ngth", None),
            ("a", None),
            ("pass word", None),
            ("\"", None),
            ("it's", None),
            ("\"half", None),
            ("", Some("is empty or only whitespace")),
            ("   ", Some("is empty or only whitespace")),
            ("\t\n", Some("is empty or only whitespace")),
            ("\"s3cret\"", Some("still wrapped in quotes")),
            ("'s3cret'", Some("still wrapped in quotes")),
            (" \"s3cret\" ", Some("still wrapped in quotes")),
            ("\"\"", Some("still wrapped in quotes")),
        ] {
            let got = check_value("classifier.author_secret", value).map_err(|e| e.to_string());
            match want {
                None => assert!(got.is_ok(), "{value:?}: {got:?}"),
                Some(want) => {
                    let err = got.err().unwrap_or_default();
                    assert!(
                        err.contains(want) && err.contains("`classifier.author_secret`"),
                        "{value:?}: {err}"
                    );
                    if value.trim().len() > 2 {
                        assert!(!err.contains("s3cret"), "{err}");
                    }
                }
            }
        }
    }
}
