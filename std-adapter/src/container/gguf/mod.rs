//! GGUF output: a model (safetensors or GGUF) quantized to ggml's block types in
//! one streaming pass, in a file llama.cpp's loader and the `gguf` Python package read.
//!
//! # Type per tensor
//!
//! The target type comes from the caller ([`target_type`] maps the configuration:
//! `int2` / 2 bits -> Q2_K, `int8` / 8 bits -> Q8_0, everything else -> Q4_K). Then, as
//! llama-quantize does it:
//! - 1-D tensors (norms, biases) stay F32;
//! - a tensor whose row length `ne0` is not a multiple of the target's block falls
//!   back by [`GgmlType::for_row_len`] (Q4_K -> Q5_0, Q2_K/Q3_K -> Q4_0, Q5_K -> Q5_1,
//!   Q6_K -> Q8_0, IQ4_XS -> IQ4_NL; no 32-block either -> F16), reason reported;
//! - tensors of a GGUF input that are already quantized are copied as they are.
//!
//! # Streaming and memory
//!
//! Tensor sizes follow from shapes and types, so the header with every tensor info
//! is laid out ([`GgufWriter`]) before any data is read. Each tensor's data is then
//! read through mmap windows of `window_bytes`, its whole blocks quantized on the
//! thread pool (`num_threads`; [`blocks`]: the same bytes on any number of threads),
//! quality measured against the input while streaming, and written with the padding the layout gives, into the atomic temp file, which is
//! renamed at the end. Memory: the header, one mapped window and the blocks encoded
//! from it (smaller than the window), whatever the model size.

mod blocks;
mod data;
mod from_parquet;
mod mixed;
mod readback;
mod source;
mod types;

pub use from_parquet::{ParquetGgufExport, export_parquet};
pub use readback::{GgufExport, export_safetensors};
pub use source::{GgufSource, SourceData, SourceTensor};
pub use types::{choose_type, file_type, target_type};
use types::{float_type, never_quantized};

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrowquant_core::ggml::{Effort, GgmlType};
use arrowquant_core::gguf::{self, GgufWriter, Metadata, Value, keys};

use blocks::BlockEncoder;

use crate::config::Config;
use crate::container::atomic::AtomicFile;
use crate::error::{AdapterError, Result};
use crate::model::gguf::gguf_error;
use crate::model::window::WindowReader;
use crate::report::{QuantizeReport, TensorReport};

