//! The pollers against the replay server's failure modes: X's 429 with a reset time, server
//! errors, token errors; Graph errors. Kafka is librdkafka's in-process mock cluster and the
//! register SQLite (a fast test of the HTTP behaviour; the real-broker runs are in `tests/`).

use std::path::Path;
use std::time::{Duration, Instant};

use signaal_bus::{MockKafka, Publisher};
use signaal_social::replay::{serve, Failure, Recordings};
use signaal_social::worker::{http_client, poll_facebook, poll_x, FacebookPage, XSearch};
use signaal_social::{facebook, x};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn samples(dir: &str) -> Result<Vec<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../samples")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    Ok(files
        .iter()
        .map(std::fs::read_to_string)
        .collect::<std::io::Result<_>>()?)
}

const COMMENTED_POST: &str = "104857600000001_100000000000040";

/// The recorded comment pages of the page's own announcement.
fn comment_pages() -> Result<std::collections::HashMap<String, Vec<String>>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut pages = Vec::new();
    for n in 1..=2 {
        pages.push(std::fs::read_to_string(
            dir.join(format!("comments-{COMMENTED_POST}-page-{n}.json")),
        )?);
    }
    Ok([(COMMENTED_POST.to_string(), pages)].into())
}

struct Setup {
    base: String,
    publisher: Publisher,
    store: Store,
    _mock: MockKafka,
    _dir: tempfile::TempDir,
    _stop: tokio_util::sync::DropGuard,
}

async fn setup(failures: Vec<Failure>) -> Result<Setup> {
    setup_with(Recordings {
        x_pages: samples("twitter")?,
        facebook_pages: samples("facebook")?,
        facebook_comments: comment_pages()?,
        failures,
        ..Recordings::default()
    })
    .await
}

async fn setup_with(recordings: Recordings) -> Result<Setup> {
    let stop = CancellationToken::new();
    let (base, _) = serve(recordings, stop.clone()).await?;
    let mock = MockKafka::start(1)?;
    let publisher = Publisher::new(&mock.bus_config(1)?)?;
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("r.db").display())).await?;
    Ok(Setup {
        base,
        publisher,
        store,
        _mock: mock,
        _dir: dir,
        _stop: stop.drop_guard(),
    })
}

fn search(base: &str, token: &str) -> XSearch {
    XSearch {
        name: "mentions".into(),
        base_url: base.into(),
        bearer_token: token.into(),
        query: "@gemeente".into(),
        own_user_ids: vec![],
        mentions_of: None,
        bearer_token_file: None,
    }
}

fn x_signals() -> Result<usize> {
    let mut n = 0;
    for page in samples("twitter")? {
        n += x::to_signals(&x::parse_response(page.as_bytes())?, "s", &[]).len();
    }
    Ok(n)
}

