//! CRC-32 of a record, bitwise (no table, so it costs no flash on a microcontroller).

pub(super) const CRC_INIT: u32 = 0xFFFF_FFFF;

/// Continues a CRC-32 (IEEE 802.3, reflected polynomial `0xEDB88320`) over `bytes`.
/// Start with [`CRC_INIT`] and XOR the result with it. Bitwise: no table, so it costs no
/// flash on a microcontroller.
pub(super) fn crc32(mut crc: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    crc
}
