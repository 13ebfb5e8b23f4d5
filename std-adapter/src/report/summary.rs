//! The document `arrowquant quantize --json` prints for one model: the library's
//! [`QuantizeReport`] with the configuration guide's field names
//! (`compression_ratio`, `cosine_similarity`, `model_size_mb`, `modality`,
//! `bit_width`, `quantization_time_s`), per-layer entries (`layers`), fallback
//! details (`fallbacks`), and what the output format wrote. Sizes in MB are 10^6
//! bytes. [`QUANTIZE_SCHEMA_VERSION`] counts changes of this shape: fields may be
//! added within a version, none removed or renamed.

use serde::Serialize;

use super::{FallbackStep, QuantizeReport, TensorReport};
use crate::config::Config;
use crate::config::modality::Detection;
use crate::features::equalization::EqualizationTable;
use crate::features::mixed::MixedPrecision;
use crate::features::time_aware::TimeGroupTable;

/// The version of the [`QuantizeSummary`] JSON shape.
pub const QUANTIZE_SCHEMA_VERSION: u32 = 1;

/// What the output format wrote, beside the library's report.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputInfo {
    /// Output format name (`parquet`, `postcard`).
    pub format: &'static str,
    /// The file written.
    pub output: String,
    /// Its size in bytes.
    pub output_bytes: u64,
    /// Tensors the format could not hold (stored unquantized).
    pub skipped: Vec<String>,
}

/// `a / b`, 0 when `b` is 0.
fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 { a / b } else { 0.0 }
}

/// Bytes to MB (10^6).
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// One tensor's entry in `layers`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LayerSummary<'a> {
    name: &'a str,
    dtype: &'a str,
    shape: &'a [u64],
    elements: u64,
    quantized: bool,
    codec: &'a str,
    preset: Option<&'a str>,
    bits: u32,
    bits_requested: u32,
    group_size: u32,
    cosine: Option<f64>,
    rel_rmse: Option<f64>,
    sqnr_db: Option<f64>,
    max_abs_err: Option<f64>,
    input_bytes: u64,
    stored_bytes: u64,
    bits_per_weight: f64,
    fallback: &'a [FallbackStep],
    fallback_reason: Option<&'a str>,
    below_min_accuracy: bool,
    raw_reason: Option<&'a str>,
}

impl<'a> LayerSummary<'a> {
    fn of(t: &'a TensorReport) -> Self {
        LayerSummary {
            name: &t.name,
            dtype: &t.dtype,
            shape: &t.shape,
            elements: t.elements,
            quantized: t.quantized,
            codec: &t.codec,
            preset: t.preset.as_deref(),
            bits: t.bits,
            bits_requested: t.bits_requested,
            group_size: t.block_len,
            cosine: t.cosine,
            rel_rmse: t.rel_rmse,
            sqnr_db: t.sqnr_db,
            max_abs_err: t.max_abs_err,
            input_bytes: t.input_bytes,
            stored_bytes: t.stored_bytes,
            bits_per_weight: ratio(t.stored_bytes as f64 * 8.0, t.elements as f64),
            fallback: &t.fallback,
            fallback_reason: t.fallback_reason.as_deref(),
            below_min_accuracy: t.below_min_accuracy,
            raw_reason: t.raw_reason.as_deref(),
        }
    }
}

/// One entry of `fallbacks`: a tensor that was widened or stayed below the threshold.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FallbackSummary<'a> {
    tensor: &'a str,
    bits_requested: u32,
    bits: u32,
    attempts: &'a [FallbackStep],
    cosine: Option<f64>,
    reason: Option<&'a str>,
    below_min_accuracy: bool,
}

/// A section that is stored or skipped, with the reason.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SectionSummary<'a, T> {
    stored: bool,
    skipped_reason: Option<&'a str>,
    table: Option<&'a T>,
}

impl<'a, T> SectionSummary<'a, T> {
    fn of(table: Option<&'a T>, skipped_reason: Option<&'a str>) -> Self {
        SectionSummary { stored: table.is_some(), skipped_reason, table }
    }
}

