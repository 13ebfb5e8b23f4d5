//! `-o` never destroys a file: an output that is (or is a link to) any file the
//! command reads, or an existing path that is not a regular file, is refused with one
//! line and exit 2, and everything stays as it was; `-o -` never makes a file named `-`.

use std::path::{Path, PathBuf};

use arrowquant_tests::diffusion::{write_calibration, write_model};
use arrowquant_tests::{f32_bytes, listing, safetensors_bytes, weights};

use super::{arrowquant, check_input_error, run};

/// A sharded model `dir/model/` (two shards, the index, a `config.json`), a
/// configuration file and a calibration file, each with its path.
struct Inputs {
    model: PathBuf,
    shards: [PathBuf; 2],
    index: PathBuf,
    config_json: PathBuf,
    yaml: PathBuf,
    calibration: PathBuf,
}

fn sharded_inputs(dir: &Path) -> Inputs {
    let model = dir.join("model");
    std::fs::create_dir(&model).unwrap();
    let shard = |i: usize| model.join(format!("model-0000{i}-of-00002.safetensors"));
    for i in 1..=2 {
        let name = format!("layers.{i}.weight");
        let w = f32_bytes(&weights(64 * 64, i as u64));
        std::fs::write(shard(i), safetensors_bytes(&[(name.as_str(), "F32", [64, 64], w)])).unwrap();
    }
    let index = model.join("model.safetensors.index.json");
    std::fs::write(
        &index,
        r#"{"weight_map": {"layers.1.weight": "model-00001-of-00002.safetensors", "layers.2.weight": "model-00002-of-00002.safetensors"}}"#,
    )
    .unwrap();
    let config_json = model.join("config.json");
    std::fs::write(&config_json, r#"{"model_type": "bert"}"#).unwrap();
    let yaml = dir.join("aq.yaml");
    std::fs::write(&yaml, "bit_width: 4\n").unwrap();
    let calibration = dir.join("cal.bin");
    write_calibration(&calibration, 20, 2);
    let shards = [shard(1), shard(2)];
    Inputs { model, shards, index, config_json, yaml, calibration }
}

/// Every file under `dir` (recursively) with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let t = std::fs::symlink_metadata(&p).unwrap().file_type();
        if t.is_dir() {
            out.extend(snapshot(&p));
        } else if t.is_file() {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        } else {
            out.push((p.clone(), Vec::new()));
        }
    }
    out.sort();
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn quantize_refuses_an_output_that_is_any_file_it_reads() {
    let dir = tempfile::tempdir().unwrap();
    let i = sharded_inputs(dir.path());
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let hard = elsewhere.join("linked.parquet");
    std::fs::hard_link(&i.shards[0], &hard).unwrap();
    let targets: [(&str, &Path); 7] = [
        ("shard 1", &i.shards[0]),
        ("shard 2", &i.shards[1]),
        ("index", &i.index),
        ("config.json", &i.config_json),
        ("--config", &i.yaml),
        ("--calibration", &i.calibration),
        ("hard link to shard 1", &hard),
    ];
    let before = snapshot(dir.path());
    for format in ["parquet", "gguf", "postcard"] {
        for (what, target) in targets {
            let args = [
                "quantize",
                s(&i.model),
                "-o",
                s(target),
                "--format",
                format,
                "--config",
                s(&i.yaml),
                "--calibration",
                s(&i.calibration),
                "-q",
            ];
            let r = run(arrowquant(&args, &[]));
            let name = target.file_name().unwrap().to_str().unwrap();
            check_input_error(&r, &["refusing to write the output", name, "which this run reads"])
                .unwrap_or_else(|e| panic!("{format}, -o the {what}: {e}"));
            assert!(snapshot(dir.path()) == before, "{format}, -o the {what}: a file changed or appeared");
        }
    }
    // The model given as its index file, and a single-file model through a hard link.
    let r = run(arrowquant(&["quantize", s(&i.index), "-o", s(&i.index), "-q"], &[]));
    check_input_error(&r, &["model.safetensors.index.json", "which this run reads"]).unwrap();
    let single = dir.path().join("m.safetensors");
    write_model(&single);
    let link = dir.path().join("m-link.safetensors");
    std::fs::hard_link(&single, &link).unwrap();
    let bytes = std::fs::read(&single).unwrap();
    let r = run(arrowquant(&["quantize", s(&single), "-o", s(&link), "-q"], &[]));
    check_input_error(&r, &["m-link.safetensors", "m.safetensors, which this run reads"]).unwrap();
    assert!(std::fs::read(&single).unwrap() == bytes);
}

