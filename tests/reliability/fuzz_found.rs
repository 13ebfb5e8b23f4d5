//! Normal tests for what the fuzz targets found (their inputs are replayed from
//! `tests/fuzz/regressions/<target>/` by `tests/fuzz/run.sh`; see tests/fuzz/README.md).

use arrowquant_std::Model;

use super::{arrowquant, check_input_error, f32_bytes, run, safetensors_bytes};

#[test]
fn a_shard_name_with_a_newline_gives_a_one_line_error() {
    // `sharded_index` crash-d3d8b451: the index names a shard `c.safet\nsors` that does
    // not exist; the I/O error quoted the path verbatim and so spanned two lines.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.safetensors"), safetensors_bytes(&[("x", "F32", &[2], f32_bytes(&[1.0, 2.0]))]))
        .unwrap();
    let index = d.join("model.safetensors.index.json");
    let text =
        r#"{"weight_map": {"x": "a.safetensors", "c0": "c.safet\nsors", "c1": "d\u0007.safetensors"}}"#;
    std::fs::write(&index, text).unwrap();
    for path in [d, index.as_path()] {
        let e = Model::open(path).map(|_| ()).unwrap_err().to_string();
        assert!(!e.contains('\n') && !e.contains('\u{7}'), "multi-line error: {e}");
        assert!(e.contains(r"c.safet\nsors") && e.contains(&*d.to_string_lossy()), "{e}");
    }
    let out = d.join("out.parquet");
    let r = run(arrowquant(&["quantize", index.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]));
    check_input_error(&r, &[r"c.safet\nsors"]).unwrap();
    assert!(!out.exists());
}

#[test]
fn an_index_that_is_not_utf8_is_refused() {
    // `sharded_index` crash-9569885c: a byte 0xC0 in a key of the ignored `metadata`
    // object; serde_json skipped it unchecked and the index was accepted.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("a.safetensors"), safetensors_bytes(&[("x", "F32", &[2], f32_bytes(&[1.0, 2.0]))]))
        .unwrap();
    let index = d.join("model.safetensors.index.json");
    let mut text = br#"{"metadata": {"to"#.to_vec();
    text.push(0xC0);
    text.extend_from_slice(br#"al_size": 8}, "weight_map": {"x": "a.safetensors"}}"#);
    std::fs::write(&index, &text).unwrap();
    for path in [d, index.as_path()] {
        let e = Model::open(path).map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("model.safetensors.index.json") && e.contains("not valid UTF-8 (at byte 17)"),
            "{e}"
        );
    }
    let out = d.join("out.parquet");
    let r = run(arrowquant(&["quantize", index.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]));
    check_input_error(&r, &["model.safetensors.index.json", "UTF-8"]).unwrap();
    assert!(!out.exists());
}
