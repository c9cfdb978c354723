//! A Poisson regression with log link, fitted by iteratively reweighted least squares, for the
//! handful of covariates a baseline needs (intercept, same weekday, trend). Quasi-Poisson: the
//! over-dispersion `φ` is estimated from Pearson residuals afterwards.

/// Most covariates a fit takes.
pub const MAX_P: usize = 3;

#[derive(Debug, Clone)]
pub struct Fit {
    pub beta: Vec<f64>,
    /// `(XᵀWX)⁻¹`, the unscaled covariance of `beta` (multiply by `φ`).
    pub cov: Vec<Vec<f64>>,
    pub fitted: Vec<f64>,
    /// Leverage of each point (diagonal of the hat matrix).
    pub leverage: Vec<f64>,
}

impl Fit {
    pub fn predict(&self, x: &[f64]) -> f64 {
        dot(&self.beta, x).exp()
    }

    /// The prediction at `x` for a point with `offset` (its log exposure).
    pub fn predict_offset(&self, x: &[f64], offset: f64) -> f64 {
        (dot(&self.beta, x) + offset).exp()
    }

    /// Quasi-Poisson dispersion with prior weights, at least 1.
    pub fn phi(&self, y: &[f64], weights: &[f64]) -> f64 {
        let n = y.len();
        let p = self.beta.len();
        if n <= p {
            return 1.0;
        }
        let pearson: f64 = y
            .iter()
            .zip(&self.fitted)
            .zip(weights)
            .map(|((y, mu), w)| w * (y - mu).powi(2) / mu.max(1e-10))
            .sum();
        (pearson / (n - p) as f64).max(1.0)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(a, b)| a * b).sum()
}

/// Solves `a · x = b` (small, dense) by Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let b_col = b[col];
        let (top, rest) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (row, rhs) in rest.iter_mut().zip(b.iter_mut().skip(col + 1)) {
            let f = row[col] / pivot_row[col];
            for (x, p) in row.iter_mut().zip(pivot_row).skip(col) {
                *x -= f * p;
            }
            *rhs -= f * b_col;
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

fn inverse(a: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = a.len();
    let mut cols = Vec::with_capacity(n);
    for j in 0..n {
        let e: Vec<f64> = (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect();
        cols.push(solve(a.to_vec(), e)?);
    }
    Some(
        (0..n)
            .map(|i| (0..n).map(|j| cols[j][i]).collect())
            .collect(),
    )
}

/// Fits `log E[y] = X·β` with prior `weights`. `None` when the design is singular or the fit
/// does not converge (e.g. one group all zeros pushes its coefficient to −∞): the caller then
/// uses a simpler design.
pub fn fit_poisson(x: &[Vec<f64>], y: &[f64], weights: &[f64]) -> Option<Fit> {
    fit_poisson_offset(x, y, weights, &vec![0.0; y.len()])
}

/// [`fit_poisson`] with a known `offset` per point: `log E[y] = X·β + offset` (an exposure, or a
/// level known from elsewhere, such as the weekday's share of the week).
pub fn fit_poisson_offset(
    x: &[Vec<f64>],
    y: &[f64],
    weights: &[f64],
    offset: &[f64],
) -> Option<Fit> {
    let n = y.len();
    if offset.len() != n {
        return None;
    }
    let p = x.first()?.len();
    if n == 0 || p == 0 || p > MAX_P || n < p {
        return None;
    }
    let wsum: f64 = weights.iter().sum();
    let mean = y.iter().zip(weights).map(|(y, w)| y * w).sum::<f64>() / wsum.max(1e-12);
    let mean_offset = offset.iter().zip(weights).map(|(o, w)| o * w).sum::<f64>() / wsum.max(1e-12);
    let mut beta = vec![0.0; p];
    beta[0] = mean.max(1e-3).ln() - mean_offset;
    let mut converged = false;
    let mut xtwx = vec![vec![0.0; p]; p];
    for _ in 0..60 {
        let mut xtwz = vec![0.0; p];
        for row in xtwx.iter_mut() {
            row.fill(0.0);
        }
        for i in 0..n {
            let eta = dot(&beta, &x[i]) + offset[i];
            let mu = eta.clamp(-30.0, 30.0).exp();
            let w = weights[i] * mu;
            // The working response without the offset: the fit solves for β alone.
            let z = eta - offset[i] + (y[i] - mu) / mu;
            for a in 0..p {
                xtwz[a] += w * x[i][a] * z;
                for b in 0..p {
                    xtwx[a][b] += w * x[i][a] * x[i][b];
                }
            }
        }
        let next = solve(xtwx.clone(), xtwz)?;
        let change = next
            .iter()
            .zip(&beta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        beta = next;
        if change < 1e-8 {
            converged = true;
            break;
        }
    }
    // A coefficient running off to ±∞ means a group with no counts: not a usable fit.
    if !converged || beta.iter().any(|b| !b.is_finite() || b.abs() > 20.0) {
        return None;
    }
    let fitted: Vec<f64> = x
        .iter()
        .zip(offset)
        .map(|(xi, o)| (dot(&beta, xi) + o).exp())
        .collect();
    for row in xtwx.iter_mut() {
        row.fill(0.0);
    }
    for i in 0..n {
        let w = weights[i] * fitted[i];
        for a in 0..p {
            for b in 0..p {
                xtwx[a][b] += w * x[i][a] * x[i][b];
            }
        }
    }
    let cov = inverse(&xtwx)?;
    let leverage = (0..n)
        .map(|i| {
            let w = weights[i] * fitted[i];
            let mut q = 0.0;
            for a in 0..p {
                for b in 0..p {
                    q += x[i][a] * cov[a][b] * x[i][b];
                }
            }
            (w * q).clamp(0.0, 1.0)
        })
        .collect();
    Some(Fit {
        beta,
        cov,
        fitted,
        leverage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intercept_only_fit_is_the_mean() -> Result<(), &'static str> {
        let y = [2.0, 4.0, 3.0, 5.0, 1.0];
        let x = vec![vec![1.0]; 5];
        let f = fit_poisson(&x, &y, &[1.0; 5]).ok_or("no fit")?;
        assert!((f.predict(&[1.0]) - 3.0).abs() < 1e-9);
        // Pearson: (1+1+0+4+4)/3 / 4 ... = Σ(y-3)²/3 / (n-1) = 10/3/4 < 1 → 1
        assert_eq!(f.phi(&y, &[1.0; 5]), 1.0);
        Ok(())
    }

    #[test]
    fn a_group_effect_and_a_trend_are_recovered() -> Result<(), &'static str> {
        // E[y] = exp(1 + 0.7·g + 0.2·t), exact expected values as data.
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in 0..10 {
            for g in 0..2 {
                let (g, t) = (f64::from(g), f64::from(t));
                x.push(vec![1.0, g, t]);
                y.push((1.0 + 0.7 * g + 0.2 * t).exp());
            }
        }
        let f = fit_poisson(&x, &y, &vec![1.0; y.len()]).ok_or("no fit")?;
        for (b, want) in f.beta.iter().zip([1.0, 0.7, 0.2]) {
            assert!((b - want).abs() < 1e-6, "{:?}", f.beta);
        }
        Ok(())
    }

    #[test]
    fn a_group_of_zeros_is_no_fit() {
        let x = vec![
            vec![1.0, 1.0],
            vec![1.0, 1.0],
            vec![1.0, 0.0],
            vec![1.0, 0.0],
        ];
        assert!(fit_poisson(&x, &[0.0, 0.0, 3.0, 4.0], &[1.0; 4]).is_none());
    }
}
