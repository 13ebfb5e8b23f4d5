//! ggml's `Q8_0` block: 32 weights, one f16 scale, 8-bit signed codes, `x = d * q`.
//!
//! | bytes | field | content |
//! |---|---|---|
//! | 0..2 | `d` | f16 scale, little-endian |
//! | 2..34 | `qs[32]` | code of weight `j`, `i8` |
//!
//! Decode (`dequantize_row_q8_0`): `y[j] = (q[j] as f32) * d`, one f32 multiplication.
//! A corrupt block (NaN or infinite `d`) decodes to whatever that product gives, as in
//! ggml; decoding never fails.
//!
//! Encode: the scale is ggml's (`d = f16(amax / 127)`, as `quantize_row_q8_0_ref`);
//! the codes are the nearest to `x / d` *for the stored f16 `d`*, clamped to
//! `-127..=127` (ggml rounds `x * (1 / d)` with the unrounded f32 `d`, so its codes
//! are not always the nearest for the scale the decoder uses). With the same stored
//! scale, each of our codes is the nearest the layout offers (up to the rounding of
//! one f32 division), so the block error is at most ggml's.
//!
//! No scale search: measured on MiniLM's 22.7 M weights (SQNR over the whole set),
//! two least-squares refits of the scale gain +0.2 dB and adding four scales within 1%
//! of ggml's +0.5 dB (45.2 -> 45.7 dB; mean row cosine moves in the sixth decimal),
//! but the searched encoder (SIMD, same structure as Q4_0's) ran at about 45 M
//! weights/s against about 1100 M weights/s for this one (AVX2, one thread, busy
//! 2-core AMD EPYC), far under the 150 M weights/s target.

use super::block32::{QK, fp16_to_fp32, fp32_to_fp16, load_block, round_even};
use crate::QuantError;
use crate::input::Input;

/// `block_q8_0` of `ggml-common.h`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockQ8_0 {
    /// f16 scale bits, little-endian.
    pub d: [u8; 2],
    /// Codes (`i8` bit patterns).
    pub qs: [u8; 32],
}
const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);

impl BlockQ8_0 {
    /// Bytes per block.
    pub const SIZE: usize = 34;

    /// Reads a block from its bytes.
    pub fn read(b: &[u8; 34]) -> Self {
        let mut qs = [0; 32];
        qs.copy_from_slice(&b[2..]);
        BlockQ8_0 { d: [b[0], b[1]], qs }
    }

    /// Writes the block's bytes.
    pub fn write(&self, out: &mut [u8; 34]) {
        out[..2].copy_from_slice(&self.d);
        out[2..].copy_from_slice(&self.qs);
    }

    /// The decoded weights, exactly as ggml computes them.
    pub fn decode(&self, y: &mut [f32; QK]) {
        let d = fp16_to_fp32(u16::from_le_bytes(self.d));
        for (o, &c) in y.iter_mut().zip(&self.qs) {
            *o = f32::from(c as i8) * d;
        }
    }
}

/// ggml's own choice (`quantize_row_q8_0_ref`) for one block, bit for bit.
#[cfg(test)]
pub(crate) fn quantize_q8_0_ggml(x: &[f32; QK]) -> BlockQ8_0 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0u8; 32];
    for (c, &v) in qs.iter_mut().zip(x) {
        // `roundf`: half away from zero.
        *c = (libm::roundf(v * id) as i32) as i8 as u8;
    }
    BlockQ8_0 { d: fp32_to_fp16(d).to_le_bytes(), qs }
}

/// Our scalar reference encoder for one block.
#[inline]
pub(crate) fn quantize_q8_0_ref(x: &[f32; QK]) -> BlockQ8_0 {
    let mut amax = 0.0f32;
    for &v in x {
        amax = amax.max(v.abs());
    }
    // `+ 0.0`: a `-0.0` maximum (which zero `max` returns is unspecified) becomes `+0.0`.
    let h = fp32_to_fp16((amax + 0.0) / 127.0);
    let d = fp16_to_fp32(h);
    let mut qs = [0u8; 32];
    if d != 0.0 {
        for (c, &v) in qs.iter_mut().zip(x) {
            *c = (round_even((v / d).clamp(-127.0, 127.0)) as i32) as i8 as u8;
        }
    }
    BlockQ8_0 { d: h.to_le_bytes(), qs }
}

/// Encodes whole `Q8_0` blocks of `input` into `out` with the fastest backend.
pub(crate) fn encode(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    super::simd32::encode_q8_0_with(crate::simd::Backend::detect(), input, first_element, out)
}

/// [`encode`] with the scalar reference.
pub(crate) fn encode_scalar(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    let mut x = [0.0; QK];
    for (b, o) in out.chunks_exact_mut(BlockQ8_0::SIZE).enumerate() {
        load_block(input, b, first_element, &mut x)?;
        quantize_q8_0_ref(&x).write(o.try_into().expect("chunks_exact"));
    }
    Ok(())
}

/// Decodes whole `Q8_0` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    for (b, y) in blocks.chunks_exact(BlockQ8_0::SIZE).zip(out.chunks_exact_mut(QK)) {
        BlockQ8_0::read(b.try_into().expect("chunks_exact")).decode(y.try_into().expect("chunks_exact"));
    }
    Ok(())
}
