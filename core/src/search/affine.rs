//! The affine fit of one (sub-)group: find `(scale, offset)` so that
//! `x ≈ scale * q + offset` with integer codes `q` in `[0, qmax]` minimises the
//! (weighted) squared error.
//!
//! Every pass over the elements is written as eight independent lanes summed in a
//! fixed order, so the compiler may vectorise it but the arithmetic (plain IEEE f32
//! adds and multiplies, no fused multiply-add) is the same on every CPU. Rounding to
//! the nearest code uses the `1.5 * 2^23` trick, which is exact round-to-nearest-even
//! for the small non-negative values involved.

use super::{SearchConfig, Weights};

/// Adding then subtracting `1.5 * 2^23` rounds any `0 <= t < 2^22` to the nearest
/// integer, ties to even, with plain IEEE additions.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// Lanes of the accumulators (a multiple of every SIMD width in use).
const LANES: usize = 8;

/// Clamps `t` to `[0, qmax]` and rounds it to the nearest integer (ties to even).
#[inline(always)]
pub(crate) fn round_code(t: f32, qmax: f32) -> f32 {
    let t = if t > 0.0 { t } else { 0.0 };
    let t = if t < qmax { t } else { qmax };
    (t + ROUND_MAGIC) - ROUND_MAGIC
}

/// Weighted sums of a group that do not depend on the codes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BaseSums {
    /// `Σ w`
    pub w: f32,
    /// `Σ w x`
    pub x: f32,
    /// `Σ w x²`
    pub xx: f32,
}

/// Weighted sums that depend on the codes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CodeSums {
    /// `Σ w q`
    pub q: f32,
    /// `Σ w q²`
    pub qq: f32,
    /// `Σ w q x`
    pub qx: f32,
}

/// Reduces eight lanes in a fixed order.
#[inline(always)]
fn reduce(a: [f32; LANES]) -> f32 {
    ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))
}

/// Splits `x` into whole chunks of [`LANES`] and a tail shorter than that.
#[inline(always)]
fn split(x: &[f32]) -> (&[f32], &[f32]) {
    x.split_at(x.len() / LANES * LANES)
}

/// `Σ w`, `Σ w x`, `Σ w x²`.
#[inline]
pub(crate) fn base_sums<W: Weights>(x: &[f32], w: W) -> BaseSums {
    let (body, tail) = split(x);
    let (mut aw, mut ax, mut axx) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    for (k, c) in body.chunks_exact(LANES).enumerate() {
        let wk = w.chunk(k);
        for l in 0..LANES {
            let wx = wk[l] * c[l];
            aw[l] += wk[l];
            ax[l] += wx;
            axx[l] += wx * c[l];
        }
    }
    let mut s = BaseSums { w: reduce(aw), x: reduce(ax), xx: reduce(axx) };
    for (i, &v) in tail.iter().enumerate() {
        let wi = w.at(body.len() + i);
        s.w += wi;
        s.x += wi * v;
        s.xx += wi * v * v;
    }
    s
}

/// Assigns codes `q = round((x - offset) * inv_scale)` and returns their sums.
#[inline]
pub(crate) fn code_sums<W: Weights>(x: &[f32], w: W, inv_scale: f32, offset: f32, qmax: f32) -> CodeSums {
    let (body, tail) = split(x);
    let (mut aq, mut aqq, mut aqx) = ([0f32; LANES], [0f32; LANES], [0f32; LANES]);
    for (k, c) in body.chunks_exact(LANES).enumerate() {
        let wk = w.chunk(k);
        for l in 0..LANES {
            let q = round_code((c[l] - offset) * inv_scale, qmax);
            let wq = wk[l] * q;
            aq[l] += wq;
            aqq[l] += wq * q;
            aqx[l] += wq * c[l];
        }
    }
    let mut s = CodeSums { q: reduce(aq), qq: reduce(aqq), qx: reduce(aqx) };
    for (i, &v) in tail.iter().enumerate() {
        let q = round_code((v - offset) * inv_scale, qmax);
        let wq = w.at(body.len() + i) * q;
        s.q += wq;
        s.qq += wq * q;
        s.qx += wq * v;
    }
    s
}

