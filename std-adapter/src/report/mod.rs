//! The report types of a run: per tensor and per model, with the field names the CLI
//! prints (`--json` serialises them), and the figures derived from the tensors.

use std::path::Path;

use arrowquant_core::BlockCodec;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::encode::codec::CodecChoice;
use crate::features::equalization::EqualizationTable;
use crate::features::mixed::MixedPrecision;
use crate::features::time_aware::TimeGroupTable;
use crate::model::safetensors::Model;

/// One attempt at a width that was rejected by the quality check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FallbackStep {
    /// Width tried.
    pub bits: u32,
    /// Cosine it reached.
    pub cosine: f64,
}

/// Per-tensor result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TensorReport {
    /// Tensor name.
    pub name: String,
    /// Original dtype.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Elements.
    pub elements: u64,
    /// Whether it was quantized.
    pub quantized: bool,
    /// Why it was stored raw.
    pub raw_reason: Option<String>,
    /// Codec layout id (`g4a128`, ...) or `raw`.
    pub codec: String,
    /// Preset name, if the codec came from one.
    pub preset: Option<String>,
    /// Width used (0 for raw).
    pub bits: u32,
    /// Width requested (0 for raw).
    pub bits_requested: u32,
    /// Elements per block (0 for raw).
    pub block_len: u32,
    /// Widths rejected by the quality check, in order.
    pub fallback: Vec<FallbackStep>,
    /// Human-readable reason for a fallback.
    pub fallback_reason: Option<String>,
    /// True if the tensor is below `min_accuracy` even at the widest width.
    pub below_min_accuracy: bool,
    /// Cosine similarity (None for raw).
    pub cosine: Option<f64>,
    /// Relative RMSE.
    pub rel_rmse: Option<f64>,
    /// SQNR in dB (None for raw; JSON null when infinite).
    pub sqnr_db: Option<f64>,
    /// Largest absolute error.
    pub max_abs_err: Option<f64>,
    /// Input bytes.
    pub input_bytes: u64,
    /// Stored payload bytes (codes + params, or raw bytes).
    pub stored_bytes: u64,
    /// Rows written.
    pub chunks: u64,
}

/// The result of a whole run; serialises to the JSON the CLI prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizeReport {
    /// The model path.
    pub model: String,
    /// The output file.
    pub output: String,
    /// Layout id of the requested codec (`g4a128`, ...).
    pub codec: String,
    /// Preset name, if one was used.
    pub preset: Option<String>,
    /// Requested width.
    pub bit_width: u32,
    /// Group (block) length.
    pub group_size: u32,
    /// The quality threshold.
    pub min_accuracy: f64,
    /// Number of tensors.
    pub tensor_count: usize,
    /// Tensors quantized.
    pub quantized_tensors: usize,
    /// Tensors stored raw.
    pub raw_tensors: usize,
    /// Tensors that fell back to a wider width.
    pub fallback_tensors: usize,
    /// Tensors below `min_accuracy` even at 8 bits.
    pub below_min_accuracy: Vec<String>,
    /// Elements over all tensors.
    pub total_elements: u64,
    /// Elements of quantized tensors.
    pub quantized_elements: u64,
    /// Input tensor bytes.
    pub input_bytes: u64,
    /// Output file size in bytes.
    pub output_bytes: u64,
    /// Output file bits per weight: `output_bytes * 8 / total_elements`.
    pub bits_per_weight: f64,
    /// Payload (codes + params) bits per quantized weight.
    pub payload_bits_per_weight: f64,
    /// `input_bytes / output_bytes`.
    pub compression_ratio: f64,
    /// Mean cosine over quantized tensors (weighted equally).
    pub cosine_mean: Option<f64>,
    /// Lowest cosine over quantized tensors.
    pub cosine_min: Option<f64>,
    /// Wall time in seconds.
    pub time_s: f64,
    /// Input megabytes (10^6) per second.
    pub throughput_mb_s: f64,
    /// Threads used to encode.
    pub threads: usize,
    /// SIMD backend of the core kernels.
    pub backend: String,
    /// The configuration used.
    pub config: Config,
    /// Per-tensor results, in file order.
    pub tensors: Vec<TensorReport>,
    /// The time-aware activation parameters stored in the file (None if skipped).
    #[serde(default)]
    pub time_groups: Option<TimeGroupTable>,
    /// Why time-aware activation parameters were not computed (None if they were).
    #[serde(default)]
    pub time_aware_skipped: Option<String>,
    /// The mixed-precision plan and what it achieved (None without `target_bpw`).
    #[serde(default)]
    pub mixed_precision: Option<MixedPrecision>,
    /// The channel-equalization factors stored in the file and the calibration layers
    /// skipped, with reasons (None if equalization did not run). Quality figures of the
    /// equalized tensors compare against `W * s`, the weights actually quantized.
    #[serde(default)]
    pub equalization: Option<EqualizationTable>,
    /// Why channel equalization did not run at all (None if it ran).
    #[serde(default)]
    pub equalization_skipped: Option<String>,
}

