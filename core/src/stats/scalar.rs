//! Scalar reference for per-group statistics.

use super::GroupStats;
use crate::input::Input;

/// Statistics of each whole group of `input` (lengths validated by the caller).
///
/// NaN policy: a group holding a NaN reports NaN for all five statistics.
/// Sums are accumulated in f32, in element order.
pub(crate) fn group_stats_ref(input: Input<'_>, group: usize, out: &mut [GroupStats]) {
    let mut buf = [0f32; crate::format::GroupSize::MAX];
    for (i, s) in out.iter_mut().enumerate() {
        let x = &mut buf[..group];
        input.slice(i * group, (i + 1) * group).to_f32(x);
        *s = stats_of(x);
    }
}

pub(crate) fn stats_of(x: &[f32]) -> GroupStats {
    let (min, max, nan) = crate::kernels::scalar::min_max_ref(x);
    if nan {
        return GroupStats::NAN;
    }
    let mut sum = 0f32;
    let mut sum_sq = 0f32;
    for &v in x {
        sum += v;
        sum_sq += v * v;
    }
    GroupStats { min, max, absmax: if -min > max { -min } else { max }, sum, sum_sq }
}
