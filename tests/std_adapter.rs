//! The std adapter end to end: safetensors -> Parquet -> dequantized safetensors,
//! quality fallback, malformed inputs, configuration, the batch API and a second,
//! independent reader in Python (`tests/python/read_parquet.py`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrowquant_std::core::{bf16, f16};
use arrowquant_std::{
    AdapterError, Config, ConfigError, ConfigLayer, Model, OutDtype, Profile, QuantizedFile,
    SafetensorsError, Tuning, quantize_batch, quantize_model, quantize_model_with, validate,
};

mod pinned;

/// A tensor for [`write_safetensors`]: name, dtype, shape, little-endian bytes.
type Spec = (String, &'static str, Vec<u64>, Vec<u8>);

fn write_safetensors(path: &Path, tensors: &[Spec]) {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
    let mut off = 0u64;
    for (name, dtype, shape, bytes) in tensors {
        let n = bytes.len() as u64;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [off, off + n]}),
        );
        off += n;
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, b) in tensors {
        out.extend_from_slice(b);
    }
    std::fs::write(path, out).unwrap();
}

/// Deterministic heavy-tailed values.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = ((s >> 40) as f32 + 1.0) / (1u64 << 24) as f32;
            let x = -0.05 * u.ln() * if s & 1 == 0 { 1.0 } else { -1.0 };
            if (s >> 8).is_multiple_of(997) { x * 8.0 } else { x }
        })
        .collect()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A small model exercising every path: F32/F16/BF16, a ragged tail, I64, a 1-D bias,
/// a misaligned F32 tensor after an odd-length U8 tensor, and an empty tensor.
fn mixed_model(dir: &Path) -> PathBuf {
    let p = dir.join("mixed.safetensors");
    let a = values(96 * 130, 1);
    let h: Vec<u8> = values(64 * 64, 2).iter().flat_map(|x| f16::from_f32(*x).to_le_bytes()).collect();
    let b: Vec<u8> = values(40 * 33, 3).iter().flat_map(|x| bf16::from_f32(*x).to_le_bytes()).collect();
    let ids: Vec<u8> = (0..17i64).flat_map(|i| (i * 1000 - 3).to_le_bytes()).collect();
    write_safetensors(
        &p,
        &[
            ("layer.0.weight".into(), "F32", vec![96, 130], f32_bytes(&a)),
            ("layer.0.bias".into(), "F32", vec![130], f32_bytes(&values(130, 4))),
            ("layer.1.weight".into(), "F16", vec![64, 64], h),
            ("odd.bytes".into(), "U8", vec![3], vec![1, 2, 3]),
            ("misaligned.weight".into(), "F32", vec![10, 77], f32_bytes(&values(770, 5))),
            ("layer.2.weight".into(), "BF16", vec![40, 33], b),
            ("position_ids".into(), "I64", vec![1, 17], ids),
            ("empty.weight".into(), "F32", vec![0, 8], vec![]),
        ],
    );
    p
}

