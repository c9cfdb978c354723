//! The IMAP source: new messages of the configured folders, exactly once into the register.
//!
//! Progress is a cursor per folder, `UIDVALIDITY:last UID`, in the store's `source_cursors`, never
//! the `\Seen` flag: messages are fetched with `BODY.PEEK[]`, so a person reading the mailbox
//! changes nothing and signaal changes nothing for them. The cursor moves only after Kafka has
//! acknowledged the batch (`signaal_source::commit`); only then, if configured, are the messages
//! moved to a processed folder or given a keyword. When UIDVALIDITY changes the folder is read
//! again from the start; signal ids come from Message-ID (or a content hash), so the register
//! stores nothing twice.

use std::collections::HashMap;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use signaal_bus::Publisher;
use signaal_source::{commit, record_poll_failure, record_poll_success, SourceError, Stats};
use signaal_store::Store;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, pki_types::ServerName};
use tokio_util::sync::CancellationToken;

use crate::folder::Found;
use crate::parse::Rules;
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

/// Passwords and tokens are read at every login.
pub use signaal_source::{Secret, SecretError};

/// How signaal logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    Password {
        user: String,
        password: Secret,
    },
    /// SASL XOAUTH2 with an OAuth 2.0 bearer token (Microsoft 365, Gmail).
    XOAuth2 {
        user: String,
        token: Secret,
    },
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
    /// Internal senders and the size limit.
    pub rules: Rules,
    /// Wait with IMAP IDLE on the first folder for new mail (when the server supports it)
    /// instead of only polling.
    pub idle: bool,
    /// Time between polls; with IDLE, the longest wait before every folder is polled anyway.
    pub poll_interval: Duration,
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
    Secret(#[from] SecretError),
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
                .login(user, password.read()?)
                .await
                .map_err(|(e, _)| ImapError::Login {
                    user: user.clone(),
                    reason: e.to_string(),
                })
        }
        Auth::XOAuth2 { user, token } => {
            let token = token.read()?;
            let auth = XOAuth2 {
                user,
                token: &token,
            };
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

/// Reads everything new in `folder`, committing in batches, until done or `shutdown`; returns
/// what was committed.
pub async fn poll_folder(
    session: &mut Session,
    cfg: &ImapConfig,
    folder: &str,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
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
    while !shutdown.is_cancelled() {
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
        let set = uid_set(uids.iter().copied());
        // Sizes first: an oversized message is never downloaded whole, only its header goes to
        // the dead-letter topic with the reason.
        let metadata = fetch_parts(
            session,
            &set,
            "(UID RFC822.SIZE INTERNALDATE)",
            folder,
            |f| {
                let size = f.size.map(|n| n as usize).unwrap_or(0);
                (size, f.internal_date().map(|d| d.with_timezone(&Utc)))
            },
        )
        .await?;
        let received: HashMap<u32, DateTime<Utc>> = metadata
            .iter()
            .filter_map(|(uid, (_, date))| Some((*uid, (*date)?)))
            .collect();
        let mut sizes: Vec<(u32, usize)> = metadata
            .into_iter()
            .map(|(uid, (size, _))| (uid, size))
            .collect();
        sizes.sort_unstable();
        let keep = within_budget(&sizes, &cfg.rules, BATCH_BYTES);
        // Cut short by the byte budget: the cursor goes only as far as what is read now.
        let last_kept = keep.checked_sub(1).and_then(|i| sizes.get(i));
        let high = match (sizes.get(keep), last_kept) {
            (Some(_), Some((uid, _))) => *uid,
            _ => uids.iter().copied().max().unwrap_or(last),
        };
        sizes.truncate(keep);
        let (big, small): (Vec<_>, Vec<_>) = sizes
            .into_iter()
            .partition(|(_, size)| cfg.rules.too_large(*size).is_some());
        let mut found = Vec::with_capacity(uids.len());
        if !small.is_empty() {
            let set = uid_set(small.iter().map(|(uid, _)| *uid));
            for (uid, bytes) in fetch_parts(session, &set, "(UID BODY.PEEK[])", folder, |f| {
                f.body().unwrap_or_default().to_vec()
            })
            .await?
            {
                let message = Found::new(message_key(folder, validity, uid), bytes);
                found.push((uid, message.received(received.get(&uid).copied())));
            }
        }
        if !big.is_empty() {
            let set = uid_set(big.iter().map(|(uid, _)| *uid));
            let headers = fetch_parts(session, &set, "(UID BODY.PEEK[HEADER])", folder, |f| {
                f.header().unwrap_or_default().to_vec()
            })
            .await?;
            for (uid, bytes) in headers {
                let size = big
                    .iter()
                    .find(|(u, _)| *u == uid)
                    .map_or(usize::MAX, |(_, s)| *s);
                let key = message_key(folder, validity, uid);
                let received = received.get(&uid).copied();
                found.push((
                    uid,
                    Found {
                        key,
                        bytes,
                        size,
                        received,
                    },
                ));
            }
        }
        found.sort_by_key(|(uid, _)| *uid);
        let found = found.into_iter().map(|(_, f)| f).collect();
        let mut batch = to_batch(&cfg.name, found, &cfg.rules);
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
    Ok(total)
}

/// Most bytes of message bodies one batch downloads (one message always goes, however large).
const BATCH_BYTES: usize = 64 * 1024 * 1024;

/// How many of `sizes` (uid order) one batch takes: stop before the bodies to download pass
/// `budget`. Oversized messages cost nothing: only their header is fetched.
fn within_budget(sizes: &[(u32, usize)], rules: &Rules, budget: usize) -> usize {
    let mut total = 0usize;
    for (i, (_, size)) in sizes.iter().enumerate() {
        let download = if rules.too_large(*size).is_some() {
            0
        } else {
            *size
        };
        if i > 0 && total.saturating_add(download) > budget {
            return i;
        }
        total = total.saturating_add(download);
    }
    sizes.len()
}

fn message_key(folder: &str, validity: u32, uid: u32) -> String {
    format!("imap:{folder}/{validity}/{uid}")
}

fn uid_set(uids: impl Iterator<Item = u32>) -> String {
    uids.map(|u| u.to_string()).collect::<Vec<_>>().join(",")
}

/// `UID FETCH set query`, one `(uid, part(fetch))` per message that is still there.
async fn fetch_parts<T>(
    session: &mut Session,
    set: &str,
    query: &str,
    folder: &str,
    part: impl Fn(&async_imap::types::Fetch) -> T,
) -> Result<Vec<(u32, T)>, ImapError> {
    let what = || format!("fetching {query} from `{folder}`");
    let mut stream = session
        .uid_fetch(set, query)
        .await
        .map_err(protocol(what()))?;
    let mut out = Vec::new();
    while let Some(fetch) = stream.try_next().await.map_err(protocol(what()))? {
        if let Some(uid) = fetch.uid {
            out.push((uid, part(&fetch)));
        }
    }
    Ok(out)
}

/// One pass over every configured folder on a fresh connection.
pub async fn poll_once(
    cfg: &ImapConfig,
    publisher: &Publisher,
    store: &Store,
) -> Result<Stats, ImapError> {
    let mut session = connect(cfg).await?;
    let mut total = Stats::default();
    let never = CancellationToken::new();
    for folder in &cfg.folders {
        total += poll_folder(&mut session, cfg, folder, publisher, store, &never).await?;
    }
    // A failed LOGOUT loses nothing: everything is committed already.
    if let Err(e) = session.logout().await {
        tracing::debug!(source = %cfg.name, error = %e, "IMAP logout failed");
    }
    Ok(total)
}

/// Runs until `shutdown`: polls every folder, then waits for new mail, with IMAP IDLE when
/// configured and the server supports it, otherwise for `poll_interval`. A lost
/// connection or failed poll is logged, counted in `signaal_source_poll_failures_total` and
/// retried after `poll_interval` on a new connection; the cursor moves only after Kafka
/// acknowledged, so an outage delays mail but loses none.
///
/// IDLE watches the selected folder only (RFC 2177), so with IDLE and several folders each folder
/// gets a connection of its own: new mail in any of them is read at once. (Servers limit
/// connections per user — Dovecot to 10 per address by default, Gmail to 15.)
pub async fn run(cfg: ImapConfig, publisher: Publisher, store: Store, shutdown: CancellationToken) {
    tracing::info!(source = %cfg.name, host = %cfg.host, folders = ?cfg.folders, idle = cfg.idle,
        "IMAP source started");
    if cfg.idle && cfg.folders.len() > 1 {
        let connections = cfg.folders.iter().map(|folder| {
            let one = ImapConfig {
                folders: vec![folder.clone()],
                ..cfg.clone()
            };
            let (publisher, store, shutdown) = (&publisher, &store, &shutdown);
            async move { reconnecting(&one, publisher, store, shutdown).await }
        });
        futures::future::join_all(connections).await;
    } else {
        reconnecting(&cfg, &publisher, &store, &shutdown).await;
    }
    tracing::info!(source = %cfg.name, "source stopped");
}

/// [`session_loop`] on a new connection after every failure, until `shutdown`.
async fn reconnecting(
    cfg: &ImapConfig,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if let Err(error) = session_loop(cfg, publisher, store, shutdown).await {
            record_poll_failure(&cfg.name);
            tracing::warn!(source = %cfg.name, folders = ?cfg.folders, %error,
                "IMAP poll failed; reconnecting after the poll interval");
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(cfg.poll_interval) => {}
            }
        }
    }
}

