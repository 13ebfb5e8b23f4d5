//! Little-endian bit streams of `k`-bit values (`1 <= k <= 8`), used for the
//! quantized sub-group scales and minimums.
//!
//! Value `j` occupies bits `j*k .. j*k + k` of the stream, counted from bit 0 of
//! byte 0 (least significant first); the unused high bits of the last byte are zero.
//! For `k` = 2, 4 and 8 this is exactly the code layout of
//! [`pack_i2`](crate::format::pack_i2), [`pack_i4`](crate::format::pack_i4) and
//! [`pack_i8`](crate::format::pack_i8); a 6-bit stream packs four values into three
//! bytes.

/// Bytes needed for `n` values of `k` bits.
pub const fn packed_len(n: usize, k: u32) -> usize {
    (n * k as usize).div_ceil(8)
}

/// Packs the low `k` bits of each value; `out` must be [`packed_len`] bytes long.
pub(crate) fn pack_bits(values: &[u8], k: u32, out: &mut [u8]) {
    debug_assert_eq!(out.len(), packed_len(values.len(), k));
    out.fill(0);
    let mask = ((1u32 << k) - 1) as u16;
    for (j, &v) in values.iter().enumerate() {
        let bit = j * k as usize;
        let word = (u16::from(v) & mask) << (bit % 8);
        out[bit / 8] |= word as u8;
        if bit % 8 + k as usize > 8 {
            out[bit / 8 + 1] |= (word >> 8) as u8;
        }
    }
}

/// Unpacks `out.len()` values of `k` bits from `packed` ([`packed_len`] bytes).
pub(crate) fn unpack_bits(packed: &[u8], k: u32, out: &mut [u8]) {
    debug_assert_eq!(packed.len(), packed_len(out.len(), k));
    let mask = ((1u32 << k) - 1) as u16;
    for (j, o) in out.iter_mut().enumerate() {
        let bit = j * k as usize;
        let lo = u16::from(packed[bit / 8]);
        let hi = if bit % 8 + k as usize > 8 { u16::from(packed[bit / 8 + 1]) } else { 0 };
        *o = (((lo | hi << 8) >> (bit % 8)) & mask) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{pack_i2, pack_i4, pack_i8};

    #[test]
    fn round_trip_every_width() {
        for k in 1..=8u32 {
            for n in [1usize, 7, 8, 16, 32] {
                let v: std::vec::Vec<u8> = (0..n).map(|j| ((j * 37 + 11) % (1 << k)) as u8).collect();
                let mut p = std::vec![0xAAu8; packed_len(n, k)];
                pack_bits(&v, k, &mut p);
                let mut back = std::vec![0u8; n];
                unpack_bits(&p, k, &mut back);
                assert_eq!(back, v, "k={k} n={n}");
            }
        }
    }

    #[test]
    fn matches_the_code_packers() {
        let v: std::vec::Vec<u8> = (0..32u8).map(|j| j.wrapping_mul(29) ^ 0x5A).collect();
        let masked = |k: u32| v.iter().map(|&x| x & ((1u16 << k) - 1) as u8).collect::<std::vec::Vec<u8>>();
        let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
        pack_bits(&masked(2), 2, &mut a);
        pack_i2(&masked(2), &mut b).unwrap();
        assert_eq!(a, b);
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        pack_bits(&masked(4), 4, &mut a);
        pack_i4(&masked(4), &mut b).unwrap();
        assert_eq!(a, b);
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        pack_bits(&v, 8, &mut a);
        pack_i8(&v, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn six_bits_layout() {
        let mut p = [0u8; 3];
        pack_bits(&[0x3F, 0, 0x15, 0x2A], 6, &mut p);
        // bits: 111111 000000 010101 101010 (LSB first)
        assert_eq!(p, [0x3F, 0x50, 0xA9]);
    }
}
