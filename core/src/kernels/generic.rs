//! Quantize+pack and unpack+dequantize written once over the [`Simd`] trait.
//!
//! Per group: widen f16/bf16 into a stack buffer (f32 input is read in place), one
//! pass for the minimum, maximum and a non-finite hint, the scalar parameter rules of
//! [`crate::params`] (shared with every path, so parameters are identical), then one
//! pass that computes the codes with the reference arithmetic and packs them. The
//! group is in L1 for the second pass, so the input is read from memory once.

use super::scalar::{min_max_ref, read_params, write_params};
use crate::format::{Bits, GroupFormat, GroupSize, Scheme};
use crate::input::Input;
use crate::params::{GroupFault, GroupParams, check_range, params_from_range};
use crate::simd::vector::Simd;

/// Widens 16-bit floats into `out` (same length): whole vectors with `load`, the
/// remainder (groups that are not a multiple of the lane count) with `scalar`.
#[inline(always)]
fn widen<S: Simd>(
    s: S,
    x: &[u16],
    out: &mut [f32],
    load: impl Fn(S, &[u16]) -> S::V,
    scalar: impl Fn(u16) -> f32,
) {
    let mut xs = x.chunks_exact(S::LANES);
    let mut os = out.chunks_exact_mut(S::LANES);
    for (a, o) in (&mut xs).zip(&mut os) {
        s.store(load(s, a), o);
    }
    for (a, o) in xs.remainder().iter().zip(os.into_remainder()) {
        *o = scalar(*a);
    }
}

/// Calls `f(index, group)` for every whole group of `g` elements, as f32.
#[inline(always)]
pub(crate) fn for_each_group<S: Simd, E>(
    s: S,
    input: Input<'_>,
    g: usize,
    mut f: impl FnMut(usize, &[f32]) -> Result<(), E>,
) -> Result<(), E> {
    let mut buf = [0f32; GroupSize::MAX];
    match input {
        Input::F32(x) => {
            for (i, grp) in x.chunks_exact(g).enumerate() {
                f(i, grp)?;
            }
        }
        Input::F16(x) => {
            let bits: &[u16] = bytemuck::cast_slice(x);
            for (i, grp) in bits.chunks_exact(g).enumerate() {
                widen(s, grp, &mut buf[..g], S::load_f16, |b| half::f16::from_bits(b).to_f32());
                f(i, &buf[..g])?;
            }
        }
        Input::Bf16(x) => {
            let bits: &[u16] = bytemuck::cast_slice(x);
            for (i, grp) in bits.chunks_exact(g).enumerate() {
                widen(s, grp, &mut buf[..g], S::load_bf16, |b| f32::from_bits(u32::from(b) << 16));
                f(i, &buf[..g])?;
            }
        }
    }
    Ok(())
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
    let g = format.group_len();
    let l4 = 4 * S::LANES;
    debug_assert!(g.is_multiple_of(l4));
    let mut unpacked = [0u8; GroupSize::MAX];
    let mut code_chunks = codes.chunks_exact_mut(format.codes_len());
    let mut param_chunks = params.chunks_exact_mut(format.params_len());
    let qmax = format.bits.max_code() as f32;
    let (lo, hi, bias) = match format.scheme {
        Scheme::Asymmetric => (0.0, qmax, 0),
        Scheme::Symmetric => {
            let h = 1i32 << (format.bits.get() - 1);
            (-h as f32, (h - 1) as f32, h)
        }
    };
    let (lo, hi) = (s.splat(lo), s.splat(hi));
    for_each_group(s, input, g, |i, x| {
        let (c, p) = match (code_chunks.next(), param_chunks.next()) {
            (Some(c), Some(p)) => (c, p),
            _ => return Ok(()),
        };
        let (mut min, mut max, suspect) = min_max(s, x);
        let mut nan = false;
        if suspect {
            (min, max, nan) = min_max_ref(x);
        }
        check_range(min, max, nan).map_err(|fault| (i, fault))?;
        let (d, m) = params_from_range(format, min, max);
        let gp = GroupParams::from_stored(d, m);
        // Symmetric: `offset` is +0 and `x - 0 == x` exactly, so one formula serves both.
        let (off, inv) = (s.splat(gp.offset), s.splat(gp.inv_scale));
        let dst: &mut [u8] = if format.bits == Bits::B8 { c } else { &mut unpacked[..g] };
        for (xc, cc) in x.chunks_exact(l4).zip(dst.chunks_exact_mut(l4)) {
            let l = S::LANES;
            let t = [0, 1, 2, 3].map(|k| {
                let v = s.mul(s.sub(s.load(&xc[k * l..]), off), inv);
                s.min(s.max(v, lo), hi)
            });
            s.store_codes(t, bias, cc);
        }
        match format.bits {
            Bits::B8 => {}
            Bits::B4 => s.pack_i4(&unpacked[..g], c),
            Bits::B2 => s.pack_i2(&unpacked[..g], c),
        }
        write_params(format, d, m, p);
        Ok(())
    })
}

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
        let gp = read_params(format, p).ok_or(i)?;
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
                s.store(s.add(s.mul(s.sub(v, hv), d), m), &mut oc[k * l..]);
            }
        }
    }
    Ok(())
}
