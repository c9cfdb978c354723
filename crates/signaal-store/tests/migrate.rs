//! A register written by the previous store (migrations 0001–0002, its own statements) survives
//! `Store::connect`, which runs the migrations since: every row is still there and readable, and
//! new writes and replays behave, on both backends.

mod common;

use std::borrow::Cow;

use common::{envelope, minute, BoxError, TempDb};
use signaal_core::{Alert, Channel, ClassifiedEnvelope};
use signaal_store::Store;
use sqlx::migrate::Migrator;
use sqlx::types::Json;

/// The migrator as it was before 0003.
fn before_0003(all: Migrator) -> Migrator {
    let old: Vec<_> = all
        .migrations
        .iter()
        .filter(|m| m.version <= 2)
        .cloned()
        .collect();
    assert_eq!(old.len(), 2, "migrations 0001 and 0002 are embedded");
    Migrator {
        migrations: Cow::Owned(old),
        ..all
    }
}

fn register() -> (Vec<ClassifiedEnvelope>, Alert) {
    let batch = vec![
        envelope(
            Channel::Email,
            "m1",
            0,
            None,
            &["unclear_communication", "reachability"],
        ),
        envelope(Channel::Phone, "c1", 10, Some("a_x"), &["reachability"]),
        envelope(Channel::Phone, "c2", 20, Some("a_x"), &["handoffs"]),
        envelope(Channel::Twitter, "t1", 30, Some("@someone"), &[]),
    ];
    let alert = Alert {
        id: Alert::id_for("reachability", minute(0)),
        theme: "reachability".into(),
        window_start: minute(0),
        window_end: minute(60),
        count: 2,
        threshold: 2,
        raised_at: minute(61),
        sample_signal_ids: vec![batch[0].signal.id.clone(), batch[1].signal.id.clone()],
    };
    (batch, alert)
}

/// The previous store's writes, statement for statement: multi-row inserts of signals, then of
/// the new signals' theme rows, the alert, and cursor upserts.
macro_rules! write_as_before {
    ($pool:expr, $batch:expr, $alert:expr) => {{
        let pool = $pool;
        let mut tx = pool.begin().await?;
        let mut q = sqlx::QueryBuilder::new(
            "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
             classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
             sentiment, escalation, classifier) ",
        );
        q.push_values($batch, |mut b, env| {
            let s = &env.signal;
            let c = &env.classification;
            b.push_bind(&s.id)
                .push_bind(s.channel.as_str())
                .push_bind(&s.source)
                .push_bind(&s.source_id)
                .push_bind(s.occurred_at)
                .push_bind(s.received_at)
                .push_bind(env.classified_at)
                .push_bind(&s.author)
                .push_bind(&s.subject)
                .push_bind(&s.thread_id)
                .push_bind(&s.text)
                .push_bind(Json(&s.meta))
                .push_bind(Json(&c.themes))
                .push_bind(c.cause.as_str())
                .push_bind(c.kind.as_str())
                .push_bind(&c.lang)
                .push_bind(c.sentiment)
                .push_bind(Json(&c.escalation))
                .push_bind(&env.classifier);
        });
        q.push(" on conflict (id) do nothing returning id");
        let new: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
        assert_eq!(new.len(), $batch.len());
        let tags: Vec<(&str, &str, f32, i64)> = $batch
            .iter()
            .flat_map(|env| {
                env.classification.themes.iter().map(move |t| {
                    (
                        env.signal.id.as_str(),
                        t.id.as_str(),
                        t.score,
                        env.signal.occurred_at.timestamp_millis(),
                    )
                })
            })
            .collect();
        let mut q =
            sqlx::QueryBuilder::new("insert into signal_themes (signal_id, theme, score, occurred_ms) ");
        q.push_values(&tags, |mut b, (id, theme, score, ms)| {
            b.push_bind(*id)
                .push_bind(*theme)
                .push_bind(*score)
                .push_bind(*ms);
        });
        q.push(" on conflict (signal_id, theme) do nothing");
        q.build().execute(&mut *tx).await?;
        tx.commit().await?;
        let alert: &Alert = $alert;
        sqlx::query(
            "insert into alerts (id, theme, window_start, window_end, count, threshold, \
             raised_at, sample_signal_ids) values ($1, $2, $3, $4, $5, $6, $7, $8) \
             on conflict (id) do nothing",
        )
        .bind(&alert.id)
        .bind(&alert.theme)
        .bind(alert.window_start)
        .bind(alert.window_end)
        .bind(alert.count as i64)
        .bind(alert.threshold as i64)
        .bind(alert.raised_at)
        .bind(Json(&alert.sample_signal_ids))
        .execute(pool)
        .await?;
        for (key, value) in [("INBOX", "7:12"), ("Archief", "3:1")] {
            sqlx::query(
                "insert into source_cursors (source, key, value, updated_at) \
                 values ($1, $2, $3, $4) on conflict (source, key) do update set value = excluded.value, \
                 updated_at = excluded.updated_at",
            )
            .bind("imap")
            .bind(key)
            .bind(value)
            .bind(minute(62))
            .execute(pool)
            .await?;
        }
    }};
}

