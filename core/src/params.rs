//! Group parameters: from a group's range to its f16 scale and offset.
//!
//! Parameters depend only on the group's minimum and maximum, so every SIMD path
//! computes the two extremes and then calls the same scalar code here: that is what
//! makes the packed output identical on every CPU path.
//!
//! Rounding is directed so that every element of the group stays inside the code
//! range after the parameters are rounded to f16: the offset is rounded down and the
//! scale up. The dequantization error of an element is then at most `scale / 2`
//! (plus f32 rounding of the final multiply-add).

use half::f16;

use crate::format::{GroupFormat, Scheme};

/// Largest finite f16, the limit of what group parameters can represent.
pub const F16_MAX: f32 = 65504.0;

/// A group's decoded parameters as f32, with the reciprocal used by the quantizer.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupParams {
    /// Scale `d` (as stored, f16 widened to f32).
    pub scale: f32,
    /// Offset `m` (asymmetric) or 0.
    pub offset: f32,
    /// `1 / scale`, or 0 when the scale is 0 (a constant group).
    pub inv_scale: f32,
}

/// Why a group cannot be quantized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupFault {
    /// The group holds a NaN or an infinity.
    NonFinite,
    /// The group holds a finite value with `|x| > 65504`.
    OutOfRange,
}

/// Smallest f16 that is `>= x` (`x` finite and `<= 65504`).
#[inline(always)]
pub fn f16_round_up(x: f32) -> f16 {
    f16::from_bits(f16_bits_directed(x, true))
}

/// Largest f16 that is `<= x` (`x` finite and `>= -65504`).
#[inline(always)]
pub fn f16_round_down(x: f32) -> f16 {
    f16::from_bits(f16_bits_directed(x, false))
}

/// f32 bits of 2^-14, the smallest normal f16.
const F16_MIN_NORMAL_BITS: u32 = 0x3880_0000;

/// Directed rounding of a finite f32 to f16 bits, in integer arithmetic.
///
/// This runs once or twice per group, so it is on the quantizer's hot path: a
/// round-to-nearest conversion followed by a correction (the obvious way) cost about a
/// third of INT4 quantize time through `half`'s software conversion. Here the magnitude
/// is truncated onto the f16 grid and bumped one step away from zero when bits were
/// dropped; rounding up a positive value, or down a negative one, takes the bump.
/// The tests check it against the conversion-and-correct reference.
#[inline(always)]
fn f16_bits_directed(x: f32, up: bool) -> u16 {
    let b = x.to_bits();
    let sign = b >> 31;
    let mag = b & 0x7fff_ffff;
    let (trunc, inexact) = if mag >= F16_MIN_NORMAL_BITS {
        // Normal: rebias the exponent (127 -> 15) and drop 13 mantissa bits. A carry
        // out of the mantissa on the bump correctly moves to the next binade.
        ((mag - (112 << 23)) >> 13, mag & 0x1fff != 0)
    } else {
        // Subnormal f16 (or zero): a multiple of 2^-24, below 1024 units; the product
        // is exact and the float-to-int conversion truncates.
        let units = f32::from_bits(mag) * 16_777_216.0;
        let t = units as u32;
        (t, (t as f32) < units)
    };
    // Away from zero when the rounding direction and the sign disagree about it.
    let away = up != (sign == 1);
    let m = trunc + u32::from(away && inexact);
    ((sign << 15) | m) as u16
}

/// Exact f16 to f32 widening, inlined: the same value as `half::f16::to_f32` for every
/// input (checked exhaustively in the kernel tests), without `half`'s software call.
#[inline(always)]
pub fn f16_to_f32_exact(h: f16) -> f32 {
    let b = h.to_bits();
    let em = u32::from(b & 0x7fff);
    let sign = u32::from(b & 0x8000) << 16;
    if em >= 0x7c00 {
        f32::from_bits(sign | 0x7f80_0000 | ((em & 0x3ff) << 13))
    } else if em >= 0x400 {
        f32::from_bits(sign | ((em << 13) + (112 << 23)))
    } else {
        // Subnormal or zero: m * 2^-24, exact.
        let v = em as f32 * (1.0 / 16_777_216.0);
        if sign != 0 { -v } else { v }
    }
}

/// Classifies a group by its extremes and NaN flag (the rejection policy).
#[inline(always)]
pub fn check_range(min: f32, max: f32, has_nan: bool) -> Result<(), GroupFault> {
    if has_nan || min == f32::NEG_INFINITY || max == f32::INFINITY {
        Err(GroupFault::NonFinite)
    } else if min < -F16_MAX || max > F16_MAX {
        Err(GroupFault::OutOfRange)
    } else {
        Ok(())
    }
}

