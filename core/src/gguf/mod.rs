//! GGUF, llama.cpp's model file: the container (header, metadata, tensor infos,
//! alignment), written and parsed in `no_std` + `alloc`.
//!
//! The tensor data itself (ggml blocks) is [`crate::ggml`]'s business; this module
//! says where each tensor's bytes go and checks that a file's header is sound before
//! anyone touches those bytes.
//!
//! # Layout
//!
//! Every number is little-endian. A *string* is a `u64` byte length followed by that
//! many UTF-8 bytes (no terminator).
//!
//! | part | bytes | content |
//! |---|---|---|
//! | magic | 4 | `GGUF` (`47 47 55 46`) |
//! | version | 4 | `u32`: we write 3, we read 2 and 3 (same layout) |
//! | tensor count | 8 | `u64` |
//! | key-value count | 8 | `u64` |
//! | key-values | variable | per pair: key (string), value type (`u32`, [`ValueType`]), value |
//! | tensor infos | variable | per tensor: name (string), `n_dims` (`u32`), `ne[0..n_dims]` (`u64` each), type (`u32`, [`GgmlType::id`]), offset (`u64`) |
//! | padding | to a multiple of the alignment | zeros |
//! | data | variable | each tensor's bytes at `data_offset + offset`, each padded with zeros to the alignment |
//!
//! A value is encoded by its type: fixed-size numbers as themselves (`bool` is one
//! byte, 0 or 1), a string as above, an array as its element type (`u32`), its count
//! (`u64`) and its elements without their type ids (an array of arrays: each inner
//! array with its own element type and count).
//!
//! `ne[0]` is the innermost (row) dimension, as ggml stores it: a PyTorch weight of
//! shape `[rows, cols]` has `ne = [cols, rows]`. A tensor's size in bytes is
//! `GgmlType::bytes_for(ne[0] * ... * ne[n_dims-1])`, its rows are `ne[0] /
//! block_len` blocks. The alignment is `general.alignment` (a `u32` power of two) if
//! present, else [`DEFAULT_ALIGNMENT`] (32); offsets are relative to the start of the
//! data section, which begins at the first multiple of the alignment after the tensor
//! infos.
//!
//! # Writing
//!
//! [`GgufWriter`] collects key-values and tensor infos (name, `ne`, type), then
//! [`GgufWriter::finish`] checks them (unique non-empty keys, unique names of fewer than
//! [`MAX_NAME_LEN`] bytes, shapes, alignment, sizes that fit `u64`), gives each tensor
//! its offset (in the order pushed, each aligned: the layout llama.cpp requires) and
//! serializes the header with its padding. The caller writes
//! [`GgufLayout::header_bytes`], then each tensor's bytes followed by
//! [`GgufLayout::padding_after`] zeros.
//!
//! ```
//! use arrowquant_core::ggml::GgmlType;
//! use arrowquant_core::gguf::{self, GgufWriter, keys};
//!
//! let mut w = GgufWriter::new();
//! w.push_kv(keys::GENERAL_ARCHITECTURE, "llama");
//! w.push_kv(keys::GENERAL_QUANTIZATION_VERSION, gguf::QUANTIZATION_VERSION);
//! w.push_tensor("blk.0.ffn_up.weight", &[256, 4], GgmlType::Q4_K)?; // 4 rows of 256
//! w.push_tensor("output_norm.weight", &[256], GgmlType::F32)?;
//! let layout = w.finish()?;
//!
//! let mut file = layout.header_bytes().to_vec();
//! for (i, t) in layout.tensors().iter().enumerate() {
//!     file.resize(file.len() + t.n_bytes() as usize, 0x11); // the tensor's data
//!     file.resize(file.len() + layout.padding_after(i) as usize, 0);
//! }
//! assert_eq!(file.len() as u64, layout.file_len());
//!
//! let header = gguf::GgufHeader::parse(&file)?;
//! assert_eq!(header.metadata().get_str(keys::GENERAL_ARCHITECTURE)?, "llama");
//! let t = header.tensor("output_norm.weight").unwrap();
//! assert_eq!((t.dims(), t.offset()), (&[256u64][..], 4 * 144));
//! # Ok::<(), arrowquant_core::gguf::GgufError>(())
//! ```
//!
//! # Parsing untrusted headers
//!
//! [`parse`] reads a header from a window at the start of the file (the caller maps
//! a prefix of a file that may be many gigabytes; the header of a model with a
//! 150k-token vocabulary is several megabytes) and answers [`Parsed::NeedMore`] with
//! the file length it needs when the window is too short. Every count and length is
//! checked against the bytes left in the *file* before anything is allocated (each
//! item takes at least a known number of bytes), and allocations are bounded by the
//! bytes actually read from the window, so arbitrary input never makes the parser
//! allocate more than a small multiple of the window. It never panics.
//!
//! Refused, each with a [`GgufError`] naming the item (key or tensor index and name)
//! and the offending value: a bad magic; versions other than 2 and 3; a header cut
//! short; counts or lengths larger than the file; empty, duplicate or non-UTF-8 keys;
//! non-UTF-8 strings; unknown value types; arrays nested deeper than
//! [`MAX_ARRAY_DEPTH`]; `bool` bytes other than 0 and 1; `general.alignment` that is
//! not a `uint32` power of two; duplicate or non-UTF-8 tensor names; unknown tensor
//! types; `n_dims` of 0 or more than [`MAX_DIMS`]; a dimension of 0 or an element
//! count that overflows `i64`; a row length not a multiple of the type's block;
//! offsets not a multiple of the alignment; tensor data past the end of the file;
//! tensors whose data overlap (whatever their order in the file).
//!
//! Accepted although llama.cpp is stricter: tensors in any order with gaps between
//! them (llama.cpp wants them packed in info order), tensor names of 64 bytes or more.
//!
//! # Memory
//!
//! The writer holds the header it serializes (a few megabytes for a large
//! vocabulary). A parsed header owns its metadata and tensor infos: at most a small
//! constant times the header's bytes.

