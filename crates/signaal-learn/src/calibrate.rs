//! Decision thresholds per theme, chosen on a development set.
//!
//! For each theme the dev set's probabilities are sorted, and every cut between two neighbouring
//! distinct probabilities is tried; the threshold is the midpoint of the cut with the highest
//! F-beta (β = 1: F1; β < 1 favours precision, β > 1 recall), the highest such cut on a tie. A
//! theme without positive examples in the dev set keeps its threshold. Thresholds stay within
//! `0.02..=0.98`, so a small dev set cannot make a theme fire on everything or on nothing.
//!
//! Invariants: deterministic, no I/O, no panic on any input.

use crate::model::{Example, Model};
use crate::LearnError;

/// Lowest and highest threshold calibration sets.
const BOUNDS: (f32, f32) = (0.02, 0.98);

/// What calibration found for one theme.
#[derive(Debug, Clone, PartialEq)]
pub struct ThemeCalibration {
    pub theme: String,
    pub threshold: f32,
    /// Positive examples of the theme in the dev set.
    pub positives: usize,
    /// Precision, recall and F-beta on the dev set at `threshold`; `None` without positives.
    pub precision: Option<f32>,
    pub recall: Option<f32>,
    pub f_beta: Option<f32>,
}

/// Sets `model`'s per-theme thresholds to maximise F-beta on `dev` (which renews its version)
/// and reports them. Errors on an invalid `beta` or a label the model does not have.
pub fn calibrate(
    model: &mut Model,
    dev: &[Example],
    beta: f32,
) -> Result<Vec<ThemeCalibration>, LearnError> {
    if !(beta.is_finite() && beta > 0.0) {
        return Err(LearnError::Config(format!(
            "`beta` must be positive, not {beta}"
        )));
    }
    for (i, ex) in dev.iter().enumerate() {
        if let Some(unknown) = ex.themes.iter().find(|t| !model.themes().contains(t)) {
            return Err(LearnError::UnknownLabel {
                example: i,
                label: unknown.clone(),
            });
        }
    }
    let probabilities: Vec<Vec<f32>> = dev
        .iter()
        .map(|ex| {
            let f = model.featurize(&ex.text, &ex.channel, &ex.extras);
            model.predict(&f).themes().map(|t| t.probability).collect()
        })
        .collect();
    let b2 = beta * beta;
    let mut thresholds = model.thresholds().to_vec();
    let mut report = Vec::with_capacity(thresholds.len());
    for (k, theme) in model.themes().iter().enumerate() {
        let mut scored: Vec<(f32, bool)> = probabilities
            .iter()
            .zip(dev)
            .map(|(p, ex)| (p.get(k).copied().unwrap_or(0.0), ex.themes.contains(theme)))
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let positives = scored.iter().filter(|s| s.1).count();
        let current = thresholds.get(k).copied().unwrap_or(0.5);
        if positives == 0 {
            report.push(ThemeCalibration {
                theme: theme.clone(),
                threshold: current,
                positives,
                precision: None,
                recall: None,
                f_beta: None,
            });
            continue;
        }
        // Sweep from the highest probability down: after taking the first i examples, the cut
        // lies between scored[i - 1] and scored[i].
        let (mut tp, mut fp) = (0usize, 0usize);
        // (F-beta, threshold) of the best cut so far.
        let mut best: Option<(f32, f32)> = None;
        for i in 0..scored.len() {
            if scored[i].1 {
                tp += 1;
            } else {
                fp += 1;
            }
            let here = scored[i].0;
            let next = scored.get(i + 1).map(|s| s.0);
            if next == Some(here) {
                continue; // not a cut: equal probabilities fall on the same side
            }
            let fn_ = positives - tp;
            let f = (1.0 + b2) * tp as f32 / ((1.0 + b2) * tp as f32 + b2 * fn_ as f32 + fp as f32);
            let threshold = match next {
                Some(n) => (here + n) / 2.0,
                None => here,
            };
            if best.is_none_or(|b| f > b.0) {
                best = Some((f, threshold));
            }
        }
        let Some((_, threshold)) = best else {
            continue;
        };
        let threshold = threshold.clamp(BOUNDS.0, BOUNDS.1);
        if let Some(t) = thresholds.get_mut(k) {
            *t = threshold;
        }
        // Report what the clamped threshold gives.
        let tp_at = scored.iter().filter(|s| s.1 && s.0 >= threshold).count();
        let fp_at = scored.iter().filter(|s| !s.1 && s.0 >= threshold).count();
        let precision = if tp_at + fp_at > 0 {
            tp_at as f32 / (tp_at + fp_at) as f32
        } else {
            0.0
        };
        let recall = tp_at as f32 / positives as f32;
        let f_beta = if precision + recall > 0.0 {
            (1.0 + b2) * precision * recall / (b2 * precision + recall)
        } else {
            0.0
        };
        report.push(ThemeCalibration {
            theme: theme.clone(),
            threshold,
            positives,
            precision: Some(precision),
            recall: Some(recall),
            f_beta: Some(f_beta),
        });
    }
    model.set_thresholds(thresholds);
    Ok(report)
}
