//! Which input file an address belongs to, for a SIGBUS handler.
//!
//! A file truncated while it is mapped raises SIGBUS on the next access past its new
//! end. [`super::window::WindowReader`] checks the file's length before mapping each
//! window, which turns the usual case (a copy that rewrote the file between two
//! windows) into an ordinary error naming the file ([`crate::AdapterError::Shrunk`]).
//! A truncation during the few milliseconds a window is read still raises SIGBUS:
//! there a handler (the CLI installs one) asks [`file_at`] which file the faulting
//! address was mapped from, names it, removes the temporary files and exits.
//!
//! Signal safety: the table is [`SLOTS`] entries of atomics; [`file_at`] only loads
//! them. Each entry points to the reader's NUL-terminated path, which is leaked (never
//! freed, one per opened file), so a handler never follows a dangling pointer.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// Mappings recorded at once (one per encoding thread); more are not named.
pub const SLOTS: usize = 64;

struct Slot {
    busy: AtomicBool,
    start: AtomicUsize,
    end: AtomicUsize,
    path: AtomicPtr<c_char>,
}

static TABLE: [Slot; SLOTS] = [const {
    Slot {
        busy: AtomicBool::new(false),
        start: AtomicUsize::new(0),
        end: AtomicUsize::new(0),
        path: AtomicPtr::new(std::ptr::null_mut()),
    }
}; SLOTS];

/// A recorded mapping, forgotten on drop (drop it before unmapping).
#[derive(Debug)]
pub(crate) struct Recorded(Option<usize>);

/// Records that `start .. start + len` is mapped from the file at `path` (a leaked
/// C string, see the module docs).
pub(crate) fn record(start: *const u8, len: usize, path: *const c_char) -> Recorded {
    for (i, s) in TABLE.iter().enumerate() {
        if s.busy.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            s.start.store(start as usize, Ordering::Relaxed);
            s.end.store(start as usize + len, Ordering::Relaxed);
            s.path.store(path.cast_mut(), Ordering::Release);
            return Recorded(Some(i));
        }
    }
    Recorded(None)
}

impl Drop for Recorded {
    fn drop(&mut self) {
        if let Some(i) = self.0 {
            TABLE[i].path.store(std::ptr::null_mut(), Ordering::Release);
            TABLE[i].busy.store(false, Ordering::Release);
        }
    }
}

/// The NUL-terminated path of the file mapped at `addr`, if a recorded mapping holds
/// it. Async-signal-safe (atomic loads only). The pointer stays valid for the life of
/// the process.
pub fn file_at(addr: usize) -> Option<*const c_char> {
    TABLE.iter().find_map(|s| {
        let p = s.path.load(Ordering::Acquire);
        let inside = addr >= s.start.load(Ordering::Relaxed) && addr < s.end.load(Ordering::Relaxed);
        (!p.is_null() && inside).then_some(p.cast_const())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_map_to_their_file_while_recorded() {
        let path = c"/m/model.safetensors";
        let buf = [0u8; 100];
        let r = record(buf.as_ptr(), buf.len(), path.as_ptr());
        let at = |i: usize| file_at(buf.as_ptr() as usize + i);
        assert_eq!(at(0), Some(path.as_ptr()));
        assert_eq!(at(99), Some(path.as_ptr()));
        assert_eq!(at(100), None);
        drop(r);
        assert_eq!(at(0), None);
    }
}