/// What must hold after the migration, on either backend.
async fn still_there(
    store: &Store,
    batch: &[ClassifiedEnvelope],
    alert: &Alert,
) -> Result<(), BoxError> {
    let backend = store.backend();
    let mut ids: Vec<String> = batch.iter().map(|e| e.signal.id.clone()).collect();
    ids.sort();
    assert_eq!(
        store.signal_ids().await?,
        ids,
        "{backend}: every signal kept"
    );
    let report = store.report().await?;
    assert_eq!(
        report.by_theme,
        vec![
            ("reachability".to_string(), 2),
            ("handoffs".to_string(), 1),
            ("unclear_communication".to_string(), 1)
        ],
        "{backend}: every theme row kept"
    );
    let mut reach = vec![batch[0].signal.id.clone(), batch[1].signal.id.clone()];
    reach.sort();
    assert_eq!(
        store
            .theme_signal_ids("reachability", minute(0), minute(60))
            .await?,
        reach,
        "{backend}: theme window over migrated rows"
    );
    assert_eq!(
        store.alerts().await?,
        vec![alert.clone()],
        "{backend}: alert kept"
    );
    assert_eq!(
        store.get_cursor("imap", "INBOX").await?.as_deref(),
        Some("7:12"),
        "{backend}: cursor kept"
    );
    assert_eq!(store.cursors("imap").await?.len(), 2, "{backend}");
    // 0006 rolled the old register up: every signal in the volume, every theme row per theme.
    let days = signaal_store::analysis::Filter {
        from_day: signaal_store::analysis::day_of(minute(0)) - 1,
        to_day: signaal_store::analysis::day_of(minute(60)) + 1,
        ..Default::default()
    };
    assert_eq!(
        store.rollup_total(&days).await?,
        batch.len() as u64,
        "{backend}: the volume rolled up"
    );
    let mut themes: Vec<(Option<String>, u64)> = store
        .rollup_counts(signaal_store::analysis::Dimension::Theme, &days)
        .await?
        .into_iter()
        .map(|k| (k.theme, k.signals))
        .collect();
    themes.sort();
    assert_eq!(
        themes,
        vec![
            (Some("handoffs".to_string()), 1),
            (Some("reachability".to_string()), 2),
            (Some("unclear_communication".to_string()), 1)
        ],
        "{backend}: theme rows rolled up"
    );
    assert_eq!(
        store
            .author_times(
                "phone",
                &["a_x".to_string(), "@someone".to_string()],
                minute(0)
            )
            .await?,
        vec![
            ("a_x".to_string(), minute(10)),
            ("a_x".to_string(), minute(20))
        ],
        "{backend}: author times over migrated rows"
    );

    // Replays of what the old store wrote collapse, theme rows included; a new signal is added.
    assert_eq!(store.save_classified(batch).await?, 0, "{backend}: replay");
    let mut replay = batch[0].clone();
    replay.classification.themes.push(signaal_core::ThemeTag {
        id: "payment".into(),
        score: 1.0,
        evidence: vec![],
    });
    assert_eq!(
        store.save_classified(&[replay]).await?,
        0,
        "{backend}: replay with other themes"
    );
    let fresh = envelope(Channel::Phone, "c3", 30, Some("a_x"), &["reachability"]);
    assert_eq!(
        store
            .save_classified(&[fresh.clone(), batch[1].clone()])
            .await?,
        1,
        "{backend}: new signal next to a replay"
    );
    assert_eq!(
        store.report().await?.by_theme[0],
        ("reachability".to_string(), 3),
        "{backend}: only the new signal's theme row was added"
    );
    assert_eq!(
        store.rollup_total(&days).await?,
        batch.len() as u64 + 1,
        "{backend}: the rollup gained the new signal only"
    );
    assert!(
        store
            .report()
            .await?
            .by_theme
            .iter()
            .all(|(t, _)| t != "payment"),
        "{backend}: a replay adds no theme row"
    );
    assert!(
        !store.save_alert(alert).await?,
        "{backend}: replayed alert collapses"
    );
    Ok(())
}

