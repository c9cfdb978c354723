//! A shutdown while Kafka refuses every classified record: the worker must stop within seconds,
//! leaving the unpublished batches unacknowledged. (Once, the publish stage stopped while the
//! store stage waited to hand it the next batch, and the worker never returned.) Kafka for
//! reading is librdkafka's in-process mock cluster; the publisher points at a port where no
//! broker listens.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use signaal_bus::{MockKafka, Publisher};
use signaal_classifier::worker::{run, Settings};
use signaal_classifier::{Classifier, Pipeline};
use signaal_core::{Channel, Signal};
use signaal_store::Store;
use tokio_util::sync::CancellationToken;

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_publishing_fails_stops_the_worker() -> Result {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("r.db").display())).await?;
    let mock = MockKafka::start(1)?;
    let bus = mock.bus_config(1)?;
    let at = Utc
        .with_ymd_and_hms(2026, 11, 2, 9, 0, 0)
        .single()
        .ok_or("time")?;
    let signals: Vec<Signal> = (0..40)
        .map(|i| {
            Signal::new(
                Channel::Email,
                "test",
                format!("<{i}@example.nl>"),
                at,
                "de brief is onduidelijk",
            )
        })
        .collect();
    Publisher::new(&bus)?.publish_raw(&signals).await?;

    // Every classified record times out after half a second: the publish stage keeps retrying,
    // and with one batch per stage the earlier stages fill up and wait.
    let mut unreachable = bus.clone();
    unreachable.brokers = "127.0.0.1:9".into();
    unreachable
        .client
        .insert("message.timeout.ms".into(), "500".into());
    let publisher = Publisher::new(&unreachable)?;
    let pipeline = Arc::new(Pipeline::new(Classifier::default_taxonomy()?, b"secret")?);
    let settings = Settings {
        batch: 2,
        linger_ms: 5,
        in_flight: 1,
        writers: 1,
    };
    let shutdown = CancellationToken::new();
    let worker = run(
        &bus,
        settings,
        pipeline,
        publisher,
        store.clone(),
        shutdown.clone(),
    );
    let control = async {
        // Wait until batches are in the register (so every stage is busy), then stop.
        let deadline = Instant::now() + Duration::from_secs(30);
        while store.count_signals().await.unwrap_or(0) < 4 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown.cancel();
        Instant::now()
    };
    let both = async { tokio::join!(worker, control) };
    let Ok((outcome, stopping)) = tokio::time::timeout(Duration::from_secs(60), both).await else {
        panic!("the worker did not stop after a shutdown while publishing failed");
    };
    let stored = store.count_signals().await?;
    assert!(
        stored >= 4,
        "the worker stored only {stored} signals in 30 s"
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "the worker took {:?} to stop",
        stopping.elapsed()
    );
    // Stopping in the middle of a retry is not a failure.
    assert!(outcome.is_ok(), "{outcome:?}");
    Ok(())
}
