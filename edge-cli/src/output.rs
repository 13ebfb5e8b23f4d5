//! The output path of a command that writes: never a file the command reads, never
//! anything but a regular file (the library's [`arrowquant_std::check_output`]), and
//! `-o -` never a file named `-`: standard output, where the format allows it.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Whether `output` is `-`, standard output.
pub fn is_stdout(output: &Path) -> bool {
    output.as_os_str() == "-"
}

/// For a format that streams: with `-o -`, the reports go to stderr
/// ([`crate::out::give_stdout_to_data`]); the library writes the data to stdout.
pub fn stream_if_stdout(output: &Path) {
    if is_stdout(output) {
        crate::out::give_stdout_to_data();
    }
}

/// Refuses `-o -` for a format that cannot be streamed; `why` says why.
///
/// # Errors
/// For `-`, naming the reason; `Ok` for any other path.
pub fn refuse_stdout(output: &Path, why: &str) -> anyhow::Result<()> {
    if is_stdout(output) {
        bail!("-o -: {why}; give a file name (./- for a file named -)");
    }
    Ok(())
}

/// Refuses `output` if it is one of `reads` (by device and inode) or an existing
/// path that is not a regular file.
///
/// # Errors
/// The library's one-line refusal.
pub fn check(output: &Path, reads: &[PathBuf]) -> anyhow::Result<()> {
    arrowquant_std::check_output(output, reads)?;
    Ok(())
}
