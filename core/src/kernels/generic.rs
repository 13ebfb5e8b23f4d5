//! Quantize+pack and unpack+dequantize written once over the [`Simd`] trait.
//!
//! Per group: widen f16/bf16 into a stack buffer (f32 input is read in place), one
//! pass for the minimum, maximum and a non-finite hint, the scalar parameter rules of
//! [`crate::params`] (shared with every path, so parameters are identical), then one
//! pass that computes the codes with the reference arithmetic and packs them. The
//! group is in L1 for the second pass, so the input is read from memory once.

use super::scalar::{min_max_ref, write_params};
use crate::format::{Bits, GroupFormat, GroupSize, Scheme};
use crate::input::Input;
use half::f16;

use crate::params::{GroupFault, GroupParams, check_range, params_from_range};
use crate::simd::vector::Simd;

/// Widens 16-bit floats (f16, or bf16 when `brain`) into `out` (same length): whole
/// vectors with SIMD, the remainder (groups that are not a multiple of the lane count)
/// in scalar code.
#[inline(always)]
fn widen<S: Simd>(s: S, x: &[u16], out: &mut [f32], brain: bool) {
    let mut xs = x.chunks_exact(S::LANES);
    let mut os = out.chunks_exact_mut(S::LANES);
    for (a, o) in (&mut xs).zip(&mut os) {
        let v = if brain { s.load_bf16(a) } else { s.load_f16(a) };
        s.store(v, o);
    }
    for (&a, o) in xs.remainder().iter().zip(os.into_remainder()) {
        *o = if brain { f32::from_bits(u32::from(a) << 16) } else { half::f16::from_bits(a).to_f32() };
    }
}

/// Elements `start..start + g` of `input` as f32: borrowed for f32 input, widened into
/// `buf` for f16/bf16.
///
/// The kernels call this in plain loops rather than through a closure: a closure
/// would not inherit the entry point's `#[target_feature]`, and the intrinsics
/// inlined into it would become calls.
#[inline(always)]
pub(crate) fn group_f32<'b, S: Simd>(
    s: S,
    input: Input<'b>,
    start: usize,
    g: usize,
    buf: &'b mut [f32; GroupSize::MAX],
) -> &'b [f32] {
    match input {
        Input::F32(x) => &x[start..start + g],
        Input::F16(x) => {
            widen(s, bytemuck::cast_slice(&x[start..start + g]), &mut buf[..g], false);
            &buf[..g]
        }
        Input::Bf16(x) => {
            widen(s, bytemuck::cast_slice(&x[start..start + g]), &mut buf[..g], true);
            &buf[..g]
        }
    }
}

/// Minimum and maximum of a group (length a multiple of `4 * LANES`), and whether
/// it may hold a non-finite value.
///
/// The hint is a running sum: a NaN or an infinity makes it non-finite, and so can an
/// overflow of large finite values. When it fires the caller recomputes the exact
/// scalar answer, so the hint only has to be conservative.
#[inline(always)]
fn min_max<S: Simd>(s: S, x: &[f32]) -> (f32, f32, bool) {
    let l = S::LANES;
    let mut mn = [s.splat(f32::INFINITY); 4];
    let mut mx = [s.splat(f32::NEG_INFINITY); 4];
    let mut sum = [s.splat(0.0); 4];
    for c in x.chunks_exact(4 * l) {
        for k in 0..4 {
            let v = s.load(&c[k * l..]);
            mn[k] = s.min(mn[k], v);
            mx[k] = s.max(mx[k], v);
            sum[k] = s.add(sum[k], v);
        }
    }
    let mn = s.min(s.min(mn[0], mn[1]), s.min(mn[2], mn[3]));
    let mx = s.max(s.max(mx[0], mx[1]), s.max(mx[2], mx[3]));
    let sum = s.add(s.add(sum[0], sum[1]), s.add(sum[2], sum[3]));
    (s.reduce_min(mn), s.reduce_max(mx), !s.reduce_add(sum).is_finite())
}

