//! ggml's `IQ4_XS`: 256 weights in 136 bytes (4.25 bits per weight), codes indexing
//! IQ4_NL's non-uniform 16-value grid `kvalues_iq4nl`.
//!
//! # Layout (`block_iq4_xs`, little-endian)
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 2 | `d` | f16 super-scale |
//! | 2 | 2 | `scales_h` | u16: bits `2j..2j+2` are the top two bits of sub-scale `s_j` (sub-blocks of 32) |
//! | 4 | 4 | `scales_l` | the low nibbles of `s_j`: byte `j / 2`, low nibble for even `j` |
//! | 8 | 128 | `qs` | 4-bit grid indices: byte `16j + l` holds element `32j + l` (low nibble) and `32j + 16 + l` (high nibble) |
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 32` with index `q`:
//! `y = (d * (s_j - 32)) * kvalues_iq4nl[q]` in f32 (`dequantize_row_iq4_xs`).
//!
//! # Encoding
//!
//! ggml's own block ([`ggml_iq4_xs`], a port of `quantize_row_iq4_nl_impl`
//! as `quantize_iq4_xs` calls it, codes included: ggml picks them with the unrounded
//! super-scale) and the least-squares polish of its parameters ([`k_sym::polish`]),
//! keeping the better by the actual squared error of the decoded bytes: never worse
//! than ggml's.

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use half::f16;

use super::k_common::{
    self, Block, GROUP_MAX_EPS, KVALUES_IQ4NL, QK_K, best_index_int8, nearest_int, read_f16,
};
use super::k_lanes::{L, ROWS, V, map, transpose};
use super::k_sym::{self, Grid, MAX_SUBS, Shape, Sym};
use crate::QuantError;
use crate::input::Input;

/// `block_iq4_xs` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockIq4Xs {
    /// Super-scale.
    pub d: f16,
    /// Top two bits of the eight sub-scales.
    pub scales_h: u16,
    /// Low nibbles of the sub-scales.
    pub scales_l: [u8; 4],
    /// 4-bit grid indices.
    pub qs: [u8; 128],
}

const _: () = assert!(size_of::<BlockIq4Xs>() == 136);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 136;

/// IQ4_XS's symmetric shape.
pub(crate) const SHAPE: Shape = Shape { sub: 32, grid: Grid::Iq4, sc_range: (-32, 31) };

/// Writes parameters `p` with grid indices `l`.
#[inline(always)]
fn write_codes(p: &Sym, l: &[u8; QK_K], out: &mut [u8]) {
    out[0..2].copy_from_slice(&p.d.to_le_bytes());
    let mut h = 0u16;
    let mut lo = [0u8; 4];
    for j in 0..8 {
        let s = (i32::from(p.sc[j]) + 32) as u8;
        lo[j / 2] |= (s & 0xF) << (4 * (j % 2));
        h |= u16::from(s >> 4) << (2 * j);
    }
    out[2..4].copy_from_slice(&h.to_le_bytes());
    out[4..8].copy_from_slice(&lo);
    for j in 0..8 {
        for i in 0..16 {
            out[8 + 16 * j + i] = (l[32 * j + i] & 0xF) | (l[32 * j + 16 + i] << 4);
        }
    }
}

#[inline(always)]
fn write(x: &Block, p: &Sym, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_sym::block_codes(&SHAPE, x, p, &mut l);
    write_codes(p, &l, out);
}

/// ggml's super-scale, sub-scales and codes from the sub-block scales (the second
/// half of `quantize_row_iq4_nl_impl`; the codes use the unrounded super-scale).
#[inline(always)]
fn ggml_super(x: &Block, scales: &[f32; 8]) -> (Sym, [u8; QK_K]) {
    let (mut max_scale, mut amax_scale) = (0f32, 0f32);
    for &d in scales {
        if d.abs() > amax_scale {
            amax_scale = d.abs();
            max_scale = d;
        }
    }
    let d = -max_scale / 32.0;
    let mut p = Sym { d: f16::from_f32(d), sc: [0; MAX_SUBS] };
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut l = [0u8; QK_K];
    for (ib, xb) in x.chunks_exact(32).enumerate() {
        let ls = nearest_int(id * scales[ib]).clamp(-32, 31);
        let dl = d * ls as f32;
        let idl = if dl != 0.0 { 1.0 / dl } else { 0.0 };
        for (o, &v) in l[32 * ib..32 * ib + 32].iter_mut().zip(xb) {
            *o = best_index_int8(&KVALUES_IQ4NL, idl * v) as u8;
        }
        p.sc[ib] = ls as i8;
    }
    (p, l)
}

/// Scalar port of ggml's IQ4_XS quantization of one block
/// (`quantize_row_iq4_nl_impl(256, 32, ..., ntry = 7)` without importance matrix):
/// its parameters and codes. The oracle of [`ggml_iq4_xs`].
#[cfg(test)]
pub(crate) fn ggml_iq4_xs_scalar(x: &Block) -> (Sym, [u8; QK_K]) {
    let values = &KVALUES_IQ4NL;
    let v0 = f32::from(values[0]);
    let mut scales = [0f32; 8];
    for (ib, xb) in x.chunks_exact(32).enumerate() {
        let (mut amax, mut max) = (0f32, 0f32);
        for &v in xb {
            if v.abs() > amax {
                amax = v.abs();
                max = v;
            }
        }
        if amax < GROUP_MAX_EPS {
            scales[ib] = 0.0;
            continue;
        }
        let mut d = -max / v0;
        let mut id = 1.0 / d;
        let (mut sumqx, mut sumq2) = (0f32, 0f32);
        for &v in xb {
            let q = f32::from(values[best_index_int8(values, id * v)]);
            let w = v * v;
            sumqx += w * q * v;
            sumq2 += w * q * q;
        }
        d = if sumq2 > 0.0 { sumqx / sumq2 } else { 0.0 };
        let mut best = d * sumqx;
        for itry in -7..=7 {
            id = (itry as f32 + v0) / max;
            sumqx = 0.0;
            sumq2 = 0.0;
            for &v in xb {
                let q = f32::from(values[best_index_int8(values, id * v)]);
                let w = v * v;
                sumqx += w * q * v;
                sumq2 += w * q * q;
            }
            if sumq2 > 0.0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2;
                best = d * sumqx;
            }
        }
        scales[ib] = d;
    }
    ggml_super(x, &scales)
}

/// ggml's IQ4_XS block (parameters and codes), eight sub-blocks at a time; equal to
/// the scalar port (tested).
#[inline(always)]
pub(crate) fn ggml_iq4_xs(x: &Block) -> (Sym, [u8; QK_K]) {
    let mut xt = [[[0f32; L]; ROWS]; 2];
    transpose(x, 32, &mut xt);
    let rows = &xt[0];
    let v0 = f32::from(KVALUES_IQ4NL[0]);
    let (mut amax, mut max) = ([0f32; L], [0f32; L]);
    for r in rows {
        for l in 0..L {
            let up = r[l].abs() > amax[l];
            amax[l] = if up { r[l].abs() } else { amax[l] };
            max[l] = if up { r[l] } else { max[l] };
        }
    }
    let sums = |id: V| {
        let (mut sumqx, mut sumq2) = ([0f32; L], [0f32; L]);
        for r in rows {
            for l in 0..L {
                let q = Grid::Iq4.value(r[l], 0.0, id[l]);
                let w = r[l] * r[l];
                sumqx[l] += w * q * r[l];
                sumq2[l] += w * q * q;
            }
        }
        (sumqx, sumq2)
    };
    let d0 = map(max, |m| -m / v0);
    let (sumqx, sumq2) = sums(map(d0, |d| 1.0 / d));
    let mut d = [0f32; L];
    let mut best = [0f32; L];
    for l in 0..L {
        d[l] = if sumq2[l] > 0.0 { sumqx[l] / sumq2[l] } else { 0.0 };
        best[l] = d[l] * sumqx[l];
    }
    for itry in -7..=7 {
        let (sumqx, sumq2) = sums(map(max, |m| (itry as f32 + v0) / m));
        for l in 0..L {
            if sumq2[l] > 0.0 && sumqx[l] * sumqx[l] > best[l] * sumq2[l] {
                d[l] = sumqx[l] / sumq2[l];
                best[l] = d[l] * sumqx[l];
            }
        }
    }
    for l in 0..L {
        if amax[l] < GROUP_MAX_EPS {
            d[l] = 0.0;
        }
    }
    ggml_super(x, &d)
}

/// Squared error of the bytes `b` against `x`.
#[inline(always)]
fn bytes_error(x: &Block, b: &[u8]) -> f32 {
    let mut y = [0f32; QK_K];
    decode_block(b, &mut y);
    k_common::sq_err(x, &y)
}

/// Our encoder's block: ggml's, or the polish of its parameters if better.
#[inline(always)]
fn encode_block(x: &Block, out: &mut [u8]) {
    let (g, gl) = ggml_iq4_xs(x);
    write_codes(&g, &gl, out);
    let ge = bytes_error(x, out);
    let (p, pe) = k_sym::polish(&SHAPE, x, &g, 3);
    if pe < ge {
        write(x, &p, out);
    }
}

k_common::dispatch_encoder!(encode_block);

#[cfg(test)]
/// Encodes whole blocks with ggml's own choice (the scalar port).
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| {
        let (g, gl) = ggml_iq4_xs_scalar(x);
        write_codes(&g, &gl, o);
    })
}

/// Decodes one block (ggml's `dequantize_row_iq4_xs`).
#[inline(always)]
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 0);
    let h = u16::from_le_bytes([b[2], b[3]]);
    for j in 0..8 {
        let lo = (b[4 + j / 2] >> (4 * (j % 2))) & 0xF;
        let hi = ((h >> (2 * j)) & 3) as u8;
        let dl = d * f32::from((lo | (hi << 4)) as i8 - 32);
        for i in 0..16 {
            let q = b[8 + 16 * j + i];
            y[32 * j + i] = dl * f32::from(KVALUES_IQ4NL[usize::from(q & 0xF)]);
            y[32 * j + 16 + i] = dl * f32::from(KVALUES_IQ4NL[usize::from(q >> 4)]);
        }
    }
}

/// Decodes whole `IQ4_XS` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
