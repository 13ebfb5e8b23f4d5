//! Our stored blocks rewritten in ggml's byte layout, without re-quantizing, for the
//! layouts whose decode rule is ggml's own (`export --format gguf` of a Parquet file).
//!
//! | our layout id | ggml type | why it is the same |
//! |---|---|---|
//! | `g4s32` | Q4_0 | `(c - 8) * d`, f16 `d`, 32 codes |
//! | `g4a32` | Q4_1 | `c * d + m`, f16 `d` and `m` |
//! | `g8s32` | Q8_0 | `(c - 128) * d`; ggml stores `c - 128` as an `i8` |
//! | `k4b256s32c6m6o0` (preset `int4`) | Q4_K | `q * (d * sc) - (dmin * m)`, 6-bit sub-scales and mins |
//! | `k2b256s16c4m4o0` (preset `int2`) | Q2_K | the same rule with 4-bit sub-scales and mins |
//!
//! Only the packing differs: ggml splits each block's codes into halves (Q4_0, Q4_1,
//! Q4_K: low nibbles hold the first half, high nibbles the second) or quarters (Q2_K),
//! while we pack consecutive codes; Q4_K packs its sub-scales into 12 bytes and Q2_K
//! puts a sub-scale and a sub-min in one byte. Each function here moves bits only,
//! so ggml's decoder gives exactly our decoder's floats (tested against both).

use super::GgmlType;
use super::k_common::pack_scale_min_k4;
use crate::QuantError;

/// The ggml type holding blocks of our layout `id` bit for bit, if there is one.
pub fn ggml_type_for_layout(id: &str) -> Option<GgmlType> {
    Some(match id {
        "g4s32" => GgmlType::Q4_0,
        "g4a32" => GgmlType::Q4_1,
        "g8s32" => GgmlType::Q8_0,
        "k4b256s32c6m6o0" => GgmlType::Q4_K,
        "k2b256s16c4m4o0" => GgmlType::Q2_K,
        _ => return None,
    })
}

/// Our codes and parameters per block for `ty` (the layout [`ggml_type_for_layout`]
/// maps to it).
const fn our_sizes(ty: GgmlType) -> Option<(usize, usize)> {
    Some(match ty {
        GgmlType::Q4_0 => (16, 2),
        GgmlType::Q4_1 => (16, 4),
        GgmlType::Q8_0 => (32, 2),
        GgmlType::Q4_K => (128, 4 + 6 + 6),
        GgmlType::Q2_K => (64, 4 + 8 + 8),
        _ => return None,
    })
}

/// Rewrites `codes` and `params` (whole blocks of the layout that maps to `ty`) as
/// ggml blocks of `ty` into `out` (`blocks * ty.type_size()` bytes).
///
/// # Errors
/// [`QuantError::LengthMismatch`] if the lengths disagree on the number of blocks,
/// [`QuantError::Misaligned`] for a type no layout of ours maps to.
pub fn repack_blocks(ty: GgmlType, codes: &[u8], params: &[u8], out: &mut [u8]) -> Result<(), QuantError> {
    let (cl, pl) = our_sizes(ty).ok_or(QuantError::Misaligned)?;
    let blocks = codes.len() / cl;
    let ts = ty.type_size();
    for (got, want) in [(codes.len(), blocks * cl), (params.len(), blocks * pl), (out.len(), blocks * ts)] {
        if got != want {
            return Err(QuantError::LengthMismatch { expected: want, actual: got });
        }
    }
    for ((c, p), o) in codes.chunks_exact(cl).zip(params.chunks_exact(pl)).zip(out.chunks_exact_mut(ts)) {
        match ty {
            GgmlType::Q4_0 | GgmlType::Q4_1 => {
                o[..pl].copy_from_slice(p);
                split_nibbles(c, &mut o[pl..]);
            }
            GgmlType::Q8_0 => {
                o[..2].copy_from_slice(p);
                for (d, s) in o[2..].iter_mut().zip(c) {
                    *d = s ^ 0x80;
                }
            }
            GgmlType::Q4_K => q4_k(c, p, o),
            _ => q2_k(c, p, o),
        }
    }
    Ok(())
}

/// Code `i` of a block packed `per`-to-a-byte, lowest first.
fn code(c: &[u8], i: usize, bits: usize) -> u8 {
    let per = 8 / bits;
    (c[i / per] >> ((i % per) * bits)) & ((1 << bits) - 1) as u8
}

/// Value `j` of a little-endian bit stream of `k`-bit values.
fn stream_value(buf: &[u8], j: usize, k: usize) -> u8 {
    let mut v = 0u32;
    for b in 0..k {
        let bit = j * k + b;
        v |= u32::from((buf[bit / 8] >> (bit % 8)) & 1) << b;
    }
    v as u8
}

