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
//!   parameters ([`crate::time_aware`]) are computed before anything is written and
//!   stored under [`crate::schema::KEY_TIME_GROUPS`]; without one the report says why
//!   they were skipped ([`QuantizeReport::time_aware_skipped`]).
//! - With `target_bpw`, every quantized tensor is measured with each candidate codec and
//!   gets its own codec ([`crate::mixed`]); the plan and what it achieved are stored under
//!   [`crate::schema::KEY_MIXED_PRECISION`] and reported. The codec of the configuration
//!   (`bit_width`, `preset`) is then not used.
//! - With a calibration file holding `channel_absmax` and `enable_spatial`, the 2-D
//!   weight each calibration layer feeds is equalized ([`crate::equalization`]): its
//!   columns are scaled by the factors as each window passes, so the codes, the quality
//!   figures and the fallback decisions are those of `W * s`, the weights actually
//!   stored. The factors go under [`crate::schema::KEY_EQUALIZATION`]; without
//!   per-channel data the report says why nothing was equalized.
//!
//! # Memory
//!
//! One window of input is mapped at a time ([`Tuning::window_bytes`]); the encoded
//! output of at most one tensor is buffered ([`Tuning::buffer_bytes`]); the Parquet
//! writer holds the batch being built (with a writer thread, up to three more queued)
//! and one row group ([`crate::writer::WriterLimits`]). All are derived from
//! `max_memory`, so peak memory does not grow with model size.
//! With the `rayon` feature the row chunks are encoded by a thread pool, each task
//! mapping its own chunk, with at most a window's worth of chunks in flight; the
//! window bound still holds. The output's pages are sent to disk as they are written
//! ([`crate::atomic::Writeback`]).

use std::path::Path;
use std::time::Instant;

use arrowquant_core::{
    BlockCodec, BlockSink, Input, Quality, QualityAccumulator, QuantError, StreamError, StreamQuantizer,
};
use serde::{Deserialize, Serialize};

use crate::codec::{CodecChoice, RAW_CODEC_ID};
use crate::config::{Config, glob_match};
use crate::equalization::{self, EqualizationOutcome, EqualizationTable};
use crate::error::{AdapterError, Result};
use crate::mixed::MixedPrecision;
use crate::safetensors::{Model, TensorInfo};
use crate::time_aware::{self, TimeAwareOutcome, TimeGroupTable};
use crate::window::{AlignedScratch, WindowReader, with_input};
use crate::writer::{ChunkRow, ParquetSink, RowMetrics, TensorRowInfo, WriterLimits};

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
            crate::mixed::plan(model, config, &quantized, tuning.window_bytes, &engine.factors)?;
        engine.overrides = vec![None; model.tensors.len()];
        for (&i, c) in quantized.iter().zip(codecs) {
            engine.overrides[i] = Some(c);
        }
        mixed = Some(plan);
    }
    let source_meta = serde_json::to_string(&model.metadata).unwrap_or_else(|_| "{}".into());
    let mut sink =
        ParquetSink::create(out, &config.to_json(), &source_meta, tuning.writer, engine.threads() > 1)?;
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
        sink.add_key_value(crate::schema::KEY_TIME_GROUPS, to_json(t, out)?);
    }
    if let Some(m) = &mixed {
        sink.add_key_value(crate::schema::KEY_MIXED_PRECISION, to_json(m, out)?);
    }
    if let Some(e) = &equalization {
        sink.add_key_value(crate::schema::KEY_EQUALIZATION, to_json(e, out)?);
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

/// A stored JSON blob, with the output path in the error.
fn to_json<T: Serialize>(v: &T, out: &Path) -> Result<String> {
    serde_json::to_string(v).map_err(|e| AdapterError::parquet(out, e))
}

/// Fills in what the mixed-precision plan achieved from the written tensors.
fn record_achieved(m: &mut MixedPrecision, reports: &[TensorReport]) {
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
fn build_report(
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

struct TensorCtx<'p, 'f> {
    index: usize,
    total: usize,
    done: u64,
    bytes_total: u64,
    progress: &'p mut (dyn FnMut(&Progress<'_>) + 'f),
}

impl TensorCtx<'_, '_> {
    fn emit(&mut self, tensor: &str, event: ProgressEvent, within: u64) {
        (self.progress)(&Progress {
            event,
            tensor_index: self.index,
            tensors_total: self.total,
            tensor,
            bytes_done: self.done + within,
            bytes_total: self.bytes_total,
        });
    }
}

/// One encoded row chunk.
#[derive(Debug, Default, Clone)]
pub(crate) struct EncodedChunk {
    pub(crate) element_offset: u64,
    pub(crate) elements: u64,
    pub(crate) blocks: u64,
    pub(crate) padding: u32,
    pub(crate) codes: Vec<u8>,
    pub(crate) params: Vec<u8>,
}

impl EncodedChunk {
    fn row(&self) -> ChunkRow<'_> {
        ChunkRow {
            element_offset: self.element_offset,
            element_count: self.elements,
            blocks: self.blocks,
            padding: self.padding,
            codes: &self.codes,
            params: &self.params,
        }
    }
}

/// A sink lending space at the end of a chunk's code and parameter buffers.
struct ChunkSink<'a> {
    codes: &'a mut Vec<u8>,
    params: &'a mut Vec<u8>,
}

