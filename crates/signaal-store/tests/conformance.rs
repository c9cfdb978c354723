//! One conformance suite, run against SQLite and PostgreSQL.
//!
//! PostgreSQL comes from `SIGNAAL_TEST_DATABASE_URL` (set by `scripts/test`, which starts a
//! throwaway cluster); each run creates a database of its own. Without it the PostgreSQL test
//! fails and says how to provide one: a skipped backend would hide a broken store.

use chrono::{TimeZone, Utc};
use signaal_core::{
    Alert, Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, ThemeTag,
};
use signaal_store::Store;

mod common;

fn envelope(source_id: &str, minute: i64, themes: &[&str]) -> ClassifiedEnvelope {
    let t = Utc
        .timestamp_opt(1_800_000_000 + minute * 60, 0)
        .single()
        .unwrap_or_default();
    let mut s = Signal::new(
        Channel::Email,
        "inbox",
        source_id,
        t,
        "De brief snapt niemand",
    );
    s.subject = Some("WOZ".into());
    s.meta.insert("to".into(), "klachten@example.nl".into());
    let c = Classification {
        themes: themes
            .iter()
            .map(|id| ThemeTag {
                id: id.to_string(),
                score: 0.5,
                evidence: vec![],
            })
            .collect(),
        subjects: vec![],
        cause: if themes.is_empty() {
            Cause::Unknown
        } else {
            Cause::System
        },
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.4,
        escalation: vec!["ombudsman".into()],
        impact: None,
    };
    ClassifiedEnvelope::new(s, c, "test")
}

