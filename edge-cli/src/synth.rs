//! A small deterministic model for `arrowquant demo`, generated in code: a 4-layer
//! BERT-style encoder (hidden 128, FFN 512, vocabulary 4096) with heavy-tailed
//! weights, a few outlier channels, biases, LayerNorms and an integer tensor, about
//! 1.4 M weights (5.4 MB), plus a `config.json` so modality detection has something
//! to read.
//!
//! The weights follow a Student-t distribution with 4 degrees of freedom (heavier
//! tails than a Gaussian, as trained transformer weights have), scaled like BERT's
//! initialisation (std 0.02); some matrices get a few columns scaled up, like the
//! outlier features of trained attention layers. The generator is a fixed
//! SplitMix64, so every run writes the same bytes.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use arrowquant_core::f16;

/// Hidden size.
const HIDDEN: usize = 128;
/// Feed-forward size.
const FFN: usize = 512;
/// Vocabulary size.
const VOCAB: usize = 4096;
/// Positions.
const POSITIONS: usize = 256;
/// Encoder layers.
const LAYERS: usize = 4;

/// A deterministic pseudo-random source (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Student-t with 4 degrees of freedom, rescaled to unit variance.
    fn student_t4(&mut self) -> f64 {
        let chi2: f64 = (0..4).map(|_| self.normal().powi(2)).sum();
        // Var(t_4) = 4 / (4 - 2) = 2.
        self.normal() / (chi2 / 4.0).sqrt() / 2f64.sqrt()
    }
}

/// Tensor data in a safetensors dtype.
enum Data {
    F32(Vec<f32>),
    F16(Vec<f16>),
    I64(Vec<i64>),
}

struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: Data,
}

fn matrix(rng: &mut Rng, rows: usize, cols: usize, std: f64, outlier_cols: usize) -> Vec<f32> {
    let mut scale = vec![1.0f64; cols];
    for _ in 0..outlier_cols {
        let c = (rng.next_u64() % cols as u64) as usize;
        scale[c] = 6.0 + 4.0 * rng.uniform();
    }
    (0..rows * cols).map(|i| (rng.student_t4() * std * scale[i % cols]) as f32).collect()
}

fn vector(rng: &mut Rng, n: usize, mean: f64, std: f64) -> Vec<f32> {
    (0..n).map(|_| (mean + rng.normal() * std) as f32).collect()
}

fn model() -> Vec<Tensor> {
    let mut rng = Rng(0x4172_726F_7751_7561); // "ArrowQua"
    let mut t = Vec::new();
    let mut push = |name: String, shape: Vec<usize>, data: Data| t.push(Tensor { name, shape, data });
    let emb = matrix(&mut rng, VOCAB, HIDDEN, 0.02, 0);
    push(
        "embeddings.word_embeddings.weight".into(),
        vec![VOCAB, HIDDEN],
        Data::F16(emb.iter().map(|&x| f16::from_f32(x)).collect()),
    );
    push(
        "embeddings.position_embeddings.weight".into(),
        vec![POSITIONS, HIDDEN],
        Data::F32(matrix(&mut rng, POSITIONS, HIDDEN, 0.02, 0)),
    );
    push("embeddings.position_ids".into(), vec![1, POSITIONS], Data::I64((0..POSITIONS as i64).collect()));
    push("embeddings.LayerNorm.weight".into(), vec![HIDDEN], Data::F32(vector(&mut rng, HIDDEN, 1.0, 0.05)));
    push("embeddings.LayerNorm.bias".into(), vec![HIDDEN], Data::F32(vector(&mut rng, HIDDEN, 0.0, 0.02)));
    for l in 0..LAYERS {
        let p = format!("encoder.layer.{l}");
        for (sub, rows, cols, outliers) in [
            ("attention.self.query", HIDDEN, HIDDEN, 0),
            ("attention.self.key", HIDDEN, HIDDEN, 0),
            ("attention.self.value", HIDDEN, HIDDEN, 0),
            ("attention.output.dense", HIDDEN, HIDDEN, 3),
            ("intermediate.dense", FFN, HIDDEN, 2),
            ("output.dense", HIDDEN, FFN, 4),
        ] {
            push(
                format!("{p}.{sub}.weight"),
                vec![rows, cols],
                Data::F32(matrix(&mut rng, rows, cols, 0.02, outliers)),
            );
            push(format!("{p}.{sub}.bias"), vec![rows], Data::F32(vector(&mut rng, rows, 0.0, 0.01)));
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            push(format!("{p}.{ln}.weight"), vec![HIDDEN], Data::F32(vector(&mut rng, HIDDEN, 1.0, 0.05)));
            push(format!("{p}.{ln}.bias"), vec![HIDDEN], Data::F32(vector(&mut rng, HIDDEN, 0.0, 0.02)));
        }
    }
    push(
        "pooler.dense.weight".into(),
        vec![HIDDEN, HIDDEN],
        Data::F32(matrix(&mut rng, HIDDEN, HIDDEN, 0.02, 0)),
    );
    push("pooler.dense.bias".into(), vec![HIDDEN], Data::F32(vector(&mut rng, HIDDEN, 0.0, 0.01)));
    t
}

