//! The affine two-level parameters of Q2_K, Q4_K and Q5_K
//! (`x = (d * sc_j) * q - (dmin * m_j)`) and our search around them.
//!
//! A block's parameters are `(d, dmin)` as f16 and one sub-scale code and one
//! sub-min code per sub-block; the codes then follow from ggml's rounding rule
//! `q = clamp(nearest_int((x + dmin * m_j) / (d * sc_j)), 0, qmax)`. Errors here are
//! computed with the decoder's own arithmetic, so they are the errors of the bytes.
//!
//! [`polish`] improves a starting point (ggml's choice, or the `kquant` search's):
//! per sub-block it refits `(scale, min)` by least squares to the current codes and
//! tries the neighbouring sub-scale and sub-min codes (and the current ones) by
//! actual error; then it refits `(d, dmin)` by least squares over the whole block.
//! Every state is scored and the best is kept, so the result is never worse than
//! the start.

use half::f16;

use super::k_common::{Block, QK_K, nearest_int};

/// Most sub-blocks per super-block (Q2_K's 16).
pub(crate) const MAX_SUBS: usize = 16;

/// The shape of an affine K type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shape {
    /// Weights per sub-block.
    pub sub: usize,
    /// Largest code.
    pub qmax: i32,
    /// Largest sub-scale / sub-min code.
    pub scmax: u8,
}

/// One block's parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Affine {
    /// Scale of the sub-scales.
    pub d: f16,
    /// Scale of the sub-mins.
    pub dmin: f16,
    /// Sub-scale codes.
    pub sc: [u8; MAX_SUBS],
    /// Sub-min codes.
    pub mc: [u8; MAX_SUBS],
}

/// ggml's code of `x` for sub-block scale `d1` and min `m1` (0 when `d1` is 0:
/// every code then decodes alike).
#[inline(always)]
pub(crate) fn code(x: f32, d1: f32, m1: f32, qmax: i32) -> i32 {
    if d1 == 0.0 { 0 } else { nearest_int((x + m1) / d1).clamp(0, qmax) }
}

/// Squared error of one sub-block under `(d1, m1)`, decoded as the decoder does.
#[inline(always)]
fn sub_error(x: &[f32], d1: f32, m1: f32, qmax: i32) -> f32 {
    let mut e = 0f32;
    for &v in x {
        let q = code(v, d1, m1, qmax) as f32;
        let y = d1 * q - m1;
        e += (y - v) * (y - v);
    }
    e
}

/// Squared error of the whole block under `p`.
pub(crate) fn block_error(shape: &Shape, x: &Block, p: &Affine) -> f32 {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    let mut e = 0f32;
    for (j, xs) in x.chunks_exact(shape.sub).enumerate() {
        e += sub_error(xs, d * f32::from(p.sc[j]), dmin * f32::from(p.mc[j]), shape.qmax);
    }
    e
}

/// The codes of the whole block under `p`.
pub(crate) fn block_codes(shape: &Shape, x: &Block, p: &Affine, out: &mut [u8; QK_K]) {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    for (j, (xs, os)) in x.chunks_exact(shape.sub).zip(out.chunks_exact_mut(shape.sub)).enumerate() {
        let (d1, m1) = (d * f32::from(p.sc[j]), dmin * f32::from(p.mc[j]));
        for (o, &v) in os.iter_mut().zip(xs) {
            *o = code(v, d1, m1, shape.qmax) as u8;
        }
    }
}

/// ggml's quantization of the sub-block fits `(scales, mins)` into codes under the
/// largest of each (`quantize_row_q4_K_ref` and friends): `d = max_scale / scmax`,
/// `sc_j = min(scmax, nearest_int(scmax / max_scale * scale_j))`.
pub(crate) fn ggml_super(shape: &Shape, scales: &[f32], mins: &[f32]) -> Affine {
    let scmax = f32::from(shape.scmax);
    let (mut max_scale, mut max_min) = (0f32, 0f32);
    for (&s, &m) in scales.iter().zip(mins) {
        if s > max_scale {
            max_scale = s;
        }
        if m > max_min {
            max_min = m;
        }
    }
    let inv_scale = if max_scale > 0.0 { scmax / max_scale } else { 0.0 };
    let inv_min = if max_min > 0.0 { scmax / max_min } else { 0.0 };
    let mut p = Affine { d: f16::ZERO, dmin: f16::ZERO, sc: [0; MAX_SUBS], mc: [0; MAX_SUBS] };
    for j in 0..scales.len() {
        // ggml stores the rounded value in a u8 (wrapping), then clamps to scmax.
        p.sc[j] = (nearest_int(inv_scale * scales[j]) as u8).min(shape.scmax);
        p.mc[j] = (nearest_int(inv_min * mins[j]) as u8).min(shape.scmax);
    }
    p.d = f16::from_f32(max_scale / scmax);
    p.dmin = f16::from_f32(max_min / scmax);
    p
}

