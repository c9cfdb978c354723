//! The learned models end to end: training, prediction, explanation, calibration and the model
//! format, on small hand-made data sets whose answers are known.

use signaal_learn::{
    calibrate, train, Example, FeatureConfig, FormatError, LearnError, Model, TrainConfig,
    NO_EXTRAS,
};

const THEMES: [&str; 3] = ["payment", "reachability", "staff_conduct"];

fn ex(text: &str, themes: &[&str], kind: &str, staff: Option<bool>) -> Example {
    Example {
        text: text.to_string(),
        channel: "email".to_string(),
        extras: Vec::new(),
        themes: themes.iter().map(|t| t.to_string()).collect(),
        kind: Some(kind.to_string()),
        staff_conduct: staff,
    }
}

/// A toy corpus: payment texts all say "teruggestort" or "terugbetaald", reachability texts
/// "wacht"/"bereikbaar", staff-conduct texts describe a rude person; filler words are shared.
fn corpus() -> Vec<Example> {
    let fillers = [
        "ik heb gisteren",
        "mijn buurman zegt dat",
        "al twee weken",
        "sinds maandag",
        "volgens de brief",
        "na mijn verhuizing",
        "vorige maand",
        "bij de gemeente",
    ];
    let mut out = Vec::new();
    for (i, f) in fillers.iter().enumerate() {
        out.push(ex(
            &format!("{f} is mijn geld nog steeds niet teruggestort"),
            &["payment"],
            "complaint",
            Some(false),
        ));
        out.push(ex(
            &format!("{f} werd het bedrag dubbel afgeschreven en niet terugbetaald"),
            &["payment"],
            "complaint",
            Some(false),
        ));
        out.push(ex(
            &format!("{f} hing ik 40 minuten in de wacht, niemand bereikbaar"),
            &["reachability"],
            "complaint",
            Some(false),
        ));
        out.push(ex(
            &format!("{f} was de medewerker onbeschoft en schreeuwde tegen mij"),
            &["staff_conduct"],
            "complaint",
            Some(true),
        ));
        out.push(ex(
            &format!("{f} vroeg ik me af hoe ik mijn adres kan wijzigen?"),
            &[],
            "question",
            None,
        ));
        if i % 2 == 0 {
            out.push(ex(
                &format!("{f} heeft de medewerker mij heel vriendelijk geholpen, dank"),
                &["staff_conduct"],
                "compliment",
                Some(true),
            ));
        }
    }
    out
}

fn config() -> TrainConfig {
    let mut c = TrainConfig::new("toy", &THEMES);
    // A smaller table keeps the debug-build tests quick; the behaviour is the same.
    c.features = FeatureConfig {
        bits: 16,
        ..FeatureConfig::default()
    };
    // Sixty examples: AdaGrad's steps shrink with every update of a weight, so tiny data needs
    // larger and more of them than the defaults (tuned on the corpus) take.
    c.learning_rate = 0.5;
    c.epochs = 30;
    c
}

fn trained() -> Model {
    match train(&corpus(), &config()) {
        Ok(m) => m,
        Err(e) => panic!("training the toy corpus failed: {e}"),
    }
}

fn p(model: &Model, theme: &str, text: &str) -> f32 {
    let f = model.featurize(text, "email", NO_EXTRAS);
    model.predict(&f).theme(theme).unwrap_or(f32::NAN)
}

#[test]
fn training_is_deterministic_to_the_bit() {
    let a = trained().to_bytes();
    let b = trained().to_bytes();
    assert!(
        a == b,
        "training twice on the same data gave different bytes"
    );
    let mut other = config();
    other.seed = 7;
    let c = match train(&corpus(), &other) {
        Ok(m) => m.to_bytes(),
        Err(e) => panic!("{e}"),
    };
    assert!(
        a != c,
        "another seed shuffles differently and so gives another model"
    );
}