#[tokio::test]
async fn x_waits_out_a_429_and_backs_off_server_errors_without_gaps_or_duplicates() -> Result {
    let s = setup(vec![
        Failure::x_rate_limited(2),
        Failure::server_error("/2/", 503),
        Failure::server_error("/2/", 502),
    ])
    .await?;
    let client = http_client()?;
    let cfg = search(&s.base, "x-bearer");
    let started = Instant::now();
    let stats = poll_x(&cfg, &client, &s.publisher, &s.store).await?;
    assert_eq!(stats.published, x_signals()?, "every page, after the waits");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited for the reset"
    );
    assert!(s.store.get_cursor("mentions", "since_id").await?.is_some());
    // The next poll asks from the cursor on: nothing again.
    assert_eq!(
        poll_x(&cfg, &client, &s.publisher, &s.store)
            .await?
            .published,
        0
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_token_fails_at_once_and_is_never_in_the_error() -> Result {
    let mut refused = Failure::server_error("/2/", 401);
    refused.body =
        r#"{"title":"Unauthorized","type":"about:blank","status":401,"detail":"Unauthorized"}"#
            .into();
    let s = setup(vec![refused]).await?;
    let started = Instant::now();
    let err = poll_x(
        &search(&s.base, "secret-bearer-123"),
        &http_client()?,
        &s.publisher,
        &s.store,
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(err.contains("token was refused"), "{err}");
    assert!(!err.contains("secret-bearer-123"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "no retries for a bad token"
    );
    assert!(
        s.store.get_cursor("mentions", "since_id").await?.is_none(),
        "nothing committed"
    );
    Ok(())
}

#[tokio::test]
async fn graph_server_errors_are_retried_and_token_errors_are_clear() -> Result {
    let s = setup(vec![
        Failure::server_error("/v", 500),
        // Rate limited (application and page level), access back at once: waited out.
        Failure::graph_error(4, 403, "(#4) Application request limit reached"),
        Failure::graph_error(32, 403, "(#32) Page request limit reached"),
        Failure::graph_error(
            190,
            400,
            "Error validating access token: Session has expired",
        ),
    ])
    .await?;
    let page = FacebookPage {
        name: "page".into(),
        base_url: s.base.clone(),
        api_version: "v21.0".into(),
        page_id: "104857600000001".into(),
        access_token: "fb-page-token-456".into(),
        // Comments are followed only on recent posts; the recordings are from November 2026.
        comments_days: 0,
        access_token_file: None,
    };
    let client = http_client()?;
    // First poll: a 500 (retried) and then the 190 on the next request.
    let err = poll_facebook(&page, &client, &s.publisher, &s.store)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("Graph error 190"), "{err}");
    assert!(!err.contains("fb-page-token-456"), "{err}");
    // The failures are used up: the next poll reads every page.
    let mut want = 0;
    for body in samples("facebook")? {
        want += facebook::to_signals(
            &facebook::parse_response(body.as_bytes())?,
            "p",
            "104857600000001",
        )
        .len();
    }
    assert_eq!(
        poll_facebook(&page, &client, &s.publisher, &s.store)
            .await?
            .published,
        want
    );
    Ok(())
}

#[tokio::test]
async fn the_mentions_timeline_pages_with_pagination_token() -> Result {
    let s = setup(vec![]).await?;
    let mut cfg = search(&s.base, "x-bearer");
    cfg.query = String::new();
    cfg.mentions_of = Some("2244994945".into());
    let client = http_client()?;
    assert_eq!(
        poll_x(&cfg, &client, &s.publisher, &s.store)
            .await?
            .published,
        x_signals()?
    );
    assert_eq!(
        poll_x(&cfg, &client, &s.publisher, &s.store)
            .await?
            .published,
        0
    );
    // Both, or neither, is a configuration error with the reason.
    cfg.query = "@gemeente".into();
    let err = poll_x(&cfg, &client, &s.publisher, &s.store)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("either `query` or `mentions_of`"), "{err}");
    Ok(())
}

#[tokio::test]
async fn comments_on_the_pages_posts_are_followed_once() -> Result {
    let s = setup(vec![]).await?;
    let page = FacebookPage {
        name: "page".into(),
        base_url: s.base.clone(),
        api_version: "v21.0".into(),
        page_id: "104857600000001".into(),
        access_token: "fb-page-token".into(),
        access_token_file: None,
        // Far enough back to reach the recordings' posts, whatever today's date.
        comments_days: 36_500,
    };
    let client = http_client()?;
    let mut posts = 0;
    for body in samples("facebook")? {
        posts += facebook::to_signals(
            &facebook::parse_response(body.as_bytes())?,
            "p",
            "104857600000001",
        )
        .len();
    }
    let stats = poll_facebook(&page, &client, &s.publisher, &s.store).await?;
    // Four comments over two pages; the page's own reply is not a signal.
    assert_eq!(stats.published, posts + 3);
    assert!(s
        .store
        .get_cursor("page", "comments_since")
        .await?
        .is_some());
    assert_eq!(
        poll_facebook(&page, &client, &s.publisher, &s.store)
            .await?
            .published,
        0
    );
    let first = facebook::parse_response(comment_pages()?[COMMENTED_POST][0].as_bytes())?;
    let signals = facebook::comments_to_signals(&first, "page", "104857600000001", COMMENTED_POST);
    assert_eq!(signals.len(), 2);
    assert_eq!(signals[0].thread_id.as_deref(), Some(COMMENTED_POST));
    assert_eq!(
        signals[1].meta["in_reply_to"],
        format!("{COMMENTED_POST}_9001")
    );
    assert_eq!(signals[0].meta["likes"], 12);
    Ok(())
}

fn stream_post(id: &str, text: &str) -> String {
    format!(
        r#"{{"data":{{"id":"{id}","text":"{text}","author_id":"11","created_at":"2026-11-17T09:00:00.000Z","conversation_id":"{id}","lang":"nl","edit_history_tweet_ids":["{id}"]}},"includes":{{"users":[{{"id":"11","name":"Jan","username":"jan"}}]}},"matching_rules":[{{"id":"1858000000000000001","tag":"gemeente"}}]}}"#
    )
}

/// The filtered stream through keep-alives, a stall, a server close after an operational
/// disconnect message, and reconnects; rules synced from config.
#[tokio::test]
async fn the_filtered_stream_survives_stalls_and_disconnects() -> Result {
    use signaal_social::replay::StreamPart::{KeepAlive, Line, Pause, Stall};
    use signaal_social::stream::{run, Rule, XStream};
    let s = setup_with(Recordings {
        stream_connections: vec![
            vec![KeepAlive, Line(stream_post("1858000000000000101", "DigiD weer stuk")), KeepAlive, Stall],
            vec![
                Pause(Duration::from_millis(100)),
                Line(stream_post("1858000000000000102", "Nog steeds stuk")),
                Line(r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"UpstreamOperationalDisconnect","detail":"This stream has been disconnected upstream for operational reasons.","type":"https://api.twitter.com/2/problems/operational-disconnect"}]}"#.into()),
            ],
            vec![Line(stream_post("1858000000000000103", "Werkt weer, dank")), Stall],
        ],
        stream_rules: vec![("1858000000000000900".into(), "oude regel".into())],
        ..Recordings::default()
    })
    .await?;
    let (base, publisher, store) = (s.base.clone(), s.publisher.clone(), s.store.clone());
    let cfg = XStream {
        name: "stream".into(),
        base_url: base.clone(),
        bearer_token: "x-bearer".into(),
        bearer_token_file: None,
        rules: vec![Rule {
            value: "@gemeente -is:retweet".into(),
            tag: Some("gemeente".into()),
        }],
        own_user_ids: vec![],
        stall_seconds: 1,
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(cfg, publisher, store.clone(), shutdown.clone()));
    let started = Instant::now();
    let last = || async {
        Ok::<_, signaal_store::StoreError>(store.cursors("stream").await?.get("last_id").cloned())
    };
    while last().await?.as_deref() != Some("1858000000000000103") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the third connection's post never came"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Connection 1 stalled (1 s), connection 2 was closed by the server: two reconnects.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    shutdown.cancel();
    task.await??;

    let rules: serde_json::Value = reqwest::get(format!("{base}/2/tweets/search/stream/rules"))
        .await?
        .json()
        .await?;
    let values: Vec<&str> = rules["data"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["value"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        values,
        ["@gemeente -is:retweet"],
        "the stale rule deleted, the configured one added"
    );
    Ok(())
}

