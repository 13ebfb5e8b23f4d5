//! The ArrowQuant Parquet schema (format version 1) and the file-level metadata.
//!
//! `docs/FORMAT.md` is the reader's specification; this module is its single source
//! in code. One row holds one chunk of one tensor; rows of a tensor are consecutive
//! and in element order; tensors follow the model's order.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::{Deserialize, Serialize};

/// Value of [`KEY_FORMAT_VERSION`] written by this version.
pub const FORMAT_VERSION: &str = "1";
/// Key-value metadata: the format version.
pub const KEY_FORMAT_VERSION: &str = "arrowquant.format_version";
/// Key-value metadata: the writing tool and its version (`arrowquant-std 0.1.0`).
pub const KEY_TOOL_VERSION: &str = "arrowquant.tool_version";
/// Key-value metadata: the full configuration as JSON.
pub const KEY_CONFIG: &str = "arrowquant.config";
/// Key-value metadata: the tensor manifest as a JSON array of [`StoredTensor`].
pub const KEY_TENSORS: &str = "arrowquant.tensors";
/// Key-value metadata: the source safetensors `__metadata__` as a JSON object.
pub const KEY_SOURCE_METADATA: &str = "arrowquant.source_metadata";

/// Key-value metadata (optional): time-aware activation parameters as JSON
/// ([`crate::features::time_aware::TimeGroupTable`]); present only when a calibration file was used.
pub const KEY_TIME_GROUPS: &str = "arrowquant.time_groups";
/// Key-value metadata (optional): the mixed-precision plan and what it achieved as JSON
/// ([`crate::features::mixed::MixedPrecision`]); present only when `target_bpw` was set.
pub const KEY_MIXED_PRECISION: &str = "arrowquant.mixed_precision";
/// Key-value metadata (optional): channel-equalization factors per tensor as JSON
/// ([`crate::features::equalization::EqualizationTable`]); present only when equalization ran.
/// The stored codes of an equalized tensor decode to `W * s`, not `W`.
pub const KEY_EQUALIZATION: &str = "arrowquant.equalization";

/// Column names, in schema order.
pub mod col {
    /// Tensor name (Utf8).
    pub const TENSOR: &str = "tensor";
    /// Chunk index within the tensor, from 0 (UInt32).
    pub const CHUNK: &str = "chunk";
    /// First element of the chunk in the flattened tensor (UInt64).
    pub const ELEMENT_OFFSET: &str = "element_offset";
    /// Real elements in the chunk (UInt64).
    pub const ELEMENT_COUNT: &str = "element_count";
    /// Tensor shape (`List<Int64>`).
    pub const SHAPE: &str = "shape";
    /// Original safetensors dtype (Utf8).
    pub const DTYPE: &str = "dtype";
    /// Codec layout id (`g4a128`, `k4b256s32c6m6o0`) or `raw` (Utf8).
    pub const CODEC: &str = "codec";
    /// Preset name, if the codec came from one (Utf8, nullable).
    pub const PRESET: &str = "preset";
    /// Code width used (UInt8, 0 for raw).
    pub const BITS: &str = "bits";
    /// Code width first asked for (UInt8, 0 for raw).
    pub const BITS_REQUESTED: &str = "bits_requested";
    /// Elements per block (group size) (UInt32, 0 for raw).
    pub const BLOCK_LEN: &str = "block_len";
    /// `asymmetric` or `symmetric` (Utf8, null for raw).
    pub const SCHEME: &str = "scheme";
    /// Code bytes per block (UInt32).
    pub const BLOCK_CODES_LEN: &str = "block_codes_len";
    /// Parameter bytes per block (UInt32).
    pub const BLOCK_PARAMS_LEN: &str = "block_params_len";
    /// Blocks in the chunk (UInt64).
    pub const BLOCKS: &str = "blocks";
    /// Padding elements in the chunk's last block (UInt32).
    pub const PADDING: &str = "padding";
    /// Packed codes of every block, or raw bytes (Binary).
    pub const CODES: &str = "codes";
    /// Scales and offsets of every block (Binary; empty for raw).
    pub const PARAMS: &str = "params";
    /// Outlier values (Binary, nullable): reserved; always null in format version 1.
    pub const OUTLIERS: &str = "outliers";
    /// Why the width differs from the request (Utf8, nullable).
    pub const FALLBACK_REASON: &str = "fallback_reason";
    /// Per-tensor cosine similarity (Float64, null for raw).
    pub const COSINE: &str = "cosine";
    /// Per-tensor relative RMSE (Float64, null for raw).
    pub const REL_RMSE: &str = "rel_rmse";
    /// Per-tensor SQNR in dB (Float64, null for raw).
    pub const SQNR_DB: &str = "sqnr_db";
    /// Per-tensor largest absolute error (Float64, null for raw).
    pub const MAX_ABS_ERR: &str = "max_abs_err";
}

/// Whether a column read from a file has the type [`schema`] asks for. Lists match on
/// their item type only: the item's name and nullability are a writer's convention
/// (we write `item`; pyarrow and the Parquet spec's compliant layout use `element`),
/// and the reader never needs them.
pub(crate) fn same_column_type(found: &DataType, expected: &DataType) -> bool {
    match (found, expected) {
        (DataType::List(f), DataType::List(e)) => f.data_type() == e.data_type(),
        _ => found == expected,
    }
}

