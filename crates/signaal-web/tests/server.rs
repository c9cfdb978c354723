//! `signaal serve`'s page and live feed over real HTTP on a SQLite register: the token is
//! wanted (bearer or basic, a browser is asked for basic), the page renders every view, bad
//! filters are a 400 page, and a live-feed client that reconnects with `Last-Event-ID` gets
//! exactly what it missed — or `reset` when the ring no longer reaches back.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use signaal_analysis::AnalysisConfig;
use signaal_api::http::{ApiConfig, AppState};
use signaal_api::Vocabulary;
use signaal_core::{
    Cause, Channel, Classification, ClassifiedEnvelope, Evidence, Kind, Signal, ThemeTag,
};
use signaal_store::Store;
use signaal_web::live::{Hub, LiveSignal};
use signaal_web::page::Labels;
use signaal_web::WebState;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const TOKEN: &str = "page-token";

fn envelope(i: i64) -> Result<ClassifiedEnvelope, BoxError> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 2, 8, 0, 0)
        .single()
        .ok_or("time")?
        + chrono::Duration::hours(i);
    let text = "De brief is <onduidelijk> & te laat";
    let mut s = Signal::new(Channel::Email, "test", format!("m{i}"), at, text);
    s.author = Some(format!("a{}", i % 3));
    let start = text.find("onduidelijk").ok_or("word")?;
    let c = Classification {
        themes: vec![ThemeTag {
            id: "unclear_communication".into(),
            score: 0.5,
            evidence: vec![Evidence::words(
                start,
                start + "onduidelijk".len(),
                "onduidelijk".into(),
            )],
        }],
        subjects: vec![],
        cause: Cause::System,
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.4,
        escalation: vec![],
        impact: Some(3.0),
    };
    Ok(ClassifiedEnvelope::new(s, c, "test"))
}

struct Server {
    base: String,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(buffer: usize) -> Result<Server, BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!(
        "sqlite:{}",
        dir.path().join("register.db").display()
    ))
    .await?;
    let batch = (0..12).map(envelope).collect::<Result<Vec<_>, _>>()?;
    store.save_classified(&batch).await?;
    let themes = serde_json::json!([
        {"id": "unclear_communication", "label": "Onduidelijke communicatie"},
        {"id": "payment", "label": "Betaling"},
    ]);
    let subjects =
        serde_json::json!([{"id": "tax_bill", "label": {"nl": "aanslag", "en": "tax bill"}}]);
    let app = Arc::new(AppState {
        store,
        analysis: AnalysisConfig::default(),
        api: ApiConfig {
            token: TOKEN.into(),
            ..ApiConfig::default()
        },
        vocabulary: Vocabulary {
            themes: ["unclear_communication", "payment"]
                .map(String::from)
                .into(),
            subjects: ["tax_bill"].map(String::from).into(),
        },
        themes: themes.clone(),
        subjects: subjects.clone(),
        detect: signaal_detect::Settings::default(),
    });
    let hub = Hub::new(buffer);
    let state = Arc::new(WebState {
        app,
        hub: hub.clone(),
        labels: Labels::from_taxonomy(&themes, &subjects),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(signaal_web::server::serve(
        listener,
        state,
        shutdown.clone(),
    ));
    Ok(Server {
        base,
        hub,
        shutdown,
        task,
        _dir: dir,
    })
}

fn live(id: &str) -> LiveSignal {
    LiveSignal {
        id: id.into(),
        channel: "phone".into(),
        occurred_at: Utc::now(),
        subject: None,
        text: "niet bereikbaar".into(),
        themes: vec![ThemeTag {
            id: if id.ends_with('p') {
                "payment"
            } else {
                "reachability"
            }
            .into(),
            score: 0.5,
            evidence: vec![],
        }],
        subjects: vec![],
        cause: "system".into(),
        kind: "complaint".into(),
        impact: None,
        classifier: "t".into(),
    }
}

/// An open SSE stream, read event by event: `(event, id, signal id)`.
struct Stream {
    resp: reqwest::Response,
    buf: String,
}

impl Stream {
    async fn open(base: &str, query: &str, last: Option<&str>) -> Result<Stream, BoxError> {
        let mut req = reqwest::Client::new()
            .get(format!("{base}/live/signals{query}"))
            .bearer_auth(TOKEN);
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l);
        }
        let resp = req.send().await?;
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        Ok(Stream {
            resp,
            buf: String::new(),
        })
    }

    async fn next(&mut self) -> Result<(String, String, String), BoxError> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let event: String = self.buf.drain(..end + 2).collect();
                let field = |name: &str| {
                    event
                        .lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")[..]))
                        .unwrap_or_default()
                        .to_string()
                };
                if field("event").is_empty() {
                    continue; // a keep-alive comment
                }
                let data: serde_json::Value =
                    serde_json::from_str(&field("data")).unwrap_or_default();
                return Ok((
                    field("event"),
                    field("id"),
                    data["id"].as_str().unwrap_or_default().to_string(),
                ));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk())
                .await??
                .ok_or("the stream ended")?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

