//! Spike detection, as public-health surveillance does it, for small hourly counts.
//!
//! For each series (a theme; a theme × channel; …) signaal keeps counts per bucket (an hour by
//! default). [`assess`] says what count to expect in a bucket and how high is too high:
//! - with enough history, in the manner of the "Farrington flexible" method (Noufaily et al.,
//!   2013): the baseline is the comparable past buckets — the same hour on each of the recent
//!   days and the same hour of the week in recent weeks, ± a bucket — fitted by a quasi-Poisson
//!   regression (an effect for "same weekday", a trend only when significant), with buckets that
//!   alarmed before left out and outlying ones down-weighted so a flare-up does not raise its
//!   own baseline. The threshold is the `1 − α` quantile of the negative binomial with the
//!   estimated over-dispersion `φ` (Poisson when `φ ≤ 1`), and the p-value is `P(Y ≥ y)`;
//! - with a short history, EARS C2/C3 (mean and deviation of the buckets just before, with a
//!   guard gap and a minimum deviation);
//! - and [`Series::close`] runs a negative-binomial CUSUM on the expected counts, which catches
//!   a rise that stays under the per-bucket threshold hour after hour.
//!
//! Everything here is pure: plain numbers in, decisions out. The alerter feeds it.

pub mod backtest;
pub mod dist;
pub mod glm;
pub mod lifecycle;
pub mod sim;
pub mod watch;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

pub use dist::CountModel;

/// How the detector looks at history. `[alerter.detect]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Bucket length in seconds; must divide a day (3600: hourly).
    pub bucket_seconds: i64,
    /// Recent days whose same bucket of the day is comparable.
    pub days: i64,
    /// Recent weeks whose same bucket of the week is comparable.
    pub weeks: i64,
    /// Comparable buckets reach this many buckets either side.
    pub window: i64,
    /// Probability of an exceedance per bucket per series when nothing is going on.
    pub alpha: f64,
    /// History (days) needed before the regression decides; before that EARS does.
    pub min_history_days: i64,
    /// Fit a trend when it is significant at this level (0 switches trends off).
    pub trend_significance: f64,
    /// Smallest standard deviation EARS assumes (all-zero recent buckets would give 0).
    pub ears_min_sigma: f64,
    /// The CUSUM looks for the expected count multiplied by this.
    pub cusum_shift: f64,
    /// The CUSUM alarms when its sum of log-likelihood ratios reaches this.
    pub cusum_limit: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bucket_seconds: 3600,
            days: 14,
            weeks: 6,
            window: 1,
            alpha: 0.001,
            min_history_days: 7,
            trend_significance: 0.05,
            ears_min_sigma: 0.5,
            cusum_shift: 2.0,
            cusum_limit: 6.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SettingsError {
    #[error("`bucket_seconds` = {0} does not divide a day (86400 s) into whole buckets")]
    Bucket(i64),
    #[error("`{name}` = {value} is out of range ({range})")]
    Range {
        name: &'static str,
        value: f64,
        range: &'static str,
    },
}

impl Settings {
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.bucket_seconds <= 0 || 86_400 % self.bucket_seconds != 0 {
            return Err(SettingsError::Bucket(self.bucket_seconds));
        }
        let checks: [(&'static str, f64, bool, &'static str); 7] = [
            (
                "days",
                self.days as f64,
                (0..=366).contains(&self.days),
                "0–366",
            ),
            (
                "weeks",
                self.weeks as f64,
                (0..=104).contains(&self.weeks),
                "0–104",
            ),
            (
                "window",
                self.window as f64,
                (0..=12).contains(&self.window),
                "0–12",
            ),
            (
                "alpha",
                self.alpha,
                self.alpha > 0.0 && self.alpha < 0.5,
                "above 0, below 0.5",
            ),
            (
                "min_history_days",
                self.min_history_days as f64,
                (1..=366).contains(&self.min_history_days),
                "1–366",
            ),
            (
                "cusum_shift",
                self.cusum_shift,
                self.cusum_shift > 1.0,
                "above 1",
            ),
            (
                "cusum_limit",
                self.cusum_limit,
                self.cusum_limit > 0.0,
                "above 0",
            ),
        ];
        for (name, value, ok, range) in checks {
            if !ok {
                return Err(SettingsError::Range { name, value, range });
            }
        }
        if self.days == 0 && self.weeks == 0 {
            return Err(SettingsError::Range {
                name: "days",
                value: 0.0,
                range: "days or weeks above 0",
            });
        }
        Ok(())
    }

    pub fn buckets_per_day(&self) -> i64 {
        86_400 / self.bucket_seconds.max(1)
    }

    /// How many past buckets a series keeps: the oldest comparable bucket, and EARS's.
    pub fn history_buckets(&self) -> usize {
        let day = self.buckets_per_day();
        let span = (self.days * day).max(self.weeks * 7 * day) + self.window;
        span.max(EARS_LAG_MAX + 2) as usize
    }

    /// The bucket number (buckets since the Unix epoch) of a time in seconds.
    pub fn bucket_of(&self, unix_seconds: i64) -> i64 {
        unix_seconds.div_euclid(self.bucket_seconds.max(1))
    }
}