/// The Arrow schema of an ArrowQuant file.
pub fn schema() -> SchemaRef {
    use DataType::*;
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Arc::new(Schema::new(vec![
        f(col::TENSOR, Utf8, false),
        f(col::CHUNK, UInt32, false),
        f(col::ELEMENT_OFFSET, UInt64, false),
        f(col::ELEMENT_COUNT, UInt64, false),
        f(col::SHAPE, List(Arc::new(Field::new("item", Int64, false))), false),
        f(col::DTYPE, Utf8, false),
        f(col::CODEC, Utf8, false),
        f(col::PRESET, Utf8, true),
        f(col::BITS, UInt8, false),
        f(col::BITS_REQUESTED, UInt8, false),
        f(col::BLOCK_LEN, UInt32, false),
        f(col::SCHEME, Utf8, true),
        f(col::BLOCK_CODES_LEN, UInt32, false),
        f(col::BLOCK_PARAMS_LEN, UInt32, false),
        f(col::BLOCKS, UInt64, false),
        f(col::PADDING, UInt32, false),
        f(col::CODES, Binary, false),
        f(col::PARAMS, Binary, false),
        f(col::OUTLIERS, Binary, true),
        f(col::FALLBACK_REASON, Utf8, true),
        f(col::COSINE, Float64, true),
        f(col::REL_RMSE, Float64, true),
        f(col::SQNR_DB, Float64, true),
        f(col::MAX_ABS_ERR, Float64, true),
    ]))
}

/// One tensor as recorded in the file's manifest ([`KEY_TENSORS`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredTensor {
    /// Tensor name.
    pub name: String,
    /// Original safetensors dtype.
    pub dtype: String,
    /// Shape.
    pub shape: Vec<u64>,
    /// Elements.
    pub elements: u64,
    /// Codec layout id (`g4a128`, ...) or `raw`.
    pub codec: String,
    /// Preset name, if any.
    pub preset: Option<String>,
    /// Code width used (0 for raw).
    pub bits: u32,
    /// Code width requested (0 for raw).
    pub bits_requested: u32,
    /// Elements per block (0 for raw).
    pub block_len: u32,
    /// Scheme (None for raw).
    pub scheme: Option<String>,
    /// Index of the tensor's first row in the file.
    pub first_row: u64,
    /// Rows (chunks).
    pub rows: u64,
    /// Bytes of codes and parameters (or raw bytes).
    pub stored_bytes: u64,
    /// Why the tensor is not quantized, if it is not.
    pub raw_reason: Option<String>,
    /// Why its width differs from the request, if it does.
    pub fallback_reason: Option<String>,
    /// Cosine similarity (None for raw; also None if not finite).
    pub cosine: Option<f64>,
    /// Relative RMSE.
    pub rel_rmse: Option<f64>,
    /// SQNR in dB (None when infinite, i.e. exact).
    pub sqnr_db: Option<f64>,
    /// Largest absolute error.
    pub max_abs_err: Option<f64>,
    /// One [`row_checksum`] per row, in chunk order. Readers verify every row before
    /// decoding it: Parquet pages written by the `parquet` crate carry no CRC, so
    /// without these a flipped byte in a page decoded to different weights.
    #[serde(default)]
    pub checksums: Vec<u64>,
}

impl StoredTensor {
    /// True if the tensor was quantized (not stored raw).
    pub fn is_quantized(&self) -> bool {
        self.codec != crate::encode::codec::RAW_CODEC_ID
    }
}

/// What a row's checksum covers: everything that decides the values it decodes to.
#[derive(Clone, Copy, Debug)]
pub struct RowFields<'a> {
    /// Chunk index within the tensor.
    pub chunk: u32,
    /// First element of the chunk.
    pub element_offset: u64,
    /// Real elements in the chunk.
    pub element_count: u64,
    /// Blocks in the chunk.
    pub blocks: u64,
    /// Padding elements in the last block.
    pub padding: u32,
    /// Codes or raw bytes.
    pub codes: &'a [u8],
    /// Parameters.
    pub params: &'a [u8],
}

/// The checksum of one row: xxHash64 (seed 0) of `chunk` (u32), `element_offset`,
/// `element_count`, `blocks` (u64), `padding` (u32), then the length (u64) and bytes of
/// `codes` and of `params`; integers little-endian.
pub fn row_checksum(r: &RowFields<'_>) -> u64 {
    use std::hash::Hasher;
    let mut h = twox_hash::XxHash64::with_seed(0);
    h.write(&r.chunk.to_le_bytes());
    h.write(&r.element_offset.to_le_bytes());
    h.write(&r.element_count.to_le_bytes());
    h.write(&r.blocks.to_le_bytes());
    h.write(&r.padding.to_le_bytes());
    for bytes in [r.codes, r.params] {
        h.write(&(bytes.len() as u64).to_le_bytes());
        h.write(bytes);
    }
    h.finish()
}

/// `Some(x)` for finite `x`, else `None` (JSON has no infinity).
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}
