//! The fast effort of the affine K types whose layout a `kquant` format shares (Q2_K,
//! Q4_K; `kquant` has no 5-bit codes, so Q5_K keeps the best effort): the `kquant` two-level
//! search of the `int2`/`int4` presets alone, [`CHUNK`] blocks per call, its
//! parameters written in ggml's byte layout.
//!
//! Why a second encoder: the best effort tries ggml's own choice, our search and a
//! least-squares polish per block and keeps the best, so no block is worse than
//! ggml's, at 5-15 M weights/s on one thread; llama-quantize makes Q4_K at about
//! 15 M weights/s. The `kquant` search alone runs several times faster and, over a
//! tensor, is still at least as good as ggml's quantizer on mean cosine, min cosine
//! and SQNR (measured in docs/GGUF.md), though a single block may be slightly worse.
//!
//! The codes are chosen again for the parameters in ggml's layout
//! ([`k_affine::block_codes`]), so the bytes decode exactly as ggml decodes them.

use super::k_affine::Affine;
use super::k_common::{Block, QK_K};
use super::q4_k::from_kquant;
use crate::QuantError;
use crate::codec::BlockCodec;
use crate::input::Input;
use crate::kquant::{TwoLevelCodec, TwoLevelFormat};
use crate::search::SearchConfig;

/// Blocks per `kquant` call: enough to amortise its dispatch, small enough for the
/// stack (at most 8 * 128 code bytes and 8 * 20 parameter bytes).
const CHUNK: usize = 8;
/// Largest `kquant` code bytes per block among the types here (Q4_K: 4 bits).
const MAX_CODES: usize = QK_K * 4 / 8;
/// Largest `kquant` parameter bytes per block (Q2_K: 4 + 8 + 8).
const MAX_PARAMS: usize = 20;

/// One affine K type as the fast encoder needs it.
#[derive(Clone, Copy)]
pub(crate) struct FastSpec {
    /// Code bits, sub-block length and sub-scale/sub-min bits of the `kquant` format.
    pub bits: u8,
    /// Weights per sub-block.
    pub sub: usize,
    /// Bits of each sub-scale and sub-min code.
    pub sub_bits: u8,
    /// Bytes of one ggml block.
    pub type_size: usize,
    /// Writes one ggml block for weights and parameters.
    pub write: fn(&Block, &Affine, &mut [u8]),
}

