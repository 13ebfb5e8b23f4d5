//! Claimed sizes and validation through the CLI (issue #16): inputs that are not
//! regular files, thread counts beyond the machine, the `ARROW_QUANT_*` environment.
//! Hostile files that fit in the corpus (calibration counts, header overlaps and
//! repeated keys, quoted YAML numbers, patterns, edited Parquet manifests) are cases
//! of `tests/data/malformed/cases.json`, run by [`super::corpus`].

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arrowquant_tests::listing;

use super::{Run, arrowquant, check_input_error};

/// The corpus's good model (two F32 matrices).
fn good_model() -> std::path::PathBuf {
    arrowquant_tests::data_dir().join("malformed").join("good.safetensors")
}

/// Runs `cmd`, failing the test if it has not ended within `limit` (a blocked open of
/// a named pipe never ends by itself).
fn run_within(mut cmd: Command, limit: Duration) -> Run {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn arrowquant");
    let start = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("arrowquant still running after {limit:?}: it blocked");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The first value under `key` anywhere in `v`.
fn find_key<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m.get(key).or_else(|| m.values().find_map(|x| find_key(x, key))),
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_key(x, key)),
        _ => None,
    }
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().expect("mkfifo").success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_named_pipe_as_the_model_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("model.safetensors");
    mkfifo(&fifo);
    let out = dir.path().join("out.parquet");
    let r = run_within(
        arrowquant(&["quantize", fifo.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        Duration::from_secs(30),
    );
    check_input_error(&r, &["model.safetensors", "named pipe"]).unwrap();
    assert_eq!(listing(dir.path()), ["model.safetensors"], "nothing written");
}

#[test]
fn a_named_pipe_as_a_shard_or_quantized_file_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let index = serde_json::json!({"weight_map": {"a.weight": "model-00001-of-00001.safetensors"}});
    std::fs::write(dir.path().join("model.safetensors.index.json"), index.to_string()).unwrap();
    mkfifo(&dir.path().join("model-00001-of-00001.safetensors"));
    let out = dir.path().join("out.parquet");
    let r = run_within(
        arrowquant(&["quantize", dir.path().to_str().unwrap(), "-o", out.to_str().unwrap()], &[]),
        Duration::from_secs(30),
    );
    check_input_error(&r, &["model-00001-of-00001.safetensors", "named pipe"]).unwrap();

    let q = dir.path().join("q.parquet");
    mkfifo(&q);
    for args in [vec!["inspect", q.to_str().unwrap()], vec!["dequantize", q.to_str().unwrap(), "-o", "x.st"]]
    {
        let r = run_within(arrowquant(&args, &[]), Duration::from_secs(30));
        check_input_error(&r, &["q.parquet", "named pipe"]).unwrap();
    }
}

#[test]
fn a_named_pipe_as_config_or_calibration_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    mkfifo(&fifo);
    let out = dir.path().join("out.parquet");
    let (m, o, f) = (good_model(), out.to_str().unwrap().to_string(), fifo.to_str().unwrap().to_string());
    for flag in ["--config", "--calibration"] {
        let r = run_within(
            arrowquant(&["quantize", m.to_str().unwrap(), "-o", &o, flag, &f], &[]),
            Duration::from_secs(30),
        );
        check_input_error(&r, &["pipe", "named pipe"]).unwrap_or_else(|e| panic!("{flag}: {e}"));
    }
}

#[test]
fn thread_counts_beyond_the_machine_are_capped_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let (m, o) = (good_model(), out.to_str().unwrap().to_string());
    // (flags, environment) asking for far more threads than any machine has.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)]);
    let cases: [Case<'_>; 2] =
        [(&["--threads", "5000"], &[]), (&[], &[("ARROW_QUANT_NUM_THREADS", "18446744073709551615")])];
    for (flags, env) in cases {
        let mut args = vec!["quantize", m.to_str().unwrap(), "-o", &o, "--json"];
        args.extend_from_slice(flags);
        let start = Instant::now();
        let r = run_within(arrowquant(&args, env), Duration::from_secs(60));
        assert_eq!(r.code, Some(0), "{flags:?} {env:?}: {r:?}");
        let warnings: Vec<&str> = r.stderr.lines().filter(|l| l.contains("threads asked for")).collect();
        assert_eq!(warnings.len(), 1, "one line about the cap: {r:?}");
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(warnings[0].contains(&format!("using {cores}")), "{r:?}");
        let report: serde_json::Value = serde_json::from_str(&r.stdout).expect("JSON report");
        let used = find_key(&report, "threads").and_then(serde_json::Value::as_u64);
        assert_eq!(used, Some(cores as u64), "threads in the report: {report}");
        assert!(start.elapsed() < Duration::from_secs(30), "{flags:?} took {:?}", start.elapsed());
    }
}

#[test]
fn unknown_arrow_quant_variables_warn_naming_the_nearest_known_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let args = ["quantize", good_model().to_str().unwrap(), "-o", out.to_str().unwrap()].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = super::run(arrowquant(&args, &[("ARROW_QUANT_BIT_WIDHT", "8")]));
    assert_eq!(r.code, Some(0), "{r:?}");
    let w: Vec<&str> = r.stderr.lines().filter(|l| l.contains("ARROW_QUANT_BIT_WIDHT")).collect();
    assert_eq!(w.len(), 1, "{r:?}");
    assert!(w[0].starts_with("warning: ") && w[0].contains("did you mean ARROW_QUANT_BIT_WIDTH?"), "{r:?}");
}

#[cfg(unix)]
#[test]
fn a_non_utf8_arrow_quant_value_is_an_error_naming_the_variable() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.parquet");
    let mut cmd = arrowquant(&["quantize", good_model().to_str().unwrap(), "-o", out.to_str().unwrap()], &[]);
    cmd.env("ARROW_QUANT_BIT_WIDTH", std::ffi::OsStr::from_bytes(b"4\xff"));
    let r = super::run(cmd);
    check_input_error(&r, &["ARROW_QUANT_BIT_WIDTH", "UTF-8"]).unwrap();
    assert!(!out.exists());
}
