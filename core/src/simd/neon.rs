//! NEON (the aarch64 baseline): [`Simd`] for `float32x4_t`.
//!
//! f16 is widened with the same integer bit tricks as SSE2 (the f16 vector types of
//! `core::arch` are not stable yet); the packers use NEON's structure loads and stores
//! (`vld2`/`vst2`, `vld4`/`vst4`), which deinterleave and interleave bytes directly.

use core::arch::aarch64::*;

use super::vector::Simd;

/// Capability token for NEON, which is part of the aarch64 baseline.
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    /// The token (NEON is enabled at compile time on this target).
    #[inline]
    pub fn new() -> Option<Self> {
        Some(Neon(()))
    }
}

/// Widens 4 f16 bit patterns (low halves of the 32-bit lanes) to f32; see
/// `simd::sse2::f16_bits_to_f32` for the method.
#[inline(always)]
fn f16_bits_to_f32(h: uint32x4_t) -> float32x4_t {
    let em = vandq_u32(h, vdupq_n_u32(0x7fff));
    let sign = vshlq_n_u32::<16>(vandq_u32(h, vdupq_n_u32(0x8000)));
    let shifted = vshlq_n_u32::<13>(em);
    let exp = vandq_u32(shifted, vdupq_n_u32(0x0f80_0000));
    let rebias = vdupq_n_u32(112 << 23);
    let normal = vaddq_u32(shifted, rebias);
    let inf_nan = vceqq_u32(exp, vdupq_n_u32(0x0f80_0000));
    let normal = vaddq_u32(normal, vandq_u32(inf_nan, rebias));
    let sub = vsubq_f32(
        vreinterpretq_f32_u32(vaddq_u32(normal, vdupq_n_u32(1 << 23))),
        vreinterpretq_f32_u32(vdupq_n_u32(113 << 23)),
    );
    let is_sub = vceqq_u32(exp, vdupq_n_u32(0));
    let v = vbslq_u32(is_sub, vreinterpretq_u32_f32(sub), normal);
    vreinterpretq_f32_u32(vorrq_u32(v, sign))
}

#[inline(always)]
fn load4_u16(x: &[u16]) -> uint16x4_t {
    let x = &x[..4];
    // SAFETY: `x` holds 4 u16 values; `vld1` needs element alignment only, which a `&[u16]` has.
    unsafe { vld1_u16(x.as_ptr()) }
}

impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;

    #[inline(always)]
    fn splat(self, x: f32) -> float32x4_t {
        vdupq_n_f32(x)
    }

    #[inline(always)]
    fn load(self, x: &[f32]) -> float32x4_t {
        let x = &x[..4];
        // SAFETY: `x` holds 4 floats, aligned as f32.
        unsafe { vld1q_f32(x.as_ptr()) }
    }

    #[inline(always)]
    fn store(self, v: float32x4_t, out: &mut [f32]) {
        let out = &mut out[..4];
        // SAFETY: `out` holds 4 floats, aligned as f32.
        unsafe { vst1q_f32(out.as_mut_ptr(), v) }
    }

    #[inline(always)]
    fn load_f16(self, x: &[u16]) -> float32x4_t {
        f16_bits_to_f32(vmovl_u16(load4_u16(x)))
    }

    #[inline(always)]
    fn load_bf16(self, x: &[u16]) -> float32x4_t {
        vreinterpretq_f32_u32(vshll_n_u16::<16>(load4_u16(x)))
    }

    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vminq_f32(a, b)
    }

    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vmaxq_f32(a, b)
    }

    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vaddq_f32(a, b)
    }

    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vsubq_f32(a, b)
    }

    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        vmulq_f32(a, b)
    }

    #[inline(always)]
    fn reduce_min(self, v: float32x4_t) -> f32 {
        vminvq_f32(v)
    }

    #[inline(always)]
    fn reduce_max(self, v: float32x4_t) -> f32 {
        vmaxvq_f32(v)
    }

    #[inline(always)]
    fn reduce_add(self, v: float32x4_t) -> f32 {
        vaddvq_f32(v)
    }

    #[inline(always)]
    fn store_codes(self, t: [float32x4_t; 4], bias: i32, out: &mut [u8]) {
        let out = &mut out[..16];
        // vcvtn: round to nearest, ties to even, whatever the FPCR mode.
        let b = vdupq_n_s32(bias);
        let c = t.map(|v| vaddq_s32(vcvtnq_s32_f32(v), b));
        let lo = vcombine_s16(vqmovn_s32(c[0]), vqmovn_s32(c[1]));
        let hi = vcombine_s16(vqmovn_s32(c[2]), vqmovn_s32(c[3]));
        let bytes = vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi));
        // SAFETY: `out` holds 16 bytes.
        unsafe { vst1q_u8(out.as_mut_ptr(), bytes) }
    }

    #[inline(always)]
    fn load_codes(self, codes: &[u8]) -> [float32x4_t; 4] {
        let codes = &codes[..16];
        // SAFETY: `codes` holds 16 bytes.
        let b = unsafe { vld1q_u8(codes.as_ptr()) };
        let lo = vmovl_u8(vget_low_u8(b));
        let hi = vmovl_high_u8(b);
        [
            vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))),
            vcvtq_f32_u32(vmovl_high_u16(lo)),
            vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))),
            vcvtq_f32_u32(vmovl_high_u16(hi)),
        ]
    }

    #[inline(always)]
    fn pack_i4(self, codes: &[u8], out: &mut [u8]) {
        for (c, o) in codes.chunks_exact(32).zip(out.chunks_exact_mut(16)) {
            // SAFETY: `c` holds 32 bytes (vld2q reads 32), `o` 16 (vst1q writes 16).
            unsafe {
                let v = vld2q_u8(c.as_ptr());
                vst1q_u8(o.as_mut_ptr(), vsliq_n_u8::<4>(v.0, v.1));
            }
        }
    }

    #[inline(always)]
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]) {
        for (p, c) in packed.chunks_exact(16).zip(codes.chunks_exact_mut(32)) {
            // SAFETY: `p` holds 16 bytes (vld1q reads 16), `c` 32 (vst2q writes 32).
            unsafe {
                let b = vld1q_u8(p.as_ptr());
                let lo = vandq_u8(b, vdupq_n_u8(0x0f));
                let hi = vshrq_n_u8::<4>(b);
                vst2q_u8(c.as_mut_ptr(), uint8x16x2_t(lo, hi));
            }
        }
    }

    #[inline(always)]
    fn pack_i2(self, codes: &[u8], out: &mut [u8]) {
        for (c, o) in codes.chunks_exact(32).zip(out.chunks_exact_mut(8)) {
            // SAFETY: `c` holds 32 bytes (vld4 reads 32), `o` 8 (vst1 writes 8).
            unsafe {
                let v = vld4_u8(c.as_ptr());
                let r = vsli_n_u8::<2>(v.0, v.1);
                let r = vsli_n_u8::<4>(r, v.2);
                let r = vsli_n_u8::<6>(r, v.3);
                vst1_u8(o.as_mut_ptr(), r);
            }
        }
    }

    #[inline(always)]
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]) {
        for (p, c) in packed.chunks_exact(8).zip(codes.chunks_exact_mut(32)) {
            // SAFETY: `p` holds 8 bytes (vld1 reads 8), `c` 32 (vst4 writes 32).
            unsafe {
                let b = vld1_u8(p.as_ptr());
                let m = vdup_n_u8(3);
                let s = uint8x8x4_t(
                    vand_u8(b, m),
                    vand_u8(vshr_n_u8::<2>(b), m),
                    vand_u8(vshr_n_u8::<4>(b), m),
                    vshr_n_u8::<6>(b),
                );
                vst4_u8(c.as_mut_ptr(), s);
            }
        }
    }
}