/// The JSON document of one quantized model (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuantizeSummary<'a> {
    command: &'static str,
    schema_version: u32,
    model: &'a str,
    output: &'a str,
    format: &'static str,
    modality: Option<&'static str>,
    modality_source: &'a str,
    profile: &'static str,
    bit_width: u32,
    group_size: u32,
    scheme: &'static str,
    preset: Option<&'a str>,
    codec: &'a str,
    min_accuracy: f64,
    compression_ratio: f64,
    cosine_similarity: Option<f64>,
    cosine_min: Option<f64>,
    model_size_mb: f64,
    original_size_mb: f64,
    bits_per_weight: f64,
    payload_bits_per_weight: f64,
    quantization_time_s: f64,
    throughput_mb_s: f64,
    threads: usize,
    backend: &'a str,
    tensor_count: usize,
    quantized_tensors: usize,
    raw_tensors: usize,
    fallback_tensors: usize,
    below_min_accuracy: &'a [String],
    passed: bool,
    fallbacks: Vec<FallbackSummary<'a>>,
    skipped_by_format: &'a [String],
    layers: Vec<LayerSummary<'a>>,
    time_aware: SectionSummary<'a, TimeGroupTable>,
    mixed_precision: Option<&'a MixedPrecision>,
    equalization: SectionSummary<'a, EqualizationTable>,
    config: &'a Config,
}

impl<'a> QuantizeSummary<'a> {
    /// The document of `r`, written as `out` says, with the modality `detection`.
    pub fn new(r: &'a QuantizeReport, detection: &'a Detection, out: &'a OutputInfo) -> Self {
        let fallbacks = r
            .tensors
            .iter()
            .filter(|t| !t.fallback.is_empty() || t.below_min_accuracy)
            .map(|t| FallbackSummary {
                tensor: &t.name,
                bits_requested: t.bits_requested,
                bits: t.bits,
                attempts: &t.fallback,
                cosine: t.cosine,
                reason: t.fallback_reason.as_deref(),
                below_min_accuracy: t.below_min_accuracy,
            })
            .collect();
        QuantizeSummary {
            command: "quantize",
            schema_version: QUANTIZE_SCHEMA_VERSION,
            model: &r.model,
            output: &out.output,
            format: out.format,
            modality: detection.modality.map(|m| m.name()),
            modality_source: &detection.source,
            profile: r.config.deployment_profile.name(),
            bit_width: r.bit_width,
            group_size: r.group_size,
            scheme: r.config.scheme.name(),
            preset: r.preset.as_deref(),
            codec: &r.codec,
            min_accuracy: r.min_accuracy,
            compression_ratio: ratio(r.input_bytes as f64, out.output_bytes as f64),
            cosine_similarity: r.cosine_mean,
            cosine_min: r.cosine_min,
            model_size_mb: mb(out.output_bytes),
            original_size_mb: mb(r.input_bytes),
            bits_per_weight: ratio(out.output_bytes as f64 * 8.0, r.total_elements as f64),
            payload_bits_per_weight: r.payload_bits_per_weight,
            quantization_time_s: r.time_s,
            throughput_mb_s: r.throughput_mb_s,
            threads: r.threads,
            backend: &r.backend,
            tensor_count: r.tensor_count,
            quantized_tensors: r.quantized_tensors,
            raw_tensors: r.raw_tensors,
            fallback_tensors: r.fallback_tensors,
            below_min_accuracy: &r.below_min_accuracy,
            passed: r.below_min_accuracy.is_empty(),
            fallbacks,
            skipped_by_format: &out.skipped,
            layers: r.tensors.iter().map(LayerSummary::of).collect(),
            time_aware: SectionSummary::of(r.time_groups.as_ref(), r.time_aware_skipped.as_deref()),
            mixed_precision: r.mixed_precision.as_ref(),
            equalization: SectionSummary::of(r.equalization.as_ref(), r.equalization_skipped.as_deref()),
            config: &r.config,
        }
    }
}
