//! Measure, improve, measure (PDCA): did the signals on a theme go down after an action?
//!
//! An action starting at `s` is measured over two equal windows ([`ActionConfig::weeks`], 8 by
//! default): before = `[s − weeks, s)`, after = `[s, s + weeks)`. The signals on the action's
//! theme or subject in each window are counts `x_b` and `x_a` over exposures `E_b` and `E_a`: the
//! weeks of each window, or, when normalising, the total signal volume in it (so a quieter
//! season does not pass for an improvement).
//!
//! The comparison is the conditional binomial test (the exact test for two Poisson rates): given
//! `n = x_b + x_a`, the after count is `x_a ~ Binomial(n, p)` with
//!
//! ```text
//! p = RR·E_a / (E_b + RR·E_a)    ⇔    RR = p / (1 − p) · E_b / E_a
//! ```
//!
//! where `RR = (x_a / E_a) / (x_b / E_b)` is the rate ratio (below 1: fewer signals after).
//! - The interval for `p` is Clopper–Pearson: lower = `Beta(x_a, n − x_a + 1)` quantile `α/2`
//!   (0 when `x_a = 0`), upper = `Beta(x_a + 1, n − x_a)` quantile `1 − α/2` (1 when `x_a = n`),
//!   turned into rate ratios by the formula above (an upper bound of `p = 1` is an infinite rate
//!   ratio, `null` in JSON).
//! - Under "no change" `p₀ = E_a / (E_a + E_b)`. The one-sided p-values are
//!   `P(X ≤ x_a | n, p₀)` for "fewer after" and `P(X ≥ x_a | n, p₀)` for "more after".
//!
//! The verdict ([`Verdict`]):
//! - *not yet enough data* while the after window is not over at `now`, or when `n` is below
//!   [`ActionConfig::min_signals`] (10 by default: with fewer, only an extreme split could show
//!   anything). The counts so far are still reported;
//! - *fewer signals* when `P(X ≤ x_a) < α/2`, *more signals* when `P(X ≥ x_a) < α/2`, with
//!   `α = 1 − confidence` (0.025 by default). That is exactly when the interval lies wholly below
//!   or above 1, so the verdict never contradicts the interval printed beside it;
//! - *no evidence of change* otherwise, with the smaller of the two p-values.

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize, Serializer};
use statrs::distribution::{Beta, Binomial, ContinuousCDF, DiscreteCDF};

use crate::{check, ConfigError};

/// How actions are measured. `[analysis.action]` in the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ActionConfig {
    /// Length of each window, before and after the start (default 8).
    pub weeks: u32,
    /// Confidence of the interval (default 0.95); a change is claimed at one-sided
    /// `(1 − confidence) / 2`.
    pub confidence: f64,
    /// Fewer signals than this in both windows together: not yet enough data (default 10).
    pub min_signals: u64,
}

impl Default for ActionConfig {
    fn default() -> Self {
        ActionConfig {
            weeks: 8,
            confidence: 0.95,
            min_signals: 10,
        }
    }
}

impl ActionConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        check([
            (
                "weeks",
                f64::from(self.weeks),
                (1..=104).contains(&self.weeks),
                "1–104",
            ),
            (
                "confidence",
                self.confidence,
                self.confidence > 0.0 && self.confidence < 1.0,
                "above 0, below 1",
            ),
            (
                "min_signals",
                self.min_signals as f64,
                self.min_signals >= 1,
                "1 or above",
            ),
        ])
    }

    /// The before and after windows of an action starting at `start`.
    pub fn windows(&self, start: DateTime<Utc>) -> Result<Windows, PdcaError> {
        let length = Duration::try_weeks(i64::from(self.weeks)).ok_or(PdcaError::OutOfRange)?;
        let before = start.checked_sub_signed(length);
        let after = start.checked_add_signed(length);
        match (before, after) {
            (Some(before), Some(after)) => Ok(Windows {
                before: Window {
                    start: before,
                    end: start,
                },
                after: Window { start, end: after },
            }),
            _ => Err(PdcaError::OutOfRange),
        }
    }
}

/// A half-open time window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    /// Weeks of the window that have passed at `now` (0 before it, its length after it).
    pub fn weeks_elapsed(&self, now: DateTime<Utc>) -> f64 {
        let until = now.clamp(self.start, self.end.max(self.start));
        (until - self.start).num_milliseconds() as f64 / (7.0 * 86_400_000.0)
    }

    pub fn is_over(&self, now: DateTime<Utc>) -> bool {
        now >= self.end
    }
}

