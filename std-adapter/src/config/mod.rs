//! Configuration: deployment profiles, YAML files, `ARROW_QUANT_*` environment
//! overrides and validation.
//!
//! # Precedence
//!
//! Values are resolved in layers, each overriding the one before:
//!
//! 1. built-in defaults (the `local` profile),
//! 2. the deployment profile (`edge`, `local` or `cloud`; the table below),
//! 3. the YAML config file,
//! 4. environment variables `ARROW_QUANT_*`,
//! 5. explicit arguments (command-line flags).
//!
//! The profile itself is taken from the highest layer that names one
//! (`deployment_profile:` in the file, `ARROW_QUANT_DEPLOYMENT_PROFILE`, `--profile`);
//! every other field set in the file, the environment or the arguments then applies
//! on top of that profile's values. So `--profile edge` with a file saying
//! `bit_width: 8` gives 8 bits with the rest of the edge profile.
//!
//! | field | edge | local | cloud |
//! |---|---|---|---|
//! | `bit_width` | 2 | 4 | 8 |
//! | `num_time_groups` | 5 | 10 | 20 |
//! | `group_size` | 256 | 128 | 64 |
//! | `enable_time_aware` | true | true | true |
//! | `enable_spatial` | false | true | true |
//! | `min_accuracy` | 0.65 | 0.85 | 0.95 |
//! | `calibration_samples` | 32 | 128 | 512 |
//! | `enable_streaming` | true | false | false |
//! | `preset` | `int2` | `int4` | `int8` |
//!
//! Each profile quantizes with the quality preset of its bit width (`int2`, `int4`,
//! `int8`: two-level codecs searched for the lowest error, `arrowquant presets` lists
//! them with their size and quality), so the first run shows a good result. A layer
//! that sets `bit_width` without a `preset` gets the quality preset of that width; a
//! layer that sets `group_size` or `scheme` (the plain group format's knobs) gets the
//! plain min-max group codec, as does `preset: fast`.
//!
//! Every profile streams in bounded memory (`max_memory`, default 256 MiB):
//! `enable_streaming` is recorded for compatibility with the configuration guide but
//! the adapter never loads a whole model. `calibration_samples` is validated and
//! recorded in the output file; the group codecs of this version do not use it.
//! `enable_spatial` turns on channel equalization when the calibration file has
//! per-channel absmax (below).
//!
//! # Diffusion features (docs/DIFFUSION.md)
//!
//! | field | default | what it does |
//! |---|---|---|
//! | `calibration` | none | calibration statistics file (docs/CALIBRATION.md); without it no time-aware parameters are computed, and the report says so |
//! | `enable_time_aware` | true | with `calibration`: per calibration layer, split the timesteps into `num_time_groups` groups (DP) and store activation scale / zero point per group |
//! | `activation_bits` | 8 | activation code width of those parameters (2-16) |
//! | `thermodynamic` | see below | nested section: `validation`, `boundary_smoothing`, `transition_optimization` ([`ThermodynamicConfig`], defaults of the API reference) applied to the time-group parameters |
//! | `enable_spatial` | profile (true for `local`, `cloud`) | with `calibration` holding `channel_absmax`: channel equalization (SmoothQuant) of the 2-D weight each calibration layer feeds (docs/DIFFUSION.md) |
//! | `equalization_alpha` | 0.5 | migration strength of that equalization (0-1) |
//! | `target_bpw` | none | mixed precision: choose a codec per tensor so the quantized payload averages at most this many bits per weight |
//! | `compression` | `zstd` | Parquet page compression: `zstd` (level 1) or `none` (the file's size then shows the payload bits per weight; slow boards skip zstd's time) |
//!
//! ```yaml
//! calibration: cal.json
//! num_time_groups: 10
//! thermodynamic:
//!   validation: { enabled: true, smoothness_threshold: 0.25, log_violations: true }
//!   boundary_smoothing: { enabled: true, window_size: 5, interpolation: cubic }   # linear | cubic | sigmoid
//!   transition_optimization:
//!     enabled: false
//!     markov_weight: 0.1
//!     entropy_weight: 0.05
//!     learning_rate: 0.01
//!     max_iterations: 50
//!     convergence_threshold: 0.0001
//!     beta_schedule: linear                                                      # linear | cosine
//! target_bpw: 3.0
//! ```
//!
//! Unknown keys inside `thermodynamic` are errors, like everywhere else in the file.
//!
//! # Environment variables
//!
//! `ARROW_QUANT_DEPLOYMENT_PROFILE`, `ARROW_QUANT_BIT_WIDTH`, `ARROW_QUANT_NUM_TIME_GROUPS`,
//! `ARROW_QUANT_GROUP_SIZE`, `ARROW_QUANT_MIN_ACCURACY`, `ARROW_QUANT_CALIBRATION_SAMPLES`,
//! `ARROW_QUANT_FAIL_FAST`, `ARROW_QUANT_NUM_THREADS`, `ARROW_QUANT_ENABLE_STREAMING`,
//! plus `ARROW_QUANT_PRESET`, `ARROW_QUANT_MAX_MEMORY` (bytes or `512M`, `2G`),
//! `ARROW_QUANT_ENABLE_TIME_AWARE`, `ARROW_QUANT_ACTIVATION_BITS`, `ARROW_QUANT_CALIBRATION`
//! (a path), `ARROW_QUANT_TARGET_BPW`, `ARROW_QUANT_ENABLE_SPATIAL` and
//! `ARROW_QUANT_EQUALIZATION_ALPHA`.
//! Booleans accept `true/false/1/0/yes/no/on/off`. A value that is not UTF-8 is an
//! error naming the variable; an `ARROW_QUANT_*` name that is none of these is ignored
//! with a warning naming the nearest known one ([`unknown_env_warnings`]).
//!
//! In the YAML file, numbers and booleans are written as such: `bit_width: "4"` is an
//! error (quote only the text settings: profile, scheme, preset, modality, paths, byte
//! counts). `num_threads` (and `--threads`) above the machine's cores is capped to
//! them ([`Config::effective_threads`]); include and exclude patterns that match no
//! tensor of the model are errors ([`Config::check_patterns`]).

