//! Helpers shared by the test binaries in `tests/`.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `signaal` binary under test: `SIGNAAL_BIN`, else the debug build.
pub fn signaal_bin() -> Result<PathBuf> {
    let p = std::env::var("SIGNAAL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo().join("target/debug/signaal"));
    if !p.exists() {
        return Err(format!(
            "`{}` not found: build it first (cargo build -p signaal) or set SIGNAAL_BIN",
            p.display()
        )
        .into());
    }
    Ok(p)
}

/// A setting `scripts/test` provides; its absence fails the test with the fix in words.
pub fn service_env(name: &str) -> Result<String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run the suite through scripts/test, which starts Kafka, PostgreSQL and Dovecot").into()
    })
}

/// Creates a PostgreSQL database of the test's own; returns its URL and an admin pool.
pub async fn fresh_database(name: &str) -> Result<(String, sqlx::PgPool)> {
    let admin = service_env("SIGNAAL_TEST_DATABASE_URL")?;
    let pool = sqlx::PgPool::connect(&admin).await?;
    sqlx::query(&format!("create database {name}"))
        .execute(&pool)
        .await?;
    let (base, _) = admin
        .rsplit_once('/')
        .ok_or("database url has no database name")?;
    Ok((format!("{base}/{name}"), pool))
}

pub async fn drop_database(pool: &sqlx::PgPool, name: &str) -> Result {
    sqlx::query(&format!("drop database if exists {name} with (force)"))
        .execute(pool)
        .await?;
    Ok(())
}

/// All messages of a topic as (key, headers, payload), read with kcat.
pub fn kcat_read(brokers: &str, topic: &str) -> Result<Vec<(String, String, String)>> {
    let out = Command::new("kcat")
        .args([
            "-b",
            brokers,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%k\t%h\t%s\n\u{1e}\n",
        ])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "kcat failed on `{topic}`: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8(out.stdout)?;
    Ok(text
        .split("\n\u{1e}\n")
        .filter(|r| !r.trim().is_empty())
        .map(|r| {
            let mut parts = r.splitn(3, '\t');
            let k = parts.next().unwrap_or_default().to_string();
            let h = parts.next().unwrap_or_default().to_string();
            let s = parts.next().unwrap_or_default().to_string();
            (k, h, s)
        })
        .collect())
}

/// Worker processes, killed when the test ends however it ends.
pub struct Workers(pub Vec<(String, Child)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (_, c) in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
