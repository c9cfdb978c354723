//! Linear models over hashed features: one logistic regression per theme, a softmax over the
//! kinds and a logistic regression for staff conduct against system causes, trained together.
//!
//! **Layout.** One weight row per hash bucket holds every output's weight for that bucket
//! (themes, then kinds, then staff conduct), padded with zeros to a multiple of 8 outputs, so a
//! feature costs one contiguous read at prediction time and the sum runs in 8-wide vector
//! operations. Weights are stored as `i16` with one `f32` scale per output (the largest absolute
//! weight maps to 32,767): half the memory of `f32`, and the error (at most half a step, 1/65,534
//! of the largest weight) is far below anything a probability shows.
//!
//! **Training.** AdaGrad (per-weight step `lr / √Σg²`) on the log loss with an L2 penalty on the
//! touched weights (the bias is not penalised); every example updates every output for which it
//! has a label (an example without a kind leaves the kind model alone). The order of examples is
//! shuffled each epoch by SplitMix64 from `seed`. Rare labels get more weight: a theme's positive
//! examples weigh `√(negatives / positives)`, a kind's examples `√(largest kind / this kind)`,
//! capped at `max_class_weight`. The weights are quantised once at the end, so a trained model
//! and the same model read back from its bytes predict identically.
//!
//! Invariants: deterministic (the same examples and configuration give a bit-identical model on
//! any platform: fixed order, fixed seed, no libm, no threads), no I/O, no panic on any input.

use std::collections::BTreeMap;

use crate::features::{FeatureConfig, FeatureSpan, Features, Featurizer};
use crate::hash::SplitMix64;
use crate::math::{sigmoid, softmax};
use crate::LearnError;

/// One labelled signal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Example {
    pub text: String,
    pub channel: String,
    /// Extra features, for example the rule engine's hits (`rule:theme:payment`).
    pub extras: Vec<String>,
    /// Theme ids; every id must be one of the configuration's themes.
    pub themes: Vec<String>,
    /// The kind (one of the configuration's kinds), if known.
    pub kind: Option<String>,
    /// `Some(true)` when a person's behaviour is the cause (cause human or mixed),
    /// `Some(false)` when only the system is (cause system), `None` when unknown (no theme).
    pub staff_conduct: Option<bool>,
}

/// How to train.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// The model's name, part of its version: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    pub features: FeatureConfig,
    /// Theme ids, in the order predictions list them.
    pub themes: Vec<String>,
    /// Kind labels; default complaint, compliment, question, suggestion.
    pub kinds: Vec<String>,
    /// Passes over the examples; default 10.
    pub epochs: u32,
    /// AdaGrad's base step; default 0.2.
    pub learning_rate: f32,
    /// L2 penalty per update; default 1e-5.
    pub l2: f32,
    /// Seed of the shuffle; default 0x5161.
    pub seed: u64,
    /// Upper bound of a class weight; default 10.
    pub max_class_weight: f32,
}

/// The kinds of the default taxonomy.
pub const DEFAULT_KINDS: [&str; 4] = ["complaint", "compliment", "question", "suggestion"];

impl TrainConfig {
    /// The defaults for a model called `name` over `themes`.
    pub fn new(name: &str, themes: &[&str]) -> TrainConfig {
        TrainConfig {
            name: name.to_string(),
            features: FeatureConfig::default(),
            themes: themes.iter().map(|t| t.to_string()).collect(),
            kinds: DEFAULT_KINDS.iter().map(|k| k.to_string()).collect(),
            epochs: 10,
            learning_rate: 0.2,
            l2: 1e-5,
            seed: 0x5161,
            max_class_weight: 10.0,
        }
    }

    pub fn validate(&self) -> Result<(), LearnError> {
        self.features.validate()?;
        check_labels(&self.name, &self.themes, &self.kinds).map_err(LearnError::Config)?;
        let bad = |what: &str| Err(LearnError::Config(what.to_string()));
        if !(1..=1000).contains(&self.epochs) {
            return bad("`epochs` must be in 1..=1000");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad("`learning_rate` must be a positive number");
        }
        if !(self.l2.is_finite() && self.l2 >= 0.0) {
            return bad("`l2` must be zero or a positive number");
        }
        if !(self.max_class_weight.is_finite() && self.max_class_weight >= 1.0) {
            return bad("`max_class_weight` must be at least 1");
        }
        Ok(())
    }
}

