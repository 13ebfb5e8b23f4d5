//! One window of a tensor encoded into ggml blocks, on the thread pool.
//!
//! ggml blocks share nothing (each holds its own scales), so a window's whole blocks
//! split into pieces that are encoded, decoded and measured independently and written
//! in order: the bytes are those of one thread, whatever the thread count (tested),
//! and the quality sums merge. Memory: the window's encoded blocks (smaller than the
//! window) and one piece of decoded floats per thread.

use arrowquant_core::ggml::GgmlCodec;
use arrowquant_core::{BlockCodec, Input, QualityAccumulator, QuantError};

/// Blocks per piece at least: enough to amortise a task, small enough to balance.
const MIN_PIECE_BLOCKS: usize = 64;

/// Encodes ggml blocks over a thread pool (or on the calling thread); one per file.
#[derive(Debug)]
pub(super) struct BlockEncoder {
    #[cfg(feature = "rayon")]
    pool: rayon::ThreadPool,
}

impl BlockEncoder {
    /// An encoder on `threads` threads (0 = all cores; 1 = the calling thread).
    pub(super) fn new(threads: usize) -> std::io::Result<Self> {
        #[cfg(not(feature = "rayon"))]
        let _ = threads;
        Ok(BlockEncoder {
            #[cfg(feature = "rayon")]
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .map_err(std::io::Error::other)?,
        })
    }

    /// Encodes with `codec` the whole blocks of `input` (its first element is element
    /// `first_element` of the tensor) into `out` (resized to fit) and adds the decoded
    /// blocks' error to `acc`.
    ///
    /// # Errors
    /// The encoder's error for the first bad block in tensor order.
    pub(super) fn encode(
        &self,
        codec: &GgmlCodec,
        input: Input<'_>,
        first_element: u64,
        out: &mut Vec<u8>,
        acc: &mut QualityAccumulator,
    ) -> Result<(), QuantError> {
        let (bl, ts) = (codec.block_len(), codec.codes_len());
        let blocks = input.len() / bl;
        out.clear();
        out.resize(blocks * ts, 0);
        let piece = MIN_PIECE_BLOCKS.max(blocks.div_ceil(4 * self.threads()));
        let one = |(i, o): (usize, &mut [u8])| -> Result<QualityAccumulator, QuantError> {
            let (start, n) = (i * piece * bl, o.len() / ts * bl);
            let part = input.slice(start, start + n);
            codec.encode(part, first_element + start as u64, o, &mut [])?;
            let mut y = vec![0f32; n];
            codec.decode(o, &[], &mut y)?;
            let mut a = QualityAccumulator::new();
            a.update_input(part, &y);
            Ok(a)
        };
        #[cfg(feature = "rayon")]
        let parts: Vec<Result<QualityAccumulator, QuantError>> = {
            use rayon::prelude::*;
            self.pool.install(|| out.par_chunks_mut(piece * ts).enumerate().map(one).collect())
        };
        #[cfg(not(feature = "rayon"))]
        let parts: Vec<Result<QualityAccumulator, QuantError>> =
            out.chunks_mut(piece * ts).enumerate().map(one).collect();
        for p in parts {
            acc.merge(&p?);
        }
        Ok(())
    }

    /// Threads encoding.
    pub(super) fn threads(&self) -> usize {
        #[cfg(feature = "rayon")]
        {
            self.pool.current_num_threads()
        }
        #[cfg(not(feature = "rayon"))]
        {
            1
        }
    }
}
