//! Calibration statistics for diffusion models: the JSON file format, its reader and a
//! seeded synthetic generator.
//!
//! The format is described in `docs/CALIBRATION.md`: per layer, one array per statistic
//! (`min`, `max`, `mean`, `std`) with one value per timestep, and an optional
//! `channel_absmax` array (max |activation| per input channel over all timesteps).
//!
//! [`synthesize`] writes a realistic test set: activation ranges that change fast at the
//! first and last timesteps and slowly in between, layer-specific asymmetry, per-timestep
//! jitter, and a few outlier channels with 20-60x the typical absmax.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use arrowquant_core::diffusion::{DiffusionError, TimestepStats};
use serde::{Deserialize, Serialize};

/// The `format` field of every calibration file.
pub const FORMAT_NAME: &str = "arrowquant-calibration";
/// The format version this reader understands.
pub const FORMAT_VERSION: u32 = 1;

/// A whole calibration file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CalibrationFile {
    /// Always [`FORMAT_NAME`].
    pub format: String,
    /// Always [`FORMAT_VERSION`].
    pub version: u32,
    /// Number of diffusion timesteps `T` (every per-timestep array has this length).
    pub timesteps: usize,
    /// One entry per layer.
    pub layers: Vec<LayerCalibration>,
}

/// Activation statistics of one layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerCalibration {
    /// Layer (tensor) name.
    pub name: String,
    /// Per-timestep minimum activation.
    pub min: Vec<f32>,
    /// Per-timestep maximum activation.
    pub max: Vec<f32>,
    /// Per-timestep mean activation.
    pub mean: Vec<f32>,
    /// Per-timestep standard deviation.
    pub std: Vec<f32>,
    /// Optional max |activation| per input channel, over all timesteps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_absmax: Option<Vec<f32>>,
}

impl LayerCalibration {
    /// The statistics of timestep `t` (`t < timesteps`).
    pub fn timestep(&self, t: usize) -> TimestepStats {
        TimestepStats { min: self.min[t], max: self.max[t], mean: self.mean[t], std: self.std[t] }
    }

    /// All timesteps as core statistics.
    pub fn timestep_stats(&self) -> Vec<TimestepStats> {
        (0..self.min.len()).map(|t| self.timestep(t)).collect()
    }
}

/// Why a calibration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalibrationError {
    /// The file cannot be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON for this format.
    #[error("{path}: not a calibration file: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The content is inconsistent (wrong format name or version, length, NaN, ...).
    #[error("{path}: {what}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the layer and field.
        what: String,
    },
}