use std::fmt;
use std::path::{Path, PathBuf};

use arrowquant_core::diffusion::ThermodynamicConfig;
use serde::{Deserialize, Serialize};

/// A deployment profile of the configuration guide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Raspberry Pi class boards: the `int2` preset, min accuracy 0.65.
    Edge,
    /// Workstations: the `int4` preset, min accuracy 0.85 (the default).
    #[default]
    Local,
    /// Servers: the `int8` preset, min accuracy 0.95.
    Cloud,
}

impl Profile {
    /// Every profile.
    pub const ALL: [Profile; 3] = [Profile::Edge, Profile::Local, Profile::Cloud];

    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Edge => "edge",
            Profile::Local => "local",
            Profile::Cloud => "cloud",
        }
    }

    /// Parses `edge`, `local` or `cloud` (case-insensitive).
    ///
    /// # Errors
    /// [`ConfigError::InvalidProfile`].
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "edge" => Ok(Profile::Edge),
            "local" => Ok(Profile::Local),
            "cloud" => Ok(Profile::Cloud),
            _ => Err(ConfigError::InvalidProfile(s.to_string())),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kind of model, as the configuration guide names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    /// Text models.
    Text,
    /// Code models.
    Code,
    /// Image models.
    Image,
    /// Audio models.
    Audio,
}

impl Modality {
    /// The lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Modality::Text => "text",
            Modality::Code => "code",
            Modality::Image => "image",
            Modality::Audio => "audio",
        }
    }

    /// Parses `text`, `code`, `image` or `audio` (case-insensitive).
    ///
    /// # Errors
    /// [`ConfigError::InvalidModality`].
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "text" => Ok(Modality::Text),
            "code" => Ok(Modality::Code),
            "image" => Ok(Modality::Image),
            "audio" => Ok(Modality::Audio),
            _ => Err(ConfigError::InvalidModality(s.to_string())),
        }
    }
}

