//! A fence around the `parquet` crate's page decoding.
//!
//! Fuzzing found corrupt page data on which parquet 60.1 panics instead of returning an
//! error ("Decoder for dict should have been set", a division by zero). Our reader
//! checks everything it can before decoding, but the page contents are the parquet
//! crate's to interpret, so each decoding step runs under `guarded`: a panic there
//! becomes an [`AdapterError::BadQuantizedFile`] naming the file.
//!
//! The process's panic hook still runs first. [`in_guarded_decode`] tells a hook that
//! the panic will be caught and turned into an error, so that it can stay quiet (the
//! `arrowquant` CLI's hook does this; its default would print one line and exit).

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use crate::error::{AdapterError, Result};

thread_local! {
    static GUARDED: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs third-party decoding whose panics `guarded` catches.
pub fn in_guarded_decode() -> bool {
    GUARDED.with(Cell::get)
}

/// Runs `f`; a panic inside becomes an error naming `path` and saying what was read.
pub(crate) fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> T) -> Result<T> {
    let outer = GUARDED.with(|g| g.replace(true));
    // The reader's state is dropped on error (the caller returns at once), so a value
    // left half-updated by the panic is never observed.
    let r = catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(outer));
    r.map_err(|payload| {
        let msg = panic_message(payload.as_ref());
        AdapterError::bad_file(path, format!("corrupt Parquet data while {what}: the decoder failed ({msg})"))
    })
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_naming_the_file_and_the_flag_is_restored() {
        let path = Path::new("/x/q.parquet");
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let r: Result<()> = guarded(path, "reading pages", || {
            assert!(in_guarded_decode());
            panic!("attempt to divide by zero")
        });
        std::panic::set_hook(prev);
        let e = r.unwrap_err().to_string();
        assert!(e.contains("/x/q.parquet") && e.contains("divide by zero"), "{e}");
        assert!(!in_guarded_decode());
        assert_eq!(guarded(path, "x", || 7).unwrap(), 7);
    }
}
