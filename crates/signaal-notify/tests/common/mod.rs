//! Shared by the notifier tests: a local HTTP receiver that records what arrives and can be told
//! to fail, PostgreSQL databases of their own, and alert events.
#![allow(dead_code)] // each test crate uses a part

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use signaal_core::{AlertEvent, AlertState, Count, Severity};
use signaal_store::Store;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One request as it arrived, and the status it was answered with.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn json(&self) -> Result<serde_json::Value, BoxError> {
        Ok(serde_json::from_slice(&self.body)?)
    }
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    /// Answer this many requests with 500 before accepting.
    fail_first: AtomicUsize,
    /// Answer every request with this status when set (0: not set).
    status: AtomicUsize,
    /// Wait this long (ms) before answering.
    delay_ms: AtomicUsize,
    /// With a secret, the signature of every request is checked: a wrong one is answered 401.
    secret: Mutex<Option<Vec<u8>>>,
}

/// A local HTTP receiver on 127.0.0.1. Dropping it stops it (the port closes).
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> Result<Receiver, BoxError> {
        Receiver::start_on("127.0.0.1:0".parse()?).await
    }

    pub async fn start_on(addr: SocketAddr) -> Result<Receiver, BoxError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let state = shared.clone();
        let app = axum::Router::new().fallback(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = state.clone();
            async move { answer(&state, uri, headers, body).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, shared, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn fail_first(&self, n: usize) {
        self.shared.fail_first.store(n, Ordering::SeqCst);
    }

    pub fn always(&self, status: u16) {
        self.shared
            .status
            .store(usize::from(status), Ordering::SeqCst);
    }

    pub fn delay(&self, d: Duration) {
        self.shared.delay_ms.store(
            usize::try_from(d.as_millis()).unwrap_or(usize::MAX),
            Ordering::SeqCst,
        );
    }

    pub fn check_signatures(&self, secret: &[u8]) {
        if let Ok(mut s) = self.shared.secret.lock() {
            *s = Some(secret.to_vec());
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared
            .received
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default()
    }

    /// Requests answered 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }
}

/// The receiver's own check of `X-Signaal-Signature-256`, written from the documented format,
/// not with the crate's function.
pub fn signature_ok(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(sig)) = (get("x-signaal-timestamp"), get("x-signaal-signature-256")) else {
        return false;
    };
    let Some(hex_sig) = sig.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(want) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&want).is_ok()
}

async fn answer(state: &Shared, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(u64::try_from(delay).unwrap_or(0))).await;
    }
    let secret = state.secret.lock().ok().and_then(|s| s.clone());
    let fixed = state.status.load(Ordering::SeqCst);
    let status = if fixed != 0 {
        StatusCode::from_u16(u16::try_from(fixed).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    } else if state
        .fail_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if secret.is_some_and(|s| !signature_ok(&s, &headers, &body)) {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::NO_CONTENT
    };
    if let Ok(mut r) = state.received.lock() {
        r.push(Received {
            path: uri.path().to_string(),
            headers,
            body,
            status: status.as_u16(),
        });
    }
    status
}

/// A PostgreSQL database created for one test next to `SIGNAAL_TEST_DATABASE_URL`.
pub struct TempDb {
    admin: sqlx::PgPool,
    name: String,
    pub url: String,
}

impl TempDb {
    pub async fn create(tag: &str) -> Result<TempDb, BoxError> {
        let admin = std::env::var("SIGNAAL_TEST_DATABASE_URL").map_err(|_| {
            "SIGNAAL_TEST_DATABASE_URL is not set: run the suite through scripts/test, which starts PostgreSQL"
        })?;
        let name = format!(
            "signaal_notify_{tag}_{}_{}",
            std::process::id(),
            Utc::now().timestamp_millis()
        );
        let (base, _) = admin
            .rsplit_once('/')
            .ok_or("database url has no database name")?;
        let url = format!("{base}/{name}");
        let admin = sqlx::PgPool::connect(&admin).await?;
        sqlx::query(&format!("create database {name}"))
            .execute(&admin)
            .await?;
        Ok(TempDb { admin, name, url })
    }

    pub async fn drop(self) -> Result<(), BoxError> {
        sqlx::query(&format!(
            "drop database if exists {} with (force)",
            self.name
        ))
        .execute(&self.admin)
        .await?;
        Ok(())
    }
}

/// Runs `suite` on a fresh SQLite file, then on a fresh PostgreSQL database.
pub async fn on_both<F, Fut>(tag: &str, suite: F) -> Result<(), BoxError>
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let store = Store::connect(&url).await?;
    suite(store.clone()).await?;
    store.close().await;

    let db = TempDb::create(tag).await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let result = suite(store.clone()).await;
        store.close().await;
        result
    }
    .await;
    db.drop().await?;
    result
}

pub fn hour(h: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + h * 3600, 0)
        .single()
        .unwrap_or_default()
}

/// An alert event of `series` whose alert started at `hour(start)`, in `state` for the bucket
/// `hour(bucket)`.
pub fn alert_event(series: &str, start: i64, state: AlertState, bucket: i64) -> AlertEvent {
    let alert_id = AlertEvent::alert_id_for(series, hour(start));
    AlertEvent {
        id: AlertEvent::event_id_for(&alert_id, state, hour(bucket)),
        alert_id,
        series: series.into(),
        theme: series.split('/').next().unwrap_or(series).into(),
        channel: series.split_once('/').map(|(_, c)| c.to_string()),
        state,
        severity: Severity::Warning,
        alert_start: hour(start),
        bucket_start: hour(bucket),
        bucket_end: hour(bucket + 1),
        observed: 42,
        expected: 3.125,
        upper: Some(9.0),
        p_value: 2.5e-9,
        method: "farrington".into(),
        peak: 42,
        total: 42 + 10 * u64::try_from(bucket - start).unwrap_or(0),
        channels: [("twitter".to_string(), 30), ("email".to_string(), 12)].into(),
        top_subjects: vec![Count {
            value: "Inloggen <DigiD> & co".into(),
            count: 5,
        }],
        top_words: vec![Count {
            value: "storing".into(),
            count: 17,
        }],
        sample_signal_ids: vec!["0123456789abcdef0123456789abcdef".into()],
        emitted_at: hour(bucket + 1),
    }
}

/// One alert's life from hour `start`: firing, updated, repeated, resolved, an hour apart.
pub fn life(series: &str, start: i64) -> Vec<AlertEvent> {
    vec![
        alert_event(series, start, AlertState::Firing, start),
        alert_event(series, start, AlertState::Update, start + 1),
        alert_event(series, start, AlertState::Repeat, start + 2),
        alert_event(series, start, AlertState::Resolved, start + 3),
    ]
}

/// Polls `check` every 20 ms until it holds or `within` has passed.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Result<(), BoxError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, BoxError>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("not within {within:?}: {what}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
