//! Eight sub-blocks at a time: the per-sub-block loops of the K-type encoders on a
//! transposed block, lane `l` of every vector holding sub-block `8g + l`.
//!
//! A sub-block has only 16 or 32 weights and ggml's fits sum over them in order, so
//! a loop over one sub-block cannot be vectorised without changing the sums. On the
//! transposed block each lane runs exactly the scalar sequence of IEEE operations of
//! its sub-block (the same sums in the same order, no fused multiply-add), and the
//! eight lanes are plain `[f32; 8]` arrays the compiler vectorises: the results are
//! bit for bit those of the scalar code (tested against the scalar ports).

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use super::k_common::{Block, QK_K};

/// Sub-blocks per lane group.
pub(crate) const L: usize = 8;
/// One value per sub-block of a lane group.
pub(crate) type V = [f32; L];
/// Rows of a lane group: at most 32 (the sub-block length).
pub(crate) const ROWS: usize = 32;
/// A transposed block: up to two lane groups of up to 32 rows.
pub(crate) type Transposed = [[V; ROWS]; 2];

/// Element-wise map.
#[inline(always)]
pub(crate) fn map(a: V, f: impl Fn(f32) -> f32) -> V {
    let mut r = [0.0; L];
    for l in 0..L {
        r[l] = f(a[l]);
    }
    r
}

/// Element-wise binary operation.
#[inline(always)]
pub(crate) fn zip(a: V, b: V, f: impl Fn(f32, f32) -> f32) -> V {
    let mut r = [0.0; L];
    for l in 0..L {
        r[l] = f(a[l], b[l]);
    }
    r
}

/// Per-lane select: `a` where `m`, else `b`.
#[inline(always)]
pub(crate) fn select(m: [bool; L], a: V, b: V) -> V {
    let mut r = [0.0; L];
    for l in 0..L {
        r[l] = if m[l] { a[l] } else { b[l] };
    }
    r
}

/// ggml's `nearest_int` (round half to even) clamped to `[lo, hi]`, as f32, with
/// float operations only so that it vectorises: `(v + 1.5 * 2^23) - 1.5 * 2^23` is
/// exactly ggml's rounding for `|v| <= 2^22` (ggml asserts that range), and a clamp
/// of the rounded value is the clamp of the integer.
#[inline(always)]
pub(crate) fn nearest_clamped(v: f32, lo: i32, hi: i32) -> f32 {
    let r = (v + 12_582_912.0) - 12_582_912.0;
    let (lo, hi) = (lo as f32, hi as f32);
    let r = if r < lo { lo } else { r };
    if r > hi { hi } else { r }
}

/// Transposes `x` into `n / 8` lane groups of `s` rows: `out[g][i][l]` is element
/// `i` of sub-block `8g + l`. Returns the number of lane groups.
#[inline(always)]
pub(crate) fn transpose(x: &Block, s: usize, out: &mut Transposed) -> usize {
    let groups = QK_K / s / L;
    for g in 0..groups {
        for l in 0..L {
            let sub = &x[(g * L + l) * s..(g * L + l + 1) * s];
            for (i, &v) in sub.iter().enumerate() {
                out[g][i][l] = v;
            }
        }
    }
    groups
}
