//! The Grafana dashboards in `deploy/grafana` (issue 15): every SQL query of the signals dashboard
//! (panels and annotations) runs against real PostgreSQL holding the demo's register, with
//! Grafana's macros expanded for November 2026, and returns rows of the shape its panel draws:
//! a `time` column of timestamps first for a time series, numbers where numbers are drawn. The
//! provisioning files name the data sources the dashboards use.

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sqlx::{Column, Row, TypeInfo};

mod common;
use common::{drop_database, fresh_database, repo, signaal_bin, Result};

const FROM: &str = "'2026-11-01T00:00:00Z'::timestamptz";
const TO: &str = "'2026-12-01T00:00:00Z'::timestamptz";

/// Grafana's PostgreSQL macros the dashboards use, as Grafana expands them for a time range.
fn expand(sql: &str) -> Result<String> {
    let mut out = sql
        .replace("$__timeFrom()", FROM)
        .replace("$__timeTo()", TO);
    while let Some(start) = out.find("$__timeFilter(") {
        let rest = &out[start + "$__timeFilter(".len()..];
        let end = rest.find(')').ok_or("unclosed $__timeFilter(")?;
        let column = rest[..end].trim().to_string();
        out = format!(
            "{}{column} between {FROM} and {TO}{}",
            &out[..start],
            &rest[end + 1..]
        );
    }
    if let Some(i) = out.find('$') {
        return Err(format!(
            "a macro or variable the test does not expand: {}",
            &out[i..]
        )
        .into());
    }
    Ok(out)
}

/// Every SQL target of a dashboard: (what, format, SQL).
fn queries(dashboard: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = t["rawSql"].as_str() {
                out.push((
                    format!("panel {:?}", p["title"].as_str().unwrap_or_default()),
                    t["format"].as_str().unwrap_or("time_series").to_string(),
                    sql.to_string(),
                ));
            }
        }
    }
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(sql) = a["target"]["rawSql"].as_str() {
            out.push((
                format!("annotation {:?}", a["name"].as_str().unwrap_or_default()),
                "annotation".to_string(),
                sql.to_string(),
            ));
        }
    }
    out
}

fn numeric(type_name: &str) -> bool {
    matches!(
        type_name,
        "INT2" | "INT4" | "INT8" | "FLOAT4" | "FLOAT8" | "NUMERIC"
    )
}

fn load(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

#[test]
fn every_panel_query_runs_on_the_demo_register() -> Result {
    let run = common::unique("grafana");
    let rt = tokio::runtime::Runtime::new()?;
    let (db, admin) = rt.block_on(fresh_database(&run))?;
    let demo = Command::new(signaal_bin()?)
        .args(["demo", "--database", &db])
        .output()?;
    assert!(
        demo.status.success(),
        "demo: {}",
        String::from_utf8_lossy(&demo.stderr)
    );
    let dashboards = repo().join("deploy/grafana/dashboards");
    let signals = load(&dashboards.join("signals.json"))?;
    let result = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&db).await?;
        let all = queries(&signals);
        assert!(all.len() >= 10, "{} queries", all.len());
        for (what, format, sql) in &all {
            let rows = sqlx::query(&expand(sql)?)
                .fetch_all(&pool)
                .await
                .map_err(|e| format!("{what}: {e}\n{sql}"))?;
            assert!(
                !rows.is_empty(),
                "{what}: no rows over November 2026\n{sql}"
            );
            let columns: Vec<(String, String)> = rows[0]
                .columns()
                .iter()
                .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                .collect();
            match format.as_str() {
                "time_series" | "annotation" => {
                    assert_eq!(
                        columns.first().map(|c| (c.0.as_str(), c.1.as_str())),
                        Some(("time", "TIMESTAMPTZ")),
                        "{what}: a time column first: {columns:?}"
                    );
                    if format == "time_series" {
                        assert!(
                            columns[1..].iter().any(|c| numeric(&c.1)),
                            "{what}: a number to draw: {columns:?}"
                        );
                    } else {
                        assert!(columns.iter().any(|c| c.0 == "text"), "{what}: {columns:?}");
                    }
                }
                _ => assert!(columns.len() >= 2, "{what}: {columns:?}"),
            }
            // Where a panel draws bars or slices, its numbers must be numbers.
            if sql.contains("as signals") {
                let signals = columns
                    .iter()
                    .find(|c| c.0 == "signals")
                    .ok_or(format!("{what}: no signals column"))?;
                assert!(numeric(&signals.1), "{what}: {columns:?}");
                let total: i64 = rows
                    .iter()
                    .map(|r| r.try_get::<i64, _>("signals").unwrap_or(0))
                    .sum();
                assert!(total > 0, "{what}: counts {total}");
            }
        }
        // The per-channel slices add up to the signals the demo stored in November.
        let channels: i64 = sqlx::query_scalar(&format!(
            "select cast(sum(signals) as bigint) from ({}) as x",
            expand(
                all.iter()
                    .find(|q| q.0.contains("Per channel"))
                    .map(|q| q.2.as_str())
                    .ok_or("no per-channel panel")?
            )?
            .replace("order by signals desc", "")
        ))
        .fetch_one(&pool)
        .await?;
        let stored: i64 = sqlx::query_scalar(
            "select count(*) from signals where occurred_at >= '2026-11-01' \
             and occurred_at < '2026-12-01' and not (meta ? 'retweet_of')",
        )
        .fetch_one(&pool)
        .await?;
        assert_eq!(channels, stored, "per-channel slices against the register");
        pool.close().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    });
    rt.block_on(drop_database(&admin, &run))?;
    result
}

#[test]
fn provisioning_names_the_data_sources_the_dashboards_use() -> Result {
    let grafana = repo().join("deploy/grafana");
    let datasources =
        std::fs::read_to_string(grafana.join("provisioning/datasources/signaal.yml"))?;
    let dashboards = grafana.join("dashboards");
    let mut files = 0;
    for entry in std::fs::read_dir(&dashboards)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        files += 1;
        let text = std::fs::read_to_string(&path)?;
        let d: Value = serde_json::from_str(&text)?;
        assert!(
            d["uid"].as_str().is_some_and(|u| u.starts_with("signaal-")),
            "{path:?}"
        );
        for uid in text
            .split("\"uid\": \"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .filter(|u| u.starts_with("signaal-") && *u != d["uid"].as_str().unwrap_or_default())
        {
            assert!(
                datasources.contains(&format!("uid: {uid}")),
                "{path:?} uses data source {uid}, which provisioning does not define"
            );
        }
    }
    assert_eq!(files, 2, "signals and operations");
    let provider = std::fs::read_to_string(grafana.join("provisioning/dashboards/signaal.yml"))?;
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml"))?;
    let mount = "./deploy/grafana/dashboards:/var/lib/grafana/dashboards/signaal";
    assert!(
        compose.contains(mount),
        "docker-compose.yml mounts the dashboards"
    );
    assert!(provider.contains("path: /var/lib/grafana/dashboards/signaal"));
    Ok(())
}
