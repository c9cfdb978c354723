//! Alert events, the notification outbox and the alert history (migration 0004), on SQLite and
//! PostgreSQL: one suite per concern, each run on both backends.

mod common;

use std::borrow::Cow;
use std::future::Future;

use chrono::{Duration, TimeZone, Utc};
use common::{alert_event, envelope, hour, minute, BoxError, TempDb};
use signaal_core::{AlertEvent, AlertState, Channel};
use signaal_store::{Store, ThemeBucketCount};

/// Runs `suite` on a fresh SQLite file and on a fresh PostgreSQL database; it gets the store and
/// the database's URL.
async fn on_both<F, Fut>(tag: &str, suite: F) -> Result<(), BoxError>
where
    F: Fn(Store, String) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let store = Store::connect(&url).await?;
    suite(store.clone(), url).await?;
    store.close().await;

    let db = TempDb::create(tag).await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let result = suite(store.clone(), db.url.clone()).await;
        store.close().await;
        result
    }
    .await;
    db.drop().await?;
    result
}

fn sinks(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// One alert's life from hour `start`: firing, updated, repeated, resolved, an hour apart.
fn life(series: &str, start: i64) -> Vec<AlertEvent> {
    vec![
        alert_event(series, start, AlertState::Firing, start),
        alert_event(series, start, AlertState::Update, start + 1),
        alert_event(series, start, AlertState::Repeat, start + 2),
        alert_event(series, start, AlertState::Resolved, start + 3),
    ]
}

async fn replays_store_and_queue_nothing(store: Store, _: String) -> Result<(), BoxError> {
    let backend = store.backend();
    let a = life("digital_service", 10);
    let b = alert_event("payment/email", 11, AlertState::Pending, 11);
    let batch: Vec<(AlertEvent, Vec<String>)> = vec![
        (a[0].clone(), sinks(&["webhook", "slack"])),
        (a[1].clone(), sinks(&["webhook"])),
        (b.clone(), sinks(&[])),
    ];
    assert_eq!(
        store
            .save_alert_events(&batch, Some(("alerter", "signals.classified/0", "41")))
            .await?,
        3,
        "{backend}: three new events"
    );
    assert_eq!(
        store.outbox_pending().await?,
        3,
        "{backend}: one row per sink"
    );
    assert_eq!(
        store
            .get_cursor("alerter", "signals.classified/0")
            .await?
            .as_deref(),
        Some("41"),
        "{backend}: the cursor is written with the events"
    );

    // The same batch again (a replay after a restart): nothing new, nothing queued, and the
    // cursor still moves.
    assert_eq!(
        store
            .save_alert_events(&batch, Some(("alerter", "signals.classified/0", "42")))
            .await?,
        0,
        "{backend}: replay"
    );
    assert_eq!(
        store.outbox_pending().await?,
        3,
        "{backend}: replay queues nothing"
    );
    assert_eq!(
        store
            .get_cursor("alerter", "signals.classified/0")
            .await?
            .as_deref(),
        Some("42")
    );
    // A replay sent with other sinks queues nothing either: the event is what counts.
    assert_eq!(
        store
            .save_alert_events(&[(a[0].clone(), sinks(&["teams"]))], None)
            .await?,
        0
    );
    assert_eq!(store.outbox_pending().await?, 3, "{backend}");

    // A replay next to a new event, and the same new event twice in one batch.
    let mixed = vec![
        (a[1].clone(), sinks(&["webhook"])),
        (a[2].clone(), sinks(&["webhook", "webhook", "alertmanager"])),
        (a[2].clone(), sinks(&["webhook"])),
    ];
    assert_eq!(store.save_alert_events(&mixed, None).await?, 1, "{backend}");
    assert_eq!(
        store.outbox_pending().await?,
        5,
        "{backend}: sink named twice, one row"
    );

    // Events read back whole, in bucket order.
    let events = store.alert_events(None).await?;
    assert_eq!(
        events,
        vec![a[0].clone(), a[1].clone(), b.clone(), a[2].clone()],
        "{backend}"
    );
    assert_eq!(
        store.alert_events(Some(2)).await?,
        vec![b.clone(), a[2].clone()],
        "{backend}: the most recent two, oldest first"
    );

    store
        .save_alert_events(&[(a[3].clone(), sinks(&["webhook"]))], None)
        .await?;
    let latest = store.latest_alert_states().await?;
    assert_eq!(
        latest,
        vec![b.clone(), a[3].clone()],
        "{backend}: newest of each alert"
    );

    // A number JSON cannot carry is refused before anything is written, as the data's fault.
    let mut nan = alert_event("reachability", 20, AlertState::Firing, 20);
    nan.expected = f64::NAN;
    let err = store
        .save_alert_events(&[(nan, sinks(&["webhook"]))], None)
        .await
        .err()
        .ok_or("a NaN expected count was stored")?;
    assert!(!err.is_transient(), "{backend}: {err}");
    assert!(err.to_string().contains("expected"), "{err}");
    assert_eq!(store.alert_events(None).await?.len(), 5, "{backend}");

    // One transaction: when the database refuses an event (PostgreSQL takes no NUL in text),
    // the events before it in the batch and the cursor are not written either.
    if backend == "postgresql" {
        let fine = alert_event("reachability", 30, AlertState::Firing, 30);
        let mut refused = alert_event("reach\0ability", 30, AlertState::Firing, 30);
        refused.id = AlertEvent::event_id_for(&refused.alert_id, AlertState::Pending, hour(30));
        let err = store
            .save_alert_events(
                &[(fine, sinks(&["webhook"])), (refused, sinks(&["webhook"]))],
                Some(("alerter", "signals.classified/0", "99")),
            )
            .await
            .err()
            .ok_or("a NUL in a series was stored")?;
        assert!(!err.is_transient(), "{err}");
        assert_eq!(
            store.alert_events(None).await?.len(),
            5,
            "{backend}: nothing stored"
        );
        assert_eq!(
            store.outbox_pending().await?,
            6,
            "{backend}: nothing queued"
        );
        assert_eq!(
            store
                .get_cursor("alerter", "signals.classified/0")
                .await?
                .as_deref(),
            Some("42"),
            "{backend}: the cursor did not move"
        );
    }
    Ok(())
}

#[tokio::test]
async fn replayed_alert_events_store_and_queue_nothing() -> Result<(), BoxError> {
    on_both("alert_replay", replays_store_and_queue_nothing).await
}

async fn outbox_due_sent_failed(store: Store, _: String) -> Result<(), BoxError> {
    let backend = store.backend();
    let a = life("digital_service", 10);
    let b = life("payment", 9);
    let mut batch = Vec::new();
    for e in a.iter().chain(&b) {
        batch.push((e.clone(), sinks(&["webhook", "slack"])));
    }
    // Stored out of order: the outbox orders by bucket, not by arrival.
    batch.reverse();
    assert_eq!(store.save_alert_events(&batch, None).await?, 8);
    let now = Utc::now();
    let ids = |items: &[signaal_store::OutboxItem]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|i| (i.event.id.clone(), i.sink.clone()))
            .collect()
    };

    // Only the first event of each alert is due, per sink; oldest bucket first.
    let due = store.outbox_due(now, 100).await?;
    assert_eq!(
        ids(&due),
        vec![
            (b[0].id.clone(), "slack".to_string()),
            (b[0].id.clone(), "webhook".to_string()),
            (a[0].id.clone(), "slack".to_string()),
            (a[0].id.clone(), "webhook".to_string()),
        ],
        "{backend}: heads of each alert and sink"
    );
    assert!(due.iter().all(|i| i.attempts == 0));
    assert_eq!(due[0].event, b[0], "{backend}: the whole event comes back");
    assert_eq!(store.outbox_due(now, 1).await?.len(), 1, "{backend}: limit");
    assert!(
        store
            .outbox_due(a[0].emitted_at - Duration::days(3650), 100)
            .await?
            .is_empty(),
        "{backend}: nothing is due before it was queued"
    );
    assert_eq!(
        ids(&store.outbox_due_for("webhook", now, 100).await?),
        vec![
            (b[0].id.clone(), "webhook".to_string()),
            (a[0].id.clone(), "webhook".to_string())
        ],
        "{backend}: one sink's queue"
    );

    // Sent: the alert's next event becomes due for that sink only.
    assert!(store.outbox_sent(&a[0].id, "webhook", now).await?);
    assert!(
        !store.outbox_sent(&a[0].id, "webhook", now).await?,
        "{backend}: sent once"
    );
    assert_eq!(
        ids(&store.outbox_due_for("webhook", now, 100).await?),
        vec![
            (b[0].id.clone(), "webhook".to_string()),
            (a[1].id.clone(), "webhook".to_string())
        ],
        "{backend}: oldest bucket first"
    );

    // Failed: one more attempt, not due until the backoff has passed, and it holds back the
    // later events of its alert (not those of the other alert, nor the other sink's).
    let retry_at = now + Duration::seconds(30);
    assert!(
        store
            .outbox_failed(
                &a[1].id,
                "webhook",
                "HTTP 503 Service Unavailable",
                retry_at
            )
            .await?
    );
    assert_eq!(
        ids(&store.outbox_due_for("webhook", now, 100).await?),
        vec![(b[0].id.clone(), "webhook".to_string())],
        "{backend}: a failed event waits, and its alert's later events wait behind it"
    );
    let later = store.outbox_due_for("webhook", retry_at, 100).await?;
    assert_eq!(
        ids(&later),
        vec![
            (b[0].id.clone(), "webhook".to_string()),
            (a[1].id.clone(), "webhook".to_string())
        ],
        "{backend}: due again once the backoff has passed"
    );
    assert_eq!(later[1].attempts, 1, "{backend}: attempts counted");
    store
        .outbox_failed(
            &a[1].id,
            "webhook",
            &"x".repeat(5000),
            retry_at + Duration::seconds(60),
        )
        .await?;
    let later = store
        .outbox_due_for("webhook", retry_at + Duration::seconds(60), 100)
        .await?;
    assert_eq!(later[1].attempts, 2, "{backend}");
    assert_eq!(
        ids(&store.outbox_due_for("slack", now, 100).await?),
        vec![
            (b[0].id.clone(), "slack".to_string()),
            (a[0].id.clone(), "slack".to_string())
        ],
        "{backend}: the other sink is not held back"
    );

    // Drain everything in order, as the dispatcher would; each alert's events come in order.
    let mut delivered: Vec<(String, String)> = Vec::new();
    let far = now + Duration::days(1);
    loop {
        let due = store.outbox_due(far, 3).await?;
        if due.is_empty() {
            break;
        }
        for item in due {
            assert!(store.outbox_sent(&item.event.id, &item.sink, far).await?);
            delivered.push((item.event.id.clone(), item.sink.clone()));
        }
    }
    assert_eq!(delivered.len(), 15, "{backend}: every row once");
    for sink in ["webhook", "slack"] {
        for life in [&a, &b] {
            let order: Vec<&String> = delivered
                .iter()
                .filter(|(id, s)| s == sink && life.iter().any(|e| &e.id == id))
                .map(|(id, _)| id)
                .collect();
            let want: Vec<&String> = life
                .iter()
                .map(|e| &e.id)
                .filter(|id| !(sink == "webhook" && **id == a[0].id))
                .collect();
            assert_eq!(
                order, want,
                "{backend}: {sink} gets an alert's events in order"
            );
        }
    }
    assert_eq!(store.outbox_pending().await?, 0, "{backend}");
    assert!(
        !store.outbox_failed(&a[0].id, "slack", "late", far).await?,
        "{backend}: a sent row is not failed afterwards"
    );
    Ok(())
}

