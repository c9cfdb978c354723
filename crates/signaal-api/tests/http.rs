//! `signaal serve`'s API over real HTTP on a SQLite register: the token is wanted, reports and
//! actions answer, and whatever a caller sends wrong is a 400 (or 404) with a reason in JSON,
//! never a 500.

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use signaal_analysis::AnalysisConfig;
use signaal_api::http::{serve, ApiConfig, AppState};
use signaal_api::Vocabulary;
use signaal_core::{
    Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, SubjectTag, ThemeTag,
};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOKEN: &str = "s3cret-token";

fn signal(i: i64, theme: &str, subject: &str) -> Result<ClassifiedEnvelope, BoxError> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .ok_or("time")?
        + Duration::hours(i);
    let mut s = Signal::new(
        Channel::Email,
        "test",
        format!("m{i}"),
        at,
        "de brief is onduidelijk",
    );
    s.author = Some(format!("a{}", i % 4));
    let c = Classification {
        themes: vec![ThemeTag {
            id: theme.into(),
            score: 0.5,
            evidence: vec![],
        }],
        subjects: vec![SubjectTag {
            id: subject.into(),
            evidence: vec![],
        }],
        cause: Cause::System,
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.4,
        escalation: vec![],
        impact: Some(3.0),
    };
    Ok(ClassifiedEnvelope::new(s, c, "test"))
}

