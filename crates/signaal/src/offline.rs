//! Offline classification: `signaal classify` (NDJSON in, NDJSON out) and `signaal eval FILE`.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use serde_json::json;
use signaal_classifier::eval::evaluate;
use signaal_classifier::privacy::Redactor;

use crate::config::Config;
use crate::workers::classifier;

#[derive(Deserialize)]
struct Input {
    text: String,
    #[serde(default)]
    channel: Option<String>,
}

/// Reads NDJSON objects with `text` (and optionally `channel`) and writes exactly one result per
/// input line, in order: the redacted text with its classification, or `{"line", "error"}`.
pub fn classify<R: BufRead, W: Write>(
    cfg: &Config,
    input: R,
    output: W,
) -> anyhow::Result<(usize, usize)> {
    let c = classifier(cfg)?;
    let redactor = Redactor::new()?;
    let mut out = std::io::BufWriter::new(output);
    let (mut ok, mut bad) = (0, 0);
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let result = line
            .map_err(|e| format!("unreadable line: {e}"))
            .and_then(|l| {
                serde_json::from_str::<Input>(&l)
                    .map_err(|e| format!("expected a JSON object with `text`: {e}"))
            });
        let value = match result {
            Ok(item) => {
                ok += 1;
                let text = redactor.redact(&item.text).into_owned();
                let cls = c.classify(&text);
                let mut v = json!({
                    "text": text,
                    "themes": cls.themes,
                    "cause": cls.cause,
                    "kind": cls.kind,
                    "lang": cls.lang,
                    "sentiment": cls.sentiment,
                    "escalation": cls.escalation,
                });
                if let Some(ch) = item.channel {
                    v["channel"] = ch.into();
                }
                v
            }
            Err(error) => {
                bad += 1;
                json!({ "line": line_no, "error": error })
            }
        };
        serde_json::to_writer(&mut out, &value)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok((ok, bad))
}

#[derive(Args)]
pub struct EvalArgs {
    /// Labelled NDJSON: `text`, `themes`, `cause`, `kind` (and optionally `lang`) per line.
    pub file: PathBuf,
    /// Also list every signal whose themes or kind came out differently.
    #[arg(long)]
    pub misses: bool,
}

pub fn eval(cfg: &Config, args: &EvalArgs) -> anyhow::Result<()> {
    let c = classifier(cfg)?;
    let file = std::fs::File::open(&args.file)
        .with_context(|| format!("cannot open `{}`", args.file.display()))?;
    let report = evaluate(&c, &Redactor::new()?, std::io::BufReader::new(file));
    print!("{report}");
    if args.misses {
        for (line, m) in &report.misses {
            println!("miss line {line}: {m}");
        }
    }
    Ok(())
}
