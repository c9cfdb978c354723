//! Offline classification: `signaal classify` (NDJSON in, NDJSON out) and `signaal eval FILE`.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};
use signaal_classifier::eval::evaluate_with;
use signaal_classifier::privacy::Redactor;
use signaal_core::{Cause, Evidence, Kind, ThemeTag};

use crate::config::Config;
use crate::workers::classifier;

#[derive(Deserialize)]
struct Input<'a> {
    #[serde(borrow)]
    text: Cow<'a, str>,
    #[serde(default)]
    channel: Option<String>,
}

// The output types below write what `serde_json::json!` wrote before, byte for byte (tests/
// classify_cli.rs pins it): serde_json is built without `preserve_order`, so `json!` sorted every
// object's keys, and it stored each `f32` as the `f64` it widens to (-0.6666666865348816, not
// -0.6666667). Fields are therefore declared in alphabetical order and scores are written as
// `f64`. Everything borrows from the classification: no `Value`, no copy of the text.

/// One classified line.
#[derive(Serialize)]
struct Classified<'a> {
    cause: Cause,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    escalation: &'a [String],
    kind: Kind,
    lang: &'a str,
    sentiment: f64,
    text: &'a str,
    themes: Themes<'a>,
}

/// One line that could not be read.
#[derive(Serialize)]
struct Failed<'a> {
    error: &'a str,
    line: usize,
}

struct Themes<'a>(&'a [ThemeTag]);

impl Serialize for Themes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for tag in self.0 {
            seq.serialize_element(&Theme {
                evidence: EvidenceList(&tag.evidence),
                id: &tag.id,
                score: f64::from(tag.score),
            })?;
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Theme<'a> {
    evidence: EvidenceList<'a>,
    id: &'a str,
    score: f64,
}

struct EvidenceList<'a>(&'a [Evidence]);

impl Serialize for EvidenceList<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|e| SortedEvidence {
            end: e.end,
            field: e.field.as_deref(),
            start: e.start,
            text: &e.text,
        }))
    }
}

#[derive(Serialize)]
struct SortedEvidence<'a> {
    end: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    start: usize,
    text: &'a str,
}

/// Reads NDJSON objects with `text` (and optionally `channel`) and writes exactly one result per
/// input line, in order: the redacted text with its classification, or `{"line", "error"}`.
/// A line that is not UTF-8 is such an error line; any other read error stops the run.
pub fn classify<R: BufRead, W: Write>(
    cfg: &Config,
    mut input: R,
    output: W,
) -> anyhow::Result<(usize, usize)> {
    let c = classifier(cfg)?;
    let learned = crate::workers::learned(cfg)?;
    let redactor = Redactor::new()?;
    let mut out = std::io::BufWriter::new(output);
    let (mut ok, mut bad) = (0, 0);
    // One buffer for every line: `BufRead::lines` allocated a `String` per line.
    let mut line = String::new();
    for line_no in 1.. {
        line.clear();
        let read = match input.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                // What `BufRead::lines` strips: "\n", or "\r\n".
                if line.ends_with('\n') {
                    line.pop();
                    if line.ends_with('\r') {
                        line.pop();
                    }
                }
                serde_json::from_str::<Input>(&line)
                    .map_err(|e| format!("expected a JSON object with `text`: {e}"))
            }
            // `read_line` consumed the line before it found it was not UTF-8: report it and go on.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Err(format!("unreadable line: {e}"))
            }
            Err(e) => return Err(e).context(format!("reading line {line_no}")),
        };
        match read {
            Ok(item) => {
                ok += 1;
                let text = redactor.redact(&item.text);
                let cls = signaal_classifier::learned::classify(
                    &c,
                    learned.as_ref(),
                    &text,
                    item.channel.as_deref().unwrap_or(""),
                );
                serde_json::to_writer(
                    &mut out,
                    &Classified {
                        cause: cls.cause,
                        channel: item.channel.as_deref(),
                        escalation: &cls.escalation,
                        kind: cls.kind,
                        lang: &cls.lang,
                        sentiment: f64::from(cls.sentiment),
                        text: &text,
                        themes: Themes(&cls.themes),
                    },
                )?;
            }
            Err(error) => {
                bad += 1;
                serde_json::to_writer(
                    &mut out,
                    &Failed {
                        error: &error,
                        line: line_no,
                    },
                )?;
            }
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok((ok, bad))
}
#[derive(Args)]
pub struct EvalArgs {
    /// Labelled NDJSON: `text`, `themes`, `cause`, `kind` (and optionally `lang`) per line.
    #[arg(required_unless_present = "register", conflicts_with = "register")]
    pub file: Option<PathBuf>,
    /// Score on the analysts' corrections in the register (`signaal label`) instead of a file.
    #[arg(long)]
    pub register: bool,
    /// Also list every signal whose themes or kind came out differently.
    #[arg(long)]
    pub misses: bool,
}