/// X answers 200 with `errors` next to `data` when part of a request failed (a deleted author,
/// a suspended account): the data is kept, the errors logged, the cursor moves.
#[tokio::test]
async fn partial_errors_inside_a_200_keep_the_data() -> Result {
    let page = r#"{"data":[{"id":"1858000000000000201","text":"@gemeente waar blijft mijn vergunning?","author_id":"11","created_at":"2026-11-17T09:00:00.000Z","conversation_id":"1858000000000000201","lang":"nl","public_metrics":{"retweet_count":0,"reply_count":0,"like_count":2,"quote_count":0}}],
      "includes":{"users":[{"id":"11","username":"jan","name":"Jan"}]},
      "errors":[{"value":"12","detail":"Could not find user with id: [12].","title":"Not Found Error","resource_type":"user","parameter":"id","resource_id":"12","type":"https://api.twitter.com/2/problems/resource-not-found"}],
      "meta":{"newest_id":"1858000000000000201","oldest_id":"1858000000000000201","result_count":1}}"#;
    let s = setup(vec![Failure {
        path_prefix: "/2/".into(),
        status: 200,
        headers: vec![],
        body: page.into(),
    }])
    .await?;
    let stats = poll_x(
        &search(&s.base, "x-bearer"),
        &http_client()?,
        &s.publisher,
        &s.store,
    )
    .await?;
    assert_eq!(stats.published, 1);
    assert_eq!(
        s.store.get_cursor("mentions", "since_id").await?.as_deref(),
        Some("1858000000000000201")
    );
    Ok(())
}
