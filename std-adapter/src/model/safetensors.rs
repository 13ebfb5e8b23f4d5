//! Safetensors input: header parsing and validation, sharded models, and the tensor
//! list of a model.
//!
//! The header is validated here rather than by the `safetensors` crate so that every
//! problem gets its own error naming the file and tensor: the 8-byte length prefix
//! (present, at most [`MAX_HEADER_LEN`], inside the file), UTF-8, JSON, duplicate
//! names, known dtypes, `dtype size x shape == end - begin`, offsets inside the data
//! section and no two tensors sharing bytes. Gaps between tensors are allowed.
//!
//! Only the header is read here; tensor data is read window by window by
//! [`crate::model::window`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::header_json::Entries;

use crate::error::{AdapterError, Result, SafetensorsError};

/// Largest header accepted: 100 MB, the limit of the reference implementation.
pub const MAX_HEADER_LEN: u64 = 100_000_000;

/// A safetensors element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // The variants are the safetensors spellings.
pub enum StDtype {
    Bool,
    U8,
    I8,
    F8E5M2,
    F8E4M3,
    I16,
    U16,
    F16,
    Bf16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
}

impl StDtype {
    /// Parses the safetensors spelling (`F32`, `BF16`, `I64`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "BOOL" => StDtype::Bool,
            "U8" => StDtype::U8,
            "I8" => StDtype::I8,
            "F8_E5M2" => StDtype::F8E5M2,
            "F8_E4M3" => StDtype::F8E4M3,
            "I16" => StDtype::I16,
            "U16" => StDtype::U16,
            "F16" => StDtype::F16,
            "BF16" => StDtype::Bf16,
            "I32" => StDtype::I32,
            "U32" => StDtype::U32,
            "F32" => StDtype::F32,
            "F64" => StDtype::F64,
            "I64" => StDtype::I64,
            "U64" => StDtype::U64,
            _ => return None,
        })
    }

    /// The safetensors spelling.
    pub fn name(self) -> &'static str {
        match self {
            StDtype::Bool => "BOOL",
            StDtype::U8 => "U8",
            StDtype::I8 => "I8",
            StDtype::F8E5M2 => "F8_E5M2",
            StDtype::F8E4M3 => "F8_E4M3",
            StDtype::I16 => "I16",
            StDtype::U16 => "U16",
            StDtype::F16 => "F16",
            StDtype::Bf16 => "BF16",
            StDtype::I32 => "I32",
            StDtype::U32 => "U32",
            StDtype::F32 => "F32",
            StDtype::F64 => "F64",
            StDtype::I64 => "I64",
            StDtype::U64 => "U64",
        }
    }

    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            StDtype::Bool | StDtype::U8 | StDtype::I8 | StDtype::F8E5M2 | StDtype::F8E4M3 => 1,
            StDtype::I16 | StDtype::U16 | StDtype::F16 | StDtype::Bf16 => 2,
            StDtype::I32 | StDtype::U32 | StDtype::F32 => 4,
            StDtype::F64 | StDtype::I64 | StDtype::U64 => 8,
        }
    }

    /// The core input type, for the dtypes the quantizer accepts (F32, F16, BF16).
    pub fn quantizable(self) -> Option<arrowquant_core::Dtype> {
        match self {
            StDtype::F32 => Some(arrowquant_core::Dtype::F32),
            StDtype::F16 => Some(arrowquant_core::Dtype::F16),
            StDtype::Bf16 => Some(arrowquant_core::Dtype::Bf16),
            _ => None,
        }
    }
}

/// One tensor of a model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Name in the header.
    pub name: String,
    /// Element type.
    pub dtype: StDtype,
    /// Shape (empty for a scalar).
    pub shape: Vec<u64>,
    /// Index into [`Model::files`].
    pub file: usize,
    /// Absolute offset of the first byte in the file.
    pub offset: u64,
    /// Length in bytes.
    pub byte_len: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn elements(&self) -> u64 {
        self.shape.iter().product()
    }
}

/// The parsed header of one safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// Tensors in data order (by offset), with absolute offsets and `file = 0`.
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
    /// Bytes before the data section (8 + header length).
    pub data_start: u64,
    /// Length of the data section.
    pub data_len: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    dtype: String,
    shape: Vec<u64>,
    data_offsets: [u64; 2],
}

