//! The repeat-caller and repeat-contact lookups stay index lookups per author: on a large
//! register, with a custom plan and with the generic plan PostgreSQL switches a prepared
//! statement to, and on a young register that autovacuum has not analyzed yet.
//!
//! Fills a register of 1,000,000 signals (many authors, phone and other channels, a year of
//! times) with `generate_series`, analyses it, and checks `EXPLAIN` of the exact statements the
//! store sends ([`signaal_store::sql::AUTHOR_TIMES_POSTGRES`], `AUTHOR_CONTACTS_POSTGRES`).

mod common;

use std::time::Instant;

use chrono::{TimeZone, Utc};
use common::{BoxError, TempDb};
use signaal_store::sql::{AUTHOR_CONTACTS_POSTGRES, AUTHOR_TIMES_POSTGRES};
use signaal_store::Store;
use sqlx::{Connection, Executor};

const SIGNALS: i64 = 1_000_000;
/// Distinct authors; with phone every fourth signal, about two calls a caller a year.
const AUTHORS: i64 = 400_000;

fn author(n: i64) -> String {
    format!("a_{n:07}")
}

/// Plan lines of `explain execute` of a prepared lookup.
async fn plan(
    conn: &mut sqlx::PgConnection,
    statement: &str,
    args: &str,
) -> Result<String, BoxError> {
    let lines: Vec<String> = sqlx::query_scalar(&format!("explain execute {statement}({args})"))
        .fetch_all(&mut *conn)
        .await?;
    Ok(lines.join("\n"))
}

/// Prepares both lookups for 500 `authors` and checks their custom and generic plans.
async fn check_plans(
    conn: &mut sqlx::PgConnection,
    authors: &[String],
    register: &str,
) -> Result<(), BoxError> {
    conn.execute(
        format!(
            "prepare author_times(text[], text, timestamptz) as {AUTHOR_TIMES_POSTGRES}; \
             prepare author_contacts(text[], timestamptz, timestamptz) as \
             {AUTHOR_CONTACTS_POSTGRES}"
        )
        .as_str(),
    )
    .await?;
    let array = format!("array['{}']", authors.join("','"));
    let times_args = format!("{array}, 'phone', timestamptz '2025-12-01 00:00:00+00'");
    let contacts_args = format!(
        "{array}, timestamptz '2025-10-01 00:00:00+00', timestamptz '2025-12-31 00:00:00+00'"
    );
    for mode in ["custom", "generic"] {
        conn.execute(format!("set plan_cache_mode = force_{mode}_plan").as_str())
            .await?;
        for (statement, args) in [
            ("author_times", &times_args),
            ("author_contacts", &contacts_args),
        ] {
            let p = plan(conn, statement, args).await?;
            assert_index_lookup(&p, &format!("{register}, {statement}, {mode} plan"));
            if mode == "generic" {
                assert!(
                    p.contains("$2"),
                    "expected a generic plan (with parameters), got:\n{p}"
                );
            }
        }
    }
    conn.execute("deallocate all; reset plan_cache_mode")
        .await?;
    Ok(())
}

/// `count` generated signals (phone every fourth, authors spread, one in ten without one).
fn fill(count: i64) -> String {
    format!(
        "insert into signals (id, channel, source, source_id, occurred_at, received_at, \
         classified_at, author, subject, thread_id, text, meta, themes, cause, kind, lang, \
         sentiment, escalation, classifier) \
         select md5(g::text), (array['phone', 'email', 'twitter', 'facebook'])[1 + g % 4], \
         'gen', g::text, t, t, t, \
         case when g % 10 = 9 then null else 'a_' || lpad(((g * 7) % {AUTHORS})::text, 7, '0') end, \
         null, null, 'tekst', '{{}}', '[]', 'system', 'complaint', 'nl', -0.4, '[]', 'gen' \
         from generate_series(1::bigint, {count}) g, \
         lateral (select timestamptz '2025-01-01 00:00:00+00' \
             + ((g * 7919) % 31536000) * interval '1 second' as t) times"
    )
}

