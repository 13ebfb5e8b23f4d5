//! The sums behind [`super::QualityAccumulator`]: one pass over an original chunk (f32,
//! f16 or bf16, read in place) and its f32 reconstruction.
//!
//! Every per-element term is computed in f64 from exact f32 values, so it equals the
//! scalar reference's term; the paths differ only in the order of the additions (the
//! scalar reference keeps [`SCALAR_LANES`] partial sums, a SIMD path two vectors of
//! f64 lanes per sum). The maximum and the count are identical on every path.
//!
//! Widening 16-bit input here, instead of in a separate pass into a scratch buffer,
//! and summing in vector registers is what lets the quantizer measure every tensor it
//! writes at a small fraction of the cost of encoding it.

use crate::input::Input;
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
use crate::simd::vector::Simd;
use crate::simd::{Backend, Isa};

/// Partial sums of one chunk.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Sums {
    pub(super) dot: f64,
    pub(super) ref_sq: f64,
    pub(super) test_sq: f64,
    pub(super) err_sq: f64,
    pub(super) max_abs_err: f64,
}

impl Sums {
    /// Nothing summed yet.
    pub(super) const ZERO: Sums = Sums { dot: 0.0, ref_sq: 0.0, test_sq: 0.0, err_sq: 0.0, max_abs_err: 0.0 };
}

/// Independent accumulation lanes of the scalar reference: one dependency chain per
/// sum would bound it at one element per add latency.
const SCALAR_LANES: usize = 4;

