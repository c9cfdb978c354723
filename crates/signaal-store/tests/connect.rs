//! Reaching PostgreSQL: TLS as the URL asks for it (`sslmode`, `sslrootcert`), and start-up
//! errors that name the server and the reason at once — never the pool's "timed out" 30 s
//! later, never a password.
//!
//! The TLS tests run against `scripts/pg-local`, which serves TLS with a certificate signed by a
//! throwaway test CA (`SIGNAAL_TEST_DATABASE_CA`) and plain connections alike. The others need
//! no database: a port nobody listens on, and a fake server that answers the TLS request with
//! PostgreSQL's "no".

mod common;

use std::time::{Duration, Instant};

use common::{BoxError, TempDb};
use signaal_store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn test_ca() -> Result<String, BoxError> {
    Ok(std::env::var("SIGNAAL_TEST_DATABASE_CA").map_err(|_| {
        "SIGNAAL_TEST_DATABASE_CA is not set: run the suite through scripts/test, which starts \
         PostgreSQL with TLS (scripts/pg-local env prints it)"
    })?)
}

/// Whether the connections of the register named `app` (its `application_name`) use TLS: one
/// flag per open connection, as the server sees them.
async fn tls_of(admin_url: &str, app: &str) -> Result<Vec<bool>, BoxError> {
    let admin = sqlx::PgPool::connect(admin_url).await?;
    let rows: Vec<(bool,)> = sqlx::query_as(
        "select s.ssl from pg_stat_activity a join pg_stat_ssl s on s.pid = a.pid \
         where a.application_name = $1",
    )
    .bind(app)
    .fetch_all(&admin)
    .await?;
    admin.close().await;
    Ok(rows.into_iter().map(|(ssl,)| ssl).collect())
}

#[tokio::test]
async fn verify_full_with_the_test_ca_is_tls_and_plain_still_works() -> Result<(), BoxError> {
    let ca = test_ca()?;
    let admin_url = std::env::var("SIGNAAL_TEST_DATABASE_URL")?;
    let db = TempDb::create("tls").await?;
    let result = async {
        let app = format!("signaal-tls-{}", std::process::id());
        let url = format!(
            "{}?sslmode=verify-full&sslrootcert={ca}&application_name={app}",
            db.url
        );
        let store = Store::connect(&url).await?;
        assert_eq!(store.count_signals().await?, 0);
        let flags = tls_of(&admin_url, &app).await?;
        assert!(
            !flags.is_empty() && flags.iter().all(|&ssl| ssl),
            "every connection of the register is TLS: {flags:?}"
        );
        store.close().await;

        // The plain URL, as before: no TLS asked for, none used.
        let plain = format!("signaal-plain-{}", std::process::id());
        let store = Store::connect(&format!(
            "{}?sslmode=disable&application_name={plain}",
            db.url
        ))
        .await?;
        assert_eq!(store.count_signals().await?, 0);
        let flags = tls_of(&admin_url, &plain).await?;
        assert!(
            !flags.is_empty() && flags.iter().all(|&ssl| !ssl),
            "sslmode=disable: {flags:?}"
        );
        store.close().await;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}

#[tokio::test]
async fn verify_full_refuses_a_certificate_it_cannot_trust() -> Result<(), BoxError> {
    test_ca()?;
    let db = TempDb::create("tlsbad").await?;
    // No `sslrootcert`: the test CA is not among the public roots.
    let err = Store::connect(&format!("{}?sslmode=verify-full", db.url))
        .await
        .err()
        .map(|e| e.to_string());
    db.drop().await?;
    let err = err.ok_or("a certificate of an unknown CA was trusted")?;
    assert!(
        err.contains("could not connect to postgresql at 127.0.0.1:")
            && err.contains("certificate"),
        "{err}"
    );
    Ok(())
}

/// A port on loopback that nobody listens on.
async fn closed_port() -> Result<u16, BoxError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?.port())
}

#[tokio::test]
async fn a_server_that_is_down_is_named_at_once_without_the_password() -> Result<(), BoxError> {
    let port = closed_port().await?;
    let started = Instant::now();
    let err = Store::connect(&format!(
        "postgres://signaal:hunter2@127.0.0.1:{port}/signaal?password=hunter3"
    ))
    .await
    .err()
    .ok_or("connected to a closed port")?;
    let took = started.elapsed();
    // The whole chain, as the binary prints it.
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(
        text.contains(&format!("127.0.0.1:{port}"))
            && text.to_lowercase().contains("connection refused"),
        "{text}"
    );
    assert!(!text.contains("hunter"), "{text}");
    assert!(err.is_transient(), "a server that is down may come back");
    assert!(took < Duration::from_secs(5), "took {took:?}: {text}");
    Ok(())
}

#[tokio::test]
async fn sslmode_require_refuses_a_server_without_tls() -> Result<(), BoxError> {
    // PostgreSQL's answer to an SSLRequest when `ssl = off`: the single byte `N`.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let server = tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await?;
        let mut request = [0u8; 8];
        conn.read_exact(&mut request).await?;
        conn.write_all(b"N").await?;
        // Whatever comes next (a plaintext startup message would carry the user) is not read.
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok::<_, std::io::Error>(request)
    });
    let err = Store::connect(&format!(
        "postgres://signaal@127.0.0.1:{port}/signaal?sslmode=require"
    ))
    .await
    .err()
    .map(|e| e.to_string())
    .ok_or("sslmode=require connected without TLS")?;
    server.abort();
    assert!(
        err.contains(&format!(
            "could not connect to postgresql at 127.0.0.1:{port}"
        )) && err.contains("server does not support TLS"),
        "{err}"
    );
    Ok(())
}
