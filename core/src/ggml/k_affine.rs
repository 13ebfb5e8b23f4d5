//! The affine two-level parameters of Q2_K, Q4_K and Q5_K
//! (`x = (d * sc_j) * q - (dmin * m_j)`) and our search around them, eight
//! sub-blocks at a time ([`super::k_lanes`]).
//!
//! A block's parameters are `(d, dmin)` as f16, one sub-scale code and one sub-min
//! code per sub-block, and the rule that gives the codes: ggml's
//! `q = clamp(nearest_int((x + m1) / d1), 0, qmax)` ([`Rule::Div`], what ggml's
//! quantizer writes) or the same with a multiplication by `1 / d1` ([`Rule::Mul`],
//! cheaper, used by our search). Errors are computed with the decoder's arithmetic,
//! so they are the errors of the bytes.
//!
//! [`polish`] improves a starting point (ggml's choice, or the `kquant` search's):
//! per sub-block it refits `(scale, min)` by least squares to the current codes and
//! tries the four neighbouring (sub-scale, sub-min) code pairs by actual error; then
//! it refits `(d, dmin)` by least squares over the whole block. Every state is scored
//! and the best is kept, so the result is never worse than the start.

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use half::f16;

use super::k_common::{Block, QK_K, nearest_int};
use super::k_lanes::{L, Transposed, V, map, nearest_clamped, select, zip};

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

impl Shape {
    /// Lane groups of a block.
    const fn groups(&self) -> usize {
        QK_K / self.sub / L
    }
}

/// How the codes follow from the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rule {
    /// `nearest_int((x + m1) / d1)`: ggml's quantizer.
    Div,
    /// `nearest_int((x + m1) * (1 / d1))`: our search.
    Mul,
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
    /// Code rule.
    pub rule: Rule,
}

/// The code of `x` for sub-block scale `d1` (inverse `inv1`) and min `m1`; 0 when
/// `d1` is 0 (every code then decodes alike).
#[inline(always)]
fn code(x: f32, d1: f32, inv1: f32, m1: f32, qmax: i32, rule: Rule) -> f32 {
    let t = match rule {
        Rule::Div => (x + m1) / d1,
        Rule::Mul => (x + m1) * inv1,
    };
    if d1 == 0.0 { 0.0 } else { nearest_clamped(t, 0, qmax) }
}

#[inline(always)]
fn inv(d1: f32) -> f32 {
    if d1 != 0.0 { 1.0 / d1 } else { 0.0 }
}

/// Per-lane squared error of one lane group under `(d1, m1)`.
#[inline(always)]
fn group_error(rows: &[[f32; L]], d1: V, m1: V, qmax: i32, rule: Rule) -> V {
    let inv1 = map(d1, inv);
    let mut e = [0f32; L];
    for r in rows {
        for l in 0..L {
            let q = code(r[l], d1[l], inv1[l], m1[l], qmax, rule);
            let y = d1[l] * q - m1[l];
            e[l] += (y - r[l]) * (y - r[l]);
        }
    }
    e
}

/// Sub-scales `(d * sc, dmin * m)` of lane group `g`.
#[inline(always)]
fn group_scales(p: &Affine, g: usize) -> (V, V) {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    let mut d1 = [0f32; L];
    let mut m1 = [0f32; L];
    for l in 0..L {
        d1[l] = d * f32::from(p.sc[g * L + l]);
        m1[l] = dmin * f32::from(p.mc[g * L + l]);
    }
    (d1, m1)
}

/// Squared error of the whole block under `p` (sub-block sums added in order).
#[inline(always)]
pub(crate) fn block_error(shape: &Shape, xt: &Transposed, p: &Affine) -> f32 {
    let mut e = 0f32;
    for g in 0..shape.groups() {
        let (d1, m1) = group_scales(p, g);
        let eg = group_error(&xt[g][..shape.sub], d1, m1, shape.qmax, p.rule);
        for l in 0..L {
            e += eg[l];
        }
    }
    e
}

