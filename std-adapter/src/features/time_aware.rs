//! Time-aware activation parameters: from a calibration file (docs/CALIBRATION.md) to
//! the table stored in the output file under [`crate::container::parquet::schema::KEY_TIME_GROUPS`].
//!
//! Per calibration layer (the layer whose *input* activations were observed; the names
//! need not be tensor names), [`compute`]:
//!
//! 1. splits the `T` timesteps into `num_time_groups` contiguous groups with the exact
//!    dynamic programme of [`arrowquant_core::diffusion::time_groups::split_optimal`] and derives each group's
//!    `activation_bits` scale and integer zero point;
//! 2. validates the group scales as a Markov chain (`thermodynamic.validation`);
//! 3. if `thermodynamic.boundary_smoothing` or `thermodynamic.transition_optimization`
//!    is enabled, expands the groups to per-timestep ranges, smooths them (the same
//!    procedure `docs/DIFFUSION.md` measures), and merges consecutive timesteps with
//!    identical scale and zero point back into groups. Smoothing therefore stores more
//!    groups than `num_time_groups` (about `2 * window_size` extra per smoothed boundary;
//!    up to `T` with transition optimization), and the report says how many;
//! 4. validates the stored sequence again, so the report has violations before and after.
//!
//! The stored groups of a layer always cover `0..T` without gaps or overlaps, sorted by
//! `t_start`, so a runtime finds the parameters of timestep `t` by binary search
//! ([`TimeGroupTable::params_for`]).
//!
//! Memory: the calibration file is held in memory (it is `layers x T x 4` floats); the
//! DP scratch is `(K + 2)(T + 1)` f64 per layer, reused.

use std::path::Path;

use arrowquant_core::diffusion::thermo::{self, MarkovReport, OptimizeReport};
use arrowquant_core::diffusion::time_groups::{
    ActivationScaleModel, dp_scratch_len, evaluate_mse, params_for_timestep, qmax, split_optimal,
    split_uniform,
};
use arrowquant_core::diffusion::{DiffusionError, TimeGroupParams, TimestepStats};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::features::calibration::{self, CalibrationError, CalibrationFile};

/// Value of [`TimeGroupTable::version`] written by this version.
pub const TIME_GROUPS_VERSION: u32 = 1;

/// Activation parameters shared by timesteps `t_start..t_end` of one layer.
///
/// A runtime quantizes an activation `x` as
/// `q = clamp(round(x / scale) + zero_point, 0, 2^bits - 1)` and dequantizes as
/// `x' = (q - zero_point) * scale`.
/// (Core's [`TimeGroupParams`], which also serialises; fields `t_start`, `t_end`,
/// `scale`, `zero_point`, `lo`, `hi`.)
pub type TimeGroup = TimeGroupParams;

/// Markov validation of one parameter sequence.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarkovSummary {
    /// Transitions checked.
    pub transitions: u64,
    /// Transitions whose ratio exceeds the threshold.
    pub violations: u64,
    /// Largest ratio.
    pub max_ratio: f32,
}

impl From<MarkovReport> for MarkovSummary {
    fn from(r: MarkovReport) -> Self {
        MarkovSummary { transitions: r.transitions, violations: r.violations, max_ratio: r.max_ratio }
    }
}

/// What transition optimization did on one layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OptimizeSummary {
    /// Iterations run.
    pub iterations: usize,
    /// Objective before.
    pub initial_objective: f64,
    /// Objective after.
    pub final_objective: f64,
    /// Whether the convergence threshold stopped it.
    pub converged: bool,
}

impl From<OptimizeReport> for OptimizeSummary {
    fn from(r: OptimizeReport) -> Self {
        OptimizeSummary {
            iterations: r.iterations,
            initial_objective: r.initial_objective,
            final_objective: r.final_objective,
            converged: r.converged,
        }
    }
}