/// Encodes whole blocks of `input` into `out` (`spec.type_size` bytes each).
///
/// # Errors
/// [`QuantError::NonFinite`] / [`QuantError::OutOfRange`] naming the first bad
/// element, counted from `first_element` (the `kquant` encoder's checks).
pub(crate) fn encode(
    spec: &FastSpec,
    input: Input<'_>,
    first_element: u64,
    out: &mut [u8],
) -> Result<(), QuantError> {
    let fmt = TwoLevelFormat::new(spec.bits, QK_K, spec.sub, spec.sub_bits, spec.sub_bits)?;
    let codec = TwoLevelCodec::new(fmt, SearchConfig::BALANCED);
    let (codes_len, params_len) = (codec.codes_len(), codec.params_len());
    debug_assert!(codes_len <= MAX_CODES && params_len <= MAX_PARAMS);
    let subs = QK_K / spec.sub;
    let mut codes = [0u8; CHUNK * MAX_CODES];
    let mut params = [0u8; CHUNK * MAX_PARAMS];
    let mut x = [0f32; QK_K];
    let blocks = input.len() / QK_K;
    let mut first = 0;
    while first < blocks {
        let n = CHUNK.min(blocks - first);
        let part = input.slice(first * QK_K, (first + n) * QK_K);
        let offset = first_element + (first * QK_K) as u64;
        codec.encode(part, offset, &mut codes[..n * codes_len], &mut params[..n * params_len])?;
        for b in 0..n {
            part.slice(b * QK_K, (b + 1) * QK_K).to_f32(&mut x);
            let p =
                from_kquant(&params[b * params_len..(b + 1) * params_len], subs, u32::from(spec.sub_bits));
            let o = (first + b) * spec.type_size;
            (spec.write)(&x, &p, &mut out[o..o + spec.type_size]);
        }
        first += n;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::super::k_tests::test_data;
    use super::super::{Effort, GgmlCodec, GgmlType, dequantize, q2_k, q4_k};
    use super::QK_K;
    use crate::QuantError;
    use crate::codec::BlockCodec;
    use crate::input::Input;

    type Encoder = fn(Input<'_>, u64, &mut [u8]) -> Result<(), QuantError>;

    /// The fast types with ggml's own choice (the ported `quantize_row_*_ref`).
    const TYPES: [(GgmlType, Encoder); 2] =
        [(GgmlType::Q2_K, q2_k::encode_ggml), (GgmlType::Q4_K, q4_k::encode_ggml)];

    /// Per row of `row` weights: (cosine, SQNR in dB) of the decoded `bytes`.
    fn row_quality(ty: GgmlType, x: &[f32], bytes: &[u8], row: usize) -> Vec<(f64, f64)> {
        let mut y = vec![0f32; x.len()];
        dequantize(ty, bytes, &mut y).unwrap();
        x.chunks_exact(row)
            .zip(y.chunks_exact(row))
            .map(|(a, b)| {
                let (mut ab, mut aa, mut bb, mut e) = (0f64, 0f64, 0f64, 0f64);
                for (&p, &q) in a.iter().zip(b) {
                    let (p, q) = (f64::from(p), f64::from(q));
                    (ab, aa, bb, e) = (ab + p * q, aa + p * p, bb + q * q, e + (p - q) * (p - q));
                }
                let cos = if aa == 0.0 && bb == 0.0 { 1.0 } else { ab / (aa * bb).sqrt().max(1e-300) };
                let sqnr = if e == 0.0 { 200.0 } else { 10.0 * (aa / e).log10() };
                (cos, sqnr)
            })
            .collect()
    }

    fn summary(q: &[(f64, f64)]) -> (f64, f64, f64) {
        let n = q.len() as f64;
        let mean_cos = q.iter().map(|v| v.0).sum::<f64>() / n;
        let min_cos = q.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
        let mean_sqnr = q.iter().map(|v| v.1).sum::<f64>() / n;
        (mean_cos, min_cos, mean_sqnr)
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "interpreted, the 256-weight searches take minutes; natively it runs in cargo test"
    )]
    fn fast_effort_is_at_least_ggml_over_rows_on_mean_cos_min_cos_and_sqnr() {
        let x = test_data(6);
        let n = x.len() / QK_K;
        for (ty, ggml_encode) in TYPES {
            let codec = GgmlCodec::with_effort(ty, Effort::Fast).unwrap();
            let mut ours = vec![0u8; n * ty.type_size()];
            let mut theirs = vec![0u8; n * ty.type_size()];
            codec.encode(Input::F32(&x), 0, &mut ours, &mut []).unwrap();
            ggml_encode(Input::F32(&x), 0, &mut theirs).unwrap();
            assert_ne!(ours, theirs, "{ty}: the fast effort must be its own search, not ggml's");
            let (o, g) =
                (summary(&row_quality(ty, &x, &ours, QK_K)), summary(&row_quality(ty, &x, &theirs, QK_K)));
            assert!(o.0 >= g.0, "{ty}: mean cos {} < ggml {}", o.0, g.0);
            assert!(o.1 >= g.1, "{ty}: min cos {} < ggml {}", o.1, g.1);
            assert!(o.2 >= g.2, "{ty}: mean SQNR {} < ggml {}", o.2, g.2);
        }
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "interpreted, the 256-weight searches take minutes; natively it runs in cargo test"
    )]
    fn fast_effort_keeps_the_nan_range_policy_and_odd_chunk_counts() {
        for (ty, _) in TYPES {
            let codec = GgmlCodec::with_effort(ty, Effort::Fast).unwrap();
            // 11 blocks: one full chunk of 8 and a partial one.
            let blocks = 11;
            let mut out = vec![0u8; blocks * ty.type_size()];
            for (bad, at, want) in [
                (f32::NAN, 9 * QK_K + 3, QuantError::NonFinite { element: 1000 + 9 * QK_K as u64 + 3 }),
                (f32::INFINITY, 5, QuantError::NonFinite { element: 1005 }),
                (1.0e6, 8 * QK_K, QuantError::OutOfRange { element: 1000 + 8 * QK_K as u64 }),
            ] {
                let mut x = vec![0.5f32; blocks * QK_K];
                x[at] = bad;
                assert_eq!(codec.encode(Input::F32(&x), 1000, &mut out, &mut []), Err(want), "{ty} {bad}");
            }
            // Each block of a multi-block call is the block encoded alone.
            let x: Vec<f32> = (0..blocks * QK_K)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1 + i / QK_K) as f32)
                .collect();
            codec.encode(Input::F32(&x), 0, &mut out, &mut []).unwrap();
            let size = ty.type_size();
            for b in 0..blocks {
                let mut one = vec![0u8; size];
                codec.encode(Input::F32(&x[b * QK_K..(b + 1) * QK_K]), 0, &mut one, &mut []).unwrap();
                assert_eq!(one, out[b * size..(b + 1) * size], "{ty}: block {b}");
            }
            // f16 input gives the bytes of its f32 values.
            let h: Vec<half::f16> = x.iter().map(|&v| half::f16::from_f32(v)).collect();
            let xf: Vec<f32> = h.iter().map(|v| v.to_f32()).collect();
            let mut a = vec![0u8; blocks * size];
            codec.encode(Input::F16(&h), 0, &mut a, &mut []).unwrap();
            codec.encode(Input::F32(&xf), 0, &mut out, &mut []).unwrap();
            assert_eq!(a, out, "{ty}: f16 input");
        }
    }
}