/// The sums of `reference` against `test` (equal lengths) with `backend`, or with the
/// scalar reference if this CPU cannot run it.
pub(super) fn sums(backend: Backend, reference: Input<'_>, test: &[f32]) -> Sums {
    match backend.isa().unwrap_or(Isa::Scalar) {
        Isa::Scalar => scalar(reference, test),
        #[cfg(target_arch = "x86_64")]
        Isa::Sse2(t) => simd_sums(t, reference, test),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: an `Avx2` token exists only if the CPU runs AVX2 and F16C.
        Isa::Avx2(t) => unsafe { sums_avx2(t, reference, test) },
        #[cfg(all(target_arch = "aarch64", target_feature = "neon"))]
        Isa::Neon(t) => simd_sums(t, reference, test),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c")]
fn sums_avx2(t: crate::simd::avx2::Avx2, reference: Input<'_>, test: &[f32]) -> Sums {
    simd_sums(t, reference, test)
}

/// The scalar reference.
fn scalar(reference: Input<'_>, test: &[f32]) -> Sums {
    let mut lanes = [Sums::default(); SCALAR_LANES];
    for (i, &y) in test.iter().enumerate() {
        push(&mut lanes[i % SCALAR_LANES], reference.get(i), y);
    }
    let mut total = Sums::default();
    for l in &lanes {
        fold(&mut total, l);
    }
    total
}

/// Adds one pair of elements (the scalar reference's per-element terms).
#[inline(always)]
pub(super) fn push(s: &mut Sums, x: f32, y: f32) {
    let (x, y) = (f64::from(x), f64::from(y));
    let e = x - y;
    s.dot += x * y;
    s.ref_sq += x * x;
    s.test_sq += y * y;
    s.err_sq += e * e;
    let ae = if e < 0.0 { -e } else { e };
    // A NaN error never raises the maximum (the quantizer rejects non-finite input).
    s.max_abs_err = if ae > s.max_abs_err { ae } else { s.max_abs_err };
}

/// Adds the sums of another part; the maximum is the larger one.
pub(super) fn fold(total: &mut Sums, part: &Sums) {
    total.dot += part.dot;
    total.ref_sq += part.ref_sq;
    total.test_sq += part.test_sq;
    total.err_sq += part.err_sq;
    if part.max_abs_err > total.max_abs_err {
        total.max_abs_err = part.max_abs_err;
    }
}

/// f64 vector accumulators: two per sum (the low and high halves of an f32 vector).
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
struct VecSums<S: Simd> {
    dot: [S::D; 2],
    ref_sq: [S::D; 2],
    test_sq: [S::D; 2],
    err_sq: [S::D; 2],
    max_abs_err: [S::D; 2],
}

#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
impl<S: Simd> VecSums<S> {
    #[inline(always)]
    fn new(s: S) -> Self {
        let z = [s.dzero(); 2];
        VecSums { dot: z, ref_sq: z, test_sq: z, err_sq: z, max_abs_err: z }
    }

    #[inline(always)]
    fn push(&mut self, s: S, x: S::V, y: S::V) {
        let (xs, ys) = (s.widen_f64(x), s.widen_f64(y));
        for h in 0..2 {
            let (x, y) = (xs[h], ys[h]);
            let e = s.dsub(x, y);
            self.dot[h] = s.dadd(self.dot[h], s.dmul(x, y));
            self.ref_sq[h] = s.dadd(self.ref_sq[h], s.dmul(x, x));
            self.test_sq[h] = s.dadd(self.test_sq[h], s.dmul(y, y));
            self.err_sq[h] = s.dadd(self.err_sq[h], s.dmul(e, e));
            self.max_abs_err[h] = s.dmax_abs(self.max_abs_err[h], e);
        }
    }

    /// Adds every lane into `total`.
    #[inline(always)]
    fn fold_into(&self, s: S, total: &mut Sums) {
        let part = Sums {
            dot: lane_sum(s, &self.dot),
            ref_sq: lane_sum(s, &self.ref_sq),
            test_sq: lane_sum(s, &self.test_sq),
            err_sq: lane_sum(s, &self.err_sq),
            max_abs_err: 0.0,
        };
        fold(total, &part);
        let mut buf = [0f64; 8];
        let half = S::LANES / 2;
        s.dstore(self.max_abs_err[0], &mut buf[..half]);
        s.dstore(self.max_abs_err[1], &mut buf[half..2 * half]);
        for &m in &buf[..2 * half] {
            if m > total.max_abs_err {
                total.max_abs_err = m;
            }
        }
    }
}

/// The sum of every lane of a pair of f64 vectors. A function, not a closure: a
/// closure would not inherit the entry point's `#[target_feature]`.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
#[inline(always)]
fn lane_sum<S: Simd>(s: S, v: &[S::D; 2]) -> f64 {
    let mut buf = [0f64; 8];
    let half = S::LANES / 2;
    s.dstore(v[0], &mut buf[..half]);
    s.dstore(v[1], &mut buf[half..2 * half]);
    buf[..2 * half].iter().sum()
}

/// The SIMD algorithm: whole vectors in registers, the remainder with the scalar terms.
///
/// Written as one loop per input type (not a closure choosing the load): a closure
/// would not inherit the entry point's `#[target_feature]`.
#[cfg(any(target_arch = "x86_64", all(target_arch = "aarch64", target_feature = "neon")))]
#[inline(always)]
fn simd_sums<S: Simd>(s: S, reference: Input<'_>, test: &[f32]) -> Sums {
    let l = S::LANES;
    let whole = test.len() / l * l;
    let mut acc = VecSums::<S>::new(s);
    let ys = test[..whole].chunks_exact(l);
    match reference {
        Input::F32(x) => {
            for (x, y) in x[..whole].chunks_exact(l).zip(ys) {
                acc.push(s, s.load(x), s.load(y));
            }
        }
        Input::F16(x) => {
            let x: &[u16] = bytemuck::cast_slice(&x[..whole]);
            for (x, y) in x.chunks_exact(l).zip(ys) {
                acc.push(s, s.load_f16(x), s.load(y));
            }
        }
        Input::Bf16(x) => {
            let x: &[u16] = bytemuck::cast_slice(&x[..whole]);
            for (x, y) in x.chunks_exact(l).zip(ys) {
                acc.push(s, s.load_bf16(x), s.load(y));
            }
        }
    }
    let mut total = Sums::default();
    acc.fold_into(s, &mut total);
    let mut tail = Sums::default();
    for (i, &y) in test.iter().enumerate().skip(whole) {
        push(&mut tail, reference.get(i), y);
    }
    fold(&mut total, &tail);
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use half::{bf16, f16};

    /// Values of every magnitude class: zeros, subnormal f16, tiny and huge f32.
    fn pattern(n: usize) -> (Vec<f32>, Vec<f32>) {
        let x: Vec<f32> = (0..n)
            .map(|i| {
                let m = ((i * 2_654_435_761) % 1000) as f32 / 1000.0 - 0.5;
                match i % 7 {
                    0 => 0.0,
                    1 => m * 1e-6,
                    2 => m * 6e4,
                    _ => m,
                }
            })
            .collect();
        let y = x.iter().enumerate().map(|(i, &v)| v + ((i % 5) as f32 - 2.0) * 1e-3).collect();
        (x, y)
    }

    fn close(a: &Sums, b: &Sums) {
        for (p, q) in [(a.dot, b.dot), (a.ref_sq, b.ref_sq), (a.test_sq, b.test_sq), (a.err_sq, b.err_sq)] {
            assert!((p - q).abs() <= 1e-12 * q.abs().max(1e-300), "{a:?} vs {b:?}");
        }
        assert_eq!(a.max_abs_err, b.max_abs_err);
    }

    #[test]
    fn every_path_matches_the_scalar_reference_on_every_input_type() {
        for n in [0usize, 1, 3, 7, 8, 9, 31, 256, 1000] {
            let (x, y) = pattern(n);
            let h: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
            let b: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
            for input in [Input::F32(&x), Input::F16(&h), Input::Bf16(&b)] {
                let want = scalar(input, &y);
                for backend in Backend::available() {
                    close(&sums(backend, input, &y), &want);
                }
            }
        }
    }

    #[test]
    fn the_scalar_reference_is_the_plain_sum() {
        let (x, y) = pattern(203);
        let got = scalar(Input::F32(&x), &y);
        let mut serial = Sums::default();
        for (&a, &b) in x.iter().zip(&y) {
            push(&mut serial, a, b);
        }
        close(&got, &serial);
        let e_max = x.iter().zip(&y).map(|(&a, &b)| (f64::from(a) - f64::from(b)).abs()).fold(0.0, f64::max);
        assert_eq!(got.max_abs_err, e_max);
    }
}
