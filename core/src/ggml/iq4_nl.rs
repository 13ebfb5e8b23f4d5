//! ggml's `IQ4_NL` block: 32 weights, one f16 scale, 4-bit indices into a fixed
//! non-uniform grid, `x = d * KVALUES[q]`.
//!
//! | bytes | field | content |
//! |---|---|---|
//! | 0..2 | `d` | f16 scale, little-endian |
//! | 2..18 | `qs[16]` | byte `j`: index of weight `j` (low nibble), of weight `j + 16` (high nibble) |
//!
//! `KVALUES` (`kvalues_iq4nl`): -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38,
//! 53, 69, 89, 113.
//!
//! Decode (`dequantize_row_iq4_nl`): `y[j] = d * (KVALUES[q[j]] as f32)`, one f32
//! multiplication. A corrupt block (NaN or infinite `d`) decodes to whatever that
//! product gives, as in ggml; decoding never fails.
//!
//! Encode: ggml's choice without an importance matrix (`quantize_iq4_nl`: weights
//! `x^2`, 15 scale trials, least-squares scale) is computed bit for bit as the first
//! candidate; our candidates minimise the plain squared error (scale trials anchored
//! at both ends of the grid, the fitted scale rounded to f16 and its two f16
//! neighbours, indices re-chosen as the nearest for the stored scale, refitted twice).
//! The block with the smallest decoded squared error is written, so it is never worse
//! than ggml's.

use super::block32::{
    QK, f16_neighbours, fp16_to_fp32, fp32_to_fp16, load_block, pack_nibbles, signed_absmax, sq_err, sum8,
    unpack_nibbles,
};
use crate::QuantError;
use crate::input::Input;

/// `kvalues_iq4nl` of `ggml-common.h`.
pub(crate) const KVALUES: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// `GROUP_MAX_EPS` of `ggml-quants.c`.
const GROUP_MAX_EPS: f32 = 1e-15;

/// `block_iq4_nl` of `ggml-common.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockIq4Nl {
    /// f16 scale bits, little-endian.
    pub d: [u8; 2],
    /// Packed 4-bit grid indices.
    pub qs: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<BlockIq4Nl>() == 18);

impl BlockIq4Nl {
    /// Bytes per block.
    pub const SIZE: usize = 18;

    /// Reads a block from its bytes.
    pub fn read(b: &[u8; 18]) -> Self {
        let mut qs = [0; 16];
        qs.copy_from_slice(&b[2..]);
        BlockIq4Nl { d: [b[0], b[1]], qs }
    }

    /// Writes the block's bytes.
    pub fn write(&self, out: &mut [u8; 18]) {
        out[..2].copy_from_slice(&self.d);
        out[2..].copy_from_slice(&self.qs);
    }

    fn new(d: u16, q: &[u8; QK]) -> Self {
        let mut qs = [0; 16];
        pack_nibbles(q, &mut qs);
        BlockIq4Nl { d: d.to_le_bytes(), qs }
    }

    /// The decoded weights, exactly as ggml computes them.
    pub fn decode(&self, y: &mut [f32; QK]) {
        let mut q = [0; QK];
        unpack_nibbles(&self.qs, &mut q);
        decode_codes(u16::from_le_bytes(self.d), &q, y);
    }
}

#[inline]
fn decode_codes(d: u16, q: &[u8; QK], y: &mut [f32; QK]) {
    let d = fp16_to_fp32(d);
    for (o, &c) in y.iter_mut().zip(q) {
        *o = d * KVALUES_F[usize::from(c & 15)];
    }
}

fn codes_err(x: &[f32; QK], d: u16, q: &[u8; QK]) -> f64 {
    let mut y = [0.0; QK];
    decode_codes(d, q, &mut y);
    sq_err(x, &y)
}

/// The grid as f32.
const KVALUES_F: [f32; 16] = {
    let mut v = [0.0f32; 16];
    let mut i = 0;
    while i < 16 {
        v[i] = KVALUES[i] as f32;
        i += 1;
    }
    v
};

