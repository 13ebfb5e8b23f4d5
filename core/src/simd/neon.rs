//! NEON (the aarch64 baseline): [`Simd`] for `float32x4_t`.
//!
//! f16 is widened with the same integer bit tricks as SSE2 (the f16 vector types of
//! `core::arch` are not stable yet); codes are packed in registers
//! with shifts and narrowing moves, and unpacked with the interleaving stores `vst2`/`vst4`.

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
    // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
    unsafe {
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
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vdupq_n_f32(x) }
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
    fn store_stream(self, v: float32x4_t, out: &mut [f32]) {
        // No non-temporal store intrinsic on NEON: a plain store.
        self.store(v, out)
    }

    #[inline(always)]
    fn store_fence(self) {}

    #[inline(always)]
    fn load_f16(self, x: &[u16]) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { f16_bits_to_f32(vmovl_u16(load4_u16(x))) }
    }

    #[inline(always)]
    fn load_bf16(self, x: &[u16]) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vreinterpretq_f32_u32(vshll_n_u16::<16>(load4_u16(x))) }
    }

    #[inline(always)]
    fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vminq_f32(a, b) }
    }

    #[inline(always)]
    fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vmaxq_f32(a, b) }
    }

    #[inline(always)]
    fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vaddq_f32(a, b) }
    }

    #[inline(always)]
    fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vsubq_f32(a, b) }
    }

    #[inline(always)]
    fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vmulq_f32(a, b) }
    }

    #[inline(always)]
    fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vdivq_f32(a, b) }
    }

    #[inline(always)]
    fn reduce_min(self, v: float32x4_t) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vminvq_f32(v) }
    }

    #[inline(always)]
    fn reduce_max(self, v: float32x4_t) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vmaxvq_f32(v) }
    }

    #[inline(always)]
    fn reduce_add(self, v: float32x4_t) -> f32 {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vaddvq_f32(v) }
    }

    #[inline(always)]
    fn store_codes<const BITS: u32>(self, t: [float32x4_t; 4], bias: i32, out: &mut [u8]) {
        // SAFETY: NEON is part of the aarch64 baseline; stores go to checked slices of
        // exactly the length written.
        unsafe {
            // vcvtn: round to nearest, ties to even, whatever the FPCR mode.
            let b = vdupq_n_s32(bias);
            let c0 = vaddq_s32(vcvtnq_s32_f32(t[0]), b);
            let c1 = vaddq_s32(vcvtnq_s32_f32(t[1]), b);
            let c2 = vaddq_s32(vcvtnq_s32_f32(t[2]), b);
            let c3 = vaddq_s32(vcvtnq_s32_f32(t[3]), b);
            let lo = vcombine_s16(vqmovn_s32(c0), vqmovn_s32(c1));
            let hi = vcombine_s16(vqmovn_s32(c2), vqmovn_s32(c3));
            let bytes = vcombine_u8(vqmovun_s16(lo), vqmovun_s16(hi));
            // In 16-bit lanes `v = c[2i] | c[2i+1] << 8`: `v | v >> s` holds the merged
            // pair in its low byte, which `vmovn` keeps.
            match BITS {
                8 => vst1q_u8(out[..16].as_mut_ptr(), bytes),
                4 => {
                    let u = vreinterpretq_u16_u8(bytes);
                    let p = vmovn_u16(vorrq_u16(u, vshrq_n_u16::<4>(u)));
                    vst1_u8(out[..8].as_mut_ptr(), p)
                }
                _ => {
                    let u = vreinterpretq_u16_u8(bytes);
                    let pairs = vmovn_u16(vorrq_u16(u, vshrq_n_u16::<6>(u)));
                    let w = vreinterpret_u16_u8(pairs);
                    let quads = vmovn_u16(vcombine_u16(vorr_u16(w, vshr_n_u16::<4>(w)), w));
                    let word = vget_lane_u32::<0>(vreinterpret_u32_u8(quads));
                    out[..4].copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }

    #[inline(always)]
    fn load_codes(self, codes: &[u8]) -> [float32x4_t; 4] {
        let codes = &codes[..16];
        // SAFETY: NEON is part of the aarch64 baseline; `codes` holds the 16 bytes `vld1q` reads.
        unsafe {
            let b = vld1q_u8(codes.as_ptr());
            let lo = vmovl_u8(vget_low_u8(b));
            let hi = vmovl_high_u8(b);
            [
                vcvtq_f32_u32(vmovl_u16(vget_low_u16(lo))),
                vcvtq_f32_u32(vmovl_high_u16(lo)),
                vcvtq_f32_u32(vmovl_u16(vget_low_u16(hi))),
                vcvtq_f32_u32(vmovl_high_u16(hi)),
            ]
        }
    }

    #[inline(always)]
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]) {
        for (p, c) in packed.chunks_exact(16).zip(codes.chunks_exact_mut(32)) {
            // SAFETY: NEON is baseline; `p` holds 16 bytes (vld1q reads 16), `c` 32 (vst2q writes 32).
            unsafe {
                let b = vld1q_u8(p.as_ptr());
                let lo = vandq_u8(b, vdupq_n_u8(0x0f));
                let hi = vshrq_n_u8::<4>(b);
                vst2q_u8(c.as_mut_ptr(), uint8x16x2_t(lo, hi));
            }
        }
    }

    #[inline(always)]
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]) {
        for (p, c) in packed.chunks_exact(8).zip(codes.chunks_exact_mut(32)) {
            // SAFETY: NEON is baseline; `p` holds 8 bytes (vld1 reads 8), `c` 32 (vst4 writes 32).
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

    type D = float64x2_t;

    #[inline(always)]
    fn dzero(self) -> float64x2_t {
        // SAFETY: NEON is part of the aarch64 baseline (enabled at compile time).
        unsafe { vdupq_n_f64(0.0) }
    }

    #[inline(always)]
    fn widen_f64(self, v: float32x4_t) -> [float64x2_t; 2] {
        // SAFETY: NEON is part of the aarch64 baseline; register-only conversions.
        unsafe { [vcvt_f64_f32(vget_low_f32(v)), vcvt_high_f64_f32(v)] }
    }

    #[inline(always)]
    fn dadd(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vaddq_f64(a, b) }
    }

    #[inline(always)]
    fn dsub(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vsubq_f64(a, b) }
    }

    #[inline(always)]
    fn dmul(self, a: float64x2_t, b: float64x2_t) -> float64x2_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vmulq_f64(a, b) }
    }

    #[inline(always)]
    fn dmax_abs(self, acc: float64x2_t, e: float64x2_t) -> float64x2_t {
        // SAFETY: NEON is part of the aarch64 baseline.
        unsafe { vmaxq_f64(acc, vabsq_f64(e)) }
    }

    #[inline(always)]
    fn dstore(self, v: float64x2_t, out: &mut [f64]) {
        let out = &mut out[..2];
        // SAFETY: `out` holds 2 doubles; `vst1q` needs element alignment only, which a `&mut [f64]` has.
        unsafe { vst1q_f64(out.as_mut_ptr(), v) }
    }
}
