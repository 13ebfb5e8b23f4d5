//! Normal tests for what the fuzz targets found (their inputs are replayed from
//! `tests/fuzz/regressions/<target>/` by `tests/fuzz/run.sh`; see tests/fuzz/README.md).

use arrowquant_std::Model;

use arrowquant_tests::{f32_bytes, fuzz_regressions, listing, safetensors_bytes};

use super::{arrowquant, check_input_error, run};

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

#[test]
fn corrupt_pages_that_panic_inside_the_parquet_crate_are_errors_naming_the_file() {
    // `parquet_reader` crash-3370d1f0 and crash-6fc8f888: page data on which parquet
    // 60.1 panics ("Decoder for dict should have been set", a division by zero). The
    // reader decodes under a guard that turns such a panic into an error.
    let regressions = fuzz_regressions("parquet_reader");
    for name in [
        "page_dict_decoder_unset_a",
        "page_dict_decoder_unset_b",
        "page_dict_decoder_unset_c",
        "page_divide_by_zero",
        "page_decoder_panic_d",
        // Session 3: divide by zero in parquet's byte_array.rs, from another input.
        "page_byte_array_panic_guarded",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.parquet");
        std::fs::copy(regressions.join(name), &path).unwrap();
        let mut errors = Vec::new();
        match arrowquant_std::QuantizedFile::open(&path) {
            Err(e) => errors.push(e.to_string()),
            Ok(f) => {
                if let Err(e) = f.for_each_chunk(|_, _, _| Ok(())) {
                    errors.push(e.to_string());
                }
                for t in f.tensors() {
                    if let Err(e) = f.read_tensor_f32(&t.name) {
                        errors.push(e.to_string());
                    }
                }
            }
        }
        assert!(!errors.is_empty(), "{name}: a corrupt file read back without an error");
        for e in &errors {
            assert!(e.contains("q.parquet") && !e.contains('\n'), "{name}: {e}");
        }
        // The CLI answers with one line naming the file, exit 2, and no internal-error line.
        let out = dir.path().join("dq.safetensors");
        let r = run(arrowquant(&["dequantize", path.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]));
        check_input_error(&r, &["q.parquet"]).unwrap();
        assert!(!r.stderr.contains("internal error"), "{name}: {}", r.stderr);
        assert!(!out.exists());
    }
}

#[test]
fn a_schema_field_name_with_a_newline_gives_a_one_line_error() {
    // `parquet_reader` crash-71b6b494 and crash-f062b13a (CI, session 6): a corrupt
    // embedded Arrow schema names a field `max_abs_er\n` (`b\nts_requested`); the
    // parquet crate's error quotes it, and our message spanned two lines. Every text
    // field of `AdapterError` is now shown with control characters escaped.
    let regressions = fuzz_regressions("parquet_reader");
    for (name, quoted) in [
        ("schema_field_name_with_newline_a", r"max_abs_er\n"),
        ("schema_field_name_with_newline_b", r"b\nts_requested"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.parquet");
        std::fs::copy(regressions.join(name), &path).unwrap();
        let e = arrowquant_std::QuantizedFile::open(&path).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("q.parquet") && e.contains(quoted) && !e.contains('\n'), "{name}: {e:?}");
        let out = dir.path().join("dq.safetensors");
        let r = run(arrowquant(&["dequantize", path.to_str().unwrap(), "-o", out.to_str().unwrap()], &[]));
        check_input_error(&r, &["q.parquet", quoted]).unwrap();
        assert!(!out.exists());
    }
}

#[test]
fn postcard_export_of_corrupt_pages_is_an_error_naming_the_file() {
    // `export --format postcard` copies the stored blocks; it used to read them with a
    // Parquet scan of its own, outside the decode guard, so on these inputs the
    // parquet crate's panic reached the CLI's hook ("internal error", and the
    // temporary output file was left behind). It now reads through the reader.
    let regressions = fuzz_regressions("parquet_reader");
    let mut names: Vec<String> = std::fs::read_dir(&regressions)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("page_"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "page_* regressions missing from {}: {names:?}", regressions.display());
    // Inputs whose manifest opens, so the export reaches page decoding: without them
    // this test would pass on open errors alone.
    let mut scanned = 0;
    for name in &names {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.parquet");
        std::fs::copy(regressions.join(name), &path).unwrap();
        scanned += usize::from(arrowquant_std::QuantizedFile::open(&path).is_ok());
        let out = dir.path().join("q.aqdv");
        let r = run(arrowquant(
            &["export", path.to_str().unwrap(), "--format", "postcard", "-o", out.to_str().unwrap()],
            &[],
        ));
        check_input_error(&r, &["q.parquet"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!r.stderr.contains("internal error"), "{name}: {}", r.stderr);
        assert_eq!(listing(dir.path()), ["q.parquet"], "{name}: no output or temporary file");
    }
    assert!(scanned > 0, "no page_* input opens: {names:?}");
}