/// `best_index_int8`: the index of the grid value nearest to `x` (the upper one on a
/// tie), with ggml's exact comparisons. ggml bisects to the largest `ml` with
/// `KVALUES[ml] <= x` (after returning 0 / 15 outside the grid); counting the grid
/// values `1..15` that are `<= x` finds the same `ml` without branches, and outside the
/// grid the final comparison gives 0 / 15 by itself (checked against the bisection in
/// the tests, at every grid value, midpoint and their f32 neighbours). `x` is finite.
#[inline(always)]
fn best_index(x: f32) -> u8 {
    nearest_grid(x).0
}

/// [`best_index`] and the grid value it picks, without branches or table lookups (so
/// loops over lanes vectorise): `lo = KVALUES[ml]` is the largest grid value `<= x`
/// (or the first), `hi = KVALUES[ml + 1]` the smallest `> x` (or the last).
#[inline(always)]
fn nearest_grid(x: f32) -> (u8, f32) {
    let v = &KVALUES_F;
    let mut ml = 0u8;
    let mut lo = v[0];
    for &g in &v[1..15] {
        let ge = x >= g;
        ml += u8::from(ge);
        lo = if ge { g } else { lo };
    }
    let mut hi = v[15];
    for &g in v[1..15].iter().rev() {
        hi = if x < g { g } else { hi };
    }
    let up = x - lo >= hi - x;
    (ml + u8::from(up), if up { hi } else { lo })
}

/// ggml's `best_index_int8` as written (bisection), the oracle of [`best_index`].
#[cfg(test)]
fn best_index_bisect(x: f32) -> u8 {
    let v = |i: usize| f32::from(KVALUES[i]);
    if x <= v(0) {
        return 0;
    }
    if x >= v(15) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < v(mav) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - v(mu - 1) < v(mu) - x { (mu - 1) as u8 } else { mu as u8 }
}

