//! Crash safety of output files: the CLI writes to a temporary file and renames it
//! over the final name only when complete (`arrowquant_std::atomic`). A SIGKILL in
//! the middle of writing must leave nothing under the final name, and the next run
//! removes the temporary file it left; hitting the file size limit (RLIMIT_FSIZE) must give a clear error
//! and leave no output at all.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::time::{Duration, Instant};

use arrowquant_tests::{f32_bytes, listing, weights};

use super::{arrowquant, check_input_error, run};

/// Writes a safetensors model of `tensors` F32 matrices of `rows x cols` to `path`,
/// tensor by tensor (the whole model is never in memory).
pub(super) fn write_big_model(path: &Path, tensors: usize, rows: usize, cols: usize) {
    use std::io::Write;
    let mut header = serde_json::Map::new();
    let bytes = rows * cols * 4;
    for i in 0..tensors {
        header.insert(
            format!("layers.{i}.weight"),
            serde_json::json!({"dtype": "F32", "shape": [rows, cols], "data_offsets": [i * bytes, (i + 1) * bytes]}),
        );
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    f.write_all(&(text.len() as u64).to_le_bytes()).unwrap();
    f.write_all(text.as_bytes()).unwrap();
    for i in 0..tensors {
        for r in 0..rows {
            f.write_all(&f32_bytes(&weights(cols, (i * rows + r) as u64))).unwrap();
        }
    }
    f.flush().unwrap();
}

/// The temporary files the atomic writer leaves when killed (`.NAME.tmp-*`).
fn temporaries(dir: &Path, name: &str) -> Vec<String> {
    listing(dir).into_iter().filter(|f| f.starts_with(&format!(".{name}.tmp-"))).collect()
}

#[test]
fn sigkill_in_the_middle_of_writing_leaves_nothing_under_the_final_name() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("big.safetensors");
    // 4 x 4096 x 4096 F32: 256 MiB in, about 34 MiB out at 4 bits.
    write_big_model(&model, 4, 4096, 4096);
    let out = dir.path().join("out.parquet");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());

    let mut child = arrowquant(&["quantize", m, "-o", o, "-q"], &[]).spawn().unwrap();
    let start = Instant::now();
    // Kill it once the temporary output holds row-group data.
    let written = loop {
        let tmp = temporaries(dir.path(), "out.parquet");
        let size =
            tmp.first().and_then(|t| std::fs::metadata(dir.path().join(t)).ok()).map_or(0, |m| m.len());
        // More than the 4-byte `PAR1` magic: row-group data is being written.
        if size > 4 {
            break size;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("quantize finished ({status}) before its temporary file held data");
        }
        assert!(start.elapsed() < Duration::from_secs(300), "no temporary output after 300 s");
        std::thread::sleep(Duration::from_millis(5));
    };
    child.kill().unwrap();
    let status = child.wait().unwrap();
    eprintln!(
        "killed after {:.2} s with {written} bytes in the temporary file",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(status.signal(), Some(9), "{status}");
    assert!(!out.exists(), "a killed run left {}", out.display());
    let leftovers = temporaries(dir.path(), "out.parquet");
    assert_eq!(leftovers.len(), 1, "{leftovers:?}");

    // The next run removes the leftover temporary (its process is gone) and produces
    // a complete file.
    let r = run(arrowquant(&["quantize", m, "-o", o, "-q"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    let r = run(arrowquant(&["inspect", o, "--json"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.contains("layers.3.weight"), "{r:?}");
    assert_eq!(
        temporaries(dir.path(), "out.parquet"),
        Vec::<String>::new(),
        "temporary files left: {leftovers:?}"
    );
}

/// Sets RLIMIT_FSIZE for the child and the disposition of SIGXFSZ it starts with
/// (`SIG_DFL` or `SIG_IGN`; inherited across exec), so the test does not depend on
/// what the test harness inherited.
fn limit_file_size(cmd: &mut std::process::Command, bytes: u64, sigxfsz: libc::sighandler_t) {
    // SAFETY: the closure runs in the child between fork and exec and only calls
    // async-signal-safe functions (setrlimit, signal) on values it owns.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::signal(libc::SIGXFSZ, sigxfsz) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn the_file_size_limit_gives_a_clear_error_and_no_output() {
    // With the default disposition the kernel would kill a writer at the limit with
    // SIGXFSZ (exit 153 in a shell, temporary file left behind); the CLI ignores the
    // signal itself, so the write fails with EFBIG and is reported and cleaned up. The
    // run where the parent already ignores it must behave the same.
    // With two threads the Parquet writing runs on a writer thread of its own, whose
    // error must reach the user the same way: that case uses a model large enough (and
    // a budget small enough) for row groups to be flushed by the writer thread itself,
    // not only by the final close on the main thread.
    let cases =
        [(libc::SIG_DFL, "SIG_DFL", "1"), (libc::SIG_IGN, "SIG_IGN", "1"), (libc::SIG_DFL, "SIG_DFL", "2")];
    for (sigxfsz, sig, threads) in cases {
        let what = format!("{sig}, --threads {threads}");
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("m.safetensors");
        if threads == "1" {
            write_big_model(&model, 2, 512, 512);
        } else {
            // 32 MiB in, about 4.5 MB out: two row groups of 2 MiB before the close.
            write_big_model(&model, 4, 2048, 1024);
        }
        let out = dir.path().join("out.parquet");
        let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
        let mut cmd =
            arrowquant(&["quantize", m, "-o", o, "-q", "--threads", threads, "--max-memory", "32M"], &[]);
        limit_file_size(&mut cmd, 64 << 10, sigxfsz);
        let r = run(cmd);
        eprintln!("SIGXFSZ {what} in the parent: {r:?}");
        check_input_error(&r, &["out.parquet", "File too large"])
            .unwrap_or_else(|e| panic!("SIGXFSZ {what}: {e}"));
        assert!(!out.exists(), "SIGXFSZ {what}: {} exists", out.display());
        assert_eq!(
            listing(dir.path()),
            ["m.safetensors"],
            "SIGXFSZ {what}: output or temporary file left behind"
        );
    }
}
