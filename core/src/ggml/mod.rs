//! ggml's block formats, byte for byte: what GGUF files hold and llama.cpp and candle run.
//!
//! Each type is a `#[repr(C)]` block of `block_len()` weights in `type_size()` bytes,
//! laid out exactly as `ggml-common.h` declares it (little-endian, f16 scales). A
//! tensor row of `ne0` weights is `ne0 / block_len()` consecutive blocks; a 2-D tensor
//! is its rows one after the other. Our encoders write these bytes with our own
//! parameter search where it beats ggml's choice inside the same layout; our decoders
//! compute exactly what ggml's `dequantize_row_*` computes (same f32 operations in the
//! same order, never fused), so a file we write decodes to the same floats in
//! llama.cpp, candle and the `gguf` Python package.
//!
//! | type | weights per block | bytes per block | bits per weight |
//! |---|---|---|---|
//! | Q4_0 | 32 | 18 | 4.5 |
//! | Q4_1 | 32 | 20 | 5.0 |
//! | Q5_0 | 32 | 22 | 5.5 |
//! | Q5_1 | 32 | 24 | 6.0 |
//! | Q8_0 | 32 | 34 | 8.5 |
//! | IQ4_NL | 32 | 18 | 4.5 |
//! | Q2_K | 256 | 84 | 2.625 |
//! | Q3_K | 256 | 110 | 3.4375 |
//! | Q4_K | 256 | 144 | 4.5 |
//! | Q5_K | 256 | 176 | 5.5 |
//! | Q6_K | 256 | 210 | 6.5625 |
//! | IQ4_XS | 256 | 136 | 4.25 |
//!
//! [`GgmlCodec`] puts every type behind [`BlockCodec`](crate::BlockCodec) (the whole
//! block goes to the code stream, nothing to the parameter stream), so the streaming
//! quantizer, its sinks and its quality tracking work for GGUF output unchanged.
//!
//! # Memory
//!
//! Encoding and decoding work on one block on the stack; nothing is allocated.

use crate::QuantError;
use crate::codec::BlockCodec;
use crate::input::Input;

mod block32;
mod iq4_nl;
mod iq4_xs;
mod k_affine;
mod k_common;
mod k_fast;
mod k_lanes;
mod k_sym;
#[cfg(test)]
mod k_tests;
mod q2_k;
mod q3_k;
mod q4_0;
mod q4_1;
mod q4_k;
mod q5_0;
mod q5_1;
mod q5_k;
mod q6_k;
mod q8_0;
mod repack;
mod simd32;
#[cfg(test)]
mod tests32;

pub use repack::{ggml_type_for_layout, repack_blocks};

/// A ggml tensor type, with the numeric id GGUF stores (`enum ggml_type`).
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// IEEE binary32, unquantized.
    F32,
    /// IEEE binary16, unquantized.
    F16,
    /// 32 weights: f16 scale, 4-bit codes, `x = d * (q - 8)`.
    Q4_0,
    /// 32 weights: f16 scale and minimum, 4-bit codes, `x = d * q + m`.
    Q4_1,
    /// 32 weights: f16 scale, 5-bit codes (high bits apart), `x = d * (q - 16)`.
    Q5_0,
    /// 32 weights: f16 scale and minimum, 5-bit codes, `x = d * q + m`.
    Q5_1,
    /// 32 weights: f16 scale, 8-bit signed codes, `x = d * q`.
    Q8_0,
    /// 256 weights: 16 sub-blocks of 16, 4-bit sub-scales and sub-mins, 2-bit codes.
    Q2_K,
    /// 256 weights: 16 sub-blocks of 16, 6-bit sub-scales, 3-bit codes.
    Q3_K,
    /// 256 weights: 8 sub-blocks of 32, 6-bit sub-scales and sub-mins, 4-bit codes.
    Q4_K,
    /// 256 weights: 8 sub-blocks of 32, 6-bit sub-scales and sub-mins, 5-bit codes.
    Q5_K,
    /// 256 weights: 16 sub-blocks of 16, 8-bit sub-scales, 6-bit codes.
    Q6_K,
    /// 32 weights: f16 scale, 4-bit indices into a fixed non-uniform 16-value grid.
    IQ4_NL,
    /// 256 weights: 8 sub-blocks of 32, 6-bit sub-scales, IQ4_NL's grid.
    IQ4_XS,
    /// bfloat16, unquantized.
    BF16,
}

