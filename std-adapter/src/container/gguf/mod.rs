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
mod from_parquet;
mod mixed;
mod readback;
mod types;

pub use from_parquet::{ParquetGgufExport, export_parquet};
pub use readback::{GgufExport, export_safetensors};
use types::float_type;
pub use types::{choose_type, file_type, target_type};

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrowquant_core::ggml::{Effort, GgmlCodec, GgmlType};
use arrowquant_core::gguf::{self, GgufWriter, Metadata, Value, keys};
use arrowquant_core::{Dtype, QualityAccumulator};

use blocks::BlockEncoder;

use crate::config::Config;
use crate::container::atomic::AtomicFile;
use crate::error::{AdapterError, Result};
use crate::model::gguf::{GgufModel, gguf_error};
use crate::model::safetensors::Model;
use crate::model::window::{AlignedScratch, WindowReader, with_input};
use crate::report::{QuantizeReport, TensorReport};

/// The data type of a source tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceData {
    /// Floats to convert or quantize.
    Float(Dtype),
    /// Already in a ggml block type: copied as it is.
    Ggml(GgmlType),
}

/// One tensor to write: where its bytes are and what they hold.
#[derive(Clone, Debug)]
pub struct SourceTensor {
    /// The name (kept as it is).
    pub name: String,
    /// Dimensions in ggml order (`ne[0]`, the row length, first).
    pub ne: Vec<u64>,
    /// The input dtype's name (for the report).
    pub dtype: String,
    /// What the bytes hold.
    pub data: SourceData,
    /// The file holding them.
    pub file: PathBuf,
    /// Absolute offset in that file.
    pub offset: u64,
    /// Length in bytes.
    pub byte_len: u64,
}

/// A model ready to be written as GGUF: the metadata to start from and its tensors.
#[derive(Clone, Debug)]
pub struct GgufSource {
    /// The model path (for the report and errors).
    pub path: PathBuf,
    /// Key-value pairs to write, in order (`general.file_type` is set by the writer).
    pub metadata: Metadata,
    /// Tensors in output order.
    pub tensors: Vec<SourceTensor>,
    /// Input tensors left out, with the reason.
    pub skipped: Vec<(String, String)>,
}

impl GgufSource {
    /// A safetensors model: dims reversed into ggml order, F32/F16/BF16 tensors kept,
    /// others (integer buffers) left out with a reason. Metadata:
    /// `general.architecture` = `model_type` of a `config.json` beside the model, else
    /// `unknown`; `general.name` = the model's file stem or directory name.
    pub fn from_safetensors(model: &Model) -> GgufSource {
        let mut tensors = Vec::with_capacity(model.tensors.len());
        let mut skipped = Vec::new();
        for t in &model.tensors {
            let reason = match t.dtype.quantizable() {
                None => Some(format!("dtype {} has no GGUF type here", t.dtype.name())),
                Some(_) if t.shape.is_empty() => Some("a scalar (no dimensions)".into()),
                Some(_) if t.shape.len() > gguf::MAX_DIMS => {
                    Some(format!("{} dimensions (GGUF holds at most {})", t.shape.len(), gguf::MAX_DIMS))
                }
                Some(_) if t.shape.contains(&0) => Some("an empty tensor".into()),
                Some(_) => None,
            };
            match (reason, t.dtype.quantizable()) {
                (None, Some(d)) => tensors.push(SourceTensor {
                    name: t.name.clone(),
                    ne: t.shape.iter().rev().copied().collect(),
                    dtype: t.dtype.name().to_string(),
                    data: SourceData::Float(d),
                    file: model.file_of(t).to_path_buf(),
                    offset: t.offset,
                    byte_len: t.byte_len,
                }),
                (reason, _) => skipped.push((t.name.clone(), reason.unwrap_or_default())),
            }
        }
        let mut metadata = Metadata::new();
        metadata.push(keys::GENERAL_ARCHITECTURE, Value::String(architecture_of(&model.path)));
        metadata.push(keys::GENERAL_NAME, Value::String(name_of(&model.path)));
        GgufSource { path: model.path.clone(), metadata, tensors, skipped }
    }

    /// A GGUF model: every key-value pair in order and every tensor with its name.
    pub fn from_gguf(model: &GgufModel) -> GgufSource {
        let tensors = model
            .header
            .tensor_ranges()
            .map(|(t, range)| {
                let ty = t.ggml_type();
                let data = match ty {
                    GgmlType::F32 => SourceData::Float(Dtype::F32),
                    GgmlType::F16 => SourceData::Float(Dtype::F16),
                    GgmlType::BF16 => SourceData::Float(Dtype::Bf16),
                    q => SourceData::Ggml(q),
                };
                SourceTensor {
                    name: t.name().to_string(),
                    ne: t.dims().to_vec(),
                    dtype: ty.name().to_string(),
                    data,
                    file: model.path.clone(),
                    offset: range.start,
                    byte_len: range.end - range.start,
                }
            })
            .collect();
        GgufSource {
            path: model.path.clone(),
            metadata: model.header.metadata().clone(),
            tensors,
            skipped: Vec::new(),
        }
    }
}

