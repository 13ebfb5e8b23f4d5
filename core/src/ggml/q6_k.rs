//! ggml's `Q6_K`: 256 weights in 210 bytes (6.5625 bits per weight).
//!
//! # Layout (`block_q6_K`, little-endian)
//!
//! Element `i = 128c + 32s + l` (`c` in 0..2, `s` in 0..4, `l` in 0..32) has a
//! 6-bit code `q` split in two:
//!
//! | offset | bytes | field | content |
//! |---|---|---|---|
//! | 0 | 128 | `ql` | low 4 bits: byte `64c + 32(s & 1) + l`, low nibble for `s < 2`, high nibble for `s >= 2` |
//! | 128 | 64 | `qh` | high 2 bits: bits `2s..2s+2` of byte `32c + l` |
//! | 192 | 16 | `scales` | signed 8-bit sub-scales `sc_j` (sub-blocks of 16) |
//! | 208 | 2 | `d` | f16 super-scale |
//!
//! # Decoding
//!
//! Element `i` of sub-block `j = i / 16`: `y = (d * sc_j) * (q - 32)` in f32
//! (`dequantize_row_q6_K`).
//!
//! # Encoding
//!
//! ggml's own choice ([`ggml_q6_k`], a port of `quantize_row_q6_K_ref`) and
//! its least-squares polish ([`k_sym::polish`]), keeping the better by actual
//! squared error: never worse than ggml's.

// Lane loops index several arrays in lockstep by lane; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use half::f16;

use super::k_common::{self, Block, GROUP_MAX_EPS, QK_K, nearest_int, read_f16};
use super::k_lanes::{L, ROWS, V, map, nearest_clamped, transpose};
use super::k_sym::{self, Grid, MAX_SUBS, Shape, Sym};
use crate::QuantError;
use crate::input::Input;

/// `block_q6_K` as `ggml-common.h` declares it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BlockQ6K {
    /// Low 4 bits of the codes.
    pub ql: [u8; 128],
    /// High 2 bits of the codes.
    pub qh: [u8; 64],
    /// Signed sub-scales.
    pub scales: [i8; 16],
    /// Super-scale.
    pub d: f16,
}

const _: () = assert!(size_of::<BlockQ6K>() == 210);

/// Bytes per block.
pub(crate) const TYPE_SIZE: usize = 210;

/// Q6_K's symmetric shape.
pub(crate) const SHAPE: Shape = Shape { sub: 16, grid: Grid::Uniform { nmax: 32 }, sc_range: (-128, 127) };

#[inline(always)]
fn write(x: &Block, p: &Sym, out: &mut [u8]) {
    let mut l = [0u8; QK_K];
    k_sym::block_codes(&SHAPE, x, p, &mut l);
    let (ql, rest) = out.split_at_mut(128);
    let (qh, rest) = rest.split_at_mut(64);
    for c in 0..2 {
        for i in 0..32 {
            let q = |s: usize| l[128 * c + 32 * s + i];
            ql[64 * c + i] = (q(0) & 0xF) | ((q(2) & 0xF) << 4);
            ql[64 * c + 32 + i] = (q(1) & 0xF) | ((q(3) & 0xF) << 4);
            qh[32 * c + i] = (q(0) >> 4) | ((q(1) >> 4) << 2) | ((q(2) >> 4) << 4) | ((q(3) >> 4) << 6);
        }
    }
    for j in 0..16 {
        rest[j] = p.sc[j] as u8;
    }
    rest[16..18].copy_from_slice(&p.d.to_le_bytes());
}

/// ggml's sub-scales to block parameters (`quantize_row_q6_K_ref` after the fits).
#[inline(always)]
fn ggml_super(scales: &[f32; 16]) -> Sym {
    let (mut max_scale, mut max_abs_scale) = (0f32, 0f32);
    for &s in scales {
        if s.abs() > max_abs_scale {
            max_abs_scale = s.abs();
            max_scale = s;
        }
    }
    let mut p = Sym { d: f16::ZERO, sc: [0; MAX_SUBS] };
    if max_abs_scale < GROUP_MAX_EPS {
        return p;
    }
    let iscale = -128.0 / max_scale;
    p.d = f16::from_f32(1.0 / iscale);
    for j in 0..16 {
        p.sc[j] = nearest_int(iscale * scales[j]).min(127) as i8;
    }
    p
}