/// [`super::scalar::read_params`] with the inlined widening: `None` unless both
/// parameters are finite.
#[inline(always)]
fn read_params_inline(format: GroupFormat, bytes: &[u8]) -> Option<GroupParams> {
    let d = f16::from_le_bytes([bytes[0], bytes[1]]);
    let m = match format.scheme {
        Scheme::Asymmetric => f16::from_le_bytes([bytes[2], bytes[3]]),
        Scheme::Symmetric => f16::ZERO,
    };
    // Exponent all ones: infinity or NaN.
    if d.to_bits() & 0x7c00 == 0x7c00 || m.to_bits() & 0x7c00 == 0x7c00 {
        return None;
    }
    Some(GroupParams::from_stored(d, m))
}

/// Quantizes whole groups of `input` into packed `codes` and `params`, bit for bit
/// like [`super::scalar::quantize_ref`]. Lengths are validated by the caller.
#[inline(always)]
pub(crate) fn quantize<S: Simd>(
    s: S,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), (usize, GroupFault)> {
    // The code width is a constant inside the group loop.
    match format.bits {
        Bits::B2 => quantize_bits::<S, 2>(s, format, input, codes, params),
        Bits::B4 => quantize_bits::<S, 4>(s, format, input, codes, params),
        Bits::B8 => quantize_bits::<S, 8>(s, format, input, codes, params),
    }
}

#[inline(always)]
fn quantize_bits<S: Simd, const BITS: u32>(
    s: S,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), (usize, GroupFault)> {
    let g = format.group_len();
    let l = S::LANES;
    let l4 = 4 * l;
    debug_assert!(g.is_multiple_of(l4) && format.bits.get() == BITS);
    let mut code_chunks = codes.chunks_exact_mut(format.codes_len());
    let mut param_chunks = params.chunks_exact_mut(format.params_len());
    let qmax = format.bits.max_code() as f32;
    let (lo, hi, bias) = match format.scheme {
        Scheme::Asymmetric => (0.0, qmax, 0),
        Scheme::Symmetric => {
            let h = 1i32 << (BITS - 1);
            (-h as f32, (h - 1) as f32, h)
        }
    };
    let (lo, hi) = (s.splat(lo), s.splat(hi));
    let groups = input.len() / g;
    if groups == 0 {
        return Ok(());
    }
    // One scratch buffer for widened f16/bf16 groups; f32 input is read in place.
    // (Computing the parameters of group `i + 1` before coding group `i`, to overlap
    // the scalar parameter chain with vector work, measured slower here.)
    let mut work = [0f32; GroupSize::MAX];
    let groups_ahead = PREFETCH_VALUES.div_ceil(g);
    for i in 0..groups {
        let (Some(c), Some(p)) = (code_chunks.next(), param_chunks.next()) else {
            break;
        };
        // The hardware prefetcher follows the stream, but stalls while the scalar
        // parameter chain runs; asking for a group a few ahead keeps memory busy.
        let ahead = (i + groups_ahead) * g;
        if ahead + g <= input.len() {
            s.prefetch(input.bytes(ahead, g));
        }
        let x = group_f32(s, input, i * g, g, &mut work);
        let (d, m, gp) = prepare(s, format, x, i)?;
        // Symmetric: `offset` is +0 and `x - 0 == x` exactly, so one formula serves both.
        let (off, inv) = (s.splat(gp.offset), s.splat(gp.inv_scale));
        let step = l4 * BITS as usize / 8;
        for (xc, cc) in x.chunks_exact(l4).zip(c.chunks_exact_mut(step)) {
            let mut t = [lo; 4];
            for (k, t) in t.iter_mut().enumerate() {
                let v = s.mul(s.sub(s.load(&xc[k * l..]), off), inv);
                *t = s.min(s.max(v, lo), hi);
            }
            s.store_codes::<BITS>(t, bias, cc);
        }
        write_params(format, d, m, p);
    }
    Ok(())
}

/// How far ahead of the group being coded the quantizer prefetches, in values (4 KiB
/// of f32): measured flat between 2 and 8 KiB on AVX2 and clearly better than 1 KiB.
const PREFETCH_VALUES: usize = 1024;

/// Range check and parameters of group `i` (values `x`): the stored f16 pair and its
/// widened form.
#[inline(always)]
fn prepare<S: Simd>(
    s: S,
    format: GroupFormat,
    x: &[f32],
    i: usize,
) -> Result<(f16, f16, GroupParams), (usize, GroupFault)> {
    let (mut min, mut max, suspect) = min_max(s, x);
    let mut nan = false;
    if suspect {
        (min, max, nan) = min_max_ref(x);
    }
    check_range(min, max, nan).map_err(|fault| (i, fault))?;
    let (d, m) = params_from_range(format, min, max);
    Ok((d, m, GroupParams::from_stored(d, m)))
}

