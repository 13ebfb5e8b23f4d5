//! The quantization pipeline: a model in, an ArrowQuant Parquet file and a report out.
//!
//! # Per tensor
//!
//! 1. Tensors that are not F32/F16/BF16, 1-D tensors (unless `quantize_1d`), empty
//!    tensors and tensors excluded by pattern are copied raw, window by window.
//! 2. Others are encoded chunk by chunk ([`Tuning::chunk_elements`] elements per row)
//!    with the configured codec while the reconstruction is measured. If the tensor's
//!    encoded size fits [`Tuning::buffer_bytes`] the chunks are kept in memory,
//!    otherwise this first pass only measures and a second pass writes.
//! 3. Quality fallback: if the cosine is below `min_accuracy`, the tensor is encoded
//!    again at the next wider width (2 -> 4 -> 8); the widths tried and why are
//!    recorded in the file and the report. With `fail_fast` the run stops instead with
//!    [`AdapterError::BelowAccuracy`]. A tensor still below the threshold at 8 bits is
//!    kept at 8 bits and flagged.
//!
//! # Diffusion features
//!
//! - With a calibration file and `enable_time_aware`, the time-aware activation
//!   parameters ([`crate::features::time_aware`]) are computed before anything is written and
//!   stored under [`crate::container::parquet::schema::KEY_TIME_GROUPS`]; without one the report says why
//!   they were skipped ([`QuantizeReport::time_aware_skipped`]).
//! - With `target_bpw`, every quantized tensor is measured with each candidate codec and
//!   gets its own codec ([`crate::features::mixed`]); the plan and what it achieved are stored under
//!   [`crate::container::parquet::schema::KEY_MIXED_PRECISION`] and reported. The codec of the configuration
//!   (`bit_width`, `preset`) is then not used.
//! - With a calibration file holding `channel_absmax` and `enable_spatial`, the 2-D
//!   weight each calibration layer feeds is equalized ([`crate::features::equalization`]): its
//!   columns are scaled by the factors as each window passes, so the codes, the quality
//!   figures and the fallback decisions are those of `W * s`, the weights actually
//!   stored. The factors go under [`crate::container::parquet::schema::KEY_EQUALIZATION`]; without
//!   per-channel data the report says why nothing was equalized.
//!
//! # Memory
//!
//! One window of input is mapped at a time ([`Tuning::window_bytes`]); the encoded
//! output of at most one tensor is buffered ([`Tuning::buffer_bytes`]); the Parquet
//! writer holds the batch being built (with a writer thread, up to three more queued)
//! and one row group ([`crate::container::parquet::writer::WriterLimits`]). All are derived from
//! `max_memory`, so peak memory does not grow with model size.
//! With the `rayon` feature the row chunks are encoded by a thread pool, each task
//! mapping its own chunk, with at most a window's worth of chunks in flight; the
//! window bound still holds. The output's pages are sent to disk as they are written
//! ([`crate::container::atomic::Writeback`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use crate::config::Config;
use crate::container::parquet::writer::{ParquetSink, WriterLimits};
use crate::encode::codec::CodecChoice;
use crate::encode::engine::{Engine, TensorCtx};
use crate::error::{AdapterError, Result};
use crate::features::equalization::{self, EqualizationOutcome};
use crate::features::time_aware::{self, TimeAwareOutcome};
use crate::model::safetensors::Model;
use crate::model::window::WindowReader;
use crate::report::{QuantizeReport, build_report, record_achieved};

/// Largest block length the pipeline streams (the carry of the streaming quantizer).
pub const MAX_BLOCK_LEN: usize = 256;

/// Sizes derived from the memory budget. [`Tuning::for_config`] picks them; tests
/// may shrink them to exercise multi-chunk and multi-window paths on small tensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Elements per row chunk (rounded down to a whole number of blocks).
    pub chunk_elements: usize,
    /// Bytes of input mapped at a time (rounded to whole chunks).
    pub window_bytes: u64,
    /// Largest encoded tensor kept in memory while its quality is checked.
    pub buffer_bytes: u64,
    /// Raw bytes per row for unquantized tensors.
    pub raw_chunk_bytes: usize,
    /// Parquet writer limits.
    pub writer: WriterLimits,
}

impl Tuning {
    /// The sizes for `config.max_memory`: windows of 1/16, the tensor buffer 1/4 and the
    /// writer about 1/8 of the budget; rows of 2^20 elements.
    pub fn for_config(config: &Config) -> Self {
        let m = config.max_memory;
        Tuning {
            chunk_elements: 1 << 20,
            window_bytes: (m / 16).clamp(4 << 20, 32 << 20),
            buffer_bytes: m / 4,
            raw_chunk_bytes: 4 << 20,
            writer: WriterLimits::for_budget(m),
        }
    }
}

/// What [`quantize_model`] reports as it goes.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// What happened.
    pub event: ProgressEvent,
    /// Index of the current tensor.
    pub tensor_index: usize,
    /// Number of tensors in the model.
    pub tensors_total: usize,
    /// Name of the current tensor.
    pub tensor: &'a str,
    /// Input bytes processed so far (whole model).
    pub bytes_done: u64,
    /// Input bytes of the whole model.
    pub bytes_total: u64,
}

/// Kinds of [`Progress`] events.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A tensor begins.
    TensorStarted,
    /// More input of the current tensor was processed.
    Advanced,
    /// The current tensor falls back to a wider width.
    Fallback {
        /// Width that was below the threshold.
        from_bits: u32,
        /// Width tried next.
        to_bits: u32,
        /// Cosine at `from_bits`.
        cosine: f64,
    },
    /// The current tensor is written.
    TensorFinished,
}

