//! Interrupted runs leave no debris: SIGINT, SIGTERM and SIGHUP remove the temporary
//! files (the postcard path's intermediate Parquet file too) and exit with 130, 143
//! and 129, the previous output byte for byte as it was; a temporary file of a killed
//! run is removed by the next run only if its process is gone; a model file that
//! shrinks while it is read is an error naming it (exit 2), never a SIGBUS death; an
//! abort (out of memory in a dependency) still removes the temporary files.

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use arrowquant_tests::listing;

use super::crash::write_big_model;
use super::{arrowquant, check_input_error, run};

/// Temporary files of the output `name` (`.NAME.tmp-*`, and `..NAME.tmp-*`, the
/// temporary of an intermediate file).
fn temporaries(dir: &Path, name: &str) -> Vec<String> {
    listing(dir)
        .into_iter()
        .filter(|f| f.trim_start_matches('.').starts_with(&format!("{name}.tmp-")))
        .collect()
}

/// Waits until the child has a temporary file for `name` in `dir`: it is then in the
/// middle of its run (the file exists from the first byte written to the rename).
fn wait_for_temporary(child: &mut Child, dir: &Path, name: &str) {
    let start = Instant::now();
    while temporaries(dir, name).is_empty() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before a temporary file appeared");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no temporary file after 300 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `arrowquant ARGS` with SIGINT, SIGTERM, SIGHUP and SIGABRT at their default
/// dispositions. The binary keeps a signal its parent ignored ignored (nohup's SIGHUP;
/// a non-interactive shell's `cmd &` ignores SIGINT), so a test run launched that way
/// would see its SIGINT ignored and the run end with 0: the child must not inherit that.
fn interruptible(args: &[&str]) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = arrowquant(args, &[]);
    // SAFETY: runs in the forked child before exec; `signal` is async-signal-safe and
    // only resets dispositions, no allocation or lock.
    unsafe {
        cmd.pre_exec(|| {
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGABRT] {
                libc::signal(sig, libc::SIG_DFL);
            }
            Ok(())
        });
    }
    cmd
}

fn stderr_of(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn signals_remove_temporary_files_and_keep_the_previous_output() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("big.safetensors");
    // 8 x 2048 x 2048 F32: 128 MiB, a run long enough to be interrupted in the middle.
    write_big_model(&model, 8, 2048, 2048);
    let m = model.to_str().unwrap();
    let cases = [
        (libc::SIGINT, 130, "SIGINT", "parquet", "out.parquet"),
        (libc::SIGTERM, 143, "SIGTERM", "parquet", "out.parquet"),
        (libc::SIGHUP, 129, "SIGHUP", "parquet", "out.parquet"),
        (libc::SIGINT, 130, "SIGINT", "gguf", "out.gguf"),
        // The intermediate Parquet file of the device format, and its temporary.
        (libc::SIGTERM, 143, "SIGTERM", "postcard", "out.bin"),
    ];
    for (sig, code, name, format, out_name) in cases {
        let what = format!("{name} during --format {format}");
        let out = dir.path().join(out_name);
        let previous = format!("the previous output of {what}").into_bytes();
        std::fs::write(&out, &previous).unwrap();
        let args = ["quantize", m, "-o", out.to_str().unwrap(), "--format", format, "--threads", "1", "-q"];
        let mut child = interruptible(&args).stderr(std::process::Stdio::piped()).spawn().unwrap();
        wait_for_temporary(&mut child, dir.path(), out_name);
        // SAFETY: sends a signal to our own child, whose pid is still ours to signal
        // (it has not been waited for).
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, sig) }, 0);
        let (status, stderr) = stderr_of(child);
        assert_eq!(status, Some(code), "{what}: {stderr}");
        assert!(stderr.contains(&format!("interrupted by {name}")), "{what}: {stderr}");
        assert_eq!(temporaries(dir.path(), out_name), Vec::<String>::new(), "{what}: debris");
        assert!(std::fs::read(&out).unwrap() == previous, "{what}: the previous output changed");
        std::fs::remove_file(&out).unwrap();
        assert_eq!(listing(dir.path()), ["big.safetensors"], "{what}");
    }
}

#[test]
fn an_abort_removes_the_temporary_files_and_exits_2() {
    // What an allocation failure inside a dependency does (Rust aborts): the handler
    // still removes the temporary output.
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("big.safetensors");
    write_big_model(&model, 8, 2048, 2048);
    let out = dir.path().join("out.parquet");
    let args = ["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--threads", "1", "-q"];
    let mut child = interruptible(&args).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_for_temporary(&mut child, dir.path(), "out.parquet");
    // SAFETY: signals our own child, not yet waited for.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGABRT) }, 0);
    let (code, stderr) = stderr_of(child);
    let r = super::Run { code, stdout: String::new(), stderr };
    check_input_error(&r, &["aborted", "temporary files removed"]).unwrap();
    assert_eq!(listing(dir.path()), ["big.safetensors"], "{r:?}");
}

#[test]
fn a_stale_temporary_file_is_removed_only_if_its_process_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    arrowquant_tests::diffusion::write_model(&model);
    // A pid above the kernel's maximum (2^22) never names a live process; this test's
    // own process is alive.
    let dead = ".out.parquet.tmp-4194305-1234-0";
    let dead_intermediate = ".out.parquet.tmp-4194305-intermediate.parquet";
    let live = format!(".out.parquet.tmp-{}-1234-0", std::process::id());
    for f in [dead, dead_intermediate, live.as_str()] {
        std::fs::write(dir.path().join(f), b"debris").unwrap();
    }
    let out = dir.path().join("out.parquet");
    let r = run(arrowquant(&["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "-q"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert_eq!(listing(dir.path()), [live.as_str(), "m.safetensors", "out.parquet"]);
}

#[test]
fn a_model_that_shrinks_while_read_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("big.safetensors");
    write_big_model(&model, 8, 2048, 2048);
    let out = dir.path().join("out.parquet");
    let args = ["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--threads", "1", "-q"];
    let mut child = arrowquant(&args, &[]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    wait_for_temporary(&mut child, dir.path(), "out.parquet");
    // What `cp` does to a file it overwrites: truncate, then write again from the start.
    std::fs::OpenOptions::new().write(true).open(&model).unwrap().set_len(4096).unwrap();
    let (code, stderr) = stderr_of(child);
    let r = super::Run { code, stdout: String::new(), stderr };
    eprintln!("{r:?}");
    check_input_error(&r, &["big.safetensors", "shrank"]).unwrap();
    assert_eq!(listing(dir.path()), ["big.safetensors"], "debris: {r:?}");
}
