//! ggml's `Q4_0` block: 32 weights, one f16 scale, 4-bit codes, `x = d * (q - 8)`.
//!
//! | bytes | field | content |
//! |---|---|---|
//! | 0..2 | `d` | f16 scale, little-endian |
//! | 2..18 | `qs[16]` | byte `j`: code of weight `j` (low nibble), of weight `j + 16` (high nibble) |
//!
//! Decode (`dequantize_row_q4_0`): `y[j] = ((q[j] as i32 - 8) as f32) * d`, one f32
//! multiplication. A corrupt block (NaN or infinite `d`) decodes to whatever that
//! product gives, as in ggml (NaN / infinities); decoding never fails.
//!
//! Encode: ggml's `quantize_row_q4_0_ref` choice is the first candidate of
//! [`sym_search`](super::block32::sym_search); the block with the smallest decoded
//! squared error is written, so it is never worse than ggml's.

use super::block32::{
    QK, ScalarSym, SymBlock, SymKernel, fp16_to_fp32, load_block, pack_nibbles, sym_search, unpack_nibbles,
};
use crate::QuantError;
use crate::input::Input;

const OFF: i32 = 8;

/// `block_q4_0` of `ggml-common.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockQ4_0 {
    /// f16 scale bits, little-endian.
    pub d: [u8; 2],
    /// Packed 4-bit codes.
    pub qs: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);

impl BlockQ4_0 {
    /// Bytes per block.
    pub const SIZE: usize = 18;

    /// Reads a block from its bytes.
    pub fn read(b: &[u8; 18]) -> Self {
        let mut qs = [0; 16];
        qs.copy_from_slice(&b[2..]);
        BlockQ4_0 { d: [b[0], b[1]], qs }
    }

    /// Writes the block's bytes.
    pub fn write(&self, out: &mut [u8; 18]) {
        out[..2].copy_from_slice(&self.d);
        out[2..].copy_from_slice(&self.qs);
    }

    fn from_sym(s: &SymBlock) -> Self {
        let mut qs = [0; 16];
        pack_nibbles(&s.q, &mut qs);
        BlockQ4_0 { d: s.d.to_le_bytes(), qs }
    }

    /// The decoded weights, exactly as ggml computes them.
    pub fn decode(&self, y: &mut [f32; QK]) {
        let d = fp16_to_fp32(u16::from_le_bytes(self.d));
        let mut q = [0; QK];
        unpack_nibbles(&self.qs, &mut q);
        for (o, &c) in y.iter_mut().zip(&q) {
            *o = (i32::from(c) - OFF) as f32 * d;
        }
    }
}

/// ggml's own choice (`quantize_row_q4_0_ref`) for one block, bit for bit.
#[cfg(test)]
pub(crate) fn quantize_q4_0_ggml(x: &[f32; QK]) -> BlockQ4_0 {
    BlockQ4_0::from_sym(&super::block32::sym_ggml(x, OFF))
}

/// Our scalar reference encoder for one block (searched; never worse than ggml's).
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the documented reference; the encoders run quantize_q4_0_with")
)]
pub(crate) fn quantize_q4_0_ref(x: &[f32; QK]) -> BlockQ4_0 {
    quantize_q4_0_with(ScalarSym, x)
}

/// [`quantize_q4_0_ref`] with the hot steps of the search on kernel `k` (same result).
#[inline(always)]
pub(crate) fn quantize_q4_0_with<K: SymKernel>(k: K, x: &[f32; QK]) -> BlockQ4_0 {
    BlockQ4_0::from_sym(&sym_search(k, x, OFF))
}

/// Encodes whole `Q4_0` blocks of `input` into `out` with the fastest backend.
pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    super::simd32::encode_q4_0_with(crate::simd::Backend::detect(), input, first_element, out)
}

/// Every block of the buffer on kernel `k`; inlined into the per-ISA entry points.
#[inline(always)]
pub(crate) fn encode_blocks<K: SymKernel>(
    k: K,
    input: Input<'_>,
    first_element: u64,
    out: &mut [u8],
) -> Result<(), QuantError> {
    let mut x = [0.0; QK];
    for (b, o) in out.chunks_exact_mut(BlockQ4_0::SIZE).enumerate() {
        load_block(input, b, first_element, &mut x)?;
        quantize_q4_0_with(k, &x).write(o.try_into().expect("chunks_exact"));
    }
    Ok(())
}

/// Decodes whole `Q4_0` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    for (b, y) in blocks.chunks_exact(BlockQ4_0::SIZE).zip(out.chunks_exact_mut(QK)) {
        BlockQ4_0::read(b.try_into().expect("chunks_exact")).decode(y.try_into().expect("chunks_exact"));
    }
    Ok(())
}