#[tokio::test]
async fn outbox_is_due_in_order_with_backoff() -> Result<(), BoxError> {
    on_both("alert_outbox", outbox_due_sent_failed).await
}

async fn history(store: Store, url: String) -> Result<(), BoxError> {
    let backend = store.backend();
    let mut rt = envelope(Channel::Twitter, "rt", 5, Some("a_r"), &["reachability"]);
    rt.signal
        .meta
        .insert("retweet_of".into(), serde_json::Value::from("t1"));
    let before_1970 = {
        let mut e = envelope(Channel::Email, "old", 0, None, &["payment"]);
        e.signal.occurred_at = Utc
            .timestamp_opt(-1800, 0)
            .single()
            .ok_or("a time before 1970")?;
        e
    };
    let batch = vec![
        envelope(
            Channel::Email,
            "m1",
            0,
            Some("a_1"),
            &["reachability", "payment"],
        ),
        envelope(Channel::Twitter, "t1", 5, Some("a_2"), &["reachability"]),
        envelope(
            Channel::Twitter,
            "t2",
            59,
            Some("a_2"),
            &["reachability", "reachability"],
        ),
        envelope(Channel::Phone, "c1", 60, Some("a_3"), &["reachability"]),
        envelope(Channel::Phone, "c2", 125, None, &["payment"]),
        envelope(Channel::Phone, "c3", 180, None, &["payment"]),
        rt,
        before_1970,
    ];
    store.save_classified(&batch).await?;
    // Replays never count twice.
    store.save_classified(&batch).await?;
    store.save_classified(&batch[..2]).await?;
    // Nor does a theme row that is there twice (the table has no key since 0003; a register
    // restored twice, or written by another tool, can hold one).
    let twice = "insert into signal_themes (signal_id, theme, score, occurred_ms) \
         select signal_id, theme, score, occurred_ms from signal_themes where theme = 'payment'";
    if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(&url).await?;
        sqlx::query(twice).execute(&pool).await?;
        pool.close().await;
    } else {
        let pool = sqlx::PgPool::connect(&url).await?;
        sqlx::query(twice).execute(&pool).await?;
        pool.close().await;
    }

    let counts = store
        .theme_bucket_counts(minute(0), minute(180), 3600, false)
        .await?;
    let h = |m: i64| minute(m).timestamp();
    let row = |theme: &str, channel: Option<&str>, bucket: i64, count: u64| ThemeBucketCount {
        theme: theme.into(),
        channel: channel.map(str::to_string),
        bucket,
        count,
    };
    // minute(0) is 08:00 UTC on a whole hour.
    assert_eq!(
        counts,
        vec![
            row("payment", None, h(0), 1),
            row("reachability", None, h(0), 2),
            row("reachability", None, h(60), 1),
            row("payment", None, h(120), 1),
        ],
        "{backend}: hourly counts of people (a_2 twice in one hour is one), retweet left out, \
         each signal once, `to` excluded"
    );
    let by_channel = store
        .theme_bucket_counts(minute(0), minute(181), 7200, true)
        .await?;
    assert_eq!(
        by_channel,
        vec![
            row("payment", Some("email"), h(0), 1),
            row("reachability", Some("email"), h(0), 1),
            row("reachability", Some("phone"), h(0), 1),
            row("reachability", Some("twitter"), h(0), 1),
            row("payment", Some("phone"), h(120), 2),
        ],
        "{backend}: two-hour buckets per channel"
    );
    let old = store
        .theme_bucket_counts(
            Utc.timestamp_opt(-7200, 0).single().ok_or("time")?,
            minute(0),
            3600,
            false,
        )
        .await?;
    assert_eq!(
        old,
        vec![row("payment", None, -3600, 1)],
        "{backend}: buckets before 1970 start at their floor"
    );
    assert!(store
        .theme_bucket_counts(minute(0), minute(60), 0, false)
        .await
        .is_err());
    assert_eq!(
        store.first_theme_signal(minute(1), minute(200)).await?,
        Some(minute(5)),
        "{backend}: the first themed signal from `from` on"
    );
    assert_eq!(
        store.first_theme_signal(minute(181), minute(200)).await?,
        None,
        "{backend}: none in the range"
    );

    let mut seen = Vec::new();
    let n = store
        .for_each_theme_signal(minute(0), minute(125), |s| seen.push(s))
        .await?;
    assert_eq!(n, 4, "{backend}");
    let summary: Vec<(String, String, Option<String>, Vec<String>)> = seen
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                s.channel.clone(),
                s.author.clone(),
                s.themes.clone(),
            )
        })
        .collect();
    let want: Vec<(String, String, Option<String>, Vec<String>)> = batch[..4]
        .iter()
        .map(|e| {
            let mut themes: Vec<String> = e
                .classification
                .themes
                .iter()
                .map(|t| t.id.clone())
                .collect();
            themes.sort();
            themes.dedup();
            (
                e.signal.id.clone(),
                e.signal.channel.as_str().to_string(),
                e.signal.author.clone(),
                themes,
            )
        })
        .collect();
    assert_eq!(
        summary, want,
        "{backend}: time order, themes once, no retweet"
    );
    assert_eq!(seen[0].subject.as_deref(), Some("WOZ"));
    assert_eq!(
        seen[0].text, batch[0].signal.text,
        "{backend}: the stored text"
    );
    assert_eq!(seen[0].occurred_at, minute(0), "{backend}");
    assert!(seen
        .windows(2)
        .all(|w| w[0].occurred_at <= w[1].occurred_at));
    let mut none = 0;
    assert_eq!(
        store
            .for_each_theme_signal(hour(100), hour(101), |_| none += 1)
            .await?,
        0
    );
    assert_eq!(none, 0);
    Ok(())
}