/// Most themes a model may have.
pub(crate) const MAX_THEMES: usize = 1024;
/// Most kinds a model may have.
pub(crate) const MAX_KINDS: usize = 64;
/// Longest theme id or kind, in bytes.
pub(crate) const MAX_LABEL: usize = 255;

/// The checks a model's name and labels pass, in training and in reading a model.
pub(crate) fn check_labels(name: &str, themes: &[String], kinds: &[String]) -> Result<(), String> {
    let name_ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !name_ok {
        return Err(format!(
            "model name `{name}` must be 1–64 of `A-Z a-z 0-9 . _ -`"
        ));
    }
    for (what, labels, max) in [("theme", themes, MAX_THEMES), ("kind", kinds, MAX_KINDS)] {
        if labels.is_empty() || labels.len() > max {
            return Err(format!(
                "a model needs 1 to {max} {what}s, not {}",
                labels.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for l in labels {
            if l.is_empty() || l.len() > MAX_LABEL {
                return Err(format!("{what} `{l}` must be 1 to {MAX_LABEL} bytes"));
            }
            if !seen.insert(l.as_str()) {
                return Err(format!("{what} `{l}` is listed twice"));
            }
        }
    }
    Ok(())
}

/// A trained model: featurizer configuration, labels, thresholds and weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub(crate) name: String,
    pub(crate) featurizer: Featurizer,
    pub(crate) themes: Vec<String>,
    pub(crate) thresholds: Vec<f32>,
    pub(crate) kinds: Vec<String>,
    /// Outputs: themes, kinds, staff conduct.
    pub(crate) outputs: usize,
    /// Per output: the weight of one quantisation step.
    pub(crate) scales: Vec<f32>,
    /// `dimension × row_len(outputs)` quantised weights, row-major by bucket; the padding is 0.
    pub(crate) weights: Vec<i16>,
    pub(crate) version: String,
}

/// A theme's probability and decision threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ThemeScore<'m> {
    pub theme: &'m str,
    pub probability: f32,
    pub threshold: f32,
}

impl ThemeScore<'_> {
    /// The theme applies: its probability reaches its threshold.
    pub fn tagged(&self) -> bool {
        self.probability >= self.threshold
    }
}

/// What a model says about one signal; names borrow from the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction<'m> {
    model: &'m Model,
    /// Probabilities in output order: themes, kinds, staff conduct.
    probabilities: Vec<f32>,
}

impl<'m> Prediction<'m> {
    /// Every theme, in the model's order.
    pub fn themes(&self) -> impl Iterator<Item = ThemeScore<'m>> + '_ {
        let m = self.model;
        m.themes
            .iter()
            .zip(&m.thresholds)
            .zip(&self.probabilities)
            .map(|((theme, threshold), p)| ThemeScore {
                theme,
                probability: *p,
                threshold: *threshold,
            })
    }

    /// The themes that apply.
    pub fn tagged(&self) -> impl Iterator<Item = ThemeScore<'m>> + '_ {
        self.themes().filter(ThemeScore::tagged)
    }

    /// The probability of theme `id`.
    pub fn theme(&self, id: &str) -> Option<f32> {
        self.themes().find(|t| t.theme == id).map(|t| t.probability)
    }

    /// Every kind with its probability (they sum to 1).
    pub fn kinds(&self) -> impl Iterator<Item = (&'m str, f32)> + '_ {
        let t = self.model.themes.len();
        self.model
            .kinds
            .iter()
            .map(String::as_str)
            .zip(self.probabilities.iter().skip(t).copied())
    }

    /// The most probable kind (the first one listed on a tie).
    pub fn kind(&self) -> (&'m str, f32) {
        self.kinds().fold(
            ("", f32::NEG_INFINITY),
            |best, k| if k.1 > best.1 { k } else { best },
        )
    }

    /// The probability that a person's behaviour, not the system, is the cause.
    pub fn staff_conduct(&self) -> f32 {
        self.probabilities.last().copied().unwrap_or(0.0)
    }
}

/// A text's features by bucket, with their values and the places they came from
/// ([`Model::explain`]).
#[derive(Debug, Clone, Default)]
pub struct Explanation {
    /// `(index, value)`, by index, each index once.
    values: Vec<(u32, f32)>,
    /// Every text feature's span, by index.
    spans: Vec<FeatureSpan>,
}

/// A span of the original text and how much its features added to a theme's score (log-odds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    pub start: usize,
    pub end: usize,
    pub weight: f32,
}

