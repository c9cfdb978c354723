//! The corrections loop end to end on real PostgreSQL (issue 16): over the demo's register an
//! analyst corrects a signal with `signaal label`; the reports count it as corrected at once;
//! `signaal reclassify` with the current taxonomy leaves it as corrected (and would otherwise
//! have put the classifier's answer back); `signaal eval --register` scores the classifier on
//! the corrections; bad corrections are refused with the reason.

use std::process::{Command, Output};

mod common;
use common::{drop_database, fresh_database, signaal_bin, unique, Result};

fn signaal(db: &str) -> Result<Command> {
    let mut cmd = Command::new(signaal_bin()?);
    cmd.env("SIGNAAL_STORE__URL", db);
    Ok(cmd)
}

fn ok(out: Output) -> Result<String> {
    if !out.status.success() {
        return Err(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn pareto(db: &str) -> Result<std::collections::BTreeMap<String, u64>> {
    let out = ok(signaal(db)?
        .args([
            "report",
            "pareto",
            "--from",
            "2026-11-01",
            "--to",
            "2026-11-30",
            "--format",
            "json",
        ])
        .output()?)?;
    let v: serde_json::Value = serde_json::from_str(&out)?;
    Ok(v["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| {
            Some((
                r["key"]["theme"].as_str()?.to_string(),
                r["count"].as_u64()?,
            ))
        })
        .collect())
}

#[test]
fn a_correction_counts_at_once_survives_reclassify_and_is_scored() -> Result {
    let run = unique("labels");
    let rt = tokio::runtime::Runtime::new()?;
    let (db, admin) = rt.block_on(fresh_database(&run))?;
    let result = (|| -> Result {
        ok(signaal(&db)?.args(["demo", "--database", &db]).output()?)?;
        // A signal the classifier gave staff conduct.
        let id: String = rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await?;
            let id = sqlx::query_scalar(
                "select signal_id from signal_themes where theme = 'staff_conduct' \
                 order by signal_id limit 1",
            )
            .fetch_one(&pool)
            .await?;
            pool.close().await;
            Ok::<_, Box<dyn std::error::Error>>(id)
        })?;
        let before = pareto(&db)?;
        let saved = ok(signaal(&db)?
            .args([
                "label",
                &id,
                "--themes",
                "response_time,payment",
                "--kind",
                "complaint",
                "--analyst",
                "ann",
                "--note",
                "a letter, not a person",
            ])
            .output()?)?;
        let saved: serde_json::Value = serde_json::from_str(&saved)?;
        assert_eq!(saved["cause"], "system", "{saved}");
        let after = pareto(&db)?;
        let moved = |theme: &str| {
            after.get(theme).copied().unwrap_or(0) as i64
                - before.get(theme).copied().unwrap_or(0) as i64
        };
        assert_eq!(moved("staff_conduct"), -1);
        assert_eq!(moved("payment"), 1);
        assert!(moved("response_time") <= 1 && moved("response_time") >= 0);

        // The current taxonomy over every stored signal: the corrected one is left alone.
        let out = signaal(&db)?.args(["reclassify"]).output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let themes: serde_json::Value = rt.block_on(async {
            let pool = sqlx::PgPool::connect(&db).await?;
            let t: sqlx::types::Json<serde_json::Value> =
                sqlx::query_scalar("select themes from signals where id = $1")
                    .bind(&id)
                    .fetch_one(&pool)
                    .await?;
            pool.close().await;
            Ok::<_, Box<dyn std::error::Error>>(t.0)
        })?;
        let ids: Vec<&str> = themes
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert_eq!(ids, ["response_time", "payment"], "the correction stays");
        assert_eq!(pareto(&db)?, after, "and the counts with it");

        // The classifier scored on the corrections.
        let eval = ok(signaal(&db)?.args(["eval", "--register"]).output()?)?;
        assert!(
            eval.contains("1 corrected signals in the register"),
            "{eval}"
        );
        assert!(eval.to_lowercase().contains("f1"), "{eval}");

        // Refused, with the reason, and nothing stored.
        for (args, says) in [
            (
                vec![
                    "label",
                    "nope",
                    "--themes",
                    "payment",
                    "--kind",
                    "complaint",
                    "--analyst",
                    "a",
                ],
                "no signal",
            ),
            (
                vec![
                    "label",
                    id.as_str(),
                    "--themes",
                    "billing",
                    "--kind",
                    "complaint",
                    "--analyst",
                    "a",
                ],
                "unknown theme",
            ),
            (
                vec![
                    "label",
                    id.as_str(),
                    "--themes",
                    "payment",
                    "--kind",
                    "complaint",
                    "--cause",
                    "human",
                    "--analyst",
                    "a",
                ],
                "does not agree",
            ),
        ] {
            let out = signaal(&db)?.args(&args).output()?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !out.status.success() && stderr.contains(says),
                "{args:?}: {stderr}"
            );
        }
        assert_eq!(pareto(&db)?, after);
        Ok(())
    })();
    rt.block_on(drop_database(&admin, &run))?;
    result
}
