//! The reports on a small register whose answers are known, on SQLite and on PostgreSQL: one
//! conformance suite for both backends (issue 14). The register is written through
//! `Store::save_classified`, as the classifier writes it, so the rollup it keeps is what the
//! reports read.

use std::future::Future;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use signaal_analysis::pdca::Verdict;
use signaal_analysis::{AnalysisConfig, Level, Quadrant};
use signaal_api::reports::{self, Query, Vocabulary};
use signaal_core::{
    Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, SubjectTag, ThemeTag,
};
use signaal_store::analysis::{ActionUpdate, Dimension, NewAction};
use signaal_store::Store;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn at(y: i32, m: u32, d: u32, h: u32) -> Result<DateTime<Utc>, BoxError> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
        .single()
        .ok_or_else(|| "time".into())
}

fn date(y: i32, m: u32, d: u32) -> Result<NaiveDate, BoxError> {
    NaiveDate::from_ymd_opt(y, m, d).ok_or_else(|| "date".into())
}

struct Spec<'a> {
    id: &'a str,
    channel: Channel,
    at: DateTime<Utc>,
    author: &'a str,
    theme: &'a str,
    subject: Option<&'a str>,
    impact: f32,
}

fn envelope(s: &Spec<'_>) -> ClassifiedEnvelope {
    let mut signal = Signal::new(s.channel, "test", s.id, s.at, "tekst");
    signal.author = Some(s.author.to_string());
    let classification = Classification {
        themes: vec![ThemeTag {
            id: s.theme.into(),
            score: 0.5,
            evidence: vec![],
        }],
        subjects: s
            .subject
            .map(|id| SubjectTag {
                id: id.into(),
                evidence: vec![],
            })
            .into_iter()
            .collect(),
        cause: Cause::System,
        kind: Kind::Complaint,
        lang: "nl".into(),
        sentiment: -0.5,
        escalation: vec![],
        impact: Some(s.impact),
    };
    ClassifiedEnvelope::new(signal, classification, "test")
}

/// The register: 10 about payment and the tax bill by phone (8 in January and February, 2 in
/// March), 5 about reachability by email, 3 about DigiD on X by one customer, 2 about staff
/// conduct and the tax bill, 1 about handoffs and a parking permit; a retweet and a replay
/// that count for nothing.
fn register() -> Result<Vec<ClassifiedEnvelope>, BoxError> {
    let mut out = Vec::new();
    let days = [5, 12, 19, 26, 33, 40, 47, 54, 63, 70]; // days after 1 January
    for (i, d) in days.iter().enumerate() {
        let t = at(2026, 1, 1, 10)? + chrono::Duration::days(*d);
        out.push(envelope(&Spec {
            id: &format!("pay{i}"),
            channel: Channel::Phone,
            at: t,
            author: &format!("p{i}"),
            theme: "payment",
            subject: Some("tax_bill"),
            impact: 2.0,
        }));
    }
    for i in 0..5 {
        out.push(envelope(&Spec {
            id: &format!("reach{i}"),
            channel: Channel::Email,
            at: at(2026, 2, 2 + i, 9)?,
            author: &format!("r{i}"),
            theme: "reachability",
            subject: None,
            impact: 1.0,
        }));
    }
    for i in 0..3 {
        out.push(envelope(&Spec {
            id: &format!("digid{i}"),
            channel: Channel::Twitter,
            at: at(2026, 3, 10 + i, 20)?,
            author: "a1",
            theme: "digital_service",
            subject: Some("digid"),
            impact: 6.0,
        }));
    }
    for i in 0..2 {
        out.push(envelope(&Spec {
            id: &format!("staff{i}"),
            channel: Channel::Email,
            at: at(2026, 3, 20 + i, 11)?,
            author: &format!("s{i}"),
            theme: "staff_conduct",
            subject: Some("tax_bill"),
            impact: 8.0,
        }));
    }
    out.push(envelope(&Spec {
        id: "hand0",
        channel: Channel::Phone,
        at: at(2026, 3, 25, 14)?,
        author: "h0",
        theme: "handoffs",
        subject: Some("parking_permit"),
        impact: 9.0,
    }));
    let mut rt = envelope(&Spec {
        id: "rt0",
        channel: Channel::Twitter,
        at: at(2026, 3, 11, 21)?,
        author: "x9",
        theme: "payment",
        subject: Some("tax_bill"),
        impact: 5.0,
    });
    rt.signal
        .meta
        .insert("retweet_of".into(), serde_json::Value::from("1"));
    out.push(rt);
    out.push(out[0].clone());
    Ok(out)
}

fn vocabulary() -> Vocabulary {
    Vocabulary {
        themes: [
            "payment",
            "reachability",
            "digital_service",
            "staff_conduct",
            "handoffs",
        ]
        .map(String::from)
        .into(),
        subjects: ["tax_bill", "digid", "parking_permit"]
            .map(String::from)
            .into(),
    }
}