impl Model {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `<name>-<16 hex digits>`: the name and a hash of the model's bytes; changes with any
    /// weight or threshold. Goes into every classification the model makes.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The featurizer the model was trained with; features for it must come from this one.
    pub fn featurizer(&self) -> &Featurizer {
        &self.featurizer
    }

    pub fn themes(&self) -> &[String] {
        &self.themes
    }

    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    /// Per theme, in [`Model::themes`] order.
    pub fn thresholds(&self) -> &[f32] {
        &self.thresholds
    }

    /// The heap memory the model holds, in bytes (the weights are nearly all of it).
    pub fn memory_bytes(&self) -> usize {
        self.weights.len() * 2
            + self.scales.len() * 4
            + self.thresholds.len() * 4
            + self
                .themes
                .iter()
                .chain(&self.kinds)
                .map(|s| s.len() + 24)
                .sum::<usize>()
            + self.name.len()
            + self.version.len()
    }

    /// Shorthand for `self.featurizer().featurize(…)`.
    pub fn featurize<S: AsRef<str>>(&self, text: &str, channel: &str, extras: &[S]) -> Features {
        self.featurizer.featurize(text, channel, extras)
    }

    /// The raw scores (log-odds, and the kinds' logits) of every output.
    ///
    /// Features come in runs of one value (a namespace's `1/√k`, then the binary ones), so a
    /// run's weights are summed as integers and scaled once: `Σ v·w = v·Σ w`. The sums are exact
    /// (a run is flushed long before an `i32` could overflow). The loop is memory-bound (one
    /// row of the table per feature): with the sums in registers (`N` chunks of `LANES`) it is
    /// a few vector instructions per row, so many rows' loads are in flight at once.
    fn scores(&self, features: &Features) -> Vec<f32> {
        match row_len(self.outputs) / LANES {
            1 => self.scores_in::<1>(features),
            2 => self.scores_in::<2>(features),
            3 => self.scores_in::<3>(features),
            4 => self.scores_in::<4>(features),
            _ => self.scores_any(features),
        }
    }

    fn scores_in<const N: usize>(&self, features: &Features) -> Vec<f32> {
        /// Features per integer run at most: `RUN × 32,767` fits an `i32`.
        const RUN: usize = 1 << 15;
        let len = N * LANES;
        let mut acc = [[0f32; LANES]; N];
        let mut run = [[0i32; LANES]; N];
        let mut run_value = 0f32;
        let mut run_len = 0usize;
        for (index, value) in features.iter() {
            let at = index as usize * len;
            // An index from another configuration's featurizer would be out of range: skipped.
            let Some(row) = self.weights.get(at..at + len) else {
                continue;
            };
            if value.to_bits() != run_value.to_bits() || run_len == RUN {
                add_run(&mut acc, &mut run, run_value);
                run_value = value;
                run_len = 0;
            }
            run_len += 1;
            let (lanes, _) = row.as_chunks::<LANES>();
            for (r, w) in run.iter_mut().zip(lanes) {
                *r = widened_sum(*r, w);
            }
        }
        add_run(&mut acc, &mut run, run_value);
        acc.iter()
            .flatten()
            .zip(&self.scales)
            .map(|(a, s)| a * s)
            .collect()
    }

    /// [`Model::scores`] for rows of any length (more outputs than the fast paths take).
    fn scores_any(&self, features: &Features) -> Vec<f32> {
        let len = row_len(self.outputs);
        let mut acc = vec![0f32; len];
        for (index, value) in features.iter() {
            let at = index as usize * len;
            let Some(row) = self.weights.get(at..at + len) else {
                continue;
            };
            for (a, w) in acc.iter_mut().zip(row) {
                *a += f32::from(*w) * value;
            }
        }
        acc.iter().zip(&self.scales).map(|(a, s)| a * s).collect()
    }

