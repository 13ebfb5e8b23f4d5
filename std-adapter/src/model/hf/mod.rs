//! A Hugging Face model folder (`config.json`, `tokenizer.json`, safetensors) as
//! llama.cpp's converter (`convert_hf_to_gguf.py`) would write it: the architecture
//! ([`arch`]), its hyper-parameters ([`hparams`]), the pooling of an embedder
//! ([`pooling`]), the tokenizer ([`tokenizer`], [`vocab`], [`special`], [`pretok`]),
//! llama.cpp's tensor names ([`names`]), the Q/K row order of `llama`
//! ([`permute`]) and the tensors the converter computes ([`rope`]). Only metadata is built here; the weights stay in their files and
//! are streamed by the GGUF writer (`container/gguf`).

pub mod arch;
pub mod hparams;
pub mod names;
pub mod permute;
pub mod pooling;
pub mod pretok;
pub mod rope;
pub mod special;
pub mod tokenizer;
pub mod vocab;

use std::path::Path;

pub use arch::Arch;
use arrowquant_core::gguf::Value;
pub use pooling::Pooling;

use crate::error::{AdapterError, Result};

/// What the conversion of a folder decided: everything but the tensor data.
#[derive(Clone, Debug)]
pub struct Conversion {
    /// The llama.cpp architecture.
    pub arch: Arch,
    /// Hyper-parameter and tokenizer key-value pairs, in the reference's order
    /// (without `general.*`).
    pub metadata: Vec<(String, Value)>,
    /// Attention heads and key-value heads (the `llama` Q/K permutation).
    pub heads: (u64, u64),
    /// What a user should know: the architecture, the pooling and where it came from.
    pub notes: Vec<String>,
    /// Tensors computed from the config (llama.cpp name, F32 values): Llama 3.1's
    /// `rope_freqs.weight`.
    pub computed: Vec<(String, Vec<f32>)>,
}

/// The folder of a model path (the path itself, or a file's directory).
pub fn folder_of(path: &Path) -> &Path {
    if path.is_dir() {
        path
    } else {
        path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
    }
}

/// The conversion of the model at `path`, or `None` when its folder has no
/// `config.json` with `architectures` (a bare safetensors file: tensors only).
/// `pooling` (the caller's choice) overrides a sentence-transformers pooling config.
///
/// # Errors
/// [`AdapterError::Convert`] naming the file and key: an unsupported architecture,
/// missing hyper-parameters, a tokenizer we cannot convert.
pub fn convert(path: &Path, pooling: Option<Pooling>) -> Result<Option<Conversion>> {
    let dir = folder_of(path);
    let config_path = dir.join("config.json");
    let Some(config) = tokenizer::read_json(&config_path)? else { return Ok(None) };
    if config.get("architectures").is_none() {
        return Ok(None);
    }
    let (arch, hf_name) = Arch::detect(&config, &config_path)?;
    let mut notes = vec![format!("architecture {hf_name} -> llama.cpp `{}` (config.json)", arch.name())];
    let mut metadata = hparams::hparams(arch, &config, &config_path)?;
    let chosen = match (pooling, arch) {
        (Some(p), _) => Some((p, "--pooling".to_string())),
        (None, Arch::Llama) => None,
        (None, _) => pooling::from_folder(dir)?,
    };
    match (&chosen, arch) {
        (Some((p, from)), Arch::Bert | Arch::Qwen2) => {
            metadata.push((format!("{}.pooling_type", arch.name()), Value::U32(p.id())));
            notes.push(format!("pooling {} (from {from})", p.name()));
        }
        (Some(_), Arch::Llama) => {
            return Err(AdapterError::convert(&config_path, "--pooling applies to embedders (bert, qwen2), not llama"));
        }
        (None, Arch::Bert) => notes.push(
            "pooling not set (no sentence-transformers Pooling config, no --pooling): llama.cpp's default applies"
                .into(),
        ),
        (None, _) => {}
    }
    metadata.extend(tokenizer::key_values(arch, dir, &config)?);
    let heads = match arch {
        Arch::Llama => {
            let n_head = hparams::count(&config, &["num_attention_heads", "n_heads"], &config_path)?;
            let n_kv = match config.get("num_key_value_heads").filter(|v| !v.is_null()) {
                Some(_) => hparams::count(&config, &["num_key_value_heads"], &config_path)?,
                None => n_head,
            };
            (u64::from(n_head), u64::from(n_kv))
        }
        _ => (0, 0),
    };
    let mut computed = Vec::new();
    if arch == Arch::Llama
        && let Some(f) = rope::llama3_factors(&config, &config_path)?
    {
        notes.push(format!("llama3 RoPE scaling: rope_freqs.weight computed ({} factors)", f.len()));
        computed.push(("rope_freqs.weight".to_string(), f));
    }
    Ok(Some(Conversion { arch, metadata, heads, notes, computed }))
}

impl Conversion {
    /// The input rows in output order for the tensor written as `gguf_name` with
    /// `rows` rows, or `None` when it keeps its order. Only `llama`'s Q and K
    /// weights (and biases) are permuted, K with the key-value head count.
    ///
    /// # Errors
    /// A message when the rows are not whole heads of an even size.
    pub fn row_order(&self, gguf_name: &str, rows: u64) -> Result<Option<Vec<u32>>, String> {
        if self.arch != Arch::Llama {
            return Ok(None);
        }
        let heads = if gguf_name.ends_with(".attn_q.weight") || gguf_name.ends_with(".attn_q.bias") {
            self.heads.0
        } else if gguf_name.ends_with(".attn_k.weight") || gguf_name.ends_with(".attn_k.bias") {
            self.heads.1
        } else {
            return Ok(None);
        };
        permute::rope_row_order(rows, heads).map(Some)
    }
}
