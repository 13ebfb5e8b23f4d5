//! Diffusion-model features: time-aware activation parameters, thermodynamic smoothing of
//! parameter sequences, channel equalization and sensitivity-driven mixed precision.
//!
//! Everything here is `no_std`, deterministic, and works in memory that the caller can
//! name: inputs are slices, scratch space is passed in (with a `*_len` function giving
//! its size), and the streaming pieces hold fixed-size arrays.
//!
//! # Wiring guide (for the std adapter and the CLI)
//!
//! | config key | what to call | what to store / report |
//! |---|---|---|
//! | `enable_time_aware`, `num_time_groups`, `activation_bits` | [`time_groups::split_optimal`] per layer on its [`TimestepStats`] (read from the calibration file) | one [`TimeGroupParams`] per group: `t_start..t_end`, `scale`, `zero_point`, `lo`, `hi`. A runtime calls [`time_groups::params_for_timestep`] |
//! | `thermodynamic.validation` | [`thermo::MarkovValidator`] over any parameter sequence (time-group scales, weight-group scales) | [`MarkovReport`]: violations and maximum ratio per layer |
//! | `thermodynamic.boundary_smoothing` | [`thermo::BoundarySmoother`] (streaming, fixed window) | the smoothed per-timestep ranges (or weight scales) |
//! | `thermodynamic.transition_optimization` | [`thermo::optimize_transitions`] with a [`thermo::SequenceModel`] | the optimised sequence and its [`thermo::OptimizeReport`] |
//! | `enable_spatial` (+ calibration per-channel absmax) | [`equalize::smoothquant_factors`] then [`equalize::apply_to_weight`] | the factors `s` per input channel: a runtime divides activations by them. Without calibration data: skip and say so |
//! | `target_bpw` / `--target-bpw` | [`sensitivity::measure`] per tensor and candidate, then [`sensitivity::allocate`] | the chosen candidate per tensor and its bpw / error |
//!
//! Defaults follow the measurements in `docs/DIFFUSION.md`: time-aware grouping with the DP
//! split is on (2.4x lower activation MSE than the uniform split on the synthetic set);
//! boundary smoothing and transition optimization are off (smoothing removes every Markov
//! violation but gains only 0.4 % activation MSE while needing per-timestep parameters, and
//! costs about 2 dB on weight scales; the optimizer at its documented defaults changes
//! nothing measurable); Markov validation only reports; equalization runs when calibration
//! absmax is present; mixed precision runs when a target bpw is given.

pub mod equalize;
pub mod sensitivity;
pub mod thermo;
pub mod time_groups;

use core::fmt;

use crate::QuantError;

pub use thermo::{
    BetaSchedule, BoundarySmoothingConfig, InterpolationMethod, MarkovReport, ThermodynamicConfig,
    TransitionOptimizationConfig, ValidationConfig,
};
pub use time_groups::{TimeGroupParams, TimestepStats};

/// What can go wrong in the diffusion features (bad configuration or bad statistics).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiffusionError {
    /// No timesteps (or no elements) were given.
    Empty,
    /// `num_time_groups` is 0 or larger than the number of timesteps.
    InvalidTimeGroups {
        /// The requested number of groups.
        groups: usize,
        /// The number of timesteps.
        timesteps: usize,
    },
    /// Activation bits outside 2..=16.
    InvalidActivationBits(u8),
    /// A statistic is NaN or infinite, or min > max, or std < 0.
    InvalidStats {
        /// Index of the offending timestep (or channel).
        index: usize,
    },
    /// A configuration value is out of its valid range; the field is named.
    InvalidConfig(&'static str),
    /// A buffer has the wrong length.
    LengthMismatch {
        /// What the operation needed.
        expected: usize,
        /// What it was given.
        actual: usize,
    },
    /// No assignment of candidates meets the bit budget.
    BudgetTooSmall {
        /// The smallest achievable average, in milli-bits per weight.
        min_millibits: u32,
    },
    /// A quantization step failed.
    Quant(QuantError),
}

impl fmt::Display for DiffusionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::Empty => f.write_str("no timesteps or elements to process"),
            Self::InvalidTimeGroups { groups, timesteps } => write!(
                f,
                "num_time_groups {groups} is invalid for {timesteps} timesteps: allowed 1..={timesteps}"
            ),
            Self::InvalidActivationBits(b) => {
                write!(f, "activation_bits {b} is invalid: allowed 2..=16")
            }
            Self::InvalidStats { index } => {
                write!(f, "statistics at index {index} are invalid (NaN/infinite, min > max or std < 0)")
            }
            Self::InvalidConfig(field) => write!(f, "invalid configuration: {field}"),
            Self::LengthMismatch { expected, actual } => {
                write!(f, "buffer length {actual} does not match the expected {expected}")
            }
            Self::BudgetTooSmall { min_millibits } => write!(
                f,
                "bit budget too small: the cheapest assignment needs {}.{:03} bits per weight",
                min_millibits / 1000,
                min_millibits % 1000
            ),
            Self::Quant(e) => write!(f, "quantization: {e}"),
        }
    }
}

impl core::error::Error for DiffusionError {}

impl From<QuantError> for DiffusionError {
    fn from(e: QuantError) -> Self {
        Self::Quant(e)
    }
}
