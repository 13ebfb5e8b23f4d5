//! Shared pieces of the 32-weight ggml blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL):
//! loading a block under the NaN/range policy, f16 scales, exact block error, and the
//! scale searches that keep ggml's own choice as one candidate.
//!
//! # The search contract
//!
//! Every searched encoder computes ggml's reference choice (`quantize_row_*_ref`, or
//! `quantize_iq4_nl` without an importance matrix) bit for bit as its first candidate,
//! then tries its own candidates, and keeps the candidate whose *decoded* block (the
//! exact f32 values ggml's decoder produces from the stored bytes) has the smallest
//! squared error against the input, summed in f64. A block we write therefore never
//! decodes worse than the block ggml would have written for the same weights.

use half::f16;

use crate::QuantError;
use crate::input::Input;
use crate::params::{F16_MAX, f16_to_f32_exact};

/// Weights per block.
pub(crate) const QK: usize = 32;

/// `GGML_FP32_TO_FP16`: round to nearest, ties to even.
#[inline]
pub(crate) fn fp32_to_fp16(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// `GGML_FP16_TO_FP32`: exact.
#[inline(always)]
pub(crate) fn fp16_to_fp32(h: u16) -> f32 {
    f16_to_f32_exact(f16::from_bits(h))
}

/// The f16 values next to `h` in magnitude (one step down, one step up), skipping
/// those that would cross zero or reach infinity.
pub(crate) fn f16_neighbours(h: u16) -> [Option<u16>; 2] {
    let sign = h & 0x8000;
    let mag = h & 0x7fff;
    let down = (mag > 0 && mag < 0x7c00).then(|| sign | (mag - 1));
    let up = (mag + 1 < 0x7c00).then(|| sign | (mag + 1));
    [down, up]
}

/// Rounds to the nearest integer, ties to even, for `|t| < 2^22` (every caller clamps
/// first): the classic 1.5 * 2^23 trick, exact in IEEE f32 arithmetic.
#[inline(always)]
pub(crate) fn round_even(t: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (t + MAGIC) - MAGIC
}

/// Loads block `block` of `input` as f32 and applies the policy of the crate: a NaN or
/// an infinity gives [`QuantError::NonFinite`], a finite `|x| > 65504`
/// [`QuantError::OutOfRange`], naming the first such element counted from
/// `first_element` (the non-finite kind wins within a block, as in `kernels`).
#[inline]
pub(crate) fn load_block(
    input: Input<'_>,
    block: usize,
    first_element: u64,
    x: &mut [f32; QK],
) -> Result<(), QuantError> {
    let start = block * QK;
    input.slice(start, start + QK).to_f32(x);
    let mut ok = true;
    for &v in x.iter() {
        // False for NaN too.
        ok &= v.abs() <= F16_MAX;
    }
    if ok {
        return Ok(());
    }
    let at = |i: usize| first_element + (start + i) as u64;
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(QuantError::NonFinite { element: at(i) });
    }
    let i = x.iter().position(|v| v.abs() > F16_MAX).unwrap_or(0);
    Err(QuantError::OutOfRange { element: at(i) })
}

/// Squared error of a decoded block, summed in f64 (each difference of two f32 is
/// exact in f64 unless their exponents are far apart), in 8 lanes: lane `k` sums
/// elements `k, k + 8, k + 16, k + 24` in that order, then [`sum8_f64`]. The SIMD paths
/// (`simd32`) sum in exactly this order, so they pick the same candidates.
#[inline]
pub(crate) fn sq_err(x: &[f32; QK], y: &[f32; QK]) -> f64 {
    let mut acc = [0.0f64; 8];
    for (xs, ys) in x.chunks_exact(8).zip(y.chunks_exact(8)) {
        for k in 0..8 {
            let e = f64::from(xs[k]) - f64::from(ys[k]);
            acc[k] += e * e;
        }
    }
    sum8_f64(acc)
}

/// [`sum8`] in f64.
#[inline(always)]
pub(crate) fn sum8_f64(a: [f64; 8]) -> f64 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