impl BlockSink for ChunkSink<'_> {
    type Error = std::convert::Infallible;

    fn reserve(
        &mut self,
        codes_len: usize,
        params_len: usize,
    ) -> std::result::Result<(&mut [u8], &mut [u8]), Self::Error> {
        let (c0, p0) = (self.codes.len(), self.params.len());
        self.codes.resize(c0 + codes_len, 0);
        self.params.resize(p0 + params_len, 0);
        Ok((&mut self.codes[c0..], &mut self.params[p0..]))
    }
}

fn shift_element(e: QuantError, by: u64) -> QuantError {
    match e {
        QuantError::NonFinite { element } => QuantError::NonFinite { element: element + by },
        QuantError::OutOfRange { element } => QuantError::OutOfRange { element: element + by },
        other => other,
    }
}

/// Encodes one chunk (a whole number of blocks, or the tensor's tail) into `out` and
/// measures its reconstruction.
pub(crate) fn encode_chunk<C: BlockCodec + Clone>(
    codec: &C,
    input: Input<'_>,
    first_element: u64,
    out: &mut EncodedChunk,
) -> std::result::Result<QualityAccumulator, QuantError> {
    out.codes.clear();
    out.params.clear();
    // One allocation of the chunk's final size: growing by doubling, chunk after chunk,
    // leaves freed blocks of every size in the heap and the RSS creeps up over a run.
    let blocks = input.len().div_ceil(codec.block_len());
    out.codes.reserve_exact(blocks * codec.codes_len());
    out.params.reserve_exact(blocks * codec.params_len());
    let mut q = StreamQuantizer::<C, MAX_BLOCK_LEN>::new(codec.clone())?;
    let mut sink = ChunkSink { codes: &mut out.codes, params: &mut out.params };
    let unwrap = |e: StreamError<std::convert::Infallible>| match e {
        StreamError::Quant(e) => shift_element(e, first_element),
        StreamError::Sink(never) => match never {},
        #[allow(unreachable_patterns)] // StreamError is non_exhaustive.
        _ => QuantError::Corrupt,
    };
    q.feed(input, &mut sink).map_err(unwrap)?;
    let s = q.finish(&mut sink).map_err(unwrap)?;
    out.element_offset = first_element;
    out.elements = s.elements;
    out.blocks = s.blocks;
    out.padding = s.padding as u32;
    measure(codec, input, &out.codes, &out.params)
}

