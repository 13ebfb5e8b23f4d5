//! `quantize --format gguf`, GGUF input and `dequantize` of a GGUF: types, shapes,
//! offsets and values read back with core's parser and decoder; malformed GGUF
//! inputs; and (ignored, needs Python) the bit-for-bit comparison with gguf-py.

use std::path::Path;

use arrowquant_core::ggml::{self, GgmlType};
use arrowquant_core::gguf::{GgufHeader, GgufWriter, Value, keys};

use super::{Rng, f32_tensor, listing, run, s, safetensors_bytes, tempdir};

fn header_of(path: &Path) -> (Vec<u8>, GgufHeader) {
    let bytes = std::fs::read(path).unwrap();
    let h = GgufHeader::parse(&bytes).unwrap();
    (bytes, h)
}

fn decode(bytes: &[u8], h: &GgufHeader, name: &str) -> Vec<f32> {
    let t = h.tensor(name).unwrap();
    let r = h.data_range(t);
    let data = &bytes[r.start as usize..r.end as usize];
    match t.ggml_type() {
        GgmlType::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(),
        GgmlType::F16 => {
            data.chunks_exact(2).map(|c| arrowquant_core::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect()
        }
        ty => {
            let mut out = vec![0f32; t.elements() as usize];
            ggml::dequantize(ty, data, &mut out).unwrap();
            out
        }
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let na: f64 = a.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (na * nb)
}

fn le_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn safetensors_to_gguf_types_shapes_values_and_report() {
    let dir = tempdir();
    let model = dir.path().join("tiny.safetensors");
    let mut rng = Rng(17);
    let tensors = vec![
        f32_tensor("a.weight", &[8, 512], &mut rng),
        f32_tensor("b.weight", &[4, 384], &mut rng),
        f32_tensor("c.weight", &[4, 200], &mut rng),
        f32_tensor("norm.weight", &[512], &mut rng),
        ("ids".to_string(), "I64", vec![4], (0..4i64).flat_map(|i| i.to_le_bytes()).collect()),
    ];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let out = dir.path().join("q.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json", "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["codec"], "gguf:Q4_K");
    let layers = j["layers"].as_array().unwrap();
    let layer = |n: &str| layers.iter().find(|l| l["name"] == n).unwrap().clone();
    assert_eq!(layer("a.weight")["codec"], "Q4_K");
    assert!(layer("a.weight")["fallback_reason"].is_null());
    assert_eq!(layer("b.weight")["codec"], "Q5_0");
    assert!(layer("b.weight")["fallback_reason"].as_str().unwrap().contains("384"));
    assert_eq!(layer("c.weight")["codec"], "F16");
    assert_eq!(layer("norm.weight")["codec"], "F32");
    assert!(layer("a.weight")["cosine"].as_f64().unwrap() > 0.99);
    assert!(layer("b.weight")["sqnr_db"].as_f64().unwrap() > 20.0);
    assert!(j["skipped_by_format"][0].as_str().unwrap().starts_with("ids"));

    let (bytes, h) = header_of(&out);
    assert_eq!(h.version(), 3);
    assert_eq!(h.alignment(), 32);
    assert_eq!(h.get(keys::GENERAL_FILE_TYPE), Some(&Value::U32(15)));
    assert_eq!(h.get(keys::GENERAL_QUANTIZATION_VERSION), Some(&Value::U32(2)));
    assert_eq!(h.metadata().get_str(keys::GENERAL_ARCHITECTURE).unwrap(), "unknown");
    assert_eq!(h.metadata().get_str(keys::GENERAL_NAME).unwrap(), "tiny");
    let names: Vec<&str> = h.tensors().iter().map(|t| t.name()).collect();
    assert_eq!(names, ["a.weight", "b.weight", "c.weight", "norm.weight"]);
    let want = [
        ("a.weight", GgmlType::Q4_K, vec![512u64, 8]),
        ("b.weight", GgmlType::Q5_0, vec![384, 4]),
        ("c.weight", GgmlType::F16, vec![200, 4]),
        ("norm.weight", GgmlType::F32, vec![512]),
    ];
    let mut end = 0;
    for ((name, ty, dims), (_, _, _, input)) in want.iter().zip(&tensors) {
        let t = h.tensor(name).unwrap();
        assert_eq!((t.ggml_type(), t.dims()), (*ty, &dims[..]), "{name}");
        assert_eq!(t.offset() % 32, 0);
        assert!(t.offset() >= end, "{name}: data in order, not overlapping");
        end = t.offset() + t.n_bytes();
        let got = decode(&bytes, &h, name);
        let x = le_f32(input);
        if *ty == GgmlType::F32 {
            let r = h.data_range(t);
            assert_eq!(&bytes[r.start as usize..r.end as usize], &input[..], "{name}: F32 bit-exact");
        } else {
            let c = cosine(&x, &got);
            assert!(c > 0.99, "{name}: cosine {c}");
        }
    }
    assert_eq!(bytes.len() as u64, h.data_offset() + end.next_multiple_of(32));

    // Reading back: our decoder's values as F32 safetensors.
    let back = dir.path().join("back.safetensors");
    let d = run(&["dequantize", s(&out), "-o", s(&back)]);
    assert_eq!(d.code, 0, "{d:?}");
    let st = std::fs::read(&back).unwrap();
    let n = u64::from_le_bytes(st[..8].try_into().unwrap()) as usize;
    let hj: serde_json::Value = serde_json::from_slice(&st[8..8 + n]).unwrap();
    assert_eq!(hj["a.weight"]["shape"], serde_json::json!([8, 512]));
    let [a, b] = [0, 1].map(|i| hj["a.weight"]["data_offsets"][i].as_u64().unwrap() as usize);
    assert_eq!(le_f32(&st[8 + n + a..8 + n + b]), decode(&bytes, &h, "a.weight"));
}

#[test]
fn gguf_type_flag_and_presets_choose_the_type() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(3);
    std::fs::write(&model, safetensors_bytes(&[f32_tensor("w", &[2, 256], &mut rng)])).unwrap();
    for (args, ty) in [
        (&["--gguf-type", "q8_0"][..], "Q8_0"),
        (&["--gguf-type", "IQ4_XS"][..], "IQ4_XS"),
        (&["--preset", "int2"][..], "Q2_K"),
        (&["--bits", "8"][..], "Q8_0"),
        (&[][..], "Q4_K"),
    ] {
        let out = dir.path().join("o.gguf");
        let mut a = vec!["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json", "-q"];
        a.extend_from_slice(args);
        let r = run(&a);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        assert_eq!(r.json()["layers"][0]["codec"], ty, "{args:?}");
    }
    let out = dir.path().join("bad.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--gguf-type", "Q9_Z"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("Q9_Z"), "{r:?}");
    assert!(!out.exists());
}

#[test]
fn gguf_effort_best_is_never_worse_than_fast_and_a_bad_effort_is_a_usage_error() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(5);
    std::fs::write(&model, safetensors_bytes(&[f32_tensor("w", &[16, 1024], &mut rng)])).unwrap();
    for ty in ["Q4_K", "Q2_K"] {
        let mut files = Vec::new();
        let mut sqnr = Vec::new();
        for effort in ["fast", "best"] {
            let out = dir.path().join(format!("{ty}-{effort}.gguf"));
            let a = ["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json", "-q"];
            let r = run(&[&a[..], &["--gguf-type", ty, "--gguf-effort", effort]].concat());
            assert_eq!(r.code, 0, "{ty} {effort}: {r:?}");
            assert_eq!(r.json()["layers"][0]["codec"], ty);
            sqnr.push(r.json()["layers"][0]["sqnr_db"].as_f64().unwrap());
            let (bytes, h) = header_of(&out);
            let y = decode(&bytes, &h, "w");
            files.push(bytes);
            assert!(y.iter().all(|v| v.is_finite()), "{ty} {effort}");
        }
        // Best keeps, per block, the better of fast's search and ggml's choice.
        assert_ne!(files[0], files[1], "{ty}: the efforts must differ");
        assert!(sqnr[1] >= sqnr[0] - 1e-9, "{ty}: best {} < fast {}", sqnr[1], sqnr[0]);
    }
    // GGUF-only flags are refused, not ignored, for the other formats.
    for flag in [["--gguf-type", "Q4_K"], ["--gguf-effort", "best"]] {
        let out = dir.path().join("m.parquet");
        let r = run(&[&["quantize", s(&model), "-o", s(&out)][..], &flag].concat());
        assert_eq!(r.code, 2, "{flag:?}: {r:?}");
        assert!(r.stderr.contains(flag[0]) && r.stderr.contains("parquet"), "{r:?}");
        assert!(!out.exists());
    }
    let out = dir.path().join("bad.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--gguf-effort", "turbo"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("turbo") && r.stderr.contains("fast"), "{r:?}");
    assert!(!out.exists());
}

#[test]
fn gguf_output_is_the_same_on_one_and_two_threads() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(6);
    // 256 K-blocks (1,024 Q8_0 blocks): several pieces per thread.
    let tensors = [f32_tensor("a", &[64, 1024], &mut rng), f32_tensor("b", &[3, 1024], &mut rng)];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    for (ty, effort) in [("Q4_K", "fast"), ("Q2_K", "best"), ("Q8_0", "fast"), ("Q5_0", "best")] {
        let mut files = Vec::new();
        for threads in ["1", "2"] {
            let out = dir.path().join(format!("{ty}-{threads}.gguf"));
            let a = ["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json", "-q"];
            let r =
                run(&[&a[..], &["--gguf-type", ty, "--gguf-effort", effort, "--threads", threads]].concat());
            assert_eq!(r.code, 0, "{ty} {threads}: {r:?}");
            assert_eq!(r.json()["threads"].as_u64(), Some(threads.parse().unwrap()), "{ty}");
            files.push((std::fs::read(&out).unwrap(), r.json()["layers"][0]["sqnr_db"].as_f64().unwrap()));
        }
        assert!(files[0].0 == files[1].0, "{ty} {effort}: the bytes differ between 1 and 2 threads");
        assert!((files[0].1 - files[1].1).abs() < 1e-9, "{ty}: SQNR {} vs {}", files[0].1, files[1].1);
    }
}

