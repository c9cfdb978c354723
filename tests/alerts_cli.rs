//! `signaal alerts backtest` (issue 13) on its three inputs: a CSV of hourly counts, classified
//! NDJSON and the register (`--from`/`--to`, a SQLite file). One flare-up gives one firing alert
//! at the flare-up, with its numbers; the summary names the series. Needs only the binary.

mod common;

use common::{backtest, Result};

#[test]
fn a_flare_up_in_a_counts_file_is_one_alert_with_its_numbers() -> Result {
    let dir = tempfile::tempdir()?;
    // Five weeks of 3–5 signals an hour for "payment", 0–1 for "handoffs"; then, on the last
    // day at 10:00 UTC, 28 an hour for three hours on "payment".
    let start = 1_793_577_600_i64; // Monday 2026-11-02 00:00 UTC
    let mut csv = String::from("timestamp,series,count\n");
    for h in 0..(35 * 24) {
        let t = start + h * 3600;
        let payment = if (34 * 24 + 10..34 * 24 + 13).contains(&h) {
            28
        } else {
            [3, 4, 5, 4][(h % 4) as usize]
        };
        csv.push_str(&format!("{t},payment,{payment}\n"));
        csv.push_str(&format!("{t},handoffs,{}\n", h % 2));
    }
    let path = dir.path().join("counts.csv");
    std::fs::write(&path, csv)?;
    let (events, stderr) = backtest(None, &["--counts".as_ref(), path.as_os_str()])?;
    let firing: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["state"] == "firing").collect();
    assert_eq!(firing.len(), 1, "{events:#?}");
    let e = firing[0];
    assert_eq!(e["series"], "payment");
    assert_eq!(e["bucket_start"], "2026-12-06T10:00:00+00:00");
    assert_eq!(e["observed"], 28);
    assert_eq!(e["method"], "farrington");
    for key in ["expected", "upper", "p_value"] {
        assert!(e[key].is_number(), "{key} in {e}");
    }
    assert!(e["p_value"].as_f64().unwrap_or(1.0) < 1e-6, "{e}");
    assert!(
        events
            .iter()
            .any(|e| e["state"] == "resolved" && e["series"] == "payment"),
        "{events:#?}"
    );
    assert!(stderr.contains("payment: 1 alerts"), "{stderr}");
    assert!(stderr.contains("handoffs: 0 alerts"), "{stderr}");

    // A file that is not counts is refused with its line.
    std::fs::write(
        &path,
        "timestamp,count\n2026-11-02T09:00:00Z,4\nnonsense,x\n",
    )?;
    let refused = backtest(None, &["--counts".as_ref(), path.as_os_str()]);
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.to_string().contains("line 3")),
        "{refused:?}"
    );
    Ok(())
}