/// Outputs at least this large (bytes) are written with streaming stores: they cannot
/// stay in the caches anyway, and bypassing them saves the read-for-ownership traffic.
/// Smaller outputs (a streamed block, a tensor that fits in L2) use plain stores so the
/// caller finds them in cache.
#[cfg(not(miri))]
pub(crate) const STREAM_STORE_BYTES: usize = 16 << 20;
/// Under Miri the threshold is small, so the streaming-store path (unsafe
/// non-temporal stores and the fence) is reached by a test of interpretable size.
#[cfg(miri)]
pub(crate) const STREAM_STORE_BYTES: usize = 4 << 10;

/// Dequantizes whole groups into `out`, bit for bit like
/// [`super::scalar::dequantize_ref`]: `(c - h) * d + m`, multiply then add.
///
/// Returns the index of the first group whose parameters are not finite.
#[inline(always)]
pub(crate) fn dequantize<S: Simd>(
    s: S,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), usize> {
    if core::mem::size_of_val(out) >= STREAM_STORE_BYTES {
        let r = dequantize_to::<S, true>(s, format, codes, params, out);
        s.store_fence();
        r
    } else {
        dequantize_to::<S, false>(s, format, codes, params, out)
    }
}

#[inline(always)]
fn dequantize_to<S: Simd, const STREAM: bool>(
    s: S,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), usize> {
    let g = format.group_len();
    let l = S::LANES;
    let mut unpacked = [0u8; GroupSize::MAX];
    let h = match format.scheme {
        Scheme::Asymmetric => 0.0,
        Scheme::Symmetric => (1u32 << (format.bits.get() - 1)) as f32,
    };
    let hv = s.splat(h);
    for (i, ((c, p), o)) in codes
        .chunks_exact(format.codes_len())
        .zip(params.chunks_exact(format.params_len()))
        .zip(out.chunks_exact_mut(g))
        .enumerate()
    {
        let gp = read_params_inline(format, p).ok_or(i)?;
        let group_codes: &[u8] = match format.bits {
            Bits::B8 => c,
            Bits::B4 => {
                s.unpack_i4(c, &mut unpacked[..g]);
                &unpacked[..g]
            }
            Bits::B2 => {
                s.unpack_i2(c, &mut unpacked[..g]);
                &unpacked[..g]
            }
        };
        let (d, m) = (s.splat(gp.scale), s.splat(gp.offset));
        for (cc, oc) in group_codes.chunks_exact(4 * l).zip(o.chunks_exact_mut(4 * l)) {
            let v = s.load_codes(cc);
            for (k, v) in v.into_iter().enumerate() {
                let y = s.add(s.mul(s.sub(v, hv), d), m);
                if STREAM {
                    s.store_stream(y, &mut oc[k * l..]);
                } else {
                    s.store(y, &mut oc[k * l..]);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inlined_f16_widening_matches_half_for_every_value() {
        let step = if cfg!(miri) { 251 } else { 1 };
        for bits in (0..=u16::MAX).step_by(step) {
            let h = f16::from_bits(bits);
            let (a, b) = (crate::params::f16_to_f32_exact(h), h.to_f32());
            if h.is_nan() {
                assert!(a.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(a.to_bits(), b.to_bits(), "{bits:#06x}");
            }
        }
    }

    #[test]
    fn inlined_params_match_the_reference() {
        let step = if cfg!(miri) { 251 } else { 1 };
        for bits in (0..=u16::MAX).step_by(step) {
            let d = f16::from_bits(bits);
            let m = f16::from_bits(bits.rotate_left(5));
            for format in [
                GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap(),
                GroupFormat::new(4, 32, Scheme::Symmetric).unwrap(),
            ] {
                let mut p = [0u8; 4];
                p[..2].copy_from_slice(&d.to_le_bytes());
                p[2..].copy_from_slice(&m.to_le_bytes());
                let r = super::super::scalar::read_params(format, &p);
                let s = read_params_inline(format, &p);
                assert_eq!(r, s, "{bits:#06x} {format:?}");
            }
        }
    }
}
