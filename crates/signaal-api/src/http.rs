//! The HTTP API (`signaal serve`): the reports as JSON, read-only except improvement actions.
//! `openapi.yaml` in this crate describes every route; `scripts/api-conformance` checks the
//! server against it (schemathesis, in CI).
//!
//! Access: every `/api/v1` request needs `Authorization: Bearer <token>` when a token is
//! configured; without one the server refuses to listen anywhere but on loopback.
//! Bad input (an invalid date, an unknown theme, a reversed range, a page too large, a parameter
//! the route does not take) is a 400 with `{"error": "…"}`; never a 500 for something the
//! caller sent. A method a route does not take is a 405, an unknown route a 404, both in JSON.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query as QueryParams, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use signaal_analysis::AnalysisConfig;
use signaal_store::analysis::{ActionUpdate, Dimension, NewAction};
use signaal_store::Store;

use crate::reports::{self, Query, ReportError, Vocabulary};

/// `[api]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Where `signaal serve` listens (default 127.0.0.1:8080).
    pub listen: SocketAddr,
    /// The bearer token every request must carry (or `token_file`, re-read at every request).
    /// Without either the API listens on loopback only.
    pub token: String,
    pub token_file: Option<PathBuf>,
    /// The largest page `/api/v1/signals` gives (default 500).
    pub max_page: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: String::new(),
            token_file: None,
            max_page: 500,
        }
    }
}

impl ApiConfig {
    /// Names the key that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_page == 0 || self.max_page > 10_000 {
            return Err(format!(
                "`api.max_page` = {} is out of range (expected 1–10000)",
                self.max_page
            ));
        }
        if !self.token.is_empty() && self.token_file.is_some() {
            return Err("give `api.token` or `api.token_file`, not both".into());
        }
        if self.token.is_empty() && self.token_file.is_none() && !self.listen.ip().is_loopback() {
            return Err(format!(
                "`api.listen` = {} is not a loopback address and no `api.token` or \
                 `api.token_file` is set: without a token the API listens on loopback only",
                self.listen
            ));
        }
        Ok(())
    }

    /// The token requests must carry, if any (the file is read now).
    pub fn current_token(&self) -> Result<Option<String>, String> {
        if let Some(path) = &self.token_file {
            let t = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read `api.token_file` {}: {e}", path.display()))?;
            let t = t.trim().to_string();
            if t.is_empty() {
                return Err(format!("`api.token_file` {} is empty", path.display()));
            }
            return Ok(Some(t));
        }
        Ok((!self.token.is_empty()).then(|| self.token.clone()))
    }
}

/// What the handlers share.
pub struct AppState {
    pub store: Store,
    pub analysis: AnalysisConfig,
    pub api: ApiConfig,
    pub vocabulary: Vocabulary,
    /// `/api/v1/themes` and `/api/v1/subjects` as served (from the taxonomy).
    pub themes: serde_json::Value,
    pub subjects: serde_json::Value,
    /// The alerter's detector settings (`[alerter.detect]`): the timelines' expected band.
    pub detect: signaal_detect::Settings,
}

/// An error as the API answers it: a status and `{"error": "…"}`.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            ReportError::Store(e) => {
                tracing::warn!(error = %e, "API request failed in the register");
                ApiError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the register failed; see the server's log".into(),
                )
            }
        }
    }
}

impl From<signaal_store::StoreError> for ApiError {
    fn from(e: signaal_store::StoreError) -> ApiError {
        match e {
            signaal_store::StoreError::Invalid(m) => ApiError(StatusCode::BAD_REQUEST, m),
            e => ReportError::Store(e).into(),
        }
    }
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, m.into())
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The query parameters of the reports and the signal listing.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    theme: Option<String>,
    subject: Option<String>,
    channel: Option<String>,
    cause: Option<String>,
    kind: Option<String>,
    by: Option<String>,
    normalise: Option<bool>,
    limit: Option<usize>,
    after: Option<String>,
}

