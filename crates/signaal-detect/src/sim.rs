//! A simulation study in the manner of Noufaily et al. (2013), on hourly buckets: baselines
//! drawn from a negative binomial with daily and weekly seasonality at a low, medium and high
//! level, outbreaks injected at random times, fixed seeds. Each method sees the same draws and
//! is scored on probability of detection, false alerts per series per week and time to
//! detection.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Gamma, Poisson};
use serde::Serialize;

use crate::lifecycle::{Change, Lifecycle};
use crate::watch::Watch;
use crate::Settings;

/// How many signals an hour, on average over the week.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn mean(self) -> f64 {
        match self {
            Level::Low => 0.5,
            Level::Medium => 5.0,
            Level::High => 50.0,
        }
    }
}

/// What is injected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Outbreak {
    /// Nothing (for the false-alert rate).
    None,
    /// Three buckets at `factor` times the expected count.
    Burst { factor: f64 },
    /// Two days rising linearly to `factor` times the expected count.
    Rise { factor: f64 },
}

impl Outbreak {
    fn buckets(self) -> i64 {
        match self {
            Outbreak::None => 0,
            Outbreak::Burst { .. } => 3,
            Outbreak::Rise { .. } => 48,
        }
    }

    /// Extra mean at step `i` of the outbreak, over a baseline mean `mu`.
    fn extra(self, i: i64, mu: f64) -> f64 {
        match self {
            Outbreak::None => 0.0,
            Outbreak::Burst { factor } => (factor - 1.0) * mu,
            Outbreak::Rise { factor } => (factor - 1.0) * mu * (i + 1) as f64 / 48.0,
        }
    }
}

/// The detectors compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Detector {
    /// The old alerter: an alert at 10 signals in a bucket.
    FixedThreshold,
    /// EARS C1: mean + 3 sd of the seven buckets just before.
    EarsC1,
    /// signaal's: Farrington flexible + CUSUM, EARS while history is short, with the guard
    /// and the lifecycle.
    Signaal,
}

/// Shape of the baseline: mean at bucket `b` (hour of day and weekday) for a weekly mean `m`.
pub fn seasonal_mean(m: f64, b: i64) -> f64 {
    let hour = b.rem_euclid(24) as f64;
    // Quiet at night, busiest late morning: 0.2 to 1.8 around 1.
    let daily = 1.0 + 0.8 * ((hour - 5.0) / 24.0 * std::f64::consts::TAU).sin();
    let weekday = b.div_euclid(24).rem_euclid(7);
    // Bucket 0 was a Thursday: weekday 2 and 3 are Saturday and Sunday.
    let weekly = if weekday == 2 || weekday == 3 {
        0.55
    } else {
        1.18
    };
    m * daily * weekly
}

/// Negative-binomial draw with mean `mu` and variance `phi · mu` (gamma–Poisson mixture).
fn draw(rng: &mut StdRng, mu: f64, phi: f64) -> u64 {
    if mu <= 0.0 {
        return 0;
    }
    let lambda = if phi > 1.0 {
        let shape = mu / (phi - 1.0);
        match Gamma::new(shape, mu / shape) {
            Ok(g) => g.sample(rng),
            Err(_) => mu,
        }
    } else {
        mu
    };
    Poisson::new(lambda.max(1e-12))
        .map(|p| p.sample(rng) as u64)
        .unwrap_or(0)
}

/// One study cell: a level, an outbreak shape, a number of series.
#[derive(Debug, Clone, Copy)]
pub struct Cell {
    pub level: Level,
    pub outbreak: Outbreak,
    pub series: usize,
    pub seed: u64,
}

/// Weeks of history before the evaluation starts, and weeks evaluated.
pub const WARMUP_WEEKS: i64 = 8;
pub const EVAL_WEEKS: i64 = 4;
/// Over-dispersion of the simulated baselines.
pub const PHI: f64 = 1.5;

#[derive(Debug, Clone, Default, Serialize)]
pub struct Score {
    pub series: usize,
    /// Outbreaks alerted on within the allowed delay.
    pub detected: usize,
    pub outbreaks: usize,
    /// Alert starts outside any outbreak.
    pub false_alerts: usize,
    pub weeks: f64,
    /// Buckets from outbreak start to alert, for those detected.
    pub delays: Vec<i64>,
    /// Buckets assessed, for speed.
    pub assessments: u64,
    /// Each outbreak's first bucket, its baseline mean there, and whether it was detected.
    pub outbreak_log: Vec<(i64, f64, bool)>,
}

impl Score {
    pub fn detection(&self) -> f64 {
        self.detected as f64 / self.outbreaks.max(1) as f64
    }