/// An action's two windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Windows {
    pub before: Window,
    pub after: Window,
}

/// A count of signals over its exposure (weeks, or total signal volume).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Exposed {
    pub count: u64,
    /// Finite and above 0.
    pub exposure: f64,
}

/// The rate ratio after / before with its exact interval and one-sided p-values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RateRatio {
    /// `(x_a / E_a) / (x_b / E_b)`; infinite (`null` in JSON) when nothing came in before.
    #[serde(serialize_with = "finite_or_null")]
    pub estimate: f64,
    /// Lower bound of the interval (0 when nothing came in after).
    pub lower: f64,
    /// Upper bound of the interval; infinite (`null` in JSON) when nothing came in before.
    #[serde(serialize_with = "finite_or_null")]
    pub upper: f64,
    pub confidence: f64,
    /// `P(X ≤ x_a | n, p₀)`: how surprising this few after would be without a change.
    pub p_fewer: f64,
    /// `P(X ≥ x_a | n, p₀)`: how surprising this many after would be without a change.
    pub p_more: f64,
    /// `x_b + x_a`.
    pub n: u64,
    /// `p₀ = E_a / (E_a + E_b)`: the after window's expected share of `n` without a change.
    pub p0: f64,
}

/// Compares the rate after with the rate before (see the module documentation).
pub fn rate_ratio(
    before: Exposed,
    after: Exposed,
    confidence: f64,
) -> Result<RateRatio, PdcaError> {
    for (period, e) in [("before", before), ("after", after)] {
        if !(e.exposure.is_finite() && e.exposure > 0.0) {
            return Err(PdcaError::Exposure {
                period,
                value: e.exposure,
            });
        }
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(PdcaError::Confidence(confidence));
    }
    let (x, eb, ea) = (after.count, before.exposure, after.exposure);
    let n = before.count.checked_add(x).ok_or(PdcaError::TooMany)?;
    if n == 0 {
        return Err(PdcaError::NoSignals);
    }
    let alpha = 1.0 - confidence;
    let (xf, nf) = (x as f64, n as f64);
    // The quantiles of a Beta with both shapes ≥ 1; a failure (impossible here) widens the
    // interval to the whole range rather than panicking.
    let quantile = |a: f64, b: f64, q: f64, otherwise: f64| {
        Beta::new(a, b).map_or(otherwise, |d| d.inverse_cdf(q))
    };
    let p_lo = if x == 0 {
        0.0
    } else {
        quantile(xf, nf - xf + 1.0, alpha / 2.0, 0.0)
    };
    let p_hi = if x == n {
        1.0
    } else {
        quantile(xf + 1.0, nf - xf, 1.0 - alpha / 2.0, 1.0)
    };
    let to_ratio = |p: f64| {
        if p >= 1.0 {
            f64::INFINITY
        } else {
            p / (1.0 - p) * (eb / ea)
        }
    };
    // Written so that no overflow makes it NaN: E_b / E_a may be 0 or infinite, p₀ stays in 0..=1.
    let p0 = 1.0 / (1.0 + eb / ea);
    let (p_fewer, p_more) = match Binomial::new(p0, n) {
        Ok(d) => (d.cdf(x), if x == 0 { 1.0 } else { d.sf(x - 1) }),
        Err(_) => (1.0, 1.0),
    };
    let estimate = if before.count == 0 {
        f64::INFINITY
    } else {
        (xf / ea) / (before.count as f64 / eb)
    };
    Ok(RateRatio {
        estimate,
        lower: to_ratio(p_lo),
        upper: to_ratio(p_hi),
        confidence,
        p_fewer: p_fewer.clamp(0.0, 1.0),
        p_more: p_more.clamp(0.0, 1.0),
        n,
        p0,
    })
}

/// Signals in the before and after windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub before: u64,
    pub after: u64,
}

/// What the measurement concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Fewer,
    More,
    NoChange,
    NotYetEnoughData,
}

/// One window's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PeriodReport {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Weeks of the window passed at `now`.
    pub weeks: f64,
    pub count: u64,
    /// Signals per week (`null` before the window begins).
    pub rate_per_week: Option<f64>,
    /// All signals in the window, when normalising by volume.
    pub volume: Option<u64>,
}

