//! GGUF input: the header of a (possibly many-gigabyte) GGUF file parsed through a
//! growing window at the start of the file, the tensor data read later through
//! [`crate::window`] like safetensors data.
//!
//! The header is parsed by [`arrowquant_core::gguf::parse`], which answers `NeedMore`
//! when the window ends inside it: the window then grows to `max(needed, 2 * window)`,
//! so a header of `h` bytes takes `O(log h)` attempts and at most `2 h` bytes of
//! memory. Everything the core parser refuses (bad magic or version, truncation,
//! absurd counts, out-of-bounds or overlapping data, unknown types, non-UTF-8 keys)
//! becomes [`AdapterError::Gguf`] naming the file and the key or tensor.

use std::path::{Path, PathBuf};

use arrowquant_core::gguf::{self, GgufHeader, Parsed};

use crate::error::{AdapterError, Result};
use crate::model::window::WindowReader;

/// The first window mapped to parse a header (grown as needed).
const FIRST_WINDOW: u64 = 1 << 20;

/// True if the file at `path` starts with the GGUF magic (`GGUF`).
pub fn is_gguf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    super::input::open_regular(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok()
        && magic == gguf::MAGIC
}

/// An opened GGUF file: its validated header and length.
#[derive(Debug)]
pub struct GgufModel {
    /// The file.
    pub path: PathBuf,
    /// The parsed header (metadata in file order, tensor infos with their data ranges).
    pub header: GgufHeader,
    /// The file length in bytes.
    pub file_len: u64,
}

impl GgufModel {
    /// Opens `path` and parses its header through a growing window.
    ///
    /// # Errors
    /// [`AdapterError::Io`], or [`AdapterError::Gguf`] for a malformed header.
    pub fn open(path: impl AsRef<Path>) -> Result<GgufModel> {
        let path = path.as_ref();
        let file_len = super::input::open_regular(path)
            .and_then(|f| f.metadata())
            .map_err(|e| AdapterError::io(path, e))?
            .len();
        let reader = WindowReader::open(path)?;
        let mut window = FIRST_WINDOW.min(file_len);
        let mut buf = Vec::new();
        loop {
            reader.read_range(0, window, &mut buf)?;
            match gguf::parse(&buf, file_len).map_err(|e| gguf_error(path, e))? {
                Parsed::Header(header) => {
                    return Ok(GgufModel { path: path.to_path_buf(), header, file_len });
                }
                Parsed::NeedMore { needed } => {
                    let next = needed.max(window.saturating_mul(2)).min(file_len);
                    if next <= window {
                        // The parser promises `needed <= file_len`; a window already
                        // holding the whole file cannot need more.
                        return Err(AdapterError::Gguf {
                            path: path.to_path_buf(),
                            message: format!("header needs {needed} bytes, file has {file_len}"),
                        });
                    }
                    window = next;
                }
            }
        }
    }
}

/// [`AdapterError::Gguf`] from a core parser error.
pub fn gguf_error(path: &Path, e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Gguf { path: path.to_path_buf(), message: e.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowquant_core::ggml::GgmlType;
    use arrowquant_core::gguf::GgufWriter;
    use std::io::Write;

    #[test]
    fn a_header_larger_than_the_first_window_is_read() {
        let mut w = GgufWriter::new();
        // A 3 MiB string: three doublings of the first window.
        w.push_kv("big", "x".repeat(3 << 20).as_str());
        w.push_tensor("t", &[32, 2], GgmlType::F32).unwrap();
        let layout = w.finish().unwrap();
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(layout.header_bytes()).unwrap();
        f.write_all(&vec![0u8; layout.data_len() as usize]).unwrap();
        let m = GgufModel::open(f.path()).unwrap();
        assert_eq!(m.header.tensors().len(), 1);
        assert!(is_gguf(f.path()));
    }

    #[test]
    fn truncated_files_name_the_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"GGUF\x03\x00\x00\x00\x01").unwrap();
        let e = GgufModel::open(f.path()).unwrap_err().to_string();
        assert!(e.contains(&f.path().display().to_string()), "{e}");
    }
}
