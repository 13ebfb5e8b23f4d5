//! Quality validation: the original model and the quantized file streamed side by side.
//!
//! For every row of the quantized file the matching range of the original tensor is
//! read through a short-lived mapping and compared with the dequantized values, so
//! validation needs one row chunk of each at a time. Tensors stored raw must match
//! byte for byte. An equalized tensor ([`crate::features::equalization`]) is compared with
//! `W * s`, the weights that were quantized, not with `W`.

use std::collections::HashMap;
use std::time::Instant;

use arrowquant_core::QualityAccumulator;
use serde::{Deserialize, Serialize};

use crate::config::ConfigError;
use crate::container::parquet::reader::{ChunkData, QuantizedFile};
use crate::container::parquet::schema::finite;
use crate::error::{AdapterError, Result};
use crate::features::equalization::scale_columns;
use crate::model::safetensors::Model;
use crate::model::window::{AlignedScratch, WindowReader, with_input};

/// Validation of one tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorValidation {
    /// Tensor name.
    pub name: String,
    /// Whether it was quantized (raw tensors are compared byte for byte).
    pub quantized: bool,
    /// Width used (0 for raw).
    pub bits: u32,
    /// Elements compared.
    pub elements: u64,
    /// Cosine similarity (None for raw).
    pub cosine: Option<f64>,
    /// Relative RMSE.
    pub rel_rmse: Option<f64>,
    /// SQNR in dB (None when infinite).
    pub sqnr_db: Option<f64>,
    /// Largest absolute error.
    pub max_abs_err: Option<f64>,
    /// Raw tensors: identical bytes. Quantized: exact reconstruction.
    pub exact: bool,
    /// Whether the tensor passes (`cosine >= min_accuracy`, or identical for raw).
    pub pass: bool,
}

/// The result of [`validate`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The original model.
    pub original: String,
    /// The quantized file.
    pub quantized: String,
    /// The threshold.
    pub min_accuracy: f64,
    /// True if every tensor passes.
    pub passed: bool,
    /// Mean cosine over quantized tensors.
    pub cosine_mean: Option<f64>,
    /// Lowest cosine over quantized tensors.
    pub cosine_min: Option<f64>,
    /// Names of failing tensors.
    pub failed: Vec<String>,
    /// Wall time in seconds.
    pub time_s: f64,
    /// Per tensor, in file order.
    pub tensors: Vec<TensorValidation>,
}

struct Current {
    name: String,
    quantized: bool,
    bits: u32,
    acc: QualityAccumulator,
    identical: bool,
    elements: u64,
}

