//! The passes over a quantized tensor's data: sequential, or chunk by chunk on the
//! rayon pool, each keeping, measuring or writing the encoded chunks.

use arrowquant_core::{BlockCodec, Input, QualityAccumulator, QuantError};

use crate::encode::chunk::{EncodedChunk, encode_chunk};
use crate::encode::codec::CodecChoice;
use crate::encode::engine::{Engine, Pass, TensorCtx};
use crate::error::{AdapterError, Result};
use crate::features::equalization;
use crate::model::safetensors::TensorInfo;
use crate::model::window::{AlignedScratch, WindowReader, with_input};
use crate::pipeline::ProgressEvent;

impl Engine<'_> {
    /// One pass over a quantized tensor's data with `codec`; with `factors` each
    /// window is converted to f32 and its columns scaled before it is encoded. With
    /// more than one thread the chunks are encoded by the pool ([`Self::pass_parallel`]).
    pub(super) fn pass(
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
                    let q = encode_chunk(job.codec.codec(), piece, first + s as u64, &mut out)
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
                    q = Some(
                        encode_chunk(self.codec.codec(), input, first, &mut out)
                            .map_err(|e| self.error(e))?,
                    );
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