/// What decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The quasi-Poisson regression on comparable buckets.
    Farrington,
    /// EARS C2: recent buckets' mean and deviation (short history).
    EarsC2,
    /// EARS C3: C2 over the last three buckets (short history, a rise over hours).
    EarsC3,
    /// The regression's expected counts summed over the last [`WINDOW`] buckets (a burst
    /// spread over a few hours).
    Window,
    /// The CUSUM on expected counts (a slow build-up).
    Cusum,
    /// Too little history to say anything; never an alert.
    Insufficient,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Farrington => "farrington",
            Method::EarsC2 => "ears_c2",
            Method::EarsC3 => "ears_c3",
            Method::Window => "window",
            Method::Cusum => "cusum",
            Method::Insufficient => "insufficient",
        }
    }
}

/// The verdict on one bucket's count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub observed: u64,
    pub expected: f64,
    /// Counts above this are an exceedance.
    pub upper: f64,
    /// `P(Y ≥ observed)` under the expected distribution.
    pub p_value: f64,
    /// Over-dispersion (1 = Poisson).
    pub phi: f64,
    pub method: Method,
    pub exceeded: bool,
    /// Comparable past buckets used.
    pub baseline: usize,
    /// Whether a significant trend was part of the fit.
    pub trend: bool,
}

/// One series' recent counts per bucket, and its CUSUM. Memory: two bytes per bucket kept
/// ([`Settings::history_buckets`], 1,009 for the defaults) plus one bit for alarms: about
/// 2.2 KB a series.
#[derive(Debug, Clone)]
pub struct Series {
    /// First bucket this series was watched in (earlier buckets are unknown, not zero).
    origin: i64,
    /// Bucket number of `counts[0]`.
    front: i64,
    counts: VecDeque<u16>,
    alarms: VecDeque<bool>,
    capacity: usize,
    /// The CUSUM's running sum.
    pub cusum: f64,
    /// The last closed buckets' `(bucket, expected, observed)`, for [`assess_window`].
    recent: VecDeque<(i64, f64, u64)>,
}

/// Buckets summed by [`assess_window`], the current one included.
pub const WINDOW: usize = 3;

impl Series {
    /// A series watched since bucket `origin` (nothing before it is known).
    pub fn new(settings: &Settings, origin: i64) -> Series {
        Series {
            origin,
            front: origin,
            counts: VecDeque::new(),
            alarms: VecDeque::new(),
            capacity: settings.history_buckets(),
            cusum: 0.0,
            recent: VecDeque::with_capacity(WINDOW),
        }
    }

    pub fn origin(&self) -> i64 {
        self.origin
    }

    /// The oldest bucket kept.
    pub fn get_front(&self) -> i64 {
        self.front
    }

    /// The bucket after the newest kept.
    pub fn end(&self) -> i64 {
        self.front + self.counts.len() as i64
    }

    /// Count and alarm flag of `bucket`, when it is known (watched and still kept).
    pub fn get(&self, bucket: i64) -> Option<(u64, bool)> {
        if bucket < self.front || bucket < self.origin || bucket >= self.end() {
            return None;
        }
        let i = (bucket - self.front) as usize;
        Some((u64::from(self.counts[i]), self.alarms[i]))
    }

