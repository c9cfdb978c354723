//! The IMAP source: new messages of the configured folders, exactly once into the register.
//!
//! Progress is a cursor per folder, `UIDVALIDITY:last UID`, in the store's `source_cursors`, never
//! the `\Seen` flag: messages are fetched with `BODY.PEEK[]`, so a person reading the mailbox
//! changes nothing and signaal changes nothing for them. The cursor moves only after Kafka has
//! acknowledged the batch (`signaal_source::commit`); only then, if configured, are the messages
//! moved to a processed folder or given a keyword. When UIDVALIDITY changes the folder is read
//! again from the start; signal ids come from Message-ID (or a content hash), so the register
//! stores nothing twice.

use std::fmt;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::TryStreamExt;
use signaal_bus::Publisher;
use signaal_source::{commit, SourceError, Stats};
use signaal_store::Store;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::folder::Found;
use crate::worker::to_batch;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS, port 993).
    Tls,
    /// Plain IMAP upgraded with STARTTLS before logging in (port 143).
    StartTls,
    /// No TLS at all: only for a server on loopback in tests.
    None,
}

/// How signaal logs in.
#[derive(Clone)]
pub enum Auth {
    Password {
        user: String,
        password: String,
    },
    /// SASL XOAUTH2 with an OAuth 2.0 bearer token (Microsoft 365, Gmail).
    XOAuth2 {
        user: String,
        token: String,
    },
}

impl fmt::Debug for Auth {
    // Secrets never reach logs or errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Password { user, .. } => write!(f, "Password {{ user: {user:?} }}"),
            Auth::XOAuth2 { user, .. } => write!(f, "XOAuth2 {{ user: {user:?} }}"),
        }
    }
}

/// What happens to a message after its batch is safely in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterCommit {
    Nothing,
    /// `UID MOVE` to this folder.
    Move(String),
    /// `UID STORE +FLAGS (keyword)`.
    Keyword(String),
}

#[derive(Debug, Clone)]
pub struct ImapConfig {
    /// Source name: appears on every signal and keys the cursors.
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Extra trusted root certificates (PEM), e.g. an internal CA; the web PKI roots are always
    /// trusted.
    pub ca_file: Option<PathBuf>,
    pub auth: Auth,
    pub folders: Vec<String>,
    pub after: AfterCommit,
    /// Messages per commit: bounds memory and what a crash makes us fetch again.
    pub batch: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("IMAP server refused the login for `{user}`: {reason}")]
    Login { user: String, reason: String },
    #[error("IMAP {what}: {source}")]
    Protocol {
        what: String,
        #[source]
        source: async_imap::error::Error,
    },
    #[error("folder `{0}` has no UIDVALIDITY, so progress cannot be tracked")]
    NoUidValidity(String),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Store(#[from] signaal_store::StoreError),
}

fn protocol(what: impl Into<String>) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    let what = what.into();
    move |source| ImapError::Protocol { what, source }
}

/// A TCP connection, with or without TLS: one type for the IMAP session either way.
#[derive(Debug)]
pub enum ImapStream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for ImapStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ImapStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            ImapStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ImapStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

pub type Session = async_imap::Session<ImapStream>;

