//! Reclassification on SQLite and PostgreSQL: a register filled with one classification and then
//! given another through `replace_classifications` holds exactly what a register filled with the
//! second classification from the start holds — signal rows, theme and subject rows, the daily
//! rollup and the counts per classifier version — and a second run replaces nothing.

mod common;

use common::{envelope, BoxError, TempDb};
use signaal_core::{Cause, Channel, ClassifiedEnvelope, Evidence, Kind, SubjectTag};
use signaal_store::Store;

const THEMES: [&str; 4] = [
    "digital_service",
    "reachability",
    "staff_conduct",
    "payment",
];
const SUBJECTS: [&str; 3] = ["digid", "woz_assessment", "parking_permit"];

/// Signal `i` as version `version` classified it: themes, subjects, cause, kind and impact
/// drawn from `i` and the version, so the two versions disagree on most signals.
fn classified(i: usize, version: usize) -> ClassifiedEnvelope {
    let channel = [
        Channel::Email,
        Channel::Phone,
        Channel::Twitter,
        Channel::Facebook,
    ][i % 4];
    let pick = |n: usize| (i * (7 + version * 5) + version * 3 + n) % 11;
    let themes: Vec<&str> = (0..pick(0) % 3)
        .map(|k| THEMES[(pick(k) + k) % THEMES.len()])
        .collect();
    let mut env = envelope(
        channel,
        &format!("s{i}"),
        // Spread over 40 days, several signals per minute.
        i64::try_from(i * 97 % 57_600).unwrap_or(0),
        Some(&format!("a{}", i % 37)),
        &themes,
    );
    let c = &mut env.classification;
    c.subjects = (0..pick(1) % 3)
        .map(|k| SubjectTag {
            id: SUBJECTS[(pick(k + 2) + k) % SUBJECTS.len()].to_string(),
            evidence: vec![Evidence::words(0, 2, "De".into())],
        })
        .collect();
    c.cause = [Cause::Human, Cause::System, Cause::Mixed][pick(3) % 3];
    c.kind = [Kind::Complaint, Kind::Question, Kind::Suggestion][pick(4) % 3];
    c.impact = (pick(5) % 4 != 0).then_some(pick(6) as f32 * 0.7);
    c.sentiment = -0.1 * pick(7) as f32;
    if i.is_multiple_of(29) {
        env.signal
            .meta
            .insert("retweet_of".into(), serde_json::Value::from("s0"));
    }
    env.classifier = format!("taxonomy-v{version}");
    env
}

type RollupRow = (i64, i64, String, String, String, String, String, i64, f64);
type DayRow = (i64, i64, String, String, i64, f64);

/// `signal_rollup_days` holds `signal_rollup` summed over channel, cause and kind.
fn days_sum_the_rollup(backend: &str, rollup: &[RollupRow], days: &[DayRow]) {
    let mut sums: std::collections::BTreeMap<(i64, i64, String, String), (i64, f64)> =
        std::collections::BTreeMap::new();
    for r in rollup {
        let e = sums
            .entry((r.0, r.1, r.2.clone(), r.3.clone()))
            .or_default();
        e.0 += r.7;
        e.1 += r.8;
    }
    assert_eq!(sums.len(), days.len(), "{backend}: rollup days");
    for ((key, (n, impact)), d) in sums.iter().zip(days) {
        assert_eq!(key, &(d.0, d.1, d.2.clone(), d.3.clone()), "{backend}");
        assert_eq!(*n, d.4, "{backend}: {key:?}");
        assert!((impact - d.5).abs() < 1e-3, "{backend}: {key:?}");
    }
}

/// Everything the analysis reads, in key order.
macro_rules! snapshot {
    ($pool:expr) => {{
        let pool = $pool;
        let rollup: Vec<RollupRow> = sqlx::query_as(
            "select cast(grain as bigint), cast(day as bigint), theme, subject, channel, cause, \
             kind, cast(signals as bigint), cast(impact_sum as double precision) \
             from signal_rollup order by 1, 2, 3, 4, 5, 6, 7",
        )
        .fetch_all(pool)
        .await?;
        let themes: Vec<(String, String, i64)> =
            sqlx::query_as("select signal_id, theme, occurred_ms from signal_themes order by 1, 2")
                .fetch_all(pool)
                .await?;
        let subjects: Vec<(String, String, i64)> = sqlx::query_as(
            "select signal_id, subject, occurred_ms from signal_subjects order by 1, 2",
        )
        .fetch_all(pool)
        .await?;
        let signals: Vec<(String, String, String, String, Option<f32>, String)> = sqlx::query_as(
            "select id, cause, kind, classifier, impact, cast(subjects as text) from signals \
             order by id",
        )
        .fetch_all(pool)
        .await?;
        let versions: Vec<(i64, String, i64)> = sqlx::query_as(
            "select cast(day as bigint), classifier, cast(signals as bigint) \
             from classifier_days order by 1, 2",
        )
        .fetch_all(pool)
        .await?;
        let days: Vec<DayRow> = sqlx::query_as(
            "select cast(grain as bigint), cast(day as bigint), theme, subject, \
             cast(signals as bigint), cast(impact_sum as double precision) \
             from signal_rollup_days order by 1, 2, 3, 4",
        )
        .fetch_all(pool)
        .await?;
        (rollup, themes, subjects, signals, versions, days)
    }};
}

