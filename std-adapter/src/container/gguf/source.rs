//! What the GGUF writer reads: the tensors to write (where their bytes are, in which
//! row order) and the metadata to start from, built from a safetensors model (bare:
//! tensors only; a Hugging Face folder: converted for llama.cpp by `model::hf`) or a
//! GGUF model (copied).

use std::path::{Path, PathBuf};

use arrowquant_core::Dtype;
use arrowquant_core::ggml::GgmlType;
use arrowquant_core::gguf::{self, Metadata, Value, keys};

use crate::error::{AdapterError, Result};
use crate::model::gguf::GgufModel;
use crate::model::hf::{self, Pooling, names::Mapped};
use crate::model::safetensors::{Model, TensorInfo};

/// The data type of a source tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceData {
    /// Floats to convert or quantize.
    Float(Dtype),
    /// Already in a ggml block type: copied as it is.
    Ggml(GgmlType),
}

/// One tensor to write: where its bytes are and what they hold.
#[derive(Clone, Debug)]
pub struct SourceTensor {
    /// The name (kept as it is).
    pub name: String,
    /// Dimensions in ggml order (`ne[0]`, the row length, first).
    pub ne: Vec<u64>,
    /// The input dtype's name (for the report).
    pub dtype: String,
    /// What the bytes hold.
    pub data: SourceData,
    /// The file holding them.
    pub file: PathBuf,
    /// Absolute offset in that file.
    pub offset: u64,
    /// Length in bytes.
    pub byte_len: u64,
    /// Output row `i` is input row `rows[i]` (rows of `ne[0]` elements; a 1-D tensor
    /// has rows of one element); `None`: the input's order.
    pub rows: Option<Vec<u32>>,
    /// Values computed by the converter (Llama 3.1's `rope_freqs`), written from
    /// memory; `file` is then the `config.json` they come from and `offset` 0.
    pub values: Option<Vec<f32>>,
}

/// A model ready to be written as GGUF: the metadata to start from and its tensors.
#[derive(Clone, Debug)]
pub struct GgufSource {
    /// The model path (for the report and errors).
    pub path: PathBuf,
    /// Key-value pairs to write, in order (`general.file_type` is set by the writer).
    pub metadata: Metadata,
    /// Tensors in output order.
    pub tensors: Vec<SourceTensor>,
    /// Input tensors left out, with the reason.
    pub skipped: Vec<(String, String)>,
    /// What the conversion decided that a user should know (architecture, pooling).
    pub notes: Vec<String>,
}

impl GgufSource {
    /// A safetensors model as it is: dims reversed into ggml order, F32/F16/BF16
    /// tensors kept under their names, others (integer buffers) left out with a
    /// reason. Metadata: `general.architecture` = `model_type` of a `config.json`
    /// beside the model, else `unknown`; `general.name` = the model's file stem or
    /// directory name. llama.cpp cannot run such a file (no tokenizer, no
    /// hyper-parameters): [`GgufSource::from_hf`] converts a Hugging Face folder.
    pub fn from_safetensors(model: &Model) -> GgufSource {
        let mut tensors = Vec::with_capacity(model.tensors.len());
        let mut skipped = Vec::new();
        for t in &model.tensors {
            match unsupported(t) {
                None => tensors.push(source_tensor(model, t, t.name.clone())),
                Some(reason) => skipped.push((t.name.clone(), reason)),
            }
        }
        let mut metadata = Metadata::new();
        metadata.push(keys::GENERAL_ARCHITECTURE, Value::String(architecture_of(&model.path)));
        metadata.push(keys::GENERAL_NAME, Value::String(name_of(&model.path)));
        GgufSource { path: model.path.clone(), metadata, tensors, skipped, notes: Vec::new() }
    }

