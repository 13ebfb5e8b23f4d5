//! Crash-safe output files: write to a temporary file in the target directory, fsync,
//! then rename over the final name.
//!
//! Until [`AtomicFile::commit`] succeeds nothing exists under the final name; a
//! dropped (uncommitted) file removes its temporary. A process killed mid-write
//! leaves only a `.NAME.tmp-*` file, which a later run ignores (each run picks a new
//! temporary name).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{AdapterError, Result};

/// A file being written under a temporary name.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates a temporary file next to `dest`.
    ///
    /// # Errors
    /// [`AdapterError::Io`] naming `dest` (for example a missing directory).
    pub fn create(dest: &Path) -> Result<Self> {
        let name = dest
            .file_name()
            .ok_or_else(|| AdapterError::io(dest, io::Error::other("output path has no file name")))?;
        if dest.is_dir() {
            return Err(AdapterError::io(dest, io::Error::other("output path is a directory")));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for attempt in 0..100u32 {
            let tmp = dir.join(format!(
                ".{}.tmp-{}-{:x}-{attempt}",
                name.to_string_lossy(),
                std::process::id(),
                nanos & 0xffff_ffff
            ));
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => return Ok(AtomicFile { file: Some(file), tmp, dest: dest.to_path_buf() }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(AdapterError::io(dest, e)),
            }
        }
        Err(AdapterError::io(dest, io::Error::other("could not pick a temporary file name")))
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// A handle to the temporary file for writing.
    ///
    /// # Errors
    /// [`AdapterError::Io`] if the handle cannot be duplicated.
    pub fn writer(&self) -> Result<File> {
        match &self.file {
            Some(f) => f.try_clone().map_err(|e| AdapterError::io(&self.dest, e)),
            None => Err(AdapterError::io(&self.dest, io::Error::other("file already committed"))),
        }
    }

    /// Flushes to disk and renames the temporary file to the final name.
    ///
    /// # Errors
    /// [`AdapterError::Io`]; the temporary file is removed.
    pub fn commit(mut self) -> Result<()> {
        let file =
            self.file.take().ok_or_else(|| AdapterError::io(&self.dest, io::Error::other("no file")))?;
        let res = (|| {
            let mut f = file;
            f.flush()?;
            f.sync_all()?;
            drop(f);
            std::fs::rename(&self.tmp, &self.dest)?;
            // Persist the rename itself; not every filesystem supports syncing a directory.
            if let Some(dir) = self.dest.parent().filter(|p| !p.as_os_str().is_empty())
                && let Ok(d) = File::open(dir)
            {
                let _ = d.sync_all();
            }
            Ok::<(), io::Error>(())
        })();
        match res {
            Ok(()) => {
                self.tmp = PathBuf::new();
                Ok(())
            }
            Err(e) => Err(AdapterError::io(&self.dest, e)),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            self.file = None;
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_under_the_final_name_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.bin");
        let a = AtomicFile::create(&dest).unwrap();
        a.writer().unwrap().write_all(b"hello").unwrap();
        assert!(!dest.exists());
        let tmp = a.tmp_path().to_path_buf();
        drop(a);
        assert!(!dest.exists() && !tmp.exists(), "dropped file leaves nothing");
        let a = AtomicFile::create(&dest).unwrap();
        a.writer().unwrap().write_all(b"hello").unwrap();
        a.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"hello");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
