//! Reliability: malformed input, the NaN/infinity policy on every path, crash-safe
//! output files, and regression tests for what the fuzzers found.
//!
//! - [`corpus`]: every case of `tests/data/malformed/cases.json` through the CLI;
//! - [`nonfinite`]: NaN, infinity, huge and subnormal weights through the streaming
//!   quantizer (every backend, every preset, odd chunkings), the std adapter
//!   (parallel and sequential) and the CLI;
//! - [`crash`]: SIGKILL in the middle of writing, and the file size limit;
//! - [`row_groups`]: Parquet footers whose row counts disagree or overflow;
//! - [`foreign_writer`]: our files rewritten by pyarrow;
//! - [`fuzz_found`]: what the fuzz targets found, as normal tests.
//!
//! Inputs that once crashed a fuzz target are replayed by `tests/fuzz/run.sh` from
//! `tests/fuzz/regressions/<target>/`; reader bugs found while writing the corpus are
//! corpus cases (`tests/fuzz/README.md` lists both).

mod corpus;
mod crash;
mod foreign_writer;
mod fuzz_found;
mod nonfinite;
mod row_groups;

use std::path::Path;
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
    let mut cmd = crate::cli::bin_command();
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

/// File names in `dir`, sorted (temporaries included).
pub(crate) fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A safetensors file from `(name, dtype, shape, little-endian bytes)`.
pub(crate) fn safetensors_bytes(tensors: &[(&str, &str, &[usize], Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, b) in tensors {
        out.extend_from_slice(b);
    }
    out
}

/// Deterministic weights in about [-0.5, 0.5).
pub(crate) fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Little-endian bytes of f32 values.
pub(crate) fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}
