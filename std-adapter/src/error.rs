//! The adapter's error type: every failure names the file and, where there is one,
//! the tensor it concerns.

use std::borrow::Cow;
use std::fmt;
use std::path::{Path, PathBuf};

use arrowquant_core::QuantError;

use crate::config::ConfigError;

/// What is wrong with a safetensors file (the header or the data layout it describes).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SafetensorsError {
    /// The file is shorter than the 8-byte header length prefix.
    #[error("file is {len} bytes, too short for the 8-byte header length")]
    TooShort {
        /// File length in bytes.
        len: u64,
    },
    /// The header length exceeds the hard limit (a corrupt or hostile file).
    #[error("header length {len} bytes exceeds the limit of {limit} bytes")]
    HeaderTooLarge {
        /// Declared header length.
        len: u64,
        /// The limit.
        limit: u64,
    },
    /// The header length runs past the end of the file (a truncated file).
    #[error("header length {len} bytes runs past the end of the file ({available} bytes after the prefix)")]
    HeaderPastEnd {
        /// Declared header length.
        len: u64,
        /// Bytes available after the 8-byte prefix.
        available: u64,
    },
    /// The header is not UTF-8.
    #[error("header is not valid UTF-8 (at byte {valid_up_to})")]
    NotUtf8 {
        /// Length of the valid prefix.
        valid_up_to: usize,
    },
    /// The header is not the JSON object safetensors expects.
    #[error("header is not valid safetensors JSON: {}", esc(.0))]
    Json(String),
    /// The same tensor name appears twice.
    #[error("tensor `{}` appears twice in the header", esc(.0))]
    DuplicateTensor(String),
    /// A dtype this tool does not know.
    #[error("tensor `{}`: unknown dtype `{}`", esc(tensor), esc(dtype))]
    UnknownDtype {
        /// Tensor name.
        tensor: String,
        /// The dtype as written.
        dtype: String,
    },
    /// `data_offsets` are reversed.
    #[error("tensor `{}`: data_offsets [{begin}, {end}] are reversed", esc(tensor))]
    ReversedOffsets {
        /// Tensor name.
        tensor: String,
        /// Start offset.
        begin: u64,
        /// End offset.
        end: u64,
    },
    /// `data_offsets` run past the end of the data section (often a truncated file).
    #[error(
        "tensor `{}`: data_offsets end {end} is past the end of the data ({data_len} bytes)",
        esc(tensor)
    )]
    OffsetOutOfBounds {
        /// Tensor name.
        tensor: String,
        /// End offset.
        end: u64,
        /// Length of the data section.
        data_len: u64,
    },
    /// Two tensors share bytes.
    #[error("tensors `{}` and `{}` overlap in the data section", esc(first), esc(second))]
    Overlap {
        /// The tensor that starts first.
        first: String,
        /// The tensor that starts inside it.
        second: String,
    },
    /// dtype size x shape does not match the byte length of the offsets.
    #[error(
        "tensor `{}`: dtype {} x shape {shape:?} needs {expected} bytes but data_offsets span {actual}",
        esc(tensor),
        esc(dtype)
    )]
    ByteLength {
        /// Tensor name.
        tensor: String,
        /// dtype as written.
        dtype: String,
        /// Shape.
        shape: Vec<u64>,
        /// Bytes the dtype and shape need.
        expected: u64,
        /// Bytes the offsets span.
        actual: u64,
    },
    /// The element count overflows 64 bits.
    #[error("tensor `{}`: shape {shape:?} is too large", esc(tensor))]
    ShapeOverflow {
        /// Tensor name.
        tensor: String,
        /// Shape.
        shape: Vec<u64>,
    },
    /// A sharded model's index is malformed or refers to something missing.
    #[error("index: {}", esc(.0))]
    Index(String),
}