#[test]
fn learns_the_rule_and_generalises_through_character_ngrams() {
    let m = trained();
    // Seen word.
    let seen = p(&m, "payment", "mijn geld is niet teruggestort");
    // "terugstorting" never occurs in training; it shares n-grams with "teruggestort".
    let paraphrase = p(&m, "payment", "wanneer komt de terugstorting eindelijk");
    let unrelated = p(&m, "payment", "wanneer komt de monteur eindelijk");
    // The two probes differ in one word, which training never saw; what lifts the first is the
    // n-grams "terugstorting" shares with "teruggestort" and "terugbetaald".
    assert!(seen > 0.9, "payment on a training-like text: {seen}");
    assert!(
        paraphrase > 2.0 * unrelated && paraphrase > 0.3,
        "the paraphrase should carry the theme ({paraphrase}), an unrelated text not ({unrelated})"
    );
    // The rule is learned: every training example is on the right side of 0.5, and the
    // paraphrase ranks above every training example without the theme.
    let mut highest_negative = 0f32;
    for e in corpus() {
        let q = p(&m, "payment", &e.text);
        if e.themes.iter().any(|t| t == "payment") {
            assert!(q > 0.5, "a payment example scores {q}: {}", e.text);
        } else {
            assert!(q < 0.5, "an example without payment scores {q}: {}", e.text);
            highest_negative = highest_negative.max(q);
        }
    }
    assert!(
        paraphrase > highest_negative,
        "the paraphrase ({paraphrase}) should outrank every negative example ({highest_negative})"
    );
    let wait = p(&m, "reachability", "weer 40 minuten in de wacht gestaan");
    assert!(wait > 0.7, "reachability: {wait}");
    assert!(p(&m, "payment", "weer 40 minuten in de wacht gestaan") < 0.3);
}

#[test]
fn predicts_kind_and_staff_conduct() {
    let m = trained();
    let f = m.featurize("hoe kan ik mijn adres wijzigen?", "email", NO_EXTRAS);
    let pred = m.predict(&f);
    assert_eq!(
        pred.kind().0,
        "question",
        "kinds: {:?}",
        pred.kinds().collect::<Vec<_>>()
    );
    let total: f32 = pred.kinds().map(|k| k.1).sum();
    assert!(
        (total - 1.0).abs() < 1e-5,
        "kind probabilities sum to {total}"
    );
    let rude = m.predict(&m.featurize("de medewerker was onbeschoft", "email", NO_EXTRAS));
    let system = m.predict(&m.featurize("mijn geld is niet teruggestort", "email", NO_EXTRAS));
    assert!(
        rude.staff_conduct() > 0.7 && system.staff_conduct() < 0.3,
        "staff conduct: rude {} vs payment {}",
        rude.staff_conduct(),
        system.staff_conduct()
    );
    assert!(rude.tagged().any(|t| t.theme == "staff_conduct"));
}

#[test]
fn explanations_point_at_the_words_that_raised_the_theme() {
    let m = trained();
    let text = "Gisteren: mijn geld is nog steeds niet teruggestort!";
    let f = m.featurize(text, "email", NO_EXTRAS);
    let why = m.explain(text, &f);
    let ev = m.evidence("payment", &why, 3).unwrap_or_default();
    let words: Vec<&str> = ev.iter().map(|e| &text[e.start..e.end]).collect();
    assert!(
        words.first().is_some_and(|w| w.contains("teruggestort")),
        "the strongest evidence should be `teruggestort`, got {words:?}"
    );
    assert!(
        ev.windows(2).all(|w| w[0].weight >= w[1].weight),
        "sorted, largest first"
    );
    let top = m.top_features("payment", &f, 5).unwrap_or_default();
    assert!(!top.is_empty() && top.iter().all(|(_, c)| *c > 0.0));
    let spans = m.featurizer().explain(text);
    let (best, _) = top[0];
    assert!(
        spans.iter().any(|s| s.index == best),
        "the top feature comes from the text and has a span"
    );
    assert!(m.top_features("no_such_theme", &f, 5).is_none());
    assert!(m.evidence("no_such_theme", &why, 5).is_none());
}

