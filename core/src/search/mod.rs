//! Calibration-free parameter search: choose scales and offsets that minimise the
//! reconstruction error instead of spanning the min-max range.
//!
//! - [`affine`](self) (internal): the per-group fit. Min-max start, a grid of range
//!   shrink factors each refitted by least squares (MSE-optimal clipping), then
//!   alternating least squares over the code assignment. Optional importance
//!   weights ([`Weighting`]).
//! - [`SearchedGroupCodec`]: the plain [`GroupFormat`](crate::GroupFormat) layout
//!   with searched parameters. Files it writes decode with the ordinary
//!   [`GroupCodec`](crate::GroupCodec); it is never worse than min-max on any group.
//! - The two-level formats of [`crate::kquant`] run the same fit, eight sub-groups
//!   at a time.
//!
//! # Determinism
//!
//! The search uses only IEEE f32/f64 additions, multiplications and divisions in a
//! fixed order (eight accumulator lanes reduced pairwise), no fused multiply-add, and
//! from `libm` only the exactly rounded `floor`, `rint` and `sqrt`, so the chosen
//! parameters and codes are bit-identical on x86_64 and aarch64.
//!
//! # Memory
//!
//! Everything works on one block on the stack (at most 256 f32 of weights plus 256
//! codes and the per-sub-group parameters): constant memory, no allocation.

pub(crate) mod affine;
pub(crate) mod group;

pub use group::SearchedGroupCodec;

/// Per-element importance used by the search's error measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Weighting {
    /// Every element counts the same: minimises the plain squared error (what
    /// cosine, rel-RMSE and SQNR measure).
    Uniform,
    /// `|x| + rms(block)`: favours large weights a little (ggml Q4_K's choice).
    Magnitude,
    /// `x² + mean(x²)` over the block: favours large weights more.
    Energy,
}

/// Knobs of the parameter search. They change only how parameters are chosen, never
/// the encoded layout, so they are not part of a codec's id.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchConfig {
    /// Candidate range shrink factors tried per group (0: min-max and refit only).
    pub grid_steps: u8,
    /// Smallest grid offset `r` in `(qmax + r) / (max - min)`.
    pub grid_lo: f32,
    /// Largest grid offset `r`.
    pub grid_hi: f32,
    /// Alternating least-squares rounds after the grid.
    pub refit_iters: u8,
    /// Importance weighting of the error.
    pub weighting: Weighting,
    /// Two-level formats: also try the neighbouring quantized sub-scale and sub-min
    /// (four candidates per sub-group, chosen by actual error) instead of rounding.
    pub neighbors: bool,
    /// Two-level formats: rounds of least-squares refit of the super-block scales
    /// given the codes (each followed by a new choice of sub-scales).
    pub block_refits: u8,
}

impl SearchConfig {
    /// Min-max start plus two rounds of alternating least squares, rounded
    /// sub-scales and one refit of the super-block scales: cheap.
    pub const FAST: SearchConfig = SearchConfig {
        grid_steps: 0,
        grid_lo: -1.0,
        grid_hi: 1.0,
        refit_iters: 2,
        weighting: Weighting::Uniform,
        neighbors: false,
        block_refits: 1,
    };

    /// A 4-step range grid, one least-squares round and the best of the four
    /// neighbouring sub-scale/sub-min codes: most of [`FINE`](Self::FINE)'s gain at a
    /// third of its cost.
    pub const BALANCED: SearchConfig = SearchConfig {
        grid_steps: 4,
        grid_lo: -1.0,
        grid_hi: 1.0,
        refit_iters: 1,
        weighting: Weighting::Uniform,
        neighbors: true,
        block_refits: 0,
    };

    /// A 21-step grid, four least-squares rounds, neighbouring sub-codes and three
    /// super-scale refits: slowest, best.
    pub const FINE: SearchConfig = SearchConfig {
        grid_steps: 21,
        grid_lo: -1.0,
        grid_hi: 1.0,
        refit_iters: 4,
        weighting: Weighting::Uniform,
        neighbors: true,
        block_refits: 3,
    };
}

/// Lanes of the weight chunks handed to the passes in [`affine`].
pub(crate) const WEIGHT_LANES: usize = 8;

/// Per-element weights as seen by the passes: a constant 1 or a slice.
pub(crate) trait Weights: Copy {
    /// Weights of elements `8k .. 8k + 8`.
    fn chunk(&self, k: usize) -> [f32; WEIGHT_LANES];
    /// Weight of element `i`.
    fn at(&self, i: usize) -> f32;
}

/// Every weight is 1 (the multiplications fold away).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unit;

impl Weights for Unit {
    #[inline(always)]
    fn chunk(&self, _k: usize) -> [f32; WEIGHT_LANES] {
        [1.0; WEIGHT_LANES]
    }

    #[inline(always)]
    fn at(&self, _i: usize) -> f32 {
        1.0
    }
}

impl Weights for &[f32] {
    #[inline(always)]
    fn chunk(&self, k: usize) -> [f32; WEIGHT_LANES] {
        let mut out = [0.0; WEIGHT_LANES];
        out.copy_from_slice(&self[k * WEIGHT_LANES..(k + 1) * WEIGHT_LANES]);
        out
    }

    #[inline(always)]
    fn at(&self, i: usize) -> f32 {
        self[i]
    }
}

/// Fills `w[..x.len()]` with the importance of each element of a block.
pub(crate) fn fill_weights(weighting: Weighting, x: &[f32], w: &mut [f32]) {
    let n = x.len().max(1) as f32;
    let mean_sq = x.iter().map(|v| v * v).sum::<f32>() / n;
    match weighting {
        Weighting::Uniform => w.iter_mut().for_each(|v| *v = 1.0),
        Weighting::Magnitude => {
            let rms = libm::sqrtf(mean_sq);
            for (o, &v) in w.iter_mut().zip(x) {
                *o = rms + if v < 0.0 { -v } else { v };
            }
        }
        Weighting::Energy => {
            for (o, &v) in w.iter_mut().zip(x) {
                *o = mean_sq + v * v;
            }
        }
    }
}
