//! Spike detection, as public-health surveillance does it, for small hourly counts.
//!
//! For each series (a theme; a theme × channel; …) signaal keeps counts per bucket (an hour by
//! default). [`assess`] says what count to expect in a bucket and how high is too high:
//! - with enough history, in the manner of the "Farrington flexible" method (Noufaily et al.,
//!   2013): the baseline is the comparable past buckets — the same hour on each of the recent
//!   days and the same hour of the week in recent weeks, ± a bucket — fitted by a quasi-Poisson
//!   regression (each weekday's level, from its whole days, as an offset; an effect for "same
//!   weekday" at this hour and a trend only when significant), with buckets that alarmed before
//!   left out and outlying ones down-weighted so a flare-up does not raise its own baseline.
//!   The threshold is the `1 − α` quantile of the predictive negative binomial: the estimated
//!   over-dispersion `φ` (Poisson when `φ ≤ 1`) widened by the uncertainty of the expected
//!   count itself ([`Spread`]); the p-value is `P(Y ≥ y)`;
//! - [`assess_window`] sums the last [`WINDOW`] buckets against their expected counts, with most
//!   of `α` ([`Settings::window_share`]): a burst over a few quiet hours stands out in the sum
//!   before any single hour does;
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
    /// Probability of an exceedance per bucket per series when nothing is going on, split
    /// between the bucket's own test and the window test ([`Settings::window_share`]). At the
    /// default 0.001 the simulation (BENCHMARKS.md) measures about 0.23 false alerts per series
    /// per week at 5 signals an hour: one a month.
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
    /// The share of `alpha` spent on the window test (the last [`WINDOW`] buckets summed); the
    /// bucket's own test gets the rest (0: no window test).
    pub window_share: f64,
    /// The weekday's level comes from whole days of history (an offset); the same weekday at
    /// this hour differs from it only when significant at this level (0: never; 1: always, and
    /// no offset, as before).
    pub weekday_significance: f64,
    /// Thresholds allow for the uncertainty of the expected count itself (the predictive
    /// distribution), not only for the count's spread around a known mean.
    pub prediction_uncertainty: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bucket_seconds: 3600,
            days: 42,
            weeks: 6,
            window: 1,
            alpha: 0.001,
            min_history_days: 7,
            trend_significance: 0.05,
            ears_min_sigma: 0.5,
            cusum_shift: 2.0,
            cusum_limit: 6.0,
            window_share: 0.75,
            weekday_significance: 0.05,
            prediction_uncertainty: true,
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
        let checks: [(&'static str, f64, bool, &'static str); 9] = [
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
            (
                "window_share",
                self.window_share,
                (0.0..=1.0).contains(&self.window_share),
                "0–1",
            ),
            (
                "weekday_significance",
                self.weekday_significance,
                (0.0..=1.0).contains(&self.weekday_significance),
                "0–1",
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

    /// The bucket's own test's share of `alpha`.
    pub fn bucket_alpha(&self) -> f64 {
        self.alpha * (1.0 - self.window_share.clamp(0.0, 1.0))
    }

    /// The window test's share of `alpha`.
    pub fn window_alpha(&self) -> f64 {
        self.alpha * self.window_share.clamp(0.0, 1.0)
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

/// One series' recent counts per bucket, and its CUSUM. Memory ([`Series::heap_bytes`] plus the
/// struct): a `u16` count and a `bool` alarm flag per bucket kept
/// ([`Settings::history_buckets`] + 1, 1,010 for the defaults: 3,030 bytes), the last
/// [`WINDOW`]` − 1` judged buckets (40 bytes each) and about 130 bytes of fields: some 3.3 KB
/// a series, 33 MB for 10,000.
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
    /// The last closed buckets the regression judged, for [`assess_window`].
    recent: VecDeque<Recent>,
}

#[derive(Debug, Clone, Copy)]
struct Recent {
    bucket: i64,
    expected: f64,
    observed: u64,
    spread: Spread,
}

/// How sure an expected count is: the count's own over-dispersion around it, and the standard
/// deviation of the estimate (from the regression's covariance). A baseline of a few signals
/// an hour is itself uncertain by a fifth or more, and a threshold that ignores this alarms
/// more often than `alpha` says.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spread {
    /// Over-dispersion of the count around the true mean (1 = Poisson).
    pub phi: f64,
    /// Standard deviation of the expected count's estimate.
    pub sd: f64,
}

impl Spread {
    /// The dispersion of the count around the *estimated* mean `mean`: `φ + sd² / mean`
    /// (variance `φ·μ + sd²`), the predictive distribution Farrington et al. (1996) threshold on.
    pub fn predictive_phi(&self, mean: f64) -> f64 {
        self.phi + self.sd * self.sd / mean.max(1e-9)
    }
}

/// Buckets summed by [`assess_window`], the current one included.
pub const WINDOW: usize = 3;

impl Series {
    /// A series watched since bucket `origin` (nothing before it is known).
    pub fn new(settings: &Settings, origin: i64) -> Series {
        Series {
            origin,
            front: origin,
            // Allocated once, exactly: `set` holds one bucket more than kept before it drops
            // the oldest.
            counts: VecDeque::with_capacity(settings.history_buckets() + 1),
            alarms: VecDeque::with_capacity(settings.history_buckets() + 1),
            capacity: settings.history_buckets(),
            cusum: 0.0,
            recent: VecDeque::with_capacity(WINDOW),
        }
    }

    /// Bytes this series holds on the heap (its struct aside).
    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * std::mem::size_of::<u16>()
            + self.alarms.capacity() * std::mem::size_of::<bool>()
            + self.recent.capacity() * std::mem::size_of::<Recent>()
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
        let spread = Spread {
            phi: assessment.phi,
            sd: 0.0,
        };
        self.close_spread(settings, bucket, count, assessment, spread)
    }

    /// [`Series::close`] with the estimate's [`Spread`] from [`assess_spread`], which the
    /// window test then uses.
    pub fn close_spread(
        &mut self,
        settings: &Settings,
        bucket: i64,
        count: u64,
        assessment: &Assessment,
        spread: Spread,
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
            self.recent.push_back(Recent {
                bucket,
                expected: assessment.expected,
                observed: count,
                spread,
            });
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
/// counts summed against their expected counts summed, at the window's share of α. A burst of
/// three times the usual over a few hours stands out here before any single hour does. `None`
/// unless the regression judged all of them.
pub fn assess_window(
    settings: &Settings,
    series: &Series,
    current: &Assessment,
    bucket: i64,
) -> Option<Assessment> {
    let spread = Spread {
        phi: current.phi,
        sd: 0.0,
    };
    assess_window_spread(settings, series, current, spread, bucket)
}

/// [`assess_window`] with the current estimate's [`Spread`]. The estimates of neighbouring
/// buckets come from nearly the same comparable buckets, so their errors are taken as moving
/// together: the sum's estimate has the sum of their deviations as its own.
pub fn assess_window_spread(
    settings: &Settings,
    series: &Series,
    current: &Assessment,
    spread: Spread,
    bucket: i64,
) -> Option<Assessment> {
    if current.method != Method::Farrington
        || series.recent.len() + 1 < WINDOW
        || settings.window_alpha() <= 0.0
    {
        return None;
    }
    let consecutive = series
        .recent
        .iter()
        .rev()
        .enumerate()
        .all(|(i, r)| r.bucket == bucket - 1 - i as i64);
    if !consecutive {
        return None;
    }
    let expected = current.expected + series.recent.iter().map(|r| r.expected).sum::<f64>();
    let observed = current.observed + series.recent.iter().map(|r| r.observed).sum::<u64>();
    let own_variance = spread.phi * current.expected
        + series
            .recent
            .iter()
            .map(|r| r.spread.phi * r.expected)
            .sum::<f64>();
    let sd = spread.sd + series.recent.iter().map(|r| r.spread.sd).sum::<f64>();
    let phi = (own_variance + sd * sd) / expected.max(1e-9);
    let model = CountModel {
        mean: expected,
        phi,
    };
    let upper = model.upper(settings.window_alpha());
    Some(Assessment {
        observed,
        expected,
        upper: upper as f64,
        p_value: model.p_value(observed),
        phi,
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
    assess_spread(settings, series, bucket, observed).0
}

/// [`assess`], and how sure its expected count is (for [`assess_window_spread`]). The
/// assessment's `phi` is the predictive one ([`Spread::predictive_phi`]).
pub fn assess_spread(
    settings: &Settings,
    series: &Series,
    bucket: i64,
    observed: u64,
) -> (Assessment, Spread) {
    let day = settings.buckets_per_day();
    if bucket - series.origin() >= settings.min_history_days * day {
        if let Some(found) = farrington(settings, series, bucket, observed) {
            return found;
        }
    }
    let a = ears(settings, series, bucket, observed);
    let spread = Spread {
        phi: a.phi,
        sd: 0.0,
    };
    (a, spread)
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

/// One design: fit, reweight, fit again. Returns the second fit and `φ`.
fn fit_design(x: &[Vec<f64>], y: &[f64], offset: &[f64]) -> Option<(glm::Fit, f64)> {
    let ones = vec![1.0; y.len()];
    let first = glm::fit_poisson_offset(x, y, &ones, offset)?;
    let phi = first.phi(y, &ones);
    let weights = reweight(y, &first, phi);
    let fit = glm::fit_poisson_offset(x, y, &weights, offset)?;
    let phi = winsorized_phi(&fit, y, &weights);
    Some((fit, phi))
}

/// `φ` from the reweighted fit's Pearson residuals, each squared residual capped at 2.58² times
/// the weighted estimate. Neither textbook choice is right here: the unweighted `φ` lets a
/// few outlying buckets (another weekday's busy hour among the comparable ones) widen every
/// threshold until a six-fold hour passes, and the weighted one (Noufaily et al.) is the
/// dispersion estimated without its own tail, so a threshold on it alarms more often than
/// `alpha` says. Capping keeps the ordinary tail and bounds what one outlier adds.
fn winsorized_phi(fit: &glm::Fit, y: &[f64], weights: &[f64]) -> f64 {
    let p = fit.beta.len();
    if y.len() <= p {
        return 1.0;
    }
    let cap = 2.58f64.powi(2) * fit.phi(y, weights);
    let pearson: f64 = y
        .iter()
        .zip(&fit.fitted)
        .map(|(y, mu)| ((y - mu).powi(2) / mu.max(1e-10)).min(cap))
        .sum();
    (pearson / (y.len() - p) as f64).max(1.0)
}

/// The log of each weekday's level (signals per bucket), from every kept bucket before
/// `bucket` that did not alarm, with half a signal added so a silent weekday is low rather than
/// minus infinity. A weekday's level is estimated from whole days, so from many more signals
/// than the same hour of that weekday alone has: at night, where an hour expects one signal,
/// this is what keeps the baseline from guessing. `None` until every weekday has a day kept.
fn weekday_levels(settings: &Settings, series: &Series, bucket: i64) -> Option<([f64; 7], f64)> {
    let day = settings.buckets_per_day();
    let mut sums = [0.0f64; 7];
    let mut buckets = [0i64; 7];
    for b in series.get_front().max(series.origin())..bucket {
        if let Some((count, false)) = series.get(b) {
            let wd = weekday(settings, b) as usize;
            sums[wd] += count as f64;
            buckets[wd] += 1;
        }
    }
    if buckets.iter().any(|n| *n < day) {
        return None;
    }
    let mut levels = [0.0; 7];
    for wd in 0..7 {
        levels[wd] = ((sums[wd] + 0.5) / buckets[wd] as f64).ln();
    }
    Some((levels, sums[weekday(settings, bucket) as usize] + 0.5))
}

/// Whether the last coefficient of `fit` differs from 0 at `level` (two-sided Wald test).
fn significant(fit: &glm::Fit, phi: f64, level: f64) -> bool {
    let k = fit.beta.len() - 1;
    let se = (phi * fit.cov[k][k]).sqrt();
    let z = (fit.beta[k] / se).abs();
    let p = 2.0 * (1.0 - normal_cdf(z));
    !p.is_nan() && p < level
}

fn farrington(
    settings: &Settings,
    series: &Series,
    bucket: i64,
    observed: u64,
) -> Option<(Assessment, Spread)> {
    let points = comparable(settings, series, bucket);
    if points.len() < 10 {
        return None;
    }
    let y: Vec<f64> = points.iter().map(|(_, c)| *c).collect();
    let n = y.len();
    let total: f64 = y.iter().sum();
    let (expected, spread, trend) = if total == 0.0 {
        // Nothing in any comparable bucket: half a signal over all of them (a Jeffreys-style
        // estimate), so one signal is not a sure alarm but a handful is.
        let spread = Spread { phi: 1.0, sd: 0.0 };
        (0.5 / n as f64, spread, false)
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
        // The weekday's level as an offset when known: then the same weekday at this hour is
        // an effect of its own only when the data say so.
        let (levels, levels_total) = if settings.weekday_significance < 1.0 {
            weekday_levels(settings, series, bucket).unzip()
        } else {
            (None, None)
        };
        let offset_of = |b: i64| levels.map_or(0.0, |l| l[weekday(settings, b) as usize]);
        let offset: Vec<f64> = points.iter().map(|(b, _)| offset_of(*b)).collect();
        let weekday_needs_test = levels.is_some();
        let mut chosen = None;
        for (wd, tr) in [
            (use_weekday, try_trend),
            (use_weekday, false),
            (false, try_trend),
            (false, false),
        ] {
            if (tr && !try_trend) || (wd && !use_weekday) {
                continue;
            }
            if wd && weekday_needs_test && settings.weekday_significance <= 0.0 {
                continue;
            }
            let x: Vec<Vec<f64>> = points
                .iter()
                .map(|(b, _)| row(settings, bucket, *b, wd, tr))
                .collect();
            let Some((fit, phi)) = fit_design(&x, &y, &offset) else {
                continue;
            };
            let x0 = row(settings, bucket, bucket, wd, tr);
            let mu0 = fit.predict_offset(&x0, offset_of(bucket));
            if tr {
                // Keep the trend only when significant, and never beyond the history's peak.
                if !significant(&fit, phi, settings.trend_significance) || mu0 > max_y {
                    continue;
                }
            }
            if wd && weekday_needs_test {
                // The same-weekday column is the last but for the trend: test it on a fit
                // without the trend.
                let x: Vec<Vec<f64>> = points
                    .iter()
                    .map(|(b, _)| row(settings, bucket, *b, true, false))
                    .collect();
                let keep = fit_design(&x, &y, &offset)
                    .is_some_and(|(f, p)| significant(&f, p, settings.weekday_significance));
                if !keep {
                    continue;
                }
            }
            // Variance of the linear predictor at the target: the fit's, and (roughly) that of
            // the target weekday's level, estimated from its whole days.
            let q: f64 = (0..x0.len())
                .map(|a| {
                    (0..x0.len())
                        .map(|b| x0[a] * fit.cov[a][b] * x0[b])
                        .sum::<f64>()
                })
                .sum();
            let level_var = levels_total.map_or(0.0, |t| 1.0 / t);
            let var_eta = if settings.prediction_uncertainty {
                phi * (q.max(0.0) + level_var)
            } else {
                0.0
            };
            let spread = Spread {
                phi,
                sd: mu0 * var_eta.sqrt(),
            };
            chosen = Some((mu0, spread, tr));
            break;
        }
        chosen?
    };
    let phi = spread.predictive_phi(expected);
    let model = CountModel {
        mean: expected,
        phi,
    };
    let upper = model.upper(settings.bucket_alpha());
    let a = Assessment {
        observed,
        expected,
        upper: upper as f64,
        p_value: model.p_value(observed),
        phi,
        method: Method::Farrington,
        exceeded: observed > upper,
        baseline: n,
        trend,
    };
    Some((a, spread))
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
    // EARS's normal approximation is far off for a handful of signals: never alarm on a count
    // that a Poisson count with the baseline's mean reaches more often than α (two signals in
    // an hour that usually has a third of one is not a spike).
    let floor = CountModel { mean, phi: 1.0 }.upper(settings.bucket_alpha());
    let plausible = observed > floor;
    let c2_exceeded = stat > 3.0 && plausible;
    let c3_exceeded = c3 > 2.0 && observed as f64 > mean && plausible;
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