async fn suite(store: Store) -> Result<(), BoxError> {
    let backend = store.backend();
    let batch = register()?;
    store.save_classified(&batch[..10]).await?;
    store.save_classified(&batch[10..]).await?;
    // A replayed batch adds nothing to the rollup.
    store.save_classified(&batch[..5]).await?;

    let q1 = Query::new(date(2026, 1, 1)?, date(2026, 3, 31)?);
    q1.validate(&vocabulary())?;
    let themes = reports::pareto_report(&store, &q1, Dimension::Theme).await?;
    let rows: Vec<(String, u64, bool)> = themes
        .pareto
        .rows
        .iter()
        .map(|r| (r.key.label(), r.count, r.vital_few))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("payment".into(), 10, true),
            ("reachability".into(), 5, true),
            ("digital_service".into(), 3, true),
            ("staff_conduct".into(), 2, false),
            ("handoffs".into(), 1, false),
        ],
        "{backend}: themes, the retweet and the replay left out, 80 % line after the third"
    );
    assert_eq!(themes.pareto.total, 21);

    let subjects = reports::pareto_report(&store, &q1, Dimension::Subject).await?;
    let rows: Vec<(String, u64)> = subjects
        .pareto
        .rows
        .iter()
        .map(|r| (r.key.label(), r.count))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("tax_bill".into(), 12),
            ("digid".into(), 3),
            ("parking_permit".into(), 1)
        ],
        "{backend}: subjects"
    );

    let mut phone = q1.clone();
    phone.channel = Some("phone".into());
    let by_phone = reports::pareto_report(&store, &phone, Dimension::ThemeSubject).await?;
    let rows: Vec<(String, u64)> = by_phone
        .pareto
        .rows
        .iter()
        .map(|r| (r.key.label(), r.count))
        .collect();
    assert_eq!(
        rows,
        vec![
            ("payment / tax_bill".into(), 10),
            ("handoffs / parking_permit".into(), 1)
        ],
        "{backend}: theme × subject by phone"
    );
    let mut february = Query::new(date(2026, 2, 1)?, date(2026, 2, 28)?);
    february.theme = Some("payment".into());
    let feb = reports::pareto_report(&store, &february, Dimension::Subject).await?;
    assert_eq!(
        feb.pareto.total, 4,
        "{backend}: payment's subjects in February (days 33, 40, 47, 54)"
    );

    let cfg = AnalysisConfig::default();
    let rec = reports::recurrence_report(&store, &cfg.recurrence, &q1).await?;
    let levels: Vec<(String, Level, u64)> = rec
        .theme_subject
        .iter()
        .map(|r| (r.key.label(), r.level, r.count))
        .collect();
    assert_eq!(
        levels,
        vec![
            ("payment / tax_bill".into(), Level::Pattern, 10),
            ("digital_service / digid".into(), Level::Pattern, 3),
            ("staff_conduct / tax_bill".into(), Level::Notable, 2),
            ("handoffs / parking_permit".into(), Level::Coincidence, 1),
        ],
        "{backend}: recurrence per theme × subject"
    );
    assert_eq!(rec.theme_subject[1].samples.len(), 3, "{backend}: samples");
    assert!(rec.theme_subject[1].samples.iter().all(|id| batch
        .iter()
        .any(|e| &e.signal.id == id && e.signal.author.as_deref() == Some("a1"))));
    assert_eq!(rec.author.len(), 1, "{backend}: one customer came back");
    assert_eq!(rec.author[0].key, "a1");
    assert_eq!(rec.author[0].level, Level::Pattern);
    assert_eq!(rec.author[0].count, 3);
    assert_eq!(
        rec.authors_once, 19,
        "{backend}: 10 + 5 + 2 + 1 authors once, and the retweeter"
    );

    let impact = reports::impact_report(&store, &q1, Dimension::Theme).await?;
    let placed: Vec<(String, Quadrant)> = impact
        .quadrants
        .rows
        .iter()
        .map(|r| (r.key.label(), r.quadrant))
        .collect();
    assert_eq!(
        placed,
        vec![
            ("digital_service".into(), Quadrant::ActNow),
            ("staff_conduct".into(), Quadrant::Watch),
            ("handoffs".into(), Quadrant::Watch),
            ("payment".into(), Quadrant::QuickWins),
            ("reachability".into(), Quadrant::QuickWins),
        ],
        "{backend}: medians 3 signals and impact 6; by total impact within a quadrant"
    );
    let pay = impact
        .quadrants
        .rows
        .iter()
        .find(|r| r.key.theme.as_deref() == Some("payment"))
        .ok_or("payment")?;
    assert!((pay.mean_impact - 2.0).abs() < 1e-6 && (pay.total_impact - 20.0).abs() < 1e-4);

    // Improvement actions: the tax bill's new letter from 1 March; a DigiD fix the same day.
    let now = at(2026, 6, 1, 0)?;
    let letter = store
        .add_action(
            &NewAction {
                theme: Some("payment".into()),
                subject: None,
                description: "nieuwe aanslagbrief".into(),
                owner: "team belastingen".into(),
                start_date: date(2026, 3, 1)?,
                status: "running".into(),
            },
            now,
        )
        .await?;
    store
        .add_action(
            &NewAction {
                theme: None,
                subject: Some("digid".into()),
                description: "DigiD-koppeling hersteld".into(),
                owner: "ict".into(),
                start_date: date(2026, 3, 1)?,
                status: "done".into(),
            },
            now,
        )
        .await?;
    // Text no database keeps as text is refused by the store itself, on both backends.
    let nul = store
        .add_action(
            &NewAction {
                theme: Some("payment".into()),
                subject: None,
                description: "a\0b".into(),
                owner: "x".into(),
                start_date: date(2026, 3, 1)?,
                status: "planned".into(),
            },
            now,
        )
        .await;
    assert!(
        matches!(&nul, Err(signaal_store::StoreError::Invalid(m)) if m.contains("NUL")),
        "{backend}: {nul:?}"
    );
    let measured = reports::actions_report(&store, &cfg.action, now, false).await?;
    assert_eq!(measured.len(), 2);
    let m = measured[0].measurement.as_ref().ok_or("measured")?;
    // Before: 4 January – 1 March (8 weeks): days 5…54 → 8; after: 1 March – 26 April: 2.
    assert_eq!((m.before.count, m.after.count), (8, 2), "{backend}");
    assert_eq!(m.verdict, Verdict::NoChange, "{backend}: {}", m.summary);
    let rr = m.rate_ratio.ok_or("rate ratio")?;
    assert!((rr.estimate - 0.25).abs() < 1e-12);
    // P(X ≤ 2 | n = 10, p = ½) = (1 + 10 + 45) / 1024.
    assert!((rr.p_fewer - 56.0 / 1024.0).abs() < 1e-12, "{}", rr.p_fewer);
    let digid = measured[1].measurement.as_ref().ok_or("measured")?;
    assert_eq!((digid.before.count, digid.after.count), (0, 3));
    assert_eq!(
        digid.verdict,
        Verdict::NotYetEnoughData,
        "{}",
        digid.summary
    );

    let updated = store
        .update_action(
            letter.id,
            &ActionUpdate {
                status: Some("done".into()),
                ..ActionUpdate::default()
            },
            now,
        )
        .await?
        .ok_or("action")?;
    assert_eq!(updated.status, "done");
    assert_eq!(updated.description, "nieuwe aanslagbrief");
    assert!(store
        .update_action(
            letter.id,
            &ActionUpdate {
                status: Some("finished".into()),
                ..ActionUpdate::default()
            },
            now
        )
        .await
        .is_err());
    assert!(store
        .update_action(999, &ActionUpdate::default(), now)
        .await?
        .is_none());

    // Signals, newest first, in keyset pages.
    let filter = signaal_store::analysis::Filter {
        from_day: signaal_store::analysis::day_of(at(2026, 1, 1, 0)?),
        to_day: signaal_store::analysis::day_of(at(2026, 4, 1, 0)?),
        theme: Some("payment".into()),
        ..Default::default()
    };
    let first = store.signals_page(&filter, None, 4).await?;
    let last = first.last().ok_or("page")?;
    let second = store
        .signals_page(&filter, Some((last.occurred_at, last.id.clone())), 100)
        .await?;
    assert_eq!(
        first.len() + second.len(),
        10,
        "{backend}: every payment signal once"
    );
    assert!(first[0].occurred_at >= second[0].occurred_at);
    assert!((first[0].impact.unwrap_or(0.0) - 2.0).abs() < 1e-6);
    Ok(())
}