    /// A safetensors model whose folder has a `config.json` with `architectures`:
    /// converted as llama.cpp's `convert_hf_to_gguf.py` converts it (hyper-parameters,
    /// tokenizer, llama.cpp's tensor names, the `llama` Q/K row order, the tensors
    /// it leaves out). Without such a `config.json`: [`GgufSource::from_safetensors`].
    /// `pooling` overrides a sentence-transformers pooling config (embedders).
    ///
    /// # Errors
    /// [`AdapterError::Convert`] naming the file and the key or tensor: an
    /// unsupported architecture, a missing hyper-parameter, a tokenizer that cannot
    /// be converted, a tensor with no llama.cpp name or of a dtype GGUF cannot hold.
    pub fn from_hf(model: &Model, pooling: Option<Pooling>) -> Result<GgufSource> {
        let Some(mut conv) = hf::convert(&model.path, pooling)? else {
            return Ok(GgufSource::from_safetensors(model));
        };
        let mut tensors = Vec::with_capacity(model.tensors.len() + conv.computed.len());
        let config_path = hf::folder_of(&model.path).join("config.json");
        for (name, values) in std::mem::take(&mut conv.computed) {
            tensors.push(SourceTensor {
                name,
                ne: vec![values.len() as u64],
                dtype: "F32".into(),
                data: SourceData::Float(Dtype::F32),
                file: config_path.clone(),
                offset: 0,
                byte_len: 4 * values.len() as u64,
                rows: None,
                values: Some(values),
            });
        }
        let mut skipped = Vec::new();
        for t in &model.tensors {
            let bad = |problem: String| AdapterError::convert(model.file_of(t), problem);
            let name = match hf::names::map(conv.arch, &t.name) {
                Mapped::To(n) => n,
                Mapped::Skip(why) => {
                    skipped.push((t.name.clone(), why.to_string()));
                    continue;
                }
                Mapped::Unknown => {
                    return Err(bad(format!(
                        "tensor `{}` has no llama.cpp name in a `{}` model",
                        t.name,
                        conv.arch.name()
                    )));
                }
            };
            if let Some(why) = unsupported(t) {
                return Err(bad(format!("tensor `{}`: {why}", t.name)));
            }
            let mut st = source_tensor(model, t, name);
            let rows = if st.ne.len() == 1 { st.ne[0] } else { st.ne[1..].iter().product() };
            st.rows = conv.row_order(&st.name, rows).map_err(|e| bad(format!("tensor `{}`: {e}", t.name)))?;
            tensors.push(st);
        }
        let mut metadata = Metadata::new();
        metadata.push(keys::GENERAL_ARCHITECTURE, Value::String(conv.arch.name().into()));
        metadata.push(keys::GENERAL_NAME, Value::String(name_of(&model.path)));
        for (k, v) in conv.metadata {
            metadata.push(k, v);
        }
        Ok(GgufSource { path: model.path.clone(), metadata, tensors, skipped, notes: conv.notes })
    }

    /// A GGUF model: every key-value pair in order and every tensor with its name.
    pub fn from_gguf(model: &GgufModel) -> GgufSource {
        let tensors = model
            .header
            .tensor_ranges()
            .map(|(t, range)| {
                let ty = t.ggml_type();
                let data = match ty {
                    GgmlType::F32 => SourceData::Float(Dtype::F32),
                    GgmlType::F16 => SourceData::Float(Dtype::F16),
                    GgmlType::BF16 => SourceData::Float(Dtype::Bf16),
                    q => SourceData::Ggml(q),
                };
                SourceTensor {
                    name: t.name().to_string(),
                    ne: t.dims().to_vec(),
                    dtype: ty.name().to_string(),
                    data,
                    file: model.path.clone(),
                    offset: range.start,
                    byte_len: range.end - range.start,
                    rows: None,
                    values: None,
                }
            })
            .collect();
        GgufSource {
            path: model.path.clone(),
            metadata: model.header.metadata().clone(),
            tensors,
            skipped: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// Why GGUF cannot hold `t` here, if it cannot.
fn unsupported(t: &TensorInfo) -> Option<String> {
    match t.dtype.quantizable() {
        None => Some(format!("dtype {} has no GGUF type here", t.dtype.name())),
        Some(_) if t.shape.is_empty() => Some("a scalar (no dimensions)".into()),
        Some(_) if t.shape.len() > gguf::MAX_DIMS => {
            Some(format!("{} dimensions (GGUF holds at most {})", t.shape.len(), gguf::MAX_DIMS))
        }
        Some(_) if t.shape.contains(&0) => Some("an empty tensor".into()),
        Some(_) => None,
    }
}

/// `t` written as `name`, in the input's row order.
fn source_tensor(model: &Model, t: &TensorInfo, name: String) -> SourceTensor {
    SourceTensor {
        name,
        ne: t.shape.iter().rev().copied().collect(),
        dtype: t.dtype.name().to_string(),
        data: SourceData::Float(t.dtype.quantizable().unwrap_or(Dtype::F32)),
        file: model.file_of(t).to_path_buf(),
        offset: t.offset,
        byte_len: t.byte_len,
        rows: None,
        values: None,
    }
}

/// `config.json`'s `model_type` beside the model, else `unknown`.
fn architecture_of(path: &Path) -> String {
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(Path::new(".")) };
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("model_type").and_then(|m| m.as_str()).map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The model's name: the file stem, or the directory's name for `model.safetensors`.
fn name_of(path: &Path) -> String {
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let stem = canon.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let stem = stem.split(".safetensors").next().unwrap_or("").to_string();
    if (stem.is_empty() || stem == "model" || stem.starts_with("model-0"))
        && let Some(dir) = canon.parent().and_then(|p| p.file_name())
    {
        return dir.to_string_lossy().into_owned();
    }
    if stem.is_empty() { "model".into() } else { stem }
}