/// Decodes `codes`/`params` and compares them with `input`, a few blocks at a time.
pub(crate) fn measure<C: BlockCodec>(
    codec: &C,
    input: Input<'_>,
    codes: &[u8],
    params: &[u8],
) -> std::result::Result<QualityAccumulator, QuantError> {
    const STEP: usize = 16;
    let (bl, cl, pl) = (codec.block_len(), codec.codes_len(), codec.params_len());
    let blocks = input.len().div_ceil(bl);
    let mut dec = vec![0f32; STEP * bl];
    let mut acc = QualityAccumulator::new();
    let mut b0 = 0;
    while b0 < blocks {
        let b1 = (b0 + STEP).min(blocks);
        let d = &mut dec[..(b1 - b0) * bl];
        codec.decode(&codes[b0 * cl..b1 * cl], &params[b0 * pl..b1 * pl], d)?;
        let (s, e) = (b0 * bl, (b1 * bl).min(input.len()));
        acc.update_input(input.slice(s, e), &d[..e - s]);
        b0 = b1;
    }
    Ok(acc)
}

/// What a pass over a tensor does with its chunks.
enum Pass<'a> {
    /// Keep them (the tensor is small enough).
    Buffer(&'a mut Vec<EncodedChunk>),
    /// Only measure.
    Measure,
    /// Write them to the file.
    Write(&'a mut ParquetSink),
}

struct Engine<'c> {
    config: &'c Config,
    tuning: Tuning,
    base: CodecChoice,
    /// Per tensor index: the codec mixed precision chose (empty without `target_bpw`).
    overrides: Vec<Option<CodecChoice>>,
    /// Per tensor index: channel-equalization factors (empty without equalization).
    factors: Vec<Option<Vec<f32>>>,
    #[cfg(feature = "rayon")]
    pool: rayon::ThreadPool,
}

impl<'c> Engine<'c> {
    fn new(config: &'c Config, tuning: Tuning, base: CodecChoice) -> Result<Self> {
        Ok(Engine {
            config,
            tuning,
            base,
            overrides: Vec::new(),
            factors: Vec::new(),
            #[cfg(feature = "rayon")]
            pool: rayon::ThreadPoolBuilder::new().num_threads(config.num_threads).build().map_err(|e| {
                AdapterError::io(Path::new("<thread pool>"), std::io::Error::other(e.to_string()))
            })?,
        })
    }

    fn threads(&self) -> usize {
        #[cfg(feature = "rayon")]
        {
            self.pool.current_num_threads()
        }
        #[cfg(not(feature = "rayon"))]
        {
            1
        }
    }

    fn raw_reason(&self, t: &TensorInfo) -> Option<String> {
        let c = self.config;
        if t.dtype.quantizable().is_none() {
            return Some(format!("dtype {} is not quantized", t.dtype.name()));
        }
        if let Some(p) = c.exclude.iter().find(|p| glob_match(p, &t.name)) {
            return Some(format!("excluded by pattern `{p}`"));
        }
        if !c.include.is_empty() && !c.include.iter().any(|p| glob_match(p, &t.name)) {
            return Some("not matched by any include pattern".into());
        }
        if t.shape.len() < 2 && !c.quantize_1d {
            return Some(format!("{}-D tensor kept exact (biases and norms)", t.shape.len()));
        }
        if t.elements() == 0 {
            return Some("empty tensor".into());
        }
        None
    }

    fn tensor(
        &self,
        t: &TensorInfo,
        reader: &WindowReader,
        sink: &mut ParquetSink,
        ctx: &mut TensorCtx<'_, '_>,
    ) -> Result<TensorReport> {
        match self.raw_reason(t) {
            Some(reason) => self.raw_tensor(t, reader, sink, reason, ctx),
            None => {
                let start = self.overrides.get(ctx.index).copied().flatten().unwrap_or(self.base);
                self.quantized_tensor(t, reader, sink, start, ctx)
            }
        }
    }

