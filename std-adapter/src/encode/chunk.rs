//! Encode one row chunk and measure it: the streaming quantizer writes the codes and
//! parameters into the chunk's buffers, then the chunk is decoded a few blocks at a time
//! and compared with its input.

use arrowquant_core::{
    BlockCodec, BlockSink, Input, Quality, QualityAccumulator, QuantError, StreamError, StreamQuantizer,
};

use crate::container::parquet::writer::{ChunkRow, RowMetrics};
use crate::pipeline::MAX_BLOCK_LEN;

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
    pub(crate) fn row(&self) -> ChunkRow<'_> {
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

/// Turns the core's quality figures into row metrics.
pub(crate) fn metrics_of(q: &Quality) -> RowMetrics {
    RowMetrics { cosine: q.cosine, rel_rmse: q.rel_rmse, sqnr_db: q.sqnr_db, max_abs_err: q.max_abs_err }
}
