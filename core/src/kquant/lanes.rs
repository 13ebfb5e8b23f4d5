//! The two-level search, eight sub-groups at a time.
//!
//! A sub-group holds only 16 or 32 elements, so a search that handles one sub-group
//! at a time spends most of its time in per-candidate scalar work (solving the 2x2
//! least-squares system, comparing errors). Here the block is transposed so that
//! lane `l` of every vector belongs to sub-group `8g + l`: each pass over the
//! elements, and each solve and comparison, then serves eight sub-groups at once.
//! The lanes are plain `[f32; 8]` arrays with element-wise IEEE operations in a fixed
//! order, so the compiler can vectorise them (SSE2, AVX2, NEON) without changing a
//! single bit of the result.

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use crate::search::affine::round_code;

/// Sub-groups searched together.
pub(super) const L: usize = 8;
/// Rows of a transposed block: at most `ceil(n / 8) * S <= 256 / 8 + 64`.
pub(super) const ROWS: usize = 96;
/// One value per sub-group of a lane group.
pub(super) type V = [f32; L];

/// Element-wise binary operation.
#[inline(always)]
fn zip(a: V, b: V, f: impl Fn(f32, f32) -> f32) -> V {
    let mut r = [0.0; L];
    for l in 0..L {
        r[l] = f(a[l], b[l]);
    }
    r
}

/// Element-wise unary operation.
#[inline(always)]
fn map(a: V, f: impl Fn(f32) -> f32) -> V {
    let mut r = [0.0; L];
    for l in 0..L {
        r[l] = f(a[l]);
    }
    r
}

/// A lane group: `S` rows of eight sub-group elements, plus optional weights.
pub(super) struct LaneGroup<'a> {
    /// `x[i][l]` = element `i` of sub-group `l`.
    pub x: &'a [V],
    /// Weights in the same layout, or `None` for uniform weights.
    pub w: Option<&'a [V]>,
}

/// Per-lane sums of a lane group.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Sums {
    pub w: V,
    pub x: V,
    pub xx: V,
}

/// Per-lane code sums.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct CodeSums {
    pub q: V,
    pub qq: V,
    pub qx: V,
}

impl LaneGroup<'_> {
    #[inline(always)]
    fn weight(&self, i: usize) -> V {
        match self.w {
            Some(w) => w[i],
            None => [1.0; L],
        }
    }

    /// Per-lane minimum, maximum and `Σw`, `Σwx`, `Σwx²`, in one pass.
    #[inline(always)]
    pub fn range_and_sums(&self) -> (V, V, Sums) {
        let (mut lo, mut hi) = ([f32::INFINITY; L], [f32::NEG_INFINITY; L]);
        let mut s = Sums::default();
        for (i, r) in self.x.iter().enumerate() {
            let w = self.weight(i);
            lo = zip(lo, *r, |a, b| if b < a { b } else { a });
            hi = zip(hi, *r, |a, b| if b > a { b } else { a });
            let wx = zip(w, *r, |a, b| a * b);
            s.w = zip(s.w, w, |a, b| a + b);
            s.x = zip(s.x, wx, |a, b| a + b);
            s.xx = zip(s.xx, zip(wx, *r, |a, b| a * b), |a, b| a + b);
        }
        (lo, hi, s)
    }

    /// Code sums for `q = round((x + neg_offset) * inv)`.
    #[inline(always)]
    pub fn code_sums(&self, inv: V, neg_offset: V, qmax: f32) -> CodeSums {
        let mut c = CodeSums::default();
        for (i, r) in self.x.iter().enumerate() {
            let w = self.weight(i);
            let mut q = [0.0; L];
            for l in 0..L {
                q[l] = round_code((r[l] + neg_offset[l]) * inv[l], qmax);
            }
            let wq = zip(w, q, |a, b| a * b);
            c.q = zip(c.q, wq, |a, b| a + b);
            c.qq = zip(c.qq, zip(wq, q, |a, b| a * b), |a, b| a + b);
            c.qx = zip(c.qx, zip(wq, *r, |a, b| a * b), |a, b| a + b);
        }
        c
    }

    /// Weighted squared error of decoding `q * scale - neg_offset` with the codes of
    /// [`code_sums`](Self::code_sums): the decoder's exact arithmetic.
    #[inline(always)]
    pub fn direct_error(&self, scale: V, inv: V, neg_offset: V, qmax: f32) -> V {
        let mut e = [0.0; L];
        for (i, r) in self.x.iter().enumerate() {
            let w = self.weight(i);
            for l in 0..L {
                let q = round_code((r[l] + neg_offset[l]) * inv[l], qmax);
                let d = q * scale[l] - neg_offset[l] - r[l];
                e[l] += w[l] * d * d;
            }
        }
        e
    }
}

