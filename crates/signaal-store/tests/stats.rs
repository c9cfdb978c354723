//! What `signals.stats` reads from the register, on both backends: each key's count, people,
//! mean impact and newest classification, held against the same numbers worked out here from
//! the signals themselves; and the alert events that fall in a key's bucket.

use std::collections::{BTreeMap, BTreeSet};

use signaal_core::stats::{keys_of_signal, Bucket, BucketCounts, Grain, Series, StatsKey};
use signaal_core::{AlertState, Channel, ClassifiedEnvelope, SubjectTag};
use signaal_store::Store;

mod common;
use common::{alert_event, envelope, hour, BoxError, TempDb};

/// Signals over two hours of one day and one of the next: repeated authors, a signal without
/// an author, one without an impact score, a repost, subjects, three channels.
fn signals() -> Vec<ClassifiedEnvelope> {
    let mut out = Vec::new();
    let mut add =
        |channel, id: &str, minute, author, themes: &[&str], subjects: &[&str], impact| {
            let mut env = envelope(channel, id, minute, author, themes);
            env.classification.subjects = subjects
                .iter()
                .map(|s| SubjectTag {
                    id: s.to_string(),
                    evidence: vec![],
                })
                .collect();
            env.classification.impact = impact;
            out.push(env);
        };
    // Hour 0.
    add(
        Channel::Email,
        "e1",
        5,
        Some("a_1"),
        &["payment"],
        &["tax_bill"],
        Some(2.3),
    );
    add(
        Channel::Email,
        "e2",
        10,
        Some("a_1"),
        &["payment"],
        &[],
        Some(5.25),
    );
    add(
        Channel::Phone,
        "p1",
        20,
        None,
        &["payment", "reachability"],
        &["tax_bill"],
        Some(1.15),
    );
    add(
        Channel::Phone,
        "p2",
        59,
        Some("a_2"),
        &["reachability"],
        &[],
        None,
    );
    add(Channel::Email, "e3", 30, Some("a_3"), &[], &[], Some(0.4));
    // Hour 1.
    add(
        Channel::Phone,
        "p3",
        60,
        Some("a_2"),
        &["reachability"],
        &["digid"],
        Some(7.9),
    );
    add(
        Channel::Twitter,
        "x1",
        70,
        Some("a_4"),
        &["payment"],
        &[],
        Some(3.3),
    );
    // The next day.
    add(
        Channel::Email,
        "e4",
        24 * 60 + 1,
        Some("a_1"),
        &["payment"],
        &[],
        Some(2.0),
    );
    let mut repost = envelope(Channel::Twitter, "x2", 75, Some("a_5"), &["payment"]);
    repost
        .signal
        .meta
        .insert("retweet_of".into(), serde_json::Value::from("x1"));
    repost.classification.impact = Some(9.0);
    out.push(repost);
    out
}

/// The numbers each key should have, worked out from the signals as the contract says.
fn expected(signals: &[ClassifiedEnvelope]) -> BTreeMap<StatsKey, BucketCounts> {
    let mut members: BTreeMap<StatsKey, Vec<&ClassifiedEnvelope>> = BTreeMap::new();
    for env in signals {
        for k in keys_of_signal(env) {
            members.entry(k).or_default().push(env);
        }
    }
    members
        .into_iter()
        .map(|(k, envs)| {
            let people: BTreeSet<&str> = envs
                .iter()
                .map(|e| e.signal.author.as_deref().unwrap_or(&e.signal.id))
                .collect();
            let scores: Vec<f32> = envs
                .iter()
                .filter_map(|e| e.classification.impact)
                .collect();
            let counts = BucketCounts {
                count: envs.len() as u64,
                authors: people.len() as u64,
                scored: scores.len() as u64,
                impact_milli: scores
                    .iter()
                    .map(|s| (f64::from(*s) * 1000.0).round() as i64)
                    .sum(),
                newest_classified: envs.iter().map(|e| e.classified_at).max(),
            };
            (k, counts)
        })
        .collect()
}

fn key(series: Series, grain: Grain, h: i64) -> StatsKey {
    StatsKey {
        series,
        bucket: Bucket::of(grain, hour(h)),
    }
}