/// Sums 8 lane accumulators in a fixed order.
#[inline(always)]
pub(crate) fn sum8(a: [f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
}

/// `(sum l x, sum l^2)` for the codes `l = round(clamp(x * iscale, lo, hi))`, in 8
/// lanes (a fixed order, so the compiler can vectorise it).
#[inline(always)]
pub(crate) fn sym_trial(x: &[f32; QK], iscale: f32, lo: f32, hi: f32) -> (f32, f32) {
    let mut slx = [0.0f32; 8];
    let mut sl2 = [0.0f32; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            let l = round_even((c[k] * iscale).max(lo).min(hi));
            slx[k] += l * c[k];
            sl2[k] += l * l;
        }
    }
    (sum8(slx), sum8(sl2))
}

/// ggml's `(first) element of largest magnitude`, with its sign: the loop of
/// `quantize_row_q4_0_ref` (strict `<`, so the first one wins; `(0, 0)` for an all-zero
/// block).
#[inline]
pub(crate) fn signed_absmax(x: &[f32; QK]) -> (f32, f32) {
    let mut amax = 0.0f32;
    let mut max = 0.0f32;
    for &v in x {
        if amax < v.abs() {
            amax = v.abs();
            max = v;
        }
    }
    (amax, max)
}

/// ggml's min/max loop of `quantize_row_q4_1_ref`.
#[inline]
pub(crate) fn min_max(x: &[f32; QK]) -> (f32, f32) {
    let mut min = f32::MAX;
    let mut max = -f32::MAX;
    for &v in x {
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max)
}

/// Packs 32 codes of 4 bits the ggml way: byte `j` holds code `j` in its low nibble
/// and code `j + 16` in its high nibble.
#[inline]
pub(crate) fn pack_nibbles(q: &[u8; QK], out: &mut [u8; 16]) {
    for j in 0..16 {
        out[j] = (q[j] & 0x0f) | ((q[j + 16] & 0x0f) << 4);
    }
}

/// The inverse of [`pack_nibbles`].
#[inline]
pub(crate) fn unpack_nibbles(qs: &[u8; 16], q: &mut [u8; QK]) {
    for j in 0..16 {
        q[j] = qs[j] & 0x0f;
        q[j + 16] = qs[j] >> 4;
    }
}

/// The fifth bits of 32 five-bit codes as ggml's little-endian `qh` (bit `j` = code `j`).
#[inline]
pub(crate) fn pack_high_bits(q: &[u8; QK]) -> [u8; 4] {
    let mut qh = 0u32;
    for (j, &c) in q.iter().enumerate() {
        qh |= u32::from((c >> 4) & 1) << j;
    }
    qh.to_le_bytes()
}

/// Five-bit codes from ggml's `qs` and little-endian `qh`.
#[inline]
pub(crate) fn unpack_five(qs: &[u8; 16], qh: [u8; 4], q: &mut [u8; QK]) {
    let qh = u32::from_le_bytes(qh);
    unpack_nibbles(qs, q);
    for (j, c) in q.iter_mut().enumerate() {
        *c |= (((qh >> j) & 1) as u8) << 4;
    }
}

/// A symmetric block `x = d * (q - off)` with codes `0..=2 * off - 1` (Q4_0: `off` 8,
/// Q5_0: 16), as f16 scale bits and one code per byte.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SymBlock {
    pub d: u16,
    pub q: [u8; QK],
}

impl SymBlock {
    /// The decoder's values: `(q - off) as f32 * d`, as `dequantize_row_q4_0`.
    #[inline]
    pub(crate) fn decode(&self, off: i32, y: &mut [f32; QK]) {
        let d = fp16_to_fp32(self.d);
        for (o, &c) in y.iter_mut().zip(&self.q) {
            *o = (i32::from(c) - off) as f32 * d;
        }
    }

    pub(crate) fn err(&self, x: &[f32; QK], off: i32) -> f64 {
        let mut y = [0.0; QK];
        self.decode(off, &mut y);
        sq_err(x, &y)
    }