async fn conformance(store: Store) -> Result<(), Box<dyn std::error::Error>> {
    let backend = store.backend();
    let a = envelope("a", 0, &["unclear_communication", "reachability"]);
    let b = envelope("b", 5, &["reachability"]);
    let c = envelope("c", 90, &[]);
    assert_eq!(
        store.save_classified(&[a.clone(), b.clone()]).await?,
        2,
        "{backend}: two new rows"
    );
    // A replay, mixed with one new signal, adds only the new one.
    assert_eq!(
        store
            .save_classified(&[a.clone(), c.clone(), b.clone()])
            .await?,
        1,
        "{backend}: replay collapses"
    );
    assert_eq!(store.count_signals().await?, 3, "{backend}");
    // The same signal twice in one batch (a replay inside one poll) is one row, and a theme
    // tagged twice is one theme row (theme rows have no unique key to fall back on).
    let d = envelope("d", 7, &["payment", "payment"]);
    assert_eq!(
        store.save_classified(&[d.clone(), d.clone()]).await?,
        1,
        "{backend}: duplicate within a batch"
    );
    assert_eq!(store.count_signals().await?, 4, "{backend}");
    let mut ids = vec![
        a.signal.id.clone(),
        b.signal.id.clone(),
        c.signal.id.clone(),
        d.signal.id.clone(),
    ];
    ids.sort();
    assert_eq!(store.signal_ids().await?, ids, "{backend}");
    // A retweet is stored but is no customer of its own: no theme rows, so the window below
    // (and every Pareto list) leaves it out.
    let mut rt = envelope("rt", 10, &["reachability"]);
    rt.signal
        .meta
        .insert("retweet_of".into(), serde_json::Value::from("a"));
    assert_eq!(store.save_classified(&[rt]).await?, 1, "{backend}: retweet");
    assert_eq!(store.count_signals().await?, 5, "{backend}");

    let from = a.signal.occurred_at;
    let in_window = store
        .theme_signal_ids("reachability", from, from + chrono::Duration::minutes(60))
        .await?;
    let mut want = vec![a.signal.id.clone(), b.signal.id.clone()];
    want.sort();
    assert_eq!(in_window, want, "{backend}: theme window query");
    assert!(store
        .theme_signal_ids(
            "reachability",
            from + chrono::Duration::minutes(6),
            from + chrono::Duration::minutes(60)
        )
        .await?
        .is_empty());

    assert_eq!(store.get_cursor("imap", "INBOX").await?, None, "{backend}");
    store.set_cursor("imap", "INBOX", "1:10").await?;
    store
        .set_cursors(
            "imap",
            &[
                ("INBOX".into(), "1:12".into()),
                ("Archive".into(), "7:3".into()),
            ],
        )
        .await?;
    assert_eq!(
        store.get_cursor("imap", "INBOX").await?.as_deref(),
        Some("1:12"),
        "{backend}: cursor upsert"
    );
    assert_eq!(store.cursors("imap").await?.len(), 2, "{backend}");
    assert!(store.cursors("other").await?.is_empty());

    let alert = Alert {
        id: Alert::id_for("reachability", from),
        theme: "reachability".into(),
        window_start: from,
        window_end: from + chrono::Duration::hours(1),
        count: 2,
        threshold: 2,
        raised_at: Utc::now(),
        sample_signal_ids: want.clone(),
    };
    assert!(
        store.save_alert(&alert).await?,
        "{backend}: first alert stored"
    );
    assert!(
        !store.save_alert(&alert).await?,
        "{backend}: replayed alert collapses"
    );
    assert!(store.alert_exists(&alert.id).await?);
    let stored = store.alerts().await?;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].sample_signal_ids, want);
    assert_eq!(
        stored[0].window_start, alert.window_start,
        "{backend}: timestamps round-trip"
    );

    let report = store.report().await?;
    assert_eq!(report.total, 5, "{backend}: the retweet is in the register");
    assert_eq!(
        report.by_theme,
        vec![
            ("reachability".to_string(), 2),
            ("payment".to_string(), 1),
            ("unclear_communication".to_string(), 1)
        ],
        "{backend}: pareto order, the retweet not counted"
    );
    assert_eq!(
        report.by_cause,
        vec![("system".to_string(), 4), ("unknown".to_string(), 1)]
    );
    assert_eq!(report.by_channel, vec![("email".to_string(), 5)]);

    // The repeat-caller lookup: by author and channel, from a time on, oldest first.
    let mut calls = Vec::new();
    for (id, minute, author) in [("p1", 0, "a_x"), ("p2", 60, "a_y"), ("p3", 120, "a_x")] {
        let mut e = envelope(id, minute, &[]);
        e.signal = Signal::new(Channel::Phone, "cc", id, e.signal.occurred_at, "");
        e.signal.author = Some(author.into());
        calls.push(e);
    }
    store.save_classified(&calls).await?;
    let at = |minute: i64| {
        Utc.timestamp_opt(1_800_000_000 + minute * 60, 0)
            .single()
            .unwrap_or_default()
    };
    let times = store
        .author_times("phone", &["a_x".to_string(), "a_z".to_string()], at(0))
        .await?;
    assert_eq!(
        times,
        vec![("a_x".to_string(), at(0)), ("a_x".to_string(), at(120))],
        "{backend}: author times"
    );
    let later = store
        .author_times("phone", &["a_x".to_string()], at(1))
        .await?;
    assert_eq!(
        later,
        vec![("a_x".to_string(), at(120))],
        "{backend}: since"
    );
    assert!(store
        .author_times("email", &["a_x".to_string()], at(0))
        .await?
        .is_empty());
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn sqlite_conforms() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    conformance(Store::connect(&url).await?).await?;
    // Migrations are idempotent: reconnecting to the same file works and keeps the rows.
    assert_eq!(Store::connect(&url).await?.count_signals().await?, 8);
    Ok(())
}

#[tokio::test]
async fn postgres_conforms() -> Result<(), Box<dyn std::error::Error>> {
    let db = common::TempDb::create("conformance").await?;
    let result = conformance(Store::connect(&db.url).await?).await;
    db.drop().await?;
    result
}

#[tokio::test]
async fn bad_urls_say_what_is_wrong() {
    let err = Store::connect("mysql://u:secret@h/db")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("invalid database url `mysql://u:***@h/db`: unsupported scheme")
            && !err.contains("secret"),
        "{err}"
    );
}