#[test]
fn include_exclude_and_thread_caps_apply_to_gguf_output() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(8);
    let tensors = [f32_tensor("a.weight", &[4, 256], &mut rng), f32_tensor("b.weight", &[4, 256], &mut rng)];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let out = dir.path().join("o.gguf");
    let base = ["quantize", s(&model), "--format", "gguf", "-o", s(&out), "--json"];
    // --exclude keeps the tensor in its input type, with the reason.
    let r = run(&[&base[..], &["--exclude", "b.*", "--threads", "5000"]].concat());
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    let layers = j["layers"].as_array().unwrap();
    assert_eq!(layers[0]["codec"], "Q4_K");
    assert_eq!(layers[1]["codec"], "F32");
    assert!(layers[1]["raw_reason"].as_str().unwrap().contains("b.*"), "{j}");
    // The thread count is capped to the machine's cores, with a warning.
    assert!(r.stderr.contains("5000 threads asked for"), "{r:?}");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert!(j["threads"].as_u64().unwrap() <= cores, "{j}");
    // --include leaves the others out; a pattern that matches nothing is an error.
    let r = run(&[&base[..], &["--include", "a.*"]].concat());
    assert_eq!(r.json()["layers"][1]["codec"], "F32", "{r:?}");
    std::fs::remove_file(&out).unwrap();
    let r = run(&[&base[..], &["--include", "nothing.*"]].concat());
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nothing.*"), "{r:?}");
    assert!(!out.exists());
}

