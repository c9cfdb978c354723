//! Analysts' corrections on SQLite and PostgreSQL: a label rewrites the signal's stored
//! classification with its theme rows and counts in one transaction, a reclassification passes
//! a labelled signal over, labelling again replaces the label, and a label for a signal the
//! register does not have stores nothing.

mod common;

use common::{envelope, BoxError, TempDb};
use signaal_core::{Cause, Channel, Kind};
use signaal_store::analysis::{Dimension, Filter};
use signaal_store::labels::Label;
use signaal_store::Store;

fn label(id: &str, themes: &[&str], kind: Kind, cause: Cause) -> Label {
    Label {
        signal_id: id.into(),
        themes: themes.iter().map(|t| t.to_string()).collect(),
        kind,
        cause,
        analyst: "ann".into(),
        note: Some("agent note misread".into()),
        labelled_at: chrono::Utc::now(),
    }
}

async fn theme_counts(store: &Store) -> Result<Vec<(String, u64)>, BoxError> {
    let f = Filter {
        from_day: 0,
        to_day: 100_000,
        ..Filter::default()
    };
    let mut rows: Vec<(String, u64)> = store
        .rollup_counts(Dimension::Theme, &f)
        .await?
        .into_iter()
        .map(|r| (r.theme.unwrap_or_default(), r.signals))
        .collect();
    rows.sort();
    Ok(rows)
}

async fn corrections(store: &Store) -> Result<(), BoxError> {
    let batch = vec![
        envelope(Channel::Email, "m1", 0, Some("a"), &["staff_conduct"]),
        envelope(Channel::Email, "m2", 1, Some("b"), &["staff_conduct"]),
        envelope(Channel::Phone, "c3", 2, Some("c"), &["reachability"]),
    ];
    let ids: Vec<String> = batch.iter().map(|e| e.signal.id.clone()).collect();
    store.save_classified(&batch).await?;
    assert_eq!(
        theme_counts(store).await?,
        [("reachability".into(), 1), ("staff_conduct".into(), 2)]
    );

    // "Onbeschoft gewoon, drie maanden niks horen": the system, not a person.
    let l = label(&ids[0], &["response_time"], Kind::Complaint, Cause::System);
    let saved = store.save_label(&l).await?.ok_or("saved")?;
    assert_eq!((&saved.themes, saved.kind), (&l.themes, l.kind));
    let stored = store.stored_signal(&ids[0]).await?.ok_or("stored")?;
    let themes: Vec<&str> = stored
        .classification
        .themes
        .iter()
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(themes, ["response_time"]);
    assert_eq!(stored.classification.cause, Cause::System);
    assert_eq!(
        stored.classification.themes[0].evidence[0].field.as_deref(),
        Some("label"),
        "a theme only the analyst named is evidenced by the label"
    );
    assert_eq!(
        theme_counts(store).await?,
        [
            ("reachability".into(), 1),
            ("response_time".into(), 1),
            ("staff_conduct".into(), 1)
        ],
        "the counts moved with the correction"
    );

    // Labelling again replaces the label (and moves the counts again, once).
    let again = label(
        &ids[0],
        &["response_time", "payment"],
        Kind::Question,
        Cause::System,
    );
    let again = store.save_label(&again).await?.ok_or("saved")?;
    assert_eq!(store.label(&ids[0]).await?, Some(again.clone()));
    assert_eq!(
        theme_counts(store).await?,
        [
            ("payment".into(), 1),
            ("reachability".into(), 1),
            ("response_time".into(), 1),
            ("staff_conduct".into(), 1)
        ]
    );

    // A reclassification never sees it.
    let pages = store
        .stored_signals(chrono::DateTime::UNIX_EPOCH, None, 100)
        .await?;
    let seen: Vec<&str> = pages.iter().map(|e| e.signal.id.as_str()).collect();
    assert_eq!(seen, [ids[1].as_str(), ids[2].as_str()]);

    // What eval and train read: the label with the stored (redacted) signal.
    let labelled = store.labelled_signals().await?;
    assert_eq!(labelled.len(), 1);
    assert_eq!(labelled[0].1, again);
    assert_eq!(labelled[0].0.signal.text, batch[0].signal.text);

    assert_eq!(
        store
            .save_label(&label("nope", &[], Kind::Question, Cause::Unknown))
            .await?,
        None
    );
    assert_eq!(store.label("nope").await?, None);
    let mut nameless = l.clone();
    nameless.analyst = " ".into();
    assert!(store.save_label(&nameless).await.is_err());
    Ok(())
}

#[tokio::test]
async fn sqlite_corrections_move_counts_and_survive_reclassification() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let store = Store::connect(&format!("sqlite:{}", dir.path().join("r.db").display())).await?;
    corrections(&store).await
}

#[tokio::test]
async fn postgres_corrections_move_counts_and_survive_reclassification() -> Result<(), BoxError> {
    let db = TempDb::create("labels").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        corrections(&store).await?;
        store.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