/// An action's before/after measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub before: PeriodReport,
    pub after: PeriodReport,
    /// The after window is over.
    pub complete: bool,
    /// Absent while there are no signals in either window to compare.
    pub rate_ratio: Option<RateRatio>,
    pub verdict: Verdict,
    /// The verdict in words: "fewer signals: rate ratio 0.42 (0.25–0.68), p = 0.0004".
    pub summary: String,
}

/// Measures an action that starts at `start`, at `now`: `theme` counts its signals in the two
/// windows of [`ActionConfig::windows`], `volume` (when given) all signals in the same windows,
/// which then become the exposures instead of the weeks.
pub fn measure(
    config: &ActionConfig,
    start: DateTime<Utc>,
    now: DateTime<Utc>,
    theme: Counts,
    volume: Option<Counts>,
) -> Result<Measurement, PdcaError> {
    let windows = config.windows(start)?;
    if let Some(v) = volume {
        for (period, count, volume) in [
            ("before", theme.before, v.before),
            ("after", theme.after, v.after),
        ] {
            if volume < count {
                return Err(PdcaError::VolumeBelowCount {
                    period,
                    count,
                    volume,
                });
            }
        }
    }
    let report = |window: Window, count: u64, volume: Option<u64>| {
        let weeks = window.weeks_elapsed(now);
        PeriodReport {
            start: window.start,
            end: window.end,
            weeks,
            count,
            rate_per_week: (weeks > 0.0).then(|| count as f64 / weeks),
            volume,
        }
    };
    let before = report(windows.before, theme.before, volume.map(|v| v.before));
    let after = report(windows.after, theme.after, volume.map(|v| v.after));
    let exposed = |p: &PeriodReport| Exposed {
        count: p.count,
        exposure: p.volume.map_or(p.weeks, |v| v as f64),
    };
    // No exposure yet (the window has not begun, or no signals at all): nothing to compare.
    let rate_ratio = rate_ratio(exposed(&before), exposed(&after), config.confidence).ok();
    let complete = windows.after.is_over(now);
    let n = theme.before.saturating_add(theme.after);
    let half_alpha = (1.0 - config.confidence) / 2.0;

    let (verdict, summary) = match rate_ratio {
        _ if !complete => (
            Verdict::NotYetEnoughData,
            format!(
                "not yet enough data: the after period runs until {} ({} signals so far, {} before)",
                windows.after.end.to_rfc3339_opts(SecondsFormat::Secs, true),
                theme.after,
                theme.before,
            ),
        ),
        Some(rr) if n >= config.min_signals => {
            let (verdict, words, p) = if rr.p_fewer < half_alpha {
                (Verdict::Fewer, "fewer signals", rr.p_fewer)
            } else if rr.p_more < half_alpha {
                (Verdict::More, "more signals", rr.p_more)
            } else {
                (Verdict::NoChange, "no evidence of change", rr.p_fewer.min(rr.p_more))
            };
            let summary = format!(
                "{words}: rate ratio {} ({}–{}), p {}",
                ratio(rr.estimate),
                ratio(rr.lower),
                ratio(rr.upper),
                p_value(p),
            );
            (verdict, summary)
        }
        _ => (
            Verdict::NotYetEnoughData,
            format!(
                "not yet enough data: {n} signals in both periods, at least {} needed",
                config.min_signals
            ),
        ),
    };
    Ok(Measurement {
        before,
        after,
        complete,
        rate_ratio,
        verdict,
        summary,
    })
}

/// Why a measurement could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PdcaError {
    #[error("the `{period}` exposure must be a finite number above 0, not {value}")]
    Exposure { period: &'static str, value: f64 },
    #[error("`confidence` must be above 0 and below 1, not {0}")]
    Confidence(f64),
    #[error("no signals in either period: nothing to compare")]
    NoSignals,
    #[error("the counts do not fit in 64 bits together")]
    TooMany,
    #[error("the action's windows fall outside the representable dates")]
    OutOfRange,
    #[error("the `{period}` volume ({volume}) is below the theme's count ({count})")]
    VolumeBelowCount {
        period: &'static str,
        count: u64,
        volume: u64,
    },
}

/// A rate ratio for people: two decimals, two significant digits below 0.1, ∞ for infinity.
fn ratio(v: f64) -> String {
    if v.is_infinite() {
        "∞".into()
    } else if v > 0.0 && v < 0.1 {
        let decimals = (-v.log10()).ceil() as usize + 1;
        format!("{v:.decimals$}")
    } else {
        format!("{v:.2}")
    }
}