/// The weighted squared error of decoding `q * scale - neg_offset`, with
/// `q = round((x + neg_offset) * inv_scale)`: exactly the arithmetic of the two-level
/// decoder (and of the group decoder with `neg_offset = -offset`).
#[inline]
pub(crate) fn direct_error<W: Weights>(
    x: &[f32],
    w: W,
    scale: f32,
    inv_scale: f32,
    neg_offset: f32,
    qmax: f32,
) -> f32 {
    let (body, tail) = split(x);
    let mut ae = [0f32; LANES];
    for (k, c) in body.chunks_exact(LANES).enumerate() {
        let wk = w.chunk(k);
        for l in 0..LANES {
            let q = round_code((c[l] + neg_offset) * inv_scale, qmax);
            let e = q * scale - neg_offset - c[l];
            ae[l] += wk[l] * e * e;
        }
    }
    let mut err = reduce(ae);
    for (i, &v) in tail.iter().enumerate() {
        let q = round_code((v + neg_offset) * inv_scale, qmax);
        let e = q * scale - neg_offset - v;
        err += w.at(body.len() + i) * e * e;
    }
    err
}

/// Writes the codes `round((x + neg_offset) * inv_scale)` (as in [`direct_error`]).
#[inline]
pub(crate) fn assign_codes(x: &[f32], inv_scale: f32, neg_offset: f32, qmax: f32, out: &mut [u8]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = round_code((v + neg_offset) * inv_scale, qmax) as u8;
    }
}

/// Least-squares `(scale, offset)` for fixed codes, or `None` when the codes are all
/// equal. With `nonpositive_offset` the offset is constrained to `<= 0` (the
/// two-level format stores `-offset` as an unsigned multiple of a positive step).
pub(crate) fn solve_affine(b: &BaseSums, c: &CodeSums, nonpositive_offset: bool) -> Option<(f32, f32)> {
    let (sw, sx, sq, sqq, sqx) =
        (f64::from(b.w), f64::from(b.x), f64::from(c.q), f64::from(c.qq), f64::from(c.qx));
    let det = sw * sqq - sq * sq;
    if det <= 0.0 || sqq <= 0.0 {
        return None;
    }
    let mut scale = (sw * sqx - sq * sx) / det;
    let mut offset = (sqq * sx - sq * sqx) / det;
    if nonpositive_offset && offset > 0.0 {
        offset = 0.0;
        scale = sqx / sqq;
    }
    if scale > 0.0 && scale.is_finite() && offset.is_finite() {
        Some((scale as f32, offset as f32))
    } else {
        None
    }
}

/// The weighted squared error of `scale * q + offset` from the sums (f64 to limit
/// cancellation).
fn error_from_sums(b: &BaseSums, c: &CodeSums, scale: f32, offset: f32) -> f64 {
    let (s, o) = (f64::from(scale), f64::from(offset));
    let e = f64::from(b.xx) - 2.0 * s * f64::from(c.qx) - 2.0 * o * f64::from(b.x)
        + s * s * f64::from(c.qq)
        + 2.0 * s * o * f64::from(c.q)
        + o * o * f64::from(b.w);
    if e > 0.0 { e } else { 0.0 }
}

/// Result of [`fit_affine`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AffineFit {
    /// Step between codes (`>= 0`; 0 for a constant group).
    pub scale: f32,
    /// Value of code 0.
    pub offset: f32,
}

/// Minimum and maximum of `x` (finite input).
#[inline]
pub(crate) fn min_max(x: &[f32]) -> (f32, f32) {
    let (body, tail) = split(x);
    let (mut lo, mut hi) = ([f32::INFINITY; LANES], [f32::NEG_INFINITY; LANES]);
    for c in body.chunks_exact(LANES) {
        for l in 0..LANES {
            lo[l] = if c[l] < lo[l] { c[l] } else { lo[l] };
            hi[l] = if c[l] > hi[l] { c[l] } else { hi[l] };
        }
    }
    let (mut mn, mut mx) = (f32::INFINITY, f32::NEG_INFINITY);
    for l in 0..LANES {
        mn = if lo[l] < mn { lo[l] } else { mn };
        mx = if hi[l] > mx { hi[l] } else { mx };
    }
    for &v in tail {
        mn = if v < mn { v } else { mn };
        mx = if v > mx { v } else { mx };
    }
    (mn, mx)
}