    fn raw_tensor(
        &self,
        t: &TensorInfo,
        reader: &WindowReader,
        sink: &mut ParquetSink,
        reason: String,
        ctx: &mut TensorCtx<'_, '_>,
    ) -> Result<TensorReport> {
        let info = TensorRowInfo {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype.name().to_string(),
            codec: RAW_CODEC_ID.to_string(),
            preset: None,
            bits: 0,
            bits_requested: 0,
            block_len: 0,
            scheme: None,
            block_codes_len: 0,
            block_params_len: 0,
            fallback_reason: None,
            raw_reason: Some(reason.clone()),
            metrics: None,
        };
        sink.begin_tensor(info, t.elements());
        let size = t.dtype.size();
        let chunk = (self.tuning.raw_chunk_bytes as u64 / size).max(1) * size;
        let window = (self.tuning.window_bytes / chunk).max(1) * chunk;
        let mut chunks = 0;
        if t.byte_len == 0 {
            sink.push_chunk(&ChunkRow {
                element_offset: 0,
                element_count: 0,
                blocks: 0,
                padding: 0,
                codes: &[],
                params: &[],
            })?;
            chunks = 1;
        }
        reader.for_each_window(t.offset, t.byte_len, window, chunk, |pos, bytes| {
            for (k, c) in bytes.chunks(chunk as usize).enumerate() {
                let off = pos + (k as u64) * chunk;
                sink.push_chunk(&ChunkRow {
                    element_offset: off / size,
                    element_count: c.len() as u64 / size,
                    blocks: 0,
                    padding: 0,
                    codes: c,
                    params: &[],
                })?;
                chunks += 1;
            }
            ctx.emit(&t.name, ProgressEvent::Advanced, pos + bytes.len() as u64);
            Ok(())
        })?;
        Ok(TensorReport {
            name: t.name.clone(),
            dtype: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            elements: t.elements(),
            quantized: false,
            raw_reason: Some(reason),
            codec: RAW_CODEC_ID.to_string(),
            preset: None,
            bits: 0,
            bits_requested: 0,
            block_len: 0,
            fallback: Vec::new(),
            fallback_reason: None,
            below_min_accuracy: false,
            cosine: None,
            rel_rmse: None,
            sqnr_db: None,
            max_abs_err: None,
            input_bytes: t.byte_len,
            stored_bytes: t.byte_len,
            chunks,
        })
    }

