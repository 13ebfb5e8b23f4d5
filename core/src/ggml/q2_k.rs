//! ggml's `Q2_K`: 256 weights in 84 bytes (2.625 bits per weight).
//!
//! # Layout (`block_q2_K`, little-endian)
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 16 | `scales` | byte `j`: sub-scale `sc_j` in bits 0-3, sub-min `m_j` in bits 4-7 (sub-blocks of 16) |
//! | 16 | 64 | `qs` | 2-bit codes: element `128h + 32s + l` sits in bits `2s..2s+2` of byte `32h + l` |
//! | 80 | 2 | `d` | f16 scale of the sub-scales |
//! | 82 | 2 | `dmin` | f16 scale of the sub-mins |
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 16` with code `q`:
//! `y = (d * sc_j) * q - (dmin * m_j)` in f32, never fused (`dequantize_row_q2_K`).
//!
//! # Encoding
//!
//! ggml's own choice ([`ggml_q2_k`], a port of `quantize_row_q2_K_ref`, which
//! fits each sub-block for absolute error), our `kquant` search in the same layout
//! (the `int2` layout), and the least-squares polish of the better of the two; the
//! block keeps the candidate with the least squared error: never worse than ggml's.

use half::f16;

use super::k_affine::{self, Affine, Shape};
use super::k_common::{self, Block, QK_K, read_f16};
use super::k_lanes::{L, ROWS, Transposed, map, transpose};
use super::q4_k::from_kquant;
use crate::QuantError;
use crate::codec::BlockCodec;
use crate::input::Input;
use crate::kquant::{TwoLevelCodec, TwoLevelFormat};
use crate::search::SearchConfig;

/// `block_q2_K` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockQ2K {
    /// Sub-scales (low nibble) and sub-mins (high nibble).
    pub scales: [u8; 16],
    /// Packed 2-bit codes.
    pub qs: [u8; 64],
    /// Scale of the sub-scales.
    pub d: f16,
    /// Scale of the sub-mins.
    pub dmin: f16,
}

const _: () = assert!(size_of::<BlockQ2K>() == 84);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 84;

/// Q2_K's affine shape.
pub(crate) const SHAPE: Shape = Shape { sub: 16, qmax: 3, scmax: 15 };

/// Packs 256 2-bit codes as Q2_K's and Q3_K's `qs`.
#[inline(always)]
pub(crate) fn pack_crumbs(l: &[u8; QK_K], qs: &mut [u8]) {
    for h in 0..2 {
        for i in 0..32 {
            let e = 128 * h + i;
            qs[32 * h + i] =
                (l[e] & 3) | ((l[e + 32] & 3) << 2) | ((l[e + 64] & 3) << 4) | ((l[e + 96] & 3) << 6);
        }
    }
}

#[inline(always)]
fn write(x: &Block, p: &Affine, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_affine::block_codes(&SHAPE, x, p, &mut l);
    for (o, (&s, &m)) in out[..16].iter_mut().zip(p.sc.iter().zip(&p.mc)) {
        *o = (s & 0xF) | (m << 4);
    }
    pack_crumbs(&l, &mut out[16..80]);
    out[80..82].copy_from_slice(&p.d.to_le_bytes());
    out[82..84].copy_from_slice(&p.dmin.to_le_bytes());
}

/// Scalar port of ggml's `quantize_row_q2_K_ref` for one block: the oracle of
/// [`ggml_q2_k`].
#[cfg(test)]
pub(crate) fn ggml_q2_k_scalar(x: &Block) -> Affine {
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    let mut l = [0u8; 16];
    let mut w = [0f32; 16];
    for (j, xs) in x.chunks_exact(16).enumerate() {
        for (wi, &v) in w.iter_mut().zip(xs) {
            *wi = v.abs();
        }
        (scales[j], mins[j]) = super::k_common::make_qkx2_quants(3, xs, &w, &mut l, -0.5, 0.1, 15, true);
    }
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// ggml's choice for one block (`quantize_row_q2_K_ref`), eight sub-blocks at a
/// time; equal to the scalar port (tested).
#[inline(always)]
pub(crate) fn ggml_q2_k(xt: &Transposed) -> Affine {
    let mut scales = [0f32; 16];
    let mut mins = [0f32; 16];
    for g in 0..2 {
        let rows = &xt[g][..16];
        let mut w = [[0f32; L]; 16];
        for (wr, r) in w.iter_mut().zip(rows) {
            *wr = map(*r, f32::abs);
        }
        let (s, m) = k_affine::qkx2_lanes(rows, &w, 3, -0.5, 0.1, 15, true);
        scales[g * L..(g + 1) * L].copy_from_slice(&s);
        mins[g * L..(g + 1) * L].copy_from_slice(&m);
    }
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// The `int2` layout's search on one block, as Q2_K parameters.
#[inline(always)]
fn kquant_candidate(x: &Block) -> Affine {
    let fmt = TwoLevelFormat::new(2, 256, 16, 4, 4).expect("valid two-level format");
    let codec = TwoLevelCodec::new(fmt, SearchConfig::BALANCED);
    let mut codes = [0u8; 64];
    let mut params = [0u8; 20];
    codec.encode(Input::F32(x), 0, &mut codes, &mut params).expect("finite block of the right length");
    from_kquant(&params, 16, 4)
}

/// Our parameters for one block: the best of ggml's choice, the `kquant` search and
/// the polish of the better of the two, by actual squared error; with that error.
#[inline(always)]
pub(crate) fn search_block(x: &Block) -> (Affine, f32) {
    let mut xt = [[[0f32; L]; ROWS]; 2];
    transpose(x, 16, &mut xt);
    let g = ggml_q2_k(&xt);
    let k = kquant_candidate(x);
    let (ge, ke) = (k_affine::block_error(&SHAPE, &xt, &g), k_affine::block_error(&SHAPE, &xt, &k));
    // Polish the better start only.
    let (start, mut best) = if ke < ge { (k, (k, ke)) } else { (g, (g, ge)) };
    let c = k_affine::polish(&SHAPE, &xt, &start, 1);
    if c.1 < best.1 {
        best = c;
    }
    best
}

#[inline(always)]
fn encode_block(x: &Block, out: &mut [u8]) {
    write(x, &search_block(x).0, out);
}

k_common::dispatch_encoder!(encode_block);

/// The fast effort ([`super::k_fast`]): the `kquant` search alone.
pub(crate) const FAST: super::k_fast::FastSpec =
    super::k_fast::FastSpec { bits: 2, sub: 16, sub_bits: 4, type_size: TYPE_SIZE, write };

/// Encodes whole blocks with ggml's own choice (the scalar port).
#[cfg(test)]
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| write(x, &ggml_q2_k_scalar(x), o))
}

/// Decodes one block (ggml's `dequantize_row_q2_K`).
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 80);
    let min = read_f16(b, 82);
    let qs = &b[16..80];
    for (j, &sc) in b[..16].iter().enumerate() {
        let (dl, ml) = (d * f32::from(sc & 0xF), min * f32::from(sc >> 4));
        for i in 0..16 {
            let e = 16 * j + i;
            let (h, s, l) = (e / 128, (e % 128) / 32, e % 32);
            let q = (qs[32 * h + l] >> (2 * s)) & 3;
            y[e] = dl * f32::from(q) - ml;
        }
    }
}

/// Decodes whole `Q2_K` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