/// Least-squares `(scale, offset)` per lane from the sums, offset constrained to
/// `<= 0`, with its error; lanes whose system is degenerate get an infinite error.
#[inline(always)]
fn solve(s: &Sums, c: &CodeSums) -> (V, V, V) {
    let mut scale = [0.0; L];
    let mut offset = [0.0; L];
    let mut err = [0.0; L];
    // Branch-free per lane so that the eight lanes vectorise; divisions by zero only
    // produce infinities or NaNs that the validity mask discards.
    for l in 0..L {
        let det = s.w[l] * c.qq[l] - c.q[l] * c.q[l];
        let sc = (s.w[l] * c.qx[l] - c.q[l] * s.x[l]) / det;
        let o = (c.qq[l] * s.x[l] - c.q[l] * c.qx[l]) / det;
        let clamp = o > 0.0;
        let sc = if clamp { c.qx[l] / c.qq[l] } else { sc };
        let o = if clamp { 0.0 } else { o };
        let finite = sc.abs() < f32::INFINITY && o.abs() < f32::INFINITY;
        let valid = det > 0.0 && c.qq[l] > 0.0 && sc > 0.0 && finite;
        scale[l] = if valid { sc } else { 0.0 };
        offset[l] = if valid { o } else { 0.0 };
        err[l] = if valid { error_of(s, c, l, sc, o) } else { f32::INFINITY };
    }
    (scale, offset, err)
}

/// Weighted squared error of `scale * q + offset` for lane `l`, from the sums.
#[inline(always)]
fn error_of(s: &Sums, c: &CodeSums, l: usize, scale: f32, offset: f32) -> f32 {
    let e = s.xx[l] - 2.0 * scale * c.qx[l] - 2.0 * offset * s.x[l]
        + scale * scale * c.qq[l]
        + 2.0 * scale * offset * c.q[l]
        + offset * offset * s.w[l];
    if e > 0.0 { e } else { 0.0 }
}

/// Keeps, per lane, the least-squares refit of `c` where it lowers the error.
#[inline(always)]
fn take(sums: &Sums, c: &CodeSums, best_s: &mut V, best_o: &mut V, best_e: &mut V) {
    let (s, o, e) = solve(sums, c);
    for l in 0..L {
        let better = e[l] < best_e[l];
        best_s[l] = if better { s[l] } else { best_s[l] };
        best_o[l] = if better { o[l] } else { best_o[l] };
        best_e[l] = if better { e[l] } else { best_e[l] };
    }
}

/// The continuous fit of eight sub-groups: `(scale, min)` per lane with
/// `x ≈ scale * q - min`, `min >= 0` (see [`crate::search`] for the steps).
#[inline(always)]
pub(super) fn fit(g: &LaneGroup<'_>, qmax: f32, grid: (u8, f32, f32), refits: u8) -> (V, V, Sums) {
    let (lo, hi, sums) = g.range_and_sums();
    let lo = map(lo, |v| if v > 0.0 { 0.0 } else { v });
    let range = zip(hi, lo, |a, b| a - b);
    let neg_lo = map(lo, |v| -v);
    let inv0 = map(range, |r| if r > 0.0 { qmax / r } else { 0.0 });
    let c0 = g.code_sums(inv0, neg_lo, qmax);
    // Min-max candidate.
    let mut best_s = map(range, |r| r / qmax);
    let mut best_o = lo;
    let mut best_e = [0.0; L];
    for l in 0..L {
        best_e[l] = error_of(&sums, &c0, l, best_s[l], best_o[l]);
    }
    take(&sums, &c0, &mut best_s, &mut best_o, &mut best_e);
    let (steps, rlo, rhi) = grid;
    for k in 0..u32::from(steps) {
        let r = if steps == 1 { rlo } else { rlo + (rhi - rlo) * k as f32 / (u32::from(steps) - 1) as f32 };
        let inv = map(range, |rg| if rg > 0.0 { (qmax + r) / rg } else { 0.0 });
        let inv = map(inv, |v| if v > 0.0 { v } else { 0.0 });
        let c = g.code_sums(inv, neg_lo, qmax);
        take(&sums, &c, &mut best_s, &mut best_o, &mut best_e);
    }
    for _ in 0..refits {
        let inv = map(best_s, |s| if s > 0.0 { 1.0 / s } else { 0.0 });
        let c = g.code_sums(inv, map(best_o, |o| -o), qmax);
        take(&sums, &c, &mut best_s, &mut best_o, &mut best_e);
    }
    // Constant sub-groups (range 0) keep scale 0 and their value as offset.
    for l in 0..L {
        if range[l] <= 0.0 {
            best_s[l] = 0.0;
            best_o[l] = lo[l];
        }
    }
    (best_s, map(best_o, |o| -o), sums)
}

/// Transposes `x` (sub-groups of `s`, padded to a multiple of 8 sub-groups by
/// repeating the last one) into `out[g * s + i][l]` = element `i` of sub-group `8g + l`.
#[inline(always)]
pub(super) fn transpose(x: &[f32], s: usize, out: &mut [V; ROWS]) -> usize {
    let n = x.len() / s;
    let groups = n.div_ceil(L);
    for g in 0..groups {
        for l in 0..L {
            let j = (g * L + l).min(n - 1);
            let sub = &x[j * s..(j + 1) * s];
            for (i, &v) in sub.iter().enumerate() {
                out[g * s + i][l] = v;
            }
        }
    }
    groups
}