/// Everything the adapter can fail with.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// An I/O error on a file.
    #[error("{}: {source}", shown(path))]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A malformed safetensors file or index.
    #[error("{}: {source}", shown(path))]
    Safetensors {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: SafetensorsError,
    },
    /// The model path is neither a safetensors file nor a model directory.
    #[error("{}: {}", shown(path), esc(reason))]
    NotAModel {
        /// The path given.
        path: PathBuf,
        /// Why it was not accepted.
        reason: String,
    },
    /// An invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An unreadable or unusable calibration file (the message names it and the layer).
    #[error(transparent)]
    Calibration(#[from] crate::features::calibration::CalibrationError),
    /// Mixed precision cannot meet the request (for example a budget below the
    /// cheapest assignment).
    #[error("{}: mixed precision: {}", shown(path), esc(reason))]
    MixedPrecision {
        /// The model.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// Quantizing or decoding a tensor failed (for example a NaN in the weights).
    #[error("{}: tensor `{}`: {source}", shown(path), esc(tensor))]
    Quant {
        /// The file the tensor comes from.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The core error.
        #[source]
        source: QuantError,
    },
    /// `fail_fast` is on and a tensor's cosine is below `min_accuracy`.
    #[error(
        "tensor `{}`: cosine {cosine:.6} at {bits} bits is below min_accuracy {min_accuracy} (fail_fast is on)",
        esc(tensor)
    )]
    BelowAccuracy {
        /// The tensor.
        tensor: String,
        /// Its cosine similarity.
        cosine: f64,
        /// The bit width tried.
        bits: u32,
        /// The threshold.
        min_accuracy: f64,
    },
    /// A malformed GGUF file, or one this tool cannot convert.
    #[error("{}: GGUF: {}", shown(path), esc(message))]
    Gguf {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the tensor or key.
        message: String,
    },
    /// A Parquet or Arrow error while writing or reading our file.
    #[error("{}: parquet: {}", shown(path), esc(message))]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The underlying message.
        message: String,
    },
    /// A Parquet file that is not a valid ArrowQuant file (missing columns, bad rows, ...).
    #[error("{}: not a valid ArrowQuant file: {}", shown(path), esc(reason))]
    BadQuantizedFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A tensor name that is not in the file.
    #[error("{}: no tensor named `{}`", shown(path), esc(tensor))]
    NoSuchTensor {
        /// The file.
        path: PathBuf,
        /// The name asked for.
        tensor: String,
    },
    /// An Arrow record batch without the expected columns (batch API).
    #[error("record batch column `{}`: {}", esc(column), esc(problem))]
    BatchSchema {
        /// The offending column.
        column: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The output path names something a run must not replace: a file the run reads
    /// (the same file, through a symlink or a hard link), or an existing path that is not
    /// a regular file (a symlink, FIFO, device, directory).
    #[error("{}: refusing to write the output there: {}", shown(path), esc(reason))]
    OutputRefused {
        /// The output path.
        path: PathBuf,
        /// Why, naming the input it would destroy.
        reason: String,
    },
    /// Memory for a buffer could not be reserved.
    #[error("{}: cannot allocate {bytes} bytes for {}", shown(path), esc(what))]
    OutOfMemory {
        /// The file being read or written.
        path: PathBuf,
        /// What the buffer was for.
        what: String,
        /// Bytes asked for.
        bytes: u64,
    },
    /// A mapped input is shorter than the range being read (truncated or rewritten
    /// while the run reads it).
    #[error(
        "{}: the file shrank to {len} bytes while it was read (byte {needed} needed); is a copy still in progress?",
        shown(path)
    )]
    Shrunk {
        /// The input file.
        path: PathBuf,
        /// Its length now.
        len: u64,
        /// The end of the range being read.
        needed: u64,
    },
    /// A Hugging Face model folder that cannot be converted to a llama.cpp GGUF: `path`
    /// is the file at fault (`config.json`, `tokenizer.json`, a shard), `problem` names
    /// the key or tensor and what is wrong.
    #[error("{}: {}", shown(path), esc(problem))]
    Convert {
        /// The file at fault.
        path: PathBuf,
        /// The key or tensor and the problem.
        problem: String,
    },
    /// Original and quantized files do not describe the same tensors (validation).
    #[error("{}: tensor `{}`: {}", shown(path), esc(tensor), esc(problem))]
    Mismatch {
        /// The quantized file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What differs.
        problem: String,
    },
    /// A tensor of a valid file that the requested output format cannot hold as stored.
    #[error("{}: tensor `{}` cannot be written to {format}: {}", shown(path), esc(tensor), esc(reason))]
    NotConvertible {
        /// The input file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The output format.
        format: &'static str,
        /// Why, and what to do instead.
        reason: String,
    },
}

/// Shorthand for results of this crate.
pub type Result<T, E = AdapterError> = std::result::Result<T, E>;

impl AdapterError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AdapterError::Io { path: path.into(), source }
    }

    pub(crate) fn parquet(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        AdapterError::Parquet { path: path.into(), message: e.to_string() }
    }

    pub(crate) fn convert(path: impl Into<PathBuf>, problem: impl Into<String>) -> Self {
        AdapterError::Convert { path: path.into(), problem: problem.into() }
    }

    pub(crate) fn bad_file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        AdapterError::BadQuantizedFile { path: path.into(), reason: reason.into() }
    }
}

/// Text from a file (a shard name in an index.json, a path built from it) as it
/// appears in an error: control characters are escaped (`\n`), so every error stays on
/// one line whatever the input holds.
pub(crate) fn escape_controls(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
            .collect(),
    )
}

/// A path in an error message: [`Path::display`] with control characters escaped.
pub(crate) struct Shown<'a>(&'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(&self.0.to_string_lossy()))
    }
}

/// Free text in an error message (a tensor name, a dtype, a message of the parquet
/// crate, which may quote a field name read from a corrupt file) with control
/// characters escaped. Every text field is shown through it, so a message is one line
/// whichever constructor built it.
pub(crate) struct Escaped<'a>(&'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape_controls(self.0))
    }
}

/// See [`Escaped`].
pub(crate) fn esc(s: &str) -> Escaped<'_> {
    Escaped(s)
}

/// See [`Shown`].
pub(crate) fn shown(path: &Path) -> Shown<'_> {
    Shown(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_field_is_shown_on_one_line() {
        let p = Path::new("/m/q\n.parquet");
        let errors = [
            AdapterError::parquet(p, "expected field named a\nb got c"),
            AdapterError::bad_file(p, "row\r\n2"),
            AdapterError::NoSuchTensor { path: p.into(), tensor: "t\n".into() },
            AdapterError::Mismatch { path: p.into(), tensor: "t\u{7}".into(), problem: "x\ny".into() },
            AdapterError::NotConvertible {
                path: p.into(),
                tensor: "t\n".into(),
                format: "GGUF",
                reason: "r\n".into(),
            },
            AdapterError::BatchSchema { column: "c\n".into(), problem: "p\n".into() },
            AdapterError::Safetensors {
                path: p.into(),
                source: SafetensorsError::DuplicateTensor("a\nb".into()),
            },
            AdapterError::Safetensors {
                path: p.into(),
                source: SafetensorsError::UnknownDtype { tensor: "a\n".into(), dtype: "F\n".into() },
            },
        ];
        for e in &errors {
            let msg = e.to_string();
            assert!(!msg.chars().any(char::is_control), "{msg:?}");
        }
        assert_eq!(errors[0].to_string(), "/m/q\\n.parquet: parquet: expected field named a\\nb got c");
        // Escaping is idempotent: an already escaped index message is shown as is.
        let once = escape_controls("a\nb").into_owned();
        assert_eq!(esc(&once).to_string(), once);
    }
}
