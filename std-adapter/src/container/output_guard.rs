//! What an output path may name: never a file the run reads, never an existing
//! path that is not a regular file.
//!
//! Every output is written under a temporary name and renamed over the final path
//! ([`super::atomic`]). A rename replaces whatever the path names, so without this
//! check `-o model.safetensors.index.json` would destroy the index of the model being
//! quantized, `dequantize q.parquet -o q.parquet` the only copy of the quantized
//! model, and `-o /dev/null` (as root) the system's device node. Both checks compare
//! what the paths *are* (device and inode on Unix), not how they are spelled, so a
//! hard link or a symlink to an input is caught too.
//!
//! The check runs before anything is created, and [`super::atomic::AtomicFile`]
//! repeats the kind check just before its rename (the path may have changed while the
//! output was written).

use std::fs::Metadata;
use std::path::{Path, PathBuf};

use crate::error::{AdapterError, Result};

/// Refuses `dest` if it is (or is a link to) one of `reads`, or exists and is not a
/// regular file. Inputs that do not exist are ignored (nothing to destroy).
///
/// # Errors
/// [`AdapterError::OutputRefused`] naming the input or the kind of file found.
pub fn check_output(dest: &Path, reads: &[PathBuf]) -> Result<()> {
    if super::atomic::is_stdout(dest) {
        return check_stdout(dest, reads);
    }
    // `symlink_metadata`: a symlink at the output is itself refused, whatever it names.
    let Ok(meta) = std::fs::symlink_metadata(dest) else { return Ok(()) };
    refuse_non_regular(dest, &meta)?;
    for input in reads {
        if std::fs::metadata(input).is_ok_and(|m| same_file(&meta, &m, dest, input)) {
            return Err(AdapterError::OutputRefused {
                path: dest.to_path_buf(),
                reason: format!(
                    "it is {}, which this run reads; choose another output path",
                    input.display()
                ),
            });
        }
    }
    Ok(())
}

/// Standard output may be anything (a pipe, a terminal, a file) but an input:
/// `quantize m.safetensors -o - >> m.safetensors` would append to the model as it is read.
fn check_stdout(dest: &Path, reads: &[PathBuf]) -> Result<()> {
    let Ok(meta) = super::atomic::stdout_metadata() else { return Ok(()) };
    for input in reads {
        if meta.is_file() && std::fs::metadata(input).is_ok_and(|m| same_file(&meta, &m, dest, input)) {
            return Err(AdapterError::OutputRefused {
                path: dest.to_path_buf(),
                reason: format!("standard output is {}, which this run reads", input.display()),
            });
        }
    }
    Ok(())
}

/// Refuses an existing `dest` that is not a regular file.
///
/// # Errors
/// [`AdapterError::OutputRefused`].
pub fn refuse_non_regular(dest: &Path, meta: &Metadata) -> Result<()> {
    match kind_of(meta) {
        None => Ok(()),
        Some(kind) => Err(AdapterError::OutputRefused {
            path: dest.to_path_buf(),
            reason: format!("it is {kind}, not a regular file, and would be replaced by one"),
        }),
    }
}

/// What `meta` describes, if not a regular file.
fn kind_of(meta: &Metadata) -> Option<&'static str> {
    let t = meta.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_symlink() {
        return Some("a symbolic link");
    }
    if t.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a named pipe (FIFO)");
        }
        if t.is_char_device() || t.is_block_device() {
            return Some("a device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

#[cfg(unix)]
fn same_file(a: &Metadata, b: &Metadata, _pa: &Path, _pb: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    a.dev() == b.dev() && a.ino() == b.ino()
}

/// Without inode numbers, resolved paths: catches the same file and symlinks to it
/// (hard links are a Unix matter here).
#[cfg(not(unix))]
fn same_file(_a: &Metadata, _b: &Metadata, pa: &Path, pb: &Path) -> bool {
    matches!((std::fs::canonicalize(pa), std::fs::canonicalize(pb)), (Ok(x), Ok(y)) if x == y)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn same_file_by_any_name_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.bin");
        std::fs::write(&input, b"x").unwrap();
        let link = dir.path().join("hard.bin");
        std::fs::hard_link(&input, &link).unwrap();
        let other = dir.path().join("other.bin");
        std::fs::write(&other, b"y").unwrap();
        let reads = [input.clone()];
        for dest in [&input, &link] {
            let e = check_output(dest, &reads).unwrap_err().to_string();
            assert!(e.contains("which this run reads") && e.contains("in.bin"), "{e}");
        }
        check_output(&other, &reads).unwrap();
        check_output(&dir.path().join("new.bin"), &reads).unwrap();
        let sym = dir.path().join("sym.bin");
        std::os::unix::fs::symlink(&other, &sym).unwrap();
        let e = check_output(&sym, &reads).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = check_output(dir.path(), &reads).unwrap_err().to_string();
        assert!(e.contains("directory"), "{e}");
    }
}
