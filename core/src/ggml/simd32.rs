//! SIMD fast paths of the 32-weight blocks, written once over the
//! [`Simd`](crate::simd::vector::Simd) trait and bit-identical to the scalar references:
//! - `Q8_0`: the whole encoder ([`quantize_q8_0_ref`](super::q8_0::quantize_q8_0_ref));
//! - `Q4_0`, `Q5_0`: the two hot steps of the scale search
//!   ([`SymKernel`]: the trial sums and the nearest codes with their exact error), in
//!   the same 8-lane summation order as the scalar [`ScalarSym`], so the search picks
//!   the same candidate bit for bit.
//!
//! Dispatch follows the crate's policy ([`Backend::detect`]): AVX2 when detected, else
//! SSE2 on x86_64, NEON on aarch64, the scalar reference elsewhere; the per-ISA entry
//! point loops over the whole buffer. Same operations as the reference: `max |x|`
//! (exact in any order), the scale `f16(amax / 127)` computed once in scalar code,
//! `x / d` by IEEE division, clamped to `[-127, 127]`, rounded to nearest-even by
//! the vector conversion (the reference's `round_even`).

use super::block32::ScalarSym;
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

/// Stamps the dispatcher and the AVX2 entry point of a symmetric type's encoder.
macro_rules! sym_dispatch {
    ($with:ident, $avx2:ident, $module:ident) => {
        /// Encodes whole blocks with `backend` (the search's hot steps on its vectors).
        ///
        /// # Errors
        /// [`QuantError::BackendUnavailable`] when this CPU cannot run `backend`, and
        /// the input policy errors of [`load_block`].
        pub(crate) fn $with(
            backend: Backend,
            input: Input<'_>,
            first_element: u64,
            out: &mut [u8],
        ) -> Result<(), QuantError> {
            match backend.isa().ok_or(QuantError::BackendUnavailable)? {
                Isa::Scalar => super::$module::encode_blocks(ScalarSym, input, first_element, out),
                #[cfg(target_arch = "x86_64")]
                Isa::Sse2(t) => super::$module::encode_blocks(generic::SimdSym(t), input, first_element, out),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a token exists only if the CPU runs AVX2 and F16C.
                Isa::Avx2(t) => unsafe { $avx2(t, input, first_element, out) },
                #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
                Isa::Neon(t) => super::$module::encode_blocks(generic::SimdSym(t), input, first_element, out),
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,f16c")]
        fn $avx2(
            t: crate::simd::avx2::Avx2,
            input: Input<'_>,
            first_element: u64,
            out: &mut [u8],
        ) -> Result<(), QuantError> {
            super::$module::encode_blocks(generic::SimdSym(t), input, first_element, out)
        }
    };
}

sym_dispatch!(encode_q4_0_with, encode_q4_0_avx2, q4_0);
sym_dispatch!(encode_q5_0_with, encode_q5_0_avx2, q5_0);

#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
mod generic {
    use super::super::block32::{
        QK, ScalarSym, SymBlock, SymKernel, fp16_to_fp32, fp32_to_fp16, load_block, sum8, sum8_f64,
    };
    use super::super::q8_0::BlockQ8_0;
    use crate::QuantError;
    use crate::input::Input;
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

    /// `1.5 * 2^23`: `(t + MAGIC) - MAGIC` rounds to nearest-even, as `round_even`.
    const MAGIC: f32 = 12_582_912.0;

    /// [`SymKernel`] on the vectors of `S`.
    #[derive(Clone, Copy, Debug)]
    pub(crate) struct SimdSym<S>(pub S);

    impl<S: Simd> SymKernel for SimdSym<S> {
        #[inline(always)]
        fn trial(self, x: &[f32; QK], iscale: f32, lo: f32, hi: f32) -> (f32, f32) {
            let s = self.0;
            let (is, lo, hi, magic) = (s.splat(iscale), s.splat(lo), s.splat(hi), s.splat(MAGIC));
            // 8 lanes in all: one vector on AVX2, two on 4-lane ISAs.
            let per = 8 / S::LANES;
            let zero = s.splat(0.0);
            let mut lx = [zero; 2];
            let mut l2 = [zero; 2];
            for (i, c) in x.chunks_exact(S::LANES).enumerate() {
                let v = s.load(c);
                let l = s.sub(s.add(s.min(s.max(s.mul(v, is), lo), hi), magic), magic);
                let k = i % per;
                lx[k] = s.add(lx[k], s.mul(l, v));
                l2[k] = s.add(l2[k], s.mul(l, l));
            }
            let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
            for k in 0..per {
                s.store(lx[k], &mut a[k * S::LANES..]);
                s.store(l2[k], &mut b[k * S::LANES..]);
            }
            (sum8(a), sum8(b))
        }

        #[inline(always)]
        fn nearest(self, x: &[f32; QK], h: u16, off: i32) -> (f64, SymBlock) {
            let s = self.0;
            let df = fp16_to_fp32(h);
            if df == 0.0 {
                return ScalarSym.nearest(x, h, off);
            }
            let (dv, magic) = (s.splat(df), s.splat(MAGIC));
            let (lo, hi) = (s.splat(-off as f32), s.splat((off - 1) as f32));
            let per = 8 / S::LANES;
            let mut acc = [s.dzero(); 4];
            let mut r = [0.0f32; QK];
            for (i, c) in x.chunks_exact(S::LANES).enumerate() {
                let v = s.load(c);
                let t = s.min(s.max(s.div(v, dv), lo), hi);
                let l = s.sub(s.add(t, magic), magic);
                let y = s.mul(l, dv);
                let [xl, xh] = s.widen_f64(v);
                let [yl, yh] = s.widen_f64(y);
                let (el, eh) = (s.dsub(xl, yl), s.dsub(xh, yh));
                let k = 2 * (i % per);
                acc[k] = s.dadd(acc[k], s.dmul(el, el));
                acc[k + 1] = s.dadd(acc[k + 1], s.dmul(eh, eh));
                s.store(l, &mut r[i * S::LANES..]);
            }
            // f64 lane j of the sums = element j mod 8, as in `sq_err`.
            let mut lanes = [0.0f64; 8];
            let half = S::LANES / 2;
            for (k, a) in acc.iter().enumerate().take(2 * per) {
                s.dstore(*a, &mut lanes[k * half..]);
            }
            let mut q = [0u8; QK];
            for (c, &l) in q.iter_mut().zip(&r) {
                *c = (l as i32 + off) as u8;
            }
            (sum8_f64(lanes), SymBlock { d: h, q })
        }
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

// These run under Miri too (tests/miri.sh), with the smaller sizes of `SIZES`: only the
// scalar and SSE2 paths there (AVX2 is reported unavailable and its test skips).
#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec;
    use std::vec::Vec;

    use super::encode_q8_0_with;
    use crate::QuantError;
    use crate::input::Input;
    use crate::simd::Backend;
    use crate::testutil::Rng;

    type EncodeWith = fn(Backend, Input<'_>, u64, &mut [u8]) -> Result<(), QuantError>;

    /// The encoders with a SIMD path: name, dispatcher, bytes per block.
    const TYPES: [(&str, EncodeWith, usize); 3] = [
        ("Q8_0", encode_q8_0_with, 34),
        ("Q4_0", super::encode_q4_0_with, 18),
        ("Q5_0", super::encode_q5_0_with, 22),
    ];

    fn run(f: EncodeWith, bs: usize, b: Backend, x: &[f32], first: u64) -> Result<Vec<u8>, QuantError> {
        let mut out = vec![0u8; x.len() / 32 * bs];
        f(b, Input::F32(x), first, &mut out).map(|()| out)
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

    /// Random blocks, shifts `0..SHIFTS` (`2 * LANES + 1`, AVX2: 8 lanes) and blocks per
    /// shifted window; under Miri only SSE2 runs (4 lanes) and interpreted, the full
    /// sizes take too long.
    #[cfg(not(miri))]
    const SIZES: (usize, usize, usize) = (300, 17, 40);
    #[cfg(miri)]
    const SIZES: (usize, usize, usize) = (4, 9, 2);

    fn parity(b: Backend) {
        if !b.is_available() {
            std::eprintln!("SKIPPED: {b} not available on this CPU");
            return;
        }
        let (blocks, shifts, window) = SIZES;
        let x = data(32 * blocks, 1);
        let s = specials();
        for (name, f, bs) in TYPES {
            let scalar = |x: &[f32], first| run(f, bs, Backend::Scalar, x, first);
            let with = |x: &[f32], first| run(f, bs, b, x, first);
            assert_eq!(with(&x, 0), scalar(&x, 0), "{name} {b} random");
            // Windows shifted by 0..2*LANES elements at both ends (whole blocks in between).
            for shift in 0..shifts {
                let w = &x[shift..shift + 32 * window];
                assert_eq!(with(w, 0), scalar(w, 0), "{name} {b} shift {shift}");
            }
            assert_eq!(with(&s, 0), scalar(&s, 0), "{name} {b} specials");
            let mut bad = s.clone();
            bad[100] = f32::NAN;
            assert_eq!(with(&bad, 5), Err(QuantError::NonFinite { element: 105 }), "{name} {b}");
            assert_eq!(scalar(&bad, 5), Err(QuantError::NonFinite { element: 105 }), "{name}");
            bad[100] = 70000.0;
            assert_eq!(with(&bad, 5), Err(QuantError::OutOfRange { element: 105 }), "{name} {b}");
        }
    }

    #[test]
    fn ggml_simd32_sse2_matches_scalar_reference() {
        if cfg!(target_arch = "x86_64") {
            assert!(Backend::Sse2.is_available(), "SSE2 is the x86_64 baseline");
        }
        parity(Backend::Sse2);
    }

    #[test]
    fn ggml_simd32_avx2_matches_scalar_reference() {
        parity(Backend::Avx2);
    }

    #[test]
    fn ggml_simd32_neon_matches_scalar_reference() {
        if cfg!(target_arch = "aarch64") {
            assert!(Backend::Neon.is_available(), "NEON is the aarch64 baseline");
        }
        parity(Backend::Neon);
    }
}
