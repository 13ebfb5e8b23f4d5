//! The `arrowquant` command as a user runs it: the built binary, its exit codes, its
//! stdout (human and `--json`) and stderr, and what it leaves on disk. One test binary:
//!
//! - [`commands`]: the subcommands, flags, configuration layers and reports;
//! - [`diffusion`]: the calibration, mixed-precision and equalization flags;
//! - [`reliability`]: malformed input, crash safety, what the fuzzers found.
//!
//! Cargo builds the binary before the tests and names it in `CARGO_BIN_EXE_arrowquant`;
//! tests start it only through [`bin_command`]. Fixture writers and the paths of the
//! checked-in test data are shared with the workspace tests (`arrowquant_tests`,
//! `tests/lib.rs`).

mod commands;
mod diffusion;
mod reliability;

use std::ffi::OsString;
use std::process::Command;

/// The binary under test: `ARROWQUANT_BIN` if set (to test another build), else the one
/// cargo built for this test run.
fn bin() -> OsString {
    std::env::var_os("ARROWQUANT_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_arrowquant").into())
}

/// A command that runs the binary: directly, or through the emulator named by
/// `ARROWQUANT_RUNNER` (e.g. `qemu-aarch64 -L /usr/aarch64-linux-gnu` when the suite
/// itself runs under qemu-user, which cannot execute a foreign binary by itself:
/// `targets/ci-aarch64.sh`).
pub(crate) fn bin_command() -> Command {
    match std::env::var("ARROWQUANT_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut cmd = Command::new(words.next().expect("a non-empty runner"));
            cmd.args(words).arg(bin());
            cmd
        }
        _ => Command::new(bin()),
    }
}

/// [`bin_command`] as shell words, for tests that need a shell pipeline.
pub(crate) fn bin_shell_words() -> String {
    let runner = std::env::var("ARROWQUANT_RUNNER").unwrap_or_default();
    format!("{runner} '{}'", bin().to_string_lossy())
}