fn tls_connector(cfg: &ImapConfig) -> Result<tokio_rustls::TlsConnector, ImapError> {
    let tls_err = |reason: String| ImapError::Tls {
        host: cfg.host.clone(),
        reason,
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = &cfg.ca_file {
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
            .map_err(|e| tls_err(format!("cannot read CA file {}: {e}", path.display())))?;
        for cert in certs {
            let cert = cert.map_err(|e| tls_err(format!("bad CA file {}: {e}", path.display())))?;
            roots
                .add(cert)
                .map_err(|e| tls_err(format!("bad CA certificate in {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

async fn upgrade(cfg: &ImapConfig, tcp: TcpStream) -> Result<ImapStream, ImapError> {
    let name = ServerName::try_from(cfg.host.clone()).map_err(|e| ImapError::Tls {
        host: cfg.host.clone(),
        reason: format!("not a valid server name: {e}"),
    })?;
    let tls = tls_connector(cfg)?
        .connect(name, tcp)
        .await
        .map_err(|e| ImapError::Tls {
            host: cfg.host.clone(),
            reason: e.to_string(),
        })?;
    Ok(ImapStream::Tls(Box::new(tls)))
}

struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
}

impl async_imap::Authenticator for &XOAuth2<'_> {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// Connects, secures and logs in.
pub async fn connect(cfg: &ImapConfig) -> Result<Session, ImapError> {
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let tcp = TcpStream::connect(&addr)
        .await
        .map_err(|source| ImapError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let greeting = |e: std::io::Error| ImapError::Connect {
        addr: addr.clone(),
        source: e,
    };
    let client = match cfg.security {
        Security::Tls => {
            let mut c = async_imap::Client::new(upgrade(cfg, tcp).await?);
            c.read_response().await.map_err(greeting)?;
            c
        }
        Security::None => {
            let mut c = async_imap::Client::new(ImapStream::Plain(tcp));
            c.read_response().await.map_err(greeting)?;
            c
        }
        Security::StartTls => {
            let mut c = async_imap::Client::new(tcp);
            c.read_response().await.map_err(greeting)?;
            c.run_command_and_check_ok("STARTTLS", None)
                .await
                .map_err(protocol("STARTTLS"))?;
            async_imap::Client::new(upgrade(cfg, c.into_inner()).await?)
        }
    };
    match &cfg.auth {
        Auth::Password { user, password } => {
            client
                .login(user, password)
                .await
                .map_err(|(e, _)| ImapError::Login {
                    user: user.clone(),
                    reason: e.to_string(),
                })
        }
        Auth::XOAuth2 { user, token } => {
            let auth = XOAuth2 { user, token };
            client
                .authenticate("XOAUTH2", &auth)
                .await
                .map_err(|(e, _)| ImapError::Login {
                    user: user.clone(),
                    reason: e.to_string(),
                })
        }
    }
}

/// A folder's cursor value: `UIDVALIDITY:last UID`.
pub fn parse_cursor(value: &str) -> Option<(u32, u32)> {
    let (validity, uid) = value.split_once(':')?;
    Some((validity.parse().ok()?, uid.parse().ok()?))
}

fn cursor_key(folder: &str) -> String {
    format!("imap:{folder}")
}

/// Reads everything new in `folder`, committing in batches; returns what was committed.
pub async fn poll_folder(
    session: &mut Session,
    cfg: &ImapConfig,
    folder: &str,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, ImapError> {
    // EXAMINE opens the folder read-only: nothing (not even \Recent) changes unless we act after
    // the commit, which needs SELECT.
    let mailbox = match cfg.after {
        AfterCommit::Nothing => session.examine(folder).await,
        _ => session.select(folder).await,
    }
    .map_err(protocol(format!("opening folder `{folder}`")))?;
    let validity = mailbox
        .uid_validity
        .ok_or_else(|| ImapError::NoUidValidity(folder.to_string()))?;
    let key = cursor_key(folder);
    let mut last = match store
        .cursors(&cfg.name)
        .await?
        .get(&key)
        .map(|v| parse_cursor(v))
    {
        Some(Some((v, uid))) if v == validity => uid,
        Some(Some((v, _))) => {
            tracing::warn!(source = %cfg.name, folder, old = v, new = validity,
                "UIDVALIDITY changed: reading the folder again (the register skips what it has)");
            0
        }
        Some(None) => {
            tracing::warn!(source = %cfg.name, folder, "unreadable cursor: reading the folder again");
            0
        }
        None => 0,
    };
    let mut total = Stats::default();
    loop {
        let mut uids: Vec<u32> = session
            .uid_search(format!("UID {}:*", u64::from(last) + 1))
            .await
            .map_err(protocol(format!("searching `{folder}`")))?
            .into_iter()
            // "n:*" always includes the highest UID, even when it is below n.
            .filter(|u| *u > last)
            .collect();
        if uids.is_empty() {
            return Ok(total);
        }
        uids.sort_unstable();
        uids.truncate(cfg.batch.max(1));
        let set = uids
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let fetched: Vec<(u32, Vec<u8>)> = session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await
            .map_err(protocol(format!("fetching from `{folder}`")))?
            .try_filter_map(|f| async move {
                Ok(f.uid
                    .map(|uid| (uid, f.body().unwrap_or_default().to_vec())))
            })
            .try_collect()
            .await
            .map_err(protocol(format!("fetching from `{folder}`")))?;
        let high = uids.iter().copied().max().unwrap_or(last);
        let found = fetched
            .into_iter()
            .map(|(uid, bytes)| Found {
                key: format!("imap:{folder}/{validity}/{uid}"),
                bytes,
            })
            .collect();
        let mut batch = to_batch(&cfg.name, found);
        // One cursor row per folder, not one per message.
        batch.checkpoints = vec![(key.clone(), format!("{validity}:{high}"))];
        total += commit(&cfg.name, batch, publisher, store).await?;
        // Safely in Kafka and checkpointed: now the mailbox may change.
        match &cfg.after {
            AfterCommit::Nothing => {}
            AfterCommit::Move(to) => session
                .uid_mv(&set, to)
                .await
                .map_err(protocol(format!("moving messages to `{to}`")))?,
            AfterCommit::Keyword(kw) => {
                session
                    .uid_store(&set, format!("+FLAGS ({kw})"))
                    .await
                    .map_err(protocol(format!("setting keyword `{kw}`")))?
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(protocol(format!("setting keyword `{kw}`")))?;
            }
        }
        last = high;
    }
}

/// One pass over every configured folder on a fresh connection.
pub async fn poll_once(
    cfg: &ImapConfig,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, ImapError> {
    let mut session = connect(cfg).await?;
    let mut total = Stats::default();
    for folder in &cfg.folders {
        total += poll_folder(&mut session, cfg, folder, publisher, store).await?;
    }
    // A failed LOGOUT loses nothing: everything is committed already.
    if let Err(e) = session.logout().await {
        tracing::debug!(source = %cfg.name, error = %e, "IMAP logout failed");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_parse_or_are_refused() {
        assert_eq!(parse_cursor("1795371000:42"), Some((1795371000, 42)));
        assert_eq!(parse_cursor("42"), None);
        assert_eq!(parse_cursor("x:1"), None);
        assert_eq!(parse_cursor("1:-1"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let auth = Auth::XOAuth2 {
            user: "klantcontact@gemeente.nl".into(),
            token: "eyJ0eXAiOiJKV1Qi".into(),
        };
        let shown = format!("{auth:?}");
        assert!(shown.contains("klantcontact@gemeente.nl"));
        assert!(!shown.contains("eyJ0"));
    }
}