/// `config.json`'s `model_type` beside the model, else `unknown`.
fn architecture_of(path: &Path) -> String {
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("model_type").and_then(|m| m.as_str()).map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The model's name: the file stem, or the directory's name for `model.safetensors`.
fn name_of(path: &Path) -> String {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let stem = canon.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = stem.split(".safetensors").next().unwrap_or("").to_string();
    if (stem.is_empty() || stem == "model" || stem.starts_with("model-0"))
        && let Some(dir) = canon.parent().and_then(|p| p.file_name())
    {
        return dir.to_string_lossy().into_owned();
    }
    if stem.is_empty() { "model".into() } else { stem }
}

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
        .map(|t| match (config.pattern_reason(&t.name), t.data) {
            (Some(why), SourceData::Float(d)) => (float_type(d), Some(why)),
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
        let reader = match readers.iter().position(|(p, _)| *p == t.file) {
            Some(k) => &readers[k].1,
            None => {
                readers.push((t.file.clone(), WindowReader::open(&t.file)?));
                &readers[readers.len() - 1].1
            }
        };
        let quality = write_tensor(reader, t, (*ty, effort, &encoder), window, &mut sink, out)?;
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
    let mut weights: Vec<(GgmlType, u64)> = Vec::new();
    for (t, (ty, _)) in source.tensors.iter().zip(plan).filter(|(_, (ty, _))| ty.is_quantized()) {
        let n: u64 = t.ne.iter().product();
        match weights.iter_mut().find(|(k, _)| k == ty) {
            Some((_, w)) => *w += n,
            None => weights.push((*ty, n)),
        }
    }
    weights.iter().max_by_key(|(_, w)| *w).map_or(target, |(ty, _)| *ty)
}

/// Streams one tensor's data (without padding) to `sink`; the quality against the
/// input for converted and quantized tensors.
fn write_tensor(
    reader: &WindowReader,
    t: &SourceTensor,
    (ty, effort, encoder): (GgmlType, Effort, &BlockEncoder),
    window: u64,
    sink: &mut impl Write,
    out: &Path,
) -> Result<Option<arrowquant_core::Quality>> {
    let io = |e| AdapterError::io(out, e);
    let quant = |e: arrowquant_core::QuantError| AdapterError::Quant {
        path: t.file.clone(),
        tensor: t.name.clone(),
        source: e,
    };
    let d = match t.data {
        SourceData::Ggml(src) => {
            reader.for_each_window(t.offset, t.byte_len, window, src.type_size() as u64, |_, b| {
                sink.write_all(b).map_err(io)
            })?;
            return Ok(None);
        }
        SourceData::Float(d) => d,
    };
    let mut scratch = AlignedScratch::default();
    if let Some(codec) = GgmlCodec::with_effort(ty, effort) {
        let mut acc = QualityAccumulator::new();
        let mut blocks = Vec::new();
        let unit = (d.size() * ty.block_len()) as u64;
        reader.for_each_window(t.offset, t.byte_len, window, unit, |at, bytes| {
            let first = at / d.size() as u64;
            with_input(d, bytes, &mut scratch, |input| {
                encoder.encode(&codec, input, first, &mut blocks, &mut acc)
            })
            .map_err(quant)?;
            sink.write_all(&blocks).map_err(io)
        })?;
        return Ok(Some(acc.finish()));
    }
    // F32, F16 or BF16 out: convert element by element, through a small f32 buffer.
    let mut acc = QualityAccumulator::new();
    let mut x = vec![0f32; 16 << 10];
    let mut y = vec![0f32; 16 << 10];
    let mut bytes_out = Vec::with_capacity(4 * x.len());
    reader.for_each_window(t.offset, t.byte_len, window, d.size() as u64, |_, bytes| {
        with_input(d, bytes, &mut scratch, |input| {
            let mut pos = 0;
            while pos < input.len() {
                let n = (input.len() - pos).min(x.len());
                input.slice(pos, pos + n).to_f32(&mut x[..n]);
                bytes_out.clear();
                for (v, r) in x[..n].iter().zip(&mut y[..n]) {
                    *r = match ty {
                        GgmlType::F16 => {
                            let h = arrowquant_core::f16::from_f32(*v);
                            bytes_out.extend_from_slice(&h.to_le_bytes());
                            h.to_f32()
                        }
                        GgmlType::BF16 => {
                            let h = arrowquant_core::bf16::from_f32(*v);
                            bytes_out.extend_from_slice(&h.to_le_bytes());
                            h.to_f32()
                        }
                        _ => {
                            bytes_out.extend_from_slice(&v.to_le_bytes());
                            *v
                        }
                    };
                }
                acc.update(&x[..n], &y[..n]);
                sink.write_all(&bytes_out).map_err(io)?;
                pos += n;
            }
            Ok::<(), AdapterError>(())
        })
    })?;
    // An F32 tensor written as F32 is exact: no figure to report, as for raw tensors.
    Ok((ty != GgmlType::F32 || d != Dtype::F32).then(|| acc.finish()))
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