    /// Nearest codes for the stored scale `d` (the scale the decoder will use).
    pub(crate) fn nearest(x: &[f32; QK], d: u16, off: i32) -> SymBlock {
        let df = fp16_to_fp32(d);
        let mut q = [off as u8; QK];
        if df != 0.0 {
            let lo = -off as f32;
            let hi = (off - 1) as f32;
            for (c, &v) in q.iter_mut().zip(x) {
                let t = (v / df).max(lo).min(hi);
                *c = (round_even(t) as i32 + off) as u8;
            }
        }
        SymBlock { d, q }
    }
}

/// ggml's `quantize_row_q4_0_ref` / `quantize_row_q5_0_ref` choice for one block.
pub(crate) fn sym_ggml(x: &[f32; QK], off: i32) -> SymBlock {
    let (_, max) = signed_absmax(x);
    let d = max / -(off as f32);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let qmax = (2 * off - 1) as u8;
    let bias = off as f32 + 0.5;
    let mut q = [0u8; QK];
    for (c, &v) in q.iter_mut().zip(x) {
        // C's float -> int8_t conversion truncates; the argument is >= 0 here
        // (|x * id| <= off up to rounding), where `as` agrees.
        *c = ((v * id + bias) as i32).min(i32::from(qmax)) as u8;
    }
    SymBlock { d: fp32_to_fp16(d), q }
}

/// The two hot steps of [`sym_search`], so that a SIMD backend can run them; every
/// implementation computes the same values in the same order as [`ScalarSym`].
pub(crate) trait SymKernel: Copy {
    /// [`sym_trial`].
    fn trial(self, x: &[f32; QK], iscale: f32, lo: f32, hi: f32) -> (f32, f32);
    /// [`SymBlock::nearest`] and its [`SymBlock::err`].
    fn nearest(self, x: &[f32; QK], d: u16, off: i32) -> (f64, SymBlock);
}

/// The scalar reference of [`SymKernel`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ScalarSym;

impl SymKernel for ScalarSym {
    #[inline(always)]
    fn trial(self, x: &[f32; QK], iscale: f32, lo: f32, hi: f32) -> (f32, f32) {
        sym_trial(x, iscale, lo, hi)
    }

    #[inline(always)]
    fn nearest(self, x: &[f32; QK], d: u16, off: i32) -> (f64, SymBlock) {
        let b = SymBlock::nearest(x, d, off);
        (b.err(x, off), b)
    }
}

/// Our symmetric search: ggml's choice, then scale candidates around both ends of the
/// code range chosen by their least-squares fit, each rounded to f16 (and its two f16
/// neighbours), the codes re-chosen as the nearest for the stored scale, refitted
/// twice; the smallest decoded error wins.
#[inline(always)]
pub(crate) fn sym_search<K: SymKernel>(k: K, x: &[f32; QK], off: i32) -> SymBlock {
    let mut best = sym_ggml(x, off);
    let (amax, max) = signed_absmax(x);
    if amax == 0.0 {
        return best;
    }
    let mut best_err = best.err(x, off);
    if best_err == 0.0 {
        return best;
    }
    let lo = -off as f32;
    let hi = (off - 1) as f32;
    // Scale candidates by their least-squares objective (sum qx)^2 / sum q^2.
    let mut fit_d = 0.0f32;
    let mut fit_obj = -1.0f32;
    for anchor in [-(off as f32), (off - 1) as f32] {
        for is in -8..=4 {
            let iscale = (anchor + 0.1 * is as f32 * anchor.signum()) / max;
            let (sumlx, suml2) = k.trial(x, iscale, lo, hi);
            if suml2 > 0.0 {
                let obj = sumlx * sumlx / suml2;
                if obj > fit_obj {
                    fit_obj = obj;
                    fit_d = sumlx / suml2;
                }
            }
        }
    }
    let mut d = fit_d;
    for _ in 0..2 {
        let h = fp32_to_fp16(d);
        let [a, b] = f16_neighbours(h);
        let mut round_best: Option<(f64, SymBlock)> = None;
        for cand in [Some(h), a, b].into_iter().flatten() {
            let (e, blk) = k.nearest(x, cand, off);
            if round_best.is_none_or(|(be, _)| e < be) {
                round_best = Some((e, blk));
            }
        }
        let Some((e, blk)) = round_best else { break };
        if e < best_err {
            best_err = e;
            best = blk;
        }
        // Refit the scale to the codes just chosen.
        let (mut sumlx, mut suml2) = (0.0f32, 0.0f32);
        for (&c, &v) in blk.q.iter().zip(x) {
            let l = (i32::from(c) - off) as f32;
            sumlx += l * v;
            suml2 += l * l;
        }
        if suml2 == 0.0 {
            break;
        }
        d = sumlx / suml2;
    }
    best
}

