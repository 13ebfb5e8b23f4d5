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
//! Booleans accept `true/false/1/0/yes/no/on/off`.

use std::fmt;
use std::path::{Path, PathBuf};

use arrowquant_core::diffusion::ThermodynamicConfig;
use serde::{Deserialize, Serialize};

/// A deployment profile of the configuration guide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Raspberry Pi class boards: INT2, group 256.
    Edge,
    /// Workstations: INT4, group 128 (the default).
    #[default]
    Local,
    /// Servers: INT8, group 64.
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
#[serde(rename_all = "lowercase")]
pub enum SchemeName {
    /// Scale and offset per group.
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
        }
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
        let profile = layers.iter().rev().find_map(|l| l.deployment_profile).unwrap_or_default();
        let mut c = Config::from_profile(profile);
        for l in layers {
            l.apply_to(&mut c);
        }
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

    /// The configuration as JSON (stored in every output file).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// One layer of settings: every field optional. YAML files, the environment and
/// command-line arguments are each read into one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[allow(missing_docs)] // Each field means what the same field of `Config` means.
pub struct ConfigLayer {
    pub deployment_profile: Option<Profile>,
    pub bit_width: Option<u32>,
    pub group_size: Option<usize>,
    pub scheme: Option<SchemeName>,
    pub preset: Option<String>,
    pub num_time_groups: Option<u32>,
    pub enable_time_aware: Option<bool>,
    pub enable_spatial: Option<bool>,
    pub min_accuracy: Option<f64>,
    pub calibration_samples: Option<u32>,
    pub fail_fast: Option<bool>,
    pub num_threads: Option<usize>,
    pub enable_streaming: Option<bool>,
    /// Bytes: an integer or a string such as `512M`, `2G`, `256MiB`.
    #[serde(deserialize_with = "de_opt_bytes")]
    pub max_memory: Option<u64>,
    pub include: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
    pub quantize_1d: Option<bool>,
    pub modality: Option<Modality>,
    pub calibration: Option<PathBuf>,
    pub activation_bits: Option<u8>,
    /// The whole `thermodynamic:` section (missing keys take their defaults).
    pub thermodynamic: Option<ThermodynamicConfig>,
    pub target_bpw: Option<f64>,
    pub equalization_alpha: Option<f32>,
}