impl CalibrationFile {
    /// Checks format, version and every array; `path` is used in the messages.
    ///
    /// # Errors
    /// [`CalibrationError::Invalid`] naming the layer and the problem.
    pub fn validate(&self, path: &Path) -> Result<(), CalibrationError> {
        let bad = |what: String| CalibrationError::Invalid { path: path.to_path_buf(), what };
        if self.format != FORMAT_NAME {
            return Err(bad(format!("format is {:?}, expected {FORMAT_NAME:?}", self.format)));
        }
        if self.version != FORMAT_VERSION {
            return Err(bad(format!(
                "version {} is not supported (expected {FORMAT_VERSION})",
                self.version
            )));
        }
        if self.timesteps == 0 {
            return Err(bad("timesteps is 0".into()));
        }
        for l in &self.layers {
            for (field, v) in [("min", &l.min), ("max", &l.max), ("mean", &l.mean), ("std", &l.std)] {
                if v.len() != self.timesteps {
                    return Err(bad(format!(
                        "layer {}: {field} has {} values, expected {}",
                        l.name,
                        v.len(),
                        self.timesteps
                    )));
                }
            }
            for t in 0..self.timesteps {
                l.timestep(t).validate(t).map_err(|e: DiffusionError| {
                    bad(format!("layer {}: {e} (need finite values, min <= max, std >= 0)", l.name))
                })?;
            }
            if let Some(a) = &l.channel_absmax
                && let Some(j) = a.iter().position(|x| !(x.is_finite() && *x >= 0.0))
            {
                return Err(bad(format!(
                    "layer {}: channel_absmax[{j}] = {} is not finite and >= 0",
                    l.name, a[j]
                )));
            }
        }
        Ok(())
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerCalibration> {
        self.layers.iter().find(|l| l.name == name)
    }
}

/// Reads and validates a calibration file.
///
/// # Errors
/// I/O, JSON and validation errors, each naming the file.
pub fn read(path: &Path) -> Result<CalibrationFile, CalibrationError> {
    let io = |source| CalibrationError::Io { path: path.to_path_buf(), source };
    let f = crate::model::input::open_regular(path).map_err(io)?;
    let len = f.metadata().map_err(io)?.len();
    let file: CalibrationFile = serde_json::from_reader(BufReader::new(f))
        .map_err(|source| CalibrationError::Json { path: path.to_path_buf(), source })?;
    check_claimed_timesteps(path, file.timesteps, len)?;
    file.validate(path)?;
    Ok(file)
}

/// The timestep count is the one number of the file that sizes allocations (the
/// time-group search's scratch grows with it) without being backed by values, for
/// instance in a file with no layers. Every timestep takes at least two bytes of JSON
/// (`0,`), so a count above half the file's length is a lie: refused before anything
/// is allocated for it.
fn check_claimed_timesteps(path: &Path, timesteps: usize, file_len: u64) -> Result<(), CalibrationError> {
    let most = file_len / 2;
    if timesteps as u64 > most {
        return Err(CalibrationError::Invalid {
            path: path.to_path_buf(),
            what: format!(
                "claims {timesteps} timesteps, more than a file of {file_len} bytes can hold (at most {most})"
            ),
        });
    }
    Ok(())
}

/// Writes a calibration file (compact JSON).
///
/// # Errors
/// I/O errors naming the file.
pub fn write(path: &Path, file: &CalibrationFile) -> Result<(), CalibrationError> {
    let io = |source| CalibrationError::Io { path: path.to_path_buf(), source };
    let mut w = BufWriter::new(File::create(path).map_err(io)?);
    serde_json::to_writer(&mut w, file)
        .map_err(|source| CalibrationError::Json { path: path.to_path_buf(), source })?;
    w.flush().map_err(io)
}

/// Knobs of the synthetic generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyntheticSpec {
    /// Timesteps `T`.
    pub timesteps: usize,
    /// Layers.
    pub layers: usize,
    /// Input channels per layer (0: no `channel_absmax`).
    pub channels: usize,
    /// Outlier channels per layer.
    pub outlier_channels: usize,
    /// RNG seed: the same spec always gives the same file.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    fn default() -> Self {
        SyntheticSpec { timesteps: 1000, layers: 8, channels: 384, outlier_channels: 4, seed: 42 }
    }
}

/// SplitMix64: tiny, seeded, identical on every platform.
#[derive(Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `(0, 1)`.
    pub fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Uniform in `[a, b)`.
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.uniform()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let r = (-2.0 * self.uniform().ln()).sqrt();
        r * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// Generates a synthetic calibration set (see the module docs).