async fn suite(store: &Store) -> Result<(), BoxError> {
    let backend = store.backend();
    let signals = signals();
    // Stored in two batches, the second with a replay of the first in it: nothing doubles.
    store.save_classified(&signals[..4]).await?;
    store.save_classified(&signals).await?;
    let want = expected(&signals);
    let mut keys: Vec<StatsKey> = want.keys().cloned().collect();
    // A key with nothing in it is answered too, with zeros.
    let empty = key(Series::Theme("payment".into()), Grain::Hour, 5);
    keys.push(empty.clone());
    let got = store.bucket_counts(&keys).await?;
    assert_eq!(got.len(), keys.len(), "{backend}: every key answered");
    for (k, w) in &want {
        let g = got.get(k).copied().unwrap_or_default();
        // Stored times keep microseconds on PostgreSQL.
        let (g_at, w_at) = (
            g.newest_classified.map(|t| t.timestamp_micros()),
            w.newest_classified.map(|t| t.timestamp_micros()),
        );
        assert_eq!(
            (g.count, g.authors, g.scored, g.impact_milli, g_at),
            (w.count, w.authors, w.scored, w.impact_milli, w_at),
            "{backend}: {k} (count, people, scored, impact in thousandths, newest)"
        );
    }
    assert_eq!(
        got.get(&empty),
        Some(&BucketCounts::default()),
        "{backend}: {empty} holds nothing"
    );
    // A few by hand, so the oracle above is not the only judge.
    let payment_h0 = &got[&key(Series::Theme("payment".into()), Grain::Hour, 0)];
    assert_eq!((payment_h0.count, payment_h0.authors), (3, 2), "{backend}");
    assert_eq!(
        payment_h0.mean_impact(),
        Some(2.9),
        "{backend}: (2.3 + 5.25 + 1.15) / 3"
    );
    let reach_h0 = &got[&key(Series::Theme("reachability".into()), Grain::Hour, 0)];
    assert_eq!(
        (reach_h0.count, reach_h0.scored, reach_h0.mean_impact()),
        (2, 1, Some(1.15)),
        "{backend}: a signal without a score is counted, not averaged"
    );
    let twitter_day = &got[&key(Series::Channel("twitter".into()), Grain::Day, 0)];
    assert_eq!(
        twitter_day.count, 1,
        "{backend}: the repost counts for nothing"
    );
    let payment_twitter = &got[&key(
        Series::ThemeChannel("payment".into(), "twitter".into()),
        Grain::Hour,
        1,
    )];
    assert_eq!(payment_twitter.count, 1, "{backend}");
    let email_day = &got[&key(Series::Channel("email".into()), Grain::Day, 0)];
    assert_eq!((email_day.count, email_day.authors), (3, 2), "{backend}");
    let payment_next_day = &got[&key(Series::Theme("payment".into()), Grain::Day, 24)];
    assert_eq!(payment_next_day.count, 1, "{backend}");
    let tax_bill = &got[&key(Series::Subject("tax_bill".into()), Grain::Day, 0)];
    assert_eq!((tax_bill.count, tax_bill.authors), (2, 2), "{backend}");

    // Alert events: per key, the events of its series whose bucket lies in it.
    let events = [
        alert_event("payment", 0, AlertState::Firing, 0),
        alert_event("payment", 0, AlertState::Update, 1),
        alert_event("payment/email", 0, AlertState::Firing, 0),
        alert_event("reachability", 0, AlertState::Pending, 1),
    ];
    let queued: Vec<_> = events.iter().map(|e| (e.clone(), Vec::new())).collect();
    store.save_alert_events(&queued, None).await?;
    let asked = [
        key(Series::Theme("payment".into()), Grain::Hour, 1),
        key(Series::Theme("payment".into()), Grain::Day, 0),
        key(
            Series::ThemeChannel("payment".into(), "email".into()),
            Grain::Hour,
            0,
        ),
        key(Series::Subject("payment".into()), Grain::Day, 0),
        key(Series::Channel("email".into()), Grain::Day, 0),
    ];
    let found = store.alert_events_in(&asked).await?;
    let mut ids: Vec<&str> = found.iter().map(|e| e.id.as_str()).collect();
    ids.sort();
    // The day asks for both of payment's events; the hour for the second again.
    let mut want_ids = vec![
        events[1].id.as_str(),
        events[0].id.as_str(),
        events[1].id.as_str(),
        events[2].id.as_str(),
    ];
    want_ids.sort();
    assert_eq!(ids, want_ids, "{backend}: events per key");
    assert_eq!(
        found.iter().find(|e| e.id == events[2].id),
        Some(&events[2]),
        "{backend}: the event as stored"
    );
    Ok(())
}

#[tokio::test]
async fn sqlite_counts_each_key_as_the_contract_says() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("r.db").display())).await?;
    suite(&store).await?;
    store.close().await;
    Ok(())
}

#[tokio::test]
async fn postgres_counts_each_key_as_the_contract_says() -> Result<(), BoxError> {
    let db = TempDb::create("stats").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        suite(&store).await?;
        store.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