/// A p-value for people: "= 0.37", "= 0.043", "= 0.0004", "< 0.0001".
fn p_value(p: f64) -> String {
    match p {
        _ if p < 0.0001 => "< 0.0001".into(),
        _ if p < 0.001 => format!("= {p:.4}"),
        _ if p < 0.1 => format!("= {p:.3}"),
        _ => format!("= {p:.2}"),
    }
}

/// Infinity and NaN as `null`: JSON has no number for them.
fn finite_or_null<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    if v.is_finite() {
        s.serialize_f64(*v)
    } else {
        s.serialize_none()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 0, 0, 0)
            .single()
            .expect("a valid date")
    }

    fn weeks(before: u64, after: u64) -> Result<RateRatio, PdcaError> {
        rate_ratio(
            Exposed {
                count: before,
                exposure: 8.0,
            },
            Exposed {
                count: after,
                exposure: 8.0,
            },
            0.95,
        )
    }

    #[test]
    fn windows_are_equal_and_half_open_around_the_start() {
        let w = ActionConfig::default()
            .windows(at(2026, 3, 2))
            .expect("windows");
        assert_eq!(
            (w.before.start, w.before.end),
            (at(2026, 1, 5), at(2026, 3, 2))
        );
        assert_eq!(
            (w.after.start, w.after.end),
            (at(2026, 3, 2), at(2026, 4, 27))
        );
        assert_eq!(w.after.weeks_elapsed(at(2026, 3, 16)), 2.0);
        assert_eq!(w.after.weeks_elapsed(at(2026, 1, 1)), 0.0);
        assert_eq!(w.after.weeks_elapsed(at(2027, 1, 1)), 8.0);
        assert!(!w.after.is_over(at(2026, 4, 26)) && w.after.is_over(at(2026, 4, 27)));
        let far = ActionConfig::default().windows(DateTime::<Utc>::MAX_UTC);
        assert_eq!(far, Err(PdcaError::OutOfRange));
    }

    #[test]
    fn a_clear_drop_is_fewer_signals() {
        let m = measure(
            &ActionConfig::default(),
            at(2026, 3, 2),
            at(2026, 5, 1),
            Counts {
                before: 40,
                after: 14,
            },
            None,
        )
        .expect("a measurement");
        assert_eq!(m.verdict, Verdict::Fewer, "{}", m.summary);
        assert!(
            m.summary.starts_with("fewer signals: rate ratio 0.35 ("),
            "{}",
            m.summary
        );
        assert_eq!(m.before.rate_per_week, Some(5.0));
        assert!(m.complete);
    }

    #[test]
    fn a_running_action_is_not_yet_enough_data_but_shows_its_counts() {
        let m = measure(
            &ActionConfig::default(),
            at(2026, 3, 2),
            at(2026, 3, 16),
            Counts {
                before: 40,
                after: 1,
            },
            None,
        )
        .expect("a measurement");
        assert_eq!(m.verdict, Verdict::NotYetEnoughData);
        assert_eq!(
            m.summary,
            "not yet enough data: the after period runs until 2026-04-27T00:00:00Z (1 signals so far, 40 before)"
        );
        assert_eq!((m.after.weeks, m.after.rate_per_week), (2.0, Some(0.5)));
        assert!(
            m.rate_ratio.is_some(),
            "the partial comparison is still reported"
        );
        // Not started yet: no after exposure, no comparison, no panic.
        let early = measure(
            &ActionConfig::default(),
            at(2026, 3, 2),
            at(2026, 2, 1),
            Counts {
                before: 3,
                after: 0,
            },
            None,
        )
        .expect("a measurement");
        assert_eq!((early.rate_ratio, early.after.rate_per_week), (None, None));
    }

    #[test]
    fn few_signals_are_not_enough_even_when_complete() {
        let m = measure(
            &ActionConfig::default(),
            at(2026, 3, 2),
            at(2026, 6, 1),
            Counts {
                before: 6,
                after: 0,
            },
            None,
        )
        .expect("a measurement");
        assert_eq!(m.verdict, Verdict::NotYetEnoughData);
        assert_eq!(
            m.summary,
            "not yet enough data: 6 signals in both periods, at least 10 needed"
        );
        let none = measure(
            &ActionConfig::default(),
            at(2026, 3, 2),
            at(2026, 6, 1),
            Counts {
                before: 0,
                after: 0,
            },
            None,
        )
        .expect("a measurement");
        assert_eq!(
            (none.verdict, none.rate_ratio),
            (Verdict::NotYetEnoughData, None)
        );
    }

    #[test]
    fn normalising_by_volume_can_turn_a_drop_into_no_change() {
        // 40 → 20 signals on the theme, but all signals halved too (a quiet summer).
        let theme = Counts {
            before: 40,
            after: 20,
        };
        let config = ActionConfig::default();
        let (start, now) = (at(2026, 6, 1), at(2026, 9, 1));
        let by_time = measure(&config, start, now, theme, None).expect("by time");
        assert_eq!(by_time.verdict, Verdict::Fewer);
        let volume = Some(Counts {
            before: 1000,
            after: 500,
        });
        let by_volume = measure(&config, start, now, theme, volume).expect("by volume");
        assert_eq!(
            by_volume.verdict,
            Verdict::NoChange,
            "{}",
            by_volume.summary
        );
        assert!(by_volume
            .summary
            .starts_with("no evidence of change: rate ratio 1.00 ("));
        let bad = measure(
            &config,
            start,
            now,
            theme,
            Some(Counts {
                before: 30,
                after: 500,
            }),
        );
        assert!(matches!(
            bad,
            Err(PdcaError::VolumeBelowCount {
                period: "before",
                ..
            })
        ));
    }

    #[test]
    fn the_verdict_agrees_with_the_interval() {
        let config = ActionConfig::default();
        for before in 0..40u64 {
            for after in 0..40u64 {
                let m = measure(
                    &config,
                    at(2026, 1, 5),
                    at(2026, 6, 1),
                    Counts { before, after },
                    None,
                )
                .expect("a measurement");
                let Some(rr) = m.rate_ratio else { continue };
                let expected = if before + after < 10 {
                    Verdict::NotYetEnoughData
                } else if rr.upper < 1.0 {
                    Verdict::Fewer
                } else if rr.lower > 1.0 {
                    Verdict::More
                } else {
                    Verdict::NoChange
                };
                assert_eq!(m.verdict, expected, "{before} → {after}: {}", m.summary);
                assert!(rr.lower <= rr.estimate && rr.estimate <= rr.upper, "{rr:?}");
            }
        }
    }

    #[test]
    fn edges_give_open_intervals_and_json_nulls() {
        let rr = weeks(0, 12).expect("12 after");
        assert_eq!((rr.estimate, rr.upper), (f64::INFINITY, f64::INFINITY));
        assert_eq!(rr.p_fewer, 1.0);
        let json = serde_json::to_value(rr).expect("serialisable");
        assert!(json["estimate"].is_null() && json["upper"].is_null() && json["lower"].is_f64());
        let rr = weeks(12, 0).expect("12 before");
        assert_eq!((rr.estimate, rr.lower, rr.p_more), (0.0, 0.0, 1.0));
        assert_eq!(weeks(0, 0), Err(PdcaError::NoSignals));
        let bad = |e: f64| {
            rate_ratio(
                Exposed {
                    count: 1,
                    exposure: e,
                },
                Exposed {
                    count: 1,
                    exposure: 1.0,
                },
                0.95,
            )
        };
        for e in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                matches!(
                    bad(e),
                    Err(PdcaError::Exposure {
                        period: "before",
                        ..
                    })
                ),
                "{e}"
            );
        }
        assert_eq!(
            rate_ratio(
                Exposed {
                    count: 1,
                    exposure: 1.0
                },
                Exposed {
                    count: 1,
                    exposure: 1.0
                },
                1.0
            ),
            Err(PdcaError::Confidence(1.0))
        );
        let huge = rate_ratio(
            Exposed {
                count: u64::MAX,
                exposure: 1.0,
            },
            Exposed {
                count: 1,
                exposure: 1.0,
            },
            0.95,
        );
        assert_eq!(huge, Err(PdcaError::TooMany));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(ratio(0.4213), "0.42");
        assert_eq!(ratio(0.0123), "0.012");
        assert_eq!(ratio(0.0), "0.00");
        assert_eq!(ratio(f64::INFINITY), "∞");
        assert_eq!(p_value(0.3712), "= 0.37");
        assert_eq!(p_value(0.0431), "= 0.043");
        assert_eq!(p_value(0.00043), "= 0.0004");
        assert_eq!(p_value(0.00001), "< 0.0001");
    }
}
