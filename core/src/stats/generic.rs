//! Per-group statistics written once over the [`Simd`] trait.
//!
//! One pass with two accumulators per statistic; groups that are not a multiple of the
//! lane count finish with a scalar tail. The sum doubles as a NaN detector: a group
//! whose sums are not finite (a NaN, an infinity, or an overflow) is recomputed with
//! the scalar reference, which applies the NaN policy exactly.

use super::GroupStats;
use super::scalar::stats_of;
use crate::format::GroupSize;
use crate::input::Input;
use crate::kernels::generic::group_f32;
use crate::simd::vector::Simd;

/// Statistics of one group of any length.
#[inline(always)]
fn stats_simd<S: Simd>(s: S, x: &[f32]) -> GroupStats {
    let l = S::LANES;
    let mut mn = [s.splat(f32::INFINITY); 2];
    let mut mx = [s.splat(f32::NEG_INFINITY); 2];
    let mut sum = [s.splat(0.0); 2];
    let mut sq = [s.splat(0.0); 2];
    let mut chunks = x.chunks_exact(2 * l);
    for c in &mut chunks {
        for k in 0..2 {
            let v = s.load(&c[k * l..]);
            mn[k] = s.min(mn[k], v);
            mx[k] = s.max(mx[k], v);
            sum[k] = s.add(sum[k], v);
            sq[k] = s.add(sq[k], s.mul(v, v));
        }
    }
    let mut rest = chunks.remainder().chunks_exact(l);
    for c in &mut rest {
        let v = s.load(c);
        mn[0] = s.min(mn[0], v);
        mx[0] = s.max(mx[0], v);
        sum[0] = s.add(sum[0], v);
        sq[0] = s.add(sq[0], s.mul(v, v));
    }
    let mut min = s.reduce_min(s.min(mn[0], mn[1]));
    let mut max = s.reduce_max(s.max(mx[0], mx[1]));
    let mut total = s.reduce_add(s.add(sum[0], sum[1]));
    let mut total_sq = s.reduce_add(s.add(sq[0], sq[1]));
    for &v in rest.remainder() {
        min = if v < min { v } else { min };
        max = if v > max { v } else { max };
        total += v;
        total_sq += v * v;
    }
    if !total.is_finite() || !total_sq.is_finite() {
        return stats_of(x);
    }
    GroupStats { min, max, absmax: if -min > max { -min } else { max }, sum: total, sum_sq: total_sq }
}

/// Statistics of each whole group of `input` (lengths validated by the caller).
#[inline(always)]
pub(crate) fn group_stats<S: Simd>(s: S, input: Input<'_>, group: usize, out: &mut [GroupStats]) {
    let mut buf = [0f32; GroupSize::MAX];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = stats_simd(s, group_f32(s, input, i * group, group, &mut buf));
    }
}