/// Quantizes `model` into the Parquet file `out` with the sizes of
/// [`Tuning::for_config`].
///
/// # Errors
/// Invalid configuration, I/O, rejected input (NaN/Inf/out of range, naming the
/// tensor and element), [`AdapterError::BelowAccuracy`] with `fail_fast`. On error
/// nothing is left under `out`.
pub fn quantize_model(
    model: &Model,
    config: &Config,
    out: &Path,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<QuantizeReport> {
    quantize_model_with(model, config, Tuning::for_config(config), out, progress)
}

/// [`quantize_model`] with explicit sizes.
///
/// # Errors
/// As [`quantize_model`].
pub fn quantize_model_with(
    model: &Model,
    config: &Config,
    tuning: Tuning,
    out: &Path,
    progress: &mut dyn FnMut(&Progress<'_>),
) -> Result<QuantizeReport> {
    config.validate()?;
    let names: Vec<&str> = model.tensors.iter().map(|t| t.name.as_str()).collect();
    config.check_patterns(&names)?;
    crate::container::output_guard::check_output(out, &files_read(model, config))?;
    let start = Instant::now();
    let base = CodecChoice::from_config(config)?;
    let mut engine = Engine::new(config, tuning, base)?;
    // Everything that reads other inputs runs before the output is created, so a bad
    // calibration file or an impossible budget leaves nothing behind.
    let (time_groups, time_aware_skipped) = match time_aware::compute_for_config(config)? {
        TimeAwareOutcome::Stored(t) => (Some(t), None),
        TimeAwareOutcome::Skipped(reason) => (None, Some(reason)),
    };
    let (equalization, equalization_skipped) = {
        let raw = |i: usize| engine.raw_reason(&model.tensors[i]);
        match equalization::compute_for_config(model, config, tuning.window_bytes, &raw)? {
            EqualizationOutcome::Stored(t) => (Some(t), None),
            EqualizationOutcome::Skipped(reason) => (None, Some(reason)),
        }
    };
    if let Some(eq) = &equalization {
        engine.factors = model.tensors.iter().map(|t| eq.factors(&t.name).map(<[f32]>::to_vec)).collect();
    }
    let mut mixed = None;
    if config.target_bpw.is_some() {
        let quantized: Vec<usize> =
            (0..model.tensors.len()).filter(|&i| engine.raw_reason(&model.tensors[i]).is_none()).collect();
        let (plan, codecs) =
            crate::features::mixed::plan(model, config, &quantized, tuning.window_bytes, &engine.factors)?;
        engine.overrides = vec![None; model.tensors.len()];
        for (&i, c) in quantized.iter().zip(codecs) {
            engine.overrides[i] = Some(c);
        }
        mixed = Some(plan);
    }
    let source_meta = serde_json::to_string(&model.metadata).unwrap_or_else(|_| "{}".into());
    let mut sink = ParquetSink::create(
        out,
        &config.to_json(),
        &source_meta,
        tuning.writer,
        engine.threads() > 1,
        config.compression,
    )?;
    // One open file at a time: tensors are visited file by file.
    let mut reader: Option<(usize, WindowReader)> = None;
    let bytes_total = model.total_bytes();
    let mut done = 0u64;
    let mut reports = Vec::with_capacity(model.tensors.len());
    for (i, t) in model.tensors.iter().enumerate() {
        if reader.as_ref().is_none_or(|(f, _)| *f != t.file) {
            reader = Some((t.file, WindowReader::open(&model.files[t.file])?));
        }
        let Some((_, reader)) = reader.as_ref() else { continue };
        let mut ctx = TensorCtx { index: i, total: model.tensors.len(), done, bytes_total, progress };
        ctx.emit(&t.name, ProgressEvent::TensorStarted, 0);
        let r = engine.tensor(t, reader, &mut sink, &mut ctx)?;
        done += t.byte_len;
        ctx.done = done;
        ctx.emit(&t.name, ProgressEvent::TensorFinished, 0);
        reports.push(r);
    }
    if let Some(m) = mixed.as_mut() {
        record_achieved(m, &reports);
    }
    if let Some(t) = &time_groups {
        sink.add_key_value(crate::container::parquet::schema::KEY_TIME_GROUPS, to_json(t, out)?);
    }
    if let Some(m) = &mixed {
        sink.add_key_value(crate::container::parquet::schema::KEY_MIXED_PRECISION, to_json(m, out)?);
    }
    if let Some(e) = &equalization {
        sink.add_key_value(crate::container::parquet::schema::KEY_EQUALIZATION, to_json(e, out)?);
    }
    let output_bytes = sink.finish()?;
    let mut report = build_report(
        model,
        config,
        &base,
        out,
        reports,
        output_bytes,
        start.elapsed().as_secs_f64(),
        engine.threads(),
    );
    if mixed.is_some() {
        report.codec = "mixed".into();
        report.preset = None;
    }
    report.time_groups = time_groups;
    report.time_aware_skipped = time_aware_skipped;
    report.mixed_precision = mixed;
    report.equalization = equalization;
    report.equalization_skipped = equalization_skipped;
    Ok(report)
}

/// Every file that quantizing `model` with `config` reads (shards, index, the metadata
/// files beside the model, the calibration file): the output must be none of them.
pub fn files_read(model: &Model, config: &Config) -> Vec<PathBuf> {
    let mut files = model.files_read();
    files.extend(crate::config::modality::metadata_files(&model.path));
    files.extend(config.calibration.iter().cloned());
    files
}

/// A stored JSON blob, with the output path in the error.
fn to_json<T: Serialize>(v: &T, out: &Path) -> Result<String> {
    serde_json::to_string(v).map_err(|e| AdapterError::parquet(out, e))
}