#[tokio::test]
async fn the_api_wants_its_token_answers_and_refuses_bad_requests() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!(
        "sqlite:{}",
        dir.path().join("register.db").display()
    ))
    .await?;
    let mut batch = Vec::new();
    for i in 0..30 {
        batch.push(signal(i, "unclear_communication", "tax_bill")?);
    }
    for i in 30..35 {
        batch.push(signal(i, "payment", "invoice")?);
    }
    store.save_classified(&batch).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}/api/v1", listener.local_addr()?);
    let state = Arc::new(AppState {
        store: store.clone(),
        analysis: AnalysisConfig::default(),
        api: ApiConfig {
            token: TOKEN.into(),
            ..ApiConfig::default()
        },
        vocabulary: Vocabulary {
            themes: ["unclear_communication", "payment"]
                .map(String::from)
                .into(),
            subjects: ["tax_bill", "invoice"].map(String::from).into(),
        },
        themes: serde_json::json!([{"id": "unclear_communication"}, {"id": "payment"}]),
        subjects: serde_json::json!([{"id": "tax_bill"}, {"id": "invoice"}]),
        detect: signaal_detect::Settings::default(),
    });
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, state, shutdown.clone()));
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{base}{path}")).bearer_auth(TOKEN).send();

    // The token.
    let anonymous = http.get(format!("{base}/pareto")).send().await?;
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .get(format!("{base}/pareto"))
        .bearer_auth("guess")
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let spec = http.get(format!("{base}/openapi.yaml")).send().await?;
    assert_eq!(spec.status(), 200, "the description needs no token");
    assert!(spec.text().await?.starts_with("openapi: 3.1.0"));

    // Reports.
    let p = get("/pareto?from=2026-11-01&to=2026-11-30").await?;
    assert_eq!(p.status(), 200);
    let p: serde_json::Value = p.json().await?;
    assert_eq!(p["total"], 35);
    assert_eq!(p["rows"][0]["key"]["theme"], "unclear_communication");
    assert_eq!(p["rows"][0]["count"], 30);
    let r: serde_json::Value = get("/recurrence?to=2026-11-30").await?.json().await?;
    assert_eq!(r["theme_subject"][0]["level"], "pattern");
    assert_eq!(
        r["author"][0]["level"], "pattern",
        "four authors, each many times"
    );
    let i: serde_json::Value = get("/impact?from=2026-11-01&to=2026-11-30&by=subject")
        .await?
        .json()
        .await?;
    assert_eq!(i["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        get("/summary?from=2026-11-01&to=2026-11-30")
            .await?
            .status(),
        200
    );
    assert_eq!(get("/themes").await?.status(), 200);

    // Signals in keyset pages: 35 in pages of 10, each once.
    let mut seen = std::collections::BTreeSet::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/signals?from=2026-11-01&to=2026-11-30&limit=10&after={a}"),
            None => "/signals?from=2026-11-01&to=2026-11-30&limit=10".to_string(),
        };
        let page: serde_json::Value = get(&path).await?.json().await?;
        for s in page["signals"].as_array().ok_or("signals")? {
            assert!(seen.insert(s["id"].as_str().ok_or("id")?.to_string()));
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 35);

    // Actions.
    let created = http
        .post(format!("{base}/actions"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({
            "theme": "unclear_communication", "subject": "tax_bill",
            "description": "nieuwe aanslagbrief", "owner": "belastingen",
            "start_date": "2026-11-10"
        }))
        .send()
        .await?;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await?;
    let id = created["id"].as_i64().ok_or("id")?;
    let patched = http
        .patch(format!("{base}/actions/{id}"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"status": "done"}))
        .send()
        .await?;
    assert_eq!(patched.status(), 200);
    let listed: serde_json::Value = get("/actions").await?.json().await?;
    assert_eq!(listed[0]["status"], "done");
    assert_eq!(
        listed[0]["measurement"]["verdict"], "not_yet_enough_data",
        "{listed}"
    );

    // An analyst's correction: stored, the register counts the signal as corrected.
    let first = signal(0, "unclear_communication", "tax_bill")?.signal.id;
    let put = |id: String, body: serde_json::Value| {
        http.put(format!("{base}/signals/{id}/label"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let labelled = put(
        first.clone(),
        serde_json::json!({"themes": ["payment"], "kind": "question", "analyst": "ann"}),
    )
    .await?;
    assert_eq!(labelled.status(), 200);
    let labelled: serde_json::Value = labelled.json().await?;
    assert_eq!(
        labelled["cause"], "system",
        "the cause follows from the themes"
    );
    let pareto: serde_json::Value = get("/pareto?from=2026-11-01&to=2026-11-30")
        .await?
        .json()
        .await?;
    let count = |theme: &str| {
        pareto["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["key"]["theme"] == theme)
            .and_then(|r| r["count"].as_u64())
    };
    assert_eq!(
        (count("unclear_communication"), count("payment")),
        (Some(29), Some(6))
    );
    for (id, body, status, says) in [
        (
            "nope",
            serde_json::json!({"themes": [], "kind": "question", "analyst": "a"}),
            404,
            "no signal",
        ),
        (
            first.as_str(),
            serde_json::json!({"themes": ["billing"], "kind": "question", "analyst": "a"}),
            400,
            "unknown theme",
        ),
        (
            first.as_str(),
            serde_json::json!({"themes": ["payment"], "kind": "question", "cause": "human", "analyst": "a"}),
            400,
            "does not agree",
        ),
        (
            first.as_str(),
            serde_json::json!({"themes": [], "kind": "rant", "analyst": "a"}),
            400,
            "unknown kind",
        ),
        (
            first.as_str(),
            serde_json::json!({"themes": [], "kind": "question", "analyst": " "}),
            400,
            "analyst",
        ),
        (
            first.as_str(),
            serde_json::json!({"themes": [], "kind": "question"}),
            400,
            "analyst",
        ),
    ] {
        let r = put(id.to_string(), body.clone()).await?;
        assert_eq!(r.status(), status, "{body}");
        let e: serde_json::Value = r.json().await?;
        assert!(
            e["error"].as_str().unwrap_or_default().contains(says),
            "{body}: {e}"
        );
    }

    // Everything a caller can send wrong: 400 (404 for what is not there) with a reason.
    for (path, reason) in [
        ("/pareto?from=2026-13-01", "`from`"),
        ("/pareto?from=2026-11-30&to=2026-11-01", "before it starts"),
        ("/pareto?theme=nope", "unknown theme"),
        ("/pareto?by=colour", "`by`"),
        ("/pareto?color=red", "bad query parameters"),
        ("/impact?from=1900-01-01&to=2026-01-01", "at most"),
        ("/signals?limit=100000", "`limit`"),
        ("/signals?limit=0", "`limit`"),
        ("/signals?after=garbage", "`after`"),
        ("/actions?normalise=perhaps", "bad query parameters"),
        // Days exactly as YYYY-MM-DD, in years whose derived windows stay four-digit years.
        ("/pareto?to=2026-1-5", "`to`"),
        ("/pareto?to=%2B2026-01-05", "`to`"),
        ("/pareto?to=0000-01-01", "out of range"),
        ("/recurrence?to=9999-12-31", "out of range"),
        ("/summary?from=0999-12-31&to=1000-01-01", "out of range"),
        // A parameter the route does not take is refused, not ignored.
        ("/pareto?limit=5", "takes no `limit`"),
        ("/recurrence?by=subject", "takes no `by`"),
        ("/actions?theme=payment", "takes no `theme`"),
        ("/themes?from=2026-11-01", "takes no `from`"),
    ] {
        let resp = get(path).await?;
        assert_eq!(resp.status(), 400, "{path}");
        let body: serde_json::Value = resp.json().await?;
        let error = body["error"].as_str().ok_or("error")?;
        assert!(error.contains(reason), "{path}: {error}");
    }
    for (body, reason) in [
        (
            serde_json::json!({"description": "x", "owner": "y", "start_date": "2026-11-01"}),
            "a theme, a subject or both",
        ),
        (
            serde_json::json!({"theme": "payment", "description": "x", "owner": "y", "start_date": "1 nov"}),
            "`start_date`",
        ),
        (
            serde_json::json!({"theme": "payment", "description": "", "owner": "y", "start_date": "2026-11-01"}),
            "`description`",
        ),
        (
            serde_json::json!({"theme": "payment", "description": "x", "owner": "y", "start_date": "2026-11-01", "status": "someday"}),
            "not one of",
        ),
        (
            serde_json::json!({"theme": "payment", "extra": 1}),
            "bad request body",
        ),
        (
            serde_json::json!({"theme": "payment", "description": "a\u{0}b", "owner": "y", "start_date": "2026-11-01"}),
            "NUL",
        ),
        (
            serde_json::json!({"theme": "payment", "description": "x", "owner": "y", "start_date": "9999-12-01"}),
            "out of range",
        ),
    ] {
        let resp = http
            .post(format!("{base}/actions"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        assert_eq!(resp.status(), 400, "{body}");
        let answer: serde_json::Value = resp.json().await?;
        let error = answer["error"].as_str().ok_or("error")?;
        assert!(error.contains(reason), "{body}: {error}");
    }
    let missing = http
        .patch(format!("{base}/actions/9999"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"status": "done"}))
        .send()
        .await?;
    assert_eq!(missing.status(), 404);
    let not_json = http
        .post(format!("{base}/actions"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(not_json.status(), 400);
    assert_eq!(get("/nowhere").await?.status(), 404);
    // A method a route does not take: 405, with `Allow` and the error in JSON like every other.
    let wrong_method = http
        .delete(format!("{base}/pareto"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(wrong_method.status(), 405);
    assert_eq!(
        wrong_method
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET,HEAD")
    );
    let body: serde_json::Value = wrong_method.json().await?;
    assert!(body["error"].is_string(), "{body}");

    shutdown.cancel();
    server.await??;
    store.close().await;
    Ok(())
}

#[test]
fn without_a_token_the_api_stays_on_loopback() {
    let open = ApiConfig {
        listen: "0.0.0.0:8080"
            .parse()
            .unwrap_or_else(|_| ApiConfig::default().listen),
        ..ApiConfig::default()
    };
    let Err(e) = open.validate() else {
        panic!("listening everywhere without a token was accepted");
    };
    assert!(e.contains("loopback"), "{e}");
    assert!(ApiConfig::default().validate().is_ok());
    let with_token = ApiConfig {
        token: "t".into(),
        ..open
    };
    assert!(with_token.validate().is_ok());
}
