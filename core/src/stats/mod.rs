//! Per-group statistics: minimum, maximum, absolute maximum, sum, sum of squares.
//!
//! Min, max and absmax are exact and identical on every path. Sums are f32 and their
//! order of accumulation differs between paths: they agree with the reference to a
//! relative `1e-5` of `sum(|x|)` (resp. `sum(x^2)`).

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod generic;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod sse2;

use crate::QuantError;
use crate::input::Input;
use crate::simd::{Backend, Isa};

/// Statistics of one group.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct GroupStats {
    /// Smallest element.
    pub min: f32,
    /// Largest element.
    pub max: f32,
    /// Largest magnitude.
    pub absmax: f32,
    /// Sum of elements.
    pub sum: f32,
    /// Sum of squares.
    pub sum_sq: f32,
}

impl GroupStats {
    /// What a group holding a NaN reports.
    pub const NAN: GroupStats =
        GroupStats { min: f32::NAN, max: f32::NAN, absmax: f32::NAN, sum: f32::NAN, sum_sq: f32::NAN };
}

/// Computes the statistics of each group of `group` elements with the fastest backend.
///
/// # Errors
/// [`QuantError::InvalidGroupSize`] for a group of 0 or more than 256 elements,
/// [`QuantError::NotBlockMultiple`] if `input` is not a whole number of groups,
/// [`QuantError::LengthMismatch`] if `out` does not hold one entry per group.
pub fn group_stats(input: Input<'_>, group: usize, out: &mut [GroupStats]) -> Result<(), QuantError> {
    group_stats_with(Backend::detect(), input, group, out)
}

/// [`group_stats`] with the scalar reference.
///
/// # Errors
/// As [`group_stats`].
pub fn group_stats_ref(input: Input<'_>, group: usize, out: &mut [GroupStats]) -> Result<(), QuantError> {
    group_stats_with(Backend::Scalar, input, group, out)
}

/// [`group_stats`] with a chosen backend.
///
/// # Errors
/// As [`group_stats`], plus [`QuantError::BackendUnavailable`].
pub fn group_stats_with(
    backend: Backend,
    input: Input<'_>,
    group: usize,
    out: &mut [GroupStats],
) -> Result<(), QuantError> {
    if group == 0 || group > crate::format::GroupSize::MAX {
        return Err(QuantError::InvalidGroupSize(group));
    }
    if !input.len().is_multiple_of(group) {
        return Err(QuantError::NotBlockMultiple { len: input.len(), block: group });
    }
    if out.len() != input.len() / group {
        return Err(QuantError::LengthMismatch { expected: input.len() / group, actual: out.len() });
    }
    let isa = backend.isa().ok_or(QuantError::BackendUnavailable)?;
    match isa {
        Isa::Scalar => scalar::group_stats_ref(input, group, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2(t) => t.group_stats(input, group, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => t.group_stats(input, group, out),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(t) => t.group_stats(input, group, out),
    }
    Ok(())
}
