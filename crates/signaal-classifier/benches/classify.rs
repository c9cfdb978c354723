//! Classification throughput over the labelled corpus (about 300-byte texts), on one core.
//!
//! `cargo bench -p signaal-classifier --bench classify`; results in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use signaal_classifier::privacy::Redactor;
use signaal_classifier::Classifier;

fn corpus() -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus/dev.ndjson");
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_string))
        .collect()
}

fn bench(c: &mut Criterion) {
    let texts = corpus();
    assert!(!texts.is_empty(), "corpus/dev.ndjson is missing");
    let classifier = match Classifier::default_taxonomy() {
        Ok(c) => c,
        Err(e) => panic!("default taxonomy: {e}"),
    };
    let redactor = match Redactor::new() {
        Ok(r) => r,
        Err(e) => panic!("redactor: {e}"),
    };
    let bytes: usize = texts.iter().map(String::len).sum();
    eprintln!("{} texts, mean {} bytes", texts.len(), bytes / texts.len());

    group(c, "corpus", &texts, &classifier, &redactor);

    // The target is stated for ~300-byte texts: join corpus texts into signals of 300 bytes.
    let mut long = Vec::new();
    let mut cur = String::new();
    for t in texts.iter().cycle().take(texts.len() * 3) {
        cur.push_str(t);
        cur.push(' ');
        if cur.len() >= 300 {
            let mut cut = 300;
            while !cur.is_char_boundary(cut) {
                cut -= 1;
            }
            cur.truncate(cut);
            long.push(std::mem::take(&mut cur));
        }
    }
    eprintln!("{} texts of 300 bytes", long.len());
    group(c, "300-byte", &long, &classifier, &redactor);
}

/// Classification alone, and redaction followed by classification, over `texts`.
fn group(
    c: &mut Criterion,
    name: &str,
    texts: &[String],
    classifier: &Classifier,
    redactor: &Redactor,
) {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("classify", |b| {
        b.iter(|| {
            for t in texts {
                black_box(classifier.classify(black_box(t)));
            }
        })
    });
    let learned = match signaal_classifier::learned::LearnedConfig::default().load() {
        Ok(Some(l)) => l,
        Ok(None) => panic!("the learned layer is off by default?"),
        Err(e) => panic!("the embedded model: {e}"),
    };
    eprintln!("model in memory: {} bytes", learned.model.memory_bytes());
    g.bench_function("classify+model", |b| {
        b.iter(|| {
            for t in texts {
                black_box(signaal_classifier::learned::classify(
                    classifier,
                    Some(&learned),
                    black_box(t),
                    "email",
                ));
            }
        })
    });
    // The model's parts on their own: featurizing (with the rules' findings as extras), and
    // scoring the features.
    let prepared: Vec<(String, Vec<String>)> = texts
        .iter()
        .map(|t| {
            let (c, concepts) = classifier.classify_with_concepts(t);
            let extras = signaal_classifier::learned::rule_features(&c, &concepts, t);
            (t.clone(), extras)
        })
        .collect();
    g.bench_function("model:featurize", |b| {
        b.iter(|| {
            for (t, extras) in &prepared {
                black_box(learned.model.featurize(black_box(t), "email", extras));
            }
        })
    });
    let features: Vec<_> = prepared
        .iter()
        .map(|(t, extras)| learned.model.featurize(t, "email", extras))
        .collect();
    g.bench_function("model:predict", |b| {
        b.iter(|| {
            for f in &features {
                black_box(learned.model.predict(black_box(f)));
            }
        })
    });
    g.bench_function("model:explain", |b| {
        b.iter(|| {
            for ((t, _), f) in prepared.iter().zip(&features) {
                black_box(learned.model.explain(black_box(t), f));
            }
        })
    });
    g.bench_function("redact+classify", |b| {
        b.iter(|| {
            for t in texts {
                let r = redactor.redact(black_box(t));
                black_box(classifier.classify(&r));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