mod error;
mod read;
mod value;
mod write;

#[cfg(test)]
mod tests;

use alloc::string::String;

pub use error::{Counted, GgufError, Item, NAME_CAP, Name};
pub use read::{GgufHeader, Parsed, parse};
pub use value::{Array, Metadata, Value, ValueType};
pub use write::{GgufLayout, GgufWriter};

use crate::ggml::GgmlType;

/// The four bytes every GGUF file starts with.
pub const MAGIC: [u8; 4] = *b"GGUF";
/// The version the writer produces.
pub const VERSION: u32 = 3;
/// The versions the parser reads (2 and 3 share one layout; 1 had 32-bit counts).
pub const SUPPORTED_VERSIONS: [u32; 2] = [2, 3];
/// Alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u32 = 32;
/// Most dimensions a tensor may have (`GGML_MAX_DIMS`).
pub const MAX_DIMS: usize = 4;
/// llama.cpp's name buffer (`GGML_MAX_NAME`): the writer refuses tensor names of this
/// many bytes or more.
pub const MAX_NAME_LEN: usize = 64;
/// Deepest array nesting the parser accepts (an array of arrays is depth 2).
pub const MAX_ARRAY_DEPTH: u32 = 8;
/// The value of `general.quantization_version` for the ggml block layouts we write.
pub const QUANTIZATION_VERSION: u32 = 2;

/// Well-known metadata keys.
pub mod keys {
    /// `string`: the model architecture (`llama`, `qwen2`, ...); other keys are prefixed with it.
    pub const GENERAL_ARCHITECTURE: &str = "general.architecture";
    /// `uint32`: the file's dominant type (llama.cpp's `llama_ftype`).
    pub const GENERAL_FILE_TYPE: &str = "general.file_type";
    /// `uint32`: the version of the quantized block layouts (2 since ggml's 2023 change).
    pub const GENERAL_QUANTIZATION_VERSION: &str = "general.quantization_version";
    /// `uint32`: the data alignment, a power of two; absent means 32.
    pub const GENERAL_ALIGNMENT: &str = "general.alignment";
    /// `string`: a human-readable model name.
    pub const GENERAL_NAME: &str = "general.name";
}

/// One tensor's description in the header: name, shape, type and offset of its data
/// relative to the data section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    name: String,
    ne: [u64; MAX_DIMS],
    n_dims: u8,
    ty: GgmlType,
    offset: u64,
    n_bytes: u64,
}

