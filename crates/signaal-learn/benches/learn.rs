//! Featurizing and predicting throughput on one core, and model sizes.
//!
//! `cargo bench -p signaal-learn --bench learn`. For B = 16, 18 and 20 bits, a model with the 10
//! themes of the default taxonomy is trained on 3,000 synthetic Dutch signals, then 2,000 other
//! 300-byte synthetic Dutch texts are featurized and predicted, best of 20 rounds (the machine
//! may be shared; the best round is the one least disturbed). Results in BENCHMARKS.md.

use std::hint::black_box;
use std::time::Instant;

use signaal_learn::{train, Example, FeatureConfig, Features, Model, TrainConfig};

const THEMES: [&str; 10] = [
    "staff_conduct",
    "unclear_communication",
    "reachability",
    "response_time",
    "digital_service",
    "handoffs",
    "repeat_story",
    "payment",
    "commitments",
    "product_quality",
];

/// Words per theme, and filler; a text is filler with a few theme words in it.
const THEME_WORDS: [&[&str]; 10] = [
    &[
        "onbeschoft",
        "schreeuwde",
        "luisterde",
        "medewerker",
        "grof",
        "onvriendelijk",
    ],
    &[
        "brief",
        "onduidelijk",
        "snapt",
        "ambtelijke",
        "taal",
        "begrijpelijk",
    ],
    &[
        "wacht",
        "minuten",
        "bereikbaar",
        "telefoon",
        "vergadering",
        "opgenomen",
    ],
    &[
        "weken",
        "reactie",
        "antwoord",
        "duurt",
        "behandeling",
        "wachten",
    ],
    &[
        "digid",
        "inloggen",
        "website",
        "app",
        "formulier",
        "storing",
    ],
    &[
        "doorverbonden",
        "afdeling",
        "kastje",
        "muur",
        "verwezen",
        "eigenaar",
    ],
    &[
        "opnieuw",
        "verhaal",
        "dossier",
        "telkens",
        "vertellen",
        "vastgelegd",
    ],
    &[
        "teruggestort",
        "betaling",
        "factuur",
        "dubbel",
        "afgeschreven",
        "terugbetaald",
    ],
    &[
        "teruggebeld",
        "afspraak",
        "beloofd",
        "monteur",
        "gekomen",
        "nagekomen",
    ],
    &[
        "kapot",
        "beschadigd",
        "pakket",
        "reparatie",
        "kwaliteit",
        "defect",
    ],
];

const FILLER: &[&str] = &[
    "ik",
    "heb",
    "al",
    "drie",
    "keer",
    "gebeld",
    "maar",
    "de",
    "het",
    "een",
    "is",
    "nog",
    "niet",
    "mijn",
    "was",
    "en",
    "helemaal",
    "toch",
    "gisteren",
    "vorige",
    "week",
    "zou",
    "worden",
    "geen",
    "meer",
    "van",
    "jullie",
    "gemeente",
    "verzekering",
    "één",
    "café",
    "graag",
    "waarom",
    "zo",
    "lang",
    "nooit",
    "gehoord",
    "daarna",
    "weer",
    "klant",
];

/// A linear congruential generator: the bench needs varied text, not good randomness.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// A synthetic signal of about `len` bytes with one or two themes.
fn signal(rng: &mut Lcg, len: usize) -> Example {
    let first = rng.next(THEMES.len());
    let second = if rng.next(3) == 0 {
        Some(rng.next(THEMES.len()))
    } else {
        None
    };
    let mut text = String::new();
    while text.len() < len {
        let w = match rng.next(5) {
            0 => THEME_WORDS[first][rng.next(6)],
            1 if second.is_some() => THEME_WORDS[second.unwrap_or(first)][rng.next(6)],
            _ => FILLER[rng.next(FILLER.len())],
        };
        text.push_str(w);
        text.push_str(match rng.next(12) {
            0 => ", ",
            1 => ". ",
            _ => " ",
        });
    }
    let mut cut = len.min(text.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text.truncate(cut);
    let mut themes = vec![THEMES[first].to_string()];
    if let Some(s) = second.filter(|s| *s != first) {
        themes.push(THEMES[s].to_string());
    }
    Example {
        text,
        channel: ["email", "phone", "twitter"][rng.next(3)].to_string(),
        extras: Vec::new(),
        kind: Some(["complaint", "complaint", "complaint", "question"][rng.next(4)].to_string()),
        staff_conduct: Some(first == 0),
        themes,
    }
}

/// Seconds of the fastest of `rounds` runs of `f`.
fn best(rounds: usize, mut f: impl FnMut()) -> f64 {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64()
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    let mut rng = Lcg(42);
    let training: Vec<Example> = (0..3000).map(|_| signal(&mut rng, 300)).collect();
    let texts: Vec<Example> = (0..2000).map(|_| signal(&mut rng, 300)).collect();
    let n = texts.len() as f64;
    println!("{} texts of {} bytes", texts.len(), texts[0].text.len());
    println!(
        "| bits | features/text | featurize | predict | featurize + predict | model in memory | model file |"
    );
    println!("|---|---|---|---|---|---|---|");
    for bits in [16u8, 18, 20] {
        let mut config = TrainConfig::new("bench", &THEMES);
        config.features = FeatureConfig {
            bits,
            ..FeatureConfig::default()
        };
        let started = Instant::now();
        let model: Model = match train(&training, &config) {
            Ok(m) => m,
            Err(e) => panic!("training the bench model failed: {e}"),
        };
        let train_s = started.elapsed().as_secs_f64();
        let f = model.featurizer();
        let mut out = Features::default();
        let mut count = 0usize;
        for t in &texts {
            f.featurize_into(&t.text, &t.channel, &t.extras, &mut out);
            count += out.len();
        }
        let featurize = best(20, || {
            for t in &texts {
                f.featurize_into(black_box(&t.text), &t.channel, &t.extras, &mut out);
            }
        });
        let features: Vec<Features> = texts
            .iter()
            .map(|t| f.featurize(&t.text, &t.channel, &t.extras))
            .collect();
        let predict = best(20, || {
            for x in &features {
                black_box(model.predict(black_box(x)));
            }
        });
        let both = best(20, || {
            for t in &texts {
                f.featurize_into(black_box(&t.text), &t.channel, &t.extras, &mut out);
                black_box(model.predict(&out));
            }
        });
        println!(
            "| {bits} | {} | {:.2} µs | {:.2} µs | **{:.0} signals/s** ({:.2} µs) | {:.1} MiB | {:.2} MiB |",
            count / texts.len(),
            featurize / n * 1e6,
            predict / n * 1e6,
            n / both,
            both / n * 1e6,
            model.memory_bytes() as f64 / (1 << 20) as f64,
            model.to_bytes().len() as f64 / (1 << 20) as f64,
        );
        eprintln!(
            "  (B = {bits}: training on {} signals took {train_s:.1} s)",
            training.len()
        );
    }
}