/// Parses and validates a header. `file_len` is the whole file's length.
///
/// # Errors
/// Every problem listed in the module docs, as a [`SafetensorsError`].
pub fn parse_header(
    prefix_and_header: &[u8],
    file_len: u64,
) -> std::result::Result<Header, SafetensorsError> {
    if file_len < 8 || prefix_and_header.len() < 8 {
        return Err(SafetensorsError::TooShort { len: file_len });
    }
    let mut n = [0u8; 8];
    n.copy_from_slice(&prefix_and_header[..8]);
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_LEN {
        return Err(SafetensorsError::HeaderTooLarge { len: n, limit: MAX_HEADER_LEN });
    }
    if n > file_len - 8 {
        return Err(SafetensorsError::HeaderPastEnd { len: n, available: file_len - 8 });
    }
    let Some(bytes) = prefix_and_header.get(8..8 + n as usize) else {
        return Err(SafetensorsError::HeaderPastEnd {
            len: n,
            available: prefix_and_header.len() as u64 - 8,
        });
    };
    let text =
        std::str::from_utf8(bytes).map_err(|e| SafetensorsError::NotUtf8 { valid_up_to: e.valid_up_to() })?;
    let entries: Entries = serde_json::from_str(text).map_err(|e| SafetensorsError::Json(e.to_string()))?;
    let data_start = 8 + n;
    let data_len = file_len - data_start;
    let mut metadata = BTreeMap::new();
    let mut tensors: Vec<TensorInfo> = Vec::with_capacity(entries.0.len());
    let mut seen = std::collections::HashSet::new();
    for (name, value) in entries.0 {
        if !seen.insert(name.clone()) {
            return Err(SafetensorsError::DuplicateTensor(name));
        }
        if name == "__metadata__" {
            metadata = serde_json::from_value(value).map_err(|e| {
                SafetensorsError::Json(format!("__metadata__ must map strings to strings: {e}"))
            })?;
            continue;
        }
        let e: RawEntry = serde_json::from_value(value)
            .map_err(|e| SafetensorsError::Json(format!("tensor `{name}`: {e}")))?;
        let Some(dtype) = StDtype::parse(&e.dtype) else {
            return Err(SafetensorsError::UnknownDtype { tensor: name, dtype: e.dtype });
        };
        let [begin, end] = e.data_offsets;
        if begin > end {
            return Err(SafetensorsError::ReversedOffsets { tensor: name, begin, end });
        }
        if end > data_len {
            return Err(SafetensorsError::OffsetOutOfBounds { tensor: name, end, data_len });
        }
        let expected =
            e.shape.iter().try_fold(dtype.size(), |acc, &d| acc.checked_mul(d)).ok_or_else(|| {
                SafetensorsError::ShapeOverflow { tensor: name.clone(), shape: e.shape.clone() }
            })?;
        if expected != end - begin {
            return Err(SafetensorsError::ByteLength {
                tensor: name,
                dtype: e.dtype,
                shape: e.shape,
                expected,
                actual: end - begin,
            });
        }
        tensors.push(TensorInfo {
            name,
            dtype,
            shape: e.shape,
            file: 0,
            offset: data_start + begin,
            byte_len: end - begin,
        });
    }
    tensors.sort_by_key(|t| (t.offset, t.byte_len));
    check_no_overlap(&tensors)?;
    Ok(Header { tensors, metadata, data_start, data_len })
}

/// No two tensors share a byte, whatever order the header lists them in. `tensors` is
/// sorted by (start, length). Empty tensors own no bytes and are skipped: they must not
/// stand between two tensors that do overlap (comparing only neighbours missed that).
/// Each tensor is compared with the one reaching furthest among those before it, which
/// is the only one it can overlap first.
fn check_no_overlap(tensors: &[TensorInfo]) -> std::result::Result<(), SafetensorsError> {
    let mut furthest: Option<&TensorInfo> = None;
    for t in tensors.iter().filter(|t| t.byte_len > 0) {
        if let Some(f) = furthest {
            // Offsets and lengths were checked against the data section: no overflow.
            let f_end = f.offset + f.byte_len;
            if t.offset < f_end {
                return Err(SafetensorsError::Overlap { first: f.name.clone(), second: t.name.clone() });
            }
        }
        if furthest.is_none_or(|f| t.offset + t.byte_len > f.offset + f.byte_len) {
            furthest = Some(t);
        }
    }
    Ok(())
}

