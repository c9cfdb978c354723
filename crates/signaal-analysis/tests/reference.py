"""Reference values for the PDCA statistics in tests/reference.rs, computed with scipy.

    python3 -m venv /tmp/scipy-venv && /tmp/scipy-venv/bin/pip install scipy
    /tmp/scipy-venv/bin/python crates/signaal-analysis/tests/reference.py

prints the `CASES` table of tests/reference.rs. Each case is (x_before, E_before, x_after, E_after,
confidence). Given n = x_before + x_after, x_after ~ Binomial(n, p) with p0 = E_a / (E_a + E_b)
under "no change"; the exact (Clopper-Pearson) interval for p becomes a rate-ratio interval by
RR = p / (1 - p) * E_b / E_a. scipy's binomtest is an implementation independent of statrs.
"""

import math

import scipy
from scipy.stats import binomtest

CASES = [
    (40, 8.0, 14, 8.0, 0.95),  # a clear drop, equal weeks
    (12, 8.0, 0, 8.0, 0.95),  # nothing after: lower bound 0
    (0, 8.0, 12, 8.0, 0.95),  # nothing before: upper bound infinite
    (30, 8.0, 25, 5.0, 0.95),  # unequal exposures (a partial after window)
    (400, 8.0, 300, 8.0, 0.95),  # large n
    (40, 1000.0, 20, 500.0, 0.95),  # exposure = total signal volume
    (3, 8.0, 1, 8.0, 0.95),  # tiny n
    (120, 12.0, 150, 8.0, 0.95),  # more signals, unequal exposures
    (1, 8.0, 30, 8.0, 0.95),  # lopsided: tiny p-value
    (1000, 52.0, 950, 48.0, 0.95),  # a year, no change
    (25, 8.0, 14, 8.0, 0.99),  # another confidence level
    (5, 3.5, 0, 0.25, 0.95),  # nothing after, unequal exposures
    (5000, 8.0, 4800, 8.0, 0.95),  # a big register: p just under 0.025
    (1000000, 52.0, 990000, 52.0, 0.95),  # a huge one: tiny p, a narrow interval
]


def rate_ratio(p, e_b, e_a):
    return math.inf if p >= 1.0 else p / (1.0 - p) * e_b / e_a


def rust(v):
    return "f64::INFINITY" if math.isinf(v) else repr(float(v))


print(f"// scipy {scipy.__version__}")
for x_b, e_b, x_a, e_a, confidence in CASES:
    n = x_b + x_a
    p0 = e_a / (e_a + e_b)
    ci = binomtest(x_a, n, p0).proportion_ci(confidence_level=confidence, method="exact")
    lower = rate_ratio(ci.low, e_b, e_a)
    upper = rate_ratio(ci.high, e_b, e_a)
    p_fewer = binomtest(x_a, n, p0, alternative="less").pvalue
    p_more = binomtest(x_a, n, p0, alternative="greater").pvalue
    row = [x_b, rust(e_b), x_a, rust(e_a), rust(confidence), rust(lower), rust(upper), rust(p_fewer), rust(p_more)]
    print(f"    ({', '.join(str(v) for v in row)}),")