#[test]
fn rule_hits_as_extra_features_are_learned() {
    // Texts that say nothing themselves: only the rule hit tells the themed ones apart.
    let mut data = corpus();
    for (i, filler) in [
        "zo gaat dat al",
        "het is weer zover",
        "daar sta je dan",
        "tja",
    ]
    .iter()
    .enumerate()
    {
        for with_rule in [true, false] {
            let mut e = ex(&format!("{filler} {i}"), &[], "complaint", None);
            if with_rule {
                e.extras.push("rule:theme:reachability".to_string());
                e.themes.push("reachability".to_string());
            }
            data.push(e);
        }
    }
    let m = match train(&data, &config()) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    let text = "zo gaat dat al sinds maandag";
    let with = m.predict(&m.featurize(text, "email", &["rule:theme:reachability"]));
    let without = m.predict(&m.featurize(text, "email", NO_EXTRAS));
    let (a, b) = (
        with.theme("reachability").unwrap_or(0.0),
        without.theme("reachability").unwrap_or(1.0),
    );
    assert!(
        a > 0.5 && b < 0.5,
        "the rule hit decides reachability: {a} with, {b} without"
    );
}

#[test]
fn round_trip_keeps_bytes_version_and_predictions() {
    let m = trained();
    let bytes = m.to_bytes();
    let back = match Model::from_bytes(&bytes) {
        Ok(b) => b,
        Err(e) => panic!("reading the model back failed: {e}"),
    };
    assert_eq!(back, m, "the model read back equals the model written");
    assert!(back.to_bytes() == bytes);
    assert_eq!(back.version(), m.version());
    assert!(m.version().starts_with("toy-") && m.version().len() == "toy-".len() + 16);
    let f = m.featurize("geld niet teruggestort", "email", NO_EXTRAS);
    assert_eq!(m.predict(&f), back.predict(&f));
}

#[test]
fn damaged_or_foreign_bytes_are_refused_without_panicking() {
    let bytes = trained().to_bytes();
    assert!(matches!(
        Model::from_bytes(b""),
        Err(FormatError::Truncated(_))
    ));
    assert!(matches!(
        Model::from_bytes(b"PK\x03\x04 not a model at all"),
        Err(FormatError::BadMagic)
    ));
    // Every truncation.
    for n in (0..bytes.len())
        .step_by(97)
        .chain(bytes.len() - 9..bytes.len())
    {
        assert!(
            Model::from_bytes(&bytes[..n]).is_err(),
            "{n} of {} bytes accepted",
            bytes.len()
        );
    }
    // A flipped bit anywhere after the version fails the checksum.
    for at in (10..bytes.len()).step_by(53) {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        assert_eq!(
            Model::from_bytes(&bad),
            Err(FormatError::Checksum),
            "byte {at} flipped"
        );
    }
    // A trailing byte.
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(Model::from_bytes(&longer).is_err());
    // A future version is named as such.
    let mut future = bytes.clone();
    future[8] = 2;
    assert_eq!(
        Model::from_bytes(&future),
        Err(FormatError::UnsupportedVersion(2))
    );
    // Garbage of every shape.
    let mut state = 1u64;
    for len in [0usize, 7, 8, 12, 20, 64, 1000, 10_000] {
        let mut junk: Vec<u8> = (0..len)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                (state >> 56) as u8
            })
            .collect();
        if junk.len() >= 10 {
            junk[..8].copy_from_slice(b"SIGLEARN");
            junk[8..10].copy_from_slice(&1u16.to_le_bytes());
        }
        assert!(Model::from_bytes(&junk).is_err());
    }
}

