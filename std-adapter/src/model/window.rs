//! Bounded-memory reading of tensor data through short-lived memory maps.
//!
//! A tensor's bytes are visited window by window. Each window is its own mapping
//! (page-aligned start, at most `window_bytes` of data) and is unmapped as soon as
//! the callback returns, so the file-backed pages counted in the process's resident
//! set never exceed one window, whatever the model size. The kernel keeps the pages
//! in its page cache, where they are clean and reclaimable, so a cgroup memory limit
//! reclaims them instead of killing the process.
//!
//! # Safety of mapping
//!
//! Mapping a file is sound only while no one truncates or rewrites it. The adapter
//! maps model files read-only and documents that they must not be modified while
//! being quantized. A file shrunk under us (a copy or download still in progress)
//! would raise SIGBUS, as with every mmap-based reader (safetensors, llama.cpp), so:
//! the file's length is checked before each window is mapped (an ordinary error,
//! [`AdapterError::Shrunk`], for a file that shrank between windows: the common case,
//! and the only one a library can turn into an `Err`), and each mapping is recorded
//! in [`super::mapped`] so that a SIGBUS handler can name the file if it shrinks
//! while a window is being read (the CLI installs one: it removes the temporary files
//! and exits with 2). Both, because neither covers the other's case.
//!
//! # Alignment
//!
//! Element data viewed in place must be aligned for its type. Safetensors files from
//! other writers may hold misaligned tensors; [`with_input`] then copies the window
//! into an aligned scratch buffer of the same bounded size.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrowquant_core::{Dtype, Input, bf16, f16};
use memmap2::MmapOptions;

use crate::error::{AdapterError, Result};

/// An open file whose byte ranges are read window by window.
#[derive(Debug)]
pub struct WindowReader {
    file: File,
    path: PathBuf,
    /// `path` as a leaked C string, for [`super::mapped`] (never freed: a signal
    /// handler may read it at any time).
    c_path: *const std::ffi::c_char,
    page: u64,
}

// SAFETY: `c_path` points to a leaked, immutable C string that lives for the whole
// process; sharing or sending the pointer between threads is sound.
unsafe impl Send for WindowReader {}
// SAFETY: as for `Send`: nothing is ever written through `c_path`.
unsafe impl Sync for WindowReader {}

impl WindowReader {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// [`AdapterError::Io`].
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| AdapterError::io(path, e))?;
        let c_path = std::ffi::CString::new(path.to_string_lossy().into_owned())
            .unwrap_or_else(|_| c"<a path with a NUL byte>".to_owned())
            .into_raw()
            .cast_const();
        Ok(WindowReader { file, path: path.to_path_buf(), c_path, page: page_size() })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Visits bytes `offset .. offset + len` in windows of at most `window_bytes`
    /// (rounded down to a multiple of `unit`, at least one `unit`). `f` receives the
    /// position of the window relative to `offset` and its bytes; each window is
    /// unmapped when `f` returns.
    ///
    /// # Errors
    /// [`AdapterError::Io`] if mapping fails, or the callback's error.
    pub fn for_each_window(
        &self,
        offset: u64,
        len: u64,
        window_bytes: u64,
        unit: u64,
        mut f: impl FnMut(u64, &[u8]) -> Result<()>,
    ) -> Result<()> {
        let unit = unit.max(1);
        let step = (window_bytes / unit).max(1) * unit;
        let mut pos = 0u64;
        while pos < len {
            let n = step.min(len - pos);
            let start = offset + pos;
            let aligned = start - start % self.page;
            let lead = (start - aligned) as usize;
            let map_len = usize::try_from(n).map_err(|_| self.too_big())? + lead;
            self.check_length(start + n)?;
            // SAFETY: the mapping is read-only and lives only for this iteration; the
            // module docs state the obligation that model files are not modified while
            // being read. The range lies inside the file (checked by the header parser,
            // and against the file's current length just above).
            let map = unsafe { MmapOptions::new().offset(aligned).len(map_len).populate().map(&self.file) }
                .map_err(|e| AdapterError::io(&self.path, e))?;
            let recorded = super::mapped::record(map.as_ptr(), map.len(), self.c_path);
            f(pos, &map[lead..])?;
            drop(recorded);
            drop(map);
            pos += n;
        }
        Ok(())
    }

    /// Reads bytes `offset .. offset + len` into `out` (cleared first) through one mapping.
    ///
    /// # Errors
    /// [`AdapterError::Io`].
    pub fn read_range(&self, offset: u64, len: u64, out: &mut Vec<u8>) -> Result<()> {
        out.clear();
        self.for_each_window(offset, len, len.max(1), 1, |_, b| {
            out.extend_from_slice(b);
            Ok(())
        })
    }

    /// Fails with [`AdapterError::Shrunk`] if the file now ends before `needed`.
    fn check_length(&self, needed: u64) -> Result<()> {
        let len = self.file.metadata().map_err(|e| AdapterError::io(&self.path, e))?.len();
        if len < needed {
            return Err(AdapterError::Shrunk { path: self.path.clone(), len, needed });
        }
        Ok(())
    }

    fn too_big(&self) -> AdapterError {
        AdapterError::io(&self.path, std::io::Error::other("window larger than the address space"))
    }
}

