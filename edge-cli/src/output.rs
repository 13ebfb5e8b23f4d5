//! The output path of a command that writes: never a file the command reads, never
//! anything but a regular file (the library's [`arrowquant_std::check_output`]), and
//! `-o -` never a file named `-`.

use std::path::{Path, PathBuf};

use anyhow::bail;

/// Refuses `-o -`: no output format streams to standard output yet. `what` says why
/// for the format at hand.
///
/// # Errors
/// Always for `-`, naming the reason; `Ok` for any other path.
pub fn refuse_stdout(output: &Path, what: &str) -> anyhow::Result<()> {
    if output.as_os_str() == "-" {
        bail!("-o -: {what} cannot be written to standard output; give a file name (./- for a file named -)");
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
