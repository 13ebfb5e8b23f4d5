//! ggml's `Q5_0` block: 32 weights, one f16 scale, 5-bit codes, `x = d * (q - 16)`.
//!
//! | bytes | field | content |
//! |---|---|---|
//! | 0..2 | `d` | f16 scale, little-endian |
//! | 2..6 | `qh[4]` | fifth bits: bit `j` of the little-endian u32 is bit 4 of code `j` |
//! | 6..22 | `qs[16]` | byte `j`: low 4 bits of code `j` (low nibble), of code `j + 16` (high nibble) |
//!
//! Decode (`dequantize_row_q5_0`): `y[j] = ((q[j] as i32 - 16) as f32) * d`, one f32
//! multiplication. A corrupt block (NaN or infinite `d`) decodes to whatever that
//! product gives, as in ggml; decoding never fails.
//!
//! Encode: ggml's `quantize_row_q5_0_ref` choice is the first candidate of
//! [`sym_search`](super::block32::sym_search); the block with the smallest decoded
//! squared error is written, so it is never worse than ggml's.

use super::block32::{
    QK, ScalarSym, SymBlock, SymKernel, fp16_to_fp32, load_block, pack_high_bits, pack_nibbles, sym_search,
    unpack_five,
};
use crate::QuantError;
use crate::input::Input;

const OFF: i32 = 16;

/// `block_q5_0` of `ggml-common.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockQ5_0 {
    /// f16 scale bits, little-endian.
    pub d: [u8; 2],
    /// Fifth bits of the 32 codes, a little-endian u32.
    pub qh: [u8; 4],
    /// Low 4 bits of the codes.
    pub qs: [u8; 16],
}
const _: () = assert!(core::mem::size_of::<BlockQ5_0>() == 22);

impl BlockQ5_0 {
    /// Bytes per block.
    pub const SIZE: usize = 22;

    /// Reads a block from its bytes.
    pub fn read(b: &[u8; 22]) -> Self {
        let mut qs = [0; 16];
        qs.copy_from_slice(&b[6..]);
        BlockQ5_0 { d: [b[0], b[1]], qh: [b[2], b[3], b[4], b[5]], qs }
    }

    /// Writes the block's bytes.
    pub fn write(&self, out: &mut [u8; 22]) {
        out[..2].copy_from_slice(&self.d);
        out[2..6].copy_from_slice(&self.qh);
        out[6..].copy_from_slice(&self.qs);
    }

    fn from_sym(s: &SymBlock) -> Self {
        let mut qs = [0; 16];
        pack_nibbles(&s.q, &mut qs);
        BlockQ5_0 { d: s.d.to_le_bytes(), qh: pack_high_bits(&s.q), qs }
    }

    /// The decoded weights, exactly as ggml computes them.
    pub fn decode(&self, y: &mut [f32; QK]) {
        let d = fp16_to_fp32(u16::from_le_bytes(self.d));
        let mut q = [0; QK];
        unpack_five(&self.qs, self.qh, &mut q);
        for (o, &c) in y.iter_mut().zip(&q) {
            *o = (i32::from(c) - OFF) as f32 * d;
        }
    }
}

/// ggml's own choice (`quantize_row_q5_0_ref`) for one block, bit for bit.
#[cfg(test)]
pub(crate) fn quantize_q5_0_ggml(x: &[f32; QK]) -> BlockQ5_0 {
    BlockQ5_0::from_sym(&super::block32::sym_ggml(x, OFF))
}

/// Our scalar reference encoder for one block (searched; never worse than ggml's).
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "the documented reference; the encoders run quantize_q5_0_with")
)]
pub(crate) fn quantize_q5_0_ref(x: &[f32; QK]) -> BlockQ5_0 {
    quantize_q5_0_with(ScalarSym, x)
}

/// [`quantize_q5_0_ref`] with the hot steps of the search on kernel `k` (same result).
#[inline(always)]
pub(crate) fn quantize_q5_0_with<K: SymKernel>(k: K, x: &[f32; QK]) -> BlockQ5_0 {
    BlockQ5_0::from_sym(&sym_search(k, x, OFF))
}

/// Encodes whole `Q5_0` blocks of `input` into `out` with the fastest backend.
pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    super::simd32::encode_q5_0_with(crate::simd::Backend::detect(), input, first_element, out)
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
    for (b, o) in out.chunks_exact_mut(BlockQ5_0::SIZE).enumerate() {
        load_block(input, b, first_element, &mut x)?;
        quantize_q5_0_with(k, &x).write(o.try_into().expect("chunks_exact"));
    }
    Ok(())
}

/// Decodes whole `Q5_0` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    for (b, y) in blocks.chunks_exact(BlockQ5_0::SIZE).zip(out.chunks_exact_mut(QK)) {
        BlockQ5_0::read(b.try_into().expect("chunks_exact")).decode(y.try_into().expect("chunks_exact"));
    }
    Ok(())
}
