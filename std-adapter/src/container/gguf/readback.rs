//! Reading a GGUF back: every tensor decoded to F32 (quantized types by
//! [`arrowquant_core::ggml::dequantize`], bit-exact with ggml) into a safetensors file,
//! so our decoder's output can be compared with other tools'.
//!
//! Memory: one mapped window of at most 4 MiB and the F32 values of 1024 blocks.

use std::io::{BufWriter, Write};
use std::path::Path;

use arrowquant_core::ggml::{self, GgmlType};

use crate::container::atomic::AtomicFile;
use crate::error::{AdapterError, Result};
use crate::model::gguf::GgufModel;
use crate::model::window::WindowReader;

/// Bytes of one mapped window.
const WINDOW: u64 = 4 << 20;
/// Blocks decoded at a time.
const BLOCKS: usize = 1024;

/// What [`export_safetensors`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GgufExport {
    /// Tensors written.
    pub tensors: usize,
    /// Size of the safetensors file.
    pub bytes: u64,
}

/// Decodes every tensor of the GGUF file at `input` to F32 and writes them, with
/// their names and shapes (safetensors order: outermost first), to `out`.
///
/// # Errors
/// I/O, a malformed GGUF ([`AdapterError::Gguf`]). Nothing is left under `out` on error.
pub fn export_safetensors(input: &Path, out: &Path) -> Result<GgufExport> {
    let model = GgufModel::open(input)?;
    let mut header = serde_json::Map::new();
    let mut pos = 0u64;
    for t in model.header.tensors() {
        let len = t.elements() * 4;
        let shape: Vec<u64> = t.dims().iter().rev().copied().collect();
        header.insert(
            t.name().to_string(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [pos, pos + len] }),
        );
        pos += len;
    }
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header))
        .map_err(|e| AdapterError::io(out, std::io::Error::other(e)))?;
    json.resize(json.len().div_ceil(8) * 8, b' ');

    let file = AtomicFile::create_reading(out, &[input.to_path_buf()])?;
    let io = |e| AdapterError::io(out, e);
    let mut w = BufWriter::with_capacity(1 << 20, file.writer()?);
    w.write_all(&(json.len() as u64).to_le_bytes()).map_err(io)?;
    w.write_all(&json).map_err(io)?;
    let reader = WindowReader::open(input)?;
    let mut f = Vec::new();
    let mut bytes = Vec::new();
    for (t, range) in model.header.tensor_ranges() {
        let ty = t.ggml_type();
        let unit = ty.type_size() as u64;
        reader.for_each_window(range.start, range.end - range.start, WINDOW, unit, |_, b| {
            bytes.clear();
            match ty {
                GgmlType::F32 => bytes.extend_from_slice(b),
                GgmlType::F16 => {
                    for c in b.chunks_exact(2) {
                        let v = arrowquant_core::f16::from_le_bytes([c[0], c[1]]).to_f32();
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                }
                GgmlType::BF16 => {
                    for c in b.chunks_exact(2) {
                        let v = arrowquant_core::bf16::from_le_bytes([c[0], c[1]]).to_f32();
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                }
                q => {
                    for chunk in b.chunks(BLOCKS * q.type_size()) {
                        let n = chunk.len() / q.type_size() * q.block_len();
                        f.resize(n, 0f32);
                        ggml::dequantize(q, chunk, &mut f).map_err(|e| AdapterError::Quant {
                            path: input.to_path_buf(),
                            tensor: t.name().to_string(),
                            source: e,
                        })?;
                        for v in &f {
                            bytes.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
            }
            w.write_all(&bytes).map_err(io)
        })?;
    }
    w.flush().map_err(io)?;
    drop(w);
    file.commit()?;
    Ok(GgufExport { tensors: model.header.tensors().len(), bytes: 8 + json.len() as u64 + pos })
}