/// Searches `(scale, offset)` for one group of finite values.
///
/// 1. Min-max: `offset = min`, `scale = (max - min) / qmax`, and the least-squares
///    refit of its codes.
/// 2. A grid of `cfg.grid_steps` candidate inverse scales
///    `(qmax + r) / (max - min)`, `r` evenly spaced in `[cfg.grid_lo, cfg.grid_hi]`:
///    each assigns codes from the minimum and refits `(scale, offset)` by least
///    squares (shrinking the range clips the extremes when that lowers the error).
/// 3. Up to `cfg.refit_iters` rounds of alternating least squares: reassign codes for
///    the best parameters, refit, keep while the error drops.
///
/// Candidates are compared by their weighted squared error; ties keep the earlier one.
pub(crate) fn fit_affine<W: Weights>(
    x: &[f32],
    w: W,
    qmax: f32,
    cfg: &SearchConfig,
    nonpositive_offset: bool,
) -> AffineFit {
    let (mut min, max) = min_max(x);
    if nonpositive_offset && min > 0.0 {
        min = 0.0;
    }
    let range = max - min;
    if range <= 0.0 || x.is_empty() {
        return AffineFit { scale: 0.0, offset: if x.is_empty() { 0.0 } else { min } };
    }
    let base = base_sums(x, w);
    let inv = qmax / range;
    let minmax = code_sums(x, w, inv, min, qmax);
    let mut best = AffineFit { scale: range / qmax, offset: min };
    let mut best_err = error_from_sums(&base, &minmax, best.scale, best.offset);
    let consider = |c: &CodeSums, best: &mut AffineFit, best_err: &mut f64| {
        if let Some((s, o)) = solve_affine(&base, c, nonpositive_offset) {
            let e = error_from_sums(&base, c, s, o);
            if e < *best_err {
                *best_err = e;
                *best = AffineFit { scale: s, offset: o };
                return true;
            }
        }
        false
    };
    consider(&minmax, &mut best, &mut best_err);
    let steps = u32::from(cfg.grid_steps);
    for k in 0..steps {
        let r = if steps == 1 {
            cfg.grid_lo
        } else {
            cfg.grid_lo + (cfg.grid_hi - cfg.grid_lo) * k as f32 / (steps - 1) as f32
        };
        let iscale = (qmax + r) / range;
        if iscale <= 0.0 {
            continue;
        }
        let c = code_sums(x, w, iscale, min, qmax);
        consider(&c, &mut best, &mut best_err);
    }
    for _ in 0..cfg.refit_iters {
        let c = code_sums(x, w, 1.0 / best.scale, best.offset, qmax);
        if !consider(&c, &mut best, &mut best_err) {
            break;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::Unit;

    #[test]
    fn round_code_is_nearest_even_and_clamped() {
        assert_eq!(round_code(0.5, 15.0), 0.0);
        assert_eq!(round_code(1.5, 15.0), 2.0);
        assert_eq!(round_code(2.5, 15.0), 2.0);
        assert_eq!(round_code(2.5000002, 15.0), 3.0);
        assert_eq!(round_code(-3.0, 15.0), 0.0);
        assert_eq!(round_code(99.0, 15.0), 15.0);
        for i in 0..=255 {
            let t = i as f32 + 0.25;
            assert_eq!(round_code(t, 255.0), libm::rintf(t));
        }
    }

    #[test]
    fn exact_grid_is_recovered() {
        // Values on a 4-bit grid: the fit must reproduce them without error.
        let x: [f32; 32] = core::array::from_fn(|i| -1.0 + 0.125 * (i % 16) as f32);
        let f = fit_affine(&x, Unit, 15.0, &SearchConfig::FINE, false);
        let e = direct_error(&x, Unit, f.scale, 1.0 / f.scale, -f.offset, 15.0);
        assert!(e < 1e-10, "{f:?} {e}");
    }

    #[test]
    fn search_never_loses_to_min_max() {
        let mut seed = 12345u32;
        // Interpreted, a case takes about 0.4 s: Miri tries 20.
        for _ in 0..if cfg!(miri) { 20 } else { 200 } {
            let x: [f32; 32] = core::array::from_fn(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (seed >> 8) as f32 / (1u32 << 24) as f32;
                (u - 0.5) * (u - 0.5) * (u - 0.5) * 8.0
            });
            for qmax in [3.0, 15.0] {
                let (mn, mx) = min_max(&x);
                let s0 = (mx - mn) / qmax;
                let e0 = direct_error(&x, Unit, s0, 1.0 / s0, -mn, qmax);
                let f = fit_affine(&x, Unit, qmax, &SearchConfig::FINE, false);
                let e = direct_error(&x, Unit, f.scale, 1.0 / f.scale, -f.offset, qmax);
                assert!(e <= e0 * 1.001, "{e} > {e0}");
            }
        }
    }

    #[test]
    fn nonpositive_offset_is_respected() {
        let x: [f32; 16] = core::array::from_fn(|i| 1.0 + i as f32);
        let f = fit_affine(&x, Unit, 3.0, &SearchConfig::FINE, true);
        assert!(f.offset <= 0.0);
    }
}