/// The stored parameters of one calibration layer and how they were obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTimeGroups {
    /// Calibration layer name.
    pub layer: String,
    /// The stored groups: sorted, contiguous, covering `0..timesteps`.
    pub groups: Vec<TimeGroup>,
    /// Model MSE (mean over timesteps) of the uniform split into `num_time_groups`.
    pub uniform_mse: f64,
    /// Model MSE of the DP split (union ranges, before smoothing).
    pub dp_mse: f64,
    /// Model MSE of the stored parameters (integer zero points, after smoothing).
    pub stored_mse: f64,
    /// Markov validation of the DP group scales (None if validation is disabled).
    pub markov_before: Option<MarkovSummary>,
    /// Markov validation of the stored group scales (None if validation is disabled).
    pub markov_after: Option<MarkovSummary>,
    /// Transition optimization, if it ran.
    pub optimization: Option<OptimizeSummary>,
}

impl LayerTimeGroups {
    /// The group holding timestep `t`.
    pub fn params_for(&self, t: u32) -> Option<&TimeGroup> {
        let i = self.groups.partition_point(|g| g.t_end <= t);
        self.groups.get(i).filter(|g| (g.t_start..g.t_end).contains(&t))
    }
}

/// The whole table: stored as JSON under [`crate::container::parquet::schema::KEY_TIME_GROUPS`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimeGroupTable {
    /// [`TIME_GROUPS_VERSION`].
    pub version: u32,
    /// The calibration file as given.
    pub calibration: String,
    /// Timesteps `T`.
    pub timesteps: u32,
    /// Activation code width.
    pub activation_bits: u8,
    /// Groups asked for per layer (the DP's `K`).
    pub num_time_groups: u32,
    /// How the boundaries were chosen (`dp`).
    pub split: String,
    /// Whether boundary smoothing ran.
    pub boundary_smoothing: bool,
    /// Whether transition optimization ran.
    pub transition_optimization: bool,
    /// Markov threshold used for the before/after figures.
    pub smoothness_threshold: f32,
    /// One entry per calibration layer, in file order.
    pub layers: Vec<LayerTimeGroups>,
}

impl TimeGroupTable {
    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&LayerTimeGroups> {
        self.layers.iter().find(|l| l.layer == name)
    }

    /// The parameters of `layer` at timestep `t`.
    pub fn params_for(&self, layer: &str, t: u32) -> Option<&TimeGroup> {
        self.layer(layer)?.params_for(t)
    }

    /// Checks what a runtime relies on: every layer's groups cover `0..timesteps` in
    /// order, without gaps, with positive finite scales and zero points in range.
    ///
    /// # Errors
    /// A message naming the layer and group.
    pub fn check(&self) -> Result<(), String> {
        if self.version != TIME_GROUPS_VERSION {
            return Err(format!("time-group table version {} is not supported", self.version));
        }
        let qmax = qmax(self.activation_bits.clamp(2, 16));
        for l in &self.layers {
            let mut next = 0u32;
            for (i, g) in l.groups.iter().enumerate() {
                if g.t_start != next || g.t_end <= g.t_start {
                    return Err(format!(
                        "layer {}: group {i} covers {}..{}, expected to start at {next}",
                        l.layer, g.t_start, g.t_end
                    ));
                }
                if !(g.scale.is_finite() && g.scale > 0.0) || u32::from(g.zero_point) > qmax {
                    return Err(format!(
                        "layer {}: group {i} has scale {} and zero point {}",
                        l.layer, g.scale, g.zero_point
                    ));
                }
                next = g.t_end;
            }
            if next != self.timesteps {
                return Err(format!("layer {}: groups end at {next}, not at {}", l.layer, self.timesteps));
            }
        }
        Ok(())
    }
}

/// Whether time-aware parameters were stored, and why not if they were not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum TimeAwareOutcome {
    /// Stored in the file.
    Stored(TimeGroupTable),
    /// Not computed; the reason says why.
    Skipped(String),
}

