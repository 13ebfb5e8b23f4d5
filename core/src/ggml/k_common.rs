//! Shared pieces of the 256-weight ggml super-block types (Q2_K .. Q6_K, IQ4_XS):
//! the block driver with the NaN/range policy, ggml's rounding, the 6-bit
//! scale/min packing of Q4_K and Q5_K, IQ4_NL's value grid, and ports of ggml's
//! sub-block fits (`make_qkx2_quants`, `make_qx_quants`, `make_q3_quants`) that
//! produce ggml's own choice as one candidate of our encoders.
//!
//! The ports follow `ggml-quants.c` operation for operation (same f32 operations in
//! the same order) so that the candidate is the block ggml's reference quantizer
//! writes; the encoders then only ever keep something at least as good.

use half::f16;

use crate::QuantError;
use crate::input::Input;
use crate::kernels::fault_to_error;
use crate::kernels::scalar::min_max_ref;
use crate::params::check_range;

/// Weights per super-block (`QK_K`).
pub(crate) const QK_K: usize = 256;

/// A super-block of weights.
pub(crate) type Block = [f32; QK_K];

/// ggml's `GROUP_MAX_EPS`: a sub-block whose largest magnitude is below it is zero.
pub(crate) const GROUP_MAX_EPS: f32 = 1e-15;

/// IQ4_NL's (and IQ4_XS's) 16 code values, `kvalues_iq4nl` in `ggml-common.h`.
pub(crate) const KVALUES_IQ4NL: [i8; 16] =
    [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];

/// ggml's `nearest_int`: round to nearest, ties to even, for `|v| <= 4194303`
/// (adds `1.5 * 2^23` and reads the mantissa, exactly as ggml does).
#[inline(always)]
pub(crate) fn nearest_int(v: f32) -> i32 {
    let t = v + 12_582_912.0;
    ((t.to_bits() & 0x007f_ffff) as i32) - 0x0040_0000
}

/// ggml's `best_index_int8` for IQ4_NL's grid: the index of the value nearest `x`,
/// ties to the upper value. Computed without branches as the number of neighbour
/// pairs `k` with `x - val[k] >= val[k + 1] - x` (the same two f32 subtractions
/// ggml's bisection ends with, so the same index for every finite `x`; tested
/// against the bisection).
#[inline(always)]
pub(crate) fn best_index_int8(val: &[i8; 16], x: f32) -> usize {
    let mut n = 0usize;
    for k in 0..15 {
        n += usize::from(x - f32::from(val[k]) >= f32::from(val[k + 1]) - x);
    }
    n
}

/// ggml's `best_index_int8` as written (bisection): the oracle of [`best_index_int8`].
#[cfg(test)]
pub(crate) fn best_index_int8_bisect(val: &[i8; 16], x: f32) -> usize {
    if x <= f32::from(val[0]) {
        return 0;
    }
    if x >= f32::from(val[15]) {
        return 15;
    }
    let (mut ml, mut mu) = (0usize, 15usize);
    while mu - ml > 1 {
        let mav = (ml + mu) / 2;
        if x < f32::from(val[mav]) {
            mu = mav;
        } else {
            ml = mav;
        }
    }
    if x - f32::from(val[mu - 1]) < f32::from(val[mu]) - x { mu - 1 } else { mu }
}

