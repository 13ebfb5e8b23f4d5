//! The symmetric two-level parameters of Q3_K, Q6_K and IQ4_XS
//! (`x = (d * sc_j) * v(q)`, `sc_j` a signed sub-scale code, `v` the type's code
//! values) and our search around them.
//!
//! The codes follow from ggml's rule for each type ([`Grid::value`]); errors are
//! computed with the decoder's arithmetic. [`polish`] improves a starting point
//! (ggml's choice): per sub-block it refits the scale by least squares to the
//! current codes and tries the neighbouring sub-scale codes (and the current one)
//! by actual error; then it refits `d` by least squares over the whole block. Every
//! state is scored and the best kept, so the result is never worse than the start.

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use half::f16;

use super::k_common::{Block, KVALUES_IQ4NL, QK_K};
use super::k_lanes::nearest_clamped;

/// Most sub-blocks per super-block (16 for Q3_K and Q6_K).
pub(crate) const MAX_SUBS: usize = 16;

/// How codes map to values.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Grid {
    /// `v = q - nmax` for `q` in `0 .. 2 * nmax`: `nearest_int(x / dl)` clamped.
    Uniform {
        /// Half the number of levels (4 for Q3_K, 32 for Q6_K).
        nmax: i32,
    },
    /// IQ4_NL's 16 values: the nearest value to `x * (1 / dl)`.
    Iq4,
}

impl Grid {
    /// The value ggml's rule gives `x` under sub-block scale `dl` (and `idl = 1 / dl`
    /// for the IQ4 grid); 0 when `dl` is 0 for the uniform grid. Float operations
    /// only, so that loops over it vectorise.
    #[inline(always)]
    pub(crate) fn value(self, x: f32, dl: f32, idl: f32) -> f32 {
        match self {
            Grid::Uniform { nmax } => {
                let v = nearest_clamped(x / dl, -nmax, nmax - 1);
                if dl == 0.0 { 0.0 } else { v }
            }
            Grid::Iq4 => {
                // best_index_int8 as a sum of steps (see k_common::best_index_int8).
                let t = idl * x;
                let mut v = f32::from(KVALUES_IQ4NL[0]);
                for k in 0..15 {
                    let (a, b) = (f32::from(KVALUES_IQ4NL[k]), f32::from(KVALUES_IQ4NL[k + 1]));
                    v += if t - a >= b - t { b - a } else { 0.0 };
                }
                v
            }
        }
    }

    /// The stored code of value `v` (from [`value`](Self::value)).
    #[inline(always)]
    pub(crate) fn index(self, v: f32) -> u8 {
        match self {
            Grid::Uniform { nmax } => (v as i32 + nmax) as u8,
            Grid::Iq4 => KVALUES_IQ4NL.iter().position(|&k| f32::from(k) == v).unwrap_or(0) as u8,
        }
    }
}

/// The shape of a symmetric K type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Weights per sub-block.
    pub sub: usize,
    /// Code values.
    pub grid: Grid,
    /// Smallest and largest sub-scale code.
    pub sc_range: (i32, i32),
}

/// One block's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sym {
    /// Scale of the sub-scales.
    pub d: f16,
    /// Signed sub-scale codes.
    pub sc: [i8; MAX_SUBS],
}

#[inline(always)]
fn inv(dl: f32) -> f32 {
    if dl != 0.0 { 1.0 / dl } else { 0.0 }
}

/// Squared error of one sub-block under scale `dl` (eight partial sums, added in
/// order at the end, so that it vectorises).
#[inline(always)]
fn sub_error(grid: Grid, x: &[f32], dl: f32) -> f32 {
    let idl = inv(dl);
    let mut e = [0f32; 8];
    for c in x.chunks_exact(8) {
        for l in 0..8 {
            let y = dl * grid.value(c[l], dl, idl);
            e[l] += (y - c[l]) * (y - c[l]);
        }
    }
    e.iter().sum()
}

/// Squared error of the whole block under `p`.
#[inline(always)]
pub(crate) fn block_error(shape: &Shape, x: &Block, p: &Sym) -> f32 {
    let d = p.d.to_f32();
    let mut e = 0f32;
    for (j, xs) in x.chunks_exact(shape.sub).enumerate() {
        e += sub_error(shape.grid, xs, d * f32::from(p.sc[j]));
    }
    e
}