#[test]
fn calibration_moves_thresholds_to_the_best_f1() {
    let mut m = trained();
    let before = m.version().to_string();
    // A dev set where payment texts score moderately: the best threshold is below them.
    let dev = vec![
        ex(
            "de terugstorting blijft uit",
            &["payment"],
            "complaint",
            Some(false),
        ),
        ex(
            "is het bedrag al teruggestort",
            &["payment"],
            "question",
            Some(false),
        ),
        ex("geld terug?", &["payment"], "question", Some(false)),
        ex("de monteur kwam niet", &[], "complaint", None),
        ex("hoe wijzig ik mijn adres", &[], "question", None),
    ];
    let report = match calibrate(&mut m, &dev, 1.0) {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    };
    let pay = report.iter().find(|r| r.theme == "payment");
    let Some(pay) = pay else {
        panic!("no report for payment")
    };
    assert_eq!(pay.positives, 3);
    assert!(
        pay.f_beta.is_some_and(|f| f >= 0.8),
        "payment F1 on dev: {pay:?}"
    );
    assert!((0.02..=0.98).contains(&pay.threshold));
    let reach = report.iter().find(|r| r.theme == "reachability");
    assert_eq!(
        reach.map(|r| (r.positives, r.threshold)),
        Some((0, 0.5)),
        "no positives: kept"
    );
    assert_ne!(
        m.version(),
        before,
        "new thresholds are a new model version"
    );
    let back = Model::from_bytes(&m.to_bytes());
    assert_eq!(
        back.map(|b| b.thresholds().to_vec()),
        Ok(m.thresholds().to_vec())
    );
    assert!(calibrate(&mut m, &dev, 0.0).is_err());
}

#[test]
fn bad_configuration_and_labels_are_refused() {
    let data = corpus();
    let mut c = config();
    c.themes.push("payment".to_string());
    assert!(
        matches!(train(&data, &c), Err(LearnError::Config(_))),
        "duplicate theme"
    );
    let mut c = config();
    c.name = "has space".to_string();
    assert!(matches!(train(&data, &c), Err(LearnError::Config(_))));
    let mut c = config();
    c.epochs = 0;
    assert!(train(&data, &c).is_err());
    assert_eq!(train(&[], &config()).err(), Some(LearnError::NoExamples));
    let mut bad = data.clone();
    bad[3].themes.push("weather".to_string());
    assert_eq!(
        train(&bad, &config()).err(),
        Some(LearnError::UnknownLabel {
            example: 3,
            label: "weather".to_string()
        })
    );
    let mut bad = data;
    bad[0].kind = Some("rant".to_string());
    assert!(matches!(
        train(&bad, &config()),
        Err(LearnError::UnknownLabel { example: 0, .. })
    ));
}

#[test]
fn other_feature_configurations_train_and_round_trip() {
    let mut c = config();
    c.features = FeatureConfig {
        bits: 12,
        char_min: 2,
        char_max: 6,
        bigrams: false,
        negation_window: 0,
    };
    c.epochs = 5;
    let m = match train(&corpus(), &c) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(m.featurizer().config(), &c.features);
    let back = Model::from_bytes(&m.to_bytes());
    assert_eq!(
        back.as_ref().map(|b| b.featurizer().config()),
        Ok(&c.features)
    );
    assert!(p(&m, "payment", "geld niet teruggestort") > p(&m, "payment", "de monteur kwam"));
}

#[test]
fn features_from_another_featurizer_do_not_panic() {
    let m = trained();
    let wide = signaal_learn::Featurizer::new(FeatureConfig {
        bits: 24,
        ..FeatureConfig::default()
    });
    let Ok(wide) = wide else {
        panic!("24 bits is a valid configuration")
    };
    let f = wide.featurize("geld niet teruggestort", "email", NO_EXTRAS);
    let pred = m.predict(&f);
    assert!(pred.themes().all(|t| (0.0..=1.0).contains(&t.probability)));
    assert!(m.top_features("payment", &f, 3).is_some());
}
