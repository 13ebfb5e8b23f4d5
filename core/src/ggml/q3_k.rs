//! ggml's `Q3_K`: 256 weights in 110 bytes (3.4375 bits per weight).
//!
//! # Layout (`block_q3_K`, little-endian)
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 32 | `hmask` | bit 2 of the codes: bit `i / 32` of byte `i % 32` belongs to element `i` |
//! | 32 | 64 | `qs` | low 2 bits of the codes, packed as Q2_K's `qs` |
//! | 96 | 12 | `scales` | sixteen 6-bit sub-scales `s_j` (sub-blocks of 16), stored `+32`: the low nibble of `s_j` is the low (`j < 8`) or high (`j >= 8`) nibble of byte `j % 8`; its top two bits are bits `2(j / 4)..` of byte `8 + j % 4` |
//! | 108 | 2 | `d` | f16 super-scale |
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 16` with low bits `l` and high bit `h`:
//! `y = (d * (s_j - 32)) * (l - (h ? 0 : 4))` in f32 (`dequantize_row_q3_K`).
//!
//! # Encoding
//!
//! ggml's own choice ([`quantize_q3_k_ref`], a port of `quantize_row_q3_K_ref`) and
//! its least-squares polish ([`k_sym::polish`]), keeping the better by actual
//! squared error: never worse than ggml's.

use half::f16;

use super::k_common::{self, Block, QK_K, make_q3_quants, nearest_int, read_f16};
use super::k_sym::{self, Grid, MAX_SUBS, Shape, Sym};
use super::q2_k::pack_crumbs;
use crate::QuantError;
use crate::input::Input;

/// `block_q3_K` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockQ3K {
    /// High bits of the codes.
    pub hmask: [u8; 32],
    /// Low 2 bits of the codes.
    pub qs: [u8; 64],
    /// Packed 6-bit sub-scales.
    pub scales: [u8; 12],
    /// Super-scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ3K>() == 110);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 110;

/// Q3_K's symmetric shape.
pub(crate) const SHAPE: Shape = Shape { sub: 16, grid: Grid::Uniform { nmax: 4 }, sc_range: (-32, 31) };

/// Sub-scale `j` (unsigned, `s_j` of the docs) from the 12-byte field.
fn get_scale(scales: &[u8], j: usize) -> u8 {
    let lo = if j < 8 { scales[j] & 0xF } else { scales[j - 8] >> 4 };
    lo | (((scales[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)
}

#[inline(always)]
fn write(x: &Block, p: &Sym, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_sym::block_codes(&SHAPE, x, p, &mut l);
    let (hmask, rest) = out.split_at_mut(32);
    hmask.fill(0);
    for (i, q) in l.iter_mut().enumerate() {
        if *q > 3 {
            hmask[i % 32] |= 1 << (i / 32);
            *q -= 4;
        }
    }
    let (qs, rest) = rest.split_at_mut(64);
    pack_crumbs(&l, qs);
    let scales = &mut rest[..12];
    scales.fill(0);
    for j in 0..16 {
        let s = (i32::from(p.sc[j]) + 32) as u8;
        if j < 8 {
            scales[j] |= s & 0xF;
        } else {
            scales[j - 8] |= (s & 0xF) << 4;
        }
        scales[8 + j % 4] |= (s >> 4) << (2 * (j / 4));
    }
    rest[12..14].copy_from_slice(&p.d.to_le_bytes());
}

/// ggml's `quantize_row_q3_K_ref` for one block.
#[inline(always)]
pub(crate) fn quantize_q3_k_ref(x: &Block) -> Sym {
    let mut scales = [0f32; 16];
    let (mut max_scale, mut amax) = (0f32, 0f32);
    for (j, xs) in x.chunks_exact(16).enumerate() {
        let s = make_q3_quants(4, xs);
        scales[j] = s;
        if s.abs() > amax {
            amax = s.abs();
            max_scale = s;
        }
    }
    // ggml zeroes the scale bytes: every stored sub-scale is then 0 - 32.
    let mut p = Sym { d: f16::ZERO, sc: [-32; MAX_SUBS] };
    if max_scale != 0.0 {
        let iscale = -32.0 / max_scale;
        for (o, &s) in p.sc.iter_mut().zip(&scales) {
            // ggml keeps the rounded value in an int8 before clamping.
            *o = i32::from(nearest_int(iscale * s) as i8).clamp(-32, 31) as i8;
        }
        p.d = f16::from_f32(1.0 / iscale);
    }
    p
}

/// Our encoder's parameters for one block and their squared error.
#[inline(always)]
pub(crate) fn search_block(x: &Block) -> (Sym, f32) {
    let g = quantize_q3_k_ref(x);
    k_sym::polish(&SHAPE, x, &g, 3)
}

#[inline(always)]
fn encode_block(x: &Block, out: &mut [u8]) {
    write(x, &search_block(x).0, out);
}

k_common::dispatch_encoder!(encode_block);

#[cfg(test)]
/// Encodes whole blocks with ggml's own choice ([`quantize_q3_k_ref`]).
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| write(x, &quantize_q3_k_ref(x), o))
}

/// Decodes one block (ggml's `dequantize_row_q3_K`).
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 108);
    let (hmask, qs, scales) = (&b[0..32], &b[32..96], &b[96..108]);
    for j in 0..16 {
        let dl = d * f32::from(get_scale(scales, j) as i8 - 32);
        for i in 0..16 {
            let e = 16 * j + i;
            let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
            let low = ((qs[32 * h + l] >> (2 * s)) & 3) as i8;
            let high = if hmask[e % 32] & (1 << (e / 32)) != 0 { 0 } else { 4 };
            y[e] = dl * f32::from(low - high);
        }
    }
}

/// Decodes whole `Q3_K` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
