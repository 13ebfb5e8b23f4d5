//! SIMD fast path of `Q8_0` (the 32-weight type where encoding speed matters: the
//! others spend their time in the scale search), written once over the
//! [`Simd`](crate::simd::vector::Simd) trait, bit-identical to
//! [`quantize_q8_0_ref`](super::q8_0::quantize_q8_0_ref).
//!
//! Dispatch follows the crate's policy ([`Backend::detect`]): AVX2 when detected, else
//! SSE2 on x86_64, NEON on aarch64, the scalar reference elsewhere; the per-ISA entry
//! point loops over the whole buffer. Same operations as the reference: `max |x|`
//! (exact in any order), the scale `f16(amax / 127)` computed once in scalar code,
//! `x / d` by IEEE division, clamped to `[-127, 127]`, rounded to nearest-even by
//! the vector conversion (the reference's `round_even`).

use super::block32::{QK, fp16_to_fp32, fp32_to_fp16, load_block};
use super::q8_0::BlockQ8_0;
use crate::QuantError;
use crate::input::Input;
use crate::simd::{Backend, Isa};

/// Encodes whole `Q8_0` blocks with `backend`.
///
/// # Errors
/// [`QuantError::BackendUnavailable`] when this CPU cannot run `backend`, and the input
/// policy errors of [`load_block`].
pub(crate) fn encode_q8_0_with(
    backend: Backend,
    input: Input<'_>,
    first_element: u64,
    out: &mut [u8],
) -> Result<(), QuantError> {
    match backend.isa().ok_or(QuantError::BackendUnavailable)? {
        Isa::Scalar => super::q8_0::encode_scalar(input, first_element, out),
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2(t) => generic::encode_q8_0(t, input, first_element, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a token exists only if the CPU runs AVX2 and F16C.
        Isa::Avx2(t) => unsafe { encode_q8_0_avx2(t, input, first_element, out) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(t) => generic::encode_q8_0(t, input, first_element, out),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
fn encode_q8_0_avx2(
    t: crate::simd::avx2::Avx2,
    input: Input<'_>,
    first_element: u64,
    out: &mut [u8],
) -> Result<(), QuantError> {
    generic::encode_q8_0(t, input, first_element, out)
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod generic {
    use super::*;
    use crate::simd::vector::Simd;

    /// Every block of the buffer; inlined into the per-ISA entry points.
    #[inline(always)]
    pub(super) fn encode_q8_0<S: Simd>(
        s: S,
        input: Input<'_>,
        first_element: u64,
        out: &mut [u8],
    ) -> Result<(), QuantError> {
        let mut x = [0.0f32; QK];
        for (b, o) in out.chunks_exact_mut(BlockQ8_0::SIZE).enumerate() {
            load_block(input, b, first_element, &mut x)?;
            block(s, &x, o);
        }
        Ok(())
    }

    #[inline(always)]
    fn block<S: Simd>(s: S, x: &[f32; QK], o: &mut [u8]) {
        let zero = s.splat(0.0);
        let mut m = zero;
        for c in x.chunks_exact(S::LANES) {
            let v = s.load(c);
            m = s.max(m, s.max(v, s.sub(zero, v)));
        }
        // `+ 0.0` turns a `-0.0` from the vector max into `+0.0`, as in the reference.
        let amax = s.reduce_max(m) + 0.0;
        let h = fp32_to_fp16(amax / 127.0);
        let d = fp16_to_fp32(h);
        o[..2].copy_from_slice(&h.to_le_bytes());
        let qs = &mut o[2..2 + QK];
        if d == 0.0 {
            qs.fill(0);
            return;
        }
        let dv = s.splat(d);
        let lo = s.splat(-127.0);
        let hi = s.splat(127.0);
        let l = S::LANES;
        for (xc, qc) in x.chunks_exact(4 * l).zip(qs.chunks_exact_mut(4 * l)) {
            // No closures: they would not inherit the entry point's target features.
            let t0 = s.min(s.max(s.div(s.load(&xc[..l]), dv), lo), hi);
            let t1 = s.min(s.max(s.div(s.load(&xc[l..2 * l]), dv), lo), hi);
            let t2 = s.min(s.max(s.div(s.load(&xc[2 * l..3 * l]), dv), lo), hi);
            let t3 = s.min(s.max(s.div(s.load(&xc[3 * l..]), dv), lo), hi);
            // Codes + 128 as unsigned bytes (1..=255), then flipped to i8 bit patterns.
            s.store_codes::<8>([t0, t1, t2, t3], 128, qc);
            for c in qc.iter_mut() {
                *c ^= 0x80;
            }
        }
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::encode_q8_0_with;
    use crate::QuantError;
    use crate::input::Input;
    use crate::simd::Backend;
    use crate::testutil::Rng;

    fn scalar(x: &[f32], first: u64) -> Result<Vec<u8>, QuantError> {
        let mut out = vec![0u8; x.len() / 32 * 34];
        encode_q8_0_with(Backend::Scalar, Input::F32(x), first, &mut out).map(|()| out)
    }

    fn with(b: Backend, x: &[f32], first: u64) -> Result<Vec<u8>, QuantError> {
        let mut out = vec![0u8; x.len() / 32 * 34];
        encode_q8_0_with(b, Input::F32(x), first, &mut out).map(|()| out)
    }

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut r = Rng::new(seed);
        (0..n)
            .map(|i| {
                let s = [1e-4f32, 0.02, 1.0, 500.0][(i / 32) % 4];
                r.unit() * s
            })
            .collect()
    }

    /// Blocks of special values: zeros of both signs, subnormals, f16 limits, constant
    /// blocks, exact half-steps (ties for the rounding), a lone extreme.
    fn specials() -> Vec<f32> {
        let mut v = Vec::new();
        v.extend([0.0f32; 32]);
        v.extend([-0.0f32; 32]);
        v.extend((0..32).map(|i| if i % 2 == 0 { 0.0 } else { -0.0 }));
        v.extend((0..32).map(|i| f32::from_bits(1 + i as u32) * if i % 3 == 0 { -1.0 } else { 1.0 }));
        v.extend((0..32).map(|i| 6.0e-8 * (i as f32 - 16.0)));
        v.extend((0..32).map(|i| if i % 2 == 0 { 65504.0 } else { -65504.0 }));
        v.extend([-65504.0f32; 32]);
        v.extend([0.3f32; 32]);
        v.extend((0..32).map(|i| 127.0 - i as f32 - 0.5));
        v.extend((0..32).map(|i| (i as f32 - 16.0) * 0.5 + 0.25));
        let mut lone = [1e-3f32; 32];
        lone[17] = -40.0;
        v.extend(lone);
        v
    }

    fn parity(b: Backend) {
        if !b.is_available() {
            std::eprintln!("SKIPPED: {b} not available on this CPU");
            return;
        }
        let x = data(32 * 300, 1);
        assert_eq!(with(b, &x, 0), scalar(&x, 0), "{b} random");
        // Windows shifted by 0..2*LANES elements at both ends (whole blocks in between).
        for shift in 0..17 {
            let w = &x[shift..shift + 32 * 40];
            assert_eq!(with(b, w, 0), scalar(w, 0), "{b} shift {shift}");
        }
        let s = specials();
        assert_eq!(with(b, &s, 0), scalar(&s, 0), "{b} specials");
        let mut bad = s.clone();
        bad[100] = f32::NAN;
        assert_eq!(with(b, &bad, 5), Err(QuantError::NonFinite { element: 105 }), "{b}");
        assert_eq!(scalar(&bad, 5), Err(QuantError::NonFinite { element: 105 }));
        bad[100] = 70000.0;
        assert_eq!(with(b, &bad, 5), Err(QuantError::OutOfRange { element: 105 }), "{b}");
    }

    #[test]
    fn ggml_q8_0_sse2_matches_scalar_reference() {
        if cfg!(target_arch = "x86_64") {
            assert!(Backend::Sse2.is_available(), "SSE2 is the x86_64 baseline");
        }
        parity(Backend::Sse2);
    }

    #[test]
    fn ggml_q8_0_avx2_matches_scalar_reference() {
        parity(Backend::Avx2);
    }

    #[test]
    fn ggml_q8_0_neon_matches_scalar_reference() {
        if cfg!(target_arch = "aarch64") {
            assert!(Backend::Neon.is_available(), "NEON is the aarch64 baseline");
        }
        parity(Backend::Neon);
    }
}
