//! The per-tensor engine: decides whether a tensor is stored raw or encoded, runs the
//! quality fallback, and turns the outcome into the tensor's report.

use arrowquant_core::{BlockCodec, Quality};

use crate::config::Config;
use crate::container::parquet::writer::{ChunkRow, ParquetSink, RowMetrics, TensorRowInfo};
use crate::encode::chunk::EncodedChunk;
use crate::encode::codec::{CodecChoice, RAW_CODEC_ID};
use crate::error::{AdapterError, Result};
use crate::model::safetensors::TensorInfo;
use crate::model::window::WindowReader;
use crate::pipeline::{Progress, ProgressEvent, Tuning};
use crate::report::{FallbackStep, TensorReport};

pub(crate) struct TensorCtx<'p, 'f> {
    pub(crate) index: usize,
    pub(crate) total: usize,
    pub(crate) done: u64,
    pub(crate) bytes_total: u64,
    pub(crate) progress: &'p mut (dyn FnMut(&Progress<'_>) + 'f),
}

impl TensorCtx<'_, '_> {
    pub(crate) fn emit(&mut self, tensor: &str, event: ProgressEvent, within: u64) {
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

/// What a pass over a tensor does with its chunks.
pub(crate) enum Pass<'a> {
    /// Keep them (the tensor is small enough).
    Buffer(&'a mut Vec<EncodedChunk>),
    /// Only measure.
    Measure,
    /// Write them to the file.
    Write(&'a mut ParquetSink),
}

pub(crate) struct Engine<'c> {
    pub(crate) config: &'c Config,
    pub(crate) tuning: Tuning,
    pub(crate) base: CodecChoice,
    /// Per tensor index: the codec mixed precision chose (empty without `target_bpw`).
    pub(crate) overrides: Vec<Option<CodecChoice>>,
    /// Per tensor index: channel-equalization factors (empty without equalization).
    pub(crate) factors: Vec<Option<Vec<f32>>>,
    #[cfg(feature = "rayon")]
    pub(crate) pool: rayon::ThreadPool,
}

impl<'c> Engine<'c> {
    pub(crate) fn new(config: &'c Config, tuning: Tuning, base: CodecChoice) -> Result<Self> {
        Ok(Engine {
            config,
            tuning,
            base,
            overrides: Vec::new(),
            factors: Vec::new(),
            #[cfg(feature = "rayon")]
            pool: rayon::ThreadPoolBuilder::new().num_threads(config.effective_threads()).build().map_err(
                |e| {
                    AdapterError::io(
                        std::path::Path::new("<thread pool>"),
                        std::io::Error::other(e.to_string()),
                    )
                },
            )?,
        })
    }

    pub(crate) fn threads(&self) -> usize {
        #[cfg(feature = "rayon")]
        {
            self.pool.current_num_threads()
        }
        #[cfg(not(feature = "rayon"))]
        {
            1
        }
    }

    pub(crate) fn raw_reason(&self, t: &TensorInfo) -> Option<String> {
        let c = self.config;
        if t.dtype.quantizable().is_none() {
            return Some(format!("dtype {} is not quantized", t.dtype.name()));
        }
        if let Some(why) = c.pattern_reason(&t.name) {
            return Some(why);
        }
        if t.shape.len() < 2 && !c.quantize_1d {
            return Some(format!("{}-D tensor kept exact (biases and norms)", t.shape.len()));
        }
        if t.elements() == 0 {
            return Some("empty tensor".into());
        }
        None
    }

    pub(crate) fn tensor(
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
        let factors = self.factors.get(ctx.index).and_then(|f| f.as_deref());
        let mut buffered = Vec::new();
        let Fitted { codec, quality, was_buffered, below, fallback } =
            self.fit(t, reader, start, factors, &mut buffered, ctx)?;
        let fallback_reason = fallback_reason(&fallback, below, &quality, &codec, self.config.min_accuracy);
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
        let finite = crate::container::parquet::schema::finite;
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

    /// Encodes the tensor with `start`, then with each wider codec while the quality
    /// is below `min_accuracy` (the fallback ladder of [`CodecChoice::wider`]): the
    /// chunks are kept in `buffered` when the tensor fits the buffer, else only measured.
    fn fit(
        &self,
        t: &TensorInfo,
        reader: &WindowReader,
        start: CodecChoice,
        factors: Option<&[f32]>,
        buffered: &mut Vec<EncodedChunk>,
        ctx: &mut TensorCtx<'_, '_>,
    ) -> Result<Fitted> {
        let min = self.config.min_accuracy;
        let mut codec = start;
        let mut fallback = Vec::new();
        let mut first_pass = true;
        let (quality, was_buffered, below) = loop {
            let blocks = t.elements().div_ceil(codec.block_len() as u64);
            let est = blocks * (codec.codes_len() + codec.params_len()) as u64;
            let buffer = est <= self.tuning.buffer_bytes;
            buffered.clear();
            let pass = if buffer { Pass::Buffer(&mut *buffered) } else { Pass::Measure };
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
        Ok(Fitted { codec, quality, was_buffered, below, fallback })
    }
}

/// What [`Engine::fit`] settled on.
struct Fitted {
    codec: CodecChoice,
    quality: Quality,
    /// The chunks are in the buffer (else a second pass writes them).
    was_buffered: bool,
    /// Still below `min_accuracy` at the widest codec.
    below: bool,
    /// The widths rejected, in order.
    fallback: Vec<FallbackStep>,
}

/// Why the tensor fell back, one clause per rejected width (None if it did not).
fn fallback_reason(
    fallback: &[FallbackStep],
    below: bool,
    quality: &Quality,
    codec: &CodecChoice,
    min: f64,
) -> Option<String> {
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
    (!reason.is_empty()).then(|| reason.join("; "))
}
