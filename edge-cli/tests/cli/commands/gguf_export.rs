//! `export --format gguf`: our Parquet blocks repacked into ggml's types without
//! re-quantizing; ggml's decoder (core's bit-exact port) gives exactly the Parquet
//! reader's floats. Codecs ggml cannot hold are refused, naming the tensor.

use arrowquant_core::ggml::{self, GgmlType};
use arrowquant_core::gguf::GgufHeader;

use super::{Rng, f32_tensor, run, s, safetensors_bytes, tempdir};

/// Quantizes a small model with `flags`, exports it to GGUF, and checks every
/// quantized tensor is `want` and decodes to the Parquet file's values bit for bit.
fn export_and_compare(flags: &[&str], want: GgmlType) {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(23);
    let tensors = vec![
        f32_tensor("a.weight", &[8, 512], &mut rng),
        f32_tensor("b.weight", &[4, 256], &mut rng),
        f32_tensor("norm.weight", &[512], &mut rng),
        ("ids".to_string(), "I64", vec![4], (0..4i64).flat_map(|i| i.to_le_bytes()).collect()),
    ];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let pq = dir.path().join("m.parquet");
    let mut args = vec!["quantize", s(&model), "-o", s(&pq), "-q"];
    args.extend_from_slice(flags);
    assert_eq!(run(&args).code, 0, "{flags:?}");
    let out = dir.path().join("m.gguf");
    let r = run(&["export", s(&pq), "--format", "gguf", "-o", s(&out), "--json"]);
    assert_eq!(r.code, 0, "{r:?}");
    let j = r.json();
    assert_eq!(j["repacked"], 2, "{j}");
    assert_eq!(j["file_type"], want.name(), "{j}");
    assert!(j["skipped"][0].as_str().unwrap().starts_with("ids"), "{j}");

    let bytes = std::fs::read(&out).unwrap();
    let h = GgufHeader::parse(&bytes).unwrap();
    let q = arrowquant_std::QuantizedFile::open(&pq).unwrap();
    for (name, ty) in [("a.weight", want), ("b.weight", want), ("norm.weight", GgmlType::F32)] {
        let t = h.tensor(name).unwrap();
        assert_eq!(t.ggml_type(), ty, "{name}");
        let r = h.data_range(t);
        let data = &bytes[r.start as usize..r.end as usize];
        let mut got = vec![0f32; t.elements() as usize];
        if ty == GgmlType::F32 {
            for (g, c) in got.iter_mut().zip(data.chunks_exact(4)) {
                *g = f32::from_le_bytes(c.try_into().unwrap());
            }
        } else {
            ggml::dequantize(ty, data, &mut got).unwrap();
        }
        let expected = q.read_tensor_f32(name).unwrap();
        assert_eq!(got.len(), expected.len(), "{name}");
        for (i, (a, b)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(a.to_bits(), b.to_bits(), "{flags:?} {name}[{i}]: ggml {a}, parquet {b}");
        }
    }
    let dims: Vec<u64> = h.tensor("a.weight").unwrap().dims().to_vec();
    assert_eq!(dims, vec![512, 8], "ggml order: the row first");
}

#[test]
fn export_gguf_repacks_each_mappable_codec_bit_for_bit() {
    export_and_compare(&["--preset", "int4"], GgmlType::Q4_K);
    export_and_compare(&["--preset", "int2"], GgmlType::Q2_K);
    export_and_compare(&["--bits", "4", "--group-size", "32"], GgmlType::Q4_1);
    export_and_compare(&["--bits", "4", "--group-size", "32", "--scheme", "symmetric"], GgmlType::Q4_0);
    export_and_compare(&["--bits", "8", "--group-size", "32", "--scheme", "symmetric"], GgmlType::Q8_0);
}

#[test]
fn export_gguf_refuses_codecs_and_rows_ggml_cannot_hold_and_writes_nothing() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(29);
    let tensors =
        vec![f32_tensor("a.weight", &[8, 512], &mut rng), f32_tensor("odd.weight", &[4, 384], &mut rng)];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let cases: [(&[&str], &str); 2] =
        [(&["--preset", "fast"], "codec `g4a128`"), (&["--preset", "int4"], "rows of 384 weights")];
    for (flags, needle) in cases {
        let pq = dir.path().join("m.parquet");
        let mut args = vec!["quantize", s(&model), "-o", s(&pq), "-q"];
        args.extend_from_slice(flags);
        assert_eq!(run(&args).code, 0, "{flags:?}");
        let out = dir.path().join("m.gguf");
        let r = run(&["export", s(&pq), "--format", "gguf", "-o", s(&out)]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains("cannot be written to GGUF") && r.stderr.contains(needle), "{}", r.stderr);
        assert!(r.stderr.contains("weight`"), "names the tensor: {}", r.stderr);
        assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
        assert!(!out.exists(), "{flags:?}");
    }
}