    /// Records the final count of `bucket` (and whether it alarmed); buckets skipped since the
    /// last one count zero. Older buckets than those kept are ignored.
    pub fn set(&mut self, bucket: i64, count: u64, alarm: bool) {
        if bucket < self.origin {
            return;
        }
        let cap = self.capacity as i64;
        if bucket - self.end() >= cap {
            // A gap longer than the history: everything kept is zero now.
            self.counts.clear();
            self.alarms.clear();
            self.front = (bucket + 1 - cap).max(self.origin);
        }
        while self.end() <= bucket {
            self.counts.push_back(0);
            self.alarms.push_back(false);
            if self.counts.len() > self.capacity {
                self.counts.pop_front();
                self.alarms.pop_front();
                self.front += 1;
            }
        }
        if bucket < self.front {
            return;
        }
        let i = (bucket - self.front) as usize;
        self.counts[i] = count.min(u64::from(u16::MAX)) as u16;
        self.alarms[i] = alarm;
    }

    /// Closes `bucket` with its final count: records it and steps the CUSUM. Returns whether
    /// the CUSUM alarmed (it starts again from zero after an alarm).
    pub fn close(
        &mut self,
        settings: &Settings,
        bucket: i64,
        count: u64,
        assessment: &Assessment,
    ) -> bool {
        let mut cusum_alarm = false;
        if assessment.method != Method::Insufficient {
            self.cusum = (self.cusum
                + cusum_step(
                    count,
                    assessment.expected,
                    assessment.phi,
                    settings.cusum_shift,
                ))
            .max(0.0);
            if self.cusum >= settings.cusum_limit {
                cusum_alarm = true;
                self.cusum = 0.0;
            }
        }
        self.set(bucket, count, assessment.exceeded || cusum_alarm);
        if assessment.method == Method::Farrington {
            self.recent.push_back((bucket, assessment.expected, count));
            while self.recent.len() >= WINDOW {
                self.recent.pop_front();
            }
        } else {
            self.recent.clear();
        }
        cusum_alarm
    }
}

/// The current bucket together with the [`WINDOW`]` − 1` closed buckets just before it: their
/// counts summed against their expected counts summed, at the same α. A burst of three times
/// the usual over a few hours stands out here before any single hour does. `None` unless the
/// regression judged all of them.
pub fn assess_window(
    settings: &Settings,
    series: &Series,
    current: &Assessment,
    bucket: i64,
) -> Option<Assessment> {
    if current.method != Method::Farrington || series.recent.len() + 1 < WINDOW {
        return None;
    }
    let consecutive = series
        .recent
        .iter()
        .rev()
        .enumerate()
        .all(|(i, (b, _, _))| *b == bucket - 1 - i as i64);
    if !consecutive {
        return None;
    }
    let expected = current.expected + series.recent.iter().map(|(_, e, _)| e).sum::<f64>();
    let observed = current.observed + series.recent.iter().map(|(_, _, o)| o).sum::<u64>();
    let model = CountModel {
        mean: expected,
        phi: current.phi,
    };
    let upper = model.upper(settings.alpha);
    Some(Assessment {
        observed,
        expected,
        upper: upper as f64,
        p_value: model.p_value(observed),
        phi: current.phi,
        method: Method::Window,
        exceeded: observed > upper,
        baseline: current.baseline,
        trend: current.trend,
    })
}

/// The log-likelihood ratio of `y` for "the mean is `shift` times the expected" against "as
/// expected", under the negative binomial with over-dispersion `phi` (Poisson at `phi ≤ 1`).
/// Very small expected counts are compared with one more signal instead, so a quiet series is
/// not alarmed by doubling next to nothing.
pub fn cusum_step(y: u64, expected: f64, phi: f64, shift: f64) -> f64 {
    let mu0 = expected.max(0.05);
    let mu1 = (mu0 * shift).max(mu0 + 1.0);
    let y = y as f64;
    if phi <= 1.0 + 1e-9 {
        y * (mu1 / mu0).ln() - (mu1 - mu0)
    } else {
        let r = mu0 / (phi - 1.0);
        y * (mu1 * (mu0 + r) / (mu0 * (mu1 + r))).ln() + r * ((mu0 + r) / (mu1 + r)).ln()
    }
}

/// EARS looks at the buckets 3 to 9 back (a guard of two buckets before the current one).
const EARS_LAG_MIN: i64 = 3;
const EARS_LAG_MAX: i64 = 9;

/// The verdict on `observed` signals in `bucket` of `series` (the bucket may still be open: a
/// count above the threshold is above it whatever comes later).
pub fn assess(settings: &Settings, series: &Series, bucket: i64, observed: u64) -> Assessment {
    let day = settings.buckets_per_day();
    if bucket - series.origin() >= settings.min_history_days * day {
        if let Some(a) = farrington(settings, series, bucket, observed) {
            return a;
        }
    }
    ears(settings, series, bucket, observed)
}