    /// Probabilities for a signal's features (made by [`Model::featurizer`]).
    pub fn predict(&self, features: &Features) -> Prediction<'_> {
        let mut p = self.scores(features);
        let t = self.themes.len();
        let k = self.kinds.len();
        for v in p.iter_mut().take(t) {
            *v = sigmoid(*v);
        }
        if let Some(kinds) = p.get_mut(t..t + k) {
            softmax(kinds);
        }
        if let Some(staff) = p.get_mut(t + k) {
            *staff = sigmoid(*staff);
        }
        Prediction {
            model: self,
            probabilities: p,
        }
    }

    /// The `n` features that raised `theme`'s score most: `(index, contribution to the
    /// log-odds)`, largest first, positive ones only; `None` for an unknown theme.
    pub fn top_features(
        &self,
        theme: &str,
        features: &Features,
        n: usize,
    ) -> Option<Vec<(u32, f32)>> {
        let k = self.themes.iter().position(|t| t == theme)?;
        let mut by_index: BTreeMap<u32, f32> = BTreeMap::new();
        for (index, value) in features.iter() {
            *by_index.entry(index).or_default() += self.weight(index, k) * value;
        }
        let mut top: Vec<(u32, f32)> = by_index.into_iter().filter(|(_, c)| *c > 0.0).collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(n);
        Some(top)
    }

    /// Where each of `text`'s features came from, for [`Model::evidence`]: `features` are
    /// `text`'s (from [`Model::featurize`], with whatever channel and extras). Made once per
    /// text, it serves every theme.
    pub fn explain(&self, text: &str, features: &Features) -> Explanation {
        // Each index's value (summed where namespaces share a bucket), by index.
        let mut values: Vec<(u32, f32)> = features.iter().collect();
        values.sort_unstable_by_key(|(i, _)| *i);
        values.dedup_by(|(i, v), (j, w)| {
            let same = i == j;
            if same {
                *w += *v;
            }
            same
        });
        let mut spans = self.featurizer.explain(text);
        spans.sort_unstable_by_key(|s| s.index);
        Explanation { values, spans }
    }

    /// The `n` spans of the explained text whose features raised `theme`'s score most, largest
    /// first, positive ones only: a word with its character n-grams, or a pair of words (a
    /// bigram). Each feature's contribution is shared among the places in the text it came
    /// from. `None` for an unknown theme.
    pub fn evidence(&self, theme: &str, why: &Explanation, n: usize) -> Option<Vec<Evidence>> {
        let k = self.themes.iter().position(|t| t == theme)?;
        let mut by_span: Vec<((usize, usize), f32)> = Vec::with_capacity(why.spans.len());
        for group in why.spans.chunk_by(|a, b| a.index == b.index) {
            let Some(first) = group.first() else { continue };
            let v = why
                .values
                .binary_search_by_key(&first.index, |(i, _)| *i)
                .ok()
                .and_then(|at| why.values.get(at))
                .map_or(0.0, |(_, v)| *v);
            let share = self.weight(first.index, k) * v / group.len() as f32;
            by_span.extend(group.iter().map(|s| ((s.start, s.end), share)));
        }
        by_span.sort_unstable_by_key(|(span, _)| *span);
        let mut top: Vec<Evidence> = by_span
            .chunk_by(|a, b| a.0 == b.0)
            .filter_map(|group| {
                let ((start, end), _) = *group.first()?;
                let weight: f32 = group.iter().map(|(_, w)| w).sum();
                (weight > 0.0).then_some(Evidence { start, end, weight })
            })
            .collect();
        top.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.start.cmp(&b.start)));
        top.truncate(n);
        Some(top)
    }

    /// The dequantised weight of bucket `index` for output `k`.
    fn weight(&self, index: u32, k: usize) -> f32 {
        let w = self
            .weights
            .get(index as usize * row_len(self.outputs) + k)
            .copied()
            .unwrap_or(0);
        f32::from(w) * self.scales.get(k).copied().unwrap_or(0.0)
    }

    /// Sets the thresholds (one per theme, each in 0..=1) and renews the version.
    pub(crate) fn set_thresholds(&mut self, thresholds: Vec<f32>) {
        self.thresholds = thresholds;
        self.refresh_version();
    }

    pub(crate) fn refresh_version(&mut self) {
        let (_, digest) = crate::format::encode(self);
        self.version = format!("{}-{digest:016x}", self.name);
    }
}