fn page_size() -> u64 {
    // Every Linux page size we target (4, 16 or 64 KiB) divides 64 KiB, so aligning
    // mapping offsets to 64 KiB is always valid without asking the OS.
    64 * 1024
}

/// An aligned scratch buffer for misaligned element data.
#[derive(Debug, Default)]
pub struct AlignedScratch {
    words: Vec<u32>,
}

/// Views little-endian `bytes` as elements of `dtype`, copying into `scratch` only if
/// they are misaligned, and calls `f` with the view.
///
/// # Errors
/// The callback's error. `bytes.len()` must be a multiple of the element size (the
/// caller's windows guarantee it); otherwise the trailing bytes are ignored.
pub fn with_input<R>(
    dtype: Dtype,
    bytes: &[u8],
    scratch: &mut AlignedScratch,
    f: impl FnOnce(Input<'_>) -> R,
) -> R {
    let whole = bytes.len() / dtype.size() * dtype.size();
    let bytes = &bytes[..whole];
    if let Ok(input) = Input::from_le_bytes(dtype, bytes) {
        return f(input);
    }
    // Misaligned (or a big-endian host): decode explicitly from little-endian bytes.
    let words = &mut scratch.words;
    words.clear();
    words.resize(whole.div_ceil(4), 0);
    match dtype {
        Dtype::F32 => {
            for (w, c) in words.iter_mut().zip(bytes.chunks_exact(4)) {
                *w = f32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_bits();
            }
            let v: &[f32] = bytemuck::cast_slice(&words[..]);
            f(Input::F32(v))
        }
        Dtype::F16 | Dtype::Bf16 => {
            let halves: &mut [u16] = bytemuck::cast_slice_mut(&mut words[..]);
            for (h, c) in halves.iter_mut().zip(bytes.chunks_exact(2)) {
                *h = u16::from_le_bytes([c[0], c[1]]);
            }
            let n = whole / 2;
            let halves: &[u16] = &bytemuck::cast_slice(&words[..])[..n];
            if dtype == Dtype::F16 {
                let v: &[f16] = bytemuck::cast_slice(halves);
                f(Input::F16(v))
            } else {
                let v: &[bf16] = bytemuck::cast_slice(halves);
                f(Input::Bf16(v))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn windows_cover_the_range_exactly() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        t.write_all(&data).unwrap();
        let r = WindowReader::open(t.path()).unwrap();
        let mut got = Vec::new();
        let mut starts = Vec::new();
        r.for_each_window(70_001, 200_000, 65_536, 4, |pos, b| {
            starts.push(pos);
            assert_eq!(b.len() % 4, 0);
            got.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        assert_eq!(got, &data[70_001..270_001]);
        assert_eq!(starts, [0, 65_536, 131_072, 196_608]);
    }

    #[test]
    fn a_file_that_shrank_before_a_window_is_an_error_naming_it() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(&vec![7u8; 300_000]).unwrap();
        let r = WindowReader::open(t.path()).unwrap();
        let mut windows = 0;
        let e = r
            .for_each_window(0, 300_000, 65_536, 4, |_, _| {
                windows += 1;
                // A copy truncating the file while the first window is being read.
                t.as_file().set_len(100_000).unwrap();
                Ok(())
            })
            .unwrap_err();
        assert_eq!(windows, 1, "the window read before the truncation");
        assert!(matches!(e, AdapterError::Shrunk { len: 100_000, needed: 131_072, .. }), "{e}");
        assert!(e.to_string().starts_with(&t.path().display().to_string()), "{e}");
    }

    #[test]
    fn misaligned_bytes_are_copied() {
        let vals = [1.5f32, -2.25, 3.0];
        let mut bytes = vec![0u8];
        for v in vals {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let mut s = AlignedScratch::default();
        let got = with_input(Dtype::F32, &bytes[1..], &mut s, |i| {
            (0..i.len()).map(|k| i.get(k)).collect::<Vec<_>>()
        });
        assert_eq!(got, vals);
        let h = [f16::from_f32(0.5), f16::from_f32(-1.0)];
        let mut bytes = vec![0u8];
        for v in h {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let got = with_input(Dtype::F16, &bytes[1..], &mut s, |i| {
            (0..i.len()).map(|k| i.get(k)).collect::<Vec<_>>()
        });
        assert_eq!(got, [0.5, -1.0]);
    }
}