    pub fn false_per_week(&self) -> f64 {
        self.false_alerts as f64 / self.weeks.max(1e-9)
    }

    pub fn median_delay(&self) -> Option<i64> {
        let mut d = self.delays.clone();
        d.sort_unstable();
        d.get(d.len() / 2).copied()
    }
}

/// How soon an alert must come to count as a detection: within 2 buckets of the start for a
/// burst, any time during a rise.
fn allowed_delay(o: Outbreak) -> i64 {
    match o {
        Outbreak::Burst { .. } => 2,
        _ => o.buckets() - 1,
    }
}

/// Runs `detector` over one cell.
pub fn run(cell: Cell, detector: Detector, settings: &Settings, life: &Lifecycle) -> Score {
    let mut score = Score::default();
    let week = 7 * 24;
    let start = 0i64;
    let eval_from = start + WARMUP_WEEKS * week;
    let end = eval_from + EVAL_WEEKS * week;
    for k in 0..cell.series {
        let mut rng =
            StdRng::seed_from_u64(cell.seed.wrapping_mul(1_000_003).wrapping_add(k as u64));
        // The outbreak starts somewhere in the evaluated weeks, leaving room to finish.
        let onset = if cell.outbreak == Outbreak::None {
            i64::MAX
        } else {
            rng.random_range(eval_from..end - cell.outbreak.buckets())
        };
        let counts: Vec<u64> = (start..end)
            .map(|b| {
                let mu = seasonal_mean(cell.level.mean(), b);
                let extra = if (onset..onset + cell.outbreak.buckets()).contains(&b) {
                    cell.outbreak.extra(b - onset, mu)
                } else {
                    0.0
                };
                draw(&mut rng, mu, PHI) + draw(&mut rng, extra, 1.0)
            })
            .collect();
        let (alert_starts, alarms) = alerts(detector, &counts, start, settings, life, &mut score);
        score.series += 1;
        score.weeks += EVAL_WEEKS as f64;
        if cell.outbreak != Outbreak::None {
            score.outbreaks += 1;
        }
        let outbreak_span = onset..onset.saturating_add(cell.outbreak.buckets());
        // Detected: the detector alarmed (guard passed) within the allowed delay, whether or
        // not an alert was already open. False: an alert that starts outside the outbreak.
        let detected = alarms
            .iter()
            .find(|b| outbreak_span.contains(*b) && **b - onset <= allowed_delay(cell.outbreak))
            .map(|b| b - onset);
        score.false_alerts += alert_starts
            .iter()
            .filter(|b| **b >= eval_from && !outbreak_span.contains(*b))
            .count();
        if cell.outbreak != Outbreak::None {
            let mu = seasonal_mean(cell.level.mean(), onset);
            score.outbreak_log.push((onset, mu, detected.is_some()));
        }
        if let Some(d) = detected {
            score.detected += 1;
            score.delays.push(d);
        }
    }
    score
}

/// The buckets where `detector` starts an alert (fires), and those where it alarms, over
/// `counts` (bucket `start` first).
fn alerts(
    detector: Detector,
    counts: &[u64],
    start: i64,
    settings: &Settings,
    life: &Lifecycle,
    score: &mut Score,
) -> (Vec<i64>, Vec<i64>) {
    let mut starts = Vec::new();
    let mut alarms = Vec::new();
    match detector {
        Detector::FixedThreshold | Detector::EarsC1 => {
            // Stateless rules: an alert starts where an alarm follows a bucket without one.
            let mut firing = false;
            for (i, &y) in counts.iter().enumerate() {
                let alarm = match detector {
                    Detector::FixedThreshold => y >= 10,
                    _ => {
                        i >= 7 && {
                            let base = &counts[i - 7..i];
                            let mean = base.iter().sum::<u64>() as f64 / 7.0;
                            let var =
                                base.iter().map(|&c| (c as f64 - mean).powi(2)).sum::<f64>() / 6.0;
                            y as f64 > mean + 3.0 * var.sqrt().max(0.2)
                        }
                    }
                };
                if alarm {
                    alarms.push(start + i as i64);
                    if !firing {
                        starts.push(start + i as i64);
                    }
                }
                firing = alarm;
            }
        }
        Detector::Signaal => {
            let mut watch = Watch::new(settings, start);
            for (i, &y) in counts.iter().enumerate() {
                let b = start + i as i64;
                let step = watch.step(settings, life, b, y, None);
                score.assessments += 1;
                if step.alarm && step.guarded {
                    alarms.push(b);
                }
                if let Some(e) = step.event.filter(|e| e.change == Change::Firing) {
                    starts.push(e.start);
                }
            }
        }
    }
    (starts, alarms)
}