/// The codes of the whole block under `p`, in element order.
pub(crate) fn block_codes(shape: &Shape, x: &Block, p: &Affine, out: &mut [u8; QK_K]) {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    for (j, (xs, os)) in x.chunks_exact(shape.sub).zip(out.chunks_exact_mut(shape.sub)).enumerate() {
        let (d1, m1) = (d * f32::from(p.sc[j]), dmin * f32::from(p.mc[j]));
        let inv1 = inv(d1);
        for (o, &v) in os.iter_mut().zip(xs) {
            *o = code(v, d1, inv1, m1, shape.qmax, p.rule) as u8;
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
    let mut p =
        Affine { d: f16::ZERO, dmin: f16::ZERO, sc: [0; MAX_SUBS], mc: [0; MAX_SUBS], rule: Rule::Div };
    for j in 0..scales.len() {
        // ggml stores the rounded value in a u8 (wrapping), then clamps to scmax.
        p.sc[j] = (nearest_int(inv_scale * scales[j]) as u8).min(shape.scmax);
        p.mc[j] = (nearest_int(inv_min * mins[j]) as u8).min(shape.scmax);
    }
    p.d = f16::from_f32(max_scale / scmax);
    p.dmin = f16::from_f32(max_min / scmax);
    p
}

/// Lane port of ggml's `make_qkx2_quants` (see
/// [`super::k_common::make_qkx2_quants`], its scalar oracle): eight sub-blocks'
/// `(scale, min)`, each lane computing exactly what the scalar port computes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn qkx2_lanes(
    rows: &[[f32; L]],
    w: &[[f32; L]],
    nmax: i32,
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (V, V) {
    let mut min = rows[0];
    let mut max = rows[0];
    let mut sum_w = w[0];
    let mut sum_x = zip(w[0], rows[0], |a, b| a * b);
    for (r, wr) in rows.iter().zip(w).skip(1) {
        for l in 0..L {
            min[l] = if r[l] < min[l] { r[l] } else { min[l] };
            max[l] = if r[l] > max[l] { r[l] } else { max[l] };
            sum_w[l] += wr[l];
            sum_x[l] += wr[l] * r[l];
        }
    }
    let min0 = map(min, |m| if m > 0.0 { 0.0 } else { m });
    let mut min = min0;
    let nmaxf = nmax as f32;
    let range = zip(max, min0, |a, b| a - b);
    let iscale0 = map(range, |r| nmaxf / r);
    let mut scale = map(iscale0, |i| 1.0 / i);
    let mut best_error = [0f32; L];
    for (r, wr) in rows.iter().zip(w) {
        for l in 0..L {
            let q = nearest_clamped(iscale0[l] * (r[l] - min0[l]), 0, nmax);
            let diff = scale[l] * q + min0[l] - r[l];
            let diff = if use_mad { diff.abs() } else { diff * diff };
            best_error[l] += wr[l] * diff;
        }
    }
    for is in 0..=nstep {
        // As in ggml, the grid is taken from the current best `min`.
        let iscale = zip(max, min, |a, b| (rmin + rdelta * is as f32 + nmaxf) / (a - b));
        let (mut sum_l, mut sum_l2, mut sum_xl) = ([0f32; L], [0f32; L], [0f32; L]);
        let mut qs = [[0f32; L]; 32];
        for ((r, wr), qr) in rows.iter().zip(w).zip(qs.iter_mut()) {
            let t = zip(iscale, zip(*r, min, |a, b| a - b), |a, b| a * b);
            let q = map(t, |v| nearest_clamped(v, 0, nmax));
            *qr = q;
            let wq = zip(*wr, q, |a, b| a * b);
            sum_l = zip(sum_l, wq, |a, b| a + b);
            sum_l2 = zip(sum_l2, zip(wq, q, |a, b| a * b), |a, b| a + b);
            sum_xl = zip(sum_xl, zip(wq, *r, |a, b| a * b), |a, b| a + b);
        }
        let mut ts = [0f32; L];
        let mut tm = [0f32; L];
        let mut ok = [false; L];
        for l in 0..L {
            let dd = sum_w[l] * sum_l2[l] - sum_l[l] * sum_l[l];
            ok[l] = dd > 0.0;
            let s = (sum_w[l] * sum_xl[l] - sum_x[l] * sum_l[l]) / dd;
            let m = (sum_l2[l] * sum_x[l] - sum_l[l] * sum_xl[l]) / dd;
            let clamp = m > 0.0;
            tm[l] = if clamp { 0.0 } else { m };
            ts[l] = if clamp { sum_xl[l] / sum_l2[l] } else { s };
        }
        let mut cur_error = [0f32; L];
        for ((r, wr), &q) in rows.iter().zip(w).zip(qs.iter()) {
            let diff = zip(zip(zip(ts, q, |a, b| a * b), tm, |a, b| a + b), *r, |a, b| a - b);
            let diff = if use_mad { map(diff, f32::abs) } else { zip(diff, diff, |a, b| a * b) };
            cur_error = zip(cur_error, zip(*wr, diff, |a, b| a * b), |a, b| a + b);
        }
        for l in 0..L {
            if ok[l] && cur_error[l] < best_error[l] {
                best_error[l] = cur_error[l];
                scale[l] = ts[l];
                min[l] = tm[l];
            }
        }
    }
    // Lanes with max == min: ggml returns scale 0 and the (clamped) min at once.
    let flat = {
        let mut f = [false; L];
        for l in 0..L {
            f[l] = max[l] == min0[l];
        }
        f
    };
    let scale = select(flat, [0.0; L], scale);
    let min = select(flat, min0, min);
    (scale, map(min, |m| -m))
}

/// The two neighbouring codes of `t` (floor and floor + 1), clamped to `[0, max]`.
#[inline(always)]
fn around(t: f32, max: f32) -> (f32, f32) {
    let t = if t > 0.0 { t } else { 0.0 };
    let lo = libm::floorf(t);
    let lo = if lo < max { lo } else { max };
    let hi = if lo + 1.0 < max { lo + 1.0 } else { max };
    (lo, hi)
}

/// Re-chooses every sub-block's `(sc, m)` under `p`'s `(d, dmin)`: the current pair
/// or one of the four neighbours of the least-squares refit to the current codes,
/// by actual error. Returns the block error.
#[inline(always)]
fn choose_sub_codes(shape: &Shape, xt: &Transposed, p: &mut Affine) -> f32 {
    let (d, dmin) = (p.d.to_f32(), p.dmin.to_f32());
    let scmax = f32::from(shape.scmax);
    let n = shape.sub as f32;
    let mut total = 0f32;
    for g in 0..shape.groups() {
        let rows = &xt[g][..shape.sub];
        let (d1, m1) = group_scales(p, g);
        let inv1 = map(d1, inv);
        let mut best_e = [0f32; L];
        let (mut sq, mut sqq, mut sx, mut sqx) = ([0f32; L], [0f32; L], [0f32; L], [0f32; L]);
        for r in rows {
            for l in 0..L {
                let q = code(r[l], d1[l], inv1[l], m1[l], shape.qmax, p.rule);
                let y = d1[l] * q - m1[l];
                best_e[l] += (y - r[l]) * (y - r[l]);
                sq[l] += q;
                sqq[l] += q * q;
                sx[l] += r[l];
                sqx[l] += q * r[l];
            }
        }
        let mut cs = [[0f32; L]; 2];
        let mut cm = [[0f32; L]; 2];
        let mut valid = [false; L];
        for l in 0..L {
            let det = n * sqq[l] - sq[l] * sq[l];
            let a = (n * sqx[l] - sq[l] * sx[l]) / det;
            let off = (sqq[l] * sx[l] - sq[l] * sqx[l]) / det;
            let clamp = off > 0.0;
            let a = if clamp { sqx[l] / sqq[l] } else { a };
            let off = if clamp { 0.0 } else { off };
            valid[l] =
                det > 0.0 && sqq[l] > 0.0 && a > 0.0 && a.abs() < f32::INFINITY && off.abs() < f32::INFINITY;
            (cs[0][l], cs[1][l]) = around(if d > 0.0 { a / d } else { 0.0 }, scmax);
            (cm[0][l], cm[1][l]) = around(if dmin > 0.0 { -off / dmin } else { 0.0 }, scmax);
        }
        let mut best_s = [0f32; L];
        let mut best_m = [0f32; L];
        for l in 0..L {
            best_s[l] = f32::from(p.sc[g * L + l]);
            best_m[l] = f32::from(p.mc[g * L + l]);
        }
        for (s, m) in [(cs[0], cm[0]), (cs[0], cm[1]), (cs[1], cm[0]), (cs[1], cm[1])] {
            let e = group_error(rows, map(s, |v| d * v), map(m, |v| dmin * v), shape.qmax, Rule::Mul);
            for l in 0..L {
                if valid[l] && e[l] < best_e[l] {
                    (best_e[l], best_s[l], best_m[l]) = (e[l], s[l], m[l]);
                }
            }
        }
        for l in 0..L {
            p.sc[g * L + l] = best_s[l] as u8;
            p.mc[g * L + l] = best_m[l] as u8;
            total += best_e[l];
        }
    }
    total
}

/// Least-squares `(d, dmin)` for the sub-codes and codes of `p`, rounded to f16;
/// `None` when degenerate or not storable.
#[inline(always)]
fn refit_super(shape: &Shape, xt: &Transposed, p: &Affine) -> Option<(f16, f16)> {
    // min Σ (d A - dmin B - x)², A = sc q, B = m; per-lane sums, then lanes in order.
    let (mut aa, mut ab, mut bb, mut ax, mut bx) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for g in 0..shape.groups() {
        let (d1, m1) = group_scales(p, g);
        let inv1 = map(d1, inv);
        let (mut q1, mut qq, mut qx, mut xs) = ([0f32; L], [0f32; L], [0f32; L], [0f32; L]);
        for r in &xt[g][..shape.sub] {
            for l in 0..L {
                let q = code(r[l], d1[l], inv1[l], m1[l], shape.qmax, p.rule);
                q1[l] += q;
                qq[l] += q * q;
                qx[l] += q * r[l];
                xs[l] += r[l];
            }
        }
        for l in 0..L {
            let (sc, m) = (f64::from(p.sc[g * L + l]), f64::from(p.mc[g * L + l]));
            aa += sc * sc * f64::from(qq[l]);
            ab += sc * m * f64::from(q1[l]);
            bb += m * m * shape.sub as f64;
            ax += sc * f64::from(qx[l]);
            bx += m * f64::from(xs[l]);
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

/// Improves `start` (see the module docs) with up to `rounds` refits of `(d, dmin)`,
/// each followed by a new choice of sub-codes, with our code rule; returns the best parameters found and their block error.
#[inline(always)]
pub(crate) fn polish(shape: &Shape, xt: &Transposed, start: &Affine, rounds: u32) -> (Affine, f32) {
    let mut cur = *start;
    cur.rule = Rule::Mul;
    let mut best = cur;
    let mut best_e = f32::INFINITY;
    for round in 0..=rounds {
        let e = choose_sub_codes(shape, xt, &mut cur);
        if e < best_e {
            best_e = e;
            best = cur;
        }
        if round == rounds {
            break;
        }
        match refit_super(shape, xt, &cur) {
            Some((d, dmin)) if (d, dmin) != (cur.d, cur.dmin) => {
                cur.d = d;
                cur.dmin = dmin;
            }
            _ => break,
        }
    }
    (best, best_e)
}
