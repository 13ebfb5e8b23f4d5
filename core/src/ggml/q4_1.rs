//! ggml's `Q4_1` block: 32 weights, f16 scale and minimum, 4-bit codes, `x = d * q + m`.
//!
//! | bytes | field | content |
//! |---|---|---|
//! | 0..2 | `d` | f16 scale, little-endian |
//! | 2..4 | `m` | f16 minimum, little-endian |
//! | 4..20 | `qs[16]` | byte `j`: code of weight `j` (low nibble), of weight `j + 16` (high nibble) |
//!
//! Decode (`dequantize_row_q4_1`): `y[j] = (q[j] as f32) * d + m`, a multiplication
//! and an addition each rounded to f32 (never fused, as the `gguf` package computes).
//! A corrupt block (NaN or infinite `d` or `m`) decodes to whatever that gives, as in
//! ggml; decoding never fails.
//!
//! Encode: ggml's `quantize_row_q4_1_ref` choice is the first candidate of
//! [`aff_search`](super::block32::aff_search); the block with the smallest decoded
//! squared error is written, so it is never worse than ggml's.

use super::block32::{AffBlock, QK, aff_search, load_block, pack_nibbles, unpack_nibbles};
use crate::QuantError;
use crate::input::Input;

const QMAX: u8 = 15;

/// `block_q4_1` of `ggml-common.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockQ4_1 {
    /// f16 scale bits, little-endian.
    pub d: [u8; 2],
    /// f16 minimum bits, little-endian.
    pub m: [u8; 2],
    /// Packed 4-bit codes.
    pub qs: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);

impl BlockQ4_1 {
    /// Bytes per block.
    pub const SIZE: usize = 20;

    /// Reads a block from its bytes.
    pub fn read(b: &[u8; 20]) -> Self {
        let mut qs = [0; 16];
        qs.copy_from_slice(&b[4..]);
        BlockQ4_1 { d: [b[0], b[1]], m: [b[2], b[3]], qs }
    }

    /// Writes the block's bytes.
    pub fn write(&self, out: &mut [u8; 20]) {
        out[..2].copy_from_slice(&self.d);
        out[2..4].copy_from_slice(&self.m);
        out[4..].copy_from_slice(&self.qs);
    }

    fn from_aff(a: &AffBlock) -> Self {
        let mut qs = [0; 16];
        pack_nibbles(&a.q, &mut qs);
        BlockQ4_1 { d: a.d.to_le_bytes(), m: a.m.to_le_bytes(), qs }
    }

    /// The decoded weights, exactly as ggml computes them.
    pub fn decode(&self, y: &mut [f32; QK]) {
        let mut q = [0; QK];
        unpack_nibbles(&self.qs, &mut q);
        AffBlock { d: u16::from_le_bytes(self.d), m: u16::from_le_bytes(self.m), q }.decode(y);
    }
}

/// ggml's own choice (`quantize_row_q4_1_ref`) for one block, bit for bit.
#[cfg(test)]
pub(crate) fn quantize_q4_1_ggml(x: &[f32; QK]) -> BlockQ4_1 {
    BlockQ4_1::from_aff(&super::block32::aff_ggml(x, QMAX))
}

/// Our scalar reference encoder for one block (searched; never worse than ggml's).
pub(crate) fn quantize_q4_1_ref(x: &[f32; QK]) -> BlockQ4_1 {
    BlockQ4_1::from_aff(&aff_search(x, QMAX))
}

/// Encodes whole `Q4_1` blocks of `input` into `out`.
pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    let mut x = [0.0; QK];
    for (b, o) in out.chunks_exact_mut(BlockQ4_1::SIZE).enumerate() {
        load_block(input, b, first_element, &mut x)?;
        quantize_q4_1_ref(&x).write(o.try_into().expect("chunks_exact"));
    }
    Ok(())
}

/// Decodes whole `Q4_1` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    for (b, y) in blocks.chunks_exact(BlockQ4_1::SIZE).zip(out.chunks_exact_mut(QK)) {
        BlockQ4_1::read(b.try_into().expect("chunks_exact")).decode(y.try_into().expect("chunks_exact"));
    }
    Ok(())
}
