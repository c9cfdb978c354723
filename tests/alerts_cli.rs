//! `signaal alerts backtest --counts` (issue 13, the counts input): a CSV of hourly counts with
//! one flare-up gives one firing alert at the flare-up, with its numbers, and a resolution;
//! the summary names the series. Needs only the binary.

mod common;

use std::process::Command;

use common::{signaal_bin, Result};

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
    let out = Command::new(signaal_bin()?)
        .args(["alerts", "backtest", "--counts"])
        .arg(&path)
        .output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
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
    let out = Command::new(signaal_bin()?)
        .args(["alerts", "backtest", "--counts"])
        .arg(&path)
        .output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
    Ok(())
}
