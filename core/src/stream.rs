//! The streaming quantizer: chunks of any length in, finished blocks out, in constant
//! memory.
//!
//! [`StreamQuantizer`] accepts input through [`feed`](StreamQuantizer::feed) in
//! chunks of any length. Whole blocks inside a chunk are encoded straight from the
//! caller's buffer (one kernel dispatch per chunk); only a partial block is copied
//! into a fixed carry array of `N` f32. Encoded blocks go to a [`BlockSink`], which
//! lends the space they are written into, so nothing is staged twice.
//!
//! # Memory
//!
//! The state is `size_of::<StreamQuantizer<C, N>>()` bytes: the carry (`4 * N` bytes),
//! a quality accumulator (48 bytes), counters and the codec. It does not depend on the
//! tensor length; [`StreamQuantizer::STATE_BYTES`] names it.
//!
//! # The last partial block
//!
//! [`finish`](StreamQuantizer::finish) encodes a final block shorter than
//! `block_len` by repeating its own elements cyclically up to the block length:
//! the padding adds no value outside the block's range, so it changes neither the
//! range nor the error of the real elements. The real element count is returned
//! in the [`StreamSummary`]; a reader decodes the whole block and keeps that many.

use crate::QuantError;
use crate::codec::BlockCodec;
use crate::error::{BufferFull, StreamError};
use crate::input::Input;
use crate::metrics::{Quality, QualityAccumulator};

/// Where encoded blocks go. The sink lends the space the quantizer writes into.
pub trait BlockSink {
    /// What the sink reports when it cannot take more.
    type Error;

    /// Returns writable space of exactly `codes_len` and `params_len` bytes for the
    /// next blocks, in stream order. The quantizer fills both completely before the
    /// next call, unless it returns an error (then their content is unspecified).
    ///
    /// # Errors
    /// The sink's own error, for example [`BufferFull`].
    fn reserve(&mut self, codes_len: usize, params_len: usize)
    -> Result<(&mut [u8], &mut [u8]), Self::Error>;
}

/// A sink over two caller-provided byte slices; works without `alloc`.
#[derive(Debug)]
pub struct SliceSink<'a> {
    codes: &'a mut [u8],
    params: &'a mut [u8],
    codes_used: usize,
    params_used: usize,
}

impl<'a> SliceSink<'a> {
    /// A sink writing codes into `codes` and parameters into `params`.
    pub fn new(codes: &'a mut [u8], params: &'a mut [u8]) -> Self {
        SliceSink { codes, params, codes_used: 0, params_used: 0 }
    }

    /// The code bytes written so far.
    pub fn codes(&self) -> &[u8] {
        &self.codes[..self.codes_used]
    }

    /// The parameter bytes written so far.
    pub fn params(&self) -> &[u8] {
        &self.params[..self.params_used]
    }
}

impl BlockSink for SliceSink<'_> {
    type Error = BufferFull;

    fn reserve(&mut self, codes_len: usize, params_len: usize) -> Result<(&mut [u8], &mut [u8]), BufferFull> {
        if self.codes.len() - self.codes_used < codes_len || self.params.len() - self.params_used < params_len
        {
            return Err(BufferFull);
        }
        let c = &mut self.codes[self.codes_used..self.codes_used + codes_len];
        let p = &mut self.params[self.params_used..self.params_used + params_len];
        self.codes_used += codes_len;
        self.params_used += params_len;
        Ok((c, p))
    }
}

/// A growable sink.
#[cfg(feature = "alloc")]
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VecSink {
    /// Packed codes of every block, in order.
    pub codes: alloc::vec::Vec<u8>,
    /// Parameters of every block, in order.
    pub params: alloc::vec::Vec<u8>,
}

#[cfg(feature = "alloc")]
impl VecSink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the sink, keeping its capacity.
    pub fn clear(&mut self) {
        self.codes.clear();
        self.params.clear();
    }
}

#[cfg(feature = "alloc")]
impl BlockSink for VecSink {
    type Error = core::convert::Infallible;

    fn reserve(
        &mut self,
        codes_len: usize,
        params_len: usize,
    ) -> Result<(&mut [u8], &mut [u8]), core::convert::Infallible> {
        let c0 = self.codes.len();
        let p0 = self.params.len();
        self.codes.resize(c0 + codes_len, 0);
        self.params.resize(p0 + params_len, 0);
        Ok((&mut self.codes[c0..], &mut self.params[p0..]))
    }
}

/// What a finished stream produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamSummary {
    /// Real elements quantized.
    pub elements: u64,
    /// Blocks emitted (the last one may be padded).
    pub blocks: u64,
    /// Padding elements in the last block.
    pub padding: usize,
    /// Quality of the reconstruction, if tracking was on.
    pub quality: Option<Quality>,
}

/// Quantizes a stream of elements block by block with a fixed-size carry.
///
/// `N` is the capacity of the carry in elements and must be at least the codec's
/// block length (256 covers every group format).
#[derive(Debug, Clone)]
pub struct StreamQuantizer<C, const N: usize = 256> {
    codec: C,
    carry: [f32; N],
    /// Elements waiting in `carry` (always less than the block length between calls).
    carried: usize,
    /// Elements already encoded: the stream position of `carry[0]`.
    elements: u64,
    blocks: u64,
    quality: Option<QualityAccumulator>,
}

