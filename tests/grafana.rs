//! The Grafana dashboards in `deploy/grafana` (issue 15): every SQL query of the signals dashboard
//! (panels and annotations) runs against real PostgreSQL holding the demo's register, with
//! Grafana's macros expanded for November 2026, and returns rows of the shape its panel draws:
//! a `time` column of timestamps first for a time series, numbers where numbers are drawn. Every
//! metric a PromQL query of any dashboard names is on the `/metrics` of a real worker process
//! (classifier, alerter, email and social workers on real Kafka and PostgreSQL) once the workers
//! have done the work behind it. The provisioning files name the data sources the dashboards
//! use.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use signaal_bus::{Publisher, Record};
use signaal_core::{Channel, RawEnvelope, Signal};
use signaal_social::replay::{Failure, Recordings};
use sqlx::{Column, Row, TypeInfo};
use tokio_util::sync::CancellationToken;

mod common;
use common::{
    base_config, drop_database, fresh_database, repo, run_setup, service_env, signaal_bin,
    wait_for_signals, Result, Workers,
};

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

/// The Prometheus data source provisioning defines (`provisioning/datasources/signaal.yml`).
const PROMETHEUS_UID: &str = "signaal-workers";

/// PromQL words that never name a metric, whatever follows them: binary and set operators,
/// modifiers, aggregation operators and the literals `inf` and `nan`. PromQL reads them in any
/// case (`SUM BY (x)`).
const KEYWORDS: &str = "and or unless atan2 bool offset sum min max avg group stddev stdvar count \
    count_values bottomk topk quantile limitk limit_ratio inf nan";

/// Modifiers followed by a list of label names in parentheses.
const LABEL_LISTS: &str = "by without on ignoring group_left group_right";

/// PromQL's functions (Prometheus 3; `start` and `end` are the `@` modifier's). A word followed
/// by `(` that is none of these is a typo, not a metric.
const FUNCTIONS: &str = "abs absent absent_over_time acos acosh asin asinh atan atanh \
    avg_over_time ceil changes clamp clamp_max clamp_min cos cosh count_over_time day_of_month \
    day_of_week day_of_year days_in_month deg delta deriv double_exponential_smoothing end exp \
    floor histogram_avg histogram_count histogram_fraction histogram_quantile histogram_stddev \
    histogram_stdvar histogram_sum holt_winters hour idelta increase info irate label_join \
    label_replace last_over_time ln log10 log2 mad_over_time max_over_time min_over_time minute \
    month pi predict_linear present_over_time quantile_over_time rad rate resets round scalar sgn \
    sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev_over_time \
    stdvar_over_time sum_over_time tan tanh time timestamp vector year";

fn listed(words: &str, word: &str) -> bool {
    words.split_whitespace().any(|w| w == word)
}