/// Rollup rows equal up to float rounding of the impact sums (subtracting and adding again).
fn same_rollup(backend: &str, got: &[RollupRow], want: &[RollupRow]) {
    assert_eq!(got.len(), want.len(), "{backend}: rollup rows");
    for (g, w) in got.iter().zip(want) {
        let key = |r: &RollupRow| {
            (
                r.0,
                r.1,
                r.2.clone(),
                r.3.clone(),
                r.4.clone(),
                r.5.clone(),
                r.6.clone(),
                r.7,
            )
        };
        assert_eq!(key(g), key(w), "{backend}: rollup row");
        assert!(
            (g.8 - w.8).abs() < 1e-3,
            "{backend}: impact sum {g:?} against {w:?}"
        );
    }
}

const N: usize = 1_300;

macro_rules! conformance {
    ($moved:expr, $moved_pool:expr, $direct:expr, $direct_pool:expr) => {{
        let (moved, direct): (&Store, &Store) = ($moved, $direct);
        let backend = moved.backend();
        let old: Vec<ClassifiedEnvelope> = (0..N).map(|i| classified(i, 1)).collect();
        let new: Vec<ClassifiedEnvelope> = (0..N).map(|i| classified(i, 2)).collect();
        let changed = old
            .iter()
            .zip(&new)
            .filter(|(o, n)| o.classification != n.classification)
            .count();
        assert!(
            changed > N / 2,
            "the versions disagree on most signals: {changed}"
        );
        moved.save_classified(&old).await?;
        direct.save_classified(&new).await?;
        assert_eq!(
            moved.classifier_versions(0, i64::MAX).await?,
            vec![signaal_store::analysis::VersionCount {
                classifier: "taxonomy-v1".into(),
                signals: N as u64
            }],
            "{backend}"
        );

        // Read back in pages as the command does, then replaced.
        let mut after = None;
        let mut stored = Vec::new();
        loop {
            let page = moved
                .stored_signals(chrono::DateTime::UNIX_EPOCH, after.as_ref(), 400)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some((last.signal.occurred_at, last.signal.id.clone()));
            stored.extend(page);
        }
        assert_eq!(stored.len(), N, "{backend}: every signal read once");
        let by_id: std::collections::HashMap<&str, &ClassifiedEnvelope> =
            new.iter().map(|e| (e.signal.id.as_str(), e)).collect();
        let pairs: Vec<(ClassifiedEnvelope, ClassifiedEnvelope)> = stored
            .into_iter()
            .map(|s| {
                let n = (*by_id.get(s.signal.id.as_str()).ok_or("id")?).clone();
                Ok::<_, BoxError>((s, n))
            })
            .collect::<Result<_, _>>()?;
        assert_eq!(
            pairs
                .iter()
                .filter(|(s, _)| s.classification.subjects.is_empty())
                .count(),
            old.iter()
                .filter(|e| e.classification.subjects.is_empty())
                .count(),
            "{backend}: subjects read back"
        );
        let mut replaced = 0;
        for chunk in pairs.chunks(700) {
            replaced += moved.replace_classifications(chunk).await?;
        }
        assert_eq!(replaced, N as u64, "{backend}: all replaced");

        // What reports read first (PostgreSQL's writers leave counts pending).
        moved.settle_counts().await?;
        direct.settle_counts().await?;
        let (got, want) = (snapshot!($moved_pool), snapshot!($direct_pool));
        same_rollup(backend, &got.0, &want.0);
        days_sum_the_rollup(backend, &want.0, &want.5);
        days_sum_the_rollup(backend, &got.0, &got.5);
        assert_eq!(got.1, want.1, "{backend}: theme rows");
        assert_eq!(got.2, want.2, "{backend}: subject rows");
        assert_eq!(got.3, want.3, "{backend}: signal rows");
        assert_eq!(got.4, want.4, "{backend}: counts per day and version");
        assert_eq!(
            moved.classifier_versions(0, i64::MAX).await?,
            direct.classifier_versions(0, i64::MAX).await?,
            "{backend}"
        );

        // Again with the same pairs: nothing carries the old version any more.
        assert_eq!(
            moved.replace_classifications(&pairs).await?,
            0,
            "{backend}: a second run replaces nothing"
        );
        moved.settle_counts().await?;
        let again = snapshot!($moved_pool);
        same_rollup(backend, &again.0, &want.0);
        assert_eq!(again.4, want.4, "{backend}");
    }};
}

