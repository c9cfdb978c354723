//! Count distributions for thresholds: Poisson, or the negative binomial with variance `φ·μ`
//! when the history is over-dispersed. Tail sums (`sf`) rather than `1 − cdf`, so p-values of
//! one in a million are still accurate.

use statrs::distribution::{DiscreteCDF, NegativeBinomial, Poisson};

/// Expected count `mean` with dispersion `phi` (variance = `phi · mean`; 1 is Poisson).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CountModel {
    pub mean: f64,
    pub phi: f64,
}

/// Means below this are treated as this: a count model needs a positive mean.
const MIN_MEAN: f64 = 1e-6;

/// Counts above this are not searched for a quantile (thousands of signals per bucket per
/// series would be a different system).
const MAX_COUNT: u64 = 1 << 40;

impl CountModel {
    fn sf(&self, x: u64) -> f64 {
        let mean = self.mean.max(MIN_MEAN);
        if self.phi <= 1.0 + 1e-9 {
            match Poisson::new(mean) {
                Ok(d) => d.sf(x),
                Err(_) => 0.0,
            }
        } else {
            // Size r from variance = mean + mean²/r = phi · mean.
            let r = mean / (self.phi - 1.0);
            let p = r / (r + mean);
            match NegativeBinomial::new(r, p) {
                Ok(d) => d.sf(x),
                Err(_) => 0.0,
            }
        }
    }

    /// `P(Y ≥ y)`: how surprising `y` is under this model.
    pub fn p_value(&self, y: u64) -> f64 {
        if y == 0 {
            1.0
        } else {
            self.sf(y - 1).clamp(0.0, 1.0)
        }
    }

    /// The smallest `u` with `P(Y > u) ≤ alpha`: a count above it is an exceedance.
    pub fn upper(&self, alpha: f64) -> u64 {
        let alpha = alpha.clamp(1e-15, 1.0);
        let mut hi = (self.mean.max(1.0) * 2.0).ceil() as u64;
        while self.sf(hi) > alpha {
            if hi >= MAX_COUNT {
                return MAX_COUNT;
            }
            hi = hi.saturating_mul(2);
        }
        let mut lo = 0u64;
        if self.sf(lo) <= alpha {
            return 0;
        }
        // sf(lo) > alpha ≥ sf(hi)
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.sf(mid) > alpha {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_upper_and_p_values_match_known_values() {
        let m = CountModel {
            mean: 2.0,
            phi: 1.0,
        };
        // P(Y > 8 | 2) = 0.000237, P(Y > 7 | 2) = 0.0011
        assert_eq!(m.upper(0.001), 8);
        assert!((m.p_value(9) - 0.000237).abs() < 1e-5, "{}", m.p_value(9));
        assert_eq!(m.p_value(0), 1.0);
        let zero = CountModel {
            mean: 0.0,
            phi: 1.0,
        };
        assert_eq!(zero.upper(0.001), 0);
    }

    #[test]
    fn over_dispersion_widens_the_threshold() {
        let poisson = CountModel {
            mean: 5.0,
            phi: 1.0,
        };
        let nb = CountModel {
            mean: 5.0,
            phi: 3.0,
        };
        assert!(nb.upper(0.001) > poisson.upper(0.001));
        assert!(nb.p_value(15) > poisson.p_value(15));
        // Mean 5, variance 15: r = 2.5, P(Y ≥ 15) ≈ 0.0259 (negative binomial tail)
        assert!(
            (nb.p_value(15) - 0.0259).abs() < 0.0005,
            "{}",
            nb.p_value(15)
        );
    }

    #[test]
    fn high_means_do_not_overflow() {
        let m = CountModel {
            mean: 5_000.0,
            phi: 1.0,
        };
        let u = m.upper(0.001);
        assert!((5_200..5_240).contains(&u), "{u}");
    }
}
