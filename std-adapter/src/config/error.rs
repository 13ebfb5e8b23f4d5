//! What can be wrong with a configuration; the variant names follow the guide.

use std::path::PathBuf;

/// A configuration problem. The variant names follow the configuration guide.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `bit_width` is not 2, 4 or 8.
    #[error("InvalidBitWidth({0}): bit_width must be 2, 4 or 8")]
    InvalidBitWidth(u32),
    /// `num_time_groups` is outside 1-100.
    #[error("InvalidTimeGroups({0}): num_time_groups must be between 1 and 100")]
    InvalidTimeGroups(u32),
    /// `group_size` is not 32, 64, 128 or 256.
    #[error("InvalidGroupSize({0}): group_size must be 32, 64, 128 or 256")]
    InvalidGroupSize(usize),
    /// `min_accuracy` is outside 0.0-1.0.
    #[error("InvalidAccuracy({0}): min_accuracy must be between 0.0 and 1.0")]
    InvalidAccuracy(f64),
    /// `max_memory` is below the minimum.
    #[error("InvalidMaxMemory({0}): max_memory must be at least 32 MiB (33554432 bytes)")]
    InvalidMaxMemory(u64),
    /// An unknown deployment profile.
    #[error("InvalidProfile({0:?}): deployment_profile must be edge, local or cloud")]
    InvalidProfile(String),
    /// An unknown modality.
    #[error("InvalidModality({0:?}): modality must be text, code, image or audio")]
    InvalidModality(String),
    /// An unknown preset name.
    #[error("UnknownPreset({name:?}): allowed presets are {allowed}")]
    UnknownPreset {
        /// The name given.
        name: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// An empty include/exclude pattern.
    #[error("InvalidPattern({0:?}): patterns must not be empty")]
    InvalidPattern(String),
    /// An include or exclude pattern that matches no tensor of the model: a typo would
    /// otherwise quantize nothing (or everything) without a word.
    #[error(
        "{option} pattern `{}` matches no tensor name of the model",
        crate::error::escape_controls(pattern)
    )]
    PatternMatchesNothing {
        /// `include` or `exclude`.
        option: String,
        /// The pattern.
        pattern: String,
    },
    /// `activation_bits` is outside 2-16.
    #[error("InvalidActivationBits({0}): activation_bits must be between 2 and 16")]
    InvalidActivationBits(u8),
    /// A `thermodynamic:` knob is out of range (the message names it).
    #[error("InvalidThermodynamic: thermodynamic.{0}")]
    InvalidThermodynamic(String),
    /// `target_bpw` is not a finite number in 1-32.
    #[error("InvalidTargetBpw({0}): target_bpw must be a number of bits per weight from 1.0 to 32.0")]
    InvalidTargetBpw(f64),
    /// `equalization_alpha` is outside 0-1 (or NaN).
    #[error("InvalidEqualizationAlpha({0}): equalization_alpha must be a number from 0.0 to 1.0")]
    InvalidEqualizationAlpha(f32),
    /// A byte count that cannot be parsed.
    #[error("InvalidBytes({0:?}): expected bytes such as 268435456, 512M or 2G")]
    InvalidBytes(String),
    /// A malformed environment variable.
    #[error("environment variable {var}={value:?}: expected {expected}")]
    Env {
        /// The variable.
        var: String,
        /// Its value.
        value: String,
        /// What was expected.
        expected: String,
    },
    /// An `ARROW_QUANT_*` variable whose value is not UTF-8.
    #[error("environment variable {0} is not valid UTF-8 text")]
    EnvNotUtf8(String),
    /// An unreadable or malformed config file.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
