//! Crash-safe output files: write to a temporary file in the target directory, fsync,
//! then rename over the final name.
//!
//! Until [`AtomicFile::commit`] succeeds nothing exists under the final name; a
//! dropped (uncommitted) file removes its temporary. The temporary is registered
//! with [`super::temp_files`], so a signal handler can remove it too; a process killed
//! outright (SIGKILL) leaves a `.NAME.tmp-PID-*` file, which the next run writing
//! `NAME` removes once process PID is gone.
//!
//! The final path must not be anything but a regular file: [`AtomicFile::create`]
//! refuses a symlink, FIFO, device or directory there, and [`AtomicFile::commit`]
//! checks again before its rename ([`super::output_guard`]).
//!
//! # `-` is standard output
//!
//! The path `-` ([`STDOUT`]) streams to standard output instead (write `./-` for a
//! file of that name). Every writer of ours writes sequentially, so the bytes are the
//! same; but a stream cannot be taken back: a run that fails half-way has already
//! sent a partial file, which every reader refuses (a Parquet file without its
//! footer, a safetensors or GGUF file shorter than its header says).
//!
//! # Writeback while writing
//!
//! The [`Writeback`] handle that [`AtomicFile::writer`] returns asks the kernel to
//! start writing each [`WRITEBACK_BYTES`] to disk as soon as they are written, and
//! waits for the range before that to be on disk. Without it, Linux keeps gigabytes
//! of dirty pages (up to `dirty_background_ratio` of RAM) and the final fsync waits
//! for all of them at once; with it, the disk works alongside the quantizer, dirty
//! page cache stays within two ranges (it counts against a cgroup's memory limit),
//! and the commit's fsync finds little left to do.
//!
//! Each range that is on disk is then dropped from the page cache
//! (`posix_fadvise(DONTNEED)`), so the output's cached pages stay within the same two
//! ranges: a 3 GB output on a 2 GB board does not push everything else out of memory,
//! and the next range is written into pages the kernel has just freed. Reading the
//! output afterwards (`validate`, `inspect`) reads it from disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::container::output_guard;
use crate::container::temp_files::{self, Registered};
use crate::error::{AdapterError, Result};

/// The output path that means standard output.
pub const STDOUT: &str = "-";

/// Whether `dest` is [`STDOUT`].
pub fn is_stdout(dest: &Path) -> bool {
    dest.as_os_str() == STDOUT
}

/// A file being written under a temporary name.
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    /// Keeps `tmp` in the signal handler's table while it exists.
    _registered: Registered,
}

impl AtomicFile {
    /// [`AtomicFile::create`] after checking that `dest` is none of `reads`, the files
    /// the run reads ([`output_guard::check_output`]).
    ///
    /// # Errors
    /// [`AdapterError::OutputRefused`], or as [`AtomicFile::create`].
    pub fn create_reading(dest: &Path, reads: &[PathBuf]) -> Result<Self> {
        output_guard::check_output(dest, reads)?;
        Self::create(dest)
    }

