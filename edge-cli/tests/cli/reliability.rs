//! Reliability through the CLI: malformed input, the NaN/infinity policy, crash-safe
//! output files, and regression tests for what the fuzzers found (the library's side
//! of the NaN/infinity policy: `tests/reliability/nonfinite.rs`).
//!
//! - [`corpus`]: every case of `tests/data/malformed/cases.json` through the CLI;
//! - [`nonfinite`]: a NaN or infinity in a model, with one and two threads;
//! - [`crash`]: SIGKILL in the middle of writing, and the file size limit;
//! - [`row_groups`]: Parquet footers whose row counts disagree or overflow;
//! - [`foreign_writer`]: our files rewritten by pyarrow;
//! - [`fuzz_found`]: what the fuzz targets found, as normal tests.
//!
//! Inputs that once crashed a fuzz target are replayed by `tests/fuzz/run.sh` from
//! `tests/fuzz/regressions/<target>/`; reader bugs found while writing the corpus are
//! corpus cases (`tests/fuzz/README.md` lists both).

mod allocation;
mod corpus;
mod crash;
mod foreign_writer;
mod fuzz_found;
mod interrupt;
mod messages;
mod nonfinite;
mod output_safety;
mod row_groups;
mod validation;

use std::process::{Command, Output};

/// What a CLI run produced.
pub(crate) struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}\n--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

/// A command running the `arrowquant` binary with no `ARROW_QUANT_*` variable from the
/// caller's environment (the environment is a configuration layer).
pub(crate) fn arrowquant(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = crate::bin_command();
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ARROW_QUANT_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd
}

/// Runs a command to completion.
pub(crate) fn run(mut cmd: Command) -> Run {
    let Output { status, stdout, stderr } = cmd.output().expect("running arrowquant");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Checks the error contract of the CLI: exit code 2 and exactly one `error: ...` line,
/// the last on stderr (progress lines may precede it), holding every needle, with no
/// panic message.
pub(crate) fn check_input_error(r: &Run, needles: &[&str]) -> Result<(), String> {
    if r.code != Some(2) {
        return Err(format!("expected exit 2: {r:?}"));
    }
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let errors = lines.iter().filter(|l| l.starts_with("error")).count();
    let Some(last) = lines.last().filter(|l| l.starts_with("error: ") && errors == 1) else {
        return Err(format!("expected one `error: ` line, last: {r:?}"));
    };
    if r.stderr.contains("panicked") || r.stderr.contains("RUST_BACKTRACE") {
        return Err(format!("panic: {r:?}"));
    }
    for n in needles {
        if !last.contains(n) {
            return Err(format!("{n:?} not in the error line: {r:?}"));
        }
    }
    Ok(())
}