impl TimeAwareOutcome {
    /// The reason parameters were skipped for a configuration without calibration or
    /// with `enable_time_aware: false`; None when they will be computed.
    pub fn skip_reason(config: &Config) -> Option<String> {
        if !config.enable_time_aware {
            Some("enable_time_aware is false".into())
        } else if config.calibration.is_none() {
            Some(
                "no calibration file was given (--calibration FILE or `calibration:` in the config); \
                 time-aware activation parameters need per-timestep activation statistics"
                    .into(),
            )
        } else {
            None
        }
    }
}

/// Reads the configured calibration file and computes the table, or says why not.
///
/// # Errors
/// An unreadable or invalid calibration file, or a `num_time_groups` larger than its
/// number of timesteps; the message names the file and the layer.
pub fn compute_for_config(config: &Config) -> Result<TimeAwareOutcome, CalibrationError> {
    if let Some(reason) = TimeAwareOutcome::skip_reason(config) {
        return Ok(TimeAwareOutcome::Skipped(reason));
    }
    let Some(path) = config.calibration.as_deref() else {
        return Ok(TimeAwareOutcome::Skipped("no calibration file".into()));
    };
    let file = calibration::read(path)?;
    compute(&file, path, config).map(TimeAwareOutcome::Stored)
}

/// Computes the table for a calibration file already read (see the module docs).
///
/// # Errors
/// [`CalibrationError::Invalid`] naming `path` and the layer.
pub fn compute(
    file: &CalibrationFile,
    path: &Path,
    config: &Config,
) -> Result<TimeGroupTable, CalibrationError> {
    let bad = |layer: &str, e: DiffusionError| CalibrationError::Invalid {
        path: path.to_path_buf(),
        what: format!("layer {layer}: {e}"),
    };
    let t = file.timesteps;
    let timesteps = u32::try_from(t).map_err(|_| CalibrationError::Invalid {
        path: path.to_path_buf(),
        what: format!("{t} timesteps is too many"),
    })?;
    let k = config.num_time_groups as usize;
    if k > t {
        return Err(CalibrationError::Invalid {
            path: path.to_path_buf(),
            what: format!(
                "num_time_groups {k} is larger than the file's {t} timesteps: use at most {t} groups"
            ),
        });
    }
    let n = dp_scratch_len(t, k);
    let mut scratch = crate::alloc::try_filled(n, 0.0f64).map_err(|_| CalibrationError::Invalid {
        path: path.to_path_buf(),
        what: format!(
            "cannot allocate {} bytes for the time-group search over {t} timesteps and {k} groups",
            (n as u64).saturating_mul(8)
        ),
    })?;
    let mut layers = Vec::with_capacity(file.layers.len());
    for l in &file.layers {
        let stats = l.timestep_stats();
        let out = layer(&stats, k, config, &mut scratch).map_err(|e| bad(&l.name, e))?;
        layers.push(LayerTimeGroups { layer: l.name.clone(), ..out });
    }
    let th = &config.thermodynamic;
    Ok(TimeGroupTable {
        version: TIME_GROUPS_VERSION,
        calibration: path.display().to_string(),
        timesteps,
        activation_bits: config.activation_bits,
        num_time_groups: config.num_time_groups,
        split: "dp".into(),
        boundary_smoothing: th.boundary_smoothing.enabled,
        transition_optimization: th.transition_optimization.enabled,
        smoothness_threshold: th.validation.smoothness_threshold,
        layers,
    })
}

