//! The test fixture both sides agree on, shared with `build.rs` (which includes this
//! file): deterministic weights and the FNV-1a hash used to compare results.
//!
//! The firmware holds the weights in flash (`static`, evaluated at compile time); the
//! build script quantizes the very same values on the host.

/// Weights in the flash buffer.
pub const LEN: usize = 4096;

/// Weight-like data: uniform noise whose amplitude changes from group to group (so
/// groups get different scales), with a larger value every 97 elements.
pub const fn weights() -> [f32; LEN] {
    let mut w = [0f32; LEN];
    let mut s: u32 = 0x2545_F491;
    let mut i = 0;
    while i < LEN {
        s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let u = (s >> 8) as f32 / 16_777_216.0 - 0.5;
        let amp = 0.01 + 0.02 * ((i / 32) % 7) as f32;
        let mut v = u * amp;
        if i % 97 == 0 {
            v = v * 4.0 + 0.03;
        }
        w[i] = v;
        i += 1;
    }
    w
}

/// FNV-1a offset basis.
pub const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// Continues an FNV-1a 64 hash over bytes.
pub fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Continues an FNV-1a 64 hash over the bit patterns of `values` (little-endian), so
/// two sides agree only if every value is bit-identical.
pub fn fnv1a_f32(mut h: u64, values: &[f32]) -> u64 {
    for v in values {
        h = fnv1a(h, &v.to_bits().to_le_bytes());
    }
    h
}