/// A day exactly as `YYYY-MM-DD` (chrono alone would take `2026-1-5` and `+2026-01-05`).
fn date(name: &str, v: &str) -> Result<NaiveDate, ApiError> {
    let b = v.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let d = shaped
        .then(|| NaiveDate::parse_from_str(v, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| bad(format!("`{name}` = {v:?} is not a date (YYYY-MM-DD)")))?;
    reports::check_year(name, d).map_err(|e| bad(e.to_string()))?;
    Ok(d)
}

impl Params {
    fn query(&self, vocabulary: &Vocabulary) -> Result<Query, ApiError> {
        let to = match &self.to {
            Some(v) => date("to", v)?,
            None => Utc::now().date_naive(),
        };
        let from = match &self.from {
            Some(v) => date("from", v)?,
            None => to
                .checked_sub_months(chrono::Months::new(12))
                .and_then(|d| d.succ_opt())
                .ok_or_else(|| bad("`to` is too early"))?,
        };
        let q = Query {
            from,
            to,
            theme: self.theme.clone(),
            subject: self.subject.clone(),
            channel: self.channel.clone(),
            cause: self.cause.clone(),
            kind: self.kind.clone(),
        };
        q.validate(vocabulary)?;
        Ok(q)
    }

    /// Refuses a parameter `route` does not take (each route's are in `openapi.yaml`), rather
    /// than ignoring it.
    fn only(&self, route: &str, takes: &[&str]) -> Result<(), ApiError> {
        let given = [
            ("from", self.from.is_some()),
            ("to", self.to.is_some()),
            ("theme", self.theme.is_some()),
            ("subject", self.subject.is_some()),
            ("channel", self.channel.is_some()),
            ("cause", self.cause.is_some()),
            ("kind", self.kind.is_some()),
            ("by", self.by.is_some()),
            ("normalise", self.normalise.is_some()),
            ("limit", self.limit.is_some()),
            ("after", self.after.is_some()),
        ];
        match given
            .iter()
            .find(|(name, set)| *set && !takes.contains(name))
        {
            Some((name, _)) => Err(bad(format!(
                "bad query parameters: /api/v1/{route} takes no `{name}`"
            ))),
            None => Ok(()),
        }
    }

    fn dimension(&self) -> Result<Dimension, ApiError> {
        match self.by.as_deref() {
            None | Some("theme") => Ok(Dimension::Theme),
            Some("subject") => Ok(Dimension::Subject),
            Some("theme_subject") => Ok(Dimension::ThemeSubject),
            Some(other) => Err(bad(format!(
                "`by` = {other:?} is not one of theme, subject, theme_subject"
            ))),
        }
    }
}

/// The filters every report takes.
const FILTERS: [&str; 7] = ["from", "to", "theme", "subject", "channel", "cause", "kind"];

/// The query parameters, of which `route` takes `takes`.
fn params(
    p: Result<QueryParams<Params>, QueryRejection>,
    route: &str,
    takes: &[&str],
) -> Result<Params, ApiError> {
    let p = p
        .map(|QueryParams(p)| p)
        .map_err(|e| bad(format!("bad query parameters: {}", e.body_text())))?;
    p.only(route, takes)?;
    Ok(p)
}

async fn pareto(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<reports::ParetoReport> {
    let p = params(p, "pareto", &[&FILTERS[..], &["by"]].concat())?;
    let q = p.query(&s.vocabulary)?;
    Ok(Json(
        reports::pareto_report(&s.store, &q, p.dimension()?).await?,
    ))
}

async fn impact(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<reports::ImpactReport> {
    let p = params(p, "impact", &[&FILTERS[..], &["by"]].concat())?;
    let q = p.query(&s.vocabulary)?;
    Ok(Json(
        reports::impact_report(&s.store, &q, p.dimension()?).await?,
    ))
}

async fn recurrence(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<reports::RecurrenceReport> {
    let p = params(p, "recurrence", &FILTERS)?;
    let q = p.query(&s.vocabulary)?;
    Ok(Json(
        reports::recurrence_report(&s.store, &s.analysis.recurrence, &q).await?,
    ))
}

async fn summary(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<reports::Summary> {
    let p = params(p, "summary", &FILTERS)?;
    let q = p.query(&s.vocabulary)?;
    Ok(Json(
        reports::summary(&s.store, &s.analysis, &q, Utc::now()).await?,
    ))
}

/// A page of signals and the cursor of the next one.
#[derive(Debug, Serialize)]
pub struct SignalsPage {
    pub signals: Vec<signaal_store::analysis::ListedSignal>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The `after` cursor of a page ending at the signal `id` of time `t`.
pub fn cursor(t: DateTime<Utc>, id: &str) -> String {
    format!("{}_{id}", t.timestamp_micros())
}

/// Reads an `after` cursor; the error is the message for the user.
pub fn parse_cursor(c: &str) -> Result<(DateTime<Utc>, String), String> {
    let invalid = || format!("`after` = {c:?} is not a cursor from a previous page");
    let (t, id) = c.split_once('_').ok_or_else(invalid)?;
    let micros: i64 = t.parse().map_err(|_| invalid())?;
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(invalid());
    }
    let t = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
    Ok((t, id.to_string()))
}

async fn signals(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<SignalsPage> {
    let p = params(p, "signals", &[&FILTERS[..], &["limit", "after"]].concat())?;
    let q = p.query(&s.vocabulary)?;
    let limit = p.limit.unwrap_or(50);
    if limit == 0 || limit > s.api.max_page {
        return Err(bad(format!(
            "`limit` = {limit} is out of range (1–{})",
            s.api.max_page
        )));
    }
    let after = p
        .after
        .as_deref()
        .map(parse_cursor)
        .transpose()
        .map_err(bad)?;
    let page = s.store.signals_page(&q.filter(), after, limit).await?;
    let next = (page.len() == limit)
        .then(|| page.last().map(|l| cursor(l.occurred_at, &l.id)))
        .flatten();
    Ok(Json(SignalsPage {
        signals: page,
        next,
    }))
}

async fn timeline(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<crate::timeline::Timeline> {
    let p = params(p, "timeline", &[&FILTERS[..], &["by", "limit"]].concat())?;
    let q = p.query(&s.vocabulary)?;
    Ok(Json(
        crate::timeline::timeline(
            &s.store,
            &s.detect,
            &q,
            p.dimension()?,
            p.limit.unwrap_or(5),
        )
        .await?,
    ))
}

async fn actions(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<Vec<reports::ActionReport>> {
    let p = params(p, "actions", &["normalise"])?;
    Ok(Json(
        reports::actions_report(
            &s.store,
            &s.analysis.action,
            Utc::now(),
            p.normalise.unwrap_or(false),
        )
        .await?,
    ))
}

/// The body of `POST /api/v1/actions`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    theme: Option<String>,
    subject: Option<String>,
    description: String,
    owner: String,
    start_date: String,
    #[serde(default = "running")]
    status: String,
}

fn running() -> String {
    "running".into()
}

/// The body of `PATCH /api/v1/actions/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionPatch {
    description: Option<String>,
    owner: Option<String>,
    start_date: Option<String>,
    status: Option<String>,
}

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(b)| b)
        .map_err(|e| bad(format!("bad request body: {}", e.body_text())))
}

fn text(name: &str, v: &str) -> Result<(), ApiError> {
    if v.trim().is_empty() || v.len() > 4096 {
        return Err(bad(format!("`{name}` must have 1–4096 bytes")));
    }
    // PostgreSQL cannot store NUL in text: refused here rather than failing in the register.
    if v.contains('\0') {
        return Err(bad(format!("`{name}` must not contain NUL characters")));
    }
    Ok(())
}

async fn add_action(
    State(s): State<Arc<AppState>>,
    b: Result<Json<ActionIn>, JsonRejection>,
) -> Result<(StatusCode, Json<signaal_store::analysis::Action>), ApiError> {
    let a = body(b)?;
    let start = date("start_date", &a.start_date)?;
    let mut q = Query::new(start, start);
    q.theme = a.theme.clone();
    q.subject = a.subject.clone();
    q.validate(&s.vocabulary)?;
    text("description", &a.description)?;
    text("owner", &a.owner)?;
    let stored = s
        .store
        .add_action(
            &NewAction {
                theme: a.theme,
                subject: a.subject,
                description: a.description,
                owner: a.owner,
                start_date: start,
                status: a.status,
            },
            Utc::now(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

async fn patch_action(
    State(s): State<Arc<AppState>>,
    id: Result<Path<i64>, axum::extract::rejection::PathRejection>,
    b: Result<Json<ActionPatch>, JsonRejection>,
) -> ApiResult<signaal_store::analysis::Action> {
    let Path(id) = id.map_err(|e| bad(format!("bad action id: {}", e.body_text())))?;
    let p = body(b)?;
    for (name, v) in [("description", &p.description), ("owner", &p.owner)] {
        if let Some(v) = v {
            text(name, v)?;
        }
    }
    let start_date = p
        .start_date
        .as_deref()
        .map(|v| date("start_date", v))
        .transpose()?;
    let update = ActionUpdate {
        description: p.description,
        owner: p.owner,
        start_date,
        status: p.status,
    };
    match s.store.update_action(id, &update, Utc::now()).await? {
        Some(a) => Ok(Json(a)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("there is no action {id}"),
        )),
    }
}

/// The body of `PUT /api/v1/signals/{id}/label`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabelIn {
    themes: Vec<String>,
    kind: String,
    cause: Option<String>,
    analyst: String,
    note: Option<String>,
}

async fn put_label(
    State(s): State<Arc<AppState>>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
    b: Result<Json<LabelIn>, JsonRejection>,
) -> ApiResult<signaal_store::labels::Label> {
    let Path(id) = id.map_err(|e| bad(format!("bad signal id: {}", e.body_text())))?;
    let l = body(b)?;
    text("analyst", &l.analyst)?;
    if let Some(n) = &l.note {
        text("note", n)?;
    }
    let label = crate::labels::checked_label(
        &s.vocabulary,
        &id,
        &l.themes,
        &l.kind,
        l.cause.as_deref(),
        l.analyst.trim(),
        l.note,
    )
    .map_err(bad)?;
    match s.store.save_label(&label).await? {
        Some(saved) => Ok(Json(saved)),
        None => Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("there is no signal {id:?}"),
        )),
    }
}

async fn themes(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<serde_json::Value> {
    params(p, "themes", &[])?;
    Ok(Json(s.themes.clone()))
}

async fn subjects(
    State(s): State<Arc<AppState>>,
    p: Result<QueryParams<Params>, QueryRejection>,
) -> ApiResult<serde_json::Value> {
    params(p, "subjects", &[])?;
    Ok(Json(s.subjects.clone()))
}

async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/yaml")],
        include_str!("../openapi.yaml"),
    )
}

/// Whether a request may pass: without a configured token always; with one, when it carries
/// `Authorization: Bearer <token>`, or `Basic` with the token as the password (any user name),
/// which is what a browser asks for. `Err` when the token file cannot be read.
pub fn authorized(api: &ApiConfig, headers: &axum::http::HeaderMap) -> Result<bool, String> {
    let Some(token) = api.current_token()? else {
        return Ok(true);
    };
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(false);
    };
    // The scheme's name is case-insensitive (RFC 9110).
    let (scheme, credentials) = given.split_once(' ').unwrap_or((given, ""));
    let credentials = credentials.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(constant_time_eq(credentials.as_bytes(), token.as_bytes()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let basic = credentials;
        use base64::Engine as _;
        let Ok(pair) = base64::engine::general_purpose::STANDARD.decode(basic.trim()) else {
            return Ok(false);
        };
        let password = match pair.iter().position(|b| *b == b':') {
            Some(i) => &pair[i + 1..],
            None => return Ok(false),
        };
        return Ok(constant_time_eq(password, token.as_bytes()));
    }
    Ok(false)
}

async fn auth(State(s): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    match authorized(&s.api, req.headers()) {
        Ok(true) => next.run(req).await,
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            Json(serde_json::json!({ "error": "a valid bearer token is required" })),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "API token unavailable");
            ApiError(StatusCode::SERVICE_UNAVAILABLE, e).into_response()
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn not_found() -> ApiError {
    ApiError(
        StatusCode::NOT_FOUND,
        "no such route (see /api/v1/openapi.yaml)".into(),
    )
}

/// A route that exists asked with a method it does not take (axum adds `Allow`).
async fn method_not_allowed() -> ApiError {
    ApiError(
        StatusCode::METHOD_NOT_ALLOWED,
        "the route does not take this method (see /api/v1/openapi.yaml)".into(),
    )
}

/// Every route of the API.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/pareto", get(pareto))
        .route("/recurrence", get(recurrence))
        .route("/impact", get(impact))
        .route("/summary", get(summary))
        .route("/timeline", get(timeline))
        .route("/signals", get(signals))
        .route("/signals/{id}/label", axum::routing::put(put_label))
        .route("/actions", get(actions).post(add_action))
        .route("/actions/{id}", axum::routing::patch(patch_action))
        .route("/themes", get(themes))
        .route("/subjects", get(subjects))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth))
        .route("/openapi.yaml", get(openapi))
        .method_not_allowed_fallback(method_not_allowed);
    Router::new()
        .nest("/api/v1", api)
        .fallback(not_found)
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "serving the API on /api/v1");
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}
