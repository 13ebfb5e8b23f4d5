//! AVX2 + F16C: `Simd` for `__m256`.
//!
//! f16 input is widened with F16C (`vcvtph2ps`); INT2 packing and the unpackers reuse
//! the SSE2 byte code, compiled with VEX encoding inside the AVX2 entry points.

use core::arch::x86_64::*;

use super::sse2;
use super::vector::Simd;
use crate::simd::Backend;

/// Capability token for AVX2 + F16C: a value exists only if the CPU supports both
/// (detected at run time with `std`, or enabled at compile time).
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    /// The token, if this CPU runs AVX2 and F16C (see the policy in [`crate::simd`]).
    #[inline]
    pub fn new() -> Option<Self> {
        Backend::Avx2.is_available().then_some(Avx2(()))
    }
}

impl Simd for Avx2 {
    type V = __m256;
    const LANES: usize = 8;

    #[inline(always)]
    fn prefetch(self, x: &[u8]) {
        for line in x.chunks(64) {
            // SAFETY: SSE is part of x86_64; a prefetch never faults and reads nothing
            // the program can observe, and the address lies inside `x`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) }
        }
    }

    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_set1_ps(x) }
    }

    #[inline(always)]
    fn load(self, x: &[f32]) -> __m256 {
        let x = &x[..8];
        // SAFETY: the token proves AVX2; `x` holds 8 floats and `loadu` needs no alignment.
        unsafe { _mm256_loadu_ps(x.as_ptr()) }
    }

    #[inline(always)]
    fn store(self, v: __m256, out: &mut [f32]) {
        let out = &mut out[..8];
        // SAFETY: the token proves AVX2; `out` holds 8 floats and `storeu` needs no alignment.
        unsafe { _mm256_storeu_ps(out.as_mut_ptr(), v) }
    }

    #[inline(always)]
    fn store_stream(self, v: __m256, out: &mut [f32]) {
        let out = &mut out[..8];
        let p = out.as_mut_ptr();
        if (p as usize).is_multiple_of(32) {
            // SAFETY: the token proves AVX2; `out` holds 8 floats, 32-byte aligned as
            // `vmovntps ymm` requires.
            unsafe { _mm256_stream_ps(p, v) }
        } else if (p as usize).is_multiple_of(16) {
            // SAFETY: the token proves AVX2; both halves are 16-byte aligned and in `out`.
            unsafe {
                _mm_stream_ps(p, _mm256_castps256_ps128(v));
                _mm_stream_ps(p.add(4), _mm256_extractf128_ps::<1>(v));
            }
        } else {
            self.store(v, out)
        }
    }

    #[inline(always)]
    fn store_fence(self) {
        // SAFETY: SSE is part of the x86_64 baseline.
        unsafe { _mm_sfence() }
    }

    #[inline(always)]
    fn load_f16(self, x: &[u16]) -> __m256 {
        let h = sse2::load16(bytemuck::cast_slice(&x[..8]));
        // SAFETY: the token proves F16C.
        unsafe { _mm256_cvtph_ps(h) }
    }

    #[inline(always)]
    fn load_bf16(self, x: &[u16]) -> __m256 {
        let h = sse2::load16(bytemuck::cast_slice(&x[..8]));
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h))) }
    }

    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_min_ps(a, b) }
    }

    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_max_ps(a, b) }
    }

    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_add_ps(a, b) }
    }

    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sub_ps(a, b) }
    }

    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_mul_ps(a, b) }
    }

    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_div_ps(a, b) }
    }

    #[inline(always)]
    fn reduce_min(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        let half = unsafe { _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)) };
        sse2::SSE2.reduce_min(half)
    }

    #[inline(always)]
    fn reduce_max(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        let half = unsafe { _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)) };
        sse2::SSE2.reduce_max(half)
    }

    #[inline(always)]
    fn reduce_add(self, v: __m256) -> f32 {
        // SAFETY: the token proves AVX2.
        let half = unsafe { _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v)) };
        sse2::SSE2.reduce_add(half)
    }

    #[inline(always)]
    fn store_codes<const BITS: u32>(self, t: [__m256; 4], bias: i32, out: &mut [u8]) {
        // SAFETY: the token proves AVX2; memory goes through checked slices.
        unsafe {
            // cvtps rounds with the MXCSR mode, which Rust keeps at nearest-even.
            let b = _mm256_set1_epi32(bias);
            // No closures here: a closure would not inherit the AVX2 target feature.
            let c0 = _mm256_add_epi32(_mm256_cvtps_epi32(t[0]), b);
            let c1 = _mm256_add_epi32(_mm256_cvtps_epi32(t[1]), b);
            let c2 = _mm256_add_epi32(_mm256_cvtps_epi32(t[2]), b);
            let c3 = _mm256_add_epi32(_mm256_cvtps_epi32(t[3]), b);
            // Packing works within 128-bit lanes: the dwords come out as
            // c0[0..4] c1[0..4] c2[0..4] c3[0..4] | c0[4..8] c1[4..8] c2[4..8] c3[4..8].
            let lo = _mm256_packs_epi32(c0, c1);
            let hi = _mm256_packs_epi32(c2, c3);
            let bytes = _mm256_packus_epi16(lo, hi);
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            match BITS {
                8 => {
                    let out = &mut out[..32];
                    _mm256_storeu_si256(out.as_mut_ptr().cast(), bytes)
                }
                4 => {
                    // `v | v >> 4` in 16-bit lanes puts each nibble pair in a low byte.
                    let v = _mm256_or_si256(bytes, _mm256_srli_epi16::<4>(bytes));
                    let v = _mm256_and_si256(v, _mm256_set1_epi16(0x00ff));
                    let p = _mm256_packus_epi16(v, v);
                    let p = _mm256_permute4x64_epi64::<0b1000>(p);
                    sse2::store16(_mm256_castsi256_si128(p), out)
                }
                _ => {
                    sse2::pack_codes_128::<2>(_mm256_castsi256_si128(bytes), out);
                    sse2::pack_codes_128::<2>(_mm256_extracti128_si256::<1>(bytes), &mut out[4..]);
                }
            }
        }
    }

    #[inline(always)]
    fn load_codes(self, codes: &[u8]) -> [__m256; 4] {
        let codes = &codes[..32];
        // SAFETY: the token proves AVX2; each `loadl_epi64` reads 8 of the 32 bytes of `codes`.
        unsafe {
            let p = codes.as_ptr();
            let b0 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast()));
            let b1 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8).cast()));
            let b2 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(16).cast()));
            let b3 = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(24).cast()));
            [_mm256_cvtepi32_ps(b0), _mm256_cvtepi32_ps(b1), _mm256_cvtepi32_ps(b2), _mm256_cvtepi32_ps(b3)]
        }
    }

    #[inline(always)]
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]) {
        sse2::unpack_i4_128(packed, codes)
    }

    #[inline(always)]
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]) {
        sse2::unpack_i2_128(packed, codes)
    }

    type D = __m256d;

    #[inline(always)]
    fn dzero(self) -> __m256d {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_setzero_pd() }
    }

    #[inline(always)]
    fn widen_f64(self, v: __m256) -> [__m256d; 2] {
        // SAFETY: the token proves AVX2; register-only conversions.
        unsafe {
            [_mm256_cvtps_pd(_mm256_castps256_ps128(v)), _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(v))]
        }
    }

    #[inline(always)]
    fn dadd(self, a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_add_pd(a, b) }
    }

    #[inline(always)]
    fn dsub(self, a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_sub_pd(a, b) }
    }

    #[inline(always)]
    fn dmul(self, a: __m256d, b: __m256d) -> __m256d {
        // SAFETY: the token proves AVX2.
        unsafe { _mm256_mul_pd(a, b) }
    }

    #[inline(always)]
    fn dmax_abs(self, acc: __m256d, e: __m256d) -> __m256d {
        // SAFETY: the token proves AVX2; clearing the sign bit is |e|.
        unsafe { _mm256_max_pd(acc, _mm256_andnot_pd(_mm256_set1_pd(-0.0), e)) }
    }

    #[inline(always)]
    fn dstore(self, v: __m256d, out: &mut [f64]) {
        let out = &mut out[..4];
        // SAFETY: the token proves AVX2; `out` holds 4 doubles and `storeu` needs no alignment.
        unsafe { _mm256_storeu_pd(out.as_mut_ptr(), v) }
    }
}
