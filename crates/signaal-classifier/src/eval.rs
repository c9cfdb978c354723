//! Scoring the classifier against a labelled NDJSON file: per-theme precision, recall and F1,
//! macro-F1, and cause, kind and language accuracy. Bad lines are reported, never fatal.

use std::collections::BTreeSet;
use std::fmt;
use std::io::BufRead;

use serde::Deserialize;
use signaal_core::{Cause, Kind};

use crate::{privacy::Redactor, Classifier};

#[derive(Debug, Deserialize)]
struct Labelled {
    text: String,
    themes: Vec<String>,
    cause: Cause,
    kind: Kind,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default)]
    channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ThemeScore {
    pub id: String,
    pub support: u32,
    pub tp: u32,
    pub fp: u32,
    pub fn_: u32,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalReport {
    pub n: u32,
    pub themes: Vec<ThemeScore>,
    pub macro_f1: f64,
    pub cause_accuracy: f64,
    pub kind_accuracy: f64,
    pub lang_accuracy: f64,
    /// (line number, reason) for lines that could not be scored.
    pub errors: Vec<(usize, String)>,
    /// (line number, what was expected, what came out) for inspection.
    pub misses: Vec<(usize, String)>,
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        0.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

pub fn evaluate<R: BufRead>(classifier: &Classifier, redactor: &Redactor, input: R) -> EvalReport {
    evaluate_with(classifier, None, redactor, input)
}

/// [`evaluate`] with the learned layer combined with the rules, as the pipeline runs it.
pub fn evaluate_with<R: BufRead>(
    classifier: &Classifier,
    learned: Option<&crate::learned::Learned>,
    redactor: &Redactor,
    input: R,
) -> EvalReport {
    let ids: Vec<String> = classifier.themes().map(|t| t.id.clone()).collect();
    let mut counts = vec![(0u32, 0u32, 0u32, 0u32); ids.len()]; // support, tp, fp, fn
    let mut r = EvalReport::default();
    let (mut cause_ok, mut kind_ok, mut lang_ok, mut lang_n) = (0u32, 0u32, 0u32, 0u32);
    for (i, line) in input.lines().enumerate() {
        let line_no = i + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                r.errors.push((line_no, format!("unreadable line: {e}")));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let item: Labelled = match serde_json::from_str(&line) {
            Ok(it) => it,
            Err(e) => {
                r.errors
                    .push((line_no, format!("not a labelled signal: {e}")));
                continue;
            }
        };
        if let Some(unknown) = item.themes.iter().find(|t| !ids.contains(t)) {
            r.errors
                .push((line_no, format!("label names unknown theme `{unknown}`")));
            continue;
        }
        let text = redactor.redact(&item.text);
        let got = crate::learned::classify(
            classifier,
            learned,
            &text,
            item.channel.as_deref().unwrap_or(""),
        );
        let want: BTreeSet<&str> = item.themes.iter().map(String::as_str).collect();
        let have: BTreeSet<&str> = got.themes.iter().map(|t| t.id.as_str()).collect();
        for (k, id) in ids.iter().enumerate() {
            let (w, h) = (want.contains(id.as_str()), have.contains(id.as_str()));
            let c = &mut counts[k];
            c.0 += u32::from(w);
            c.1 += u32::from(w && h);
            c.2 += u32::from(!w && h);
            c.3 += u32::from(w && !h);
        }
        r.n += 1;
        cause_ok += u32::from(got.cause == item.cause);
        kind_ok += u32::from(got.kind == item.kind);
        if let Some(l) = &item.lang {
            lang_n += 1;
            lang_ok += u32::from(&got.lang == l);
        }
        if want != have || got.kind != item.kind {
            r.misses.push((
                line_no,
                format!(
                    "want {:?} {} | got {:?} {} | {}",
                    want,
                    item.kind.as_str(),
                    have,
                    got.kind.as_str(),
                    item.text.replace('\n', " ")
                ),
            ));
        }
    }
    let mut f1s = Vec::new();
    for (k, id) in ids.iter().enumerate() {
        let (support, tp, fp, fn_) = counts[k];
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        if support > 0 || fp > 0 {
            f1s.push(f1);
        }
        r.themes.push(ThemeScore {
            id: id.clone(),
            support,
            tp,
            fp,
            fn_,
            precision,
            recall,
            f1,
        });
    }
    r.macro_f1 = if f1s.is_empty() {
        0.0
    } else {
        f1s.iter().sum::<f64>() / f1s.len() as f64
    };
    r.cause_accuracy = ratio(cause_ok, r.n);
    r.kind_accuracy = ratio(kind_ok, r.n);
    r.lang_accuracy = ratio(lang_ok, lang_n);
    r
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:>7} {:>9} {:>7} {:>7}",
            "theme", "support", "precision", "recall", "f1"
        )?;
        for t in &self.themes {
            writeln!(
                f,
                "{:<24} {:>7} {:>9.3} {:>7.3} {:>7.3}",
                t.id, t.support, t.precision, t.recall, t.f1
            )?;
        }
        writeln!(f, "signals          {}", self.n)?;
        writeln!(f, "macro-F1         {:.3}", self.macro_f1)?;
        writeln!(f, "cause accuracy   {:.3}", self.cause_accuracy)?;
        writeln!(f, "kind accuracy    {:.3}", self.kind_accuracy)?;
        writeln!(f, "lang accuracy    {:.3}", self.lang_accuracy)?;
        for (line, e) in &self.errors {
            writeln!(f, "line {line}: {e}")?;
        }
        Ok(())
    }
}
