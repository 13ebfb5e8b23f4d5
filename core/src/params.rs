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
pub fn f16_round_up(x: f32) -> f16 {
    let h = f16::from_f32(x);
    if h.to_f32() < x { next_up(h) } else { h }
}

/// Largest f16 that is `<= x` (`x` finite and `>= -65504`).
pub fn f16_round_down(x: f32) -> f16 {
    let h = f16::from_f32(x);
    if h.to_f32() > x { next_down(h) } else { h }
}

fn next_up(h: f16) -> f16 {
    let b = h.to_bits();
    let r = if b == 0x8000 {
        1 // -0 -> smallest positive subnormal
    } else if b & 0x8000 == 0 {
        b + 1
    } else {
        b - 1
    };
    f16::from_bits(r)
}

fn next_down(h: f16) -> f16 {
    -next_up(-h)
}

/// Classifies a group by its extremes and NaN flag (the rejection policy).
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
pub fn params_from_range(format: GroupFormat, min: f32, max: f32) -> (f16, f16) {
    let qmax = format.bits.max_code() as f32;
    match format.scheme {
        Scheme::Asymmetric => {
            let m = f16_round_down(min + 0.0);
            let range = max - m.to_f32();
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

fn canonical_zero(h: f16) -> f16 {
    if h.to_bits() == 0x8000 { f16::ZERO } else { h }
}

impl GroupParams {
    /// Widens stored parameters for quantizing or dequantizing.
    pub fn from_stored(scale: f16, offset: f16) -> Self {
        let scale = scale.to_f32();
        let inv_scale = if scale == 0.0 { 0.0 } else { 1.0 / scale };
        GroupParams { scale, offset: offset.to_f32(), inv_scale }
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
