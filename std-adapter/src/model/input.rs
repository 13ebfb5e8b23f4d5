//! Opening an input file without blocking and only if it is a regular file.
//!
//! A named pipe given as the model (or as a shard, a config or calibration file) would
//! block `open(2)` until a writer appears, and reading a device or a pipe has no end
//! we can plan for. So inputs are opened with `O_NONBLOCK` (which `open(2)` ignores for
//! regular files) and refused unless `fstat` says they are regular files: one check on
//! the opened descriptor, so nothing can be swapped in between.

use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symlinks are followed).
///
/// # Errors
/// The `open(2)` error, or [`io::ErrorKind::InvalidInput`] saying what the path is
/// instead ("a named pipe", "a directory", ...).
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.read(true);
    // libc is a dependency on Linux only (std-adapter/Cargo.toml); elsewhere the
    // type check below still refuses a pipe, after `open` returns.
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(libc::O_NONBLOCK);
    }
    let f = o.open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(not_regular(&meta));
    }
    Ok(f)
}

/// Reads a whole regular file (the `std::fs::read` of inputs).
///
/// # Errors
/// As [`open_regular`], or the read error.
pub(crate) fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut f = open_regular(path)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// The error for a path that exists but is not a regular file.
fn not_regular(meta: &Metadata) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, format!("is {}, not a regular file", kind_of(meta)))
}

fn kind_of(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_named_pipe_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fifo");
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = open_regular(&p).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
        let e = open_regular(dir.path()).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert_eq!(read_regular(&dir.path().join("f")).unwrap(), b"x");
    }
}

/// What a file is, from its first bytes: the formats users hand us by mistake, so an
/// error can say what the file is and what to do instead of failing inside a parser
/// ("header length 8232897251721224738 bytes exceeds the limit").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// Parquet (`PAR1`): our quantized output, or another tool's table.
    Parquet,
    /// GGUF (`GGUF`).
    Gguf,
    /// llama.cpp's files from before GGUF (GGML, GGMF, GGJT: `lmgg`, `fmgg`, `tjgg` on
    /// disk, or the magic spelled out).
    LegacyGgml,
    /// ArrowQuant's device format (`AQDV`).
    Device,
    /// A zip archive (`PK\x03\x04`): how PyTorch saves `.pt`/`.bin` checkpoints.
    Zip,
    /// A Python pickle (protocol 2-5): older PyTorch checkpoints.
    Pickle,
    /// A NumPy `.npy` array.
    Npy,
    /// Safetensors: an 8-byte header length, then the JSON header's `{`.
    Safetensors,
    /// Anything else.
    Other,
}

impl FileKind {
    /// The kind of a file starting with `head` (the first 9 bytes or fewer).
    pub fn of(head: &[u8]) -> FileKind {
        match head {
            // First: a header length can begin with any byte (0x80 0x02 is a length of
            // 640), but a magic is never followed by `{` at byte 8.
            [_, _, _, _, _, _, _, _, b'{', ..] => FileKind::Safetensors,
            [b'P', b'A', b'R', b'1', ..] => FileKind::Parquet,
            [b'G', b'G', b'U', b'F', ..] => FileKind::Gguf,
            [b'l', b'm', b'g', b'g', ..]
            | [b'f', b'm', b'g', b'g', ..]
            | [b't', b'j', b'g', b'g', ..]
            | [b'G', b'G', b'M', b'L', ..]
            | [b'G', b'G', b'J', b'T', ..] => FileKind::LegacyGgml,
            [b'A', b'Q', b'D', b'V', ..] => FileKind::Device,
            [b'P', b'K', 3, 4, ..] => FileKind::Zip,
            [0x80, 2..=5, ..] => FileKind::Pickle,
            [0x93, b'N', b'U', b'M', b'P', b'Y', ..] => FileKind::Npy,
            _ => FileKind::Other,
        }
    }