impl TensorInfo {
    /// The tensor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The dimensions, `ne[0]` (the row length) first.
    pub fn dims(&self) -> &[u64] {
        &self.ne[..usize::from(self.n_dims)]
    }

    /// The ggml type of the data.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }

    /// Offset of the data relative to the data section.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Number of elements (the product of the dimensions).
    pub fn elements(&self) -> u64 {
        // Checked when the info was built: the product fits i64.
        self.dims().iter().product()
    }

    /// Bytes of data (without the padding that follows).
    pub fn n_bytes(&self) -> u64 {
        self.n_bytes
    }

    /// Number of rows (`elements / ne[0]`).
    pub fn rows(&self) -> u64 {
        self.elements() / self.ne[0]
    }
}

/// Checks a shape and type as llama.cpp does and returns the data size in bytes.
fn check_shape(item: Item, ne: &[u64], ty: GgmlType) -> Result<u64, GgufError> {
    if ne.is_empty() || ne.len() > MAX_DIMS {
        return Err(GgufError::BadDimCount { item, n_dims: ne.len() as u32 });
    }
    let mut elements: u64 = 1;
    for (dim, &n) in ne.iter().enumerate() {
        if n == 0 {
            return Err(GgufError::ZeroDim { item, dim: dim as u32 });
        }
        elements = elements
            .checked_mul(n)
            .filter(|&e| e <= i64::MAX as u64)
            .ok_or(GgufError::ElementsOverflow { item })?;
    }
    if !ne[0].is_multiple_of(ty.block_len() as u64) {
        return Err(GgufError::RowNotBlockMultiple { item, ty, ne0: ne[0] });
    }
    ty.bytes_for(elements).ok_or(GgufError::SizeOverflow { item })
}

/// Builds a tensor info after [`check_shape`].
fn tensor_info(
    item: Item,
    name: String,
    ne: &[u64],
    ty: GgmlType,
    offset: u64,
) -> Result<TensorInfo, GgufError> {
    let n_bytes = check_shape(item, ne, ty)?;
    let mut dims = [1u64; MAX_DIMS];
    dims[..ne.len()].copy_from_slice(ne);
    Ok(TensorInfo { name, ne: dims, n_dims: ne.len() as u8, ty, offset, n_bytes })
}

/// The first name that repeats an earlier one, as `(first index, repeat index)`,
/// the repeat with the smallest index. `O(n log n)`, no hashing.
fn first_duplicate<'a>(names: impl ExactSizeIterator<Item = &'a str> + Clone) -> Option<(usize, usize)> {
    let all: alloc::vec::Vec<&str> = names.collect();
    let mut order: alloc::vec::Vec<usize> = (0..all.len()).collect();
    // Stable: equal names stay in index order.
    order.sort_by(|&a, &b| all[a].cmp(all[b]));
    order
        .windows(2)
        .filter(|w| all[w[0]] == all[w[1]])
        .map(|w| (w[0], w[1]))
        .min_by_key(|&(_, repeat)| repeat)
        .map(|(_, repeat)| {
            // The first occurrence of that name: the smallest index holding it.
            let first = (0..repeat).find(|&i| all[i] == all[repeat]).unwrap_or(repeat);
            (first, repeat)
        })
}

/// `n` rounded up to a multiple of `alignment` (a power of two), or `None` on overflow.
fn align_up(n: u64, alignment: u64) -> Option<u64> {
    debug_assert!(alignment.is_power_of_two());
    Some(n.checked_add(alignment - 1)? & !(alignment - 1))
}

/// The alignment `metadata` asks for.
fn alignment_of(metadata: &Metadata) -> Result<u64, GgufError> {
    match metadata.get(keys::GENERAL_ALIGNMENT) {
        None => Ok(u64::from(DEFAULT_ALIGNMENT)),
        Some(Value::U32(a)) if a.is_power_of_two() => Ok(u64::from(*a)),
        Some(Value::U32(a)) => Err(GgufError::BadAlignment { alignment: *a }),
        Some(other) => Err(GgufError::AlignmentType { found: other.value_type() }),
    }
}
