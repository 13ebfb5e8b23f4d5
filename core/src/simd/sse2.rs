//! SSE2 (the x86_64 baseline): `Simd` for `__m128`, and the 128-bit byte packers
//! the AVX2 path reuses.
//!
//! SSE2 has no f16 conversion instruction: f16 is widened with integer bit tricks
//! (exact for every value, subnormals and infinities included).

use core::arch::x86_64::*;

use super::vector::Simd;

/// Capability token for SSE2. SSE2 is part of the x86_64 baseline, so the token is
/// always available on this architecture.
#[derive(Clone, Copy, Debug)]
pub struct Sse2(());

impl Sse2 {
    /// The token (SSE2 is always present on x86_64).
    #[inline]
    pub fn new() -> Option<Self> {
        Some(Sse2(()))
    }
}

/// The token, for code that is already SSE2-only (x86_64).
pub(crate) const SSE2: Sse2 = Sse2(());

/// Widens 4 f16 bit patterns (in the low halves of the 32-bit lanes) to f32 bits.
///
/// Normal numbers: shift the exponent and mantissa into place and rebias the exponent
/// (+112). Infinities and NaNs: rebias once more to reach the all-ones exponent.
/// Zeros and subnormals: build `2^-14 * (1 + m/1024)` and subtract `2^-14`, which is
/// exact and never touches an f32 subnormal.
#[inline(always)]
pub(crate) fn f16_bits_to_f32(h: __m128i) -> __m128 {
    // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
    // (memory goes through the checked `load*`/`store*` helpers).
    unsafe {
        let em = _mm_and_si128(h, _mm_set1_epi32(0x7fff));
        let sign = _mm_slli_epi32(_mm_and_si128(h, _mm_set1_epi32(0x8000)), 16);
        let shifted = _mm_slli_epi32(em, 13);
        let exp = _mm_and_si128(shifted, _mm_set1_epi32(0x0f80_0000));
        let rebias = _mm_set1_epi32(112 << 23);
        let normal = _mm_add_epi32(shifted, rebias);
        let inf_nan = _mm_cmpeq_epi32(exp, _mm_set1_epi32(0x0f80_0000));
        let normal = _mm_add_epi32(normal, _mm_and_si128(inf_nan, rebias));
        let sub = _mm_sub_ps(
            _mm_castsi128_ps(_mm_add_epi32(normal, _mm_set1_epi32(1 << 23))),
            _mm_castsi128_ps(_mm_set1_epi32(113 << 23)),
        );
        let is_sub = _mm_castsi128_ps(_mm_cmpeq_epi32(exp, _mm_setzero_si128()));
        let v = _mm_or_ps(_mm_and_ps(is_sub, sub), _mm_andnot_ps(is_sub, _mm_castsi128_ps(normal)));
        _mm_or_ps(v, _mm_castsi128_ps(sign))
    }
}

/// Loads 16 bytes from `x[..16]`.
#[inline(always)]
pub(crate) fn load16(x: &[u8]) -> __m128i {
    let x = &x[..16];
    // SAFETY: `x` holds 16 bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(x.as_ptr().cast()) }
}

/// Stores 16 bytes into `out[..16]`.
#[inline(always)]
pub(crate) fn store16(v: __m128i, out: &mut [u8]) {
    let out = &mut out[..16];
    // SAFETY: `out` holds 16 bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), v) }
}

/// Loads 8 bytes from `x[..8]` into the low half.
#[inline(always)]
pub(crate) fn load8(x: &[u8]) -> __m128i {
    let x = &x[..8];
    // SAFETY: `x` holds 8 bytes; `loadl_epi64` reads 8 bytes with no alignment requirement.
    unsafe { _mm_loadl_epi64(x.as_ptr().cast()) }
}

