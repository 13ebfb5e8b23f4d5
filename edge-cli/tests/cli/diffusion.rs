//! The diffusion features through the CLI: `quantize --calibration FILE --target-bpw X`
//! and `inspect` report, store and show time-aware parameters, mixed precision and
//! channel equalization (the library side: `tests/diffusion.rs`).

use std::path::Path;

use arrowquant_tests::diffusion::{write_calibration, write_equalization_calibration, write_model};
use serde_json::Value;

/// `arrowquant quantize --calibration FILE --target-bpw X` and `inspect`, as a user runs them.
#[test]
fn cli_calibration_and_target_bpw_flags_report_store_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, cal) = (dir.path().join("m.safetensors"), dir.path().join("cal.json"));
    write_model(&model_path);
    write_calibration(&cal, 200, 2);
    let run = |args: &[&str]| crate::bin_command().args(args).output().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = dir.path().join("q.parquet");
    let o = run(&[
        "--json",
        "quantize",
        &s(&model_path),
        "-o",
        &s(&out),
        "--calibration",
        &s(&cal),
        "--target-bpw",
        "3.0",
        "--min-accuracy",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc: Value = serde_json::from_slice(&o.stdout).unwrap();
    let j = &doc["models"][0];
    assert_eq!(j["time_aware"]["stored"], true);
    assert_eq!(j["time_aware"]["table"]["layers"].as_array().unwrap().len(), 2);
    assert_eq!(j["mixed_precision"]["tensors"].as_array().unwrap().len(), 3);
    assert!(j["mixed_precision"]["achieved_payload_bpw"].as_f64().unwrap() <= 3.0);
    assert_eq!(j["codec"], "mixed");

    let o = run(&["inspect", &s(&out)]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(text.contains("time-aware   2 layers x 200 timesteps"), "{text}");
    assert!(text.contains("blocks.0.attn.qkv_in: [0, "), "{text}");
    assert!(text.contains("mixed        target 3 bits/weight"), "{text}");
    let o = run(&["--json", "inspect", &s(&out)]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["time_aware"]["stored"], true);
    assert!(j["mixed_precision"]["tensors"].is_array());

    // Without a calibration file: the report and inspect say the step was skipped and why.
    let plain = dir.path().join("plain.parquet");
    let o = run(&["quantize", &s(&model_path), "-o", &s(&plain)]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("time-aware   skipped: no calibration file"));
    let o = run(&["inspect", &s(&plain)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("time-aware   skipped: no calibration file"));

    // Bad inputs: exit 2, the problem named, nothing written.
    let never = dir.path().join("never.parquet");
    let missing = dir.path().join("nonexistent").join("cal.json");
    let o = run(&["quantize", &s(&model_path), "-o", &s(&never), "--calibration", &s(&missing)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains(&s(&missing)));
    let o = run(&["quantize", &s(&model_path), "-o", &s(&never), "--target-bpw", "0.5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("target bits per weight"));
    let o = run(&["quantize", &s(&model_path), "-o", &s(&never), "--target-bpw", "1.5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bit budget too small"));
    assert!(!never.exists());
}

/// `arrowquant quantize --calibration FILE` with per-channel absmax, and `inspect`: both
/// list the equalized tensors, the layers skipped and why, and what a runtime must do.
#[test]
fn cli_reports_and_inspects_equalization() {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, cal) = (dir.path().join("m.safetensors"), dir.path().join("cal.json"));
    write_model(&model_path);
    write_equalization_calibration(&cal);
    let run = |args: &[&str]| crate::bin_command().args(args).output().unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let out = dir.path().join("q.parquet");
    let args =
        ["quantize", &s(&model_path), "-o", &s(&out), "--calibration", &s(&cal), "--min-accuracy", "0.5"];
    let o = run(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for o in [o, run(&["inspect", &s(&out)])] {
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains("equalize     2 tensors from"), "{text}");
        assert!(text.contains("divides activation channel j by s_j"), "{text}");
        assert!(text.contains("blocks.0.attn.qkv.weight <- blocks.0.attn.qkv: 128 factors"), "{text}");
        assert!(
            text.contains("skipped blocks.0.ff.down: the calibration file has no channel_absmax"),
            "{text}"
        );
    }
    let o = run(&["--json", "inspect", &s(&out)]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["equalization"]["stored"], true);
    assert_eq!(
        j["equalization"]["table"]["tensors"]["blocks.0.ff.up.weight"]["factors"].as_array().unwrap().len(),
        128
    );

    let plain = dir.path().join("plain.parquet");
    let o = run(&["quantize", &s(&model_path), "-o", &s(&plain)]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("equalize     skipped: no calibration file"));
    let o = run(&["--json", "inspect", &s(&plain)]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["equalization"]["stored"], false);
    assert!(j["equalization"]["skipped_reason"].as_str().unwrap().contains("no calibration file"));
}