/// Computes the stored `(scale, offset)` for a group whose extremes passed [`check_range`].
///
/// The offset is `0` for the symmetric scheme. `-0.0` is canonicalised to `+0.0` so that
/// SIMD min/max (which may return either zero) store the same bits.
#[inline(always)]
pub fn params_from_range(format: GroupFormat, min: f32, max: f32) -> (f16, f16) {
    let qmax = format.bits.max_code() as f32;
    match format.scheme {
        Scheme::Asymmetric => {
            let m = f16_round_down(min + 0.0);
            let range = max - f16_to_f32_exact(m);
            let d = f16_round_up(range / qmax + 0.0);
            (d, canonical_zero(m))
        }
        Scheme::Symmetric => {
            let half_range = (1u32 << (format.bits.get() - 1)) as f32;
            // Codes span [-h, h-1]: the scale must fit both extremes.
            let neg = -min / half_range;
            let pos = max / (half_range - 1.0);
            let d = if neg > pos { neg } else { pos };
            let d = if d > 0.0 { d } else { 0.0 };
            (f16_round_up(d), f16::ZERO)
        }
    }
}

#[inline(always)]
fn canonical_zero(h: f16) -> f16 {
    if h.to_bits() == 0x8000 { f16::ZERO } else { h }
}

impl GroupParams {
    /// Widens stored parameters for quantizing or dequantizing.
    #[inline(always)]
    pub fn from_stored(scale: f16, offset: f16) -> Self {
        let scale = f16_to_f32_exact(scale);
        let inv_scale = if scale == 0.0 { 0.0 } else { 1.0 / scale };
        GroupParams { scale, offset: f16_to_f32_exact(offset), inv_scale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::GroupFormat;

    #[test]
    fn directed_rounding() {
        for &x in &[0.1f32, 1.0 / 3.0, 1000.3, 6.0e-8, 1.0e-9, 65504.0, 0.0] {
            assert!(f16_round_up(x).to_f32() >= x, "{x}");
            assert!(f16_round_down(x).to_f32() <= x, "{x}");
            assert!(f16_round_up(-x).to_f32() >= -x, "{x}");
            assert!(f16_round_down(-x).to_f32() <= -x, "{x}");
        }
        assert_eq!(f16_round_up(1.0).to_f32(), 1.0);
    }

    /// The obvious directed rounding: round to nearest through `half`, then step one
    /// f16 towards the wanted side if that went the wrong way.
    fn reference_directed(x: f32, up: bool) -> f16 {
        let h = f16::from_f32(x);
        let wrong = if up { h.to_f32() < x } else { h.to_f32() > x };
        if !wrong {
            return h;
        }
        let b = h.to_bits();
        // Moving away from zero adds one to the magnitude bits; towards zero subtracts.
        let away = up == (b & 0x8000 == 0);
        let r = if b == 0x8000 && up {
            1
        } else if away {
            b + 1
        } else {
            b - 1
        };
        f16::from_bits(r)
    }

    #[test]
    fn integer_directed_rounding_matches_the_reference() {
        // Every f32 bit pattern whose value lies in [-65504, 65504], strided; plus the
        // neighbours of every f16 value, where the rounding decisions are made.
        let step = if cfg!(miri) { 1_000_003 } else { 97 };
        let check = |x: f32| {
            if x.is_finite() && x.abs() <= F16_MAX {
                for up in [false, true] {
                    let (a, r) = (f16_bits_directed(x, up), reference_directed(x, up).to_bits());
                    assert_eq!(a, r, "{x:e} ({:#010x}) up={up}", x.to_bits());
                }
            }
        };
        for b in (0..=u32::MAX).step_by(step) {
            check(f32::from_bits(b));
        }
        let hstep = if cfg!(miri) { 257 } else { 1 };
        for h in (0..=u16::MAX).step_by(hstep) {
            let v = f16::from_bits(h).to_f32().to_bits();
            for d in [-2i32, -1, 0, 1, 2, 4096, -4096] {
                check(f32::from_bits(v.wrapping_add_signed(d)));
            }
        }
    }

    #[test]
    fn range_policy() {
        assert_eq!(check_range(-1.0, 1.0, false), Ok(()));
        assert_eq!(check_range(-1.0, 1.0, true), Err(GroupFault::NonFinite));
        assert_eq!(check_range(f32::NEG_INFINITY, 1.0, false), Err(GroupFault::NonFinite));
        assert_eq!(check_range(-1.0, 70000.0, false), Err(GroupFault::OutOfRange));
        assert_eq!(check_range(-65504.0, 65504.0, false), Ok(()));
    }

    #[test]
    fn symmetric_scale_covers_both_extremes() {
        let f = GroupFormat::new(2, 32, Scheme::Symmetric).unwrap();
        let (d, _) = params_from_range(f, -1.0, 1.0);
        // codes -2..1: +1.0 needs d >= 1.0
        assert!(d.to_f32() >= 1.0);
        let (d, _) = params_from_range(f, -2.0, 0.5);
        assert!(d.to_f32() >= 1.0 && d.to_f32() * 1.0 >= 0.5);
    }

    #[test]
    fn zero_is_canonical() {
        let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
        let (d, m) = params_from_range(f, -0.0, -0.0);
        assert_eq!(m.to_bits(), 0);
        assert_eq!(d.to_bits(), 0);
    }
}
