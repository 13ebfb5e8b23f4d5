//! Our own large buffers, reserved with `try_reserve`: a size the machine cannot
//! provide (a hostile file's claimed count, a `ulimit -v`) is an error naming what
//! was being allocated, not an abort that leaves the temporary output behind.

use std::collections::TryReserveError;
use std::path::Path;

use crate::error::AdapterError;

/// `len` copies of `value`, or the reservation's error.
pub(crate) fn try_filled<T: Clone>(len: usize, value: T) -> Result<Vec<T>, TryReserveError> {
    let mut v = Vec::new();
    v.try_reserve_exact(len)?;
    v.resize(len, value);
    Ok(v)
}

/// Resizes `v` to `len` copies of `value`, failing with [`AdapterError::OutOfMemory`]
/// naming `path` and `what()` (called only on failure: rows are resized often).
pub(crate) fn resize<T: Clone>(
    v: &mut Vec<T>,
    len: usize,
    value: T,
    path: &Path,
    what: impl FnOnce() -> String,
) -> Result<(), AdapterError> {
    if let Some(more) = len.checked_sub(v.len()) {
        v.try_reserve(more).map_err(|_| out_of_memory::<T>(len, path, &what()))?;
    }
    v.resize(len, value);
    Ok(())
}

/// Reserves room for `more` elements in `v`, with the error of [`resize`].
pub(crate) fn reserve<T>(
    v: &mut Vec<T>,
    more: usize,
    path: &Path,
    what: impl FnOnce() -> String,
) -> Result<(), AdapterError> {
    v.try_reserve(more).map_err(|_| out_of_memory::<T>(v.len().saturating_add(more), path, &what()))
}

/// The error for `len` elements of `T`.
pub(crate) fn out_of_memory<T>(len: usize, path: &Path, what: &str) -> AdapterError {
    let bytes = (len as u64).saturating_mul(size_of::<T>() as u64);
    AdapterError::OutOfMemory { path: path.to_path_buf(), what: what.to_string(), bytes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_size_is_an_error_naming_what() {
        let mut v: Vec<u64> = Vec::new();
        let e = resize(&mut v, usize::MAX / 8, 0, Path::new("/m/q.parquet"), || "tensor `w` values".into())
            .unwrap_err();
        assert!(e.to_string().starts_with("/m/q.parquet: cannot allocate"), "{e}");
        assert!(e.to_string().ends_with("for tensor `w` values"), "{e}");
        assert!(try_filled(usize::MAX / 4, 0f64).is_err());
        assert_eq!(try_filled(3, 1u8).unwrap(), [1, 1, 1]);
    }
}
