//! Call metadata through the classifier worker's batch handler, with a real (SQLite) register:
//! the same caller twice within the window is a repeat; metadata thresholds become themes.
//! Kafka is librdkafka's in-process mock cluster (a fast unit test; real-broker runs are in
//! `tests/end_to_end.rs`).

use std::sync::Arc;

use chrono::{Duration, TimeZone, Utc};
use serde_json::json;
use signaal_bus::{Delivery, MockKafka, Publisher};
use signaal_classifier::worker::handle_batch;
use signaal_classifier::{Classifier, Pipeline};
use signaal_core::{Channel, RawEnvelope, Signal};
use signaal_store::Store;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

fn call(id: &str, day: i64, caller: &str, meta: serde_json::Value) -> Result<Delivery> {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .ok_or("time")?
        + Duration::days(day);
    let mut s = Signal::new(Channel::Phone, "cc", id, at, "");
    s.author = Some(caller.into());
    if let serde_json::Value::Object(m) = meta {
        s.meta = m;
    }
    Ok(Delivery {
        topic: "signals.raw".into(),
        partition: 0,
        offset: day,
        key: Some(s.id.clone().into_bytes()),
        payload: serde_json::to_vec(&RawEnvelope::new(s))?,
        headers: vec![],
    })
}

#[tokio::test]
async fn repeat_callers_and_thresholds_become_themes_in_the_register() -> Result {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("r.db").display())).await?;
    let mock = MockKafka::start(1)?;
    let bus = mock.bus_config(1)?;
    let publisher = Publisher::new(&bus)?;
    let pipeline = Arc::new(Pipeline::new(Classifier::default_taxonomy()?, b"secret")?);

    // Batch 1: a first call, and someone who waited 20 minutes and was transferred three times.
    handle_batch(
        vec![
            call("c1", 0, "0612345678", json!({}))?,
            call(
                "c2",
                0,
                "0687654321",
                json!({"wait_seconds": 1200, "transfers": 3}),
            )?,
        ],
        &pipeline,
        &publisher,
        &store,
    )
    .await?;
    // Batch 2: the first caller again three days later (a repeat), and again ten days after
    // that (outside the 7-day window).
    handle_batch(
        vec![
            call("c3", 3, "0612345678", json!({}))?,
            call("c4", 13, "0612345678", json!({}))?,
        ],
        &pipeline,
        &publisher,
        &store,
    )
    .await?;

    let from = Utc
        .with_ymd_and_hms(2026, 11, 1, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let to = from + Duration::days(30);
    let id = |source_id: &str| Signal::new(Channel::Phone, "cc", source_id, from, "").id;
    assert_eq!(
        store.theme_signal_ids("repeat_story", from, to).await?,
        vec![id("c3")]
    );
    assert_eq!(
        store.theme_signal_ids("reachability", from, to).await?,
        vec![id("c2")]
    );
    assert_eq!(
        store.theme_signal_ids("handoffs", from, to).await?,
        vec![id("c2")]
    );

    // A replay of the repeat call finds only earlier calls, never itself.
    handle_batch(
        vec![call("c1", 0, "0612345678", json!({}))?],
        &pipeline,
        &publisher,
        &store,
    )
    .await?;
    assert_eq!(store.count_signals().await?, 4);
    store.close().await;
    Ok(())
}