    fn quantized_tensor(
        &self,
        t: &TensorInfo,
        reader: &WindowReader,
        sink: &mut ParquetSink,
        start: CodecChoice,
        ctx: &mut TensorCtx<'_, '_>,
    ) -> Result<TensorReport> {
        let min = self.config.min_accuracy;
        let factors = self.factors.get(ctx.index).and_then(|f| f.as_deref());
        let mut codec = start;
        let mut fallback = Vec::new();
        let mut buffered = Vec::new();
        let mut first_pass = true;
        let (quality, was_buffered, below) = loop {
            let blocks = t.elements().div_ceil(codec.block_len() as u64);
            let est = blocks * (codec.codes_len() + codec.params_len()) as u64;
            let buffer = est <= self.tuning.buffer_bytes;
            buffered.clear();
            let pass = if buffer { Pass::Buffer(&mut buffered) } else { Pass::Measure };
            let q = self.pass(t, reader, &codec, factors, pass, first_pass.then_some(&mut *ctx))?.finish();
            first_pass = false;
            if q.cosine >= min {
                break (q, buffer, false);
            }
            if self.config.fail_fast {
                return Err(AdapterError::BelowAccuracy {
                    tensor: t.name.clone(),
                    cosine: q.cosine,
                    bits: codec.bits(),
                    min_accuracy: min,
                });
            }
            match codec.wider() {
                Some(w) => {
                    fallback.push(FallbackStep { bits: codec.bits(), cosine: q.cosine });
                    ctx.emit(
                        &t.name,
                        ProgressEvent::Fallback {
                            from_bits: codec.bits(),
                            to_bits: w.bits(),
                            cosine: q.cosine,
                        },
                        0,
                    );
                    codec = w;
                }
                None => break (q, buffer, true),
            }
        };
        let mut reason: Vec<String> = fallback
            .iter()
            .map(|s| format!("cosine {:.6} at {} bits is below min_accuracy {min}", s.cosine, s.bits))
            .collect();
        if below {
            reason.push(format!(
                "cosine {:.6} at {} bits (the widest) is still below min_accuracy {min}",
                quality.cosine,
                codec.bits()
            ));
        }
        let fallback_reason = (!reason.is_empty()).then(|| reason.join("; "));
        let metrics = RowMetrics {
            cosine: quality.cosine,
            rel_rmse: quality.rel_rmse,
            sqnr_db: quality.sqnr_db,
            max_abs_err: quality.max_abs_err,
        };
        sink.begin_tensor(
            TensorRowInfo {
                name: t.name.clone(),
                shape: t.shape.clone(),
                dtype: t.dtype.name().to_string(),
                codec: codec.id(),
                preset: codec.preset().map(|p| p.name().to_string()),
                bits: codec.bits(),
                bits_requested: start.bits(),
                block_len: codec.block_len() as u32,
                scheme: codec.scheme_name().map(String::from),
                block_codes_len: codec.codes_len() as u32,
                block_params_len: codec.params_len() as u32,
                fallback_reason: fallback_reason.clone(),
                raw_reason: None,
                metrics: Some(metrics),
            },
            t.elements(),
        );
        let (chunks, stored) = if was_buffered {
            let mut stored = 0;
            for c in &buffered {
                sink.push_chunk(&c.row())?;
                stored += (c.codes.len() + c.params.len()) as u64;
            }
            (buffered.len() as u64, stored)
        } else {
            self.pass(t, reader, &codec, factors, Pass::Write(sink), None)?;
            let m = sink.manifest().last().map_or((0, 0), |m| (m.rows, m.stored_bytes));
            (m.0, m.1)
        };
        let finite = crate::schema::finite;
        Ok(TensorReport {
            name: t.name.clone(),
            dtype: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            elements: t.elements(),
            quantized: true,
            raw_reason: None,
            codec: codec.id(),
            preset: codec.preset().map(|p| p.name().to_string()),
            bits: codec.bits(),
            bits_requested: start.bits(),
            block_len: codec.block_len() as u32,
            fallback,
            fallback_reason,
            below_min_accuracy: below,
            cosine: finite(quality.cosine),
            rel_rmse: finite(quality.rel_rmse),
            sqnr_db: finite(quality.sqnr_db),
            max_abs_err: finite(quality.max_abs_err),
            input_bytes: t.byte_len,
            stored_bytes: stored,
            chunks,
        })
    }

    /// One pass over a quantized tensor's data with `codec`; with `factors` each
    /// window is converted to f32 and its columns scaled before it is encoded. With
    /// more than one thread the chunks are encoded by the pool ([`Self::pass_parallel`]).
    fn pass(
        &self,
        t: &TensorInfo,
        reader: &WindowReader,
        codec: &CodecChoice,
        factors: Option<&[f32]>,
        pass: Pass<'_>,
        ctx: Option<&mut TensorCtx<'_, '_>>,
    ) -> Result<QualityAccumulator> {
        let dtype = t.dtype.quantizable().ok_or_else(|| AdapterError::Quant {
            path: reader.path().to_path_buf(),
            tensor: t.name.clone(),
            source: QuantError::Misaligned,
        })?;
        let bl = codec.block_len();
        let job = ChunkJob {
            t,
            reader,
            codec,
            factors,
            dtype,
            chunk_elems: (self.tuning.chunk_elements / bl).max(1) * bl,
        };
        #[cfg(feature = "rayon")]
        if self.threads() > 1 && t.elements() > job.chunk_elems as u64 {
            return self.pass_parallel(&job, pass, ctx);
        }
        self.pass_sequential(&job, pass, ctx)
    }