/// Least-squares `(scale, min)` of `x ≈ scale * q - min` with `min >= 0` for the
/// codes `q`; `None` when degenerate.
#[inline(always)]
fn fit_sub(x: &[f32], q: &[u8]) -> Option<(f32, f32)> {
    let n = x.len() as f32;
    let (mut sq, mut sqq, mut sx, mut sqx) = (0f32, 0f32, 0f32, 0f32);
    for (&v, &c) in x.iter().zip(q) {
        let c = f32::from(c);
        sq += c;
        sqq += c * c;
        sx += v;
        sqx += c * v;
    }
    let det = n * sqq - sq * sq;
    if det <= 0.0 || sqq <= 0.0 {
        return None;
    }
    let mut a = (n * sqx - sq * sx) / det;
    let mut off = (sqq * sx - sq * sqx) / det;
    if off > 0.0 {
        off = 0.0;
        a = sqx / sqq;
    }
    (a > 0.0 && a.is_finite() && off.is_finite()).then_some((a, -off))
}

/// The two neighbouring codes of `t` (floor and floor + 1), clamped to `[0, max]`.
#[inline(always)]
fn around(t: f32, max: u8) -> [u8; 2] {
    let t = if t > 0.0 { t } else { 0.0 };
    let lo = libm::floorf(t);
    let lo = if lo < f32::from(max) { lo as u8 } else { max };
    [lo, (lo + 1).min(max)]
}

/// Least-squares `(d, dmin)` for the sub-codes and codes of `p`, rounded to f16;
/// `None` when degenerate or not storable.
fn refit_super(shape: &Shape, x: &Block, p: &Affine) -> Option<(f16, f16)> {
    let mut codes = [0u8; QK_K];
    block_codes(shape, x, p, &mut codes);
    // min Σ (d A - dmin B - x)², A = sc q, B = m.
    let (mut aa, mut ab, mut bb, mut ax, mut bx) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (j, (xs, qs)) in x.chunks_exact(shape.sub).zip(codes.chunks_exact(shape.sub)).enumerate() {
        let (sc, m) = (f64::from(p.sc[j]), f64::from(p.mc[j]));
        for (&v, &q) in xs.iter().zip(qs) {
            let a = sc * f64::from(q);
            let v = f64::from(v);
            aa += a * a;
            ab += a * m;
            bb += m * m;
            ax += a * v;
            bx += m * v;
        }
    }
    let det = ab * ab - aa * bb;
    let (nd, nm) = if bb > 0.0 && det != 0.0 {
        ((-ax * bb + ab * bx) / det, (aa * bx - ab * ax) / det)
    } else if aa > 0.0 {
        (ax / aa, f64::from(p.dmin.to_f32()))
    } else {
        return None;
    };
    let (hd, hm) = (f16::from_f32(nd as f32), f16::from_f32(nm as f32));
    let ok = |h: f16| h.is_finite() && h.to_f32() >= 0.0;
    (ok(hd) && ok(hm)).then_some((hd, hm))
}

/// Re-chooses every sub-block's `(sc, m)` under `p`'s `(d, dmin)` (neighbours of the
/// least-squares refit to the current codes, and the current pair), by actual error.
/// Returns the block error.
fn choose_sub_codes(shape: &Shape, x: &Block, p: &mut Affine) -> f32 {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    let mut total = 0f32;
    let mut q = [0u8; 32];
    for (j, xs) in x.chunks_exact(shape.sub).enumerate() {
        let (cur_s, cur_m) = (p.sc[j], p.mc[j]);
        let (d1, m1) = (d * f32::from(cur_s), dmin * f32::from(cur_m));
        let mut best_e = sub_error(xs, d1, m1, shape.qmax);
        let mut best = (cur_s, cur_m);
        for (o, &v) in q.iter_mut().zip(xs) {
            *o = code(v, d1, m1, shape.qmax) as u8;
        }
        if let Some((a, b)) = fit_sub(xs, &q[..shape.sub]) {
            let ss = around(if d > 0.0 { a / d } else { 0.0 }, shape.scmax);
            let ms = around(if dmin > 0.0 { b / dmin } else { 0.0 }, shape.scmax);
            for s in [ss[0], ss[1], cur_s] {
                for m in [ms[0], ms[1], cur_m] {
                    if (s, m) == (cur_s, cur_m) {
                        continue;
                    }
                    let e = sub_error(xs, d * f32::from(s), dmin * f32::from(m), shape.qmax);
                    if e < best_e {
                        best_e = e;
                        best = (s, m);
                    }
                }
            }
        }
        (p.sc[j], p.mc[j]) = best;
        total += best_e;
    }
    total
}

/// Improves `start` (see the module docs) in up to `rounds` rounds; returns the
/// best parameters found and their block error.
pub(crate) fn polish(shape: &Shape, x: &Block, start: &Affine, rounds: u32) -> (Affine, f32) {
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
            Some((d, dmin)) if (d, dmin) != (cur.d, cur.dmin) => {
                cur.d = d;
                cur.dmin = dmin;
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