#[tokio::test]
async fn sqlite_register_survives_migration() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let (batch, alert) = register();
    {
        let opts = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url)?
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await?;
        before_0003(sqlx::migrate!("migrations/sqlite"))
            .run(&pool)
            .await?;
        write_as_before!(&pool, &batch, &alert);
        pool.close().await;
    }
    let store = Store::connect(&url).await?;
    still_there(&store, &batch, &alert).await?;
    store.close().await;

    let pool = sqlx::SqlitePool::connect(&url).await?;
    let fks: Vec<(i64,)> =
        sqlx::query_as("select id from pragma_foreign_key_list('signal_themes')")
            .fetch_all(&pool)
            .await?;
    assert!(fks.is_empty(), "sqlite: signal_themes has no foreign key");
    let indexes: Vec<(String,)> = sqlx::query_as(
        "select name from sqlite_master where type = 'index' and name like 'sig%' order by name",
    )
    .fetch_all(&pool)
    .await?;
    assert_eq!(
        indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
        [
            "signal_subjects_subject_time",
            "signal_themes_theme_time",
            "signals_author_time",
            "signals_time"
        ],
        "sqlite: indexes after 0003 (0005's on subjects, 0007's on time)"
    );
    let check: (String,) = sqlx::query_as("pragma integrity_check")
        .fetch_one(&pool)
        .await?;
    assert_eq!(check.0, "ok");
    Ok(())
}

#[tokio::test]
async fn postgres_register_survives_migration() -> Result<(), BoxError> {
    let db = TempDb::create("migrate").await?;
    let result = async {
        let (batch, alert) = register();
        {
            let pool = sqlx::PgPool::connect(&db.url).await?;
            before_0003(sqlx::migrate!("migrations/postgres"))
                .run(&pool)
                .await?;
            write_as_before!(&pool, &batch, &alert);
            pool.close().await;
        }
        let store = Store::connect(&db.url).await?;
        still_there(&store, &batch, &alert).await?;
        store.close().await;

        let pool = sqlx::PgPool::connect(&db.url).await?;
        let not_c: Vec<(String, String)> = sqlx::query_as(
            "select table_name::text, column_name::text from information_schema.columns \
             where (table_name, column_name) in (('signals', 'id'), ('signals', 'author'), \
             ('signal_themes', 'signal_id'), ('signal_themes', 'theme'), ('alerts', 'id'), \
             ('source_cursors', 'source'), ('source_cursors', 'key')) \
             and collation_name is distinct from 'C'",
        )
        .fetch_all(&pool)
        .await?;
        assert!(not_c.is_empty(), "postgresql: keys not in collation \"C\": {not_c:?}");
        let fks: (i64,) = sqlx::query_as(
            "select count(*) from pg_constraint where contype = 'f' \
             and conrelid = 'signal_themes'::regclass",
        )
        .fetch_one(&pool)
        .await?;
        assert_eq!(fks.0, 0, "postgresql: signal_themes has no foreign key");
        let indexes: Vec<(String,)> = sqlx::query_as(
            "select indexname::text from pg_indexes where tablename in ('signals', 'signal_themes') \
             order by indexname",
        )
        .fetch_all(&pool)
        .await?;
        assert_eq!(
            indexes.into_iter().map(|(n,)| n).collect::<Vec<_>>(),
            [
                "signal_themes_theme_time",
                "signals_author_time",
                "signals_pkey",
                "signals_time"
            ],
            "postgresql: indexes after 0003 (and 0007's on time)"
        );
        pool.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