impl GgmlType {
    /// Every type, in id order.
    pub const ALL: [GgmlType; 15] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
        GgmlType::BF16,
    ];

    /// The quantized (block) types, in id order.
    pub const QUANTIZED: [GgmlType; 12] = [
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
        GgmlType::IQ4_NL,
        GgmlType::IQ4_XS,
    ];

    /// The id GGUF stores for this type (`enum ggml_type` in `ggml.h`).
    pub const fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2_K => 10,
            GgmlType::Q3_K => 11,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::IQ4_NL => 20,
            GgmlType::IQ4_XS => 23,
            GgmlType::BF16 => 30,
        }
    }

    /// The type with GGUF id `id`, if we know it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        Self::ALL.into_iter().find(|t| t.id() == id)
    }

    /// ggml's name (`Q4_K`, `F16`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            GgmlType::F32 => "F32",
            GgmlType::F16 => "F16",
            GgmlType::Q4_0 => "Q4_0",
            GgmlType::Q4_1 => "Q4_1",
            GgmlType::Q5_0 => "Q5_0",
            GgmlType::Q5_1 => "Q5_1",
            GgmlType::Q8_0 => "Q8_0",
            GgmlType::Q2_K => "Q2_K",
            GgmlType::Q3_K => "Q3_K",
            GgmlType::Q4_K => "Q4_K",
            GgmlType::Q5_K => "Q5_K",
            GgmlType::Q6_K => "Q6_K",
            GgmlType::IQ4_NL => "IQ4_NL",
            GgmlType::IQ4_XS => "IQ4_XS",
            GgmlType::BF16 => "BF16",
        }
    }

    /// The type named `name` (ggml's spelling, any case).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        Self::ALL.into_iter().find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// Weights per block (1 for the unquantized types).
    pub const fn block_len(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => 1,
            GgmlType::Q4_0
            | GgmlType::Q4_1
            | GgmlType::Q5_0
            | GgmlType::Q5_1
            | GgmlType::Q8_0
            | GgmlType::IQ4_NL => 32,
            GgmlType::Q2_K
            | GgmlType::Q3_K
            | GgmlType::Q4_K
            | GgmlType::Q5_K
            | GgmlType::Q6_K
            | GgmlType::IQ4_XS => 256,
        }
    }

    /// Bytes per block (`ggml_type_size`).
    pub const fn type_size(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 | GgmlType::IQ4_NL => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q2_K => 84,
            GgmlType::Q3_K => 110,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
            GgmlType::IQ4_XS => 136,
        }
    }

    /// Whether this is a block (quantized) type.
    pub const fn is_quantized(self) -> bool {
        self.block_len() > 1
    }

    /// Stored bits per weight, scales included.
    pub fn bits_per_weight(self) -> f64 {
        (self.type_size() * 8) as f64 / self.block_len() as f64
    }

    /// Bytes of `n` weights of this type, or `None` when `n` is not a whole number of
    /// blocks or the size overflows.
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let b = self.block_len() as u64;
        if !n.is_multiple_of(b) {
            return None;
        }
        (n / b).checked_mul(self.type_size() as u64)
    }

    /// What llama-quantize falls back to when a row length is not a multiple of this
    /// type's block: the 256-weight types go to a 32-weight type, and any type whose
    /// block still does not divide the row goes to F16 (`llama_tensor_get_type`).
    pub fn for_row_len(self, ne0: u64) -> GgmlType {
        let t = if ne0.is_multiple_of(self.block_len() as u64) {
            self
        } else {
            match self {
                GgmlType::Q2_K | GgmlType::Q3_K => GgmlType::Q4_0,
                GgmlType::Q4_K => GgmlType::Q5_0,
                GgmlType::Q5_K => GgmlType::Q5_1,
                GgmlType::Q6_K => GgmlType::Q8_0,
                GgmlType::IQ4_XS => GgmlType::IQ4_NL,
                other => other,
            }
        };
        if ne0.is_multiple_of(t.block_len() as u64) { t } else { GgmlType::F16 }
    }
}

impl core::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// A quantized ggml type behind [`BlockCodec`]: whole blocks in ggml's byte layout go
/// to the code stream; the parameter stream gets nothing (the scales live inside the
/// blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GgmlCodec {
    ty: GgmlType,
    effort: Effort,
}

/// How hard the encoder searches inside the layout (the decoded bytes always follow
/// ggml's rule exactly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Effort {
    /// Per block, the best of ggml's own choice, our search and a least-squares polish:
    /// no block decodes worse than ggml's quantizer would make it. Slowest.
    #[default]
    Best,
    /// Q2_K and Q4_K: our two-level search alone (the `int2`/`int4` presets' search), several times faster than
    /// [`Best`](Self::Best) and than ggml's quantizer, and over a tensor at least as good
    /// as ggml's on mean cosine, min cosine and SQNR (docs/GGUF.md), though one block
    /// may be slightly worse. The other types encode as with `Best`.
    Fast,
}

impl Effort {
    /// The effort's name as the command line spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Effort::Best => "best",
            Effort::Fast => "fast",
        }
    }
}

