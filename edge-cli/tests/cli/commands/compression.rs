//! `--compression none|zstd` (and `compression:` / `ARROW_QUANT_COMPRESSION`): the
//! Parquet pages are stored uncompressed or with zstd; readers get the same values.

use super::{run, run_with, s, tempdir, write_model};

fn parquet_codecs(path: &std::path::Path) -> Vec<String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let r = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let md = r.metadata();
    let mut c: Vec<String> = (0..md.num_row_groups())
        .flat_map(|g| {
            md.row_group(g).columns().iter().map(|c| format!("{:?}", c.compression())).collect::<Vec<_>>()
        })
        .collect();
    c.sort();
    c.dedup();
    c
}

#[test]
fn compression_none_stores_plain_pages_with_the_same_values() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    write_model(&model, 41);
    let [z, n, e, y] = ["z", "n", "e", "y"].map(|k| dir.path().join(format!("{k}.parquet")));
    assert_eq!(run(&["quantize", s(&model), "-o", s(&z), "-q"]).code, 0);
    assert_eq!(run(&["quantize", s(&model), "-o", s(&n), "-q", "--compression", "none"]).code, 0);
    assert_eq!(
        run_with(&["quantize", s(&model), "-o", s(&e), "-q"], &[("ARROW_QUANT_COMPRESSION", "none")]).code,
        0
    );
    let cfg = dir.path().join("c.yaml");
    std::fs::write(&cfg, "compression: none\n").unwrap();
    assert_eq!(run(&["quantize", s(&model), "-o", s(&y), "-q", "--config", s(&cfg)]).code, 0);
    assert_eq!(parquet_codecs(&z), vec!["ZSTD(ZstdLevel(1))"]);
    for p in [&n, &e, &y] {
        assert_eq!(parquet_codecs(p), vec!["UNCOMPRESSED"], "{}", p.display());
    }
    // Same decoded values (on a model this small zstd's framing can outweigh what it
    // saves, so the sizes are not compared).
    let a = arrowquant_std::QuantizedFile::open(&z).unwrap();
    let b = arrowquant_std::QuantizedFile::open(&n).unwrap();
    for t in a.tensors().iter().filter(|t| t.is_quantized()) {
        assert_eq!(a.read_tensor_f32(&t.name).unwrap(), b.read_tensor_f32(&t.name).unwrap(), "{}", t.name);
    }
    let v = run(&["validate", s(&model), s(&n)]);
    assert_eq!(v.code, 0, "{v:?}");
}

#[test]
fn bad_compression_values_and_non_parquet_formats_exit_2() {
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    write_model(&model, 43);
    let out = dir.path().join("o.parquet");
    let r = run(&["quantize", s(&model), "-o", s(&out), "--compression", "lz4"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = run_with(&["quantize", s(&model), "-o", s(&out)], &[("ARROW_QUANT_COMPRESSION", "gzip")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stderr.contains("ARROW_QUANT_COMPRESSION") && r.stderr.contains("zstd or none"),
        "{}",
        r.stderr
    );
    let g = dir.path().join("o.gguf");
    let r = run(&["quantize", s(&model), "--format", "gguf", "-o", s(&g), "--compression", "none"]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--format parquet only"), "{}", r.stderr);
    assert!(!out.exists() && !g.exists());
}