fn word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The end (exclusive) of the string literal opening at `at` (`"…"`, `'…'` with backslash
/// escapes, or a raw `` `…` ``), and its value.
fn string_at(chars: &[char], at: usize) -> std::result::Result<(usize, String), String> {
    let quote = chars[at];
    let mut value = String::new();
    let mut i = at + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((i + 1, value)),
            '\\' if quote != '`' && i + 1 < chars.len() => {
                value.push(chars[i + 1]);
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err(format!("unterminated string from {:?}", tail(chars, at)))
}

/// The index of the bracket closing the one at `at`, over nested brackets and strings.
fn closing(chars: &[char], at: usize) -> std::result::Result<usize, String> {
    let (open, close) = match chars[at] {
        '(' => ('(', ')'),
        '[' => ('[', ']'),
        _ => ('{', '}'),
    };
    let mut depth = 0;
    let mut i = at;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => {
                i = string_at(chars, i)?.0;
                continue;
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth -= 1;
                if depth == 0 {
                    return Ok(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Err(format!("`{open}` not closed in {:?}", tail(chars, at)))
}

fn tail(chars: &[char], at: usize) -> String {
    chars[at..].iter().take(40).collect()
}

/// The metric name a label-matcher block (`{…}`, without the braces) selects, if it does:
/// `__name__="x"`, or Prometheus 3's quoted name `{"x", job="y"}`. Label names and values are
/// no metric names.
fn name_in_matchers(inner: &[char]) -> std::result::Result<Option<String>, String> {
    let mut name = None;
    let mut i = 0;
    let skip_space = |i: &mut usize| {
        while *i < inner.len() && inner[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_space(&mut i);
        if i == inner.len() {
            return Ok(name);
        }
        let label = if matches!(inner[i], '"' | '\'' | '`') {
            let (end, value) = string_at(inner, i)?;
            i = end;
            value
        } else {
            let start = i;
            while i < inner.len() && word_char(inner[i]) {
                i += 1;
            }
            if start == i {
                return Err(format!(
                    "cannot read the label matchers {{{}}}",
                    tail(inner, 0)
                ));
            }
            inner[start..i].iter().collect()
        };
        skip_space(&mut i);
        let op: String = inner[i..]
            .iter()
            .take_while(|c| matches!(c, '=' | '!' | '~'))
            .collect();
        if op.is_empty() {
            // A quoted metric name on its own.
            name = Some(label);
        } else {
            i += op.len();
            skip_space(&mut i);
            if i == inner.len() || !matches!(inner[i], '"' | '\'' | '`') {
                return Err(format!("label `{label}` without a quoted value"));
            }
            let (end, value) = string_at(inner, i)?;
            i = end;
            if label == "__name__" {
                if op != "=" {
                    return Err(format!(
                        "`__name__{op}{value:?}` names no one metric that could be checked"
                    ));
                }
                name = Some(value);
            }
        }
        skip_space(&mut i);
        match inner.get(i) {
            None => return Ok(name),
            Some(',') => i += 1,
            Some(c) => return Err(format!("unexpected `{c}` in label matchers")),
        }
    }
}

/// The metric names a PromQL expression selects, as written (a histogram's `x_bucket`, a
/// summary's `x_sum` and `x_count` are the series names Prometheus stores, so they stay as they
/// are). Not metric names: keywords, aggregation operators and functions (a function not in
/// [`FUNCTIONS`] is an error), label names in `{…}` and in `by (…)`, `without (…)`, `on (…)`,
/// `ignoring (…)`, `group_left (…)`, `group_right (…)`; range selectors and subqueries `[…]`,
/// numbers, durations (`offset 1h`), strings, comments and Grafana's `$variables`.
fn metric_names(expr: &str) -> std::result::Result<BTreeSet<String>, String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut labels_next = false;
    let mut depth = 0i32;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        // A label list may only follow its modifier directly.
        let label_list = std::mem::take(&mut labels_next);
        match c {
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' | '\'' | '`' => i = string_at(&chars, i)?.0,
            '{' => {
                let end = closing(&chars, i)?;
                names.extend(name_in_matchers(&chars[i + 1..end])?);
                i = end + 1;
            }
            '[' => i = closing(&chars, i)? + 1,
            '(' if label_list => i = closing(&chars, i)? + 1,
            '(' => {
                depth += 1;
                i += 1;
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced `)` at {:?}", tail(&chars, i)));
                }
                i += 1;
            }
            '$' => {
                // Grafana's `$var`, `${var}`, `$__rate_interval`.
                i += 1;
                if chars.get(i) == Some(&'{') {
                    i = closing(&chars, i)? + 1;
                } else {
                    while i < chars.len() && word_char(chars[i]) {
                        i += 1;
                    }
                }
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) =>
            {
                // 5m, 1h30m, 0.95, 1e-3, 0x1f.
                let start = i;
                while i < chars.len() {
                    let d = chars[i];
                    let exponent_sign = matches!(d, '+' | '-')
                        && matches!(chars[i - 1], 'e' | 'E')
                        && !chars[start..i].contains(&'x');
                    if d.is_ascii_alphanumeric() || d == '.' || d == '_' || exponent_sign {
                        i += 1;
                    } else {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len() && word_char(chars[i]) {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let lower = word.to_ascii_lowercase();
                let next = chars[i..].iter().find(|c| !c.is_whitespace());
                if listed(LABEL_LISTS, &lower) {
                    labels_next = true;
                } else if listed(KEYWORDS, &lower) {
                    // An operator or a literal, whatever follows.
                } else if next != Some(&'(') {
                    names.insert(word);
                } else if !listed(FUNCTIONS, &word) {
                    return Err(format!("`{word}(` is no PromQL function"));
                }
            }
            _ => i += 1, // operators, commas, `@`
        }
    }
    if depth != 0 {
        return Err(format!("{depth} `(` not closed"));
    }
    Ok(names)
}

/// Whether a data source reference is the Prometheus one; none means the default, which
/// provisioning makes Prometheus (`isDefault: true`).
fn is_prometheus(datasource: Option<&Value>) -> bool {
    match datasource {
        None | Some(Value::Null) => true,
        Some(Value::String(uid)) => uid == PROMETHEUS_UID,
        Some(d) => {
            d["type"].as_str() == Some("prometheus") || d["uid"].as_str() == Some(PROMETHEUS_UID)
        }
    }
}

/// Every PromQL expression of a dashboard, with where it is: the targets of its panels (and of
/// panels in rows) and its annotations whose data source is Prometheus (the target's own, else
/// its panel's).
fn promql(dashboard: &Value) -> Vec<(String, String)> {
    fn panels(list: &Value, out: &mut Vec<(String, String)>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                let datasource = t.get("datasource").or(p.get("datasource"));
                if let (Some(expr), true) = (t["expr"].as_str(), is_prometheus(datasource)) {
                    out.push((
                        format!(
                            "panel {:?} ({})",
                            p["title"].as_str().unwrap_or_default(),
                            t["refId"].as_str().unwrap_or("?")
                        ),
                        expr.to_string(),
                    ));
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dashboard["panels"], &mut out);
    for a in dashboard["annotations"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let (Some(expr), true) = (a["expr"].as_str(), is_prometheus(a.get("datasource"))) {
            out.push((
                format!("annotation {:?}", a["name"].as_str().unwrap_or_default()),
                expr.to_string(),
            ));
        }
    }
    out
}

/// Every dashboard's metric names, each with the places that use it.
fn dashboard_metrics() -> Result<BTreeMap<String, Vec<String>>> {
    let mut files = Vec::new();
    let mut dirs = vec![repo().join("deploy/grafana")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("json") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut metrics: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in &files {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        for (place, expr) in promql(&load(path)?) {
            let names = metric_names(&expr).map_err(|e| format!("{file}, {place}: {e}: {expr}"))?;
            if names.is_empty() {
                return Err(format!("{file}, {place}: no metric in `{expr}`").into());
            }
            for name in names {
                metrics
                    .entry(name)
                    .or_default()
                    .push(format!("{file}, {place}: {expr}"));
            }
        }
    }
    Ok(metrics)
}

/// The names of the samples on a Prometheus text exposition (`name{labels} value`): a
/// histogram's `_bucket`, `_sum` and `_count` each appear under their own name, as Prometheus
/// stores them.
fn exposed_names(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

#[test]
fn metric_names_are_what_promql_selects() {
    let cases: &[(&str, &[&str])] = &[
        (
            "sum by (source) (rate(signaal_source_signals_published_total[5m]))",
            &["signaal_source_signals_published_total"],
        ),
        (
            r#"rate(signaal_x_total{worker="a", source=~"mail|x"}[5m] offset 1h)"#,
            &["signaal_x_total"],
        ),
        (
            r#"histogram_quantile(0.95, sum without (instance) (rate(signaal_wait_seconds_bucket{le!=""}[$__rate_interval])))"#,
            &["signaal_wait_seconds_bucket"],
        ),
        (
            "sum(rate(signaal_wait_seconds_sum[5m])) / sum(rate(signaal_wait_seconds_count[5m]))",
            &["signaal_wait_seconds_count", "signaal_wait_seconds_sum"],
        ),
        (
            "time() - signaal_source_last_poll_timestamp_seconds",
            &["signaal_source_last_poll_timestamp_seconds"],
        ),
        (
            "sum by (group, topic) (signaal_consumer_lag) > bool 0",
            &["signaal_consumer_lag"],
        ),
        (
            "a_total / on(group, topic) group_left(worker) b_info",
            &["a_total", "b_info"],
        ),
        ("max_over_time(x:rule[1h:5m]) @ end()", &["x:rule"]),
        (
            r#"label_replace(up{job="a{b}"}, "dst", "$1", "src", "(.*)")"#,
            &["up"],
        ),
        (
            r#"{__name__="signaal_y_total", worker="w"} * 1e-3 + Inf - NaN"#,
            &["signaal_y_total"],
        ),
        (
            r#"topk(5, count_values("v", build_info)) unless ignoring (v) absent(z)"#,
            &["build_info", "z"],
        ),
        ("SUM BY (x) (rate(m[${interval}]))", &["m"]),
        ("# how many\nm1 or\n  m2 # of both", &["m1", "m2"]),
    ];
    for (expr, want) in cases {
        let got = metric_names(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
        assert_eq!(got, want, "{expr}");
    }
    for (expr, error) in [
        ("sum(rat(x[5m]))", "`rat(` is no PromQL function"),
        ("sum(rate(x[5m])", "not closed"),
        ("rate(x[5m]))", "unbalanced"),
        (r#"x{a="b}"#, "unterminated string"),
        (r#"{__name__=~"signaal_.*"}"#, "names no one metric"),
    ] {
        match metric_names(expr) {
            Ok(names) => panic!("{expr}: {names:?}, not an error"),
            Err(e) => assert!(e.contains(error), "{expr}: {e}"),
        }
    }
}

#[test]
fn promql_is_read_from_panels_rows_and_annotations() {
    let dashboard = serde_json::json!({
        "panels": [
            {"title": "sql", "datasource": {"type": "grafana-postgresql-datasource"},
             "targets": [{"refId": "A", "rawSql": "select 1"}]},
            {"title": "mixed", "datasource": {"uid": "-- Mixed --"},
             "targets": [
                {"refId": "A", "datasource": {"type": "prometheus", "uid": "signaal-workers"},
                 "expr": "a_total"},
                {"refId": "B", "datasource": {"type": "loki"}, "expr": "{job=\"x\"}"}
             ]},
            {"title": "row", "type": "row", "panels": [
                {"title": "inside", "targets": [{"refId": "C", "expr": "b_total"}]}
            ]}
        ],
        "annotations": {"list": [
            {"name": "deploys", "datasource": {"uid": "signaal-workers"}, "expr": "c_info"}
        ]}
    });
    assert_eq!(
        promql(&dashboard),
        [
            ("panel \"mixed\" (A)", "a_total"),
            ("panel \"inside\" (C)", "b_total"),
            ("annotation \"deploys\"", "c_info"),
        ]
        .map(|(p, e)| (p.to_string(), e.to_string()))
    );
}

#[test]
fn exposed_names_are_the_sample_names() {
    let text = "# HELP signaal_wait_seconds time waited\n\
                # TYPE signaal_wait_seconds summary\n\
                signaal_wait_seconds{quantile=\"0.5\"} 1\n\
                signaal_wait_seconds_sum 3\n\
                signaal_wait_seconds_count 2\n\
                \n\
                signaal_age_seconds_bucket{le=\"+Inf\"} 2\n\
                signaal_dead_letters_total{worker=\"classifier\"} 1\n\
                signaal_alerter_open_alerts 0\n";
    let want: BTreeSet<String> = [
        "signaal_age_seconds_bucket",
        "signaal_alerter_open_alerts",
        "signaal_dead_letters_total",
        "signaal_wait_seconds",
        "signaal_wait_seconds_count",
        "signaal_wait_seconds_sum",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(exposed_names(text), want);
}

fn copy_dir(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// A free loopback port for a worker's `--listen`.
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A raw envelope on the run's raw topic.
fn raw_record(run: &str, key: &str, payload: Vec<u8>) -> Record {
    Record {
        topic: format!("{run}.raw"),
        key: key.to_string(),
        payload,
        headers: vec![],
    }
}

fn phone_call(run: &str, n: usize, text: &str) -> Result<Record> {
    let at = chrono::Utc::now() - chrono::Duration::minutes(n as i64);
    let s = Signal::new(Channel::Phone, "grafana", format!("{run}-{n}"), at, text);
    let id = s.id.clone();
    Ok(raw_record(
        run,
        &id,
        serde_json::to_vec(&RawEnvelope::new(s))?,
    ))
}

/// What one worker's `/metrics` shows: its sample names, or why it did not answer.
type Scrape = std::result::Result<BTreeSet<String>, String>;

async fn scrape(client: &reqwest::Client, port: u16) -> Scrape {
    let resp = client
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let text = resp.text().await.map_err(|e| e.to_string())?;
    Ok(exposed_names(&text))
}

/// Worker processes of the binary that do the work behind every operations panel, each with
/// its own `/metrics`, on this run's topics and database; returns what each one's `/metrics`
/// shows once all of `wanted` is there, or after a minute.
///
/// The work: an email worker reads the bundled mail folder and fails to read a missing one
/// (poll failures); a social worker reads X through the replay server, which answers its first
/// request with a 429 (rate-limit waits); a malformed record on the raw topic (dead letters);
/// a record the register refuses (refusals); a moment without the register while the
/// classifier writes (retries); then the alerter and its notifier read what was classified
/// (open alerts, pending notifications). Consumer lag comes from librdkafka every 5 s.
async fn busy_workers(
    wanted: &BTreeMap<String, Vec<String>>,
    brokers: &str,
    run: &str,
    db: &str,
    admin: &sqlx::PgPool,
) -> Result<BTreeMap<&'static str, Scrape>> {
    let bin = signaal_bin()?;
    let dir = tempfile::tempdir()?;
    copy_dir(&repo().join("samples/email"), &dir.path().join("mail"))?;
    let stop = CancellationToken::new();
    let _stop_replay = stop.clone().drop_guard();
    let mut x_pages = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(repo().join("samples/twitter"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    for f in files {
        x_pages.push(std::fs::read_to_string(f)?);
    }
    let recordings = Recordings {
        x_pages,
        failures: vec![Failure::x_rate_limited(1)],
        ..Default::default()
    };
    let (api, _) = signaal_social::replay::serve(recordings, stop.clone()).await?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(
        &config,
        format!(
            "{}[email]\npoll_seconds = 1\n\
             [[email.folders]]\nname = \"grafana-mail\"\npath = \"{}\"\n\
             [[email.folders]]\nname = \"grafana-missing\"\npath = \"{}\"\n\
             [social]\npoll_seconds = 1\n\
             [[social.x]]\nname = \"grafana-x\"\nbase_url = \"{api}\"\n\
             bearer_token = \"grafana-token\"\nquery = \"@gemeente\"\n\
             [alerter]\nidle_seconds = 1\nlateness_seconds = 0\n",
            base_config(run, brokers, db, 1),
            dir.path().join("mail").display(),
            dir.path().join("no-such-folder").display(),
        ),
    )?;
    run_setup(&bin, &config)?;
    // A record the register refuses, whatever the classifier checks (a constraint of this run's
    // own database), and one that is no envelope at all.
    let pool = sqlx::PgPool::connect(db).await?;
    sqlx::query(
        "alter table signals add constraint grafana_refuses check (text not like '%REFUSE-ME%')",
    )
    .execute(&pool)
    .await?;
    pool.close().await;
    let publisher = Publisher::new(&common::bus_config(brokers, run))?;
    publisher
        .publish(&[
            raw_record(run, "not-an-envelope", b"this is not an envelope".to_vec()),
            phone_call(run, 1, "REFUSE-ME: de wachttijd was een uur")?,
        ])
        .await?;

    let ports = [
        ("classifier", free_port()?),
        ("email", free_port()?),
        ("social", free_port()?),
        ("alerter", free_port()?),
    ];
    let log = |w: &str| dir.path().join(format!("{w}.log"));
    let show = |w: &str| std::fs::read_to_string(log(w)).unwrap_or_default();
    let mut workers = Workers(Vec::new());
    let start = |workers: &mut Workers, w: &'static str, port: u16| -> Result {
        let child = Command::new(&bin)
            .arg("--config")
            .arg(&config)
            .arg(w)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log(w))?)
            .spawn()?;
        workers.0.push((w.to_string(), child));
        Ok(())
    };
    for (w, port) in &ports[..3] {
        start(&mut workers, w, *port)?;
    }
    let exited = |workers: &mut Workers| -> Result {
        for (name, c) in &mut workers.0 {
            if let Some(status) = c.try_wait()? {
                return Err(format!("worker `{name}` exited ({status}):\n{}", show(name)).into());
            }
        }
        Ok(())
    };

    let store = signaal_store::Store::connect(db).await?;
    let stored = wait_for_signals(&store, 1, Duration::from_secs(60)).await?;
    store.close().await;
    exited(&mut workers)?;
    if stored == 0 {
        return Err(format!(
            "nothing stored in 60 s; classifier:\n{}",
            show("classifier")
        )
        .into());
    }
    // The register goes away while the classifier writes a signal (no caller, so no
    // repeat-caller lookup first): it retries until the register is back.
    sqlx::query(&format!("alter database {run} allow_connections false"))
        .execute(admin)
        .await?;
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(run)
        .execute(admin)
        .await?;
    publisher
        .publish(&[phone_call(run, 2, "de brief is onduidelijk")?])
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !show("classifier").contains("batch stage failed; retrying") && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sqlx::query(&format!("alter database {run} allow_connections true"))
        .execute(admin)
        .await?;
    start(&mut workers, ports[3].0, ports[3].1)?;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        exited(&mut workers)?;
        let mut seen = BTreeMap::new();
        for (w, port) in &ports {
            seen.insert(*w, scrape(&client, *port).await);
        }
        let all = wanted.keys().all(|n| {
            seen.values()
                .any(|s| s.as_ref().is_ok_and(|s| s.contains(n)))
        });
        if all || Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    workers.terminate()?;
    Ok(seen)
}

/// Issue 15: every metric an operations panel queries exists on the `/metrics` of at least one
/// worker process, once the workers have done the work behind the panel. A name no worker
/// exposes draws an empty panel in Grafana and no error anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_metric_is_on_a_workers_metrics() -> Result {
    let wanted = dashboard_metrics()?;
    // The operations dashboard alone queries 14: fewer means the dashboards were misread.
    assert!(
        wanted.len() >= 10,
        "only these metrics found in the dashboards' PromQL: {:?}",
        wanted.keys().collect::<Vec<_>>()
    );
    let brokers = service_env("SIGNAAL_TEST_BROKERS")?;
    let run = common::unique("grafprom");
    let (db, admin) = fresh_database(&run).await?;
    let seen = busy_workers(&wanted, &brokers, &run, &db, &admin).await;
    drop_database(&admin, &run).await?;
    let seen = seen?;
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(n, _)| {
            !seen
                .values()
                .any(|s| s.as_ref().is_ok_and(|s| s.contains(*n)))
        })
        .map(|(n, places)| format!("  `{n}`, in {}", places.join("\n    and ")))
        .collect();
    let exposed: Vec<String> = seen
        .iter()
        .map(|(w, s)| match s {
            Ok(names) => format!(
                "  {w}: {}",
                names
                    .iter()
                    .filter(|n| n.starts_with("signaal_"))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => format!("  {w}: /metrics did not answer: {e}"),
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} dashboard metric(s) on no worker's /metrics (the code is the truth: fix the \
         dashboard, or make the worker record the metric):\n{}\nwhat the workers expose:\n{}",
        missing.len(),
        missing.join("\n"),
        exposed.join("\n")
    );
    eprintln!(
        "{} dashboard metrics, each on a worker's /metrics: {}",
        wanted.len(),
        wanted.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    Ok(())
}