///
/// Per layer `l` and normalised time `x = t / (T - 1)`, the activation amplitude is
/// `A_l (1 + e_l exp(-x / 0.02) + f_l exp(-(1 - x) / 0.04) + g_l x) (1 + 0.03 n_t)`: a fast
/// transient at the first and last timesteps, a slow drift in between, and jitter. Mean,
/// std, min and max follow the amplitude with layer-specific shape (some layers are
/// GELU-like, bounded below near zero; others symmetric with heavy upper tails).
pub fn synthesize(spec: &SyntheticSpec) -> CalibrationFile {
    let mut rng = SplitMix64::new(spec.seed);
    let t_len = spec.timesteps.max(1);
    let mut layers = Vec::with_capacity(spec.layers);
    for l in 0..spec.layers {
        let base = rng.range(0.5, 4.0);
        let early = rng.range(2.0, 12.0);
        let late = rng.range(0.5, 4.0);
        let drift = rng.range(-0.5, 1.5);
        let gelu_like = l % 2 == 1;
        let tail_hi = rng.range(4.0, 9.0);
        let tail_lo = rng.range(3.0, 6.0);
        let mut lay = LayerCalibration {
            name: format!("blocks.{}.{}", l / 2, if gelu_like { "ff.act" } else { "attn.qkv_in" }),
            min: Vec::with_capacity(t_len),
            max: Vec::with_capacity(t_len),
            mean: Vec::with_capacity(t_len),
            std: Vec::with_capacity(t_len),
            channel_absmax: None,
        };
        let mut peak = 0f64;
        for t in 0..t_len {
            let x = if t_len > 1 { t as f64 / (t_len - 1) as f64 } else { 0.0 };
            let amp = base
                * (1.0 + early * (-x / 0.02).exp() + late * (-(1.0 - x) / 0.04).exp() + drift * x)
                * (1.0 + 0.03 * rng.normal()).max(0.5);
            let (mean, std, min, max) = if gelu_like {
                let std = 0.35 * amp;
                let mean = 0.2 * amp;
                (mean, std, -0.17 * amp.sqrt().min(amp), mean + tail_hi * std)
            } else {
                let std = 0.5 * amp;
                let mean = 0.05 * amp * (2.0 * x - 1.0);
                (mean, std, mean - tail_lo * std, mean + tail_hi * std)
            };
            peak = peak.max(max.abs()).max(min.abs());
            lay.min.push(min as f32);
            lay.max.push(max as f32);
            lay.mean.push(mean as f32);
            lay.std.push(std as f32);
        }
        if spec.channels > 0 {
            let mut a: Vec<f32> = (0..spec.channels).map(|_| (peak * rng.range(0.05, 0.25)) as f32).collect();
            for _ in 0..spec.outlier_channels.min(spec.channels) {
                let j = (rng.next_u64() % spec.channels as u64) as usize;
                a[j] = (peak * rng.range(0.8, 1.0)) as f32;
            }
            lay.channel_absmax = Some(a);
        }
        layers.push(lay);
    }
    CalibrationFile { format: FORMAT_NAME.into(), version: FORMAT_VERSION, timesteps: t_len, layers }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowquant_core::diffusion::TimeGroupParams;
    use arrowquant_core::diffusion::time_groups::{
        dp_scratch_len, evaluate_mse, split_optimal, split_uniform,
    };

    #[test]
    fn dp_split_never_worse_than_uniform_on_the_synthetic_set() {
        let file = synthesize(&SyntheticSpec::default());
        file.validate(Path::new("<synthetic>")).unwrap();
        let t = file.timesteps;
        let mut strictly_better = 0;
        for k in [5, 10, 20] {
            let mut scratch = vec![0.0; dp_scratch_len(t, k)];
            for layer in &file.layers {
                let stats = layer.timestep_stats();
                let mut dp = vec![TimeGroupParams::default(); k];
                let mut uni = vec![TimeGroupParams::default(); k];
                let m_dp = split_optimal(&stats, 8, &mut scratch, &mut dp).unwrap();
                let m_uni = split_uniform(&stats, 8, &mut uni).unwrap();
                assert!(m_dp <= m_uni, "{} k={k}: dp {m_dp} > uniform {m_uni}", layer.name);
                // The same holds for the stored parameters (integer zero points).
                let e_dp = evaluate_mse(&stats, &dp, 8).unwrap();
                let e_uni = evaluate_mse(&stats, &uni, 8).unwrap();
                assert!(e_dp <= e_uni * 1.001, "{} k={k}: stored dp {e_dp} > uniform {e_uni}", layer.name);
                if m_dp < 0.9 * m_uni {
                    strictly_better += 1;
                }
            }
        }
        // The synthetic drift is non-uniform, so the DP must find real gains.
        assert!(strictly_better > 0);
    }

    #[test]
    fn thermodynamic_config_deserializes_with_defaults() {
        use arrowquant_core::diffusion::{BetaSchedule, InterpolationMethod, ThermodynamicConfig};
        let c: ThermodynamicConfig = serde_json::from_str(
            r#"{"boundary_smoothing": {"enabled": true, "interpolation": "cubic"},
                "transition_optimization": {"beta_schedule": "cosine"}}"#,
        )
        .unwrap();
        assert!(c.boundary_smoothing.enabled);
        assert_eq!(c.boundary_smoothing.interpolation, InterpolationMethod::Cubic);
        assert_eq!(c.boundary_smoothing.window_size, 5);
        assert_eq!(c.transition_optimization.beta_schedule, BetaSchedule::Cosine);
        assert_eq!(c.transition_optimization.markov_weight, 0.1);
        assert_eq!(c.validation.smoothness_threshold, 0.25);
        let bad: ThermodynamicConfig =
            serde_json::from_str(r#"{"boundary_smoothing": {"window_size": 0}}"#).unwrap();
        assert!(bad.validate().is_err());
    }

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cal.json");
        let spec = SyntheticSpec { timesteps: 50, layers: 3, channels: 16, outlier_channels: 2, seed: 7 };
        let f = synthesize(&spec);
        assert_eq!(f, synthesize(&spec), "deterministic");
        write(&p, &f).unwrap();
        assert_eq!(read(&p).unwrap(), f);

        let mut g = f.clone();
        g.layers[1].std.pop();
        write(&p, &g).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("blocks.0.ff.act") && e.contains("std has 49 values"), "{e}");

        let mut g = f.clone();
        g.layers[0].min[3] = 1e9;
        write(&p, &g).unwrap();
        let e = read(&p).unwrap_err().to_string();
        assert!(e.contains("index 3"), "{e}");

        std::fs::write(&p, "{\"format\": 1}").unwrap();
        assert!(matches!(read(&p), Err(CalibrationError::Json { .. })));
        assert!(matches!(read(&dir.path().join("missing.json")), Err(CalibrationError::Io { .. })));
    }
}
