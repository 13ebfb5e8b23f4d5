//! INT8 packing: one code per byte, so packing is a checked copy.

use crate::QuantError;

/// Copies 8-bit codes (one per byte).
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless the lengths are equal.
pub fn pack_i8(codes: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    if codes.len() != out.len() {
        return Err(QuantError::LengthMismatch { expected: out.len(), actual: codes.len() });
    }
    out.copy_from_slice(codes);
    Ok(())
}

/// Copies 8-bit codes (one per byte).
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless the lengths are equal.
pub fn unpack_i8(packed: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    pack_i8(packed, out)
}