/// A quantized file `dir/q.parquet`.
fn quantized(dir: &Path) -> PathBuf {
    let m = dir.join("m.safetensors");
    write_model(&m);
    let q = dir.join("q.parquet");
    let r = run(arrowquant(&["quantize", s(&m), "-o", s(&q), "-q"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    q
}

#[test]
fn dequantize_and_export_refuse_to_overwrite_their_input() {
    let dir = tempfile::tempdir().unwrap();
    let q = quantized(dir.path());
    let hard = dir.path().join("hard.parquet");
    std::fs::hard_link(&q, &hard).unwrap();
    let before = snapshot(dir.path());
    for out in [&q, &hard] {
        let commands: [&[&str]; 3] = [
            &["dequantize", s(&q), "-o", s(out)],
            &["export", s(&q), "--format", "safetensors", "-o", s(out)],
            &["export", s(&q), "--format", "postcard", "-o", s(out)],
        ];
        for args in commands {
            let r = run(arrowquant(args, &[]));
            check_input_error(&r, &["refusing to write the output", "q.parquet, which this run reads"])
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(snapshot(dir.path()) == before, "{args:?}: a file changed or appeared");
        }
    }
    // The same for a GGUF input.
    let g = dir.path().join("q.gguf");
    let m = dir.path().join("m.safetensors");
    let r = run(arrowquant(&["quantize", s(&m), "--format", "gguf", "-o", s(&g), "-q"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    let before = snapshot(dir.path());
    let r = run(arrowquant(&["dequantize", s(&g), "-o", s(&g)], &[]));
    check_input_error(&r, &["q.gguf, which this run reads"]).unwrap();
    assert!(snapshot(dir.path()) == before, "dequantize of a GGUF over itself changed a file");
}

#[cfg(unix)]
#[test]
fn symlinks_fifos_and_directories_at_the_output_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let q = quantized(dir.path());
    let m = dir.path().join("m.safetensors");
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, b"keep me").unwrap();
    let sym = dir.path().join("sym.out");
    std::os::unix::fs::symlink(&victim, &sym).unwrap();
    let fifo = dir.path().join("fifo.out");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let subdir = dir.path().join("sub.out");
    std::fs::create_dir(&subdir).unwrap();
    let dangling = dir.path().join("dangling.out");
    std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
    let before = snapshot(dir.path());
    let cases: [(&Path, &str); 4] = [
        (&sym, "symbolic link"),
        (&dangling, "symbolic link"),
        (&fifo, "named pipe"),
        (&subdir, "directory"),
    ];
    for (out, kind) in cases {
        let mut commands: Vec<Vec<&str>> = vec![
            vec!["dequantize", s(&q), "-o", s(out)],
            vec!["export", s(&q), "--format", "postcard", "-o", s(out)],
            vec!["export", s(&q), "--format", "safetensors", "-o", s(out)],
        ];
        // A directory is quantize's directory mode (one file per model inside it).
        if kind != "directory" {
            commands.push(vec!["quantize", s(&m), "--format", "gguf", "-o", s(out), "-q"]);
            commands.push(vec!["quantize", s(&m), "-o", s(out), "-q"]);
            commands.push(vec!["quantize", s(&m), "--format", "postcard", "-o", s(out), "-q"]);
        }
        for args in &commands {
            let r = run(arrowquant(args, &[]));
            check_input_error(&r, &["refusing to write the output", kind, "not a regular file"])
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
            assert!(snapshot(dir.path()) == before, "{args:?}: something changed");
        }
    }
    let meta = std::fs::symlink_metadata(&sym).unwrap();
    assert!(meta.file_type().is_symlink());
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
}

/// Runs `args` in `dir` and returns its stdout bytes and the run.
fn run_bytes(dir: &Path, args: &[&str]) -> (Vec<u8>, super::Run) {
    let mut cmd = arrowquant(args, &[]);
    cmd.current_dir(dir);
    let o = cmd.output().unwrap();
    let r = super::Run {
        code: o.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (o.stdout, r)
}

#[test]
fn dash_output_streams_the_same_bytes_to_stdout_or_says_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let q = quantized(dir.path());
    let m = dir.path().join("m.safetensors");
    let file = dir.path().join("file.out");
    let streams: [&[&str]; 5] = [
        &["quantize", s(&m), "-q"],
        &["--json", "quantize", s(&m), "--format", "gguf", "-q"],
        &["dequantize", s(&q)],
        &["dequantize", s(&q), "--dtype", "bf16"],
        &["export", s(&q), "--format", "safetensors"],
    ];
    for args in streams {
        let (to_file, r) = run_bytes(dir.path(), &[args, &["-o", s(&file)]].concat());
        assert_eq!(r.code, Some(0), "{args:?} -o file: {r:?}");
        let want = std::fs::read(&file).unwrap();
        std::fs::remove_file(&file).unwrap();
        let before = listing(dir.path());
        let (streamed, r) = run_bytes(dir.path(), &[args, &["-o", "-"]].concat());
        assert_eq!(r.code, Some(0), "{args:?} -o -: {r:?}");
        assert!(
            streamed == want,
            "{args:?}: stdout differs from the file ({} vs {} bytes)",
            streamed.len(),
            want.len()
        );
        // The report went to stderr instead, and no file appeared (none named `-`).
        let head = String::from_utf8_lossy(&to_file[..to_file.len().min(6)]).into_owned();
        assert!(!head.is_empty() && r.stderr.contains(&head), "{args:?}: report not on stderr: {r:?}");
        assert_eq!(listing(dir.path()), before, "{args:?}");
    }
    // The device format is read back before it is kept; several models make several files.
    let refused: [(&[&str], &str); 3] = [
        (&["quantize", s(&m), "--format", "postcard", "-o", "-", "-q"], "read back"),
        (&["export", s(&q), "--format", "postcard", "-o", "-"], "read back"),
        (&["quantize", s(&m), s(&m), "-o", "-", "-q"], "takes one model"),
    ];
    let before = listing(dir.path());
    for (args, why) in refused {
        let (stdout, r) = run_bytes(dir.path(), args);
        check_input_error(&r, &["-o -", why]).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(stdout.is_empty(), "{args:?}: {r:?}");
        assert_eq!(listing(dir.path()), before, "{args:?}");
    }
    // Standard output appended to the model being read is refused.
    let append = std::fs::OpenOptions::new().append(true).open(&m).unwrap();
    let bytes = std::fs::read(&m).unwrap();
    let mut cmd = arrowquant(&["quantize", s(&m), "-o", "-", "-q"], &[]);
    let o = cmd.stdout(append).output().unwrap();
    let r = super::Run {
        code: o.status.code(),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    };
    check_input_error(&r, &["standard output is", "m.safetensors, which this run reads"]).unwrap();
    assert!(std::fs::read(&m).unwrap() == bytes);
}

#[cfg(unix)]
#[test]
fn demo_never_writes_over_a_model_or_through_a_symlink_in_its_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("demo");
    std::fs::create_dir(&d).unwrap();
    // Another model's files: refused, untouched.
    std::fs::write(d.join("config.json"), br#"{"model_type": "llama"}"#).unwrap();
    let r = run(arrowquant(&["demo", "--dir", s(&d)], &[]));
    check_input_error(&r, &["demo", "already holds a model the demo did not write"]).unwrap();
    assert_eq!(std::fs::read(d.join("config.json")).unwrap(), br#"{"model_type": "llama"}"#);
    assert_eq!(listing(&d), ["config.json"]);
    // A symlink where the demo writes its model, beside the demo's own config.json:
    // refused, the file it names untouched.
    std::fs::write(d.join("config.json"), "{\"_comment\": \"generated by `arrowquant demo`\"}").unwrap();
    let victim = dir.path().join("victim.safetensors");
    std::fs::write(&victim, b"keep me").unwrap();
    std::os::unix::fs::symlink(&victim, d.join("model.safetensors")).unwrap();
    let r = run(arrowquant(&["demo", "--dir", s(&d)], &[]));
    check_input_error(&r, &["model.safetensors", "symbolic link"]).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
    // Its own earlier run is the demo's to replace.
    std::fs::remove_file(d.join("model.safetensors")).unwrap();
    std::fs::remove_file(d.join("config.json")).unwrap();
    for _ in 0..2 {
        let r = run(arrowquant(&["demo", "--dir", s(&d), "-q"], &[]));
        assert!(r.code == Some(0) || r.code == Some(1), "{r:?}");
    }
}
