//! Channel equalization (SmoothQuant) in the streaming pipeline: from the calibration
//! file's per-channel activation absmax to scaled weights and the factors stored under
//! [`crate::container::parquet::schema::KEY_EQUALIZATION`].
//!
//! # Which tensor a calibration layer feeds
//!
//! A calibration layer `L` (the layer whose *input* activations were observed) with a
//! `channel_absmax` array is matched to the model tensor named exactly `L`, else to
//! `L.weight`. The tensor must be a quantized 2-D `[out, in]` row-major weight with
//! `in == channel_absmax.len()`: a different `in` is an error naming the file, layer
//! and tensor; a missing, raw or non-2-D tensor is skipped with the reason recorded.
//!
//! # What happens to the tensor
//!
//! 1. Before the output file is created, the tensor is streamed once (one mapped window
//!    at a time) to find `max_o |W[o, j]|` per input column `j` (non-finite elements are
//!    left to the quantizer, which rejects them naming the element).
//! 2. [`equalize::smoothquant_factors`] turns those column maxima and the activation
//!    absmax into `s_j = a_j^alpha / w_j^(1 - alpha)` (the core computes the column
//!    maxima of the weight it is given; it is given the one-row matrix of column maxima,
//!    which has the same maxima, so the factors are exactly the core's).
//! 3. While the tensor is quantized, every element `W[o, j]` of each window is multiplied
//!    by `s_j` as it passes ([`scale_columns`]); the codec, the quality figures and the
//!    stored codes all see `W * s`. A runtime must divide activation channel `j` by `s_j`
//!    (`x_j / s_j`) before the matrix product, or fold `1 / s_j` into the previous
//!    layer.
//!
//! Memory: `in` f32 per equalized tensor (column maxima, then factors), plus one window
//! of f32 while a window is scaled.

use std::collections::BTreeMap;
use std::path::Path;

use arrowquant_core::diffusion::equalize;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::error::{AdapterError, Result};
use crate::features::calibration::{self, CalibrationError, CalibrationFile};
use crate::model::safetensors::{Model, TensorInfo};
use crate::model::window::{AlignedScratch, WindowReader, with_input};

/// Value of [`EqualizationTable::version`] written by this version.
pub const EQUALIZATION_VERSION: u32 = 1;

/// What a runtime must do with the factors (stored in the table, so the file says it).
pub const RUNTIME_NOTE: &str = "the stored weights are W[o, j] * s_j: divide activation channel j by s_j \
                                (or fold 1/s_j into the previous layer) before the matrix product";

/// The factors of one equalized tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorEqualization {
    /// The calibration layer whose `channel_absmax` was used.
    pub layer: String,
    /// Migration strength used.
    pub alpha: f32,
    /// `s_j`, one per input channel (column of the `[out, in]` weight).
    pub factors: Vec<f32>,
    /// Channels left at factor 1 (dead activation or weight column).
    pub neutral: usize,
    /// Smallest factor.
    pub min_factor: f32,
    /// Largest factor.
    pub max_factor: f32,
}

/// A calibration layer that equalized nothing, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SkippedLayer {
    /// Calibration layer name.
    pub layer: String,
    /// Why.
    pub reason: String,
}

/// The whole table: stored as JSON under [`crate::container::parquet::schema::KEY_EQUALIZATION`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EqualizationTable {
    /// [`EQUALIZATION_VERSION`].
    pub version: u32,
    /// The calibration file as given.
    pub calibration: String,
    /// Migration strength.
    pub alpha: f32,
    /// [`RUNTIME_NOTE`].
    pub runtime: String,
    /// Equalized tensors by tensor name.
    pub tensors: BTreeMap<String, TensorEqualization>,
    /// Calibration layers that equalized nothing, in file order.
    pub skipped: Vec<SkippedLayer>,
}

impl EqualizationTable {
    /// The factors of `tensor`, if it was equalized.
    pub fn factors(&self, tensor: &str) -> Option<&[f32]> {
        self.tensors.get(tensor).map(|t| t.factors.as_slice())
    }