/// Reads and validates the header of a safetensors file (only the header is read).
///
/// # Errors
/// [`AdapterError::Io`] or [`AdapterError::Safetensors`] naming the file.
pub fn read_header(path: &Path) -> Result<Header> {
    let mut f = super::input::open_regular(path).map_err(|e| AdapterError::io(path, e))?;
    let file_len = f.metadata().map_err(|e| AdapterError::io(path, e))?.len();
    let st = |source| AdapterError::Safetensors { path: path.to_path_buf(), source };
    let mut prefix = [0u8; 8];
    if file_len < 8 {
        return Err(st(SafetensorsError::TooShort { len: file_len }));
    }
    f.read_exact(&mut prefix).map_err(|e| AdapterError::io(path, e))?;
    let n = u64::from_le_bytes(prefix);
    // Only a length that cannot be a header's is read as another format's magic: any
    // first byte can start a real length (0x80 0x02 is 640, and a pickle's magic).
    if (n > MAX_HEADER_LEN || n > file_len - 8)
        && let Some(why) = super::input::FileKind::of(&prefix).not_a_model()
    {
        return Err(AdapterError::NotAModel { path: path.to_path_buf(), reason: why.into() });
    }
    // Check the length before allocating for it.
    if n > MAX_HEADER_LEN {
        return Err(st(SafetensorsError::HeaderTooLarge { len: n, limit: MAX_HEADER_LEN }));
    }
    if n > file_len - 8 {
        return Err(st(SafetensorsError::HeaderPastEnd { len: n, available: file_len - 8 }));
    }
    let mut buf = vec![0u8; 8 + n as usize];
    buf[..8].copy_from_slice(&prefix);
    f.read_exact(&mut buf[8..]).map_err(|e| AdapterError::io(path, e))?;
    parse_header(&buf, file_len).map_err(st)
}

/// A model: one safetensors file, or the shards of a sharded checkpoint.
#[derive(Clone, Debug)]
pub struct Model {
    /// The path the model was opened from.
    pub path: PathBuf,
    /// The safetensors files, in the order their tensors are listed.
    pub files: Vec<PathBuf>,
    /// Every tensor, file by file, in data order within each file.
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` of the first file.
    pub metadata: BTreeMap<String, String>,
    /// The index file of a sharded model.
    pub index: Option<PathBuf>,
}

impl Model {
    /// Opens a model and validates every header.
    ///
    /// `path` is a `.safetensors` file; or a directory holding
    /// `model.safetensors.index.json` (its `weight_map` names the shards) or
    /// `model.safetensors`; or the index file itself.
    ///
    /// # Errors
    /// [`AdapterError::NotAModel`], [`AdapterError::Io`] or [`AdapterError::Safetensors`]
    /// naming the file (and tensor).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let meta = std::fs::metadata(path).map_err(|e| AdapterError::io(path, e))?;
        if meta.is_dir() {
            let index = path.join("model.safetensors.index.json");
            if index.is_file() {
                return Self::open_index(path, &index);
            }
            let single = path.join("model.safetensors");
            if single.is_file() {
                return Self::open_files(path, vec![single]);
            }
            return Err(AdapterError::NotAModel {
                path: path.to_path_buf(),
                reason: "directory has neither model.safetensors.index.json nor model.safetensors".into(),
            });
        }
        if path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".index.json")) {
            let dir = path.parent().unwrap_or(Path::new("."));
            return Self::open_index(path, path).map(|mut m| {
                m.path = dir.to_path_buf();
                m
            });
        }
        Self::open_files(path, vec![path.to_path_buf()])
    }

    pub(super) fn open_files(root: &Path, files: Vec<PathBuf>) -> Result<Self> {
        let mut tensors = Vec::new();
        let mut metadata = None;
        let mut seen = std::collections::HashMap::new();
        for (i, f) in files.iter().enumerate() {
            let h = read_header(f)?;
            metadata.get_or_insert(h.metadata);
            for mut t in h.tensors {
                t.file = i;
                if let Some(prev) = seen.insert(t.name.clone(), i) {
                    return Err(AdapterError::Safetensors {
                        path: f.clone(),
                        source: SafetensorsError::Index(format!(
                            "tensor `{}` is also in `{}`",
                            t.name,
                            files[prev].display()
                        )),
                    });
                }
                tensors.push(t);
            }
        }
        Ok(Model {
            path: root.to_path_buf(),
            files,
            tensors,
            metadata: metadata.unwrap_or_default(),
            index: None,
        })
    }

    /// Every file the model was read from: the shards and the index.
    pub fn files_read(&self) -> Vec<PathBuf> {
        self.files.iter().chain(&self.index).cloned().collect()
    }

    /// Total bytes of tensor data.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.byte_len).sum()
    }

    /// Total elements over all tensors.
    pub fn total_elements(&self) -> u64 {
        self.tensors.iter().map(TensorInfo::elements).sum()
    }

    /// The tensor called `name`.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The file a tensor lives in.
    pub fn file_of(&self, t: &TensorInfo) -> &Path {
        &self.files[t.file]
    }
}

#[cfg(test)]
mod tests;
