//! ggml's `Q5_K`: 256 weights in 176 bytes (5.5 bits per weight).
//!
//! # Layout (`block_q5_K`, little-endian)
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 2 | `d` | f16 scale of the sub-scales |
//! | 2 | 2 | `dmin` | f16 scale of the sub-mins |
//! | 4 | 12 | `scales` | eight 6-bit sub-scales and sub-mins, packed as in Q4_K (`get_scale_min_k4`) |
//! | 16 | 32 | `qh` | bit 4 of the codes: bit `i / 32` of byte `i % 32` belongs to element `i` |
//! | 48 | 128 | `qs` | low 4 bits of the codes, packed as Q4_K's `qs` |
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 32` with 5-bit code `q`:
//! `y = (d * sc_j) * q - (dmin * m_j)` in f32, never fused (`dequantize_row_q5_K`).
//!
//! # Encoding
//!
//! ggml's own choice ([`ggml_q5_k`], a port of `quantize_row_q5_K_ref`) and
//! its least-squares polish ([`k_affine::polish`]), keeping the better by actual
//! squared error: never worse than ggml's.

use half::f16;

use super::k_affine::{self, Affine, Shape};
use super::k_common::{self, Block, QK_K, get_scale_min_k4, pack_scale_min_k4, read_f16};
use super::k_lanes::{L, ROWS, Transposed, transpose};
use super::q4_k::{ggml_weights, pack_nibbles};
use crate::QuantError;
use crate::input::Input;

/// `block_q5_K` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockQ5K {
    /// Scale of the sub-scales.
    pub d: f16,
    /// Scale of the sub-mins.
    pub dmin: f16,
    /// Packed 6-bit sub-scales and sub-mins.
    pub scales: [u8; 12],
    /// High bits of the codes.
    pub qh: [u8; 32],
    /// Low nibbles of the codes.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockQ5K>() == 176);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 176;

/// Q5_K's affine shape.
pub(crate) const SHAPE: Shape = Shape { sub: 32, qmax: 31, scmax: 63 };

#[inline(always)]
fn write(x: &Block, p: &Affine, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_affine::block_codes(&SHAPE, x, p, &mut l);
    let sc: [u8; 8] = p.sc[..8].try_into().expect("8 sub-blocks");
    let mc: [u8; 8] = p.mc[..8].try_into().expect("8 sub-blocks");
    out[0..2].copy_from_slice(&p.d.to_le_bytes());
    out[2..4].copy_from_slice(&p.dmin.to_le_bytes());
    out[4..16].copy_from_slice(&pack_scale_min_k4(&sc, &mc));
    let qh = &mut out[16..48];
    qh.fill(0);
    for (i, &q) in l.iter().enumerate() {
        qh[i % 32] |= (q >> 4) << (i / 32);
    }
    pack_nibbles(&l, &mut out[48..176]);
}

/// Scalar port of ggml's `quantize_row_q5_K_ref` for one block: the oracle of
/// [`ggml_q5_k`].
#[cfg(test)]
pub(crate) fn ggml_q5_k_scalar(x: &Block) -> Affine {
    let mut scales = [0f32; 8];
    let mut mins = [0f32; 8];
    let mut l = [0u8; 32];
    let mut w = [0f32; 32];
    for (j, xs) in x.chunks_exact(32).enumerate() {
        let mut sum_x2 = 0f32;
        for &v in xs {
            sum_x2 += v * v;
        }
        let av_x = libm::sqrtf(sum_x2 / 32.0);
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = av_x + v.abs();
        }
        (scales[j], mins[j]) = super::k_common::make_qkx2_quants(31, xs, &w, &mut l, -0.5, 0.1, 15, false);
    }
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// ggml's choice for one block (`quantize_row_q5_K_ref`), eight sub-blocks at a
/// time; equal to the scalar port (tested).
#[inline(always)]
pub(crate) fn ggml_q5_k(xt: &Transposed) -> Affine {
    let mut w = [[0f32; L]; ROWS];
    ggml_weights(&xt[0], &mut w);
    let (scales, mins) = k_affine::qkx2_lanes(&xt[0], &w, 31, -0.5, 0.1, 15, false);
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// Our parameters for one block and their squared error: ggml's choice or its
/// polish, whichever is better.
#[inline(always)]
pub(crate) fn search_block(x: &Block) -> (Affine, f32) {
    let mut xt = [[[0f32; L]; ROWS]; 2];
    transpose(x, 32, &mut xt);
    let g = ggml_q5_k(&xt);
    let ge = k_affine::block_error(&SHAPE, &xt, &g);
    let c = k_affine::polish(&SHAPE, &xt, &g, 2);
    if c.1 < ge { c } else { (g, ge) }
}

#[inline(always)]
fn encode_block(x: &Block, out: &mut [u8]) {
    write(x, &search_block(x).0, out);
}

k_common::dispatch_encoder!(encode_block);

/// Encodes whole blocks with ggml's own choice (the scalar port).
#[cfg(test)]
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| write(x, &ggml_q5_k_scalar(x), o))
}

/// Decodes one block (ggml's `dequantize_row_q5_K`).
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let min = read_f16(b, 2);
    let scales = &b[4..16];
    let qh = &b[16..48];
    let qs = &b[48..176];
    for c in 0..4 {
        let (sc1, m1) = get_scale_min_k4(2 * c, scales);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let q = &qs[32 * c..32 * c + 32];
        for l in 0..32 {
            let h1 = ((qh[l] >> (2 * c)) & 1) << 4;
            let h2 = ((qh[l] >> (2 * c + 1)) & 1) << 4;
            y[64 * c + l] = d1 * f32::from((q[l] & 0xF) | h1) - m1;
            y[64 * c + 32 + l] = d2 * f32::from((q[l] >> 4) | h2) - m2;
        }
    }
}

/// Decodes whole `Q5_K` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
