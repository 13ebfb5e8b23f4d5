//! The temporary files of this process, removable from a signal handler, and the
//! removal of those a killed run left behind.
//!
//! Every temporary output ([`super::atomic::AtomicFile`], the CLI's intermediate
//! files) is registered here while it exists. A program that handles SIGINT, SIGTERM
//! or SIGHUP (the CLI does) calls [`remove_all`] from its handler, so an interrupted
//! run leaves no debris and the previous output stays as it was (it is only ever
//! replaced by a rename of a finished file).
//!
//! # Why a fixed table of leaked C strings
//!
//! A signal handler may only call async-signal-safe functions: no locks, no
//! allocation. The table is [`SLOTS`] atomic pointers to NUL-terminated paths, and
//! [`remove_all`] only swaps pointers and calls `unlink(2)`. A registered path is
//! never freed (a few dozen bytes per output file per run): a handler running on
//! another thread may still be reading a path that was just unregistered, and must
//! never follow a dangling pointer. With more than [`SLOTS`] temporary files at once
//! the extra ones are not removed on a signal (they are still removed on every
//! ordinary exit path, and by the next run: [`remove_stale`]).
//!
//! # Debris of a killed run
//!
//! Temporary names are `.NAME.tmp-PID-...` (an intermediate file of the CLI:
//! `.NAME.tmp-PID-...` too, and its own temporary `..NAME.tmp-PID-...`). A run that
//! writes `NAME` removes those whose process is gone (SIGKILL, power loss); a file of
//! a live process (another run writing the same output) is kept.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicPtr, Ordering};

/// Temporary files that [`remove_all`] can see at once.
pub const SLOTS: usize = 64;

static TABLE: Table = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

/// A registered temporary path, removed from the table (not from disk) on drop.
#[derive(Debug)]
pub struct Registered {
    table: &'static Table,
    slot: Option<usize>,
}

type Table = [AtomicPtr<std::ffi::c_char>; SLOTS];

/// Registers `path` so that [`remove_all`] removes it.
pub fn register(path: &Path) -> Registered {
    register_in(&TABLE, path)
}

/// A registration of nothing (an output that has no temporary file).
pub(crate) fn unregistered() -> Registered {
    Registered { table: &TABLE, slot: None }
}

fn register_in(table: &'static Table, path: &Path) -> Registered {
    let Some(c) = c_path(path) else { return Registered { table, slot: None } };
    // Leaked on purpose (module docs): a handler may read it after it is unregistered.
    let ptr = c.into_raw();
    for (i, s) in table.iter().enumerate() {
        if s.compare_exchange(std::ptr::null_mut(), ptr, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            return Registered { table, slot: Some(i) };
        }
    }
    Registered { table, slot: None }
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Some(i) = self.slot {
            self.table[i].store(std::ptr::null_mut(), Ordering::Release);
        }
    }
}

#[cfg(unix)]
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(path.as_os_str().as_bytes()).ok()
}

#[cfg(not(unix))]
fn c_path(path: &Path) -> Option<std::ffi::CString> {
    std::ffi::CString::new(path.to_str()?).ok()
}

/// Removes every registered temporary file. Async-signal-safe on Unix: only atomic
/// swaps and `unlink(2)`, meant to be called from a signal handler right before the
/// process exits.
pub fn remove_all() {
    remove_all_in(&TABLE);
}

fn remove_all_in(table: &Table) {
    for s in table {
        let p = s.swap(std::ptr::null_mut(), Ordering::AcqRel);
        if !p.is_null() {
            unlink(p);
        }
    }
}

#[cfg(unix)]
fn unlink(p: *const std::ffi::c_char) {
    // SAFETY: `p` came from `CString::into_raw` in `register` and is never freed, so it
    // is a valid NUL-terminated string; `unlink` only reads it.
    unsafe {
        libc::unlink(p);
    }
}

#[cfg(not(unix))]
fn unlink(p: *const std::ffi::c_char) {
    // SAFETY: as on Unix: a leaked, never freed `CString`.
    let c = unsafe { std::ffi::CStr::from_ptr(p) };
    if let Ok(s) = c.to_str() {
        let _ = std::fs::remove_file(s);
    }
}

/// The temporary-name prefix of outputs named `name`.
pub(crate) fn tmp_prefix(name: &str) -> String {
    format!(".{name}.tmp-")
}

/// Removes the temporary files that a run writing `dest` left behind, if the process
/// named in them is gone. Errors are ignored: this is tidying, never a reason to fail.
pub fn remove_stale(dest: &Path) {
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else { return };
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    let prefix = tmp_prefix(&name);
    let me = std::process::id();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        // `..NAME.tmp-PID-` is the temporary of an intermediate `.NAME.tmp-PID-...`.
        let Some(rest) = file.strip_prefix(&prefix).or_else(|| file.strip_prefix('.')?.strip_prefix(&prefix))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid != me && process_is_gone(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether no process `pid` exists (`kill(pid, 0)` fails with ESRCH). A process of
/// another user (EPERM) exists; where this cannot be told, nothing is removed.
#[cfg(unix)]
fn process_is_gone(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 sends nothing; `kill` only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn registered_files_are_removed_and_unregistered_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"a").unwrap();
        std::fs::write(&b, b"b").unwrap();
        // A table of its own: the global one holds other tests' files.
        static T: Table = [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];
        let ra = register_in(&T, &a);
        drop(register_in(&T, &b));
        remove_all_in(&T);
        assert!(!a.exists() && b.exists());
        drop(ra);
    }

    #[test]
    fn stale_files_of_dead_processes_go_live_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.parquet");
        // A pid above the kernel's maximum (4194304) is never a live process.
        let dead = dir.path().join(".out.parquet.tmp-4194305-ab-0");
        let dead_inner = dir.path().join("..out.parquet.tmp-4194305-parquet.tmp-4194305-ab-0");
        let live = dir.path().join(format!(".out.parquet.tmp-{}-ab-0", std::process::id()));
        let parent =
            dir.path().join(format!(".out.parquet.tmp-{}-ab-0", std::os::unix::process::parent_id()));
        let unrelated = dir.path().join(".other.parquet.tmp-4194305-ab-0");
        for p in [&dead, &dead_inner, &live, &parent, &unrelated] {
            std::fs::write(p, b"x").unwrap();
        }
        remove_stale(&dest);
        assert!(!dead.exists() && !dead_inner.exists());
        assert!(live.exists() && parent.exists() && unrelated.exists());
    }
}
