//! `export --format gguf`: one of our Parquet files rewritten as GGUF without
//! re-quantizing. Blocks whose layout ggml holds bit for bit
//! ([`ggml_type_for_layout`]: `int4` -> Q4_K, `int2` -> Q2_K, INT4 g32 symmetric /
//! asymmetric -> Q4_0 / Q4_1, INT8 g32 symmetric -> Q8_0) are repacked
//! ([`repack_blocks`]), so ggml decodes exactly the floats our reader gives; tensors
//! stored raw keep their bytes as F32, F16 or BF16. Anything else is refused before
//! a byte is written, naming the tensor: re-quantizing would add a second rounding
//! on top of the first, and `quantize --format gguf` from the original does better.
//!
//! Tensor names are kept; the file has no architecture metadata (a Parquet file does
//! not say which llama.cpp architecture it is): it is for tools that read tensors by
//! name (candle, the `gguf` package), not for llama.cpp's loader.
//!
//! Memory: one tensor's stored blocks (as the Parquet reader hands them over) and
//! their ggml bytes.

use std::io::{BufWriter, Write};
use std::path::Path;

use arrowquant_core::ggml::{GgmlType, ggml_type_for_layout, repack_blocks};
use arrowquant_core::gguf::{self, GgufWriter, Metadata, Value, keys};

use super::file_type;
use super::types::{float_type, most_weights};
use crate::container::atomic::AtomicFile;
use crate::container::parquet::reader::{ChunkData, QuantizedFile};
use crate::container::parquet::schema::StoredTensor;
use crate::error::{AdapterError, Result};
use crate::model::gguf::gguf_error;
use crate::model::safetensors::StDtype;

/// What [`export_parquet`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetGgufExport {
    /// Tensors written.
    pub tensors: usize,
    /// Tensors repacked from quantized blocks (the rest were stored raw).
    pub repacked: usize,
    /// Size of the GGUF file.
    pub bytes: u64,
    /// Raw tensors left out (a dtype GGUF has no type for), with the reason.
    pub skipped: Vec<String>,
    /// `general.file_type` written: the type holding the most weights.
    pub main_type: String,
}

/// One output tensor: the stored tensor and its ggml type.
struct Planned<'a> {
    tensor: &'a StoredTensor,
    ty: GgmlType,
}

/// Writes the Parquet file `q` as GGUF at `out` (atomically).
///
/// # Errors
/// A quantized tensor whose layout ggml cannot hold or whose rows split its blocks
/// (naming it), read errors, I/O. Nothing is left under `out` on error.
pub fn export_parquet(q: &QuantizedFile, out: &Path) -> Result<ParquetGgufExport> {
    let (quantized, raw, skipped) = plan(q)?;
    let main = most_weights(quantized.iter().map(|p| (p.ty, p.tensor.elements))).unwrap_or(GgmlType::F32);
    let mut metadata = Metadata::new();
    metadata.push(keys::GENERAL_ARCHITECTURE, Value::String("unknown".into()));
    let stem = q.path().file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    metadata.push(keys::GENERAL_NAME, Value::String(stem));
    metadata.push(keys::GENERAL_FILE_TYPE, Value::U32(file_type(main).unwrap_or(0)));
    metadata.push(keys::GENERAL_QUANTIZATION_VERSION, Value::U32(gguf::QUANTIZATION_VERSION));
    let mut w = GgufWriter::with_metadata(metadata);
    for p in quantized.iter().chain(&raw) {
        let ne: Vec<u64> = p.tensor.shape.iter().rev().copied().collect();
        w.push_tensor(p.tensor.name.as_str(), &ne, p.ty).map_err(|e| gguf_error(q.path(), e))?;
    }
    let layout = w.finish().map_err(|e| gguf_error(q.path(), e))?;

    let file = AtomicFile::create_reading(out, &[q.path().to_path_buf()])?;
    let mut sink = BufWriter::with_capacity(1 << 20, file.writer()?);
    let io = |e| AdapterError::io(out, e);
    sink.write_all(layout.header_bytes()).map_err(io)?;
    let pads: Vec<usize> =
        (0..quantized.len() + raw.len()).map(|i| layout.padding_after(i) as usize).collect();
    // Quantized tensors first, in file order, as the header lists them.
    let mut next = 0usize;
    let mut bytes = Vec::new();
    q.for_each_encoded_tensor(|t| -> Result<()> {
        let p = quantized.get(next).filter(|p| p.tensor.name == t.tensor.name).ok_or_else(|| {
            AdapterError::bad_file(
                q.path(),
                format!("tensor `{}` read out of the manifest's order", t.tensor.name),
            )
        })?;
        bytes.clear();
        bytes.resize(t.blocks as usize * p.ty.type_size(), 0);
        repack_blocks(p.ty, t.codes, t.params, &mut bytes).map_err(|e| AdapterError::Quant {
            path: q.path().to_path_buf(),
            tensor: t.tensor.name.clone(),
            source: e,
        })?;
        sink.write_all(&bytes).map_err(io)?;
        sink.write_all(&vec![0u8; pads[next]]).map_err(io)?;
        next += 1;
        Ok(())
    })?;
    if next != quantized.len() {
        return Err(AdapterError::bad_file(
            q.path(),
            format!("{next} of {} quantized tensors read", quantized.len()),
        ));
    }
    write_raw(q, &raw, &pads[quantized.len()..], &mut sink, out)?;
    sink.flush().map_err(io)?;
    drop(sink);
    file.commit()?;
    let size = std::fs::metadata(out).map_err(io)?.len();
    Ok(ParquetGgufExport {
        tensors: quantized.len() + raw.len(),
        repacked: quantized.len(),
        bytes: size,
        skipped,
        main_type: main.name().to_string(),
    })
}