    /// One thread: windows of [`Tuning::window_bytes`] mapped in turn, their chunks
    /// encoded in order.
    fn pass_sequential(
        &self,
        job: &ChunkJob<'_>,
        mut pass: Pass<'_>,
        mut ctx: Option<&mut TensorCtx<'_, '_>>,
    ) -> Result<QualityAccumulator> {
        let (t, size) = (job.t, job.dtype.size());
        let chunk_bytes = job.chunk_bytes();
        let window = (self.tuning.window_bytes / chunk_bytes).max(1) * chunk_bytes;
        let mut acc = QualityAccumulator::new();
        let mut scratch = AlignedScratch::default();
        let mut spare = EncodedChunk::default();
        let mut scaled: Vec<f32> = Vec::new();
        job.reader.for_each_window(t.offset, t.byte_len, window, chunk_bytes, |pos, bytes| {
            let first = pos / size as u64;
            with_input(job.dtype, bytes, &mut scratch, |input| -> Result<()> {
                let input = job.scaled(input, first, &mut scaled);
                for s in (0..input.len()).step_by(job.chunk_elems) {
                    let piece = input.slice(s, (s + job.chunk_elems).min(input.len()));
                    let mut out = std::mem::take(&mut spare);
                    let q = encode_chunk(job.codec, piece, first + s as u64, &mut out)
                        .map_err(|e| job.error(e))?;
                    acc.merge(&q);
                    if let Some(c) = pass.take(out)? {
                        spare = c;
                    }
                }
                Ok(())
            })?;
            if let Some(c) = ctx.as_deref_mut() {
                c.emit(&t.name, ProgressEvent::Advanced, pos + bytes.len() as u64);
            }
            Ok(())
        })?;
        Ok(acc)
    }

    /// Several threads: every chunk is a task of the pool that maps its own bytes,
    /// encodes and measures them; this thread takes the results in chunk order and
    /// hands them to the pass while the pool works on the next ones.
    ///
    /// Mapping inside the tasks spreads the page-table work over the threads, and no
    /// thread waits for a whole window to finish. At most
    /// `max(window_bytes / chunk bytes, 2)` chunks are mapped or waiting at any time:
    /// the one window of the sequential pass.
    #[cfg(feature = "rayon")]
    fn pass_parallel(
        &self,
        job: &ChunkJob<'_>,
        mut pass: Pass<'_>,
        mut ctx: Option<&mut TensorCtx<'_, '_>>,
    ) -> Result<QualityAccumulator> {
        use std::collections::BTreeMap;
        use std::sync::{Mutex, mpsc};
        type Done = std::thread::Result<Result<(EncodedChunk, QualityAccumulator)>>;

        let chunk_bytes = job.chunk_bytes();
        let chunks = job.t.byte_len.div_ceil(chunk_bytes);
        // The window's worth of chunks, so memory is that of the sequential pass; with
        // more threads than that, raise `max_memory` to keep them all busy.
        let in_flight = (self.tuning.window_bytes / chunk_bytes).max(2).min(chunks);
        // Spent chunk buffers, reused by later tasks instead of reallocated.
        let spare: Mutex<Vec<EncodedChunk>> = Mutex::new(Vec::new());
        let (tx, rx) = mpsc::channel::<(u64, Done)>();
        let mut acc = QualityAccumulator::new();
        self.pool.in_place_scope(|scope| -> Result<()> {
            let spawn = |i: u64| {
                let (tx, spare) = (tx.clone(), &spare);
                scope.spawn(move |_| {
                    let out = spare.lock().ok().and_then(|mut s| s.pop()).unwrap_or_default();
                    // A panic is sent back, not left in the pool: the receiving loop
                    // below would otherwise wait for this chunk forever.
                    let r =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.encode_mapped(i, out)));
                    let _ = tx.send((i, r));
                });
            };
            let mut spawned = 0;
            while spawned < in_flight {
                spawn(spawned);
                spawned += 1;
            }
            // Results that arrived before their turn.
            let mut early: BTreeMap<u64, Done> = BTreeMap::new();
            for next in 0..chunks {
                let done = loop {
                    if let Some(d) = early.remove(&next) {
                        break d;
                    }
                    // The senders live in this scope's tasks and in `tx` (held until
                    // the scope ends), so the channel cannot close here.
                    let Ok((i, d)) = rx.recv() else { unreachable!("the sender outlives the loop") };
                    early.insert(i, d);
                };
                let (chunk, q) = done.unwrap_or_else(|p| std::panic::resume_unwind(p))?;
                acc.merge(&q);
                if let Some(c) = pass.take(chunk)?
                    && let Ok(mut s) = spare.lock()
                {
                    s.push(c);
                }
                if spawned < chunks {
                    spawn(spawned);
                    spawned += 1;
                }
                if let Some(c) = ctx.as_deref_mut() {
                    c.emit(
                        &job.t.name,
                        ProgressEvent::Advanced,
                        ((next + 1) * chunk_bytes).min(job.t.byte_len),
                    );
                }
            }
            Ok(())
        })?;
        Ok(acc)
    }
}