impl ConfigLayer {
    /// Reads a YAML config file.
    ///
    /// # Errors
    /// [`ConfigError::File`] naming the file (unreadable, bad YAML, unknown field).
    pub fn from_yaml_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::File { path: path.to_path_buf(), message: e.to_string() })?;
        Self::from_yaml_str(&text).map_err(|e| match e {
            ConfigError::File { message, .. } => ConfigError::File { path: path.to_path_buf(), message },
            other => other,
        })
    }

    /// Parses YAML text (an empty document is an empty layer).
    ///
    /// # Errors
    /// [`ConfigError::File`] with an empty path.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        if text.trim().is_empty() {
            return Ok(ConfigLayer::default());
        }
        serde_saphyr::from_str::<ConfigLayer>(text)
            .map_err(|e| ConfigError::File { path: PathBuf::new(), message: e.to_string() })
    }

    /// Reads the `ARROW_QUANT_*` variables of this process.
    ///
    /// # Errors
    /// [`ConfigError::Env`] naming the variable and its value.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_vars(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// Reads `ARROW_QUANT_*` variables from any list of pairs (other names are ignored).
    ///
    /// # Errors
    /// [`ConfigError::Env`] naming the variable and its value.
    pub fn from_vars<I, K, V>(vars: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut l = ConfigLayer::default();
        for (k, v) in vars {
            let (k, v) = (k.as_ref(), v.as_ref());
            let Some(name) = k.strip_prefix("ARROW_QUANT_") else { continue };
            let bad = |expected: &str| ConfigError::Env {
                var: k.to_string(),
                value: v.to_string(),
                expected: expected.to_string(),
            };
            let int = |expected: &str| v.trim().parse::<u64>().map_err(|_| bad(expected));
            match name {
                "DEPLOYMENT_PROFILE" => {
                    l.deployment_profile = Some(Profile::parse(v).map_err(|_| bad("edge, local or cloud"))?)
                }
                "BIT_WIDTH" => {
                    l.bit_width = Some(u32::try_from(int("2, 4 or 8")?).map_err(|_| bad("2, 4 or 8"))?)
                }
                "NUM_TIME_GROUPS" => {
                    l.num_time_groups = Some(u32::try_from(int("1 to 100")?).map_err(|_| bad("1 to 100"))?)
                }
                "GROUP_SIZE" => l.group_size = Some(int("32, 64, 128 or 256")? as usize),
                "MIN_ACCURACY" => {
                    l.min_accuracy =
                        Some(v.trim().parse::<f64>().map_err(|_| bad("a number from 0.0 to 1.0"))?)
                }
                "CALIBRATION_SAMPLES" => {
                    l.calibration_samples =
                        Some(u32::try_from(int("an integer")?).map_err(|_| bad("an integer"))?)
                }
                "FAIL_FAST" => l.fail_fast = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?),
                "NUM_THREADS" => l.num_threads = Some(int("an integer (0 = all cores)")? as usize),
                "ENABLE_STREAMING" => {
                    l.enable_streaming = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "PRESET" => l.preset = Some(v.trim().to_string()),
                "MAX_MEMORY" => {
                    l.max_memory = Some(parse_bytes(v).map_err(|_| bad("bytes, e.g. 268435456, 512M or 2G"))?)
                }
                "ENABLE_TIME_AWARE" => {
                    l.enable_time_aware = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "ACTIVATION_BITS" => {
                    l.activation_bits = Some(u8::try_from(int("2 to 16")?).map_err(|_| bad("2 to 16"))?)
                }
                "CALIBRATION" => l.calibration = Some(PathBuf::from(v.trim())),
                "ENABLE_SPATIAL" => {
                    l.enable_spatial = Some(parse_bool(v).ok_or_else(|| bad("true or false"))?)
                }
                "EQUALIZATION_ALPHA" => {
                    l.equalization_alpha =
                        Some(v.trim().parse::<f32>().map_err(|_| bad("a number from 0.0 to 1.0"))?)
                }
                "TARGET_BPW" => {
                    l.target_bpw = Some(
                        v.trim().parse::<f64>().map_err(|_| bad("bits per weight, a number such as 3.0"))?,
                    )
                }
                _ => {}
            }
        }
        Ok(l)
    }

    /// Writes every field this layer sets into `c`.
    pub fn apply_to(&self, c: &mut Config) {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { c.$f = v.clone(); } )* };
        }
        set!(
            bit_width,
            group_size,
            scheme,
            num_time_groups,
            enable_time_aware,
            enable_spatial,
            min_accuracy,
            calibration_samples,
            fail_fast,
            num_threads,
            enable_streaming,
            max_memory,
            include,
            exclude,
            quantize_1d,
            activation_bits,
            thermodynamic,
            equalization_alpha
        );
        if let Some(p) = &self.calibration {
            c.calibration = Some(p.clone());
        }
        if let Some(b) = self.target_bpw {
            c.target_bpw = Some(b);
        }
        if let Some(p) = &self.preset {
            c.preset = Some(p.clone());
        }
        if let Some(m) = self.modality {
            c.modality = Some(m);
        }
        if let Some(p) = self.deployment_profile {
            c.deployment_profile = p;
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// Parses a byte count: `268435456`, `512K`, `512M`, `2G`, `256MiB`, `1GB` (binary units:
/// K = 1024).
///
/// # Errors
/// [`ConfigError::InvalidBytes`] with the text.
pub fn parse_bytes(s: &str) -> Result<u64, ConfigError> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| ConfigError::InvalidBytes(s.to_string()))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(ConfigError::InvalidBytes(s.to_string())),
    };
    n.checked_mul(1u64 << shift).ok_or_else(|| ConfigError::InvalidBytes(s.to_string()))
}