/// An affine block `x = q * d + m` with codes `0..=qmax` (Q4_1: 15, Q5_1: 31).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AffBlock {
    pub d: u16,
    pub m: u16,
    pub q: [u8; QK],
}

impl AffBlock {
    /// The decoder's values: `q as f32 * d + m`, two roundings (never fused), as
    /// `dequantize_row_q4_1`.
    #[inline]
    pub(crate) fn decode(&self, y: &mut [f32; QK]) {
        let d = fp16_to_fp32(self.d);
        let m = fp16_to_fp32(self.m);
        for (o, &c) in y.iter_mut().zip(&self.q) {
            *o = f32::from(c) * d + m;
        }
    }

    fn err(&self, x: &[f32; QK]) -> f64 {
        let mut y = [0.0; QK];
        self.decode(&mut y);
        sq_err(x, &y)
    }

    fn nearest(x: &[f32; QK], d: u16, m: u16, qmax: u8) -> AffBlock {
        let df = fp16_to_fp32(d);
        let mf = fp16_to_fp32(m);
        let mut q = [0u8; QK];
        if df != 0.0 {
            let hi = f32::from(qmax);
            for (c, &v) in q.iter_mut().zip(x) {
                *c = round_even(((v - mf) / df).max(0.0).min(hi)) as u8;
            }
        }
        AffBlock { d, m, q }
    }
}

/// `AffBlock::nearest(x, d, m, qmax).err(x)` in one pass, without building the block:
/// the same f32 operations per element (the code as an integer-valued f32 times `d`
/// plus `m` is what the decoder computes from the stored code) and the same 8-lane f64
/// sums as [`sq_err`].
#[inline(always)]
fn aff_eval(x: &[f32; QK], d: u16, m: u16, qmax: u8) -> f64 {
    let df = fp16_to_fp32(d);
    let mf = fp16_to_fp32(m);
    if df == 0.0 {
        return AffBlock::nearest(x, d, m, qmax).err(x);
    }
    let hi = f32::from(qmax);
    let mut acc = [0.0f64; 8];
    for c in x.chunks_exact(8) {
        for k in 0..8 {
            let l = round_even(((c[k] - mf) / df).max(0.0).min(hi));
            let e = f64::from(c[k]) - f64::from(l * df + mf);
            acc[k] += e * e;
        }
    }
    sum8_f64(acc)
}

/// ggml's `quantize_row_q4_1_ref` / `quantize_row_q5_1_ref` choice for one block.
/// (`Q5_1`'s reference has no `MIN(31, ..)`; its argument never exceeds 31.5, so the
/// clamp changes nothing and both types share this code.)
pub(crate) fn aff_ggml(x: &[f32; QK], qmax: u8) -> AffBlock {
    let (min, max) = min_max(x);
    let d = (max - min) / f32::from(qmax);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut q = [0u8; QK];
    for (c, &v) in q.iter_mut().zip(x) {
        *c = (((v - min) * id + 0.5) as i32).min(i32::from(qmax)) as u8;
    }
    AffBlock { d: fp32_to_fp16(d), m: fp32_to_fp16(min), q }
}