/// Fills in what the mixed-precision plan achieved from the written tensors.
pub(crate) fn record_achieved(m: &mut MixedPrecision, reports: &[TensorReport]) {
    let (mut bits, mut elements, mut sqnr, mut n) = (0u64, 0u64, 0.0f64, 0usize);
    for t in &m.tensors {
        let Some(r) = reports.iter().find(|r| r.name == t.name) else { continue };
        bits += r.stored_bytes * 8;
        elements += r.elements;
        // An exact reconstruction has no finite SQNR; count it at the 300 dB cap the
        // measurement uses.
        sqnr += r.sqnr_db.unwrap_or(300.0);
        n += 1;
        if !r.fallback.is_empty() {
            m.fallback_tensors.push(r.name.clone());
        }
    }
    m.achieved_payload_bpw = (elements > 0).then(|| bits as f64 / elements as f64);
    m.achieved_mean_sqnr_db = (n > 0).then(|| sqnr / n as f64);
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn build_report(
    model: &Model,
    config: &Config,
    base: &CodecChoice,
    out: &Path,
    tensors: Vec<TensorReport>,
    output_bytes: u64,
    time_s: f64,
    threads: usize,
) -> QuantizeReport {
    let q: Vec<&TensorReport> = tensors.iter().filter(|t| t.quantized).collect();
    let cos: Vec<f64> = q.iter().filter_map(|t| t.cosine).collect();
    let total_elements: u64 = tensors.iter().map(|t| t.elements).sum();
    let quantized_elements: u64 = q.iter().map(|t| t.elements).sum();
    let payload: u64 = q.iter().map(|t| t.stored_bytes).sum();
    let input_bytes = model.total_bytes();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    QuantizeReport {
        model: model.path.display().to_string(),
        output: out.display().to_string(),
        codec: base.id(),
        preset: config.preset.clone(),
        bit_width: base.bits(),
        group_size: base.block_len() as u32,
        min_accuracy: config.min_accuracy,
        tensor_count: tensors.len(),
        quantized_tensors: q.len(),
        raw_tensors: tensors.len() - q.len(),
        fallback_tensors: q.iter().filter(|t| !t.fallback.is_empty()).count(),
        below_min_accuracy: q.iter().filter(|t| t.below_min_accuracy).map(|t| t.name.clone()).collect(),
        total_elements,
        quantized_elements,
        input_bytes,
        output_bytes,
        bits_per_weight: ratio(output_bytes as f64 * 8.0, total_elements as f64),
        payload_bits_per_weight: ratio(payload as f64 * 8.0, quantized_elements as f64),
        compression_ratio: ratio(input_bytes as f64, output_bytes as f64),
        cosine_mean: (!cos.is_empty()).then(|| cos.iter().sum::<f64>() / cos.len() as f64),
        cosine_min: cos.iter().copied().reduce(f64::min),
        time_s,
        throughput_mb_s: ratio(input_bytes as f64 / 1e6, time_s),
        threads,
        backend: arrowquant_core::Backend::detect().name().to_string(),
        config: config.clone(),
        tensors,
        time_groups: None,
        time_aware_skipped: None,
        mixed_precision: None,
        equalization: None,
        equalization_skipped: None,
    }
}

mod summary;

pub use summary::{OutputInfo, QUANTIZE_SCHEMA_VERSION, QuantizeSummary};
