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