#[tokio::test]
async fn sqlite_reclassified_register_equals_one_classified_so() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let (a, b) = (
        format!("sqlite:{}", dir.path().join("moved.db").display()),
        format!("sqlite:{}", dir.path().join("direct.db").display()),
    );
    let (moved, direct) = (Store::connect(&a).await?, Store::connect(&b).await?);
    let (pa, pb) = (
        sqlx::SqlitePool::connect(&a).await?,
        sqlx::SqlitePool::connect(&b).await?,
    );
    conformance!(&moved, &pa, &direct, &pb);
    Ok(())
}

#[tokio::test]
async fn postgres_reclassified_register_equals_one_classified_so() -> Result<(), BoxError> {
    let (da, db) = (
        TempDb::create("reclass_moved").await?,
        TempDb::create("reclass_direct").await?,
    );
    let result = async {
        let (moved, direct) = (
            Store::connect(&da.url).await?,
            Store::connect(&db.url).await?,
        );
        let (pa, pb) = (
            sqlx::PgPool::connect(&da.url).await?,
            sqlx::PgPool::connect(&db.url).await?,
        );
        conformance!(&moved, &pa, &direct, &pb);
        pa.close().await;
        pb.close().await;
        moved.close().await;
        direct.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    da.drop().await?;
    db.drop().await?;
    result
}

/// PostgreSQL's writers append count deltas that settling adds up: four writers storing
/// overlapping batches at once (every signal twice, as a replay would), while a fifth handle
/// settles over and over, end with exactly the counts of one writer storing each signal once.
#[tokio::test]
async fn postgres_concurrent_writers_and_settling_count_each_signal_once() -> Result<(), BoxError> {
    let (da, db) = (
        TempDb::create("counts_concurrent").await?,
        TempDb::create("counts_serial").await?,
    );
    let result = async {
        let (busy, serial) = (
            Store::connect(&da.url).await?,
            Store::connect(&db.url).await?,
        );
        let all: Vec<ClassifiedEnvelope> = (0..N).map(|i| classified(i, 1)).collect();
        serial.save_classified(&all).await?;
        serial.settle_counts().await?;

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let settler = {
            let (store, stop) = (busy.clone(), std::sync::Arc::clone(&stop));
            tokio::spawn(async move {
                let mut rounds = 0u32;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    store.settle_counts().await?;
                    rounds += 1;
                }
                Ok::<_, signaal_store::StoreError>(rounds)
            })
        };
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let store = busy.clone();
                // Writers 0 and 2 store the even batches of 50, 1 and 3 the odd ones: every
                // batch is written twice, at about the same time.
                let batches: Vec<Vec<ClassifiedEnvelope>> = (0..N)
                    .collect::<Vec<_>>()
                    .chunks(50)
                    .enumerate()
                    .filter(|(k, _)| k % 2 == w % 2)
                    .map(|(_, ids)| ids.iter().map(|&i| classified(i, 1)).collect())
                    .collect();
                tokio::spawn(async move {
                    let mut new = 0u64;
                    for b in &batches {
                        new += store.save_classified(b).await?;
                    }
                    Ok::<_, signaal_store::StoreError>(new)
                })
            })
            .collect();
        let mut new = 0;
        for w in writers {
            new += w.await??;
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let rounds = settler.await??;
        assert!(rounds > 1, "the settler ran while the writers wrote");
        assert_eq!(new, N as u64, "every signal stored once");
        busy.settle_counts().await?;

        let (pa, pb) = (
            sqlx::PgPool::connect(&da.url).await?,
            sqlx::PgPool::connect(&db.url).await?,
        );
        let (got, want) = (snapshot!(&pa), snapshot!(&pb));
        assert!(!want.0.is_empty());
        same_rollup("postgresql", &got.0, &want.0);
        days_sum_the_rollup("postgresql", &got.0, &got.5);
        assert_eq!(got.4, want.4, "counts per day and version");
        let pending: i64 = sqlx::query_scalar(
            "select (select count(*) from signal_rollup_pending) \
             + (select count(*) from classifier_days_pending)",
        )
        .fetch_one(&pa)
        .await?;
        assert_eq!(pending, 0, "nothing left pending after settling");
        pa.close().await;
        pb.close().await;
        busy.close().await;
        serial.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    da.drop().await?;
    db.drop().await?;
    result
}