/// How a group's range maps to codes (mirrors [`arrowquant_core::Scheme`], with serde).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "lowercase")]
pub enum SchemeName {
    /// Scale and offset per group (the default).
    #[default]
    Asymmetric,
    /// Scale only, codes centred on zero.
    Symmetric,
}

impl SchemeName {
    /// The core scheme.
    pub fn to_core(self) -> arrowquant_core::Scheme {
        match self {
            SchemeName::Asymmetric => arrowquant_core::Scheme::Asymmetric,
            SchemeName::Symmetric => arrowquant_core::Scheme::Symmetric,
        }
    }

    /// The lowercase name used in files.
    pub fn name(self) -> &'static str {
        match self {
            SchemeName::Asymmetric => "asymmetric",
            SchemeName::Symmetric => "symmetric",
        }
    }
}

/// Default memory budget: 256 MiB.
pub const DEFAULT_MAX_MEMORY: u64 = 256 << 20;
/// Smallest accepted memory budget: 32 MiB (the Parquet writer and one window need that).
pub const MIN_MAX_MEMORY: u64 = 32 << 20;

/// A resolved, validated configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Config {
    /// The profile the defaults came from.
    pub deployment_profile: Profile,
    /// Code width: 2, 4 or 8.
    pub bit_width: u32,
    /// Elements per group: 32, 64, 128 or 256.
    pub group_size: usize,
    /// Group scheme.
    pub scheme: SchemeName,
    /// A named preset of the core (overrides `bit_width`/`group_size`/`scheme` when set).
    pub preset: Option<String>,
    /// Time groups (1-100) of the time-aware activation parameters.
    pub num_time_groups: u32,
    /// Compute time-aware activation parameters when a calibration file is given.
    pub enable_time_aware: bool,
    /// Channel equalization (SmoothQuant) when the calibration file has per-channel
    /// activation absmax ([`crate::features::equalization`]).
    pub enable_spatial: bool,
    /// Minimum cosine similarity per tensor (0.0-1.0); below it the tensor falls back
    /// to the next wider bit width (2 -> 4 -> 8).
    pub min_accuracy: f64,
    /// Recorded, not used by the group codecs.
    pub calibration_samples: u32,
    /// Instead of falling back, stop with an error naming the tensor.
    pub fail_fast: bool,
    /// Worker threads with the `rayon` feature (0 = all cores); ignored without it.
    pub num_threads: usize,
    /// Recorded for compatibility; the adapter always streams.
    pub enable_streaming: bool,
    /// Memory budget in bytes for the whole process (mapped windows, buffers, writer).
    pub max_memory: u64,
    /// Only tensors matching one of these glob patterns (`*`, `?`) are quantized
    /// (empty = all).
    pub include: Vec<String>,
    /// Tensors matching one of these glob patterns are stored unquantized.
    pub exclude: Vec<String>,
    /// Also quantize 1-D tensors (biases, norms); off by default.
    pub quantize_1d: bool,
    /// The model's modality, if known.
    pub modality: Option<Modality>,
    /// Calibration statistics file (docs/CALIBRATION.md) for time-aware parameters.
    #[serde(default)]
    pub calibration: Option<PathBuf>,
    /// Activation code width of the time-aware parameters (2-16, default 8).
    #[serde(default = "default_activation_bits")]
    pub activation_bits: u8,
    /// Thermodynamic smoothing of the time-aware parameters.
    #[serde(default)]
    pub thermodynamic: ThermodynamicConfig,
    /// Mixed precision: average bits per weight of the quantized payload (codes and
    /// block parameters) that the per-tensor codec choice must not exceed.
    #[serde(default)]
    pub target_bpw: Option<f64>,
    /// Migration strength `alpha` of channel equalization (0-1, default 0.5).
    #[serde(default = "default_equalization_alpha")]
    pub equalization_alpha: f32,
    /// Page compression of the Parquet output. Not written when it is the default, so
    /// the configuration stored in a file (and the file's bytes) stay as they were.
    #[serde(default, skip_serializing_if = "Compression::is_default")]
    pub compression: Compression,
}

/// Default migration strength of channel equalization (SmoothQuant's 0.5).
pub const DEFAULT_EQUALIZATION_ALPHA: f32 = 0.5;