    /// Checks what a reader relies on: a supported version and positive finite factors.
    ///
    /// # Errors
    /// A message naming the tensor.
    pub fn check(&self) -> std::result::Result<(), String> {
        if self.version != EQUALIZATION_VERSION {
            return Err(format!("equalization table version {} is not supported", self.version));
        }
        for (name, t) in &self.tensors {
            if t.factors.is_empty() {
                return Err(format!("tensor {name}: no factors"));
            }
            if let Some(j) = t.factors.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
                return Err(format!(
                    "tensor {name}: factor {j} = {} is not positive and finite",
                    t.factors[j]
                ));
            }
        }
        Ok(())
    }
}

/// Whether equalization ran, and why not if it did not.
#[derive(Clone, Debug, PartialEq)]
pub enum EqualizationOutcome {
    /// Computed (its `tensors` may still be empty; `skipped` then says why for each layer).
    Stored(EqualizationTable),
    /// Not computed; the reason says why.
    Skipped(String),
}

impl EqualizationOutcome {
    /// The reason equalization is skipped for a configuration, None when it will run.
    pub fn skip_reason(config: &Config) -> Option<String> {
        if !config.enable_spatial {
            Some("enable_spatial is false".into())
        } else if config.calibration.is_none() {
            Some(
                "no calibration file was given (--calibration FILE or `calibration:` in the config); \
                 channel equalization needs per-channel activation absmax (`channel_absmax`)"
                    .into(),
            )
        } else {
            None
        }
    }
}

/// The model tensor a calibration layer feeds: `layer` exactly, else `layer.weight`.
pub fn tensor_for_layer<'m>(model: &'m Model, layer: &str) -> Option<(usize, &'m TensorInfo)> {
    let find = |name: &str| model.tensors.iter().enumerate().find(|(_, t)| t.name == name);
    find(layer).or_else(|| find(&format!("{layer}.weight")))
}

/// Reads the configured calibration file and computes the factors, or says why not.
/// `raw_reason(i)` is why tensor `i` is stored raw (None if it is quantized).
///
/// # Errors
/// An unreadable or invalid calibration file, an in-dimension that does not match, an
/// unreadable model file.
pub fn compute_for_config(
    model: &Model,
    config: &Config,
    window_bytes: u64,
    raw_reason: &dyn Fn(usize) -> Option<String>,
) -> Result<EqualizationOutcome> {
    if let Some(reason) = EqualizationOutcome::skip_reason(config) {
        return Ok(EqualizationOutcome::Skipped(reason));
    }
    let Some(path) = config.calibration.as_deref() else {
        return Ok(EqualizationOutcome::Skipped("no calibration file".into()));
    };
    let file = calibration::read(path)?;
    compute(model, &file, path, config.equalization_alpha, window_bytes, raw_reason)
        .map(EqualizationOutcome::Stored)
}

