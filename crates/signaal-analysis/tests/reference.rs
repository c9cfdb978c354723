//! The PDCA statistics against scipy, an implementation independent of statrs.
//!
//! `CASES` is the output of `tests/reference.py` (scipy 1.17.1): for each case the Python computed
//!
//! ```python
//! n, p0 = x_b + x_a, e_a / (e_a + e_b)
//! ci = binomtest(x_a, n, p0).proportion_ci(confidence_level=confidence, method="exact")
//! lower, upper = (p / (1 - p) * e_b / e_a for p in (ci.low, ci.high))   # inf when p = 1
//! p_fewer = binomtest(x_a, n, p0, alternative="less").pvalue
//! p_more = binomtest(x_a, n, p0, alternative="greater").pvalue
//! ```

use chrono::{TimeZone, Utc};
use signaal_analysis::{measure, rate_ratio, ActionConfig, Counts, Exposed, Verdict};

/// (x_before, E_before, x_after, E_after, confidence, lower, upper, p_fewer, p_more)
type Case = (u64, f64, u64, f64, f64, f64, f64, f64, f64);

#[rustfmt::skip]
const CASES: [Case; 14] = [
    (40, 8.0, 14, 8.0, 0.95, 0.17588495235355486, 0.6571235748346046, 0.0002677177514285311, 0.999912436632797),
    (12, 8.0, 0, 8.0, 0.95, 0.0, 0.35989381728770403, 0.000244140625, 1.0),
    (0, 8.0, 12, 8.0, 0.95, 2.7785973305581577, f64::INFINITY, 1.0, 0.000244140625),
    (30, 8.0, 25, 5.0, 0.95, 0.7519059228056146, 2.3453092244213436, 0.8850988084808652, 0.17648127859121165),
    (400, 8.0, 300, 8.0, 0.95, 0.6435610331006008, 0.8732988762726779, 8.92381572428122e-05, 0.9999342563936278),
    (40, 1000.0, 20, 500.0, 0.95, 0.5538525962649296, 1.7514490540048147, 0.56031384874085, 0.548411224210426),
    (3, 8.0, 1, 8.0, 0.95, 0.006349525306027391, 4.151440776238428, 0.3125, 0.9375),
    (120, 12.0, 150, 8.0, 0.95, 1.4650107724435757, 2.4039988130613588, 0.9999999075313285, 1.772838448498356e-07),
    (1, 8.0, 30, 8.0, 0.95, 4.987266895172594, 1223.934664389172, 0.9999999995343387, 1.4901161193847656e-08),
    (1000, 52.0, 950, 48.0, 0.95, 0.9407246680178699, 1.1258647605371401, 0.7445389075744067, 0.2702384273073866),
    (25, 8.0, 14, 8.0, 0.99, 0.21390935316424525, 1.3630111290131461, 0.05406451070302866, 0.9733740429510362),
    (5, 3.5, 0, 0.25, 0.95, 0.0, 15.277907472555643, 0.708245596707819, 1.0),
    (5000, 8.0, 4800, 8.0, 0.95, 0.9225294365156363, 0.9989844630611757, 0.022202074399923156, 0.9788451255052996),
    (1000000, 52.0, 990000, 52.0, 0.95, 0.9872518112844768, 0.9927558292693688, 6.797412319270134e-13, 0.9999999999993272),
];

/// Relative tolerance; 0 and infinity must match exactly.
const TOLERANCE: f64 = 1e-6;

fn relative_error(got: f64, want: f64) -> f64 {
    if got == want {
        0.0
    } else {
        ((got - want) / want).abs()
    }
}

#[test]
fn rate_ratio_matches_scipy() {
    for (x_b, e_b, x_a, e_a, confidence, lower, upper, p_fewer, p_more) in CASES {
        let case = format!("{x_b} over {e_b} → {x_a} over {e_a} at {confidence}");
        let rr = rate_ratio(
            Exposed {
                count: x_b,
                exposure: e_b,
            },
            Exposed {
                count: x_a,
                exposure: e_a,
            },
            confidence,
        )
        .unwrap_or_else(|e| panic!("{case}: {e}"));
        for (what, got, want) in [
            ("lower bound", rr.lower, lower),
            ("upper bound", rr.upper, upper),
            ("p (fewer)", rr.p_fewer, p_fewer),
            ("p (more)", rr.p_more, p_more),
        ] {
            let error = relative_error(got, want);
            assert!(
                error <= TOLERANCE,
                "{case}: {what} is {got}, scipy says {want} (relative error {error:.1e})"
            );
        }
        let estimate = (x_a as f64 / e_a) / (x_b as f64 / e_b);
        assert!(
            relative_error(rr.estimate, estimate) <= 1e-12,
            "{case}: estimate {}",
            rr.estimate
        );
    }
}

#[test]
fn verdicts_on_the_reference_cases() {
    let at = |d| {
        Utc.with_ymd_and_hms(2026, 3, d, 0, 0, 0)
            .single()
            .expect("a date")
    };
    let (start, later) = (at(2), at(2) + chrono::Duration::weeks(9));
    let config = ActionConfig::default();
    let verdict = |before, after| {
        measure(&config, start, later, Counts { before, after }, None).expect("a measurement")
    };
    // Case 1: p_fewer = 0.00027, interval 0.176–0.657.
    let m = verdict(40, 14);
    assert_eq!(m.verdict, Verdict::Fewer);
    assert_eq!(
        m.summary,
        "fewer signals: rate ratio 0.35 (0.18–0.66), p = 0.0003"
    );
    // Case 5: 400 → 300, p_fewer = 0.000089.
    let m = verdict(400, 300);
    assert_eq!(
        m.summary,
        "fewer signals: rate ratio 0.75 (0.64–0.87), p < 0.0001"
    );
    // Case 3: nothing before, 12 after.
    let m = verdict(0, 12);
    assert_eq!(m.verdict, Verdict::More);
    assert_eq!(m.summary, "more signals: rate ratio ∞ (2.78–∞), p = 0.0002");
    // 25 → 14 at 95 %: p_fewer = 0.054, the interval 0.27–1.12 holds 1.
    let m = verdict(25, 14);
    assert_eq!(m.verdict, Verdict::NoChange);
    assert!(
        m.summary
            .starts_with("no evidence of change: rate ratio 0.56 ("),
        "{}",
        m.summary
    );
    assert!(m.summary.ends_with("p = 0.054"), "{}", m.summary);
}
