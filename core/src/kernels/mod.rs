//! Quantize+pack and unpack+dequantize over whole buffers of groups.
//!
//! The public functions validate lengths, pick a backend once for the whole buffer and
//! call its entry point. `*_ref` names the scalar reference.

#[cfg(target_arch = "x86_64")]
mod avx2;
// The SIMD algorithms exist only where a SIMD backend does.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
pub(crate) mod generic;
#[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
mod neon;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
mod sse2;

use crate::QuantError;
use crate::format::GroupFormat;
use crate::input::Input;
use crate::params::GroupFault;
use crate::simd::{Backend, Isa};

fn check_quantize_lengths(
    format: GroupFormat,
    len: usize,
    codes: &[u8],
    params: &[u8],
) -> Result<usize, QuantError> {
    let g = format.group_len();
    if !len.is_multiple_of(g) {
        return Err(QuantError::NotBlockMultiple { len, block: g });
    }
    let groups = len / g;
    if codes.len() != groups * format.codes_len() {
        return Err(QuantError::LengthMismatch {
            expected: groups * format.codes_len(),
            actual: codes.len(),
        });
    }
    if params.len() != groups * format.params_len() {
        return Err(QuantError::LengthMismatch {
            expected: groups * format.params_len(),
            actual: params.len(),
        });
    }
    Ok(groups)
}

/// Turns a rejected group into an error naming its first offending element.
pub(crate) fn fault_to_error(
    input: Input<'_>,
    group_len: usize,
    group: usize,
    fault: GroupFault,
    first_element: u64,
) -> QuantError {
    let start = group * group_len;
    let bad = (start..start + group_len).find(|&i| {
        let v = input.get(i);
        match fault {
            GroupFault::NonFinite => !v.is_finite(),
            GroupFault::OutOfRange => v.abs() > crate::params::F16_MAX,
        }
    });
    let element = first_element + bad.unwrap_or(start) as u64;
    match fault {
        GroupFault::NonFinite => QuantError::NonFinite { element },
        GroupFault::OutOfRange => QuantError::OutOfRange { element },
    }
}

/// Quantizes `input` (a whole number of groups) into packed codes and parameters,
/// with the fastest backend of this CPU.
///
/// `codes` receives `groups * format.codes_len()` bytes, `params`
/// `groups * format.params_len()` bytes (layout in [`crate::format`]).
///
/// # Errors
/// Length errors, and [`QuantError::NonFinite`] / [`QuantError::OutOfRange`] naming
/// the first offending element (the NaN/Inf policy: such input is rejected). On error
/// the content of `codes` and `params` is unspecified.
pub fn quantize(
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    quantize_with(Backend::detect(), format, input, codes, params)
}

/// [`quantize`] with the scalar reference.
///
/// # Errors
/// As [`quantize`].
pub fn quantize_ref(
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    quantize_with(Backend::Scalar, format, input, codes, params)
}

/// [`quantize`] with a chosen backend.
///
/// # Errors
/// As [`quantize`], plus [`QuantError::BackendUnavailable`].
pub fn quantize_with(
    backend: Backend,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    check_quantize_lengths(format, input.len(), codes, params)?;
    let isa = backend.isa().ok_or(QuantError::BackendUnavailable)?;
    let result = match isa {
        Isa::Scalar => scalar::quantize_ref(format, input, codes, params),
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2(t) => t.quantize(format, input, codes, params),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => t.quantize(format, input, codes, params),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(t) => t.quantize(format, input, codes, params),
    };
    result.map_err(|(group, fault)| fault_to_error(input, format.group_len(), group, fault, 0))
}

/// Dequantizes packed groups into f32, with the fastest backend of this CPU.
///
/// # Errors
/// Length errors, and [`QuantError::Corrupt`] if a group's parameters are not finite.
pub fn dequantize(
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    dequantize_with(Backend::detect(), format, codes, params, out)
}

/// [`dequantize`] with the scalar reference.
///
/// # Errors
/// As [`dequantize`].
pub fn dequantize_ref(
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    dequantize_with(Backend::Scalar, format, codes, params, out)
}

/// [`dequantize`] with a chosen backend.
///
/// # Errors
/// As [`dequantize`], plus [`QuantError::BackendUnavailable`].
pub fn dequantize_with(
    backend: Backend,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    check_quantize_lengths(format, out.len(), codes, params)?;
    let isa = backend.isa().ok_or(QuantError::BackendUnavailable)?;
    let result = match isa {
        Isa::Scalar => scalar::dequantize_ref(format, codes, params, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2(t) => t.dequantize(format, codes, params, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2(t) => t.dequantize(format, codes, params, out),
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(t) => t.dequantize(format, codes, params, out),
    };
    result.map_err(|_| QuantError::Corrupt)
}