    /// Reads the first bytes of `path` (a regular file) and tells its kind.
    ///
    /// # Errors
    /// As [`open_regular`], or the read error.
    pub fn sniff(path: &Path) -> io::Result<FileKind> {
        use std::io::Read;
        let mut head = [0u8; 9];
        let mut f = open_regular(path)?;
        let mut n = 0;
        while n < head.len() {
            match f.read(&mut head[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(FileKind::of(&head[..n]))
    }

    /// Why a file of this kind is not an ArrowQuant Parquet file and what to do instead
    /// (None for Parquet).
    pub fn not_quantized(self) -> Option<&'static str> {
        Some(match self {
            FileKind::Parquet => return None,
            FileKind::Safetensors => {
                "this is a safetensors model, not a quantized Parquet file: quantize it with `arrowquant quantize` \
                 (`validate` takes the original model first, then the quantized file)"
            }
            other => other.not_a_model().unwrap_or("not a Parquet file (it does not start with `PAR1`)"),
        })
    }

    /// Why a file of this kind is not a safetensors model and what to do instead (None
    /// for [`FileKind::Other`]).
    pub fn not_a_model(self) -> Option<&'static str> {
        Some(match self {
            FileKind::Parquet => {
                "this is a Parquet file (ArrowQuant's quantized output), not a safetensors model: \
                 use `arrowquant dequantize` or `inspect` on it, or give it as the second file of `validate`"
            }
            FileKind::Gguf => {
                "this is a GGUF file, not safetensors: GGUF input is read by `quantize --format gguf`"
            }
            FileKind::Device => {
                "this is an ArrowQuant device file, not a model: read it with `arrowquant inspect`"
            }
            FileKind::LegacyGgml => {
                "this is a GGML/GGJT file, llama.cpp's format from before GGUF (2023): convert it to GGUF with \
                 llama.cpp's `convert_llama_ggml_to_gguf.py`, or quantize the original Hugging Face folder"
            }
            FileKind::Zip | FileKind::Pickle => {
                "this is a PyTorch checkpoint (zip or pickle), not safetensors: convert it first, e.g. in Python \
                 `safetensors.torch.save_file(torch.load(path), \"model.safetensors\")`"
            }
            FileKind::Npy => {
                "this is a NumPy .npy array, not safetensors: save it with `safetensors.numpy.save_file`"
            }
            FileKind::Safetensors | FileKind::Other => return None,
        })
    }
}

#[cfg(test)]
mod kind_tests {
    use super::FileKind;

    #[test]
    fn magics_are_recognized() {
        assert_eq!(FileKind::of(b"PAR1\x15\x04"), FileKind::Parquet);
        assert_eq!(FileKind::of(b"GGUF\x03\0\0\0"), FileKind::Gguf);
        for m in [&b"lmgg"[..], b"tjgg", b"fmgg", b"GGML", b"GGJT"] {
            assert_eq!(FileKind::of(m), FileKind::LegacyGgml, "{m:?}");
        }
        assert_eq!(FileKind::of(b"PK\x03\x04"), FileKind::Zip);
        assert_eq!(FileKind::of(&[0x80, 0x02, b'}']), FileKind::Pickle);
        assert_eq!(FileKind::of(b"\x93NUMPY\x01\0"), FileKind::Npy);
        assert_eq!(FileKind::of(&[0x40, 0, 0, 0, 0, 0, 0, 0, b'{']), FileKind::Safetensors);
        assert_eq!(FileKind::of(&[0x40, 0, 0, 0, 0, 0, 0, 0]), FileKind::Other);
        assert_eq!(FileKind::of(b""), FileKind::Other);
        // A safetensors header of 640 bytes starts like a pickle.
        assert_eq!(FileKind::of(&[0x80, 2, 0, 0, 0, 0, 0, 0, b'{']), FileKind::Safetensors);
        assert!(FileKind::Parquet.not_a_model().unwrap().contains("arrowquant dequantize"));
    }
}