#[tokio::test]
async fn history_counts_skip_retweets_and_count_each_signal_once() -> Result<(), BoxError> {
    on_both("alert_history", history).await
}

/// The migrator as it was before 0004.
fn before_0004(all: sqlx::migrate::Migrator) -> sqlx::migrate::Migrator {
    let old: Vec<_> = all
        .migrations
        .iter()
        .filter(|m| m.version <= 3)
        .cloned()
        .collect();
    assert_eq!(old.len(), 3, "migrations 0001–0003 are embedded");
    sqlx::migrate::Migrator {
        migrations: Cow::Owned(old),
        ..all
    }
}

/// What the store wrote before 0004, statement for statement (a signal, its theme row, an alert,
/// a cursor), on either backend.
macro_rules! write_before_0004 {
    ($pool:expr) => {{
        let pool = $pool;
        let e = envelope(Channel::Phone, "c1", 10, Some("a_x"), &["reachability"]);
        let s = &e.signal;
        let c = &e.classification;
        sqlx::query(
            "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
             classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
             sentiment, escalation, classifier) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
             $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
        )
        .bind(&s.id)
        .bind(s.channel.as_str())
        .bind(&s.source)
        .bind(&s.source_id)
        .bind(s.occurred_at)
        .bind(s.received_at)
        .bind(e.classified_at)
        .bind(&s.author)
        .bind(&s.subject)
        .bind(&s.thread_id)
        .bind(&s.text)
        .bind(sqlx::types::Json(&s.meta))
        .bind(sqlx::types::Json(&c.themes))
        .bind(c.cause.as_str())
        .bind(c.kind.as_str())
        .bind(&c.lang)
        .bind(c.sentiment)
        .bind(sqlx::types::Json(&c.escalation))
        .bind(&e.classifier)
        .execute(pool)
        .await?;
        sqlx::query(
            "insert into signal_themes (signal_id, theme, score, occurred_ms) \
             values ($1, $2, $3, $4)",
        )
        .bind(&s.id)
        .bind("reachability")
        .bind(0.5f32)
        .bind(s.occurred_at.timestamp_millis())
        .execute(pool)
        .await?;
        sqlx::query(
            "insert into alerts (id, theme, window_start, window_end, count, threshold, \
             raised_at, sample_signal_ids) values ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind("a1")
        .bind("reachability")
        .bind(minute(0))
        .bind(minute(60))
        .bind(1i64)
        .bind(1i64)
        .bind(minute(61))
        .bind(sqlx::types::Json(vec![s.id.clone()]))
        .execute(pool)
        .await?;
        sqlx::query(
            "insert into source_cursors (source, key, value, updated_at) values ($1, $2, $3, $4)",
        )
        .bind("alerter")
        .bind("signals.classified/0")
        .bind("7")
        .bind(minute(62))
        .execute(pool)
        .await?;
        e
    }};
}

