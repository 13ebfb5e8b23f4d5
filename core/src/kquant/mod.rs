//! Two-level ("k-quant style") formats: super-blocks of up to 256 elements cut into
//! sub-groups of 8-64, each sub-group with its own scale and minimum quantized to a
//! few bits under per-super-block f16 scales. Small sub-groups then cost little
//! metadata, which is what lets 2- and 4-bit codes keep their quality.
//!
//! # Decoding
//!
//! For element `i` of sub-group `j` with code `q_i`, sub-scale code `sc_j` and
//! sub-min code `mc_j`:
//!
//! ```text
//! x_i = q_i * (d * sc_j) - (dmin * mc_j)
//! ```
//!
//! computed in f32: `d * sc_j` and `dmin * mc_j` are exact (an f16 times an integer
//! below 256), then one multiply and one subtract, never fused, so every CPU decodes
//! bit for bit alike. Outlier elements are then overwritten by their stored value.
//!
//! # Layout of one block
//!
//! `B` elements per block, sub-groups of `S`, `n = B / S` sub-groups, `b`-bit codes,
//! `sb`-bit sub-scales, `mb`-bit sub-mins, `k` outliers. All little-endian.
//!
//! | part | bytes | content |
//! |---|---|---|
//! | codes | `B * b / 8` | `q_0 .. q_{B-1}` packed by [`pack_i2`](crate::format::pack_i2) / [`pack_i4`](crate::format::pack_i4) / [`pack_i8`](crate::format::pack_i8) |
//! | params: `d` | 2 | f16 scale of the sub-scales (absent in per-row mode) |
//! | params: `dmin` | 2 | f16 scale of the sub-mins (absent in per-row mode) |
//! | params: sub-scales | `ceil(n * sb / 8)` | `sc_0 .. sc_{n-1}`, `sb`-bit little-endian bit stream ([`bitpack`](self)) |
//! | params: sub-mins | `ceil(n * mb / 8)` | `mc_0 .. mc_{n-1}`, `mb`-bit bit stream |
//! | params: outliers | `3 * k` | `k` times (f16 value, u8 index in the block) |
//!
//! The codes go to the sink's code stream and everything else to its parameter
//! stream, as for the plain group formats.
//!
//! # Bits per weight
//!
//! ```text
//! bpw = (B*b + 32 + 8*ceil(n*sb/8) + 8*ceil(n*mb/8) + 24*k) / B
//! ```
//!
//! (per-row mode: drop the 32 and add 32 bits per row for the row header). Examples
//! with `B = 256`:
//!
//! | b | S | sb | mb | k | bpw | same layout cost as |
//! |---|---|---|---|---|---|---|
//! | 2 | 16 | 4 | 4 | 0 | 2.625 | ggml Q2_K |
//! | 4 | 32 | 6 | 6 | 0 | 4.5 | ggml Q4_K |
//! | 4 | 16 | 4 | 4 | 0 | 4.625 | |
//! | 8 | 32 | 6 | 6 | 0 | 8.5 | ggml Q8_0 |
//!
//! # Per-row mode (one output channel at a time)
//!
//! With [`TwoLevelCodec::with_row`] the f16 pair `(d, dmin)` belongs to a whole row
//! of a 2-D tensor instead of each block: it is stored once per row (a 4-byte
//! [`RowScales`] header kept by the container) and the blocks carry only sub-scales,
//! sub-mins, outliers and codes. Memory stays constant: the caller makes a first
//! streaming pass over the row with [`TwoLevelCodec::row_scales`] (eight sub-groups at
//! a time: the sub-group fit, keeping the largest scale and minimum), then streams
//! the row again through the codec built with those scales. Rows should be a whole
//! number of blocks (choose `B` dividing the row length, e.g. 128 for rows of 384).
//!
//! # Encoding (search)
//!
//! Per super-block: take out the outliers (largest `|x|`, ties to the lower index;
//! their slots are refilled with the mean of the other elements of the sub-group),
//! fit each sub-group's continuous `(scale, min)` with the search of
//! [`crate::search`], derive `d` and `dmin` from the largest, choose each
//! sub-group's quantized `(sc, mc)` (rounded, or the best of the four neighbours
//! by actual error), then refit `(d, dmin)` by least squares given all codes and
//! choose again, keeping the best state by actual error. Eight sub-groups are searched
//! at once, one per vector lane (`lanes`), and the block encoder is compiled for the
//! baseline and, with `std` on x86_64, for AVX2 (picked at run time): the same IEEE
//! operations either way, so the bytes are identical (tested).
//!
//! # Memory
//!
//! Encoding works on one block on the stack (at most about 10 KB: the block, its transposed
//! copy, optional weights and codes); nothing is allocated and nothing depends on the
//! tensor length.