/// Reads an F32 tensor of a safetensors file fully (test sizes only).
fn read_f32(path: &Path, name: &str) -> Vec<f32> {
    let m = Model::open(path).unwrap();
    let t = m.tensor(name).unwrap();
    let bytes = std::fs::read(path).unwrap();
    let raw = &bytes[t.offset as usize..(t.offset + t.byte_len) as usize];
    match t.dtype.name() {
        "F32" => raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        "F16" => raw.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        "BF16" => raw.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => panic!("{name}: not a float dtype {other}"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = arrowquant_std::core::QualityAccumulator::new();
    acc.update(a, b);
    acc.finish().cosine
}

fn only_file(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The independent reader decodes `parquet` to `reference`, bit for bit.
fn python_check(parquet: &Path, reference: &Path) {
    let text = arrowquant_tests::read_parquet_py(&[parquet, reference]);
    assert!(text.contains(" 0 mismatches"), "{text}");
    eprintln!("{}", text.trim());
}

fn round_trip(model_path: &Path, config: &Config, tuning: Option<Tuning>, dir: &Path) -> (PathBuf, PathBuf) {
    let model = Model::open(model_path).unwrap();
    let out = dir.join("q.parquet");
    let report = match tuning {
        Some(t) => quantize_model_with(&model, config, t, &out, &mut |_| {}),
        None => quantize_model(&model, config, &out, &mut |_| {}),
    }
    .unwrap();
    let q = QuantizedFile::open(&out).unwrap();
    assert_eq!(q.file_size(), report.output_bytes);
    let export = dir.join("deq.safetensors");
    q.export_safetensors(&export, OutDtype::F32).unwrap();
    let v = validate(&model, &q, config.min_accuracy).unwrap();
    // Every quantized tensor: the cosine of the exported values equals what the
    // quantizer reported and what validation measures.
    for (t, vt) in report.tensors.iter().zip(&v.tensors) {
        assert_eq!(t.name, vt.name);
        if t.quantized {
            let c = cosine(&read_f32(model_path, &t.name), &read_f32(&export, &t.name));
            let reported = t.cosine.unwrap();
            assert!((c - reported).abs() <= 1e-9, "{}: exported {c} vs reported {reported}", t.name);
            assert!((vt.cosine.unwrap() - reported).abs() <= 1e-9, "{}: validate vs report", t.name);
        } else {
            assert!(vt.exact && vt.pass, "{} stored raw must round-trip exactly", t.name);
        }
    }
    (out, export)
}

#[test]
fn mixed_model_round_trips() {
    mixed_model_round_trip(false);
}

#[test]
#[ignore = "needs python3 with numpy and pyarrow; CI's python step runs it"]
fn mixed_model_round_trips_and_python_agrees() {
    mixed_model_round_trip(true);
}

/// The mixed model through small and default chunkings; `with_python`, the independent
/// reader agrees.
fn mixed_model_round_trip(with_python: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_model(dir.path());
    let config =
        Config::from_layers(&[ConfigLayer { min_accuracy: Some(0.0), ..Default::default() }]).unwrap();
    // Tiny rows and windows: many chunks per tensor, ragged tails, several windows.
    let tuning = Tuning {
        chunk_elements: 1000,
        window_bytes: 4096,
        raw_chunk_bytes: 10,
        ..Tuning::for_config(&config)
    };
    let (out, export) = round_trip(&src, &config, Some(tuning), dir.path());
    let q = QuantizedFile::open(&out).unwrap();
    let names: Vec<(&str, bool)> = q.tensors().iter().map(|t| (t.name.as_str(), t.is_quantized())).collect();
    assert_eq!(
        names,
        [
            ("layer.0.weight", true),
            ("layer.0.bias", false),
            ("layer.1.weight", true),
            ("odd.bytes", false),
            ("misaligned.weight", true),
            ("layer.2.weight", true),
            ("position_ids", false),
            ("empty.weight", false),
        ]
    );
    assert!(q.tensor("layer.0.weight").unwrap().rows > 10, "many chunks");
    // Raw tensors are carried byte for byte; the export keeps their dtype.
    let m = Model::open(&export).unwrap();
    assert_eq!(m.tensor("position_ids").unwrap().dtype.name(), "I64");
    assert_eq!(m.tensor("layer.1.weight").unwrap().dtype.name(), "F32");
    // The chunking does not change the result: default sizes give the same export.
    let dir2 = tempfile::tempdir().unwrap();
    let (_, export2) = round_trip(&src, &config, None, dir2.path());
    assert_eq!(std::fs::read(&export).unwrap(), std::fs::read(&export2).unwrap());
    if with_python {
        python_check(&out, &export);
    }
}

#[test]
fn presets_round_trip() {
    presets_round_trip_with(false);
}

#[test]
#[ignore = "needs python3 with numpy and pyarrow; CI's python step runs it"]
fn presets_round_trip_and_python_agrees() {
    presets_round_trip_with(true);
}

/// Each preset on the mixed model; `with_python`, the independent reader agrees.
fn presets_round_trip_with(with_python: bool) {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_model(dir.path());
    for preset in ["fast", "int2", "int4"] {
        let sub = dir.path().join(preset);
        std::fs::create_dir(&sub).unwrap();
        let layer =
            ConfigLayer { preset: Some(preset.into()), min_accuracy: Some(0.9), ..Default::default() };
        let config = Config::from_layers(&[layer]).unwrap();
        let (out, export) = round_trip(&src, &config, None, &sub);
        let q = QuantizedFile::open(&out).unwrap();
        let t = q.tensor("layer.0.weight").unwrap();
        assert!(t.codec.starts_with(if preset == "fast" { "g4a128" } else { "k" }), "{preset}: {}", t.codec);
        if with_python {
            python_check(&out, &export);
        }
    }
}

#[test]
// Needs ARROWQUANT_PYTHON too (python_check): the CI step sets both.
#[ignore = "needs all-MiniLM-L6-v2 in ARROWQUANT_MINILM; CI's model step runs it"]
fn minilm_round_trip_matches_reported_cosine() {
    let path = arrowquant_tests::minilm();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::from_profile(Profile::Local);
    let (out, export) = round_trip(&path, &config, None, dir.path());
    let q = QuantizedFile::open(&out).unwrap();
    let quantized = q.tensors().iter().filter(|t| t.is_quantized()).count();
    assert!(quantized >= 36, "MiniLM has about 40 matrices, {quantized} quantized");
    python_check(&out, &export);
}

#[test]
fn fallback_widens_and_fail_fast_stops() {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_model(dir.path());
    let model = Model::open(&src).unwrap();
    let strict = ConfigLayer { bit_width: Some(2), min_accuracy: Some(0.999), ..Default::default() };
    let config = Config::from_layers(std::slice::from_ref(&strict)).unwrap();
    let out = dir.path().join("fb.parquet");
    let mut events = 0;
    let r = quantize_model(&model, &config, &out, &mut |p| {
        if matches!(p.event, arrowquant_std::ProgressEvent::Fallback { .. }) {
            events += 1;
        }
    })
    .unwrap();
    let t = r.tensors.iter().find(|t| t.name == "layer.0.weight").unwrap();
    assert_eq!(t.bits_requested, 2);
    assert!(t.bits > 2 && !t.fallback.is_empty(), "{t:?}");
    assert!(
        t.fallback[0].cosine < 0.999 && t.fallback_reason.as_deref().unwrap().contains("below min_accuracy")
    );
    assert!(t.cosine.unwrap() >= 0.999 || t.below_min_accuracy);
    assert!(events >= 1 && r.fallback_tensors >= 1);
    let q = QuantizedFile::open(&out).unwrap();
    let st = q.tensor("layer.0.weight").unwrap();
    assert_eq!((st.bits, st.bits_requested), (t.bits, 2));
    assert!(st.fallback_reason.is_some());

    let ff = Config::from_layers(&[ConfigLayer { fail_fast: Some(true), ..strict }]).unwrap();
    let out2 = dir.path().join("ff.parquet");
    let e = quantize_model(&model, &ff, &out2, &mut |_| {}).unwrap_err();
    assert!(matches!(e, AdapterError::BelowAccuracy { ref tensor, .. } if tensor == "layer.0.weight"), "{e}");
    assert!(e.to_string().contains("layer.0.weight") && e.to_string().contains("cosine"));
    assert!(!out2.exists());
    assert!(!only_file(dir.path()).iter().any(|f| f.contains("ff.parquet")), "no temporary left");
}

/// Builds a file from a header string and data length.
fn raw_file(header: &str, data: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend_from_slice(header.as_bytes());
    v.resize(v.len() + data, 0);
    v
}

#[test]
fn malformed_safetensors_give_clear_errors_and_no_output() {
    let ok = r#"{"w":{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]}}"#;
    let mut truncated = raw_file(ok, 128);
    truncated.truncate(100);
    let mut header_long = raw_file(ok, 128);
    header_long[..8].copy_from_slice(&10_000u64.to_le_bytes());
    let mut absurd = raw_file(ok, 128);
    absurd[..8].copy_from_slice(&(1u64 << 62).to_le_bytes());
    let mut non_utf8 = raw_file(ok, 128);
    non_utf8[12] = 0xfe;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "too short"),
        ("truncated", truncated, "past the end of the data"),
        ("header_longer_than_file", header_long, "runs past the end of the file"),
        ("absurd_header_length", absurd, "exceeds the limit"),
        (
            "offsets_out_of_bounds",
            raw_file(r#"{"w":{"dtype":"F32","shape":[4,8],"data_offsets":[64,192]}}"#, 128),
            "past the end of the data",
        ),
        (
            "overlapping",
            raw_file(
                r#"{"a":{"dtype":"F32","shape":[4,8],"data_offsets":[0,128]},"b":{"dtype":"F32","shape":[2,8],"data_offsets":[64,128]}}"#,
                128,
            ),
            "overlap",
        ),
        (
            "wrong_byte_length",
            raw_file(r#"{"w":{"dtype":"F32","shape":[4,9],"data_offsets":[0,128]}}"#, 128),
            "needs 144 bytes",
        ),
        (
            "unknown_dtype",
            raw_file(r#"{"w":{"dtype":"F12","shape":[4,8],"data_offsets":[0,128]}}"#, 128),
            "unknown dtype `F12`",
        ),
        ("non_utf8", non_utf8, "not valid UTF-8"),
        ("non_json", raw_file("{this is not json}", 128), "not valid safetensors JSON"),
    ];
    let config = Config::default();
    for (name, bytes, expect) in cases {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join(format!("{name}.safetensors"));
        std::fs::write(&src, &bytes).unwrap();
        let out = dir.path().join("out.parquet");
        let e = match Model::open(&src) {
            Err(e) => e,
            Ok(m) => quantize_model(&m, &config, &out, &mut |_| {}).unwrap_err(),
        };
        let msg = e.to_string();
        assert!(matches!(e, AdapterError::Safetensors { .. }), "{name}: {msg}");
        assert!(msg.contains(&format!("{name}.safetensors")), "{name}: message must name the file: {msg}");
        assert!(msg.contains(expect), "{name}: expected `{expect}` in: {msg}");
        assert_eq!(only_file(dir.path()), [format!("{name}.safetensors")], "{name}: no output");
    }
}

#[test]
fn bad_values_and_shards() {
    let dir = tempfile::tempdir().unwrap();
    // A NaN: the error names file, tensor and element; nothing is written.
    let mut v = values(64 * 8, 9);
    v[77] = f32::NAN;
    let src = dir.path().join("nan.safetensors");
    write_safetensors(&src, &[("w".into(), "F32", vec![64, 8], f32_bytes(&v))]);
    let out = dir.path().join("nan.parquet");
    let e = quantize_model(&Model::open(&src).unwrap(), &Config::default(), &out, &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("nan.safetensors") && msg.contains("`w`") && msg.contains("element 77"), "{msg}");
    assert!(!out.exists());

    // A sharded model: the index names the shards; a bad index is an error naming it.
    let sh = dir.path().join("sharded");
    std::fs::create_dir(&sh).unwrap();
    write_safetensors(
        &sh.join("a.safetensors"),
        &[("x".into(), "F32", vec![32, 8], f32_bytes(&values(256, 1)))],
    );
    write_safetensors(
        &sh.join("b.safetensors"),
        &[("y".into(), "F32", vec![32, 8], f32_bytes(&values(256, 2)))],
    );
    let index = r#"{"metadata":{},"weight_map":{"x":"a.safetensors","y":"b.safetensors"}}"#;
    std::fs::write(sh.join("model.safetensors.index.json"), index).unwrap();
    let m = Model::open(&sh).unwrap();
    assert_eq!(m.files.len(), 2);
    assert_eq!(m.tensors.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["x", "y"]);
    let bad = r#"{"weight_map":{"x":"a.safetensors","z":"../b.safetensors"}}"#;
    std::fs::write(sh.join("model.safetensors.index.json"), bad).unwrap();
    let e = Model::open(&sh).unwrap_err().to_string();
    assert!(e.contains("model.safetensors.index.json") && e.contains("plain file name"), "{e}");
    let e = Model::open(dir.path().join("missing")).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn config_precedence_env_and_validation() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("c.yaml");
    std::fs::write(&yaml, "deployment_profile: edge\nbit_width: 4\ngroup_size: 64\nmax_memory: 512M\n")
        .unwrap();
    let file = ConfigLayer::from_yaml_file(&yaml).unwrap();
    let env = ConfigLayer::from_vars([("ARROW_QUANT_GROUP_SIZE", "32"), ("ARROW_QUANT_FAIL_FAST", "true")])
        .unwrap();
    let args = ConfigLayer { bit_width: Some(8), ..Default::default() };
    let c = Config::from_layers(&[file.clone(), env.clone(), args]).unwrap();
    // profile edge from the file; file over profile; env over file; args over env.
    assert_eq!(c.deployment_profile, Profile::Edge);
    assert_eq!((c.bit_width, c.group_size, c.fail_fast, c.max_memory), (8, 32, true, 512 << 20));
    assert_eq!((c.min_accuracy, c.calibration_samples), (0.65, 32));
    let env_profile = ConfigLayer::from_vars([("ARROW_QUANT_DEPLOYMENT_PROFILE", "cloud")]).unwrap();
    let c = Config::from_layers(&[file, env_profile]).unwrap();
    assert_eq!((c.deployment_profile, c.bit_width, c.min_accuracy), (Profile::Cloud, 4, 0.95));

    for (yaml_text, err) in [
        ("bit_width: 3\n", ConfigError::InvalidBitWidth(3)),
        ("num_time_groups: 0\n", ConfigError::InvalidTimeGroups(0)),
        ("group_size: 100\n", ConfigError::InvalidGroupSize(100)),
        ("min_accuracy: 1.5\n", ConfigError::InvalidAccuracy(1.5)),
    ] {
        // Parsed from text, the merged configuration names the field.
        let e = Config::from_layers(&[ConfigLayer::from_yaml_str(yaml_text).unwrap()]).unwrap_err();
        assert_eq!(e, err);
        assert!(e.to_string().contains("(allowed: "), "allowed values in: {e}");
        // Read from a file, the error names the file too.
        std::fs::write(&yaml, yaml_text).unwrap();
        let e = ConfigLayer::from_yaml_file(&yaml).unwrap_err();
        assert_eq!(e, ConfigError::File { path: yaml.clone(), message: err.to_string() });
    }
    std::fs::write(&yaml, "bit_width: four\n").unwrap();
    let e = ConfigLayer::from_yaml_file(&yaml).unwrap_err().to_string();
    assert!(e.contains("c.yaml"), "{e}");
    let e = ConfigLayer::from_vars([("ARROW_QUANT_MIN_ACCURACY", "high")]).unwrap_err().to_string();
    assert!(e.contains("ARROW_QUANT_MIN_ACCURACY") && e.contains("high"), "{e}");
}

#[test]
fn batch_api_quantizes_and_names_bad_columns() {
    use arrow_array::builder::{Float32Builder, Int64Builder, ListBuilder};
    use arrow_array::{ArrayRef, Float32Array, RecordBatch, StringArray};
    let mut w = ListBuilder::new(Float32Builder::new());
    let mut s = ListBuilder::new(Int64Builder::new());
    for (i, n) in [(0u64, 256usize), (1, 300)] {
        w.values().append_slice(&values(n, i + 20));
        w.append(true);
        s.values().append_slice(&[n as i64 / 4, 4][..if n % 4 == 0 { 2 } else { 0 }]);
        if n % 4 == 0 { s.append(true) } else { s.append_null() }
    }
    let names: ArrayRef = Arc::new(StringArray::from(vec!["a", "b"]));
    let batch = RecordBatch::try_from_iter([
        ("layer_name", names.clone()),
        ("weights", Arc::new(w.finish()) as ArrayRef),
        ("shape", Arc::new(s.finish()) as ArrayRef),
    ])
    .unwrap();
    let out = quantize_batch(&batch, &Config::default()).unwrap();
    assert_eq!(out.schema(), arrowquant_std::schema());
    assert_eq!(out.num_rows(), 2);
    let bad = RecordBatch::try_from_iter([
        ("layer_name", names),
        ("weights", Arc::new(Float32Array::from(vec![1.0, 2.0])) as ArrayRef),
    ])
    .unwrap();
    let e = quantize_batch(&bad, &Config::default()).unwrap_err().to_string();
    assert!(e.contains("`weights`") && e.contains("List<Float32>"), "{e}");
}

#[test]
fn source_metadata_survives_export() {
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_model(dir.path());
    let model = Model::open(&src).unwrap();
    let out = dir.path().join("m.parquet");
    quantize_model(&model, &Config::default(), &out, &mut |_| {}).unwrap();
    let q = QuantizedFile::open(&out).unwrap();
    assert_eq!(q.source_metadata(), &BTreeMap::from([("format".to_string(), "pt".to_string())]));
    assert!(q.config().is_some() && q.tool_version().starts_with("arrowquant-std"));
    let e = dir.path().join("e.safetensors");
    q.export_safetensors(&e, OutDtype::F16).unwrap();
    let m = Model::open(&e).unwrap();
    assert_eq!(m.metadata.get("format").map(String::as_str), Some("pt"));
    assert_eq!(m.tensor("layer.0.weight").unwrap().dtype.name(), "F16");
    // A file that is not ours is refused with a reason: a model given where the
    // quantized file goes is named as one.
    let e = QuantizedFile::open(&src).unwrap_err();
    assert!(matches!(e, AdapterError::BadQuantizedFile { .. }), "{e}");
    assert!(e.to_string().contains("this is a safetensors model"), "{e}");
    let _ = SafetensorsError::TooShort { len: 0 };
}

#[test]
fn one_and_two_threads_store_the_same_tensors() {
    // With two threads every row chunk is a task of the pool that maps its own bytes,
    // results are taken in chunk order, and the Parquet encoding and compression run
    // on a writer thread. With tiny chunks, batches and row groups every tensor
    // crosses those threads many times; what is stored must not change, whether the
    // tensor is buffered (one pass) or measured and then written (two passes).
    let dir = tempfile::tempdir().unwrap();
    let src = mixed_model(dir.path());
    let model = Model::open(&src).unwrap();
    for buffer_bytes in [None, Some(0)] {
        let mut exports = Vec::new();
        let mut reports = Vec::new();
        for threads in [1usize, 2] {
            let config = Config::from_layers(&[ConfigLayer {
                min_accuracy: Some(0.0),
                num_threads: Some(threads),
                ..Default::default()
            }])
            .unwrap();
            let defaults = Tuning::for_config(&config);
            let tuning = Tuning {
                chunk_elements: 512,
                window_bytes: 8192,
                raw_chunk_bytes: 10,
                buffer_bytes: buffer_bytes.unwrap_or(defaults.buffer_bytes),
                writer: arrowquant_std::WriterLimits { batch_bytes: 1024, row_group_bytes: 4096 },
            };
            let case = format!("{threads} threads, buffer {buffer_bytes:?}");
            let sub = dir.path().join(format!("t{threads}-{}", buffer_bytes.is_some()));
            std::fs::create_dir(&sub).unwrap();
            let (out, export) = round_trip(&src, &config, Some(tuning), &sub);
            let mut progress: Vec<(usize, u64)> = Vec::new();
            let report = quantize_model_with(&model, &config, tuning, &sub.join("again.parquet"), &mut |p| {
                progress.push((p.tensor_index, p.bytes_done));
            })
            .unwrap();
            assert_eq!(report.threads, threads);
            // Progress never goes back and reaches the end of every tensor.
            assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{case}: progress went back");
            assert_eq!(progress.last().map(|p| p.1), Some(report.input_bytes), "{case}");
            let file = std::fs::File::open(&out).unwrap();
            let groups = parquet::file::reader::FileReader::num_row_groups(
                &parquet::file::reader::SerializedFileReader::new(file).unwrap(),
            );
            assert!(groups > 4, "{case}: {groups} row groups");
            exports.push(std::fs::read(&export).unwrap());
            reports.push(report.tensors);
        }
        assert_eq!(exports[0], exports[1], "buffer {buffer_bytes:?}: dequantized tensors differ");
        assert_eq!(reports[0], reports[1], "buffer {buffer_bytes:?}: per-tensor reports differ");
    }
}

#[test]
fn two_threads_report_the_first_bad_element_like_one() {
    // NaNs in two chunks far apart: with chunks encoded out of order by the pool, the
    // error must still be the one the sequential pass meets first, and nothing is left.
    let dir = tempfile::tempdir().unwrap();
    let mut v = values(64 * 256, 11);
    v[9_000] = f32::NAN;
    v[15_000] = f32::INFINITY;
    let src = dir.path().join("bad.safetensors");
    write_safetensors(&src, &[("w".into(), "F32", vec![64, 256], f32_bytes(&v))]);
    let model = Model::open(&src).unwrap();
    for threads in [1usize, 2] {
        let config =
            Config::from_layers(&[ConfigLayer { num_threads: Some(threads), ..Default::default() }]).unwrap();
        // A window of the whole tensor: all 64 chunks are in flight at once.
        let tuning = Tuning { chunk_elements: 256, window_bytes: 1 << 20, ..Tuning::for_config(&config) };
        let out = dir.path().join(format!("bad{threads}.parquet"));
        let e = quantize_model_with(&model, &config, tuning, &out, &mut |_| {}).unwrap_err().to_string();
        assert!(
            e.contains("bad.safetensors") && e.contains("`w`") && e.contains("element 9000"),
            "{threads}: {e}"
        );
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "{threads}: a temporary file was left");
    }
}