/// One layer (the name is filled in by the caller).
fn layer(
    stats: &[TimestepStats],
    k: usize,
    config: &Config,
    scratch: &mut [f64],
) -> Result<LayerTimeGroups, DiffusionError> {
    let bits = config.activation_bits;
    let th = &config.thermodynamic;
    let threshold = th.validation.smoothness_threshold;
    let mut dp = vec![TimeGroupParams::default(); k];
    let dp_mse = split_optimal(stats, bits, scratch, &mut dp)?;
    let mut uni = vec![TimeGroupParams::default(); k];
    let uniform_mse = split_uniform(stats, bits, &mut uni)?;
    let check = |groups: &[TimeGroupParams]| -> Result<Option<MarkovSummary>, DiffusionError> {
        if !th.validation.enabled {
            return Ok(None);
        }
        let scales: Vec<f32> = groups.iter().map(|g| g.scale).collect();
        Ok(Some(thermo::validate(&scales, threshold)?.into()))
    };
    let markov_before = check(&dp)?;
    let mut optimization = None;
    let stored = if th.boundary_smoothing.enabled || th.transition_optimization.enabled {
        let (mut lo, mut hi): (Vec<f32>, Vec<f32>) = (0..stats.len())
            .map(|t| params_for_timestep(&dp, t as u32).map_or((0.0, 0.0), |g| (g.lo, g.hi)))
            .unzip();
        if th.boundary_smoothing.enabled {
            thermo::smooth_in_place(&mut lo, &th.boundary_smoothing, threshold)?;
            thermo::smooth_in_place(&mut hi, &th.boundary_smoothing, threshold)?;
        }
        if th.transition_optimization.enabled {
            optimization = Some(optimize(stats, &mut lo, &mut hi, bits, config)?.into());
        }
        merge_runs(&lo, &hi, bits)
    } else {
        dp
    };
    let markov_after = check(&stored)?;
    let stored_mse = evaluate_mse(stats, &stored, bits)?;
    Ok(LayerTimeGroups {
        layer: String::new(),
        groups: stored,
        uniform_mse,
        dp_mse,
        stored_mse,
        markov_before,
        markov_after,
        optimization,
    })
}

/// Phase 3 on the per-timestep scale around fixed range centres (as docs/DIFFUSION.md
/// measures it); rewrites `lo` and `hi`.
fn optimize(
    stats: &[TimestepStats],
    lo: &mut [f32],
    hi: &mut [f32],
    bits: u8,
    config: &Config,
) -> Result<OptimizeReport, DiffusionError> {
    let q = qmax(bits) as f32;
    let centers: Vec<f32> = lo.iter().zip(hi.iter()).map(|(&a, &c)| 0.5 * (a + c)).collect();
    let mut p: Vec<f32> =
        lo.iter().zip(hi.iter()).map(|(&a, &c)| ((c - a) / q).max(f32::MIN_POSITIVE)).collect();
    let model = ActivationScaleModel::new(stats, &centers, bits)?;
    let th = &config.thermodynamic;
    let rep = thermo::optimize_transitions(
        &mut p,
        &model,
        &th.transition_optimization,
        th.validation.smoothness_threshold,
    )?;
    for ((l, h), (&c, &p)) in lo.iter_mut().zip(hi.iter_mut()).zip(centers.iter().zip(&p)) {
        *l = c - p * q / 2.0;
        *h = c + p * q / 2.0;
    }
    Ok(rep)
}