impl GgmlCodec {
    /// The codec of quantized type `ty` at [`Effort::Best`]; `None` for F32, F16 and
    /// BF16.
    pub fn new(ty: GgmlType) -> Option<GgmlCodec> {
        GgmlCodec::with_effort(ty, Effort::Best)
    }

    /// The codec of quantized type `ty` at `effort`; `None` for F32, F16 and BF16.
    pub fn with_effort(ty: GgmlType, effort: Effort) -> Option<GgmlCodec> {
        ty.is_quantized().then_some(GgmlCodec { ty, effort })
    }

    /// The type this codec writes.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// How hard this codec searches.
    pub fn effort(&self) -> Effort {
        self.effort
    }
}

impl BlockCodec for GgmlCodec {
    fn block_len(&self) -> usize {
        self.ty.block_len()
    }

    fn codes_len(&self) -> usize {
        self.ty.type_size()
    }

    fn params_len(&self) -> usize {
        0
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        let blocks = check_lengths(self.ty, input.len(), codes.len())?;
        if !params.is_empty() {
            return Err(QuantError::LengthMismatch { expected: 0, actual: params.len() });
        }
        let _ = blocks;
        if self.effort == Effort::Fast {
            let fast = match self.ty {
                GgmlType::Q2_K => Some(&q2_k::FAST),
                GgmlType::Q4_K => Some(&q4_k::FAST),
                _ => None,
            };
            if let Some(spec) = fast {
                return k_fast::encode(spec, input, first_element, codes);
            }
        }
        match self.ty {
            GgmlType::Q4_0 => q4_0::encode(input, first_element, codes),
            GgmlType::Q4_1 => q4_1::encode(input, first_element, codes),
            GgmlType::Q5_0 => q5_0::encode(input, first_element, codes),
            GgmlType::Q5_1 => q5_1::encode(input, first_element, codes),
            GgmlType::Q8_0 => q8_0::encode(input, first_element, codes),
            GgmlType::IQ4_NL => iq4_nl::encode(input, first_element, codes),
            GgmlType::Q2_K => q2_k::encode(input, first_element, codes),
            GgmlType::Q3_K => q3_k::encode(input, first_element, codes),
            GgmlType::Q4_K => q4_k::encode(input, first_element, codes),
            GgmlType::Q5_K => q5_k::encode(input, first_element, codes),
            GgmlType::Q6_K => q6_k::encode(input, first_element, codes),
            GgmlType::IQ4_XS => iq4_xs::encode(input, first_element, codes),
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => {
                unreachable!("GgmlCodec::new refuses unquantized types")
            }
        }
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        check_lengths(self.ty, out.len(), codes.len())?;
        if !params.is_empty() {
            return Err(QuantError::LengthMismatch { expected: 0, actual: params.len() });
        }
        dequantize(self.ty, codes, out)
    }
}

/// Decodes whole blocks of quantized type `ty` into `out` exactly as ggml's
/// `dequantize_row_*` does.
///
/// # Errors
/// [`QuantError::NotBlockMultiple`] / [`QuantError::LengthMismatch`] when `out` is not
/// a whole number of blocks or `blocks` does not hold exactly that many, and
/// [`QuantError::Corrupt`] for an unquantized `ty`.
pub fn dequantize(ty: GgmlType, blocks: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
    check_lengths(ty, out.len(), blocks.len())?;
    match ty {
        GgmlType::Q4_0 => q4_0::decode(blocks, out),
        GgmlType::Q4_1 => q4_1::decode(blocks, out),
        GgmlType::Q5_0 => q5_0::decode(blocks, out),
        GgmlType::Q5_1 => q5_1::decode(blocks, out),
        GgmlType::Q8_0 => q8_0::decode(blocks, out),
        GgmlType::IQ4_NL => iq4_nl::decode(blocks, out),
        GgmlType::Q2_K => q2_k::decode(blocks, out),
        GgmlType::Q3_K => q3_k::decode(blocks, out),
        GgmlType::Q4_K => q4_k::decode(blocks, out),
        GgmlType::Q5_K => q5_k::decode(blocks, out),
        GgmlType::Q6_K => q6_k::decode(blocks, out),
        GgmlType::IQ4_XS => iq4_xs::decode(blocks, out),
        GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 => Err(QuantError::Corrupt),
    }
}

/// Checks that `elements` is a whole number of `ty` blocks held in exactly `bytes`.
fn check_lengths(ty: GgmlType, elements: usize, bytes: usize) -> Result<usize, QuantError> {
    let b = ty.block_len();
    if !elements.is_multiple_of(b) {
        return Err(QuantError::NotBlockMultiple { len: elements, block: b });
    }
    let blocks = elements / b;
    let expected = blocks * ty.type_size();
    if bytes != expected {
        return Err(QuantError::LengthMismatch { expected, actual: bytes });
    }
    Ok(blocks)
}