/// After 0004 the old rows are all there and the new tables work, next to them.
async fn after_0004(store: &Store, e: &signaal_core::ClassifiedEnvelope) -> Result<(), BoxError> {
    let backend = store.backend();
    assert_eq!(
        store.signal_ids().await?,
        vec![e.signal.id.clone()],
        "{backend}"
    );
    assert_eq!(store.alerts().await?.len(), 1, "{backend}: old alert kept");
    assert_eq!(
        store
            .get_cursor("alerter", "signals.classified/0")
            .await?
            .as_deref(),
        Some("7")
    );
    assert_eq!(
        store
            .theme_bucket_counts(minute(0), minute(60), 3600, false)
            .await?,
        vec![ThemeBucketCount {
            theme: "reachability".into(),
            channel: None,
            bucket: minute(0).timestamp(),
            count: 1
        }],
        "{backend}: history over migrated rows"
    );
    let events = life("reachability", 10);
    let batch: Vec<_> = events
        .iter()
        .map(|e| (e.clone(), sinks(&["webhook"])))
        .collect();
    assert_eq!(
        store
            .save_alert_events(&batch, Some(("alerter", "signals.classified/0", "8")))
            .await?,
        4
    );
    assert_eq!(store.outbox_pending().await?, 4, "{backend}");
    assert_eq!(store.alert_events(None).await?, events, "{backend}");
    Ok(())
}