/// One connection's life: poll, wait, poll, … until shutdown or an error.
async fn session_loop(
    cfg: &ImapConfig,
    publisher: &Publisher,
    store: &Store,
    shutdown: &CancellationToken,
) -> Result<(), ImapError> {
    let mut session = connect(cfg).await?;
    let idle = cfg.idle
        && session
            .capabilities()
            .await
            .map_err(protocol("CAPABILITY"))?
            .has_str("IDLE");
    while !shutdown.is_cancelled() {
        for folder in &cfg.folders {
            poll_folder(&mut session, cfg, folder, publisher, store, shutdown).await?;
        }
        if shutdown.is_cancelled() {
            break;
        }
        record_poll_success(&cfg.name);
        match (idle, cfg.folders.first()) {
            (true, Some(folder)) => session = wait_idle(session, cfg, folder, shutdown).await?,
            _ => {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::sleep(cfg.poll_interval) => {}
                }
            }
        }
    }
    // Everything is committed; a failed LOGOUT loses nothing.
    if let Err(e) = session.logout().await {
        tracing::debug!(source = %cfg.name, error = %e, "IMAP logout failed");
    }
    Ok(())
}

/// Waits in IDLE on `folder` until the server reports a change, `poll_interval` passes (at most
/// 25 minutes: servers drop idle clients after 30) or shutdown.
async fn wait_idle(
    mut session: Session,
    cfg: &ImapConfig,
    folder: &str,
    shutdown: &CancellationToken,
) -> Result<Session, ImapError> {
    session
        .examine(folder)
        .await
        .map_err(protocol(format!("opening folder `{folder}`")))?;
    // Old EXISTS/RECENT notices say nothing the next search will not find.
    while session.unsolicited_responses.try_recv().is_ok() {}
    let mut handle = session.idle();
    handle.init().await.map_err(protocol("IDLE"))?;
    {
        let limit = cfg.poll_interval.min(Duration::from_secs(25 * 60));
        let (wait, stop) = handle.wait_with_timeout(limit);
        tokio::pin!(wait);
        let mut stop = Some(stop);
        let woke = tokio::select! {
            r = &mut wait => r,
            _ = shutdown.cancelled() => {
                // Dropping the stop source ends the wait at once.
                stop.take();
                wait.await
            }
        };
        drop(stop);
        let woke = woke.map_err(protocol("IDLE"))?;
        tracing::debug!(source = %cfg.name, folder, ?woke, "IDLE ended");
    }
    handle.done().await.map_err(protocol("ending IDLE"))
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
    fn a_batch_stops_at_its_byte_budget() {
        let rules = Rules {
            max_bytes: 100,
            ..Rules::default()
        };
        let sizes = [(1, 40), (2, 40), (3, 40), (4, 10)];
        assert_eq!(within_budget(&sizes, &rules, 100), 2);
        // The first message always goes; oversized ones cost only their header.
        assert_eq!(within_budget(&[(1, 90), (2, 90)], &rules, 50), 1);
        assert_eq!(within_budget(&[(1, 500), (2, 40), (3, 40)], &rules, 100), 3);
        assert_eq!(within_budget(&[], &rules, 100), 0);
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
        let from_file = Secret::File("/run/secrets/imap-token".into());
        assert_eq!(
            format!("{from_file:?}"),
            "(secret in /run/secrets/imap-token)"
        );
    }

    #[test]
    fn secret_files_are_read_at_login_and_trimmed() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("token");
        std::fs::write(&path, "first-token\n")?;
        let secret = Secret::File(path.clone());
        assert_eq!(secret.read()?, "first-token");
        std::fs::write(&path, "refreshed-token\n")?;
        assert_eq!(secret.read()?, "refreshed-token");
        let missing = Secret::File(dir.path().join("nope"));
        let err = missing
            .read()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("cannot read the secret file"), "{err}");
        Ok(())
    }
}