/// Compares every tensor of `quantized` with `original`.
///
/// # Errors
/// [`ConfigError::InvalidAccuracy`], read errors, [`AdapterError::Mismatch`] when the
/// two do not hold the same tensors, shapes and dtypes.
pub fn validate(original: &Model, quantized: &QuantizedFile, min_accuracy: f64) -> Result<ValidationReport> {
    if !(0.0..=1.0).contains(&min_accuracy) {
        return Err(ConfigError::InvalidAccuracy(min_accuracy).into());
    }
    let start = Instant::now();
    let qpath = quantized.path().to_path_buf();
    let mismatch = |tensor: &str, problem: String| AdapterError::Mismatch {
        path: qpath.clone(),
        tensor: tensor.to_string(),
        problem,
    };
    let by_name = check_same_tensors(original, quantized)?;
    let mut results = Vec::new();
    let mut cur: Option<Current> = None;
    let mut reader: Option<(usize, WindowReader)> = None;
    let mut bytes = Vec::new();
    let mut orig = Vec::new();
    let mut scratch = AlignedScratch::default();
    quantized.for_each_chunk(|t, element_offset, data| {
        if cur.as_ref().is_none_or(|c| c.name != t.name) {
            if let Some(c) = cur.take() {
                results.push(c.finish(min_accuracy));
            }
            cur = Some(Current {
                name: t.name.clone(),
                quantized: t.is_quantized(),
                bits: t.bits,
                acc: QualityAccumulator::new(),
                identical: true,
                elements: 0,
            });
        }
        let c = cur.as_mut().ok_or_else(|| mismatch(&t.name, "internal state".into()))?;
        let o = &original.tensors[by_name[t.name.as_str()]];
        if reader.as_ref().is_none_or(|(f, _)| *f != o.file) {
            reader = Some((o.file, WindowReader::open(&original.files[o.file])?));
        }
        let Some((_, r)) = reader.as_ref() else { return Ok(()) };
        let size = o.dtype.size();
        let count = match data {
            ChunkData::F32(v) => v.len() as u64,
            ChunkData::Raw(b) => b.len() as u64 / size,
        };
        if (element_offset + count) * size > o.byte_len {
            return Err(mismatch(&t.name, format!("chunk at element {element_offset} runs past the tensor")));
        }
        r.read_range(o.offset + element_offset * size, count * size, &mut bytes)?;
        c.elements += count;
        match data {
            ChunkData::Raw(b) => c.identical &= b == bytes.as_slice(),
            ChunkData::F32(v) => {
                let dt = o
                    .dtype
                    .quantizable()
                    .ok_or_else(|| mismatch(&t.name, "quantized but not a float dtype".into()))?;
                match quantized.equalization_factors(&t.name) {
                    // An equalized tensor stores W * s: compare with what was quantized.
                    Some(s) => {
                        orig.clear();
                        orig.resize(v.len(), 0f32);
                        with_input(dt, &bytes, &mut scratch, |i| i.to_f32(&mut orig));
                        scale_columns(&mut orig, element_offset, s);
                        c.acc.update(&orig, v);
                    }
                    None => with_input(dt, &bytes, &mut scratch, |i| c.acc.update_input(i, v)),
                }
            }
        }
        Ok(())
    })?;
    if let Some(c) = cur.take() {
        results.push(c.finish(min_accuracy));
    }
    let cos: Vec<f64> = results.iter().filter_map(|t| t.cosine).collect();
    let failed: Vec<String> = results.iter().filter(|t| !t.pass).map(|t| t.name.clone()).collect();
    Ok(ValidationReport {
        original: original.path.display().to_string(),
        quantized: quantized.path().display().to_string(),
        min_accuracy,
        passed: failed.is_empty(),
        cosine_mean: (!cos.is_empty()).then(|| cos.iter().sum::<f64>() / cos.len() as f64),
        cosine_min: cos.iter().copied().reduce(f64::min),
        failed,
        time_s: start.elapsed().as_secs_f64(),
        tensors: results,
    })
}

impl Current {
    /// The tensor's validation row, once all its chunks are compared.
    fn finish(self, min_accuracy: f64) -> TensorValidation {
        let q = self.acc.finish();
        let exact = if self.quantized { q.max_abs_err == 0.0 } else { self.identical };
        TensorValidation {
            name: self.name,
            quantized: self.quantized,
            bits: self.bits,
            elements: self.elements,
            cosine: self.quantized.then_some(q.cosine),
            rel_rmse: if self.quantized { finite(q.rel_rmse) } else { None },
            sqnr_db: if self.quantized { finite(q.sqnr_db) } else { None },
            max_abs_err: if self.quantized { finite(q.max_abs_err) } else { None },
            exact,
            pass: if self.quantized { q.cosine >= min_accuracy } else { self.identical },
        }
    }
}

/// The two hold the same tensor names, shapes and dtypes; returns the index of each
/// name in the original model.
fn check_same_tensors<'m>(original: &'m Model, quantized: &QuantizedFile) -> Result<HashMap<&'m str, usize>> {
    let mismatch = |tensor: &str, problem: String| AdapterError::Mismatch {
        path: quantized.path().to_path_buf(),
        tensor: tensor.to_string(),
        problem,
    };
    let by_name: HashMap<&str, usize> =
        original.tensors.iter().enumerate().map(|(i, t)| (t.name.as_str(), i)).collect();
    for t in quantized.tensors() {
        let Some(&i) = by_name.get(t.name.as_str()) else {
            return Err(mismatch(&t.name, "is not in the original model".into()));
        };
        let o = &original.tensors[i];
        if o.shape != t.shape || o.dtype.name() != t.dtype {
            return Err(mismatch(
                &t.name,
                format!(
                    "is {} {:?} in the original but {} {:?} in the quantized file",
                    o.dtype.name(),
                    o.shape,
                    t.dtype,
                    t.shape
                ),
            ));
        }
    }
    if let Some(o) = original.tensors.iter().find(|o| quantized.tensor(&o.name).is_none()) {
        return Err(mismatch(&o.name, "is in the original model but not in the quantized file".into()));
    }
    Ok(by_name)
}