/// Writes `source` as a GGUF file at `out` with `target` as the main type, its block
/// types encoded at `effort` ([`Effort::Fast`]: several times faster for Q2_K and
/// Q4_K, at least ggml's quality over a tensor; [`Effort::Best`]: no block worse than
/// ggml's).
///
/// # Errors
/// I/O, a GGUF layout error (a name of 64 bytes or more), values the encoder refuses
/// (NaN/Inf, naming the tensor). Nothing is left under `out` on error.
pub fn write_gguf(
    source: &GgufSource,
    config: &Config,
    target: GgmlType,
    effort: Effort,
    out: &Path,
) -> Result<QuantizeReport> {
    let start = Instant::now();
    // --include/--exclude: a tensor they keep out stays in its input type.
    let mut plan: Vec<(GgmlType, Option<String>)> = source
        .tensors
        .iter()
        .map(|t| match (config.pattern_reason(&t.name), never_quantized(&t.name), t.data) {
            (Some(why), _, SourceData::Float(d)) => (float_type(d), Some(why)),
            (None, Some(why), SourceData::Float(_)) => (GgmlType::F32, Some(why)),
            _ => choose_type(&t.ne, t.data, target),
        })
        .collect();
    let window = (config.max_memory / 8).clamp(1 << 20, 64 << 20);
    let mixed = mixed::plan_types(source, config, effort, window, &mut plan)?;
    // With mixed precision the file is named after the type holding the most weights.
    let target = mixed.as_ref().map_or(target, |_| main_type(source, &plan, target));

    let ftype = Value::U32(file_type(target).unwrap_or(0));
    let mut metadata = Metadata::new();
    let mut has_qv = false;
    for (k, v) in source.metadata.iter() {
        let v = match k {
            keys::GENERAL_FILE_TYPE => ftype.clone(),
            keys::GENERAL_QUANTIZATION_VERSION => {
                has_qv = true;
                Value::U32(gguf::QUANTIZATION_VERSION)
            }
            _ => v.clone(),
        };
        metadata.push(k, v);
    }
    if metadata.get(keys::GENERAL_FILE_TYPE).is_none() {
        metadata.push(keys::GENERAL_FILE_TYPE, ftype);
    }
    if !has_qv {
        metadata.push(keys::GENERAL_QUANTIZATION_VERSION, Value::U32(gguf::QUANTIZATION_VERSION));
    }
    let mut w = GgufWriter::with_metadata(metadata);
    for (t, (ty, _)) in source.tensors.iter().zip(&plan) {
        w.push_tensor(t.name.as_str(), &t.ne, *ty).map_err(|e| gguf_error(&source.path, e))?;
    }
    let layout = w.finish().map_err(|e| gguf_error(&source.path, e))?;

    let mut reads: Vec<PathBuf> = source.tensors.iter().map(|t| t.file.clone()).collect();
    reads.push(source.path.clone());
    reads.extend(crate::config::modality::metadata_files(&source.path));
    let file = AtomicFile::create_reading(out, &reads)?;
    let mut sink = BufWriter::with_capacity(1 << 20, file.writer()?);
    let io = |e| AdapterError::io(out, e);
    sink.write_all(layout.header_bytes()).map_err(io)?;
    let mut reports = Vec::with_capacity(source.tensors.len());
    let mut readers: Vec<(PathBuf, WindowReader)> = Vec::new();
    let encoder = BlockEncoder::new(config.effective_threads()).map_err(|e| AdapterError::io(out, e))?;
    for (i, (t, (ty, reason))) in source.tensors.iter().zip(&plan).enumerate() {
        let quality = if let Some(values) = &t.values {
            data::write_values(values, *ty, &mut sink).map_err(io)?
        } else {
            let reader = match readers.iter().position(|(p, _)| *p == t.file) {
                Some(k) => &readers[k].1,
                None => {
                    readers.push((t.file.clone(), WindowReader::open(&t.file)?));
                    &readers[readers.len() - 1].1
                }
            };
            data::write_tensor(reader, t, (*ty, effort, &encoder), window, &mut sink, out)?
        };
        let pad = layout.padding_after(i) as usize;
        sink.write_all(&[0u8; 256][..pad.min(256)]).map_err(io)?;
        if pad > 256 {
            sink.write_all(&vec![0u8; pad - 256]).map_err(io)?;
        }
        let target = if mixed.is_some() { *ty } else { target };
        reports.push(tensor_report(t, *ty, reason.clone(), layout.tensors()[i].n_bytes(), quality, target));
    }
    sink.flush().map_err(io)?;
    drop(sink);
    file.commit()?;
    let mut report =
        report(source, config, target, out, (layout.file_len(), encoder.threads()), reports, start);
    report.mixed_precision = mixed.map(|mp| mixed::achieved(mp, &report.tensors));
    if report.mixed_precision.is_some() {
        report.fallback_tensors = 0;
    }
    Ok(report)
}

/// The quantized type holding the most weights in `plan` (`target` if none).
fn main_type(source: &GgufSource, plan: &[(GgmlType, Option<String>)], target: GgmlType) -> GgmlType {
    let quantized = source.tensors.iter().zip(plan).filter(|(_, (ty, _))| ty.is_quantized());
    types::most_weights(quantized.map(|(t, (ty, _))| (*ty, t.ne.iter().product()))).unwrap_or(target)
}