/// Labels of one example as output targets.
struct Target {
    themes: Vec<bool>,
    kind: Option<usize>,
    staff: Option<bool>,
}

/// Trains a model on `examples` (see the module docs). Errors name the first example with a
/// label the configuration does not have.
pub fn train(examples: &[Example], config: &TrainConfig) -> Result<Model, LearnError> {
    config.validate()?;
    if examples.is_empty() {
        return Err(LearnError::NoExamples);
    }
    let featurizer = Featurizer::new(config.features)?;
    let (t, kinds) = (config.themes.len(), config.kinds.len());
    let stride = t + kinds + 1;
    let mut inputs = Vec::with_capacity(examples.len());
    let mut targets = Vec::with_capacity(examples.len());
    for (i, ex) in examples.iter().enumerate() {
        let mut themes = vec![false; t];
        for id in &ex.themes {
            let k = position(&config.themes, id).ok_or_else(|| LearnError::UnknownLabel {
                example: i,
                label: id.clone(),
            })?;
            themes[k] = true;
        }
        let kind = match &ex.kind {
            None => None,
            Some(kind) => {
                Some(
                    position(&config.kinds, kind).ok_or_else(|| LearnError::UnknownLabel {
                        example: i,
                        label: kind.clone(),
                    })?,
                )
            }
        };
        let mut f = featurizer.featurize(&ex.text, &ex.channel, &ex.extras);
        f.shrink();
        inputs.push(f);
        targets.push(Target {
            themes,
            kind,
            staff: ex.staff_conduct,
        });
    }
    let weights = class_weights(&targets, t, kinds, config.max_class_weight);

    let dim = featurizer.dimension();
    let mut w = vec![0f32; dim * stride];
    let mut g2 = vec![0f32; dim * stride];
    let bias = featurizer.bias_index();
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = SplitMix64::new(config.seed);
    let mut z = vec![0f32; stride];
    let mut grad = vec![0f32; stride];
    for _ in 0..config.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let (Some(x), Some(y)) = (inputs.get(i), targets.get(i)) else {
                continue;
            };
            // Forward.
            z.iter_mut().for_each(|v| *v = 0.0);
            for (index, value) in x.iter() {
                let at = index as usize * stride;
                if let Some(row) = w.get(at..at + stride) {
                    for (acc, wk) in z.iter_mut().zip(row) {
                        *acc += wk * value;
                    }
                }
            }
            // Gradient of the weighted log loss with respect to each output's score.
            for k in 0..t {
                let p = sigmoid(z[k]);
                grad[k] = if y.themes[k] {
                    (p - 1.0) * weights.theme_positive[k]
                } else {
                    p
                };
            }
            if let (Some(label), Some(logits)) = (y.kind, z.get_mut(t..t + kinds)) {
                softmax(logits);
                let cw = weights.kind[label];
                for (c, p) in logits.iter().enumerate() {
                    grad[t + c] = (p - if c == label { 1.0 } else { 0.0 }) * cw;
                }
            } else {
                grad[t..t + kinds].iter_mut().for_each(|g| *g = 0.0);
            }
            grad[t + kinds] = match y.staff {
                Some(true) => (sigmoid(z[t + kinds]) - 1.0) * weights.staff_positive,
                Some(false) => sigmoid(z[t + kinds]),
                None => 0.0,
            };
            // AdaGrad step with L2 on the touched weights (not the bias).
            let l2 = if config.l2 > 0.0 { config.l2 } else { 0.0 };
            for (index, value) in x.iter() {
                let at = index as usize * stride;
                let decay = if index == bias { 0.0 } else { l2 };
                let (Some(row), Some(acc)) =
                    (w.get_mut(at..at + stride), g2.get_mut(at..at + stride))
                else {
                    continue;
                };
                for ((wk, ak), gk) in row.iter_mut().zip(acc.iter_mut()).zip(&grad) {
                    if *gk == 0.0 {
                        continue;
                    }
                    let g = gk * value + decay * *wk;
                    *ak += g * g;
                    if *ak > 0.0 {
                        *wk -= config.learning_rate * g / ak.sqrt();
                    }
                }
            }
        }
    }
    drop(g2);

    let (scales, quantised) = quantise(&w, stride);
    drop(w);
    let mut model = Model {
        name: config.name.clone(),
        featurizer,
        themes: config.themes.clone(),
        thresholds: vec![0.5; t],
        kinds: config.kinds.clone(),
        outputs: stride,
        scales,
        weights: quantised,
        version: String::new(),
    };
    model.refresh_version();
    Ok(model)
}