    /// Creates a temporary file next to `dest`, after removing the temporary files of
    /// dead runs for the same `dest` ([`temp_files::remove_stale`]).
    ///
    /// # Errors
    /// [`AdapterError::OutputRefused`] if `dest` exists and is not a regular file;
    /// [`AdapterError::Io`] naming `dest` (for example a missing directory).
    pub fn create(dest: &Path) -> Result<Self> {
        if is_stdout(dest) {
            return Self::stdout();
        }
        let name = dest
            .file_name()
            .ok_or_else(|| AdapterError::io(dest, io::Error::other("output path has no file name")))?;
        output_guard::check_output(dest, &[])?;
        temp_files::remove_stale(dest);
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for attempt in 0..100u32 {
            let tmp = dir.join(format!(
                "{}{}-{:x}-{attempt}",
                temp_files::tmp_prefix(&name.to_string_lossy()),
                std::process::id(),
                nanos & 0xffff_ffff
            ));
            // Registered before it exists: a signal between the creation and the
            // registration would leave it behind (seen under qemu-user, where that
            // window is long). Removing a name that does not exist yet is harmless;
            // the name carries our pid, so an existing one is ours or a dead run's.
            let registered = temp_files::register(&tmp);
            match OpenOptions::new().write(true).create_new(true).open(&tmp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        file: Some(file),
                        tmp,
                        dest: dest.to_path_buf(),
                        _registered: registered,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    drop(registered);
                    continue;
                }
                Err(e) => return Err(AdapterError::io(dest, e)),
            }
        }
        Err(AdapterError::io(dest, io::Error::other("could not pick a temporary file name")))
    }

    /// Standard output: written in place, nothing to rename (module docs).
    fn stdout() -> Result<Self> {
        let dest = PathBuf::from(STDOUT);
        let file = stdout_file().map_err(|e| AdapterError::io(&dest, e))?;
        Ok(AtomicFile {
            file: Some(file),
            tmp: PathBuf::new(),
            dest,
            _registered: temp_files::unregistered(),
        })
    }

    /// The final path.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// The temporary path being written.
    pub fn tmp_path(&self) -> &Path {
        &self.tmp
    }

    /// A handle to the temporary file for writing (from its start), which starts the
    /// writeback of what it writes as it goes (module docs).
    ///
    /// # Errors
    /// [`AdapterError::Io`] if the handle cannot be duplicated.
    pub fn writer(&self) -> Result<Writeback> {
        match &self.file {
            Some(f) => f.try_clone().map(Writeback::new).map_err(|e| AdapterError::io(&self.dest, e)),
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
        if is_stdout(&self.dest) {
            // A pipe cannot be synced; there is nothing to rename.
            let mut f = file;
            return f.flush().map_err(|e| AdapterError::io(&self.dest, e));
        }
        // The path may have become a symlink or FIFO while the output was written.
        if let Ok(meta) = std::fs::symlink_metadata(&self.dest) {
            output_guard::refuse_non_regular(&self.dest, &meta)?;
        }
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

/// A handle to standard output that writes through the same descriptor.
#[cfg(unix)]
fn stdout_file() -> io::Result<File> {
    use std::os::fd::AsFd;
    Ok(File::from(io::stdout().as_fd().try_clone_to_owned()?))
}

#[cfg(windows)]
fn stdout_file() -> io::Result<File> {
    use std::os::windows::io::AsHandle;
    Ok(File::from(io::stdout().as_handle().try_clone_to_owned()?))
}

/// What standard output is (for [`output_guard`]'s check against the inputs).
pub(crate) fn stdout_metadata() -> io::Result<std::fs::Metadata> {
    stdout_file()?.metadata()
}

/// Bytes per writeback range (see the module docs): large enough that the calls cost
/// nothing next to the writes, small enough to bound the dirty pages.
pub const WRITEBACK_BYTES: u64 = 8 << 20;

/// A file written sequentially from offset 0 whose pages are sent to disk range by
/// range as they are written (Linux `sync_file_range`; elsewhere a plain file).
///
/// The calls are advice: an error from them (a filesystem without support) is
/// ignored, and the commit's fsync still reports any real write error.
#[derive(Debug)]
pub struct Writeback {
    file: File,
    /// Bytes written so far.
    written: u64,
    /// End of the last range handed to the kernel.
    started: u64,
}

impl Writeback {
    fn new(file: File) -> Self {
        Writeback { file, written: 0, started: 0 }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Starts writeback of every whole range written since the last call, after
    /// waiting for the range before them and dropping that one from the page cache.
    fn advance(&mut self) {
        while self.written - self.started >= WRITEBACK_BYTES {
            let range = self.started;
            if range >= WRITEBACK_BYTES {
                sync_range(&self.file, range - WRITEBACK_BYTES, WRITEBACK_BYTES, true);
                drop_cached(&self.file, range - WRITEBACK_BYTES, WRITEBACK_BYTES);
            }
            sync_range(&self.file, range, WRITEBACK_BYTES, false);
            self.started += WRITEBACK_BYTES;
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        self.advance();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Starts writing `offset .. offset + len` of `file` to disk; with `wait`, waits until
/// that range is on disk instead.
#[cfg(target_os = "linux")]
fn sync_range(file: &File, offset: u64, len: u64, wait: bool) {
    use std::os::fd::AsRawFd;
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    let (Ok(offset), Ok(len)) = (libc::off64_t::try_from(offset), libc::off64_t::try_from(len)) else {
        return;
    };
    // SAFETY: `sync_file_range` only reads its arguments; the descriptor belongs to
    // `file`, which outlives the call. The result is advice and deliberately ignored.
    let _ = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
}

#[cfg(not(target_os = "linux"))]
fn sync_range(_file: &File, _offset: u64, _len: u64, _wait: bool) {}

/// Drops `offset .. offset + len` of `file`, already on disk, from the page cache.
#[cfg(target_os = "linux")]
fn drop_cached(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: `posix_fadvise` only reads its arguments; the descriptor belongs to
    // `file`, which outlives the call. The result is advice and deliberately ignored.
    let _ = unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED) };
}

#[cfg(not(target_os = "linux"))]
fn drop_cached(_file: &File, _offset: u64, _len: u64) {}

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

    #[test]
    fn writeback_writes_every_byte_through_range_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.bin");
        let a = AtomicFile::create(&dest).unwrap();
        let mut w = a.writer().unwrap();
        // Pieces of odd sizes cross several range boundaries at odd offsets.
        let piece: Vec<u8> = (0..1_000_003u32).map(|i| (i % 253) as u8).collect();
        let total = 3 * WRITEBACK_BYTES as usize + 12_345;
        let mut want = Vec::with_capacity(total);
        while want.len() < total {
            let n = piece.len().min(total - want.len());
            w.write_all(&piece[..n]).unwrap();
            want.extend_from_slice(&piece[..n]);
        }
        assert_eq!(w.started, 3 * WRITEBACK_BYTES, "every whole range was handed to the kernel");
        drop(w);
        a.commit().unwrap();
        assert!(std::fs::read(&dest).unwrap() == want);
    }

    /// Pages of `path` in `offset .. offset + len` that are in the page cache.
    #[cfg(target_os = "linux")]
    fn resident_pages(path: &Path, offset: u64, len: usize) -> usize {
        let f = File::open(path).unwrap();
        // SAFETY: read-only mapping of a file this test owns and no longer writes.
        let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).map(&f) }.unwrap();
        let page = 4096;
        let mut vec = vec![0u8; len.div_ceil(page)];
        // SAFETY: `map` is a live mapping of `len` bytes at a page-aligned address and
        // `vec` has one byte per 4 KiB page of it (pages are at least 4 KiB).
        let r = unsafe { libc::mincore(map.as_ptr() as *mut libc::c_void, len, vec.as_mut_ptr()) };
        assert_eq!(r, 0, "mincore: {}", io::Error::last_os_error());
        vec.iter().filter(|&&b| b & 1 == 1).count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn ranges_on_disk_leave_the_page_cache() {
        // Written-back output is dropped from the page cache, so writing a file far
        // larger than memory does not fill it (it counts against a cgroup's limit).
        // In the source tree, not /tmp: a tmpfs keeps its pages whatever the advice.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let dest = dir.path().join("big.bin");
        let a = AtomicFile::create(&dest).unwrap();
        let mut w = a.writer().unwrap();
        let piece = vec![0x5au8; 1 << 20];
        for _ in 0..4 * (WRITEBACK_BYTES >> 20) {
            w.write_all(&piece).unwrap();
        }
        drop(w);
        let tmp = a.tmp_path().to_path_buf();
        let r = WRITEBACK_BYTES as usize;
        // Ranges 0-2 were waited for (when ranges 1-3 were started) and dropped; the
        // last range was only just written.
        let (first, last) = (resident_pages(&tmp, 0, 3 * r), resident_pages(&tmp, 3 * WRITEBACK_BYTES, r));
        assert_eq!(last, r / 4096, "the range just written is still cached");
        assert!(first <= 3 * r / 4096 / 100, "{first} pages of the first three ranges still cached");
        a.commit().unwrap();
        assert_eq!(std::fs::metadata(&dest).unwrap().len(), 4 * WRITEBACK_BYTES);
    }
}