fn default_equalization_alpha() -> f32 {
    DEFAULT_EQUALIZATION_ALPHA
}

/// Default activation width of time-aware parameters.
pub const DEFAULT_ACTIVATION_BITS: u8 = 8;

fn default_activation_bits() -> u8 {
    DEFAULT_ACTIVATION_BITS
}

/// Largest boundary-smoothing window the adapter supports (the streaming smoother
/// holds `2 * window + 1 <= 64` values).
pub const MAX_SMOOTHING_WINDOW: usize = 31;

impl Default for Config {
    fn default() -> Self {
        Config::from_profile(Profile::Local)
    }
}

impl Config {
    /// The defaults of a profile (the guide's table).
    pub fn from_profile(p: Profile) -> Self {
        let (bits, groups, gsize, spatial, acc, calib, streaming) = match p {
            Profile::Edge => (2, 5, 256, false, 0.65, 32, true),
            Profile::Local => (4, 10, 128, true, 0.85, 128, false),
            Profile::Cloud => (8, 20, 64, true, 0.95, 512, false),
        };
        Config {
            deployment_profile: p,
            bit_width: bits,
            group_size: gsize,
            scheme: SchemeName::Asymmetric,
            preset: None,
            num_time_groups: groups,
            enable_time_aware: true,
            enable_spatial: spatial,
            min_accuracy: acc,
            calibration_samples: calib,
            fail_fast: false,
            num_threads: 0,
            enable_streaming: streaming,
            max_memory: DEFAULT_MAX_MEMORY,
            include: Vec::new(),
            exclude: Vec::new(),
            quantize_1d: false,
            modality: None,
            calibration: None,
            activation_bits: DEFAULT_ACTIVATION_BITS,
            thermodynamic: ThermodynamicConfig::default(),
            target_bpw: None,
            equalization_alpha: DEFAULT_EQUALIZATION_ALPHA,
            compression: Compression::Zstd,
        }
        .with_preset_of_width()
    }

    /// Resolves a configuration from all layers: profile defaults, an optional YAML file,
    /// the process environment (`ARROW_QUANT_*`) and explicit arguments.
    ///
    /// # Errors
    /// An unreadable or malformed file, a malformed environment value, or a validation
    /// error.
    pub fn resolve(file: Option<&Path>, explicit: &ConfigLayer) -> Result<Self, ConfigError> {
        let file = file.map(ConfigLayer::from_yaml_file).transpose()?;
        let env = ConfigLayer::from_env()?;
        Self::from_layers(&[file.unwrap_or_default(), env, explicit.clone()])
    }

    /// Resolves layers given lowest precedence first (each after the profile defaults).
    ///
    /// # Errors
    /// A validation error.
    pub fn from_layers(layers: &[ConfigLayer]) -> Result<Self, ConfigError> {
        Self::from_defaults_and_layers(&ConfigLayer::default(), layers)
    }

    /// As [`from_layers`](Self::from_layers) with `defaults` (a modality's) applied
    /// first. Those defaults are not the user's choice of codec: their `group_size`
    /// does not turn the profile's quality preset off.
    pub(crate) fn from_defaults_and_layers(
        defaults: &ConfigLayer,
        layers: &[ConfigLayer],
    ) -> Result<Self, ConfigError> {
        let profile = layers.iter().rev().find_map(|l| l.deployment_profile).unwrap_or_default();
        let mut c = Config::from_profile(profile);
        for l in std::iter::once(defaults).chain(layers) {
            l.apply_to(&mut c);
        }
        preset_choice::settle(&mut c, layers);
        c.validate()?;
        Ok(c)
    }