/// Stores the low 8 bytes into `out[..8]`.
#[inline(always)]
pub(crate) fn store8(v: __m128i, out: &mut [u8]) {
    let out = &mut out[..8];
    // SAFETY: `out` holds 8 bytes; `storel_epi64` writes 8 bytes with no alignment requirement.
    unsafe { _mm_storel_epi64(out.as_mut_ptr().cast(), v) }
}

/// INT4 unpacking, 16 bytes to 32 codes per step: low nibbles and high nibbles
/// interleaved byte by byte.
#[inline(always)]
pub(crate) fn unpack_i4_128(packed: &[u8], codes: &mut [u8]) {
    // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
    // (memory goes through the checked `load*`/`store*` helpers).
    unsafe {
        let mask = _mm_set1_epi8(0x0f);
        for (p, c) in packed.chunks_exact(16).zip(codes.chunks_exact_mut(32)) {
            let b = load16(p);
            let lo = _mm_and_si128(b, mask);
            let hi = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            store16(_mm_unpacklo_epi8(lo, hi), c);
            store16(_mm_unpackhi_epi8(lo, hi), &mut c[16..]);
        }
    }
}

/// Packs the 16 codes of `v` (one per byte, in order) into `out`: 16 bytes for INT8,
/// 8 for INT4, 4 for INT2.
///
/// INT4: in each 16-bit lane `v = c[2i] | c[2i+1] << 8`, and `v | v >> 4` holds
/// `c[2i] | c[2i+1] << 4` in its low byte. INT2 does the same twice (see [`merge_i2`]).
#[inline(always)]
pub(crate) fn pack_codes_128<const BITS: u32>(v: __m128i, out: &mut [u8]) {
    // SAFETY: SSE2 is part of the x86_64 baseline; register-only intrinsics.
    unsafe {
        match BITS {
            8 => store16(v, out),
            4 => {
                let v = _mm_and_si128(_mm_or_si128(v, _mm_srli_epi16(v, 4)), _mm_set1_epi16(0x00ff));
                store8(_mm_packus_epi16(v, v), out)
            }
            _ => {
                let w = merge_i2(v);
                let w = _mm_packs_epi32(w, w);
                let bytes = _mm_cvtsi128_si32(_mm_packus_epi16(w, w)) as u32;
                out[..4].copy_from_slice(&bytes.to_le_bytes());
            }
        }
    }
}

/// Merges the 16 INT2 codes of `v` (one per byte) into the low byte of each 32-bit
/// lane: pairs in 16-bit lanes (`v | v >> 6`), then pairs of pairs (`w | w >> 12`).
#[inline(always)]
fn merge_i2(v: __m128i) -> __m128i {
    // SAFETY: SSE2 is part of the x86_64 baseline; register-only intrinsics.
    unsafe {
        let v = _mm_and_si128(_mm_or_si128(v, _mm_srli_epi16(v, 6)), _mm_set1_epi16(0x00ff));
        _mm_and_si128(_mm_or_si128(v, _mm_srli_epi32(v, 12)), _mm_set1_epi32(0xff))
    }
}

/// INT2 unpacking, 8 bytes to 32 codes per step.
#[inline(always)]
pub(crate) fn unpack_i2_128(packed: &[u8], codes: &mut [u8]) {
    // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
    // (memory goes through the checked `load*`/`store*` helpers).
    unsafe {
        let mask = _mm_set1_epi8(3);
        for (p, c) in packed.chunks_exact(8).zip(codes.chunks_exact_mut(32)) {
            let b = load8(p);
            let s0 = _mm_and_si128(b, mask);
            let s1 = _mm_and_si128(_mm_srli_epi16(b, 2), mask);
            let s2 = _mm_and_si128(_mm_srli_epi16(b, 4), mask);
            let s3 = _mm_and_si128(_mm_srli_epi16(b, 6), mask);
            let t01 = _mm_unpacklo_epi8(s0, s1);
            let t23 = _mm_unpacklo_epi8(s2, s3);
            store16(_mm_unpacklo_epi16(t01, t23), c);
            store16(_mm_unpackhi_epi16(t01, t23), &mut c[16..]);
        }
    }
}

