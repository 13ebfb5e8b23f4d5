//! ggml's `Q4_K`: 256 weights in 144 bytes (4.5 bits per weight).
//!
//! # Layout (`block_q4_K`, little-endian)
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 2 | `d` | f16 scale of the sub-scales |
//! | 2 | 2 | `dmin` | f16 scale of the sub-mins |
//! | 4 | 12 | `scales` | eight 6-bit sub-scales `sc_j` and sub-mins `m_j` (below) |
//! | 16 | 128 | `qs` | 4-bit codes: byte `32c + l`, low nibble element `64c + l`, high `64c + 32 + l` |
//!
//! `scales` ([`get_scale_min_k4`]): bytes 0-3 hold `sc_0..3` in bits 0-5, bytes 4-7
//! hold `m_0..3`; bytes 8-11 hold the low nibbles of `sc_4..7` (bits 0-3) and
//! `m_4..7` (bits 4-7), whose top two bits sit in bits 6-7 of bytes 0-3 (`sc`) and
//! 4-7 (`m`).
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 32` with code `q`:
//! `y = (d * sc_j) * q - (dmin * m_j)`, in f32, the products rounded separately and
//! never fused (ggml's `dequantize_row_q4_K`).
//!
//! # Encoding
//!
//! Per block: ggml's own choice ([`ggml_q4_k`], a port of `quantize_row_q4_K_ref`,
//! eight sub-blocks at a time), our `kquant` search in the same layout (the `int4`
//! preset's search), and the least-squares polish of the better of the two
//! ([`k_affine::polish`]); the block keeps the candidate with the least squared
//! error of its decoded bytes, so it is never worse than ggml's. [`encode_baseline`] is the reference build of
//! the encoder, [`encode`] picks AVX2 at run time (same bytes, tested).

use half::f16;

use super::k_affine::{self, Affine, MAX_SUBS, Rule, Shape};
use super::k_common::{self, Block, QK_K, get_scale_min_k4, pack_scale_min_k4, read_f16};
use super::k_lanes::{L, ROWS, Transposed, V, transpose};
use crate::QuantError;
use crate::codec::BlockCodec;
use crate::input::Input;
use crate::kquant::{TwoLevelCodec, TwoLevelFormat};
use crate::search::SearchConfig;

/// `block_q4_K` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockQ4K {
    /// Scale of the sub-scales.
    pub d: f16,
    /// Scale of the sub-mins.
    pub dmin: f16,
    /// Packed 6-bit sub-scales and sub-mins.
    pub scales: [u8; 12],
    /// Packed 4-bit codes.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockQ4K>() == 144);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 144;

/// Q4_K's affine shape.
pub(crate) const SHAPE: Shape = Shape { sub: 32, qmax: 15, scmax: 63 };

/// Writes the block of parameters `p` for weights `x`.
#[inline(always)]
fn write(x: &Block, p: &Affine, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_affine::block_codes(&SHAPE, x, p, &mut l);
    let sc: [u8; 8] = p.sc[..8].try_into().expect("8 sub-blocks");
    let mc: [u8; 8] = p.mc[..8].try_into().expect("8 sub-blocks");
    out[0..2].copy_from_slice(&p.d.to_le_bytes());
    out[2..4].copy_from_slice(&p.dmin.to_le_bytes());
    out[4..16].copy_from_slice(&pack_scale_min_k4(&sc, &mc));
    pack_nibbles(&l, &mut out[16..144]);
}

/// Packs 256 4-bit codes as Q4_K/Q5_K's `qs`.
#[inline(always)]
pub(crate) fn pack_nibbles(l: &[u8; QK_K], qs: &mut [u8]) {
    for c in 0..4 {
        for i in 0..32 {
            qs[32 * c + i] = (l[64 * c + i] & 0xF) | ((l[64 * c + 32 + i] & 0xF) << 4);
        }
    }
}

/// Scalar port of ggml's `quantize_row_q4_K_ref` for one block (no importance
/// matrix), as parameters: the oracle of [`ggml_q4_k`].
#[cfg(test)]
pub(crate) fn ggml_q4_k_scalar(x: &Block) -> Affine {
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
        (scales[j], mins[j]) = super::k_common::make_qkx2_quants(15, xs, &w, &mut l, -1.0, 0.1, 20, false);
    }
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// Weights `sqrt(mean(x²)) + |x|` of ggml's Q4_K/Q5_K fits, per lane.
#[inline(always)]
pub(crate) fn ggml_weights(rows: &[V; ROWS], w: &mut [V; ROWS]) {
    let mut sum_x2 = [0f32; L];
    for r in rows {
        for l in 0..L {
            sum_x2[l] += r[l] * r[l];
        }
    }
    let mut av_x = [0f32; L];
    for l in 0..L {
        av_x[l] = libm::sqrtf(sum_x2[l] / 32.0);
    }
    for (wr, r) in w.iter_mut().zip(rows) {
        for l in 0..L {
            wr[l] = av_x[l] + r[l].abs();
        }
    }
}

/// ggml's choice for one block (`quantize_row_q4_K_ref`), eight sub-blocks at a
/// time; equal to the scalar port (tested).
#[inline(always)]
pub(crate) fn ggml_q4_k(xt: &Transposed) -> Affine {
    let mut w = [[0f32; L]; ROWS];
    ggml_weights(&xt[0], &mut w);
    let (scales, mins) = k_affine::qkx2_lanes(&xt[0], &w, 15, -1.0, 0.1, 20, false);
    k_affine::ggml_super(&SHAPE, &scales, &mins)
}

/// Parameters from a `kquant` two-level parameter record (`d`, `dmin`, then the
/// sub-scale and sub-min bit streams of `k` bits each, `n` values).
#[inline(always)]
pub(crate) fn from_kquant(params: &[u8], n: usize, k: u32) -> Affine {
    let mut p = Affine {
        d: f16::from_le_bytes([params[0], params[1]]),
        dmin: f16::from_le_bytes([params[2], params[3]]),
        sc: [0; MAX_SUBS],
        mc: [0; MAX_SUBS],
        rule: Rule::Mul,
    };
    let read = |stream: &[u8], j: usize| -> u8 {
        let bit = j * k as usize;
        let lo = u16::from(stream[bit / 8]);
        let hi = if bit % 8 + k as usize > 8 { u16::from(stream[bit / 8 + 1]) } else { 0 };
        (((lo | hi << 8) >> (bit % 8)) & ((1 << k) - 1)) as u8
    };
    let len = (n * k as usize).div_ceil(8);
    let (s, m) = (&params[4..4 + len], &params[4 + len..4 + 2 * len]);
    for j in 0..n {
        p.sc[j] = read(s, j);
        p.mc[j] = read(m, j);
    }
    p
}

/// The `int4` preset's search on one block, as Q4_K parameters.
#[inline(always)]
fn kquant_candidate(x: &Block) -> Affine {
    let fmt = TwoLevelFormat::new(4, 256, 32, 6, 6).expect("valid two-level format");
    let codec = TwoLevelCodec::new(fmt, SearchConfig::BALANCED);
    let mut codes = [0u8; 128];
    let mut params = [0u8; 16];
    codec.encode(Input::F32(x), 0, &mut codes, &mut params).expect("finite block of the right length");
    from_kquant(&params, 8, 6)
}

/// Our parameters for one block: the best of ggml's choice, the `kquant` search and
/// the polish of the better of the two, by actual squared error; with that error.
#[inline(always)]
pub(crate) fn search_block(x: &Block) -> (Affine, f32) {
    let mut xt = [[[0f32; L]; ROWS]; 2];
    transpose(x, 32, &mut xt);
    let g = ggml_q4_k(&xt);
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
    super::k_fast::FastSpec { bits: 4, sub: 32, sub_bits: 6, type_size: TYPE_SIZE, write };

/// Encodes whole blocks with ggml's own choice (the scalar port).
#[cfg(test)]
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| write(x, &ggml_q4_k_scalar(x), o))
}

/// Decodes one block (ggml's `dequantize_row_q4_K`).
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let min = read_f16(b, 2);
    let scales = &b[4..16];
    let qs = &b[16..144];
    for c in 0..4 {
        let (sc1, m1) = get_scale_min_k4(2 * c, scales);
        let (sc2, m2) = get_scale_min_k4(2 * c + 1, scales);
        let (d1, m1) = (d * f32::from(sc1), min * f32::from(m1));
        let (d2, m2) = (d * f32::from(sc2), min * f32::from(m2));
        let q = &qs[32 * c..32 * c + 32];
        for l in 0..32 {
            y[64 * c + l] = d1 * f32::from(q[l] & 0xF) - m1;
            y[64 * c + 32 + l] = d2 * f32::from(q[l] >> 4) - m2;
        }
    }
}

/// Decodes whole `Q4_K` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