/// The comparable past buckets of `bucket`: same bucket of the day over `days`, same bucket of
/// the week over `weeks`, each ± `window`; known ones only, and not those that alarmed.
fn comparable(settings: &Settings, series: &Series, bucket: i64) -> Vec<(i64, f64)> {
    let day = settings.buckets_per_day();
    let mut lags: Vec<i64> = Vec::new();
    for d in 1..=settings.days {
        lags.push(d * day);
    }
    for k in 1..=settings.weeks {
        lags.push(k * 7 * day);
    }
    let mut buckets: Vec<i64> = lags
        .iter()
        .flat_map(|lag| (-settings.window..=settings.window).map(move |j| bucket - lag + j))
        .filter(|b| *b < bucket)
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    buckets
        .into_iter()
        .filter_map(|b| match series.get(b) {
            Some((count, false)) => Some((b, count as f64)),
            _ => None,
        })
        .collect()
}

fn weekday(settings: &Settings, bucket: i64) -> i64 {
    bucket.div_euclid(settings.buckets_per_day()).rem_euclid(7)
}

/// Covariates of one bucket: intercept, same weekday as the target, weeks from the target.
fn row(settings: &Settings, target: i64, b: i64, same_weekday: bool, trend: bool) -> Vec<f64> {
    let mut x = vec![1.0];
    if same_weekday {
        x.push(f64::from(u8::from(
            weekday(settings, b) == weekday(settings, target),
        )));
    }
    if trend {
        let week = (7 * settings.buckets_per_day()) as f64;
        x.push((b - target) as f64 / week);
    }
    x
}

/// Noufaily's reweighting: points with an Anscombe residual above 2.58 get weight `s⁻²`, all
/// weights scaled to sum to `n`.
fn reweight(y: &[f64], fit: &glm::Fit, phi: f64) -> Vec<f64> {
    let raw: Vec<f64> = y
        .iter()
        .zip(&fit.fitted)
        .zip(&fit.leverage)
        .map(|((y, mu), h)| {
            let mu = mu.max(1e-10);
            let s = 1.5 * (y.powf(2.0 / 3.0) - mu.powf(2.0 / 3.0))
                / (mu.powf(1.0 / 6.0) * (phi * (1.0 - h).max(1e-6)).sqrt());
            if s > 2.58 {
                s.powi(-2)
            } else {
                1.0
            }
        })
        .collect();
    let sum: f64 = raw.iter().sum();
    let n = y.len() as f64;
    raw.iter().map(|w| w * n / sum.max(1e-12)).collect()
}

/// One design: fit, reweight, fit again. Returns the fit, its weights and `φ`.
fn fit_design(x: &[Vec<f64>], y: &[f64]) -> Option<(glm::Fit, Vec<f64>, f64)> {
    let ones = vec![1.0; y.len()];
    let first = glm::fit_poisson(x, y, &ones)?;
    let phi = first.phi(y, &ones);
    let weights = reweight(y, &first, phi);
    let fit = glm::fit_poisson(x, y, &weights)?;
    let phi = fit.phi(y, &weights);
    Some((fit, weights, phi))
}