/// Scalar port of ggml's `quantize_row_q6_K_ref` for one block: the oracle of
/// [`ggml_q6_k`].
#[cfg(test)]
pub(crate) fn ggml_q6_k_scalar(x: &Block) -> Sym {
    let mut scales = [0f32; 16];
    for (j, xs) in x.chunks_exact(16).enumerate() {
        scales[j] = super::k_common::make_qx_quants_rmse1(32, xs);
    }
    ggml_super(&scales)
}

/// Lane port of `make_qx_quants(16, nmax, x, L, 1, NULL)`: eight sub-blocks' scales.
#[inline(always)]
fn qx_rmse1_lanes(rows: &[V], nmax: i32) -> V {
    let (mut max, mut amax) = ([0f32; L], [0f32; L]);
    for r in rows {
        for l in 0..L {
            let ax = r[l].abs();
            let up = ax > amax[l];
            amax[l] = if up { ax } else { amax[l] };
            max[l] = if up { r[l] } else { max[l] };
        }
    }
    let nmaxf = nmax as f32;
    let sums = |iscale: V| {
        let (mut sumlx, mut suml2) = ([0f32; L], [0f32; L]);
        for r in rows {
            for l in 0..L {
                let q = nearest_clamped(iscale[l] * r[l], -nmax, nmax - 1);
                let w = r[l] * r[l];
                sumlx[l] += w * r[l] * q;
                suml2[l] += w * q * q;
            }
        }
        (sumlx, suml2)
    };
    let (sumlx, suml2) = sums(map(max, |m| -nmaxf / m));
    let mut scale = [0f32; L];
    let mut best = [0f32; L];
    for l in 0..L {
        scale[l] = if suml2[l] != 0.0 { sumlx[l] / suml2[l] } else { 0.0 };
        best[l] = scale[l] * sumlx[l];
    }
    for is in -9..=9 {
        if is == 0 {
            continue;
        }
        let (sumlx, suml2) = sums(map(max, |m| -(nmaxf + 0.1 * is as f32) / m));
        for l in 0..L {
            if suml2[l] > 0.0 && sumlx[l] * sumlx[l] > best[l] * suml2[l] {
                scale[l] = sumlx[l] / suml2[l];
                best[l] = scale[l] * sumlx[l];
            }
        }
    }
    for l in 0..L {
        if amax[l] < GROUP_MAX_EPS {
            scale[l] = 0.0;
        }
    }
    scale
}

/// ggml's choice for one block (`quantize_row_q6_K_ref`), eight sub-blocks at a
/// time; equal to the scalar port (tested).
#[inline(always)]
pub(crate) fn ggml_q6_k(x: &Block) -> Sym {
    let mut xt = [[[0f32; L]; ROWS]; 2];
    transpose(x, 16, &mut xt);
    let mut scales = [0f32; 16];
    for g in 0..2 {
        scales[g * L..(g + 1) * L].copy_from_slice(&qx_rmse1_lanes(&xt[g][..16], 32));
    }
    ggml_super(&scales)
}

/// Our encoder's parameters for one block and their squared error.
#[inline(always)]
pub(crate) fn search_block(x: &Block) -> (Sym, f32) {
    let g = ggml_q6_k(x);
    k_sym::polish(&SHAPE, x, &g, 2)
}

#[inline(always)]
fn encode_block(x: &Block, out: &mut [u8]) {
    write(x, &search_block(x).0, out);
}

k_common::dispatch_encoder!(encode_block);

#[cfg(test)]
/// Encodes whole blocks with ggml's own choice ([`quantize_q6_k_ref`]).
pub(crate) fn encode_ggml(input: Input<'_>, first_element: u64, out: &mut [u8]) -> Result<(), QuantError> {
    k_common::encode_blocks(input, first_element, out, TYPE_SIZE, |x, o| write(x, &ggml_q6_k_scalar(x), o))
}

/// Decodes one block (ggml's `dequantize_row_q6_K`).
fn decode_block(b: &[u8], y: &mut [f32]) {
    let d = read_f16(b, 208);
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    for c in 0..2 {
        for s in 0..4 {
            for i in 0..32 {
                let e = 128 * c + 32 * s + i;
                let lo = (ql[64 * c + 32 * (s & 1) + i] >> (4 * (s / 2))) & 0xF;
                let hi = (qh[32 * c + i] >> (2 * s)) & 3;
                let q = i32::from(lo | (hi << 4)) - 32;
                y[e] = d * f32::from(sc[e / 16] as i8) * q as f32;
            }
        }
    }
}

/// Decodes whole `Q6_K` blocks into `out`.
pub(crate) fn decode(blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    k_common::decode_blocks(blocks, out, TYPE_SIZE, decode_block)
}
