//! docs/FORMAT.md's Python decoders and its whole-tensor example, run as written on
//! files the CLI wrote (every preset, a plain group codec, a raw tensor) and compared
//! bit for bit with `arrowquant dequantize`.

use std::process::Command;

use arrowquant_tests::{python, safetensors_bytes};

use super::{Rng, f32_tensor, run, s, tempdir};

const FORMAT_MD: &str = include_str!("../../../../docs/FORMAT.md");

/// The tensor the example decodes (its `name = ...` line).
const NAME: &str = "encoder.layer.0.attention.self.query.weight";

/// The Python blocks under the "Decoding ..." headings and the whole-tensor example, in
/// document order, exactly as written.
fn doc_program() -> String {
    let (mut program, mut heading, mut in_block) = (String::new(), "", false);
    for line in FORMAT_MD.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            heading = h;
        } else if line == "```python" {
            in_block = heading.starts_with("Decoding") || heading.starts_with("Example: a whole tensor");
        } else if line.starts_with("```") {
            in_block = false;
        } else if in_block {
            program.push_str(line);
            program.push('\n');
        }
    }
    program
}

/// After the example: `w` must be the reference tensor, bit for bit.
const CHECK: &str = r#"
import struct
with open("reference.safetensors", "rb") as fh:
    n = struct.unpack("<Q", fh.read(8))[0]
    header = json.loads(fh.read(n))
    data = fh.read()
ref = header[name]
b, e = ref["data_offsets"]
assert ref["dtype"] == "F32" and list(w.shape) == ref["shape"], (ref, w.shape)
assert w.astype("<f4").tobytes() == data[b:e], "decoded values differ from arrowquant dequantize"
print("format-doc-ok", row_codecs)
"#;

#[test]
#[ignore = "needs python3 with numpy and pyarrow; CI's python step runs it"]
fn format_md_decoders_and_example_run_as_written() {
    let program = doc_program();
    for needle in
        ["def decode_raw_row", "def decode_group_row", "def decode_two_level_row", "w = np.concatenate"]
    {
        assert!(program.contains(needle), "{needle} missing from the extracted program:\n{program}");
    }
    let dir = tempdir();
    let model = dir.path().join("m.safetensors");
    let mut rng = Rng(11);
    let tensors = vec![f32_tensor(NAME, &[96, 384], &mut rng), f32_tensor("head.bias", &[96], &mut rng)];
    std::fs::write(&model, safetensors_bytes(&tensors)).unwrap();
    let script = format!(
        "{program}\nrow_codecs = sorted({{r['codec'] for b in f.iter_batches() for r in b.to_pylist() if r['tensor'] == name}})\n{CHECK}"
    );
    std::fs::write(dir.path().join("doc.py"), script).unwrap();
    let mut cases: Vec<(Vec<&str>, &str)> =
        arrowquant_core::Preset::ALL.iter().map(|p| (vec!["--preset", p.name()], "")).collect();
    cases.push((vec!["--bits", "2", "--group-size", "64", "--scheme", "symmetric"], "g2s64"));
    cases.push((vec!["--exclude", NAME], "raw"));
    for (flags, want) in cases {
        let pq = dir.path().join("model.parquet");
        let mut args = vec!["quantize", s(&model), "-o", s(&pq), "-q", "--min-accuracy", "0"];
        args.extend_from_slice(&flags);
        let r = run(&args);
        assert_eq!(r.code, 0, "{flags:?}: {r:?}");
        let r = run(&["dequantize", s(&pq), "-o", s(&dir.path().join("reference.safetensors"))]);
        assert_eq!(r.code, 0, "{flags:?}: {r:?}");
        let out =
            Command::new(python()).arg("doc.py").current_dir(dir.path()).output().expect("running python");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("format-doc-ok") && stdout.contains(want),
            "{flags:?}: the FORMAT.md program failed (set ARROWQUANT_PYTHON to a python with numpy and pyarrow):\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