mod bitpack;
mod decode;
mod encode;
mod lanes;

pub use bitpack::packed_len;

use half::f16;

use crate::QuantError;
use crate::codec::BlockCodec;
use crate::format::Bits;
use crate::input::Input;
use crate::search::SearchConfig;
use crate::search::group::check_lengths;

/// Largest number of exactly kept outliers per block.
pub const MAX_OUTLIERS: usize = 16;
/// Largest block (super-block) length.
pub const MAX_BLOCK: usize = 256;
/// Most sub-groups per block (`256 / 8`).
const MAX_SUBS: usize = MAX_BLOCK / 8;

/// A two-level layout (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TwoLevelFormat {
    /// Code width.
    pub bits: Bits,
    block: u16,
    sub: u16,
    scale_bits: u8,
    min_bits: u8,
    outliers: u8,
}

impl TwoLevelFormat {
    /// A format with `block` elements per super-block (64, 128 or 256), sub-groups
    /// of `sub` elements (8, 16, 32 or 64, dividing `block`), `scale_bits`-bit
    /// sub-scales and `min_bits`-bit sub-mins (1 to 8 each), and no outliers.
    ///
    /// # Errors
    /// [`QuantError::InvalidBitWidth`] for a code, scale or min width out of range,
    /// [`QuantError::InvalidGroupSize`] for a block or sub-group size out of range.
    pub const fn new(
        bits: u8,
        block: usize,
        sub: usize,
        scale_bits: u8,
        min_bits: u8,
    ) -> Result<Self, QuantError> {
        let bits = match Bits::new(bits) {
            Ok(b) => b,
            Err(e) => return Err(e),
        };
        if !matches!(block, 64 | 128 | 256) {
            return Err(QuantError::InvalidGroupSize(block));
        }
        if !matches!(sub, 8 | 16 | 32 | 64) || sub > block {
            return Err(QuantError::InvalidGroupSize(sub));
        }
        if scale_bits == 0 || scale_bits > 8 {
            return Err(QuantError::InvalidBitWidth(scale_bits));
        }
        if min_bits == 0 || min_bits > 8 {
            return Err(QuantError::InvalidBitWidth(min_bits));
        }
        Ok(TwoLevelFormat { bits, block: block as u16, sub: sub as u16, scale_bits, min_bits, outliers: 0 })
    }

    /// The same format keeping the `k` largest-magnitude weights of each block
    /// exactly (as f16 with a u8 index).
    ///
    /// # Errors
    /// [`QuantError::InvalidGroupSize`] if `k > MAX_OUTLIERS`.
    pub const fn with_outliers(mut self, k: usize) -> Result<Self, QuantError> {
        if k > MAX_OUTLIERS {
            return Err(QuantError::InvalidGroupSize(k));
        }
        self.outliers = k as u8;
        Ok(self)
    }

    /// Elements per block.
    pub const fn block_len(&self) -> usize {
        self.block as usize
    }

    /// Elements per sub-group.
    pub const fn sub_len(&self) -> usize {
        self.sub as usize
    }

    /// Sub-groups per block.
    pub const fn subs(&self) -> usize {
        self.block_len() / self.sub_len()
    }

    /// Bits of each sub-scale code.
    pub const fn scale_bits(&self) -> u32 {
        self.scale_bits as u32
    }

    /// Bits of each sub-min code.
    pub const fn min_bits(&self) -> u32 {
        self.min_bits as u32
    }

    /// Outliers kept per block.
    pub const fn outliers(&self) -> usize {
        self.outliers as usize
    }

    /// Packed code bytes per block.
    pub const fn codes_len(&self) -> usize {
        self.block_len() * self.bits.get() as usize / 8
    }

    /// Bytes of the sub-scale bit stream.
    const fn scales_len(&self) -> usize {
        packed_len(self.subs(), self.scale_bits())
    }

