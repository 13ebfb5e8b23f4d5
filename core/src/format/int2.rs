//! INT2 packing: element `4i+k` in bits `2k..2k+1` of byte `i`.

use crate::QuantError;

/// Packs 2-bit codes four per byte (lowest element in the lowest bits). Higher bits are ignored.
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless `codes.len() == 4 * out.len()`.
pub fn pack_i2(codes: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    if codes.len() != out.len() * 4 {
        return Err(QuantError::LengthMismatch { expected: out.len() * 4, actual: codes.len() });
    }
    for (byte, quad) in out.iter_mut().zip(codes.chunks_exact(4)) {
        *byte = (quad[0] & 3) | (quad[1] & 3) << 2 | (quad[2] & 3) << 4 | quad[3] << 6;
    }
    Ok(())
}

/// Unpacks four 2-bit codes per byte.
///
/// # Errors
/// [`QuantError::LengthMismatch`] unless `out.len() == 4 * packed.len()`.
pub fn unpack_i2(packed: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    if out.len() != packed.len() * 4 {
        return Err(QuantError::LengthMismatch { expected: packed.len() * 4, actual: out.len() });
    }
    for (&byte, quad) in packed.iter().zip(out.chunks_exact_mut(4)) {
        quad[0] = byte & 3;
        quad[1] = (byte >> 2) & 3;
        quad[2] = (byte >> 4) & 3;
        quad[3] = byte >> 6;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exhaustive_round_trip_all_bytes_and_codes() {
        for b in 0..=255u8 {
            let mut codes = [0u8; 4];
            unpack_i2(&[b], &mut codes).unwrap();
            assert!(codes.iter().all(|&c| c < 4));
            let mut back = [0u8; 1];
            pack_i2(&codes, &mut back).unwrap();
            assert_eq!(back[0], b);
        }
        for i in 0..256u32 {
            let codes = [(i & 3) as u8, (i >> 2 & 3) as u8, (i >> 4 & 3) as u8, (i >> 6) as u8];
            let mut byte = [0u8];
            pack_i2(&codes, &mut byte).unwrap();
            assert_eq!(u32::from(byte[0]), i, "element 4i+k sits in bits 2k..2k+1");
            let mut out = [0u8; 4];
            unpack_i2(&byte, &mut out).unwrap();
            assert_eq!(out, codes);
        }
    }

    #[test]
    fn length_mismatch_is_error() {
        assert!(pack_i2(&[1, 2, 3], &mut [0u8; 1]).is_err());
        assert!(unpack_i2(&[1, 2], &mut [0u8; 4]).is_err());
    }
}
