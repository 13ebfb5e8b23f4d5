//! Streaming quality metrics: cosine similarity, relative RMSE and SQNR.
//!
//! Sums are accumulated in f64 as chunks pass, so validating a tensor never needs the
//! whole tensor in memory. Accumulators over disjoint parts can be merged. The sums
//! over a chunk run on the SIMD paths of [`crate::simd`] (`compare`).

mod compare;

use crate::input::Input;
use crate::simd::Backend;

/// Running sums comparing a reference signal with its reconstruction.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QualityAccumulator {
    sums: compare::Sums,
    count: u64,
}

/// Metrics of a finished comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quality {
    /// Cosine similarity (1 when both signals are all zero).
    pub cosine: f64,
    /// `||x - y|| / ||x||` (0 when both are zero, infinite when only `x` is).
    pub rel_rmse: f64,
    /// `10 log10(||x||^2 / ||x - y||^2)` in dB (infinite for an exact reconstruction).
    pub sqnr_db: f64,
    /// Largest absolute element error.
    pub max_abs_err: f64,
    /// Elements compared.
    pub count: u64,
}

impl QualityAccumulator {
    /// An empty accumulator.
    pub const fn new() -> Self {
        QualityAccumulator { sums: compare::Sums::ZERO, count: 0 }
    }

    /// Adds one pair of equally long chunks, with the fastest backend of this CPU.
    ///
    /// The result can differ from element-by-element [`push`](Self::push) in the last
    /// bits of the f64 sums only (the order of the additions; see `compare`).
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn update(&mut self, reference: &[f32], test: &[f32]) {
        self.update_input(Input::F32(reference), test);
    }

    /// Adds an original chunk in any input type and its f32 reconstruction, read in
    /// place (16-bit input is widened in registers), with the fastest backend.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn update_input(&mut self, reference: Input<'_>, test: &[f32]) {
        self.update_input_with(Backend::detect(), reference, test);
    }

    /// [`update_input`](Self::update_input) with a chosen backend (the scalar reference
    /// if this CPU cannot run it): for tests and benchmarks comparing the paths.
    ///
    /// # Panics
    /// If the lengths differ.
    pub fn update_input_with(&mut self, backend: Backend, reference: Input<'_>, test: &[f32]) {
        assert_eq!(reference.len(), test.len(), "chunks must have equal length");
        compare::fold(&mut self.sums, &compare::sums(backend, reference, test));
        self.count += test.len() as u64;
    }

    /// Adds one pair of elements.
    #[inline]
    pub fn push(&mut self, x: f32, y: f32) {
        compare::push(&mut self.sums, x, y);
        self.count += 1;
    }

    /// Combines with an accumulator over another part of the same tensor.
    pub fn merge(&mut self, other: &QualityAccumulator) {
        compare::fold(&mut self.sums, &other.sums);
        self.count += other.count;
    }

    /// Elements seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The metrics so far.
    pub fn finish(&self) -> Quality {
        let compare::Sums { dot, ref_sq, test_sq, err_sq, max_abs_err } = self.sums;
        let norm = libm::sqrt(ref_sq) * libm::sqrt(test_sq);
        let cosine = if norm > 0.0 {
            dot / norm
        } else if ref_sq == 0.0 && test_sq == 0.0 {
            1.0
        } else {
            0.0
        };
        let rel_rmse = if ref_sq > 0.0 {
            libm::sqrt(err_sq / ref_sq)
        } else if err_sq == 0.0 {
            0.0
        } else {
            f64::INFINITY
        };
        let sqnr_db = if err_sq > 0.0 {
            if ref_sq > 0.0 { 10.0 * libm::log10(ref_sq / err_sq) } else { f64::NEG_INFINITY }
        } else {
            f64::INFINITY
        };
        Quality { cosine, rel_rmse, sqnr_db, max_abs_err, count: self.count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        let mut q = QualityAccumulator::new();
        q.update(&[1.0, 0.0], &[1.0, 0.0]);
        let r = q.finish();
        assert_eq!(r.cosine, 1.0);
        assert_eq!(r.rel_rmse, 0.0);
        assert!(r.sqnr_db.is_infinite());

        let mut q = QualityAccumulator::new();
        q.update(&[3.0, 4.0], &[3.0, 3.0]);
        let r = q.finish();
        // err^2 = 1, ref^2 = 25 -> rel_rmse 0.2, sqnr 10 log10 25
        assert!((r.rel_rmse - 0.2).abs() < 1e-12);
        assert!((r.sqnr_db - 10.0 * 25f64.log10()).abs() < 1e-9);
        assert!((r.cosine - 21.0 / (5.0 * 18f64.sqrt())).abs() < 1e-12);
        assert_eq!(r.max_abs_err, 1.0);
    }

    #[test]
    fn lanes_agree_with_element_by_element_sums() {
        let x: [f32; 203] = core::array::from_fn(|i| ((i * 37 % 101) as f32 - 50.0) * 0.013);
        let y: [f32; 203] = core::array::from_fn(|i| x[i] + ((i * 11 % 7) as f32 - 3.0) * 1e-3);
        let mut lanes = QualityAccumulator::new();
        lanes.update(&x, &y);
        let mut serial = QualityAccumulator::new();
        for (&a, &b) in x.iter().zip(&y) {
            serial.push(a, b);
        }
        let (l, s) = (lanes.finish(), serial.finish());
        assert_eq!(l.count, s.count);
        assert_eq!(l.max_abs_err, s.max_abs_err);
        assert!((l.cosine - s.cosine).abs() < 1e-14, "{l:?} {s:?}");
        assert!((l.sqnr_db - s.sqnr_db).abs() < 1e-10, "{l:?} {s:?}");
        assert!((l.rel_rmse - s.rel_rmse).abs() < 1e-14, "{l:?} {s:?}");
    }

    #[test]
    fn chunking_does_not_matter() {
        let x: [f32; 7] = [1.0, -2.0, 3.5, 0.25, -7.0, 2.0, 1.0];
        let y: [f32; 7] = [1.1, -2.0, 3.0, 0.0, -7.5, 2.0, 0.5];
        let mut whole = QualityAccumulator::new();
        whole.update(&x, &y);
        let mut a = QualityAccumulator::new();
        a.update(&x[..3], &y[..3]);
        let mut b = QualityAccumulator::new();
        b.update(&x[3..], &y[3..]);
        a.merge(&b);
        assert_eq!(a.finish(), whole.finish());
    }
}