pub fn eval(cfg: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let c = classifier(cfg)?;
    let path = args
        .file
        .as_ref()
        .context("give a labelled NDJSON file or --register")?;
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let learned = crate::workers::learned(cfg)?;
    let report = evaluate_with(
        &c,
        learned.as_ref(),
        &Redactor::new()?,
        std::io::BufReader::new(file),
    );
    print!("{report}");
    if args.misses {
        for (line, m) in &report.misses {
            println!("miss line {line}: {m}");
        }
    }
    Ok(())
}

/// `signaal eval --register`: the current classifier on the stored (redacted) text of every
/// signal an analyst corrected, against the correction.
pub async fn eval_register(cfg: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let (ndjson, n) = crate::label::register_ndjson(cfg).await?;
    if n == 0 {
        anyhow::bail!("the register has no corrections yet (`signaal label SIGNAL_ID …`)");
    }
    let c = classifier(cfg)?;
    let learned = crate::workers::learned(cfg)?;
    let report = evaluate_with(
        &c,
        learned.as_ref(),
        &Redactor::new()?,
        std::io::Cursor::new(ndjson),
    );
    println!("{n} corrected signals in the register");
    print!("{report}");
    if args.misses {
        for (line, m) in &report.misses {
            println!("miss line {line}: {m}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Line endings and unreadable lines as `BufRead::lines` handled them: "\n" or "\r\n" is
    /// stripped, a lone "\r" stays (JSON whitespace), a line that is not UTF-8 becomes an error
    /// line and the next line is still read, with its own number.
    #[test]
    fn classify_reads_lines_as_lines_did() -> anyhow::Result<()> {
        let input: &[u8] = b"{\"text\":\"a\"}\n\xff\xfe{\"text\":\"b\"}\n{\"text\":\"c\"}\r\n\r\n{\"text\":\"d\"}\r";
        let mut out = Vec::new();
        let counts = classify(&Config::default(), input, &mut out)?;
        assert_eq!(counts, (3, 2));
        let want = concat!(
            r#"{"cause":"unknown","escalation":[],"kind":"complaint","lang":"und","sentiment":0.0,"text":"a","themes":[]}"#,
            "\n",
            r#"{"error":"unreadable line: stream did not contain valid UTF-8","line":2}"#,
            "\n",
            r#"{"cause":"unknown","escalation":[],"kind":"complaint","lang":"und","sentiment":0.0,"text":"c","themes":[]}"#,
            "\n",
            r#"{"error":"expected a JSON object with `text`: EOF while parsing a value at line 1 column 0","line":4}"#,
            "\n",
            r#"{"cause":"unknown","escalation":[],"kind":"complaint","lang":"und","sentiment":0.0,"text":"d","themes":[]}"#,
            "\n",
        );
        assert_eq!(String::from_utf8(out)?, want);
        Ok(())
    }
}