#[tokio::test]
async fn sqlite_register_gains_alert_tables() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let e = {
        let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)?
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await?;
        before_0004(sqlx::migrate!("migrations/sqlite"))
            .run(&pool)
            .await?;
        let e = write_before_0004!(&pool);
        pool.close().await;
        e
    };
    let store = Store::connect(&url).await?;
    after_0004(&store, &e).await?;
    store.close().await;

    let pool = sqlx::SqlitePool::connect(&url).await?;
    let indexes: Vec<(String,)> = sqlx::query_as(
        "select name from sqlite_master where type = 'index' and name like 'alert_%' \
         order by name",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
        [
            "alert_events_alert",
            "alert_events_bucket",
            "alert_outbox_due"
        ],
        "sqlite: indexes after 0004"
    );
    Ok(())
}

#[tokio::test]
async fn postgres_register_gains_alert_tables() -> Result<(), BoxError> {
    let db = TempDb::create("migrate4").await?;
    let result = async {
        let e = {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            before_0004(sqlx::migrate!("migrations/postgres"))
                .run(&pool)
                .await?;
            let e = write_before_0004!(&pool);
            pool.close().await;
            e
        };
        let store = Store::connect(&db.url).await?;
        after_0004(&store, &e).await?;
        store.close().await;

        let pool = sqlx::PgPool::connect(&db.url).await?;
        let not_c: Vec<(String, String)> = sqlx::query_as(
            "select table_name::text, column_name::text from information_schema.columns \
             where table_name in ('alert_events', 'alert_outbox') and data_type = 'text' \
             and column_name not in ('last_error') \
             and collation_name is distinct from 'C'",
        )
        .fetch_all(&pool)
        .await?;
        assert!(
            not_c.is_empty(),
            "postgresql: keys not in collation \"C\": {not_c:?}"
        );
        let indexes: Vec<(String,)> = sqlx::query_as(
            "select indexname::text from pg_indexes \
             where tablename in ('alert_events', 'alert_outbox') order by indexname",
        )
        .fetch_all(&pool)
        .await?;
        assert_eq!(
            indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
            [
                "alert_events_alert",
                "alert_events_bucket",
                "alert_events_pkey",
                "alert_outbox_due",
                "alert_outbox_pkey"
            ],
            "postgresql: indexes after 0004"
        );
        pool.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
