//! `StoreError::is_transient` on errors real databases return: the classifier worker retries a
//! transient error and bisects a batch on any other, so a record the database refuses must say
//! so, with the database's reason in the message.

mod common;

use std::str::FromStr;

use common::{envelope, BoxError, TempDb};
use signaal_core::Channel;
use signaal_store::{Store, StoreError};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{Connection, Executor};

/// A string that compresses badly, so its index entry stays as long as the text.
fn noise(len: usize) -> String {
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            alphabet[(x % 64) as usize] as char
        })
        .collect()
}

#[tokio::test]
async fn postgres_errors_are_classified() -> Result<(), BoxError> {
    let db = TempDb::create("transient").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let good = envelope(Channel::Phone, "ok", 0, Some("a_x"), &["reachability"]);

        // An author too long for a btree entry: PostgreSQL refuses the record, every time.
        let long_author = noise(10_000);
        let bad = envelope(Channel::Phone, "long", 1, Some(&long_author), &[]);
        let err = store
            .save_classified(&[good.clone(), bad])
            .await
            .err()
            .ok_or("a 10 kB author must not fit in the author index")?;
        let msg = err.to_string();
        assert!(
            !err.is_transient(),
            "index row too large is the data's fault: {msg}"
        );
        assert!(
            msg.contains("index row"),
            "the database's reason is in the message: {msg}"
        );

        // A NUL character: not valid in PostgreSQL text (22021).
        let nul = envelope(Channel::Email, "nul", 2, None, &[]);
        let mut nul = nul;
        nul.signal.text = "voor\0na".into();
        let err = store
            .save_classified(&[nul])
            .await
            .err()
            .ok_or("PostgreSQL text refuses NUL")?;
        assert!(!err.is_transient(), "{err}");

        // The batch without the refused records goes through: nothing half-written before.
        assert_eq!(store.save_classified(&[good]).await?, 1);
        assert_eq!(store.count_signals().await?, 1);

        // The server ends the connection (57P01, or the socket closes first): retry.
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        let err = conn
            .execute("select pg_terminate_backend(pg_backend_pid())")
            .await
            .err()
            .ok_or("terminating one's own backend fails the statement")?;
        let err = StoreError::from(err);
        assert!(
            err.is_transient(),
            "a terminated connection is transient: {err}"
        );

        // A deadlock-free stand-in for concurrency errors: a serialization failure raised as one.
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        let err = conn
            .execute(
                "do $$ begin raise exception using errcode = 'serialization_failure', \
                 message = 'could not serialize access'; end $$",
            )
            .await
            .err()
            .ok_or("raise fails the statement")?;
        assert!(StoreError::from(err).is_transient());
        store.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}

#[tokio::test]
async fn sqlite_errors_are_classified() -> Result<(), BoxError> {
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite:{}", dir.path().join("register.db").display());
    Store::connect(&url).await?.close().await;
    let opts = SqliteConnectOptions::from_str(&url)?.busy_timeout(std::time::Duration::ZERO);
    let mut holder = sqlx::SqliteConnection::connect_with(&opts).await?;
    let mut other = sqlx::SqliteConnection::connect_with(&opts).await?;

    // Another writer holds the lock: SQLITE_BUSY, retry.
    holder.execute("begin immediate").await?;
    let err = other
        .execute("insert into source_cursors values ('s', 'k', 'v', 'now')")
        .await
        .err()
        .ok_or("a second writer must be refused while the first holds the lock")?;
    let err = StoreError::from(err);
    assert!(err.is_transient(), "busy is transient: {err}");
    holder.execute("rollback").await?;

    // A constraint the data breaks: not transient.
    let err = other
        .execute("insert into source_cursors values ('s', 'k', null, 'now')")
        .await
        .err()
        .ok_or("not null")?;
    let err = StoreError::from(err);
    assert!(
        !err.is_transient(),
        "a not-null violation is the data's fault: {err}"
    );
    assert!(err.to_string().contains("NOT NULL"), "{err}");
    Ok(())
}