/// Classified envelopes, one per line: twenty-five people about one theme is an alert; one
/// person posting twenty-five times an hour about another is not; retweets and replays count
/// for nothing.
#[test]
fn classified_signals_alert_on_people_not_on_posts() -> Result {
    use chrono::{TimeZone, Utc};
    use signaal_core::{
        Cause, Channel, Classification, ClassifiedEnvelope, Kind, Signal, ThemeTag,
    };

    let dir = tempfile::tempdir()?;
    let start = Utc
        .with_ymd_and_hms(2026, 11, 2, 0, 0, 0)
        .single()
        .ok_or("time")?;
    let mut lines = Vec::new();
    let mut n = 0;
    let mut post = |minute: i64, theme: &str, author: &str, retweet: bool| -> Result<String> {
        n += 1;
        let mut s = Signal::new(
            Channel::Twitter,
            "x",
            format!("{n}"),
            start + chrono::Duration::minutes(minute),
            "DigiD werkt weer niet",
        );
        s.author = Some(author.to_string());
        if retweet {
            s.meta
                .insert("retweet_of".into(), serde_json::Value::from("1"));
        }
        let c = Classification {
            themes: vec![ThemeTag {
                id: theme.into(),
                score: 0.5,
                evidence: vec![],
            }],
            subjects: vec![],
            cause: Cause::System,
            kind: Kind::Complaint,
            lang: "nl".into(),
            sentiment: -0.5,
            escalation: vec![],
            impact: None,
        };
        Ok(serde_json::to_string(&ClassifiedEnvelope::new(
            s, c, "test",
        ))?)
    };
    // Four weeks of 3–5 people an hour on both themes.
    for h in 0..(28 * 24_i64) {
        for k in 0..[3, 4, 5, 4][(h % 4) as usize] {
            let person = (h * 7 + k) % 300;
            lines.push(post(
                h * 60 + k,
                "digital_service",
                &format!("p{person}"),
                false,
            )?);
            lines.push(post(h * 60 + k, "payment", &format!("q{person}"), false)?);
        }
    }
    // On the last day from 10:00, three hours: 25 people about digital_service; one person
    // 25 times an hour about payment; and 40 retweets an hour about payment.
    let flare = (27 * 24 + 10) * 60;
    for h in 0..3 {
        for k in 0..25 {
            let m = flare + h * 60 + k;
            let line = post(m, "digital_service", &format!("flare{k}"), false)?;
            lines.push(line.clone());
            lines.push(line); // replayed
            lines.push(post(m, "payment", "one-angry-person", false)?);
        }
        for k in 0..40 {
            lines.push(post(
                flare + h * 60 + k,
                "payment",
                &format!("rt{k}"),
                true,
            )?);
        }
    }
    let path = dir.path().join("classified.ndjson");
    std::fs::write(&path, lines.join("\n"))?;
    let (events, stderr) = backtest(None, &["--classified".as_ref(), path.as_os_str()])?;
    let firing: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["state"] == "firing").collect();
    assert_eq!(firing.len(), 1, "{events:#?}");
    assert_eq!(firing[0]["series"], "digital_service");
    assert_eq!(firing[0]["bucket_start"], "2026-11-29T10:00:00+00:00");
    assert!(stderr.contains("payment: 0 alerts"), "{stderr}");

    // The same signals stored in a register: `--from`/`--to` gives the same alert.
    let db = format!("sqlite:{}", dir.path().join("register.db").display());
    let envelopes = lines
        .iter()
        .map(|l| serde_json::from_str::<ClassifiedEnvelope>(l))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    tokio::runtime::Runtime::new()?.block_on(async {
        let store = signaal_store::Store::connect(&db).await?;
        for chunk in envelopes.chunks(1_000) {
            store.save_classified(chunk).await?;
        }
        store.close().await;
        Result::Ok(())
    })?;
    let config = dir.path().join("signaal.toml");
    std::fs::write(&config, format!("[store]\nurl = {db:?}\n"))?;
    let (stored, stderr) = backtest(
        Some(&config),
        &[
            "--from".as_ref(),
            "2026-11-02".as_ref(),
            "--to".as_ref(),
            "2026-11-30 00:00".as_ref(),
        ],
    )?;
    let firing: Vec<&serde_json::Value> =
        stored.iter().filter(|e| e["state"] == "firing").collect();
    assert_eq!(firing.len(), 1, "{stored:#?}");
    assert_eq!(firing[0]["series"], "digital_service");
    assert_eq!(firing[0]["bucket_start"], "2026-11-29T10:00:00+00:00");
    // The hour's usual 5 people and the 25 of the flare-up; not their replays.
    assert_eq!(firing[0]["observed"], 30);
    assert!(stderr.contains("payment: 0 alerts"), "{stderr}");
    // A window before the flare-up has none.
    let (before, _) = backtest(
        Some(&config),
        &[
            "--from".as_ref(),
            "2026-11-02".as_ref(),
            "--to".as_ref(),
            "2026-11-29 10:00".as_ref(),
        ],
    )?;
    assert!(before.iter().all(|e| e["state"] != "firing"), "{before:#?}");
    Ok(())
}