    /// Bytes of the sub-min bit stream.
    const fn mins_len(&self) -> usize {
        packed_len(self.subs(), self.min_bits())
    }

    /// Parameter bytes per block; `per_row` drops the 4-byte `(d, dmin)` header.
    pub const fn params_len(&self, per_row: bool) -> usize {
        (if per_row { 0 } else { 4 }) + self.scales_len() + self.mins_len() + 3 * self.outliers()
    }

    /// Bits per weight of a block (per-row mode: without the row headers).
    pub fn bits_per_weight(&self, per_row: bool) -> f64 {
        ((self.codes_len() + self.params_len(per_row)) * 8) as f64 / self.block_len() as f64
    }
}

/// The per-row super-scales of [`TwoLevelCodec::with_row`]: 4 bytes, `d` then `dmin`,
/// little-endian f16.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowScales {
    /// Scale of the sub-scale codes.
    pub d: f16,
    /// Scale of the sub-min codes.
    pub dmin: f16,
}

impl RowScales {
    /// Bytes of a row header.
    pub const BYTES: usize = 4;

    /// The 4-byte header.
    pub fn to_le_bytes(&self) -> [u8; 4] {
        let (a, b) = (self.d.to_le_bytes(), self.dmin.to_le_bytes());
        [a[0], a[1], b[0], b[1]]
    }

    /// Reads a header.
    ///
    /// # Errors
    /// [`QuantError::Corrupt`] if a scale is not finite or negative.
    pub fn from_le_bytes(b: [u8; 4]) -> Result<Self, QuantError> {
        let r = RowScales { d: f16::from_le_bytes([b[0], b[1]]), dmin: f16::from_le_bytes([b[2], b[3]]) };
        let ok = |h: f16| h.is_finite() && h.to_f32() >= 0.0;
        if ok(r.d) && ok(r.dmin) { Ok(r) } else { Err(QuantError::Corrupt) }
    }
}

/// Encodes and decodes a [`TwoLevelFormat`] with a [`SearchConfig`]; optionally in
/// per-row mode with fixed [`RowScales`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TwoLevelCodec {
    format: TwoLevelFormat,
    search: SearchConfig,
    row: Option<RowScales>,
}

impl TwoLevelCodec {
    /// Per-block super-scales.
    pub fn new(format: TwoLevelFormat, search: SearchConfig) -> Self {
        TwoLevelCodec { format, search, row: None }
    }

    /// Per-row mode: every block uses `row` and stores no super-scales.
    pub fn with_row(format: TwoLevelFormat, search: SearchConfig, row: RowScales) -> Self {
        TwoLevelCodec { format, search, row: Some(row) }
    }

    /// The layout.
    pub fn format(&self) -> TwoLevelFormat {
        self.format
    }

    /// The search knobs.
    pub fn search(&self) -> SearchConfig {
        self.search
    }

    /// The row scales in per-row mode.
    pub fn row(&self) -> Option<RowScales> {
        self.row
    }

    /// First pass of per-row mode: the super-scales for one row, computed
    /// eight sub-groups at a time (constant memory). A partial last sub-group is fitted
    /// as is.
    ///
    /// # Errors
    /// [`QuantError::NonFinite`] / [`QuantError::OutOfRange`] naming the element
    /// (counted from the start of `row`).
    pub fn row_scales(&self, row: Input<'_>) -> Result<RowScales, QuantError> {
        encode::row_scales(&self.format, &self.search, row)
    }
}

impl BlockCodec for TwoLevelCodec {
    fn block_len(&self) -> usize {
        self.format.block_len()
    }

    fn codes_len(&self) -> usize {
        self.format.codes_len()
    }

    fn params_len(&self) -> usize {
        self.format.params_len(self.row.is_some())
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        check_lengths(self, input.len(), codes.len(), params.len())?;
        encode::encode_blocks(&self.format, &self.search, self.row, input, first_element, codes, params)
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        check_lengths(self, out.len(), codes.len(), params.len())?;
        let b = self.block_len();
        let blocks = codes.chunks_exact(self.codes_len()).zip(params.chunks_exact(self.params_len()));
        for ((c, p), o) in blocks.zip(out.chunks_exact_mut(b)) {
            decode::decode_block(&self.format, self.row, c, p, o)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
