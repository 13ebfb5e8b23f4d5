//! Scalar reference kernels: the oracle every SIMD path is tested against, and the
//! fallback on targets without SIMD.
//!
//! The reference fixes the arithmetic that every path must reproduce bit for bit:
//!
//! - quantize, asymmetric: `t = (x - m) * inv_d`, clamp to `[0, 2^b - 1]`, round to
//!   nearest with ties to even;
//! - quantize, symmetric: `t = x * inv_d`, clamp to `[-2^(b-1), 2^(b-1) - 1]`, round
//!   to nearest even, add `2^(b-1)`;
//! - dequantize: `c * d + m` (asymmetric) or `(c - 2^(b-1)) * d` (symmetric), a
//!   multiply then an add, never fused.

use half::f16;

use crate::format::{GroupFormat, Scheme};
use crate::input::Input;
use crate::params::{GroupFault, GroupParams, check_range, params_from_range};

/// Minimum, maximum and NaN flag of a group.
#[inline]
pub(crate) fn min_max_ref(x: &[f32]) -> (f32, f32, bool) {
    let mut min = f32::INFINITY;
    let mut max = f32::NEG_INFINITY;
    let mut nan = false;
    for &v in x {
        nan |= v.is_nan();
        if v < min {
            min = v;
        }
        if v > max {
            max = v;
        }
    }
    (min, max, nan)
}

/// Rounds to the nearest integer, ties to even (the SIMD conversion instructions'
/// default mode). `t` is already clamped to a small range.
#[inline]
pub(crate) fn round_ties_even(t: f32) -> f32 {
    libm::rintf(t)
}

/// Quantizes one group whose values are in `x` (f32) into one code per byte.
#[inline]
pub(crate) fn quantize_codes_ref(format: GroupFormat, p: &GroupParams, x: &[f32], codes: &mut [u8]) {
    let qmax = format.bits.max_code() as f32;
    match format.scheme {
        Scheme::Asymmetric => {
            for (c, &v) in codes.iter_mut().zip(x) {
                let t = (v - p.offset) * p.inv_scale;
                *c = round_ties_even(t.clamp(0.0, qmax)) as u8;
            }
        }
        Scheme::Symmetric => {
            let h = (1u32 << (format.bits.get() - 1)) as f32;
            for (c, &v) in codes.iter_mut().zip(x) {
                let t = v * p.inv_scale;
                *c = (round_ties_even(t.clamp(-h, h - 1.0)) + h) as u8;
            }
        }
    }
}

/// Writes a group's parameters as little-endian f16 (scale, then offset if asymmetric).
#[inline]
pub(crate) fn write_params(format: GroupFormat, d: f16, m: f16, out: &mut [u8]) {
    out[..2].copy_from_slice(&d.to_le_bytes());
    if format.scheme == Scheme::Asymmetric {
        out[2..4].copy_from_slice(&m.to_le_bytes());
    }
}

/// Reads a group's parameters; `None` if they are not finite.
#[inline]
pub(crate) fn read_params(format: GroupFormat, bytes: &[u8]) -> Option<GroupParams> {
    let d = f16::from_le_bytes([bytes[0], bytes[1]]);
    let m = match format.scheme {
        Scheme::Asymmetric => f16::from_le_bytes([bytes[2], bytes[3]]),
        Scheme::Symmetric => f16::ZERO,
    };
    if !d.is_finite() || !m.is_finite() {
        return None;
    }
    Some(GroupParams::from_stored(d, m))
}

/// Quantizes whole groups of `input` into packed `codes` and `params`.
///
/// Lengths are validated by the caller. On a rejected group returns its index.
pub(crate) fn quantize_ref(
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), (usize, GroupFault)> {
    let g = format.group_len();
    let mut buf = [0f32; crate::format::GroupSize::MAX];
    let mut unpacked = [0u8; crate::format::GroupSize::MAX];
    let groups = input.len() / g;
    let code_chunks = codes.chunks_exact_mut(format.codes_len());
    let param_chunks = params.chunks_exact_mut(format.params_len());
    for ((i, c), p) in (0..groups).zip(code_chunks).zip(param_chunks) {
        let x = &mut buf[..g];
        input.slice(i * g, (i + 1) * g).to_f32(x);
        let (min, max, nan) = min_max_ref(x);
        check_range(min, max, nan).map_err(|fault| (i, fault))?;
        let (d, m) = params_from_range(format, min, max);
        let gp = GroupParams::from_stored(d, m);
        quantize_codes_ref(format, &gp, x, &mut unpacked[..g]);
        format.bits.pack(&unpacked[..g], c).expect("lengths fixed by the format");
        write_params(format, d, m, p);
    }
    Ok(())
}

/// Dequantizes whole groups into `out` (lengths validated by the caller).
///
/// Returns the index of the first group whose parameters are not finite.
pub(crate) fn dequantize_ref(
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), usize> {
    let g = format.group_len();
    let mut unpacked = [0u8; crate::format::GroupSize::MAX];
    let h = match format.scheme {
        Scheme::Asymmetric => 0,
        Scheme::Symmetric => 1i32 << (format.bits.get() - 1),
    };
    for (i, ((c, p), o)) in codes
        .chunks_exact(format.codes_len())
        .zip(params.chunks_exact(format.params_len()))
        .zip(out.chunks_exact_mut(g))
        .enumerate()
    {
        let gp = read_params(format, p).ok_or(i)?;
        format.bits.unpack(c, &mut unpacked[..g]).expect("lengths fixed by the format");
        for (y, &q) in o.iter_mut().zip(&unpacked[..g]) {
            *y = (i32::from(q) - h) as f32 * gp.scale + gp.offset;
        }
    }
    Ok(())
}
