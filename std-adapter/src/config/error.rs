//! What can be wrong with a configuration; the variant names follow the guide, the
//! messages are plain words with the value as the user wrote it and the allowed values.

use std::path::PathBuf;

/// A configuration problem. The variant names follow the configuration guide.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `bit_width` is not 2, 4 or 8.
    #[error("bit width {0} is not supported (allowed: 2, 4, 8)")]
    InvalidBitWidth(u32),
    /// `num_time_groups` is outside 1-100.
    #[error("num_time_groups {0} is not supported (allowed: 1 to 100)")]
    InvalidTimeGroups(u32),
    /// `group_size` is not 32, 64, 128 or 256.
    #[error("group size {0} is not supported (allowed: 32, 64, 128, 256)")]
    InvalidGroupSize(usize),
    /// `min_accuracy` is outside 0.0-1.0.
    #[error("min accuracy {0} is out of range (allowed: 0.0 to 1.0)")]
    InvalidAccuracy(f64),
    /// `max_memory` is below the minimum.
    #[error("max memory {0} bytes is too small (at least 32M, 33554432 bytes)")]
    InvalidMaxMemory(u64),
    /// An unknown deployment profile.
    #[error("deployment profile `{}` is unknown (allowed: edge, local, cloud)", crate::error::escape_controls(.0))]
    InvalidProfile(String),
    /// An unknown modality.
    #[error("modality `{}` is unknown (allowed: text, code, image, audio)", crate::error::escape_controls(.0))]
    InvalidModality(String),
    /// An unknown preset name.
    #[error("preset `{}` is unknown (allowed: {allowed})", crate::error::escape_controls(name))]
    UnknownPreset {
        /// The name given.
        name: String,
        /// The allowed names, comma-separated.
        allowed: String,
    },
    /// An empty include/exclude pattern.
    #[error("an include or exclude pattern is empty")]
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
    #[error("activation bits {0} is not supported (allowed: 2 to 16)")]
    InvalidActivationBits(u8),
    /// A `thermodynamic:` knob is out of range (the message names it).
    #[error("thermodynamic.{}", crate::error::escape_controls(.0))]
    InvalidThermodynamic(String),
    /// `target_bpw` is not a finite number in 1-32.
    #[error("target bits per weight {0} is out of range (allowed: 1.0 to 32.0)")]
    InvalidTargetBpw(f64),
    /// `equalization_alpha` is outside 0-1 (or NaN).
    #[error("equalization alpha {0} is out of range (allowed: 0.0 to 1.0)")]
    InvalidEqualizationAlpha(f32),
    /// A byte count that cannot be parsed.
    #[error("`{}` is not a byte count (write bytes such as 268435456, 512M or 2G)", crate::error::escape_controls(.0))]
    InvalidBytes(String),
    /// A malformed environment variable.
    #[error("environment variable {var}=\"{}\": expected {expected}", crate::error::escape_controls(value))]
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