fn tensor_report(
    t: &SourceTensor,
    ty: GgmlType,
    reason: Option<String>,
    stored_bytes: u64,
    q: Option<arrowquant_core::Quality>,
    target: GgmlType,
) -> TensorReport {
    let elements: u64 = t.ne.iter().product();
    let finite = |v: f64| v.is_finite().then_some(v);
    let quantized = ty.is_quantized() && !matches!(t.data, SourceData::Ggml(_));
    let fallback = quantized && ty != target;
    TensorReport {
        name: t.name.clone(),
        dtype: t.dtype.clone(),
        // The input's order (safetensors: outermost first), as the Parquet report shows it.
        shape: t.ne.iter().rev().copied().collect(),
        elements,
        quantized,
        raw_reason: (!quantized).then(|| reason.clone()).flatten(),
        codec: ty.name().to_string(),
        preset: None,
        bits: ty.bits_per_weight().floor() as u32,
        bits_requested: target.bits_per_weight().floor() as u32,
        block_len: ty.block_len() as u32,
        fallback: Vec::new(),
        fallback_reason: if fallback || ty == GgmlType::F16 { reason } else { None },
        below_min_accuracy: false,
        cosine: q.map(|q| q.cosine),
        rel_rmse: q.map(|q| q.rel_rmse),
        sqnr_db: q.and_then(|q| finite(q.sqnr_db)),
        max_abs_err: q.map(|q| q.max_abs_err),
        input_bytes: t.byte_len,
        stored_bytes,
        chunks: 1,
    }
}

fn report(
    source: &GgufSource,
    config: &Config,
    target: GgmlType,
    out: &Path,
    (output_bytes, threads): (u64, usize),
    tensors: Vec<TensorReport>,
    start: Instant,
) -> QuantizeReport {
    let time_s = start.elapsed().as_secs_f64();
    let total_elements: u64 = tensors.iter().map(|t| t.elements).sum();
    let q: Vec<&TensorReport> = tensors.iter().filter(|t| t.quantized).collect();
    let quantized_elements: u64 = q.iter().map(|t| t.elements).sum();
    let input_bytes: u64 = tensors.iter().map(|t| t.input_bytes).sum();
    let payload: u64 = q.iter().map(|t| t.stored_bytes).sum();
    let cos: Vec<f64> = q.iter().filter_map(|t| t.cosine).collect();
    let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
    QuantizeReport {
        model: source.path.display().to_string(),
        output: out.display().to_string(),
        codec: format!("gguf:{}", target.name()),
        preset: config.preset.clone(),
        bit_width: target.bits_per_weight().floor() as u32,
        group_size: target.block_len() as u32,
        min_accuracy: config.min_accuracy,
        tensor_count: tensors.len(),
        quantized_tensors: q.len(),
        raw_tensors: tensors.len() - q.len(),
        fallback_tensors: tensors.iter().filter(|t| t.quantized && t.codec != target.name()).count(),
        // Reported, not enforced: GGUF has no wider-width fallback ladder yet.
        below_min_accuracy: Vec::new(),
        total_elements,
        quantized_elements,
        input_bytes,
        output_bytes,
        bits_per_weight: ratio(output_bytes * 8, total_elements),
        payload_bits_per_weight: ratio(payload * 8, quantized_elements),
        compression_ratio: ratio(input_bytes, output_bytes),
        cosine_mean: (!cos.is_empty()).then(|| cos.iter().sum::<f64>() / cos.len() as f64),
        cosine_min: cos.iter().copied().reduce(f64::min),
        time_s,
        throughput_mb_s: if time_s > 0.0 { input_bytes as f64 / 1e6 / time_s } else { 0.0 },
        threads,
        backend: arrowquant_core::Backend::detect().name().to_string(),
        config: config.clone(),
        tensors,
        time_groups: None,
        time_aware_skipped: Some("not part of the GGUF output".into()),
        mixed_precision: None,
        equalization: None,
        equalization_skipped: Some("not part of the GGUF output".into()),
    }
}