/// Computes the table for a calibration file already read (see the module docs).
///
/// # Errors
/// As [`compute_for_config`].
pub fn compute(
    model: &Model,
    file: &CalibrationFile,
    path: &Path,
    alpha: f32,
    window_bytes: u64,
    raw_reason: &dyn Fn(usize) -> Option<String>,
) -> Result<EqualizationTable> {
    let mut table = EqualizationTable {
        version: EQUALIZATION_VERSION,
        calibration: path.display().to_string(),
        alpha,
        runtime: RUNTIME_NOTE.into(),
        tensors: BTreeMap::new(),
        skipped: Vec::new(),
    };
    for l in &file.layers {
        let skip = |reason: String| SkippedLayer { layer: l.name.clone(), reason };
        let Some(act) = &l.channel_absmax else {
            table.skipped.push(skip("the calibration file has no channel_absmax for this layer".into()));
            continue;
        };
        let Some((i, t)) = tensor_for_layer(model, &l.name) else {
            table.skipped.push(skip(format!("the model has no tensor named `{0}` or `{0}.weight`", l.name)));
            continue;
        };
        if t.shape.len() != 2 {
            table.skipped.push(skip(format!(
                "tensor `{}` has shape {:?}; equalization needs a 2-D [out, in] weight",
                t.name, t.shape
            )));
            continue;
        }
        if let Some(why) = raw_reason(i) {
            table.skipped.push(skip(format!("tensor `{}` is stored raw ({why})", t.name)));
            continue;
        }
        if table.tensors.contains_key(&t.name) {
            table.skipped.push(skip(format!("tensor `{}` is already equalized by another layer", t.name)));
            continue;
        }
        let cols = t.shape[1] as usize;
        if act.len() != cols {
            return Err(CalibrationError::Invalid {
                path: path.to_path_buf(),
                what: format!(
                    "layer {}: channel_absmax has {} channels but tensor `{}` {:?} has {cols} input columns",
                    l.name,
                    act.len(),
                    t.name,
                    t.shape
                ),
            }
            .into());
        }
        let colmax = column_absmax(model, t, cols, window_bytes)?;
        let mut factors = vec![0f32; cols];
        let rep = equalize::smoothquant_factors(act, &colmax, 1, cols, alpha, &mut factors).map_err(|e| {
            CalibrationError::Invalid {
                path: path.to_path_buf(),
                what: format!("layer {} (tensor `{}`): {e}", l.name, t.name),
            }
        })?;
        table.tensors.insert(
            t.name.clone(),
            TensorEqualization {
                layer: l.name.clone(),
                alpha,
                factors,
                neutral: rep.neutral,
                min_factor: rep.min_factor,
                max_factor: rep.max_factor,
            },
        );
    }
    Ok(table)
}

/// `max_o |W[o, j]|` per column of a `[rows, cols]` tensor, one mapped window at a time.
/// Non-finite elements are skipped here; the quantizer rejects them by element index.
fn column_absmax(model: &Model, t: &TensorInfo, cols: usize, window_bytes: u64) -> Result<Vec<f32>> {
    let dtype = t.dtype.quantizable().ok_or_else(|| AdapterError::Mismatch {
        path: model.files[t.file].clone(),
        tensor: t.name.clone(),
        problem: format!("dtype {} cannot be equalized", t.dtype.name()),
    })?;
    let reader = WindowReader::open(&model.files[t.file])?;
    let size = dtype.size() as u64;
    let mut colmax = vec![0f32; cols];
    let mut scratch = AlignedScratch::default();
    let mut buf = Vec::new();
    reader.for_each_window(t.offset, t.byte_len, window_bytes.max(size), size, |pos, bytes| {
        let first = (pos / size) as usize;
        with_input(dtype, bytes, &mut scratch, |input| {
            buf.resize(input.len(), 0f32);
            input.to_f32(&mut buf);
        });
        for (k, &v) in buf.iter().enumerate() {
            let m = &mut colmax[(first + k) % cols];
            if v.is_finite() {
                *m = m.max(v.abs());
            }
        }
        Ok(())
    })?;
    Ok(colmax)
}

/// Multiplies each element of a run of a row-major `[rows, factors.len()]` tensor that
/// starts at element `first` by the factor of its column.
pub fn scale_columns(values: &mut [f32], first: u64, factors: &[f32]) {
    let cols = factors.len();
    if cols == 0 {
        return;
    }
    let mut j = (first % cols as u64) as usize;
    for v in values {
        *v *= factors[j];
        j += 1;
        if j == cols {
            j = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_columns_follows_the_column_across_runs() {
        let s = [1.0, 2.0, 3.0];
        let mut all: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut parts = all.clone();
        scale_columns(&mut all, 0, &s);
        let (a, b) = parts.split_at_mut(5);
        scale_columns(a, 0, &s);
        scale_columns(b, 5, &s);
        assert_eq!(all, parts);
        assert_eq!(&all[..6], &[0.0, 2.0, 6.0, 3.0, 8.0, 15.0]);
    }
}