/// 32 (or 64 per Q4_K group) consecutive 4-bit codes to ggml's halves: byte `l` holds
/// code `l` low and code `l + n/2` high.
fn split_nibbles(c: &[u8], out: &mut [u8]) {
    let half = out.len();
    for (l, o) in out.iter_mut().enumerate() {
        *o = code(c, l, 4) | (code(c, l + half, 4) << 4);
    }
}

/// Q4_K: `d`, `dmin`, the 12-byte scales, then 4 groups of 64 codes split in halves.
fn q4_k(c: &[u8], p: &[u8], o: &mut [u8]) {
    o[..4].copy_from_slice(&p[..4]);
    let (mut sc, mut m) = ([0u8; 8], [0u8; 8]);
    for j in 0..8 {
        sc[j] = stream_value(&p[4..10], j, 6);
        m[j] = stream_value(&p[10..16], j, 6);
    }
    o[4..16].copy_from_slice(&pack_scale_min_k4(&sc, &m));
    for g in 0..4 {
        split_nibbles(&c[32 * g..32 * g + 32], &mut o[16 + 32 * g..16 + 32 * g + 32]);
    }
}

/// Q2_K: 16 bytes of `sc | m << 4`, 64 bytes of codes (byte `32n + l` holds codes
/// `128n + 32j + l` at bits `2j`), then `d`, `dmin`.
fn q2_k(c: &[u8], p: &[u8], o: &mut [u8]) {
    for (j, o) in o[..16].iter_mut().enumerate() {
        *o = stream_value(&p[4..12], j, 4) | (stream_value(&p[12..20], j, 4) << 4);
    }
    for n in 0..2 {
        for l in 0..32 {
            let mut b = 0u8;
            for j in 0..4 {
                b |= code(c, 128 * n + 32 * j + l, 2) << (2 * j);
            }
            o[16 + 32 * n + l] = b;
        }
    }
    o[80..84].copy_from_slice(&p[..4]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::AnyCodec;
    use crate::{BlockCodec, Input};
    use alloc::vec;
    use alloc::vec::Vec;

    fn data(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                let u = (s >> 11) as f32 / (1u64 << 53) as f32 - 0.5;
                // Heavy tails every few elements, as in real weights.
                if i % 37 == 0 { u * 8.0 } else { u }
            })
            .collect()
    }

    /// Encodes with our codec, repacks, and checks ggml's decoder against ours bit
    /// for bit on every block.
    fn same_floats(id: &str) {
        let ty = ggml_type_for_layout(id).unwrap();
        let codec = AnyCodec::from_layout_id(id, None).unwrap();
        let (b, cl, pl) = (codec.block_len(), codec.codes_len(), codec.params_len());
        assert_eq!(b, ty.block_len(), "{id}");
        assert_eq!(our_sizes(ty), Some((cl, pl)), "{id}");
        let blocks = 24;
        let x = data(b * blocks, id.len() as u64 * 7919);
        let (mut codes, mut params) = (vec![0u8; cl * blocks], vec![0u8; pl * blocks]);
        let mut ours = vec![0f32; b * blocks];
        for k in 0..blocks {
            let xs = &x[k * b..(k + 1) * b];
            let (c, p) = (&mut codes[k * cl..(k + 1) * cl], &mut params[k * pl..(k + 1) * pl]);
            codec.encode(Input::F32(xs), (k * b) as u64, c, p).unwrap();
            codec.decode(c, p, &mut ours[k * b..(k + 1) * b]).unwrap();
        }
        let mut ggml = vec![0u8; ty.type_size() * blocks];
        repack_blocks(ty, &codes, &params, &mut ggml).unwrap();
        let mut theirs = vec![0f32; b * blocks];
        super::super::dequantize(ty, &ggml, &mut theirs).unwrap();
        for (i, (a, t)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a.to_bits(), t.to_bits(), "{id} -> {ty}: element {i}: ours {a}, ggml {t}");
        }
    }

    #[test]
    fn repacked_blocks_decode_in_ggml_to_our_floats() {
        for id in ["g4s32", "g4a32", "g8s32", "k4b256s32c6m6o0", "k2b256s16c4m4o0"] {
            same_floats(id);
        }
    }

    #[test]
    fn other_layouts_have_no_ggml_type_and_lengths_are_checked() {
        for id in ["g4a128", "g8a32", "g2a32", "k4b256s32c6m6o2", "k8b256s32c6m6o0", "raw"] {
            assert_eq!(ggml_type_for_layout(id), None, "{id}");
        }
        let mut out = vec![0u8; 18];
        assert!(repack_blocks(GgmlType::Q4_0, &[0; 16], &[0; 4], &mut out).is_err());
        assert!(repack_blocks(GgmlType::Q5_0, &[0; 16], &[0; 2], &mut out).is_err());
        assert!(repack_blocks(GgmlType::Q4_0, &[0; 16], &[0; 2], &mut out).is_ok());
    }
}