#[test]
fn gguf_input_keeps_every_key_value_and_tensor_name() {
    let dir = tempdir();
    let mut rng = Rng(5);
    let mut w = GgufWriter::new();
    w.push_kv(keys::GENERAL_ARCHITECTURE, "llama");
    w.push_kv("llama.context_length", Value::U32(4096));
    w.push_kv(keys::GENERAL_ALIGNMENT, Value::U32(64));
    w.push_kv(keys::GENERAL_FILE_TYPE, Value::U32(1));
    w.push_kv("tokenizer.ggml.model", "gpt2");
    w.push_tensor("token_embd.weight", &[256, 4], GgmlType::F16).unwrap();
    w.push_tensor("blk.0.attn_q.weight", &[256, 2], GgmlType::F32).unwrap();
    w.push_tensor("blk.0.attn_v.weight", &[64, 2], GgmlType::BF16).unwrap();
    w.push_tensor("output_norm.weight", &[256], GgmlType::F32).unwrap();
    let layout = w.finish().unwrap();
    let mut file = layout.header_bytes().to_vec();
    let mut inputs = Vec::new();
    for (i, t) in layout.tensors().iter().enumerate() {
        let x: Vec<f32> = (0..t.elements()).map(|_| rng.weight()).collect();
        for v in &x {
            match t.ggml_type() {
                GgmlType::F16 => file.extend_from_slice(&arrowquant_core::f16::from_f32(*v).to_le_bytes()),
                GgmlType::BF16 => file.extend_from_slice(&arrowquant_core::bf16::from_f32(*v).to_le_bytes()),
                _ => file.extend_from_slice(&v.to_le_bytes()),
            }
        }
        inputs.push(x);
        file.resize(file.len() + layout.padding_after(i) as usize, 0);
    }
    let input = dir.path().join("in.gguf");
    std::fs::write(&input, &file).unwrap();
    let out = dir.path().join("q.gguf");
    let r = run(&[
        "quantize",
        s(&input),
        "--format",
        "gguf",
        "-o",
        s(&out),
        "--gguf-type",
        "q4_k",
        "--json",
        "-q",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let (bytes, h) = header_of(&out);
    let (_, hin) = header_of(&input);
    let keys_in: Vec<&str> = hin.metadata().iter().map(|(k, _)| k).collect();
    let keys_out: Vec<&str> = h.metadata().iter().map(|(k, _)| k).collect();
    assert_eq!(&keys_out[..keys_in.len()], &keys_in[..], "every key kept, in order");
    for (k, v) in hin.metadata().iter() {
        if k != keys::GENERAL_FILE_TYPE {
            assert_eq!(h.get(k), Some(v), "{k}");
        }
    }
    assert_eq!(h.get(keys::GENERAL_FILE_TYPE), Some(&Value::U32(15)));
    assert_eq!(h.alignment(), 64);
    let names = |h: &GgufHeader| h.tensors().iter().map(|t| t.name().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&h), names(&hin));
    let types: Vec<GgmlType> = h.tensors().iter().map(|t| t.ggml_type()).collect();
    assert_eq!(types, [GgmlType::Q4_K, GgmlType::Q4_K, GgmlType::Q5_0, GgmlType::F32]);
    for (t, x) in hin.tensors().iter().zip(&inputs) {
        let got = decode(&bytes, &h, t.name());
        assert!(cosine(x, &got) > 0.99, "{}", t.name());
        assert_eq!(h.tensor(t.name()).unwrap().dims(), t.dims());
    }
    // The F32 1-D tensor is bit-exact.
    assert_eq!(decode(&bytes, &h, "output_norm.weight"), inputs[3]);
}

#[test]
fn malformed_gguf_inputs_exit_2_naming_the_file_and_write_nothing() {
    let corpus = arrowquant_tests::data_dir().join("malformed");
    let mut cases: Vec<_> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("gguf_"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 20, "{} cases", cases.len());
    for case in cases {
        let dir = tempdir();
        let input = dir.path().join(case.file_name().unwrap());
        std::fs::copy(&case, &input).unwrap();
        let out = dir.path().join("out.gguf");
        let r = run(&["quantize", s(&input), "--format", "gguf", "-o", s(&out)]);
        assert_eq!(r.code, 2, "{}: {r:?}", case.display());
        assert!(r.stderr.contains(s(&input)), "{}: names the file: {r:?}", case.display());
        assert_eq!(r.stderr.trim_end().lines().count(), 1, "{}: one line: {r:?}", case.display());
        assert_eq!(listing(dir.path()), [input.file_name().unwrap().to_string_lossy().into_owned()]);
    }
}

/// The interpreter and model of the Python check, or a loud failure.
fn python_env() -> (String, String) {
    let py = std::env::var("ARROWQUANT_PYTHON")
        .expect("set ARROWQUANT_PYTHON to a python3 with gguf and numpy (CI's python step does)");
    let minilm = std::env::var("ARROWQUANT_MINILM")
        .expect("set ARROWQUANT_MINILM to all-MiniLM-L6-v2's model.safetensors");
    assert!(Path::new(&minilm).is_file(), "ARROWQUANT_MINILM={minilm} is not a file");
    (py, minilm)
}

/// Quantizes `model` to `ty`, decodes it with ours and with gguf-py, and checks that
/// both agree bit for bit and that tensors of type `want` were among them.
fn check_with_gguf_py(py: &str, model: &Path, (ty, effort): (GgmlType, &str), want: GgmlType, dir: &Path) {
    let out = dir.join(format!("{}.gguf", ty.name()));
    let back = dir.join(format!("{}.safetensors", ty.name()));
    let args = ["--gguf-type", ty.name(), "--gguf-effort", effort, "-q"];
    let r = run(&[&["quantize", s(model), "--format", "gguf", "-o", s(&out)][..], &args].concat());
    assert_eq!(r.code, 0, "{ty}: {r:?}");
    let d = run(&["dequantize", s(&out), "-o", s(&back)]);
    assert_eq!(d.code, 0, "{ty}: {d:?}");
    let script = arrowquant_tests::data_dir().join("../python/check_gguf_dequant.py");
    let o = std::process::Command::new(py)
        .args([s(&script), s(&out), s(&back), want.name()])
        .output()
        .expect("running the python check");
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    assert!(o.status.success(), "{ty}: {}", String::from_utf8_lossy(&o.stderr));
    std::fs::remove_file(out).unwrap();
    std::fs::remove_file(back).unwrap();
}

#[test]
#[ignore = "needs python3 with gguf and numpy; CI's python step runs it"]
fn gguf_py_dequantizes_our_files_bit_for_bit_minilm() {
    let (py, minilm) = python_env();
    let dir = tempdir();
    for ty in GgmlType::QUANTIZED {
        // 384-wide rows: the 256-block types fall back to their 32-block types.
        check_with_gguf_py(&py, Path::new(&minilm), (ty, "fast"), ty.for_row_len(384), dir.path());
    }
}

#[test]
#[ignore = "needs python3 with gguf and numpy; CI's python step runs it"]
fn gguf_py_dequantizes_our_files_bit_for_bit_4096_rows() {
    let (py, _) = python_env();
    let dir = tempdir();
    let model = dir.path().join("wide.safetensors");
    let mut rng = Rng(4096);
    let tensors = [
        f32_tensor("blk.0.ffn_up.weight", &[16, 4096], &mut rng),
        f32_tensor("blk.0.attn_q.weight", &[8, 4096], &mut rng),
        f32_tensor("blk.0.attn_norm.weight", &[4096], &mut rng),
    ];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    for ty in GgmlType::QUANTIZED {
        // Both efforts: they differ for Q2_K and Q4_K.
        for effort in ["fast", "best"] {
            check_with_gguf_py(&py, &model, (ty, effort), ty, dir.path());
        }
    }
}

#[test]
fn target_bpw_mixes_ggml_types_within_the_budget() {
    let dir = tempdir();
    let model = dir.path().join("mix.safetensors");
    let mut rng = Rng(5);
    let tensors: Vec<_> = (0..4).map(|i| f32_tensor(&format!("w{i}.weight"), &[16, 512], &mut rng)).collect();
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let out = dir.path().join("mix.gguf");
    let r =
        run(&["quantize", s(&model), "--format", "gguf", "--target-bpw", "5", "-o", s(&out), "--json", "-q"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    let mp = &j["mixed_precision"];
    let achieved = mp["achieved_payload_bpw"].as_f64().unwrap();
    assert!(achieved <= 5.0 && achieved > 4.5, "achieved {achieved}");
    // The file holds what the report says, and its payload is within the budget.
    let (bytes, h) = header_of(&out);
    let mut types = std::collections::BTreeSet::new();
    let (mut bits, mut n) = (0u64, 0u64);
    for t in &mp["tensors"].as_array().unwrap()[..] {
        let name = t["name"].as_str().unwrap();
        let info = h.tensor(name).unwrap();
        assert_eq!(info.ggml_type().name(), t["codec"].as_str().unwrap(), "{name}");
        types.insert(info.ggml_type().name());
        let r = h.data_range(info);
        bits += (r.end - r.start) * 8;
        n += info.elements();
        assert!(decode(&bytes, &h, name).iter().all(|v| v.is_finite()), "{name}");
    }
    assert!(bits as f64 / n as f64 <= 5.0, "{bits} bits for {n} weights");
    assert!(types.len() >= 2, "one type only: {types:?}");
    // A budget below the cheapest type is refused.
    let r = run(&["quantize", s(&model), "--format", "gguf", "--target-bpw", "1", "-o", s(&out), "-q"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("budget"), "{}", r.stderr);
}