fn position(labels: &[String], label: &str) -> Option<usize> {
    labels.iter().position(|l| l == label)
}

struct ClassWeights {
    theme_positive: Vec<f32>,
    kind: Vec<f32>,
    staff_positive: f32,
}

/// `√(majority / minority)`, at least 1 and at most `max` (1 when a class never occurs).
fn ratio_weight(majority: usize, minority: usize, max: f32) -> f32 {
    if minority == 0 {
        return 1.0;
    }
    (majority as f32 / minority as f32).sqrt().clamp(1.0, max)
}

fn class_weights(targets: &[Target], t: usize, kinds: usize, max: f32) -> ClassWeights {
    let n = targets.len();
    let theme_positive = (0..t)
        .map(|k| {
            let pos = targets.iter().filter(|y| y.themes[k]).count();
            ratio_weight(n - pos, pos, max)
        })
        .collect();
    let mut kind_counts = vec![0usize; kinds];
    for y in targets {
        if let Some(c) = y.kind {
            kind_counts[c] += 1;
        }
    }
    let largest = kind_counts.iter().copied().max().unwrap_or(0);
    let kind = kind_counts
        .iter()
        .map(|c| ratio_weight(largest, *c, max))
        .collect();
    let staff_pos = targets.iter().filter(|y| y.staff == Some(true)).count();
    let staff_neg = targets.iter().filter(|y| y.staff == Some(false)).count();
    ClassWeights {
        theme_positive,
        kind,
        staff_positive: ratio_weight(staff_neg, staff_pos, max),
    }
}

/// `acc + w`, lane by lane: on fixed-size arrays by value, so that it compiles to a few vector
/// instructions (widen, add) on registers.
#[inline(always)]
fn widened_sum(acc: [i32; LANES], w: &[i16; LANES]) -> [i32; LANES] {
    std::array::from_fn(|l| acc[l] + i32::from(w[l]))
}

/// `acc += value × run`, and the run emptied.
#[inline(always)]
fn add_run<const N: usize>(acc: &mut [[f32; LANES]; N], run: &mut [[i32; LANES]; N], value: f32) {
    for (a, r) in acc.iter_mut().zip(run.iter_mut()) {
        for (a, r) in a.iter_mut().zip(r.iter_mut()) {
            *a += *r as f32 * value;
            *r = 0;
        }
    }
}

/// Outputs per row are padded to a multiple of this, the width of the prediction's vector sums.
pub(crate) const LANES: usize = 8;

/// The padded length of a row of `outputs` weights.
pub(crate) fn row_len(outputs: usize) -> usize {
    outputs.div_ceil(LANES) * LANES
}

/// Per output, the scale that maps the largest absolute weight to ±32,767, and the weights
/// rounded to it, in padded rows.
fn quantise(w: &[f32], stride: usize) -> (Vec<f32>, Vec<i16>) {
    let mut max = vec![0f32; stride];
    for row in w.chunks_exact(stride) {
        for (m, v) in max.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    let scales: Vec<f32> = max.iter().map(|m| m / 32767.0).collect();
    let padding = row_len(stride) - stride;
    let quantised = w
        .chunks_exact(stride)
        .flat_map(|row| {
            row.iter()
                .zip(&scales)
                .map(|(v, s)| {
                    if *s > 0.0 {
                        (v / s).round().clamp(-32767.0, 32767.0) as i16
                    } else {
                        0
                    }
                })
                .chain(std::iter::repeat_n(0, padding))
        })
        .collect();
    (scales, quantised)
}