fn farrington(
    settings: &Settings,
    series: &Series,
    bucket: i64,
    observed: u64,
) -> Option<Assessment> {
    let points = comparable(settings, series, bucket);
    if points.len() < 10 {
        return None;
    }
    let y: Vec<f64> = points.iter().map(|(_, c)| *c).collect();
    let n = y.len();
    let total: f64 = y.iter().sum();
    let (expected, phi, trend) = if total == 0.0 {
        // Nothing in any comparable bucket: half a signal over all of them (a Jeffreys-style
        // estimate), so one signal is not a sure alarm but a handful is.
        (0.5 / n as f64, 1.0, false)
    } else {
        let target_wd = weekday(settings, bucket);
        let (same, other): (Vec<_>, Vec<_>) = points
            .iter()
            .partition(|(b, _)| weekday(settings, *b) == target_wd);
        let group_ok = |g: &Vec<&(i64, f64)>| g.len() >= 3 && g.iter().any(|(_, c)| *c > 0.0);
        let use_weekday = group_ok(&same) && group_ok(&other);
        let span_weeks = (bucket - points[0].0) as f64 / (7 * settings.buckets_per_day()) as f64;
        let try_trend = settings.trend_significance > 0.0 && span_weeks >= 2.0;
        let max_y = y.iter().copied().fold(0.0, f64::max);
        let mut chosen = None;
        for (wd, tr) in [
            (use_weekday, try_trend),
            (use_weekday, false),
            (false, false),
        ] {
            if (tr && !try_trend) || (wd && !use_weekday) {
                continue;
            }
            let x: Vec<Vec<f64>> = points
                .iter()
                .map(|(b, _)| row(settings, bucket, *b, wd, tr))
                .collect();
            let Some((fit, _, phi)) = fit_design(&x, &y) else {
                continue;
            };
            let x0 = row(settings, bucket, bucket, wd, tr);
            let mu0 = fit.predict(&x0);
            if tr {
                // Keep the trend only when significant, and never beyond the history's peak.
                let k = fit.beta.len() - 1;
                let se = (phi * fit.cov[k][k]).sqrt();
                let z = (fit.beta[k] / se).abs();
                let p = 2.0 * (1.0 - normal_cdf(z));
                if p.is_nan() || p >= settings.trend_significance || mu0 > max_y {
                    continue;
                }
            }
            chosen = Some((mu0, phi, tr));
            break;
        }
        chosen?
    };
    let model = CountModel {
        mean: expected,
        phi,
    };
    let upper = model.upper(settings.alpha);
    Some(Assessment {
        observed,
        expected,
        upper: upper as f64,
        p_value: model.p_value(observed),
        phi,
        method: Method::Farrington,
        exceeded: observed > upper,
        baseline: n,
        trend,
    })
}

fn normal_cdf(z: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    Normal::new(0.0, 1.0).map(|n| n.cdf(z)).unwrap_or(0.5)
}

/// EARS C2 statistic of `y` in `bucket`, with its baseline mean and deviation.
fn c2(settings: &Settings, series: &Series, bucket: i64, y: f64) -> Option<(f64, f64, f64)> {
    let base: Vec<f64> = (EARS_LAG_MIN..=EARS_LAG_MAX)
        .filter_map(|lag| series.get(bucket - lag).map(|(c, _)| c as f64))
        .collect();
    if base.len() < 3 {
        return None;
    }
    let n = base.len() as f64;
    let mean = base.iter().sum::<f64>() / n;
    let var = base.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1.0);
    // Never less spread than a Poisson count would have.
    let sigma = var.sqrt().max(mean.sqrt()).max(settings.ears_min_sigma);
    Some(((y - mean) / sigma, mean, sigma))
}

fn ears(settings: &Settings, series: &Series, bucket: i64, observed: u64) -> Assessment {
    let y = observed as f64;
    let Some((stat, mean, sigma)) = c2(settings, series, bucket, y) else {
        return Assessment {
            observed,
            expected: 0.0,
            upper: f64::INFINITY,
            p_value: 1.0,
            phi: 1.0,
            method: Method::Insufficient,
            exceeded: false,
            baseline: 0,
            trend: false,
        };
    };
    // C3: the C2 excesses over 1 of this bucket and the two before, summed.
    let earlier: f64 = (1..=2)
        .filter_map(|lag| {
            let (c, _) = series.get(bucket - lag)?;
            c2(settings, series, bucket - lag, c as f64).map(|(s, _, _)| (s - 1.0).max(0.0))
        })
        .sum();
    let c3 = earlier + (stat - 1.0).max(0.0);
    let c2_exceeded = stat > 3.0;
    let c3_exceeded = c3 > 2.0 && observed as f64 > mean;
    let method = if !c2_exceeded && c3_exceeded {
        Method::EarsC3
    } else {
        Method::EarsC2
    };
    Assessment {
        observed,
        expected: mean,
        upper: mean + 3.0 * sigma,
        p_value: 1.0 - normal_cdf(stat),
        // For the CUSUM: the spread EARS assumed, as a dispersion (bounded: a near-empty
        // baseline says little about it).
        phi: if mean > 0.5 {
            (sigma * sigma / mean).clamp(1.0, 10.0)
        } else {
            1.0
        },
        method,
        exceeded: c2_exceeded || c3_exceeded,
        baseline: EARS_LAG_MAX as usize - EARS_LAG_MIN as usize + 1,
        trend: false,
    }
}

#[cfg(test)]
mod tests;