/// Per-timestep ranges to groups: one group per run of timesteps whose parameters
/// (scale, zero point) are identical.
fn merge_runs(lo: &[f32], hi: &[f32], bits: u8) -> Vec<TimeGroupParams> {
    let mut out: Vec<TimeGroupParams> = Vec::new();
    for (t, (&a, &c)) in lo.iter().zip(hi).enumerate() {
        let g = TimeGroupParams::from_range(t as u32, t as u32 + 1, a, c, bits);
        match out.last_mut() {
            Some(prev) if prev.scale.to_bits() == g.scale.to_bits() && prev.zero_point == g.zero_point => {
                prev.t_end = g.t_end;
                prev.lo = prev.lo.min(g.lo);
                prev.hi = prev.hi.max(g.hi);
            }
            _ => out.push(g),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigLayer;
    use crate::features::calibration::{SyntheticSpec, synthesize};

    fn config(yaml: &str) -> Config {
        Config::from_layers(&[ConfigLayer::from_yaml_str(yaml).unwrap()]).unwrap()
    }

    fn small() -> CalibrationFile {
        synthesize(&SyntheticSpec { timesteps: 200, layers: 4, channels: 0, outlier_channels: 0, seed: 3 })
    }

    #[test]
    fn dp_groups_cover_every_timestep_and_beat_uniform() {
        let f = small();
        let c = config("num_time_groups: 8\n");
        let table = compute(&f, Path::new("cal.json"), &c).unwrap();
        table.check().unwrap();
        assert_eq!(table.layers.len(), 4);
        for l in &table.layers {
            assert_eq!(l.groups.len(), 8, "no smoothing: exactly K groups");
            assert!(l.dp_mse <= l.uniform_mse);
            assert!(l.markov_before.is_some() && l.optimization.is_none());
            assert_eq!(l.markov_before, l.markov_after);
            for t in 0..200 {
                assert!(l.params_for(t).is_some_and(|g| (g.t_start..g.t_end).contains(&t)));
            }
            assert!(l.params_for(200).is_none());
        }
    }

    #[test]
    fn boundary_smoothing_removes_violations_and_merges_runs() {
        let f = small();
        let plain = compute(&f, Path::new("c"), &config("num_time_groups: 8\n")).unwrap();
        let yaml = "num_time_groups: 8\nthermodynamic:\n  boundary_smoothing:\n    enabled: true\n";
        let smooth = compute(&f, Path::new("c"), &config(yaml)).unwrap();
        smooth.check().unwrap();
        assert!(smooth.boundary_smoothing && !smooth.transition_optimization);
        let before: u64 = plain.layers.iter().map(|l| l.markov_after.unwrap().violations).sum();
        let after: u64 = smooth.layers.iter().map(|l| l.markov_after.unwrap().violations).sum();
        assert!(before > 0, "the synthetic set has violating boundaries");
        // On this short set (T = 200) some boundaries lie closer than 2 * window_size and
        // overlap, so a few violations can stay; tests/diffusion.rs checks that none stay
        // on the documented set (T = 1000).
        assert!(after < before, "smoothing left {after} of {before} violations");
        for l in &smooth.layers {
            assert!(l.groups.len() > 8 && l.groups.len() < 200, "{}: {} groups", l.layer, l.groups.len());
            assert_eq!(l.markov_before, plain.layer(&l.layer).unwrap().markov_before);
        }
    }

    #[test]
    fn optimization_reports_and_validation_can_be_off() {
        let f = small();
        let yaml = "num_time_groups: 4\nthermodynamic:\n  validation: {enabled: false}\n  \
                    transition_optimization: {enabled: true, max_iterations: 3}\n";
        let t = compute(&f, Path::new("c"), &config(yaml)).unwrap();
        t.check().unwrap();
        for l in &t.layers {
            assert!(l.markov_before.is_none() && l.markov_after.is_none());
            let o = l.optimization.unwrap();
            assert!(o.iterations <= 3 && o.final_objective.is_finite());
        }
    }

    #[test]
    fn skip_reasons_and_too_many_groups() {
        let c = Config::default();
        let r = TimeAwareOutcome::skip_reason(&c).unwrap();
        assert!(r.contains("no calibration file"), "{r}");
        let c = config("enable_time_aware: false\ncalibration: x.json\n");
        assert!(TimeAwareOutcome::skip_reason(&c).unwrap().contains("enable_time_aware"));
        let f =
            synthesize(&SyntheticSpec { timesteps: 5, layers: 1, channels: 0, outlier_channels: 0, seed: 1 });
        let e = compute(&f, Path::new("cal.json"), &config("num_time_groups: 6\n")).unwrap_err().to_string();
        assert!(
            e.contains("cal.json") && e.contains("num_time_groups 6") && e.contains("5 timesteps"),
            "{e}"
        );
    }
}