fn assert_index_lookup(plan: &str, what: &str) {
    // The custom plan spells out all 500 authors; a line's start says enough.
    let short: Vec<String> = plan
        .lines()
        .map(|l| l.chars().take(160).collect())
        .collect();
    println!("{what}:\n{}\n", short.join("\n"));
    assert!(
        plan.contains("signals_author_time") && !plan.contains("Seq Scan on signals"),
        "{what}: the repeat-caller lookup must use `signals_author_time`, got:\n{plan}"
    );
    assert!(
        !plan.contains("signals_occurred_at") && !plan.contains("signals_time"),
        "{what}: walking the time index scans the whole range, got:\n{plan}"
    );
}

#[tokio::test]
async fn author_lookup_uses_the_author_index_at_a_million_signals() -> Result<(), BoxError> {
    let db = TempDb::create("author_times").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        let started = Instant::now();
        // Channels in turn (phone every fourth), authors spread over the year, one author in ten
        // missing (as mail without a pseudonymised sender), times a multiplicative walk over the
        // year's seconds.
        conn.execute(fill(SIGNALS).as_str()).await?;
        conn.execute("analyze signals").await?;
        println!(
            "filled {SIGNALS} signals in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // 500 callers of one batch; phone authors are those with g % 4 == 0, so g*7 % AUTHORS over
        // multiples of 4 — take every fourth author name from a stretch of them.
        let authors: Vec<String> = (0..500).map(|i| author((i * 28) % AUTHORS)).collect();
        let since = Utc
            .with_ymd_and_hms(2025, 12, 1, 0, 0, 0)
            .single()
            .ok_or("date")?;
        check_plans(&mut conn, &authors, "a million signals, analyzed").await?;

        // The answer is right, and what one lookup takes; later lookups run the statement sqlx
        // prepared, which PostgreSQL turns generic after five executions.
        let (want,): (i64,) = sqlx::query_as(
            "select count(*) from signals where author = any($1) and channel = 'phone' \
             and occurred_at >= $2",
        )
        .bind(&authors)
        .bind(since)
        .fetch_one(&mut conn)
        .await?;
        assert!(want > 0, "the test data has repeat callers in December");
        let mut times = Vec::new();
        for round in 0..8 {
            let started = Instant::now();
            let got = store.author_times("phone", &authors, since).await?;
            times.push(started.elapsed());
            assert_eq!(got.len() as i64, want, "round {round}: every call found");
            assert!(got.windows(2).all(|w| w[0].1 <= w[1].1), "oldest first");
        }
        println!(
            "author_times, 500 authors, {want} calls found: first {:.1} ms, then {}",
            times[0].as_secs_f64() * 1e3,
            times[1..]
                .iter()
                .map(|t| format!("{:.1} ms", t.as_secs_f64() * 1e3))
                .collect::<Vec<_>>()
                .join(", ")
        );
        store.close().await;
        conn.close().await?;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}

/// A young register: 30,000 signals that autovacuum has not analyzed (it runs at most once a
/// minute). Without statistics, `author = any($1)` over 500 authors looked like most of the
/// table to the planner, which read the time index or the whole table for every batch.
#[tokio::test]
async fn author_lookups_use_the_author_index_before_any_analyze() -> Result<(), BoxError> {
    let db = TempDb::create("author_young").await?;
    let result = async {
        let store = Store::connect(&db.url).await?;
        let mut conn = sqlx::PgConnection::connect(&db.url).await?;
        conn.execute("alter table signals set (autovacuum_enabled = false)")
            .await?;
        conn.execute(fill(30_000).as_str()).await?;
        let analyzed: Option<i64> = sqlx::query_scalar(
            "select analyze_count + autoanalyze_count from pg_stat_user_tables \
             where relname = 'signals'",
        )
        .fetch_optional(&mut conn)
        .await?;
        assert_eq!(analyzed.unwrap_or(0), 0, "the register is not analyzed");
        let authors: Vec<String> = (0..500).map(|i| author(i * 28)).collect();
        check_plans(&mut conn, &authors, "30,000 signals, never analyzed").await?;
        store.close().await;
        conn.close().await?;
        Ok::<_, BoxError>(())
    }
    .await;
    db.drop().await?;
    result
}