    /// Checks every field.
    ///
    /// # Errors
    /// The first invalid field: [`ConfigError::InvalidBitWidth`],
    /// [`ConfigError::InvalidTimeGroups`], [`ConfigError::InvalidGroupSize`],
    /// [`ConfigError::InvalidAccuracy`], [`ConfigError::InvalidMaxMemory`],
    /// [`ConfigError::UnknownPreset`] or [`ConfigError::InvalidPattern`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !matches!(self.bit_width, 2 | 4 | 8) {
            return Err(ConfigError::InvalidBitWidth(self.bit_width));
        }
        if !(1..=100).contains(&self.num_time_groups) {
            return Err(ConfigError::InvalidTimeGroups(self.num_time_groups));
        }
        if !matches!(self.group_size, 32 | 64 | 128 | 256) {
            return Err(ConfigError::InvalidGroupSize(self.group_size));
        }
        if !(0.0..=1.0).contains(&self.min_accuracy) {
            return Err(ConfigError::InvalidAccuracy(self.min_accuracy));
        }
        if self.max_memory < MIN_MAX_MEMORY {
            return Err(ConfigError::InvalidMaxMemory(self.max_memory));
        }
        if let Some(p) = &self.preset {
            crate::encode::codec::CodecChoice::from_preset(p)?;
        }
        for p in self.include.iter().chain(&self.exclude) {
            if p.is_empty() {
                return Err(ConfigError::InvalidPattern(p.clone()));
            }
        }
        if !(2..=16).contains(&self.activation_bits) {
            return Err(ConfigError::InvalidActivationBits(self.activation_bits));
        }
        self.thermodynamic.validate().map_err(|e| {
            ConfigError::InvalidThermodynamic(match e {
                arrowquant_core::diffusion::DiffusionError::InvalidConfig(field) => field.to_string(),
                other => other.to_string(),
            })
        })?;
        if self.thermodynamic.boundary_smoothing.window_size > MAX_SMOOTHING_WINDOW {
            return Err(ConfigError::InvalidThermodynamic(format!(
                "boundary_smoothing.window_size {} is above the supported maximum {MAX_SMOOTHING_WINDOW}",
                self.thermodynamic.boundary_smoothing.window_size
            )));
        }
        if let Some(b) = self.target_bpw
            && !(b.is_finite() && (1.0..=32.0).contains(&b))
        {
            return Err(ConfigError::InvalidTargetBpw(b));
        }
        if !(0.0..=1.0).contains(&self.equalization_alpha) {
            return Err(ConfigError::InvalidEqualizationAlpha(self.equalization_alpha));
        }
        Ok(())
    }

    /// Every include and exclude pattern matches at least one of the model's tensor
    /// `names`.
    ///
    /// # Errors
    /// [`ConfigError::PatternMatchesNothing`] naming the first pattern that matches none.
    pub fn check_patterns(&self, names: &[&str]) -> Result<(), ConfigError> {
        for (option, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            if let Some(p) = patterns.iter().find(|p| !names.iter().any(|n| glob_match(p, n))) {
                return Err(ConfigError::PatternMatchesNothing { option: option.into(), pattern: p.clone() });
            }
        }
        Ok(())
    }

    /// Why the include/exclude patterns keep tensor `name` unquantized, if they do.
    pub fn pattern_reason(&self, name: &str) -> Option<String> {
        if let Some(p) = self.exclude.iter().find(|p| glob_match(p, name)) {
            return Some(format!("excluded by pattern `{p}`"));
        }
        if !self.include.is_empty() && !self.include.iter().any(|p| glob_match(p, name)) {
            return Some("not matched by any include pattern".into());
        }
        None
    }

    /// The worker threads a run uses: `num_threads` capped to the cores this machine
    /// has, all of them for 0. More threads than cores only add start-up and switching
    /// work (5000 threads took a minute on a 4 KB model), and a count from a file or
    /// the environment must not decide how many threads we try to spawn.
    pub fn effective_threads(&self) -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        if self.num_threads == 0 { cores } else { self.num_threads.min(cores) }
    }

    /// The configuration as JSON (stored in every output file).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

mod compression;
mod error;
mod glob;
mod layer;
pub(crate) mod modality;
mod preset_choice;

pub use compression::Compression;
pub use error::ConfigError;
pub(crate) use glob::glob_match;
pub use layer::{ConfigLayer, parse_bytes, unknown_env_warnings};
pub use preset_choice::quality_preset;

#[cfg(test)]
mod tests;
