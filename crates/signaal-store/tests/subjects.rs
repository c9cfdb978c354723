//! Subject rows (`signal_subjects`, migration 0005), on SQLite and PostgreSQL: written with their
//! signal in `save_classified`, once per subject, only for signals the write inserted, never for a
//! repost, so replays add nothing; and a subject's rows over a time range are read from the index.

mod common;

use common::{envelope, minute, BoxError, TempDb};
use signaal_core::{Channel, ClassifiedEnvelope, Evidence, SubjectTag};
use signaal_store::Store;

/// A classified email at `at` minutes about `subjects` (and one theme, so theme rows are written
/// next to subject rows).
fn about(source_id: &str, at: i64, subjects: &[&str]) -> ClassifiedEnvelope {
    let mut env = envelope(Channel::Email, source_id, at, None, &["digital_service"]);
    env.classification.subjects = subjects
        .iter()
        .map(|id| SubjectTag {
            id: id.to_string(),
            evidence: vec![Evidence::words(0, 2, "De".into())],
        })
        .collect();
    env
}

type Row = (String, String, i64);

/// Every subject row, in index order.
const ROWS: &str =
    "select signal_id, subject, occurred_ms from signal_subjects order by subject, occurred_ms, signal_id";

/// A subject's signals in a time range, as the analysis asks.
const RANGE: &str = "select count(distinct signal_id) from signal_subjects \
     where subject = $1 and occurred_ms >= $2 and occurred_ms < $3";

fn row(env: &ClassifiedEnvelope, subject: &str) -> Row {
    (
        env.signal.id.clone(),
        subject.to_string(),
        env.signal.occurred_at.timestamp_millis(),
    )
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| (&a.1, a.2, &a.0).cmp(&(&b.1, b.2, &b.0)));
    rows
}

/// The writes, on either backend; `rows` reads the table back.
macro_rules! conformance {
    ($store:expr, $pool:expr) => {{
        let store: &Store = $store;
        let pool = $pool;
        let backend = store.backend();
        let a = about("a", 0, &["digid", "customer_portal"]);
        let b = about("b", 5, &["digid", "digid"]);
        let c = about("c", 6, &[]);
        let d = about("d", 7, &["woz_assessment"]);
        let mut rt = about("rt", 8, &["digid"]);
        rt.signal
            .meta
            .insert("retweet_of".into(), serde_json::Value::from("a"));
        assert_eq!(
            store
                .save_classified(&[
                    a.clone(),
                    b.clone(),
                    c.clone(),
                    rt.clone(),
                    d.clone(),
                    d.clone()
                ])
                .await?,
            5,
            "{backend}: five new signals"
        );
        let want = sorted(vec![
            row(&a, "customer_portal"),
            row(&a, "digid"),
            row(&b, "digid"),
            row(&d, "woz_assessment"),
        ]);
        let rows: Vec<Row> = sqlx::query_as(ROWS).fetch_all(pool).await?;
        assert_eq!(
            rows, want,
            "{backend}: one row per signal and subject; none for a repost, none twice for a \
             subject named twice or a signal sent twice in one batch"
        );

        // A replay, even with other subjects, adds no row; a new signal next to it adds its own.
        let mut replay = a.clone();
        replay.classification.subjects.push(SubjectTag {
            id: "premium".into(),
            evidence: vec![],
        });
        let e = about("e", 90, &["digid"]);
        assert_eq!(
            store
                .save_classified(&[replay, b.clone(), e.clone()])
                .await?,
            1,
            "{backend}: replay collapses"
        );
        let rows: Vec<Row> = sqlx::query_as(ROWS).fetch_all(pool).await?;
        let mut want = want;
        want.push(row(&e, "digid"));
        assert_eq!(
            rows,
            sorted(want),
            "{backend}: only the new signal's row was added"
        );
        assert_eq!(
            store.report().await?.by_theme,
            vec![("digital_service".to_string(), 5)],
            "{backend}: theme rows as before, in the same write"
        );

        let (from, to) = (minute(0).timestamp_millis(), minute(60).timestamp_millis());
        let n: (i64,) = sqlx::query_as(RANGE)
            .bind("digid")
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?;
        assert_eq!(
            n.0, 2,
            "{backend}: digid in the first hour: a and b, not the repost"
        );
    }};
}

#[tokio::test]
async fn sqlite_writes_subject_rows_once() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let store = Store::connect(&url).await?;
    let pool = sqlx::SqlitePool::connect(&url).await?;
    conformance!(&store, &pool);

    let plan: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("explain query plan {RANGE}"))
        .bind("digid")
        .bind(0i64)
        .bind(1i64)
        .fetch_all(&pool)
        .await?;
    let plan: Vec<String> = plan.into_iter().map(|(_, _, _, detail)| detail).collect();
    assert!(
        plan.iter().any(|d| d.contains(
            "USING COVERING INDEX signal_subjects_subject_time (subject=? AND occurred_ms>? AND occurred_ms<?)"
        )),
        "sqlite: a subject's range is read from the index alone: {plan:?}"
    );
    pool.close().await;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn postgres_writes_subject_rows_once() -> Result<(), BoxError> {
    let db = TempDb::create("subjects").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let pool = sqlx::PgPool::connect(&db.url).await?;
        conformance!(&store, &pool);

        let not_c: Vec<(String,)> = sqlx::query_as(
            "select column_name::text from information_schema.columns \
             where table_name = 'signal_subjects' and column_name in ('signal_id', 'subject') \
             and collation_name is distinct from 'C'",
        )
        .fetch_all(&pool)
        .await?;
        assert!(
            not_c.is_empty(),
            "postgresql: keys not in collation \"C\": {not_c:?}"
        );
        // Whatever a tiny table would make the planner prefer, the index serves the range.
        let mut conn = pool.acquire().await?;
        sqlx::query("set enable_seqscan = off")
            .execute(&mut *conn)
            .await?;
        let plan: Vec<(String,)> = sqlx::query_as(&format!("explain {RANGE}"))
            .bind("digid")
            .bind(0i64)
            .bind(1i64)
            .fetch_all(&mut *conn)
            .await?;
        let plan: Vec<String> = plan.into_iter().map(|(line,)| line).collect();
        assert!(
            plan.iter()
                .any(|l| l.contains("Index Only Scan using signal_subjects_subject_time")),
            "postgresql: a subject's range is read from the index alone: {plan:#?}"
        );
        drop(conn);
        pool.close().await;
        store.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
