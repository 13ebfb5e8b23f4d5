//! Messages through the CLI (issue #16): one line in plain words, names from files
//! shown with their control characters escaped, usage errors on one line. The
//! corpus ([`super::corpus`]) checks the wording of each hostile file's error (allowed
//! values, YAML line and column, sniffed file types, stored configurations).

use std::path::Path;

use arrowquant_tests::{f32_bytes, safetensors_bytes, weights};

use super::{arrowquant, check_input_error, run};

/// A tensor name holding ESC (a colour sequence), BEL and CR.
const HOSTILE: &str = "bad\u{1b}[31mred\u{7}\rname.weight";

fn hostile_model(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("m.safetensors");
    let tensors = [(HOSTILE, "F32", [8usize, 64], f32_bytes(&weights(512, 1)))];
    std::fs::write(&p, safetensors_bytes(&tensors)).unwrap();
    p
}

fn assert_no_raw_controls(what: &str, text: &str) {
    let raw: Vec<char> = text.chars().filter(|c| c.is_control() && !matches!(c, '\n' | '\t')).collect();
    assert!(raw.is_empty(), "{what}: raw control characters {raw:?} in:\n{text}");
}

#[test]
fn control_characters_in_tensor_names_are_escaped_in_reports_and_inspect() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    let out = dir.path().join("q.parquet");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    let runs = [
        ("quantize -v", run(arrowquant(&["quantize", m, "-o", o, "-v"], &[]))),
        ("inspect parquet", run(arrowquant(&["inspect", o], &[]))),
        ("inspect safetensors", run(arrowquant(&["inspect", m], &[]))),
        ("validate", run(arrowquant(&["validate", m, o, "-v"], &[]))),
    ];
    for (what, r) in &runs {
        assert_eq!(r.code, Some(0), "{what}: {r:?}");
        assert_no_raw_controls(what, &r.stdout);
        assert_no_raw_controls(what, &r.stderr);
    }
    assert!(runs[1].1.stdout.contains(r"bad\u{1b}[31mred\u{7}\rname.weight"), "{:?}", runs[1].1);
    // An error naming the tensor (a NaN in it) escapes it too.
    let mut w = weights(512, 1);
    w[5] = f32::NAN;
    let nan = dir.path().join("nan.safetensors");
    std::fs::write(&nan, safetensors_bytes(&[(HOSTILE, "F32", [8usize, 64], f32_bytes(&w))])).unwrap();
    let out2 = dir.path().join("nan.parquet");
    let r = run(arrowquant(&["quantize", nan.to_str().unwrap(), "-o", out2.to_str().unwrap()], &[]));
    check_input_error(&r, &[r"bad\u{1b}[31mred\u{7}\rname.weight"]).unwrap();
    assert_no_raw_controls("error", &r.stderr);
}

#[test]
fn usage_errors_are_one_line_with_the_usage() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    let m = model.to_str().unwrap();
    for args in [vec!["quantize", m, "-o", "x.parquet", "--nope"], vec!["quantize", m], vec!["bogus"]] {
        let r = run(arrowquant(&args, &[]));
        check_input_error(&r, &["usage: arrowquant"]).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {r:?}");
    }
    let r = run(arrowquant(&["quantize", m, "-o", "x.parquet", "--bits", "3"], &[]));
    check_input_error(&r, &["bit width 3 is not supported (allowed: 2, 4, 8)"]).unwrap();
    assert!(!r.stderr.contains("InvalidBitWidth"), "{r:?}");
    // --help is still the full help, on stdout, exit 0.
    let r = run(arrowquant(&["quantize", "--help"], &[]));
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(r.stdout.lines().count() > 10, "{r:?}");
}

#[test]
fn yaml_errors_name_the_file_line_and_column_and_list_the_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "group_size: 64\nbit_widht: 4\n").unwrap();
    let out = dir.path().join("q.parquet");
    let args =
        ["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--config", cfg.to_str().unwrap()];
    let r = run(arrowquant(&args, &[]));
    check_input_error(&r, &["cfg.yaml", "bit_widht", "line 2, column 1"]).unwrap();
    assert_eq!(r.stderr.matches("deployment_profile").count(), 1, "the key list once: {r:?}");
    assert!(!r.stderr.contains("<input>"), "{r:?}");
}

#[test]
fn a_bad_value_in_the_yaml_file_names_the_file_and_the_allowed_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "bit_width: 3\n").unwrap();
    let out = dir.path().join("q.parquet");
    let args =
        ["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--config", cfg.to_str().unwrap()];
    let r = run(arrowquant(&args, &[]));
    check_input_error(&r, &["cfg.yaml", "bit width 3", "allowed: 2, 4, 8"]).unwrap();
    assert!(!out.exists());
}

#[test]
fn unknown_presets_list_the_presets() {
    let dir = tempfile::tempdir().unwrap();
    let model = hostile_model(dir.path());
    let out = dir.path().join("q.parquet");
    let r = run(arrowquant(
        &["quantize", model.to_str().unwrap(), "-o", out.to_str().unwrap(), "--preset", "int3-turbo"],
        &[],
    ));
    let names: Vec<&str> = arrowquant_std::core::Preset::ALL.iter().map(|p| p.name()).collect();
    let mut needles = vec!["preset `int3-turbo` is unknown"];
    needles.extend(&names);
    check_input_error(&r, &needles).unwrap();
    assert!(!r.stderr.contains("UnknownPreset"), "{r:?}");
}
