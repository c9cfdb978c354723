//! `signaal classify` and `signaal eval` as a user runs them.

use std::io::Write;
use std::process::{Command, Stdio};

mod common;
use common::{repo, signaal_bin, Result};

#[test]
fn classify_writes_one_result_per_line_in_order() -> Result {
    let input = concat!(
        "{\"text\":\"Ik stond 40 minuten in de wacht, bel me op 06-12345678\",\"channel\":\"phone\",\"id\":7}\n",
        "not json\n",
        "{\"channel\":\"email\"}\n",
        "\n",
        "{\"text\":\"The agent was so friendly and helpful, thanks!\"}\n",
    );
    let mut child = Command::new(signaal_bin()?)
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "classify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<std::result::Result<_, _>>()?;
    assert_eq!(
        lines.len(),
        5,
        "exactly one result per input line: {lines:#?}"
    );

    assert_eq!(
        lines[0]["text"],
        "Ik stond 40 minuten in de wacht, bel me op [phone]"
    );
    assert_eq!(lines[0]["themes"][0]["id"], "reachability");
    assert_eq!(lines[0]["themes"][0]["evidence"][0]["text"], "in de wacht");
    assert_eq!(lines[0]["cause"], "system");
    assert_eq!(lines[0]["kind"], "complaint");
    assert_eq!(lines[0]["lang"], "nl");
    assert_eq!(lines[0]["channel"], "phone");
    assert!(lines[0]["sentiment"].as_f64().is_some_and(|s| s < 0.0));

    for (i, line_no) in [(1, 2), (2, 3), (3, 4)] {
        assert_eq!(lines[i]["line"], line_no, "{}", lines[i]);
        assert!(
            lines[i]["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{}",
            lines[i]
        );
    }
    assert_eq!(lines[4]["kind"], "compliment");
    assert_eq!(lines[4]["cause"], "human");
    assert_eq!(lines[4]["lang"], "en");
    Ok(())
}

#[test]
fn eval_prints_the_scores() -> Result {
    let out = Command::new(signaal_bin()?)
        .arg("eval")
        .arg(repo().join("corpus/dev.ndjson"))
        .output()?;
    assert!(
        out.status.success(),
        "eval failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    for want in [
        "precision",
        "recall",
        "macro-F1",
        "cause accuracy",
        "kind accuracy",
        "staff_conduct",
    ] {
        assert!(text.contains(want), "eval output lacks {want:?}:\n{text}");
    }
    let missing = Command::new(signaal_bin()?)
        .args(["eval", "no/such/file.ndjson"])
        .output()?;
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot open `no/such/file.ndjson`"));
    Ok(())
}

/// The exact bytes `signaal classify` writes, pinned: key order (sorted, as `serde_json::Map`
/// without `preserve_order` keeps it), scores widened from `f32` to `f64`, string escapes, and an
/// error line. Scripts downstream diff this output, so a change of bytes is a change of contract.
#[test]
fn classify_output_bytes_are_pinned() -> Result {
    let input = concat!(
        r#"{"text":"Goedemiddag,\n\nUw brief is zo onpersoonlijk en vaag dat ik niet weet of mijn aanvraag is goedgekeurd of afgewezen. Ik stap naar de ombudsman! \"Café\" 06-12345678","channel":"email"}"#,
        "\n",
        r#"{"text":1}"#,
        "\r\n",
        r#"{"text":"kort"}"#,
    );
    let want = concat!(
        r#"{"cause":"system","channel":"email","escalation":["ombudsman"],"kind":"complaint","lang":"nl","sentiment":-0.6666666865348816,"text":"Goedemiddag,\n\nUw brief is zo onpersoonlijk en vaag dat ik niet weet of mijn aanvraag is goedgekeurd of afgewezen. Ik stap naar de ombudsman! \"Café\" [phone]","themes":[{"evidence":[{"end":22,"start":17,"text":"brief"},{"end":42,"start":29,"text":"onpersoonlijk"},{"end":50,"start":46,"text":"vaag"}],"id":"unclear_communication","score":0.875}]}"#,
        "\n",
        r#"{"error":"expected a JSON object with `text`: invalid type: integer `1`, expected a string at line 1 column 9","line":2}"#,
        "\n",
        r#"{"cause":"unknown","escalation":[],"kind":"complaint","lang":"und","sentiment":0.0,"text":"kort","themes":[]}"#,
        "\n",
    );
    let mut child = Command::new(signaal_bin()?)
        .arg("classify")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    assert!(
        out.status.success(),
        "classify failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got = String::from_utf8(out.stdout)?;
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        assert_eq!(g, w, "line {} differs from the pinned bytes", i + 1);
    }
    assert_eq!(got, want, "output differs from the pinned bytes");
    Ok(())
}
