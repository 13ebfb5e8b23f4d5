//! Channel equalization (SmoothQuant): move activation outliers into the weights.
//!
//! For a linear layer `y = x W^T` with `W` of shape `[out, in]` (row-major) and the
//! calibration absmax `a_j = max |X_j|` of each input channel `j`:
//!
//! `s_j = a_j^alpha / w_j^(1 - alpha)`, `w_j = max_o |W[o, j]|`,
//!
//! then `W'[:, j] = W[:, j] * s_j` and the runtime feeds `x_j / s_j`, so `y` is unchanged
//! in exact arithmetic while activation outliers shrink. A channel with `a_j = 0` or
//! `w_j = 0` keeps `s_j = 1`. Factors are clamped to `[1e-5, 1e5]`.
//!
//! Memory: the factors slice (`in` f32) is the only buffer; the weight is read once to
//! find the column maxima and written once when the factors are applied.

use super::DiffusionError;

/// Smallest and largest factor.
pub const FACTOR_LIMITS: (f32, f32) = (1e-5, 1e5);

/// What [`smoothquant_factors`] found.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct EqualizeReport {
    /// Input channels.
    pub channels: usize,
    /// Channels left at factor 1 (dead activation or weight column).
    pub neutral: usize,
    /// Smallest factor.
    pub min_factor: f32,
    /// Largest factor.
    pub max_factor: f32,
}

/// Computes the per-input-channel factors of a `[rows, cols]` weight into `factors` (`cols`).
///
/// # Errors
/// [`DiffusionError::LengthMismatch`] for inconsistent lengths,
/// [`DiffusionError::InvalidConfig`] unless `0 <= alpha <= 1`,
/// [`DiffusionError::InvalidStats`] for a NaN/infinite/negative absmax or a non-finite weight
/// (index = channel).
pub fn smoothquant_factors(
    act_absmax: &[f32],
    weight: &[f32],
    rows: usize,
    cols: usize,
    alpha: f32,
    factors: &mut [f32],
) -> Result<EqualizeReport, DiffusionError> {
    if !(0.0..=1.0).contains(&alpha) {
        return Err(DiffusionError::InvalidConfig("equalization alpha must be in [0, 1]"));
    }
    if cols == 0 || rows == 0 {
        return Err(DiffusionError::Empty);
    }
    for (got, want) in [(act_absmax.len(), cols), (factors.len(), cols), (weight.len(), rows * cols)] {
        if got != want {
            return Err(DiffusionError::LengthMismatch { expected: want, actual: got });
        }
    }
    if let Some(j) = act_absmax.iter().position(|a| !(a.is_finite() && *a >= 0.0)) {
        return Err(DiffusionError::InvalidStats { index: j });
    }
    factors.fill(0.0);
    for row in weight.chunks_exact(cols) {
        for (j, (&w, f)) in row.iter().zip(factors.iter_mut()).enumerate() {
            if !w.is_finite() {
                return Err(DiffusionError::InvalidStats { index: j });
            }
            *f = f.max(w.abs());
        }
    }
    let mut rep = EqualizeReport { channels: cols, min_factor: f32::INFINITY, max_factor: 0.0, neutral: 0 };
    for (f, &a) in factors.iter_mut().zip(act_absmax) {
        let w = *f;
        let s = if a > 0.0 && w > 0.0 {
            let s = libm::powf(a, alpha) / libm::powf(w, 1.0 - alpha);
            if s.is_finite() { s.clamp(FACTOR_LIMITS.0, FACTOR_LIMITS.1) } else { FACTOR_LIMITS.1 }
        } else {
            rep.neutral += 1;
            1.0
        };
        *f = s;
        rep.min_factor = rep.min_factor.min(s);
        rep.max_factor = rep.max_factor.max(s);
    }
    Ok(rep)
}

/// Scales each input column `j` of the `[rows, cols]` weight by `factors[j]` in place.
///
/// # Errors
/// [`DiffusionError::LengthMismatch`] if `weight.len() != rows * factors.len()`.
pub fn apply_to_weight(weight: &mut [f32], rows: usize, factors: &[f32]) -> Result<(), DiffusionError> {
    if factors.is_empty() || weight.len() != rows * factors.len() {
        return Err(DiffusionError::LengthMismatch { expected: rows * factors.len(), actual: weight.len() });
    }
    for row in weight.chunks_exact_mut(factors.len()) {
        for (w, &s) in row.iter_mut().zip(factors) {
            *w *= s;
        }
    }
    Ok(())
}

/// Divides each channel of an activation row by its factor (what a runtime does).
///
/// # Errors
/// [`DiffusionError::LengthMismatch`] if the lengths differ.
pub fn apply_to_activation(x: &mut [f32], factors: &[f32]) -> Result<(), DiffusionError> {
    if x.len() != factors.len() {
        return Err(DiffusionError::LengthMismatch { expected: factors.len(), actual: x.len() });
    }
    for (v, &s) in x.iter_mut().zip(factors) {
        *v /= s;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_balance_ranges_and_preserve_products() {
        // 2 x 3 weight, channel 1 is an activation outlier.
        let mut w = [0.5f32, 0.1, -0.2, -0.25, 0.05, 0.4];
        let act = [1.0f32, 100.0, 0.0];
        let mut s = [0.0f32; 3];
        let rep = smoothquant_factors(&act, &w, 2, 3, 0.5, &mut s).unwrap();
        assert_eq!(rep.neutral, 1);
        assert!((s[0] - (1.0f32 / 0.5).sqrt()).abs() < 1e-6);
        assert!((s[1] - (100.0f32 / 0.1).sqrt()).abs() < 1e-3);
        assert_eq!(s[2], 1.0);
        // After scaling, max|X_j / s_j| == max|W'_j| for alpha = 0.5.
        let x = [0.7f32, -100.0, 0.0];
        let y0: f32 = (0..3).map(|j| x[j] * w[j]).sum();
        let orig = w;
        apply_to_weight(&mut w, 2, &s).unwrap();
        assert!(((act[1] / s[1]) - orig[1].abs().max(orig[4].abs()) * s[1]).abs() < 1e-3);
        let mut xs = x;
        apply_to_activation(&mut xs, &s).unwrap();
        let y1: f32 = (0..3).map(|j| xs[j] * w[j]).sum();
        assert!((y0 - y1).abs() < 1e-4);
    }

    #[test]
    fn bad_input_is_an_error() {
        let w = [1.0f32; 6];
        let mut s = [0.0f32; 3];
        assert!(smoothquant_factors(&[1.0; 3], &w, 2, 3, 1.5, &mut s).is_err());
        assert!(smoothquant_factors(&[1.0; 2], &w, 2, 3, 0.5, &mut s).is_err());
        assert_eq!(
            smoothquant_factors(&[1.0, f32::NAN, 1.0], &w, 2, 3, 0.5, &mut s),
            Err(DiffusionError::InvalidStats { index: 1 })
        );
        assert!(smoothquant_factors(&[1.0; 3], &w, 0, 3, 0.5, &mut s).is_err());
    }
}
