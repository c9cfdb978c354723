//! The few transcendental functions the models need, written with `+`, `*`, `/` and bit
//! manipulation only.
//!
//! `f32::exp` and `f32::ln` call the platform's libm, whose last bit may differ between
//! platforms; these do not (Rust never fuses or reorders float operations on its own), so
//! featurizing, training and predicting give bit-identical results everywhere.

/// `e^x` to within about 2 ulp, for any `x` (large `x` saturate at `e^88`, small at `e^-87`).
pub(crate) fn exp(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(-87.0, 88.0);
    // x = n ln2 + r with |r| <= ln2 / 2; ln2 in two parts so that n * LN2_HI is exact.
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.69314575;
    const LN2_LO: f32 = 1.4286068e-6;
    let n = (x * LOG2_E + 0.5).floor();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor to r^6: the error term r^7/7! stays below 1.2e-7 for |r| <= 0.347.
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (0.16666667 + r * (0.041666668 + r * (0.008333334 + r * 0.0013888889)))));
    // 2^n through the exponent bits; n is in -126..=127 after the clamp.
    let bits = ((n as i32 + 127) as u32) << 23;
    p * f32::from_bits(bits)
}

/// The logistic function `1 / (1 + e^-z)`.
#[inline]
pub(crate) fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + exp(-z))
}

/// Softmax of `z` in place: `e^(z_i - max) / sum`.
pub(crate) fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        let even = 1.0 / z.len().max(1) as f32;
        z.iter_mut().for_each(|v| *v = even);
        return;
    }
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = exp(*v - max);
        sum += *v;
    }
    // sum >= 1 (the max term is e^0).
    z.iter_mut().for_each(|v| *v /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_agrees_with_libm_to_a_few_ulp() {
        let mut x = -80.0f32;
        while x < 80.0 {
            let ours = exp(x);
            let libm = x.exp();
            let rel = ((ours - libm) / libm).abs();
            assert!(
                rel < 4e-7,
                "exp({x}) = {ours}, libm says {libm} (relative error {rel})"
            );
            x += 0.173;
        }
        assert_eq!(exp(0.0), 1.0);
        assert!(
            exp(1000.0).is_finite() && exp(-1000.0) >= 0.0,
            "extremes saturate"
        );
    }

    #[test]
    fn sigmoid_and_softmax_are_probabilities() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(40.0) <= 1.0 && sigmoid(-40.0) >= 0.0);
        let mut z = [1.0, 2.0, 3.0, 1000.0];
        softmax(&mut z);
        assert!((z.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(z[3] > 0.999);
    }
}