impl<C: BlockCodec, const N: usize> StreamQuantizer<C, N> {
    /// Bytes of state, independent of how many elements are streamed.
    pub const STATE_BYTES: usize = core::mem::size_of::<Self>();

    /// A quantizer for `codec`.
    ///
    /// # Errors
    /// [`QuantError::InvalidGroupSize`] if the codec's block is longer than `N` or empty.
    pub fn new(codec: C) -> Result<Self, QuantError> {
        let b = codec.block_len();
        if b == 0 || b > N {
            return Err(QuantError::InvalidGroupSize(b));
        }
        Ok(StreamQuantizer { codec, carry: [0.0; N], carried: 0, elements: 0, blocks: 0, quality: None })
    }

    /// Also measures the reconstruction (cosine, rel-RMSE, SQNR) as blocks are emitted,
    /// by decoding each block right after encoding it.
    pub fn track_quality(mut self, on: bool) -> Self {
        self.quality = on.then(QualityAccumulator::new);
        self
    }

    /// The codec.
    pub fn codec(&self) -> &C {
        &self.codec
    }

    /// Elements fed since the last [`finish`](Self::finish).
    pub fn elements(&self) -> u64 {
        self.elements + self.carried as u64
    }

    /// Feeds a chunk of any length.
    ///
    /// # Errors
    /// Rejected input (see [`QuantError::NonFinite`]) or a sink error. After an error
    /// the stream should be abandoned.
    pub fn feed<S: BlockSink>(
        &mut self,
        input: Input<'_>,
        sink: &mut S,
    ) -> Result<(), StreamError<S::Error>> {
        let b = self.codec.block_len();
        let mut rest = input;
        if self.carried > 0 {
            let take = (b - self.carried).min(rest.len());
            let (head, tail) = rest.split_at(take);
            head.to_f32(&mut self.carry[self.carried..self.carried + take]);
            self.carried += take;
            rest = tail;
            if self.carried < b {
                return Ok(());
            }
            self.emit_carry(b, sink)?;
        }
        let whole = rest.len() / b * b;
        if whole > 0 {
            let (body, tail) = rest.split_at(whole);
            self.emit(body, sink)?;
            rest = tail;
        }
        rest.to_f32(&mut self.carry[..rest.len()]);
        self.carried = rest.len();
        Ok(())
    }

    /// Encodes the carried partial block (padded, see the module docs) and resets the
    /// quantizer for the next tensor.
    ///
    /// # Errors
    /// As [`feed`](Self::feed).
    pub fn finish<S: BlockSink>(&mut self, sink: &mut S) -> Result<StreamSummary, StreamError<S::Error>> {
        let b = self.codec.block_len();
        let real = self.carried;
        let mut padding = 0;
        if real > 0 {
            for i in real..b {
                self.carry[i] = self.carry[i % real];
            }
            padding = b - real;
            let carry = self.carry;
            self.emit_block(&carry[..b], real, sink)?;
        }
        let summary = StreamSummary {
            elements: self.elements,
            blocks: self.blocks,
            padding,
            quality: self.quality.as_ref().map(QualityAccumulator::finish),
        };
        self.carried = 0;
        self.elements = 0;
        self.blocks = 0;
        if let Some(q) = self.quality.as_mut() {
            *q = QualityAccumulator::new();
        }
        Ok(summary)
    }

    fn emit_carry<S: BlockSink>(&mut self, b: usize, sink: &mut S) -> Result<(), StreamError<S::Error>> {
        let carry = self.carry;
        self.carried = 0;
        self.emit_block(&carry[..b], b, sink)
    }

    fn emit_block<S: BlockSink>(
        &mut self,
        block: &[f32],
        real: usize,
        sink: &mut S,
    ) -> Result<(), StreamError<S::Error>> {
        let (codes, params) =
            sink.reserve(self.codec.codes_len(), self.codec.params_len()).map_err(StreamError::Sink)?;
        self.codec.encode(Input::F32(block), self.elements, codes, params)?;
        if let Some(q) = self.quality.as_mut() {
            let mut decoded = [0f32; N];
            let out = &mut decoded[..block.len()];
            self.codec.decode(codes, params, out)?;
            q.update(&block[..real], &out[..real]);
        }
        self.elements += real as u64;
        self.blocks += 1;
        Ok(())
    }

    fn emit<S: BlockSink>(&mut self, body: Input<'_>, sink: &mut S) -> Result<(), StreamError<S::Error>> {
        let b = self.codec.block_len();
        let n = body.len() / b;
        let (codes, params) = sink
            .reserve(n * self.codec.codes_len(), n * self.codec.params_len())
            .map_err(StreamError::Sink)?;
        self.codec.encode(body, self.elements, codes, params)?;
        if let Some(q) = self.quality.as_mut() {
            let mut decoded = [0f32; N];
            let (cl, pl) = (self.codec.codes_len(), self.codec.params_len());
            for i in 0..n {
                let out = &mut decoded[..b];
                self.codec.decode(&codes[i * cl..(i + 1) * cl], &params[i * pl..(i + 1) * pl], out)?;
                // The original is read in place, 16-bit input widened in registers.
                q.update_input(body.slice(i * b, (i + 1) * b), out);
            }
        }
        self.elements += body.len() as u64;
        self.blocks += n as u64;
        Ok(())
    }
}
