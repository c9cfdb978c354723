//! `signaal train`: the learned layer trained on labelled signals (issue 16) — NDJSON files in
//! the labelling guide's format (`corpus/GUIDE.md`) and, with `--register`, the analysts'
//! corrections in the register. Reproducible: the same files and settings give the same bytes.
//!
//! Each text is redacted and run through the rules first, as in the pipeline, and the rules'
//! findings become features. Thresholds per theme are chosen on the development part (`--dev`
//! files, or every fifth record by id); the scores of the rules alone and of rules + model on
//! that part are printed, so a run says whether the model helps.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Deserialize;
use signaal_classifier::eval::evaluate_with;
use signaal_classifier::learned::{rule_features, Learned, Policy};
use signaal_classifier::privacy::Redactor;
use signaal_classifier::Classifier;
use signaal_learn::{Example, TrainConfig};

use crate::config::Config;
use crate::workers;

#[derive(Args)]
pub struct TrainArgs {
    /// Labelled NDJSON files (`id`, `channel`, `text`, `themes`, `cause`, `kind`, `lang`).
    pub corpus: Vec<PathBuf>,
    /// Where the model goes (`[classifier] model = "…"` then uses it).
    #[arg(long)]
    pub out: PathBuf,
    /// Development files: thresholds are chosen and scores reported on them. Without, every
    /// fifth record of the corpus (by a hash of its id) is held out for that.
    #[arg(long)]
    pub dev: Vec<PathBuf>,
    /// Also learn from the analysts' corrections in the register (`signaal label`).
    #[arg(long)]
    pub register: bool,
    /// The model's name (part of its version in every classification).
    #[arg(long, default_value = "signaal")]
    pub name: String,
    /// log2 of the number of feature buckets (10–24). The default is the embedded model's:
    /// 2^17 rows of 16 weights, 4 MiB.
    #[arg(long, default_value_t = 17)]
    pub bits: u8,
    /// Shortest and longest character n-gram of a word, counting its `<` `>` boundary marks
    /// (`--char-max 0`: none). The default, 4-grams only, is the embedded model's: on the
    /// development part it scored as 3–5-grams did with a third of the features (BENCHMARKS.md).
    #[arg(long, default_value_t = 4)]
    pub char_min: u8,
    #[arg(long, default_value_t = 4)]
    pub char_max: u8,
    #[arg(long, default_value_t = 40)]
    pub epochs: u32,
    /// AdaGrad's base step (the embedded model's; 0.2 scored lower on the development part).
    #[arg(long, default_value_t = 0.1)]
    pub learning_rate: f32,
    /// L2 penalty per update.
    #[arg(long, default_value_t = 1e-5)]
    pub l2: f32,
    #[arg(long, default_value_t = 0x5161)]
    pub seed: u64,
    /// Report the development scores with this combination (`[classifier.learned]` sets it
    /// for the pipeline): the model's kind wins from this probability on …
    #[arg(long, default_value_t = Policy::default().kind_min)]
    pub kind_min: f32,
    /// … and a rule theme the model gives less than this is dropped.
    #[arg(long, default_value_t = Policy::default().veto_below)]
    pub veto_below: f32,
    /// … and a theme only the model found needs at least this probability.
    #[arg(long, default_value_t = Policy::default().add_min)]
    pub add_min: f32,
    /// Thresholds maximise F-beta on the development part (1: F1; below 1 favours precision).
    #[arg(long, default_value_t = 1.0)]
    pub beta: f32,
}

#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    channel: Option<String>,
    text: String,
    themes: Vec<String>,
    cause: String,
    kind: String,
}