impl Data {
    fn dtype(&self) -> &'static str {
        match self {
            Data::F32(_) => "F32",
            Data::F16(_) => "F16",
            Data::I64(_) => "I64",
        }
    }

    /// Little-endian bytes, as safetensors stores them.
    fn bytes(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        }
    }
}

/// What [`write_demo_model`] wrote.
#[derive(Debug)]
pub struct DemoModel {
    /// Tensors.
    pub tensors: usize,
    /// Weights over all tensors.
    pub elements: u64,
    /// Size of `model.safetensors` in bytes.
    pub bytes: u64,
}

/// The `_comment` of the demo's `config.json`: a directory holding another model's
/// `config.json` is not the demo's to overwrite.
const DEMO_MARK: &str = "generated by `arrowquant demo`";

/// Refuses a `dir` that holds a model the demo did not write.
fn refuse_foreign_model(dir: &Path) -> anyhow::Result<()> {
    let (cpath, mpath) = (dir.join("config.json"), dir.join("model.safetensors"));
    let ours = std::fs::read_to_string(&cpath).is_ok_and(|t| t.contains(DEMO_MARK));
    if !ours && (cpath.exists() || mpath.exists()) {
        anyhow::bail!(
            "{} already holds a model the demo did not write: give the demo an empty directory",
            dir.display()
        );
    }
    Ok(())
}

/// Writes `model.safetensors` and `config.json` into `dir`.
///
/// # Errors
/// Write errors naming the file.
pub fn write_demo_model(dir: &Path) -> anyhow::Result<DemoModel> {
    let tensors = model();
    let mut header = serde_json::Map::new();
    header
        .insert("__metadata__".into(), serde_json::json!({ "format": "pt", "generator": "arrowquant demo" }));
    let mut offset = 0usize;
    let mut blobs = Vec::with_capacity(tensors.len());
    for t in &tensors {
        let b = t.data.bytes();
        header.insert(
            t.name.clone(),
            serde_json::json!({ "dtype": t.data.dtype(), "shape": t.shape, "data_offsets": [offset, offset + b.len()] }),
        );
        offset += b.len();
        blobs.push(b);
    }
    let mut text = serde_json::to_string(&header).context("serializing the safetensors header")?;
    while (8 + text.len()) % 8 != 0 {
        text.push(' ');
    }
    refuse_foreign_model(dir)?;
    let path = dir.join("model.safetensors");
    // Through the atomic writer: a symlink or FIFO in `--dir` is refused, not followed.
    let file = arrowquant_std::AtomicFile::create(&path)?;
    let write = || -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(file.writer().map_err(std::io::Error::other)?);
        f.write_all(&(text.len() as u64).to_le_bytes())?;
        f.write_all(text.as_bytes())?;
        for b in &blobs {
            f.write_all(b)?;
        }
        f.flush()
    };
    write().with_context(|| format!("writing {}", path.display()))?;
    file.commit()?;
    let config = serde_json::json!({
        "architectures": ["BertModel"], "model_type": "bert", "hidden_size": HIDDEN,
        "intermediate_size": FFN, "num_hidden_layers": LAYERS, "num_attention_heads": 4,
        "vocab_size": VOCAB, "max_position_embeddings": POSITIONS, "_comment": DEMO_MARK,
    });
    let cpath = dir.join("config.json");
    let file = arrowquant_std::AtomicFile::create(&cpath)?;
    file.writer()?
        .write_all(serde_json::to_string_pretty(&config).unwrap_or_default().as_bytes())
        .with_context(|| format!("writing {}", cpath.display()))?;
    file.commit()?;
    Ok(DemoModel {
        tensors: tensors.len(),
        elements: tensors.iter().map(|t| t.shape.iter().product::<usize>() as u64).sum(),
        bytes: (8 + text.len() + offset) as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_model_is_deterministic_and_valid() {
        let base = std::env::temp_dir().join(format!("aq-synth-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for d in [&a, &b] {
            std::fs::create_dir_all(d).unwrap();
            write_demo_model(d).unwrap();
        }
        let (fa, fb) = (
            std::fs::read(a.join("model.safetensors")).unwrap(),
            std::fs::read(b.join("model.safetensors")).unwrap(),
        );
        assert_eq!(fa, fb, "same bytes every run");
        let m = arrowquant_std::Model::open(&a).unwrap();
        assert_eq!(m.tensors.len(), model().len());
        assert!(
            m.tensors.iter().any(|t| t.dtype.name() == "I64")
                && m.tensors.iter().any(|t| t.dtype.name() == "F16")
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn weights_are_heavy_tailed() {
        let mut rng = Rng(7);
        let x: Vec<f64> = (0..200_000).map(|_| rng.student_t4()).collect();
        let var = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
        let kurt = x.iter().map(|v| v.powi(4)).sum::<f64>() / x.len() as f64 / (var * var);
        assert!((var - 1.0).abs() < 0.1, "unit variance, got {var}");
        assert!(kurt > 4.0, "heavier tails than a Gaussian (kurtosis 3), got {kurt}");
    }
}