/// What one pass encodes: a tensor's bytes, the codec, the chunking.
struct ChunkJob<'a> {
    t: &'a TensorInfo,
    reader: &'a WindowReader,
    codec: &'a CodecChoice,
    factors: Option<&'a [f32]>,
    dtype: arrowquant_core::Dtype,
    /// Elements per row chunk (whole blocks).
    chunk_elems: usize,
}

impl ChunkJob<'_> {
    fn chunk_bytes(&self) -> u64 {
        (self.chunk_elems * self.dtype.size()) as u64
    }

    fn error(&self, e: QuantError) -> AdapterError {
        AdapterError::Quant { path: self.reader.path().to_path_buf(), tensor: self.t.name.clone(), source: e }
    }

    /// `input` with the equalization factors applied (converted into `buf`), or as it is.
    fn scaled<'i>(&self, input: Input<'i>, first: u64, buf: &'i mut Vec<f32>) -> Input<'i> {
        match self.factors {
            Some(s) => {
                buf.resize(input.len(), 0.0);
                input.to_f32(buf);
                equalization::scale_columns(buf, first, s);
                Input::F32(buf)
            }
            None => input,
        }
    }

    /// Maps chunk `i` alone, encodes it into `out` and measures it.
    #[cfg(feature = "rayon")]
    fn encode_mapped(&self, i: u64, mut out: EncodedChunk) -> Result<(EncodedChunk, QualityAccumulator)> {
        let chunk_bytes = self.chunk_bytes();
        let pos = i * chunk_bytes;
        let len = chunk_bytes.min(self.t.byte_len - pos);
        let first = pos / self.dtype.size() as u64;
        let (mut scratch, mut scaled) = (AlignedScratch::default(), Vec::new());
        let mut q = None;
        self.reader.for_each_window(
            self.t.offset + pos,
            len,
            len,
            self.dtype.size() as u64,
            |_, bytes| {
                with_input(self.dtype, bytes, &mut scratch, |input| -> Result<()> {
                    let input = self.scaled(input, first, &mut scaled);
                    q = Some(encode_chunk(self.codec, input, first, &mut out).map_err(|e| self.error(e))?);
                    Ok(())
                })
            },
        )?;
        // `len > 0`, so the callback ran once.
        let q = q.unwrap_or_default();
        Ok((out, q))
    }
}

impl Pass<'_> {
    /// Hands an encoded chunk to the pass; returns it back when its buffers can be reused.
    fn take(&mut self, chunk: EncodedChunk) -> Result<Option<EncodedChunk>> {
        match self {
            Pass::Buffer(v) => {
                v.push(chunk);
                Ok(None)
            }
            Pass::Measure => Ok(Some(chunk)),
            Pass::Write(sink) => {
                sink.push_chunk(&chunk.row())?;
                Ok(Some(chunk))
            }
        }
    }
}

/// Turns the core's quality figures into row metrics.
pub(crate) fn metrics_of(q: &Quality) -> RowMetrics {
    RowMetrics { cosine: q.cosine, rel_rmse: q.rel_rmse, sqnr_db: q.sqnr_db, max_abs_err: q.max_abs_err }
}
