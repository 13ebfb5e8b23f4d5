//! AVX2 + F16C: [`Simd`] for `__m256`.
//!
//! f16 input is widened with F16C (`vcvtph2ps`); the byte packers are the SSE2 ones
//! (byte shuffling is not the bottleneck), compiled with VEX encoding inside the AVX2
//! entry points.

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
    fn store_codes(self, t: [__m256; 4], bias: i32, out: &mut [u8]) {
        let out = &mut out[..32];
        // SAFETY: the token proves AVX2; `out` holds 32 bytes and `storeu` needs no alignment.
        unsafe {
            // cvtps rounds with the MXCSR mode, which Rust keeps at nearest-even.
            let b = _mm256_set1_epi32(bias);
            let c = t.map(|v| _mm256_add_epi32(_mm256_cvtps_epi32(v), b));
            // Packing works within 128-bit lanes: the dwords come out as
            // c0[0..4] c1[0..4] c2[0..4] c3[0..4] | c0[4..8] c1[4..8] c2[4..8] c3[4..8].
            let lo = _mm256_packs_epi32(c[0], c[1]);
            let hi = _mm256_packs_epi32(c[2], c[3]);
            let bytes = _mm256_packus_epi16(lo, hi);
            let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            let bytes = _mm256_permutevar8x32_epi32(bytes, order);
            _mm256_storeu_si256(out.as_mut_ptr().cast(), bytes)
        }
    }

    #[inline(always)]
    fn load_codes(self, codes: &[u8]) -> [__m256; 4] {
        let codes = &codes[..32];
        // SAFETY: the token proves AVX2; each `loadl_epi64` reads 8 of the 32 bytes of `codes`.
        unsafe {
            let p = codes.as_ptr();
            let f = |k: usize| _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8 * k).cast())));
            [f(0), f(1), f(2), f(3)]
        }
    }

    #[inline(always)]
    fn pack_i4(self, codes: &[u8], out: &mut [u8]) {
        sse2::pack_i4_128(codes, out)
    }

    #[inline(always)]
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]) {
        sse2::unpack_i4_128(packed, codes)
    }

    #[inline(always)]
    fn pack_i2(self, codes: &[u8], out: &mut [u8]) {
        sse2::pack_i2_128(codes, out)
    }

    #[inline(always)]
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]) {
        sse2::unpack_i2_128(packed, codes)
    }
}