/// One labelled signal, read and checked, with the raw line for the scoring report.
struct Labelled {
    id: String,
    example: Example,
    line: String,
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn example(
    rules: &Classifier,
    redactor: &Redactor,
    text: &str,
    channel: &str,
    themes: Vec<String>,
    cause: &str,
    kind: &str,
) -> Example {
    let text = redactor.redact(text).into_owned();
    let (c, concepts) = rules.classify_with_concepts(&text);
    let extras = rule_features(&c, &concepts, &text);
    Example {
        channel: channel.to_string(),
        extras,
        themes,
        kind: Some(kind.to_string()),
        staff_conduct: match cause {
            "human" | "mixed" => Some(true),
            "system" => Some(false),
            _ => None,
        },
        text,
    }
}

fn read(
    path: &Path,
    rules: &Classifier,
    redactor: &Redactor,
    known: &[String],
) -> anyhow::Result<Vec<Labelled>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open `{}`", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let at = || format!("{}:{}", path.display(), n + 1);
        let line = line.with_context(at)?;
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(&line)
            .with_context(|| format!("{}: not a labelled signal", at()))?;
        if let Some(t) = r.themes.iter().find(|t| !known.contains(t)) {
            anyhow::bail!("{}: unknown theme `{t}`", at());
        }
        if !signaal_learn::DEFAULT_KINDS.contains(&r.kind.as_str()) {
            anyhow::bail!("{}: unknown kind `{}`", at(), r.kind);
        }
        let channel = r.channel.clone().unwrap_or_default();
        out.push(Labelled {
            id: r.id.clone().unwrap_or_else(at),
            example: example(
                rules, redactor, &r.text, &channel, r.themes, &r.cause, &r.kind,
            ),
            line,
        });
    }
    Ok(out)
}

pub async fn run(args: TrainArgs, cfg: &Config) -> anyhow::Result<()> {
    if args.corpus.is_empty() && !args.register {
        anyhow::bail!("give labelled NDJSON files to train on, or --register");
    }
    let rules = workers::classifier(cfg)?;
    let redactor = Redactor::new()?;
    let themes: Vec<String> = rules.themes().map(|t| t.id.clone()).collect();
    let mut train = Vec::new();
    for f in &args.corpus {
        train.extend(read(f, &rules, &redactor, &themes)?);
    }
    if args.register {
        let (ndjson, n) = crate::label::register_ndjson(cfg).await?;
        let tmp = tempfile::NamedTempFile::new()?;
        std::fs::write(tmp.path(), ndjson)?;
        train.extend(read(tmp.path(), &rules, &redactor, &themes)?);
        eprintln!("{n} corrections from the register");
    }
    let mut dev = Vec::new();
    for f in &args.dev {
        dev.extend(read(f, &rules, &redactor, &themes)?);
    }
    if args.dev.is_empty() {
        let (d, t): (Vec<_>, Vec<_>) = train
            .into_iter()
            .partition(|l| fnv(&l.id).is_multiple_of(5));
        dev = d;
        train = t;
    }
    if train.is_empty() {
        anyhow::bail!("nothing to train on");
    }
    let mut config = TrainConfig::new(
        &args.name,
        &themes.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    config.features.bits = args.bits;
    config.features.char_min = args.char_min;
    config.features.char_max = args.char_max;
    config.epochs = args.epochs;
    config.learning_rate = args.learning_rate;
    config.l2 = args.l2;
    config.seed = args.seed;
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = std::time::Instant::now();
    let examples: Vec<Example> = train.iter().map(|l| l.example.clone()).collect();
    let mut model = signaal_learn::train(&examples, &config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dev_examples: Vec<Example> = dev.iter().map(|l| l.example.clone()).collect();
    if !dev_examples.is_empty() {
        signaal_learn::calibrate(&mut model, &dev_examples, args.beta)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let bytes = model.to_bytes();
    std::fs::write(&args.out, &bytes)
        .with_context(|| format!("cannot write `{}`", args.out.display()))?;
    eprintln!(
        "trained {} on {} signals in {:.1} s: {} ({} bytes, {} in memory)",
        model.name(),
        train.len(),
        started.elapsed().as_secs_f64(),
        model.version(),
        bytes.len(),
        model.memory_bytes()
    );
    if !dev.is_empty() {
        let input: String = dev.iter().map(|l| l.line.clone() + "\n").collect();
        let learned = Learned {
            model,
            policy: Policy {
                kind_min: args.kind_min,
                veto_below: args.veto_below,
                add_min: args.add_min,
            },
        };
        let alone = evaluate_with(&rules, None, &redactor, std::io::Cursor::new(&input));
        let both = evaluate_with(
            &rules,
            Some(&learned),
            &redactor,
            std::io::Cursor::new(&input),
        );
        println!("development part: {} signals", dev.len());
        println!(
            "rules alone:   macro-F1 {:.3}, cause {:.3}, kind {:.3}",
            alone.macro_f1, alone.cause_accuracy, alone.kind_accuracy
        );
        println!(
            "rules + model: macro-F1 {:.3}, cause {:.3}, kind {:.3}",
            both.macro_f1, both.cause_accuracy, both.kind_accuracy
        );
    }
    Ok(())
}