impl Simd for Sse2 {
    type V = __m128;
    const LANES: usize = 4;

    #[inline(always)]
    fn prefetch(self, x: &[u8]) {
        for line in x.chunks(64) {
            // SAFETY: SSE is part of x86_64; a prefetch never faults and reads nothing
            // the program can observe, and the address lies inside `x`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) }
        }
    }

    #[inline(always)]
    fn splat(self, x: f32) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_set1_ps(x) }
    }

    #[inline(always)]
    fn load(self, x: &[f32]) -> __m128 {
        let x = &x[..4];
        // SAFETY: `x` holds 4 floats; `loadu` has no alignment requirement.
        unsafe { _mm_loadu_ps(x.as_ptr()) }
    }

    #[inline(always)]
    fn store(self, v: __m128, out: &mut [f32]) {
        let out = &mut out[..4];
        // SAFETY: `out` holds 4 floats; `storeu` has no alignment requirement.
        unsafe { _mm_storeu_ps(out.as_mut_ptr(), v) }
    }

    #[inline(always)]
    fn store_stream(self, v: __m128, out: &mut [f32]) {
        let out = &mut out[..4];
        if (out.as_ptr() as usize).is_multiple_of(16) {
            // Miri cannot run `movntps` (inline assembly in core::arch): it checks the
            // same obligation (4 floats, 16-byte aligned) on the aligned plain store.
            #[cfg(miri)]
            // SAFETY: `out` holds 4 floats and is 16-byte aligned, as `movaps` requires.
            unsafe {
                _mm_store_ps(out.as_mut_ptr(), v)
            }
            #[cfg(not(miri))]
            // SAFETY: `out` holds 4 floats and is 16-byte aligned, as `movntps` requires.
            unsafe {
                _mm_stream_ps(out.as_mut_ptr(), v)
            }
        } else {
            self.store(v, out)
        }
    }

    #[inline(always)]
    fn store_fence(self) {
        // Miri cannot call `llvm.x86.sse.sfence`; a sequentially consistent fence
        // orders the (plain, under Miri) stores before it at least as strongly.
        #[cfg(miri)]
        core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
        #[cfg(not(miri))]
        // SAFETY: SSE is part of the x86_64 baseline.
        unsafe {
            _mm_sfence()
        }
    }

    #[inline(always)]
    fn load_f16(self, x: &[u16]) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let h = load8(bytemuck::cast_slice(&x[..4]));
            f16_bits_to_f32(_mm_unpacklo_epi16(h, _mm_setzero_si128()))
        }
    }

    #[inline(always)]
    fn load_bf16(self, x: &[u16]) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let h = load8(bytemuck::cast_slice(&x[..4]));
            _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), h))
        }
    }

    #[inline(always)]
    fn min(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_min_ps(a, b) }
    }

    #[inline(always)]
    fn max(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_max_ps(a, b) }
    }

    #[inline(always)]
    fn add(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_add_ps(a, b) }
    }

    #[inline(always)]
    fn sub(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_sub_ps(a, b) }
    }

    #[inline(always)]
    fn mul(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe { _mm_mul_ps(a, b) }
    }

    #[inline(always)]
    fn div(self, a: __m128, b: __m128) -> __m128 {
        // SAFETY: SSE2 is part of the x86_64 baseline; register-only intrinsic.
        unsafe { _mm_div_ps(a, b) }
    }

    #[inline(always)]
    fn reduce_min(self, v: __m128) -> f32 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let v = _mm_min_ps(v, _mm_movehl_ps(v, v));
            _mm_cvtss_f32(_mm_min_ss(v, _mm_shuffle_ps::<1>(v, v)))
        }
    }

    #[inline(always)]
    fn reduce_max(self, v: __m128) -> f32 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let v = _mm_max_ps(v, _mm_movehl_ps(v, v));
            _mm_cvtss_f32(_mm_max_ss(v, _mm_shuffle_ps::<1>(v, v)))
        }
    }

    #[inline(always)]
    fn reduce_add(self, v: __m128) -> f32 {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
            _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<1>(v, v)))
        }
    }

    #[inline(always)]
    fn store_codes<const BITS: u32>(self, t: [__m128; 4], bias: i32, out: &mut [u8]) {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            // cvtps rounds with the MXCSR mode, which Rust keeps at nearest-even.
            let b = _mm_set1_epi32(bias);
            let c0 = _mm_add_epi32(_mm_cvtps_epi32(t[0]), b);
            let c1 = _mm_add_epi32(_mm_cvtps_epi32(t[1]), b);
            let c2 = _mm_add_epi32(_mm_cvtps_epi32(t[2]), b);
            let c3 = _mm_add_epi32(_mm_cvtps_epi32(t[3]), b);
            let lo = _mm_packs_epi32(c0, c1);
            let hi = _mm_packs_epi32(c2, c3);
            pack_codes_128::<BITS>(_mm_packus_epi16(lo, hi), out);
        }
    }

    #[inline(always)]
    fn load_codes(self, codes: &[u8]) -> [__m128; 4] {
        // SAFETY: SSE2 is part of the x86_64 baseline; the intrinsics here only touch registers
        // (memory goes through the checked `load*`/`store*` helpers).
        unsafe {
            let z = _mm_setzero_si128();
            let b = load16(codes);
            let lo = _mm_unpacklo_epi8(b, z);
            let hi = _mm_unpackhi_epi8(b, z);
            [
                _mm_cvtepi32_ps(_mm_unpacklo_epi16(lo, z)),
                _mm_cvtepi32_ps(_mm_unpackhi_epi16(lo, z)),
                _mm_cvtepi32_ps(_mm_unpacklo_epi16(hi, z)),
                _mm_cvtepi32_ps(_mm_unpackhi_epi16(hi, z)),
            ]
        }
    }

    #[inline(always)]
    fn unpack_i4(self, packed: &[u8], codes: &mut [u8]) {
        unpack_i4_128(packed, codes)
    }

    #[inline(always)]
    fn unpack_i2(self, packed: &[u8], codes: &mut [u8]) {
        unpack_i2_128(packed, codes)
    }

    type D = __m128d;

    #[inline(always)]
    fn dzero(self) -> __m128d {
        // SAFETY: SSE2 is part of the x86_64 baseline; register-only.
        unsafe { _mm_setzero_pd() }
    }

    #[inline(always)]
    fn widen_f64(self, v: __m128) -> [__m128d; 2] {
        // SAFETY: SSE2 is part of the x86_64 baseline; register-only conversions.
        unsafe { [_mm_cvtps_pd(v), _mm_cvtps_pd(_mm_movehl_ps(v, v))] }
    }

    #[inline(always)]
    fn dadd(self, a: __m128d, b: __m128d) -> __m128d {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_add_pd(a, b) }
    }

    #[inline(always)]
    fn dsub(self, a: __m128d, b: __m128d) -> __m128d {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_sub_pd(a, b) }
    }

    #[inline(always)]
    fn dmul(self, a: __m128d, b: __m128d) -> __m128d {
        // SAFETY: SSE2 is part of the x86_64 baseline.
        unsafe { _mm_mul_pd(a, b) }
    }

    #[inline(always)]
    fn dmax_abs(self, acc: __m128d, e: __m128d) -> __m128d {
        // SAFETY: SSE2 is part of the x86_64 baseline; clearing the sign bit is |e|.
        unsafe { _mm_max_pd(acc, _mm_andnot_pd(_mm_set1_pd(-0.0), e)) }
    }

    #[inline(always)]
    fn dstore(self, v: __m128d, out: &mut [f64]) {
        let out = &mut out[..2];
        // SAFETY: `out` holds 2 doubles; `storeu` has no alignment requirement.
        unsafe { _mm_storeu_pd(out.as_mut_ptr(), v) }
    }
}
