//! INT4 packing: element `2i` in the low nibble of byte `i`, `2i+1` in the high nibble.

use crate::QuantError;

/// Packs 4-bit codes two per byte (low nibble first). Bits above the fourth are ignored.
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless `codes.len() == 2 * out.len()`.
pub fn pack_i4(codes: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    if codes.len() != out.len() * 2 {
        return Err(QuantError::LengthMismatch { expected: out.len() * 2, actual: codes.len() });
    }
    for (byte, pair) in out.iter_mut().zip(codes.chunks_exact(2)) {
        *byte = (pair[0] & 0x0F) | (pair[1] << 4);
    }
    Ok(())
}

/// Unpacks two 4-bit codes per byte (low nibble first).
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless `out.len() == 2 * packed.len()`.
pub fn unpack_i4(packed: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    if out.len() != packed.len() * 2 {
        return Err(QuantError::LengthMismatch { expected: packed.len() * 2, actual: out.len() });
    }
    for (&byte, pair) in packed.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = byte & 0x0F;
        pair[1] = byte >> 4;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustive_round_trip_all_bytes_and_codes() {
        // Every byte value unpacks and repacks to itself...
        for b in 0..=255u8 {
            let mut codes = [0u8; 2];
            unpack_i4(&[b], &mut codes).unwrap();
            let mut back = [0u8; 1];
            pack_i4(&codes, &mut back).unwrap();
            assert_eq!(back[0], b);
        }
        // ...and every pair of codes packs and unpacks to itself.
        for lo in 0..16u8 {
            for hi in 0..16u8 {
                let mut byte = [0u8];
                pack_i4(&[lo, hi], &mut byte).unwrap();
                assert_eq!(byte[0], lo | hi << 4);
                let mut codes = [0u8; 2];
                unpack_i4(&byte, &mut codes).unwrap();
                assert_eq!(codes, [lo, hi]);
            }
        }
    }

    #[test]
    fn length_mismatch_is_error() {
        assert!(pack_i4(&[1, 2, 3], &mut [0u8; 1]).is_err());
        assert!(unpack_i4(&[1], &mut [0u8; 3]).is_err());
    }
}