/// The sums of an affine fit, in 8 lanes: `(sum l, sum l^2, sum x, sum l x)`.
#[inline(always)]
fn aff_sums(x: &[f32; QK], q: &[f32; QK]) -> (f32, f32, f32, f32) {
    let (mut sl, mut sl2, mut sx, mut slx) = ([0.0f32; 8], [0.0f32; 8], [0.0f32; 8], [0.0f32; 8]);
    for (xc, qc) in x.chunks_exact(8).zip(q.chunks_exact(8)) {
        for k in 0..8 {
            let l = qc[k];
            sl[k] += l;
            sl2[k] += l * l;
            sx[k] += xc[k];
            slx[k] += l * xc[k];
        }
    }
    (sum8(sl), sum8(sl2), sum8(sx), sum8(slx))
}

/// Least-squares `(d, m)` for codes `q` (as f32): minimises `sum (q d + m - x)^2`;
/// also returns the residual (by expansion; only used to rank candidates).
#[inline(always)]
fn aff_fit(x: &[f32; QK], q: &[f32; QK], sx2: f32) -> Option<(f32, f32, f32)> {
    let (sl, sl2, sx, slx) = aff_sums(x, q);
    let n = QK as f32;
    let det = n * sl2 - sl * sl;
    if det <= 0.0 {
        return None;
    }
    let d = (n * slx - sl * sx) / det;
    let m = (sl2 * sx - sl * slx) / det;
    let r = sx2 - 2.0 * (d * slx + m * sx) + d * d * sl2 + 2.0 * d * m * sl + n * m * m;
    Some((d, m, r))
}

fn codes_f32(q: &[u8; QK]) -> [f32; QK] {
    let mut l = [0.0f32; QK];
    for (o, &c) in l.iter_mut().zip(q) {
        *o = f32::from(c);
    }
    l
}

/// Our affine search: ggml's choice, then code grids over the block's range with
/// stretched scales (chosen by the least-squares residual of a refitted `(d, m)`), the
/// fit rounded to f16 (with the f16 neighbours of both), codes re-chosen as the nearest
/// for the stored pair, refitted twice; the smallest decoded error wins.
pub(crate) fn aff_search(x: &[f32; QK], qmax: u8) -> AffBlock {
    let mut best = aff_ggml(x, qmax);
    let (min, max) = min_max(x);
    if max == min {
        return best;
    }
    let mut best_err = best.err(x);
    if best_err == 0.0 {
        return best;
    }
    let hi = f32::from(qmax);
    let sx2: f32 = x.iter().map(|v| v * v).sum();
    let mut fit: Option<(f32, f32)> = None;
    let mut fit_res = f32::INFINITY;
    for is in -6..=6 {
        let iscale = (hi + 0.1 * is as f32) / (max - min);
        let mut l = [0.0f32; QK];
        for (o, &v) in l.iter_mut().zip(x) {
            *o = round_even(((v - min) * iscale).max(0.0).min(hi));
        }
        if let Some((d, m, r)) = aff_fit(x, &l, sx2)
            && r < fit_res
        {
            fit_res = r;
            fit = Some((d, m));
        }
    }
    let Some((mut d, mut m)) = fit else { return best };
    for _ in 0..2 {
        let hd = fp32_to_fp16(d);
        let hm = fp32_to_fp16(m);
        let [d0, d1] = f16_neighbours(hd);
        let [m0, m1] = f16_neighbours(hm);
        let mut round_best: Option<(f64, u16, u16)> = None;
        for cd in [Some(hd), d0, d1].into_iter().flatten() {
            for cm in [Some(hm), m0, m1].into_iter().flatten() {
                let e = aff_eval(x, cd, cm, qmax);
                if round_best.is_none_or(|(be, _, _)| e < be) {
                    round_best = Some((e, cd, cm));
                }
            }
        }
        let Some((e, cd, cm)) = round_best else { break };
        let blk = AffBlock::nearest(x, cd, cm, qmax);
        if e < best_err {
            best_err = e;
            best = blk;
        }
        match aff_fit(x, &codes_f32(&blk.q), sx2) {
            Some((nd, nm, _)) => (d, m) = (nd, nm),
            None => break,
        }
    }
    best
}