/// ggml's choice (`quantize_row_iq4_nl_impl` with one block of 32, no importance
/// weights, `ntry = 7`): the stored scale and indices.
fn ggml_choice(x: &[f32; QK]) -> (u16, [u8; QK]) {
    let (amax, max) = signed_absmax(x);
    let mut d = 0.0f32;
    if amax >= GROUP_MAX_EPS {
        let v0 = f32::from(KVALUES[0]);
        d = -max / v0;
        let id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for &xv in x {
            let q = nearest_grid(id * xv).1;
            let w = xv * xv;
            sumqx += w * q * xv;
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -7..=7 {
            let id = (itry as f32 + v0) / max;
            let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
            for &xv in x {
                let q = nearest_grid(id * xv).1;
                let w = xv * xv;
                sumqx += w * q * xv;
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
    }
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut q = [0u8; QK];
    for (c, &xv) in q.iter_mut().zip(x) {
        *c = best_index(id * xv);
    }
    (fp32_to_fp16(d), q)
}

/// ggml's own choice (`quantize_iq4_nl` without importance matrix) for one block.
#[cfg(test)]
pub(crate) fn quantize_iq4_nl_ggml(x: &[f32; QK]) -> BlockIq4Nl {
    let (d, q) = ggml_choice(x);
    BlockIq4Nl::new(d, &q)
}

/// Nearest indices for the stored scale `h`.
fn nearest(x: &[f32; QK], h: u16) -> [u8; QK] {
    let d = fp16_to_fp32(h);
    let mut q = [8u8; QK];
    if d != 0.0 {
        for (c, &xv) in q.iter_mut().zip(x) {
            *c = best_index(xv / d);
        }
    }
    q
}

/// Our scalar reference encoder for one block (searched; never worse than ggml's).
pub(crate) fn quantize_iq4_nl_ref(x: &[f32; QK]) -> BlockIq4Nl {
    let (mut best_d, mut best_q) = ggml_choice(x);
    let (amax, max) = signed_absmax(x);
    if amax < GROUP_MAX_EPS {
        return BlockIq4Nl::new(best_d, &best_q);
    }
    let mut best_err = codes_err(x, best_d, &best_q);
    if best_err == 0.0 {
        return BlockIq4Nl::new(best_d, &best_q);
    }
    // Unweighted scale trials, ranked by the least-squares objective.
    let mut fit_d = 0.0f32;
    let mut fit_obj = -1.0f32;
    for anchor in [KVALUES_F[0], KVALUES_F[15]] {
        for itry in -7..=7 {
            let id = (anchor + itry as f32) / max;
            let (mut sqx, mut sq2) = ([0.0f32; 8], [0.0f32; 8]);
            for c in x.chunks_exact(8) {
                for k in 0..8 {
                    let q = nearest_grid(id * c[k]).1;
                    sqx[k] += q * c[k];
                    sq2[k] += q * q;
                }
            }
            let (sumqx, sumq2) = (sum8(sqx), sum8(sq2));
            if sumq2 > 0.0 && sumqx * sumqx / sumq2 > fit_obj {
                fit_obj = sumqx * sumqx / sumq2;
                fit_d = sumqx / sumq2;
            }
        }
    }
    let mut d = fit_d;
    for _ in 0..2 {
        let h = fp32_to_fp16(d);
        let [a, b] = f16_neighbours(h);
        let mut round_best: Option<(f64, u16, [u8; QK])> = None;
        for cand in [Some(h), a, b].into_iter().flatten() {
            let q = nearest(x, cand);
            let e = codes_err(x, cand, &q);
            if round_best.is_none_or(|(be, _, _)| e < be) {
                round_best = Some((e, cand, q));
            }
        }
        let Some((e, h, q)) = round_best else { break };
        if e < best_err {
            (best_err, best_d, best_q) = (e, h, q);
        }
        let (mut sumqx, mut sumq2) = (0.0f32, 0.0f32);
        for (&c, &xv) in q.iter().zip(x) {
            let v = f32::from(KVALUES[usize::from(c)]);
            sumqx += v * xv;
            sumq2 += v * v;
        }
        if sumq2 == 0.0 {
            break;
        }
        d = sumqx / sumq2;
    }
    BlockIq4Nl::new(best_d, &best_q)
}

/// Encodes whole `IQ4_NL` blocks of `input` into `out`.
pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    let mut x = [0.0; QK];
    for (b, o) in out.chunks_exact_mut(BlockIq4Nl::SIZE).enumerate() {
        load_block(input, b, first_element, &mut x)?;
        quantize_iq4_nl_ref(&x).write(o.try_into().expect("chunks_exact"));
    }
    Ok(())
}

/// Decodes whole `IQ4_NL` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    for (b, y) in blocks.chunks_exact(BlockIq4Nl::SIZE).zip(out.chunks_exact_mut(QK)) {
        BlockIq4Nl::read(b.try_into().expect("chunks_exact")).decode(y.try_into().expect("chunks_exact"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{KVALUES_F, best_index, best_index_bisect};

    #[test]
    fn ggml_iq4_nl_best_index_equals_ggml_bisection() {
        let mut xs = std::vec::Vec::new();
        for w in KVALUES_F.windows(2) {
            let mid = (w[0] + w[1]) / 2.0;
            for p in [w[0], w[1], mid] {
                xs.extend([p, f32::from_bits(p.to_bits() + 1), f32::from_bits(p.to_bits() - 1), -p]);
            }
        }
        let mut r = crate::testutil::Rng::new(9);
        xs.extend((0..if cfg!(miri) { 500 } else { 100_000 }).map(|_| r.unit() * 140.0));
        xs.extend([0.0, -0.0, 1e30, -1e30, f32::MIN_POSITIVE]);
        for x in xs {
            let i = best_index_bisect(x);
            assert_eq!(best_index(x), i, "{x}");
            assert_eq!(super::nearest_grid(x), (i, KVALUES_F[usize::from(i)]), "{x}");
        }
    }
}