#[tokio::test]
async fn a_reconnecting_client_gets_what_it_missed_and_a_stale_one_a_reset() -> Result<(), BoxError>
{
    let s = start(8).await?;
    let mut a = Stream::open(&s.base, "", None).await?;
    let (event, hello_id, _) = a.next().await?;
    assert_eq!(event, "hello");
    for i in 0..3 {
        s.hub.push(&live(&format!("s{i}")));
    }
    let mut last = hello_id.clone();
    for i in 0..3 {
        let (event, id, signal) = a.next().await?;
        assert_eq!((event.as_str(), signal), ("signal", format!("s{i}")));
        last = id;
    }
    drop(a);
    // Missed while away: 3, 4, 5 — then reconnect with the last id seen.
    for i in 3..6 {
        s.hub.push(&live(&format!("s{i}")));
    }
    let mut b = Stream::open(&s.base, "", Some(&last)).await?;
    for i in 3..6 {
        let (event, id, signal) = b.next().await?;
        assert_eq!((event.as_str(), signal), ("signal", format!("s{i}")));
        last = id;
    }
    s.hub.push(&live("s6"));
    assert_eq!(
        b.next().await?.2,
        "s6",
        "new events follow the replayed ones"
    );
    drop(b);

    // A filter sends only what matches, and its ids still resume exactly.
    let mut f = Stream::open(&s.base, "?theme=payment", Some(&last)).await?;
    s.hub.push(&live("s7"));
    s.hub.push(&live("s8p"));
    let (_, _, signal) = f.next().await?;
    assert_eq!(signal, "s8p");
    drop(f);

    // The ring holds 8: after 20 more, `last` is too old, so the stream says reset.
    for i in 9..29 {
        s.hub.push(&live(&format!("s{i}")));
    }
    let mut c = Stream::open(&s.base, "", Some(&last)).await?;
    let (event, _, _) = c.next().await?;
    assert_eq!(event, "reset");
    s.hub.push(&live("s29"));
    assert_eq!(c.next().await?.2, "s29", "after a reset the stream goes on");
    // An id of another process (a restarted server) is a reset too.
    let mut d = Stream::open(&s.base, "", Some("0abc-3")).await?;
    assert_eq!(d.next().await?.0, "reset");
    drop(d);

    // Shutdown ends the open stream, and the server stops well before its 10 s grace.
    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), s.task).await???;
    assert!(c.next().await.is_err(), "the stream ended");
    Ok(())
}

#[tokio::test]
async fn the_page_wants_the_token_and_renders_every_view() -> Result<(), BoxError> {
    let s = start(100).await?;
    let http = reqwest::Client::new();
    let page = format!("{}/?from=2026-11-01&to=2026-11-30", s.base);

    let anonymous = http.get(&page).send().await?;
    assert_eq!(anonymous.status(), 401);
    let challenge = anonymous
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(challenge.starts_with("Basic "), "{challenge}");
    let wrong = http
        .get(&page)
        .basic_auth("x", Some("guess"))
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    for name in ["/live/signals", "/assets/app.js"] {
        let r = http.get(format!("{}{name}", s.base)).send().await?;
        assert_eq!(r.status(), 401, "{name}");
    }

    let ok = http
        .get(&page)
        .basic_auth("anyone", Some(TOKEN))
        .send()
        .await?;
    assert_eq!(ok.status(), 200);
    let html = ok.text().await?;
    for id in [
        "filters",
        "live",
        "pareto",
        "timeline",
        "impact",
        "recurrence",
        "actions",
        "signals",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    // The taxonomy's label, the evidence marked and the text escaped.
    assert!(html.contains("Onduidelijke communicatie"));
    assert_eq!(html.matches("<li class=\"signal\"").count(), 12);
    assert!(html.contains(
        "&lt;<mark title=\"Onduidelijke communicatie\">onduidelijk</mark>&gt; &amp; te laat"
    ));
    for outside in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "url(http",
    ] {
        assert!(!html.contains(outside), "nothing from elsewhere: {outside}");
    }
    let bearer = http.get(&page).bearer_auth(TOKEN).send().await?;
    assert_eq!(bearer.status(), 200);
    let lower = http
        .get(&page)
        .header("authorization", format!("bearer {TOKEN}"))
        .send()
        .await?;
    assert_eq!(lower.status(), 200, "the scheme is case-insensitive");

    // English, and filters that live in the URL.
    let en = http
        .get(format!("{page}&lang=en&theme=payment"))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .text()
        .await?;
    assert!(en.contains("<html lang=\"en\">"));
    assert!(en.contains("<option value=\"payment\" selected>"));
    assert_eq!(
        en.matches("<li class=\"signal\"").count(),
        0,
        "no payment signals"
    );

    for bad in [
        "from=2026-13-01",
        "theme=nonsense",
        "from=2026-12-01&to=2026-11-01",
        "after=garbage",
    ] {
        let r = http
            .get(format!("{}/?{bad}", s.base))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.text().await?.contains("role=\"alert\""), "{bad}");
    }
    // A tracker's or a dashboard's parameter is no reason to refuse a link.
    let tracked = http
        .get(format!("{page}&utm_source=mail&orgId=1"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(tracked.status(), 200);
    let js = http
        .get(format!("{}/assets/app.js", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(
        js.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/javascript; charset=utf-8")
    );
    let missing = http
        .get(format!("{}/assets/nothing.js", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(missing.status(), 404);

    // The API is served beside the page, with its own routes and 404s.
    let timeline: serde_json::Value = http
        .get(format!(
            "{}/api/v1/timeline?from=2026-11-01&to=2026-11-30",
            s.base
        ))
        .bearer_auth(TOKEN)
        .send()
        .await?
        .json()
        .await?;
    let series = timeline["series"].as_array().ok_or("series")?;
    assert_eq!(series.len(), 1);
    let buckets = series[0]["buckets"].as_array().ok_or("buckets")?;
    assert_eq!(buckets.len(), 30, "every day of November");
    let total: u64 = buckets.iter().filter_map(|b| b["signals"].as_u64()).sum();
    assert_eq!(total, 12);
    let r = http
        .get(format!("{}/api/v1/timeline?by=theme_subject", s.base))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(r.status(), 400);

    s.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), s.task).await???;
    Ok(())
}