/// The quantized tensors with their ggml type, the raw float tensors, and the raw
/// tensors left out; errors for what cannot be written without re-quantizing.
fn plan(q: &QuantizedFile) -> Result<(Vec<Planned<'_>>, Vec<Planned<'_>>, Vec<String>)> {
    let (mut quantized, mut raw, mut skipped) = (Vec::new(), Vec::new(), Vec::new());
    for t in q.tensors() {
        let bad = |reason: String| AdapterError::NotConvertible {
            path: q.path().to_path_buf(),
            tensor: t.name.clone(),
            format: "GGUF",
            reason,
        };
        if !t.is_quantized() {
            match StDtype::parse(&t.dtype).and_then(StDtype::quantizable).map(float_type) {
                Some(ty) if !t.shape.is_empty() && t.shape.len() <= gguf::MAX_DIMS => {
                    raw.push(Planned { tensor: t, ty })
                }
                _ => skipped
                    .push(format!("{} (dtype {}, shape {:?}: no GGUF type here)", t.name, t.dtype, t.shape)),
            }
            continue;
        }
        let ty = ggml_type_for_layout(&t.codec).ok_or_else(|| {
            bad(format!(
                "codec `{}` has no ggml layout that holds it without re-quantizing (int4 -> Q4_K, int2 -> Q2_K, \
                 INT4/INT8 groups of 32 -> Q4_0/Q4_1/Q8_0); quantize the original model with --format gguf",
                t.codec
            ))
        })?;
        let ne0 = t.shape.last().copied().unwrap_or(0);
        if t.shape.len() > gguf::MAX_DIMS || ne0 == 0 || ne0 % ty.block_len() as u64 != 0 {
            return Err(bad(format!(
                "rows of {ne0} weights cut its {}-weight blocks (ggml blocks never cross a row); quantize the \
                 original model with --format gguf, which falls back per tensor",
                ty.block_len()
            )));
        }
        quantized.push(Planned { tensor: t, ty });
    }
    Ok((quantized, raw, skipped))
}

/// Streams the raw float tensors' bytes, chunk by chunk, in the header's order,
/// each followed by its padding (`pads[k]` for `raw[k]`).
fn write_raw(
    q: &QuantizedFile,
    raw: &[Planned<'_>],
    pads: &[usize],
    sink: &mut impl Write,
    out: &Path,
) -> Result<()> {
    if raw.is_empty() {
        return Ok(());
    }
    let mut k = 0usize;
    let mut written = 0u64;
    q.for_each_chunk(|t, _, data| {
        let ChunkData::Raw(bytes) = data else { return Ok(()) };
        let Some(p) = raw.get(k) else { return Ok(()) };
        if t.name != p.tensor.name {
            // A raw tensor left out (skipped dtype) or out of order.
            return if raw.iter().any(|r| r.tensor.name == t.name) {
                Err(AdapterError::bad_file(
                    q.path(),
                    format!("tensor `{}` read out of the manifest's order", t.name),
                ))
            } else {
                Ok(())
            };
        }
        sink.write_all(bytes).map_err(|e| AdapterError::io(out, e))?;
        written += bytes.len() as u64;
        if written == p.tensor.elements * p.ty.type_size() as u64 {
            sink.write_all(&vec![0u8; pads[k]]).map_err(|e| AdapterError::io(out, e))?;
            k += 1;
            written = 0;
        }
        Ok(())
    })?;
    if k != raw.len() {
        return Err(AdapterError::bad_file(q.path(), format!("{k} of {} raw tensors read whole", raw.len())));
    }
    Ok(())
}