async fn on_both<F, Fut>(suite: F) -> Result<(), BoxError>
where
    F: Fn(Store) -> Fut,
    Fut: Future<Output = Result<(), BoxError>>,
{
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    let store = Store::connect(&url).await?;
    suite(store.clone()).await?;
    store.close().await;

    let admin = std::env::var("SIGNAAL_TEST_DATABASE_URL").map_err(|_| {
        "SIGNAAL_TEST_DATABASE_URL is not set: run the suite through scripts/test, which starts PostgreSQL"
    })?;
    let name = format!("signaal_reports_{}", std::process::id());
    let (base, _) = admin.rsplit_once('/').ok_or("database url has no name")?;
    let admin = sqlx::PgPool::connect(&admin).await?;
    let drop = format!("drop database if exists {name} with (force)");
    sqlx::query(&drop).execute(&admin).await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&admin)
        .await?;
    let result = async {
        let store = Store::connect(&format!("{base}/{name}")).await?;
        let result = suite(store.clone()).await;
        store.close().await;
        result
    }
    .await;
    sqlx::query(&drop).execute(&admin).await?;
    admin.close().await;
    result
}

#[tokio::test]
async fn reports_answer_the_same_on_both_backends() -> Result<(), BoxError> {
    on_both(suite).await
}