/// Reads a little-endian f16 as f32.
#[inline(always)]
pub(crate) fn read_f16(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Squared error of `y` against `x`.
#[inline(always)]
pub(crate) fn sq_err(x: &[f32], y: &[f32]) -> f32 {
    let mut e = 0f32;
    for (&a, &b) in x.iter().zip(y) {
        let d = a - b;
        e += d * d;
    }
    e
}

/// Applies the NaN/infinity/range policy to block `index` of `input` (already
/// widened into `x`).
#[inline(always)]
fn check_block(input: Input<'_>, index: usize, x: &[f32], first_element: u64) -> Result<(), QuantError> {
    let mut ok = true;
    for &v in x {
        ok &= v.abs() <= crate::params::F16_MAX;
    }
    if ok {
        return Ok(());
    }
    let (min, max, nan) = min_max_ref(x);
    check_range(min, max, nan).map_err(|fault| fault_to_error(input, QK_K, index, fault, first_element))
}

/// Encodes every whole super-block of `input` into `out` (`type_size` bytes each)
/// with `encode_block`, after the NaN/range check of each block.
///
/// # Errors
/// [`QuantError::NonFinite`] / [`QuantError::OutOfRange`] naming the first bad
/// element, counted from `first_element`.
#[inline(always)]
pub(crate) fn encode_blocks(
    input: Input<'_>,
    first_element: u64,
    out: &mut [u8],
    type_size: usize,
    mut encode_block: impl FnMut(&Block, &mut [u8]),
) -> Result<(), QuantError> {
    let mut x = [0f32; QK_K];
    for (i, o) in out.chunks_exact_mut(type_size).enumerate().take(input.len() / QK_K) {
        input.slice(i * QK_K, (i + 1) * QK_K).to_f32(&mut x);
        check_block(input, i, &x, first_element)?;
        encode_block(&x, o);
    }
    Ok(())
}

/// Decodes every block of `blocks` (`type_size` bytes each) into `out`.
#[inline(always)]
pub(crate) fn decode_blocks(
    blocks: &[u8],
    out: &mut [f32],
    type_size: usize,
    decode_block: impl Fn(&[u8], &mut [f32]),
) -> Result<(), QuantError> {
    for (b, o) in blocks.chunks_exact(type_size).zip(out.chunks_exact_mut(QK_K)) {
        decode_block(b, o);
    }
    Ok(())
}

/// ggml's `get_scale_min_k4`: sub-scale and sub-min `j` (0..8) of the 12-byte
/// Q4_K/Q5_K scale field.
#[inline(always)]
pub(crate) fn get_scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Packs eight 6-bit sub-scales and sub-mins into the 12-byte Q4_K/Q5_K field
/// (the inverse of [`get_scale_min_k4`]).
pub(crate) fn pack_scale_min_k4(sc: &[u8; 8], m: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for j in 0..8 {
        let (ls, lm) = (sc[j] & 63, m[j] & 63);
        if j < 4 {
            s[j] |= ls;
            s[j + 4] |= lm;
        } else {
            s[j + 4] = (ls & 0xF) | ((lm & 0xF) << 4);
            s[j - 4] |= (ls >> 4) << 6;
            s[j] |= (lm >> 4) << 6;
        }
    }
    s
}

/// Port of ggml's `make_qkx2_quants`: the sub-block fit `x ≈ scale * L - min` of
/// Q2_K, Q4_K and Q5_K with importance `weights`, a grid of `nstep + 1` range
/// factors `rmin + rdelta * is` and either squared or absolute (`use_mad`) error.
/// Writes the codes to `l` and returns `(scale, min)`.
#[cfg(test)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn make_qkx2_quants(
    nmax: i32,
    x: &[f32],
    weights: &[f32],
    l: &mut [u8],
    rmin: f32,
    rdelta: f32,
    nstep: i32,
    use_mad: bool,
) -> (f32, f32) {
    let n = x.len();
    let mut laux = [0u8; 32];
    let mut min = x[0];
    let mut max = x[0];
    let mut sum_w = weights[0];
    let mut sum_x = sum_w * x[0];
    for i in 1..n {
        if x[i] < min {
            min = x[i];
        }
        if x[i] > max {
            max = x[i];
        }
        let w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if min > 0.0 {
        min = 0.0;
    }
    if max == min {
        l.fill(0);
        return (0.0, -min);
    }
    let nmaxf = nmax as f32;
    let mut iscale = nmaxf / (max - min);
    let mut scale = 1.0 / iscale;
    let mut best_error = 0f32;
    for i in 0..n {
        let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
        l[i] = q as u8;
        let diff = scale * q as f32 + min - x[i];
        let diff = if use_mad { diff.abs() } else { diff * diff };
        best_error += weights[i] * diff;
    }
    for is in 0..=nstep {
        iscale = (rmin + rdelta * is as f32 + nmaxf) / (max - min);
        let (mut sum_l, mut sum_l2, mut sum_xl) = (0f32, 0f32, 0f32);
        for i in 0..n {
            let q = nearest_int(iscale * (x[i] - min)).clamp(0, nmax);
            laux[i] = q as u8;
            let w = weights[i];
            let lf = q as f32;
            sum_l += w * lf;
            sum_l2 += w * lf * lf;
            sum_xl += w * lf * x[i];
        }
        let dd = sum_w * sum_l2 - sum_l * sum_l;
        if dd > 0.0 {
            let mut this_scale = (sum_w * sum_xl - sum_x * sum_l) / dd;
            let mut this_min = (sum_l2 * sum_x - sum_l * sum_xl) / dd;
            if this_min > 0.0 {
                this_min = 0.0;
                this_scale = sum_xl / sum_l2;
            }
            let mut cur_error = 0f32;
            for i in 0..n {
                let diff = this_scale * f32::from(laux[i]) + this_min - x[i];
                let diff = if use_mad { diff.abs() } else { diff * diff };
                cur_error += weights[i] * diff;
            }
            if cur_error < best_error {
                l[..n].copy_from_slice(&laux[..n]);
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    (scale, -min)
}

/// Port of ggml's `make_qx_quants` with `rmse_type == 1` (weights `x²`) and no
/// importance matrix: Q6_K's symmetric sub-block fit. Returns the scale (its sign
/// puts the largest magnitude on the `-nmax` side).
#[cfg(test)]
pub(crate) fn make_qx_quants_rmse1(nmax: i32, x: &[f32]) -> f32 {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let nmaxf = nmax as f32;
    let mut iscale = -nmaxf / max;
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for &v in x {
        let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
        let w = v * v;
        sumlx += w * v * l;
        suml2 += w * l * l;
    }
    let mut scale = if suml2 != 0.0 { sumlx / suml2 } else { 0.0 };
    let mut best = scale * sumlx;
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        iscale = -(nmaxf + 0.1 * is as f32) / max;
        sumlx = 0.0;
        suml2 = 0.0;
        for &v in x {
            let l = nearest_int(iscale * v).clamp(-nmax, nmax - 1) as f32;
            let w = v * v;
            sumlx += w * v * l;
            suml2 += w * l * l;
        }
        if suml2 > 0.0 && sumlx * sumlx > best * suml2 {
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    scale
}

/// Port of ggml's `make_q3_quants` with `do_rmse` (Q3_K's sub-block fit): the
/// scale after up to five rounds of single-code improvements under `x²` weights.
#[cfg(test)]
pub(crate) fn make_q3_quants(nmax: i32, x: &[f32]) -> f32 {
    let n = x.len();
    let mut max = 0f32;
    let mut amax = 0f32;
    for &v in x {
        let ax = v.abs();
        if ax > amax {
            amax = ax;
            max = v;
        }
    }
    if amax < GROUP_MAX_EPS {
        return 0.0;
    }
    let iscale = -(nmax as f32) / max;
    let mut l = [0i32; 16];
    let (mut sumlx, mut suml2) = (0f32, 0f32);
    for i in 0..n {
        let q = nearest_int(iscale * x[i]).clamp(-nmax, nmax - 1);
        l[i] = q;
        let w = x[i] * x[i];
        sumlx += w * x[i] * q as f32;
        suml2 += w * q as f32 * q as f32;
    }
    for _ in 0..5 {
        let mut n_changed = 0;
        for i in 0..n {
            let w = x[i] * x[i];
            let mut slx = sumlx - w * x[i] * l[i] as f32;
            if slx > 0.0 {
                let mut sl2 = suml2 - w * l[i] as f32 * l[i] as f32;
                let new_l = nearest_int(x[i] * sl2 / slx).clamp(-nmax, nmax - 1);
                if new_l != l[i] {
                    slx += w * x[i] * new_l as f32;
                    sl2 += w * new_l as f32 * new_l as f32;
                    if sl2 > 0.0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        l[i] = new_l;
                        sumlx = slx;
                        suml2 = sl2;
                        n_changed += 1;
                    }
                }
            }
        }
        if n_changed == 0 {
            break;
        }
    }
    if suml2 > 0.0 { sumlx / suml2 } else { 0.0 }
}

/// Generates a type's `encode` (dispatching: AVX2 when detected at run time, else
/// the baseline), `encode_avx2` and `encode_baseline` (the scalar reference the AVX2
/// path is tested against) around `$block: fn(&Block, &mut [u8])`, which must be
/// `#[inline(always)]` down to its leaves so that each entry point compiles the whole
/// search for its instruction set. Both run the same IEEE operations (no fused
/// multiply-add), so they write the same bytes.
macro_rules! dispatch_encoder {
    ($block:path) => {
        /// Encodes whole blocks of `input` into `out` with the fastest path this CPU
        /// runs.
        ///
        /// # Errors
        /// [`QuantError::NonFinite`] / [`QuantError::OutOfRange`] naming the first bad
        /// element, counted from `first_element`.
        pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
            #[cfg(all(feature = "std", target_arch = "x86_64"))]
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 was detected on this CPU just above.
                return unsafe { encode_avx2(input, first_element, out) };
            }
            encode_baseline(input, first_element, out)
        }

        /// [`encode`] compiled for AVX2.
        #[cfg(all(feature = "std", target_arch = "x86_64"))]
        #[target_feature(enable = "avx2")]
        pub(crate) fn encode_avx2(
            input: Input<'_>,
            first_element: u64,
            out: &mut [u8],
        ) -> Result<(), QuantError> {
            super::k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| $block(x, o))
        }

        /// [`encode`] for the target's baseline instruction set: the reference.
        pub(crate) fn encode_baseline(
            input: Input<'_>,
            first_element: u64,
            out: &mut [u8],
        ) -> Result<(), QuantError> {
            super::k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| $block(x, o))
        }
    };
}
pub(crate) use dispatch_encoder;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_int_rounds_half_to_even() {
        for (v, want) in
            [(0.5f32, 0), (1.5, 2), (2.5, 2), (-0.5, 0), (-1.5, -2), (3.49, 3), (-7.6, -8), (0.0, 0)]
        {
            assert_eq!(nearest_int(v), want, "{v}");
        }
    }

    #[test]
    fn best_index_is_the_nearest_value() {
        let v = KVALUES_IQ4NL;
        // Under Miri every 7th (every 13th) step of the grids: interpreted, the full
        // grids take minutes; the midpoints and values below are all kept.
        let (step, step2) = if cfg!(miri) { (7, 13) } else { (1, 1) };
        for k in (-1400..=1400).step_by(step) {
            let x = k as f32 * 0.1;
            let got = best_index_int8(&v, x);
            let best = (0..16).map(|i| (f32::from(v[i]) - x).abs()).fold(f32::INFINITY, f32::min);
            assert_eq!((f32::from(v[got]) - x).abs(), best, "x={x}");
        }
        // Equal to ggml's bisection everywhere, midpoints and values included.
        let mut xs: std::vec::Vec<f32> = (-2800..=2800).step_by(step2).map(|k| k as f32 * 0.05).collect();
        for k in 0..15 {
            let (a, b) = (f32::from(v[k]), f32::from(v[k + 1]));
            let m = (a + b) / 2.0;
            xs.extend([a, b, m, f32::from_bits(m.to_bits() + 1), f32::from_bits(m.to_bits() - 1)]);
        }
        xs.extend([f32::MAX, f32::MIN, 1e-30, -1e-30, 0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY]);
        for x in xs {
            assert_eq!(best_index_int8(&v, x), best_index_int8_bisect(&v, x), "x={x}");
        }
    }

    #[test]
    fn scale_min_k4_round_trips() {
        let sc: [u8; 8] = [0, 63, 17, 32, 48, 5, 60, 33];
        let m: [u8; 8] = [63, 0, 31, 16, 1, 62, 47, 15];
        let p = pack_scale_min_k4(&sc, &m);
        for j in 0..8 {
            assert_eq!(get_scale_min_k4(j, &p), (sc[j], m[j]), "j={j}");
        }
    }
}