fn de_opt_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u64),
        S(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::N(n)) => Ok(Some(n)),
        Some(Raw::S(s)) => parse_bytes(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

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
    /// An unreadable or malformed config file.
    #[error("config file {}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Matches `name` against a glob pattern with `*` (any run) and `?` (one character).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    // Iterative matching with backtracking to the last `*`: linear in practice.
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub(crate) mod modality;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_follow_the_guide() {
        let e = Config::from_profile(Profile::Edge);
        assert_eq!((e.bit_width, e.group_size, e.min_accuracy, e.enable_streaming), (2, 256, 0.65, true));
        let c = Config::from_profile(Profile::Cloud);
        assert_eq!((c.bit_width, c.group_size, c.num_time_groups, c.calibration_samples), (8, 64, 20, 512));
        assert_eq!(Config::default(), Config::from_profile(Profile::Local));
    }

    #[test]
    fn precedence_file_env_explicit() {
        let file =
            ConfigLayer::from_yaml_str("deployment_profile: edge\nbit_width: 8\nmax_memory: 512M\n").unwrap();
        let env = ConfigLayer::from_vars([("ARROW_QUANT_GROUP_SIZE", "64"), ("PATH", "x")]).unwrap();
        let explicit = ConfigLayer { group_size: Some(32), ..Default::default() };
        let c = Config::from_layers(&[file.clone(), env.clone(), ConfigLayer::default()]).unwrap();
        assert_eq!(
            (c.deployment_profile, c.bit_width, c.group_size, c.max_memory),
            (Profile::Edge, 8, 64, 512 << 20)
        );
        assert_eq!(c.min_accuracy, 0.65, "the rest comes from the edge profile");
        let c = Config::from_layers(&[file, env, explicit]).unwrap();
        assert_eq!(c.group_size, 32);
    }

    #[test]
    fn validation_errors_name_allowed_values() {
        let c = Config { bit_width: 3, ..Config::default() };
        let e = c.validate().unwrap_err();
        assert_eq!(e, ConfigError::InvalidBitWidth(3));
        assert!(e.to_string().contains("2, 4 or 8"));
        let c = Config { num_time_groups: 0, ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::InvalidTimeGroups(0)));
        let c = Config { group_size: 100, ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::InvalidGroupSize(100)));
        let mut c = Config { min_accuracy: 1.5, ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::InvalidAccuracy(1.5)));
        c.min_accuracy = f64::NAN;
        assert!(c.validate().is_err());
    }

    #[test]
    fn env_errors_name_the_variable() {
        let e = ConfigLayer::from_vars([("ARROW_QUANT_FAIL_FAST", "maybe")]).unwrap_err();
        assert!(e.to_string().contains("ARROW_QUANT_FAIL_FAST"), "{e}");
        let l = ConfigLayer::from_vars([("ARROW_QUANT_DEPLOYMENT_PROFILE", "Cloud")]).unwrap();
        assert_eq!(l.deployment_profile, Some(Profile::Cloud));
    }

    #[test]
    fn yaml_unknown_field_is_an_error() {
        assert!(ConfigLayer::from_yaml_str("bit_widht: 4\n").is_err());
        assert!(ConfigLayer::from_yaml_str("bit_width: [1]\n").is_err());
    }

    #[test]
    fn bytes_and_globs() {
        assert_eq!(parse_bytes("512M").unwrap(), 512 << 20);
        assert_eq!(parse_bytes("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_bytes("1000").unwrap(), 1000);
        assert!(parse_bytes("12Q").is_err());
        assert!(parse_bytes("").is_err());
        assert!(glob_match("*.bias", "encoder.layer.0.bias"));
        assert!(glob_match("encoder.*.weight", "encoder.layer.0.weight"));
        assert!(!glob_match("*.bias", "encoder.layer.0.weight"));
        assert!(glob_match("a?c", "abc"));
        assert!(glob_match("*", ""));
    }
}