/// The codes of the whole block under `p`.
#[inline(always)]
pub(crate) fn block_codes(shape: &Shape, x: &Block, p: &Sym, out: &mut [u8; QK_K]) {
    let d = p.d.to_f32();
    for (j, (xs, os)) in x.chunks_exact(shape.sub).zip(out.chunks_exact_mut(shape.sub)).enumerate() {
        let dl = d * f32::from(p.sc[j]);
        let idl = inv(dl);
        for (o, &v) in os.iter_mut().zip(xs) {
            *o = shape.grid.index(shape.grid.value(v, dl, idl));
        }
    }
}

/// Least-squares `d` for the sub-codes and codes of `p`, as f16.
#[inline(always)]
fn refit_super(shape: &Shape, x: &Block, p: &Sym) -> Option<f16> {
    let d = p.d.to_f32();
    let (mut aa, mut ax) = (0f64, 0f64);
    for (j, xs) in x.chunks_exact(shape.sub).enumerate() {
        let sc = f32::from(p.sc[j]);
        let dl = d * sc;
        let idl = inv(dl);
        let (mut qq, mut qx) = ([0f32; 8], [0f32; 8]);
        for c in xs.chunks_exact(8) {
            for l in 0..8 {
                let q = shape.grid.value(c[l], dl, idl);
                qq[l] += q * q;
                qx[l] += q * c[l];
            }
        }
        let (qq, qx): (f32, f32) = (qq.iter().sum(), qx.iter().sum());
        aa += f64::from(sc) * f64::from(sc) * f64::from(qq);
        ax += f64::from(sc) * f64::from(qx);
    }
    if aa <= 0.0 {
        return None;
    }
    let h = f16::from_f32((ax / aa) as f32);
    (h.is_finite() && h.to_f32() != 0.0).then_some(h)
}

/// Re-chooses every sub-scale code under `p.d`; returns the block error.
#[inline(always)]
fn choose_sub_codes(shape: &Shape, x: &Block, p: &mut Sym) -> f32 {
    let d = p.d.to_f32();
    let (lo, hi) = shape.sc_range;
    let mut total = 0f32;
    for (j, xs) in x.chunks_exact(shape.sub).enumerate() {
        let cur = p.sc[j];
        let dl = d * f32::from(cur);
        let idl = inv(dl);
        let mut best_e = sub_error(shape.grid, xs, dl);
        let mut best = cur;
        // Least-squares sub-block scale for the current codes.
        let (mut qq8, mut qx8) = ([0f32; 8], [0f32; 8]);
        for c in xs.chunks_exact(8) {
            for l in 0..8 {
                let q = shape.grid.value(c[l], dl, idl);
                qq8[l] += q * q;
                qx8[l] += q * c[l];
            }
        }
        let (qq, qx): (f32, f32) = (qq8.iter().sum(), qx8.iter().sum());
        if qq > 0.0 && d != 0.0 {
            let t = qx / qq / d;
            if t.is_finite() {
                let f = libm::floorf(t) as i32;
                for c in [f, f + 1] {
                    let c = c.clamp(lo, hi) as i8;
                    if c == cur {
                        continue;
                    }
                    let e = sub_error(shape.grid, xs, d * f32::from(c));
                    if e < best_e {
                        best_e = e;
                        best = c;
                    }
                }
            }
        }
        p.sc[j] = best;
        total += best_e;
    }
    total
}

/// Improves `start` in up to `rounds` rounds; returns the best parameters found and
/// their block error.
#[inline(always)]
pub(crate) fn polish(shape: &Shape, x: &Block, start: &Sym, rounds: u32) -> (Sym, f32) {
    let mut best = *start;
    let mut best_e = block_error(shape, x, start);
    let mut cur = *start;
    for _ in 0..rounds {
        let e = choose_sub_codes(shape, x, &mut cur);
        if e < best_e {
            best_e = e;
            best = cur;
        }
        match refit_super(shape, x, &cur) {
            Some(d) if d != cur.d => {
                cur.d = d;
                let e = block_error(shape, x, &cur);
                if e < best_e {
                    best_e = e;
                    best = cur;
                }
            }
            _ => break,
        }
    }
    (best, best_e)
}
