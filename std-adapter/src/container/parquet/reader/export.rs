//! Dequantizing: one tensor streamed or in memory, and the whole file exported as
//! safetensors (written atomically).

use std::io::{BufWriter, Write};
use std::path::Path;

use arrowquant_core::{bf16, f16};

use super::scan::Order;
use super::{ChunkData, ExportReport, OutDtype, QuantizedFile};
use crate::container::atomic::AtomicFile;
use crate::error::{AdapterError, Result};
use crate::model::safetensors::StDtype;

impl QuantizedFile {
    /// Streams the dequantized values of one tensor, chunk by chunk: `f` gets the
    /// chunk's first element and its values. Tensors stored raw are converted to f32
    /// if they are F32/F16/BF16.
    ///
    /// # Errors
    /// [`AdapterError::NoSuchTensor`], an error for raw non-float tensors, read errors.
    pub fn dequantize_tensor(&self, name: &str, mut f: impl FnMut(u64, &[f32]) -> Result<()>) -> Result<()> {
        let ti = self.tensors.iter().position(|t| t.name == name).ok_or_else(|| {
            AdapterError::NoSuchTensor { path: self.path.clone(), tensor: name.to_string() }
        })?;
        let t = &self.tensors[ti];
        let (groups, group_start) = self.row_groups_of(t)?;
        let (first, last) = (t.first_row, t.first_row + t.rows);
        let mut order = Order::starting_at(ti);
        let mut buf = Vec::new();
        let mut conv = Vec::new();
        let mut seen = 0u64;
        self.scan(Some(groups), |row_index, row| {
            let abs =
                group_start.checked_add(row_index).ok_or_else(|| self.bad(&t.name, "row index overflows"))?;
            if abs < first || abs >= last {
                return Ok(());
            }
            order.next(self, abs, &row)?;
            seen += 1;
            match self.decode_row(t, &row, &mut buf)? {
                ChunkData::F32(v) => f(row.element_offset, v),
                ChunkData::Raw(bytes) => {
                    let dt = StDtype::parse(&t.dtype).and_then(StDtype::quantizable).ok_or_else(|| {
                        AdapterError::bad_file(
                            &self.path,
                            format!("tensor `{}` has dtype {}, not a float", t.name, t.dtype),
                        )
                    })?;
                    conv.clear();
                    let what = || format!("tensor `{}` as f32", t.name);
                    crate::alloc::resize(&mut conv, bytes.len() / dt.size(), 0f32, &self.path, what)?;
                    let mut s = crate::model::window::AlignedScratch::default();
                    crate::model::window::with_input(dt, bytes, &mut s, |i| i.to_f32(&mut conv));
                    f(row.element_offset, &conv)
                }
            }
        })?;
        if seen != t.rows {
            return Err(AdapterError::bad_file(
                &self.path,
                format!("tensor `{}`: found {seen} of {} rows", t.name, t.rows),
            ));
        }
        Ok(())
    }

    /// The whole dequantized tensor in memory (convenience for small tensors; use
    /// [`dequantize_tensor`](Self::dequantize_tensor) to stream).
    ///
    /// # Errors
    /// As [`dequantize_tensor`](Self::dequantize_tensor).
    pub fn read_tensor_f32(&self, name: &str) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.dequantize_tensor(name, |_, v| {
            crate::alloc::reserve(&mut out, v.len(), &self.path, || format!("tensor `{name}`"))?;
            out.extend_from_slice(v);
            Ok(())
        })?;
        Ok(out)
    }

    /// Writes a safetensors file with every tensor: quantized ones dequantized to
    /// `dtype`, raw ones byte for byte. Written atomically.
    ///
    /// # Errors
    /// Read or write errors; nothing is left under `out` on error.
    pub fn export_safetensors(&self, out: &Path, dtype: OutDtype) -> Result<ExportReport> {
        let mut header = serde_json::Map::new();
        if !self.source_metadata.is_empty() {
            header.insert(
                "__metadata__".into(),
                serde_json::to_value(&self.source_metadata).unwrap_or_default(),
            );
        }
        let mut offset = 0u64;
        let mut sizes = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            let (name, size) = if t.is_quantized() {
                (dtype.name().to_string(), t.elements * dtype.size())
            } else {
                let d = StDtype::parse(&t.dtype).ok_or_else(|| {
                    AdapterError::bad_file(
                        &self.path,
                        format!("tensor `{}`: unknown dtype {}", t.name, t.dtype),
                    )
                })?;
                (t.dtype.clone(), t.elements * d.size())
            };
            header.insert(
                t.name.clone(),
                serde_json::json!({"dtype": name, "shape": t.shape, "data_offsets": [offset, offset + size]}),
            );
            sizes.push(size);
            offset += size;
        }
        let mut text =
            serde_json::to_string(&header).map_err(|e| AdapterError::io(out, std::io::Error::other(e)))?;
        // Pad the header so the data section starts 8-byte aligned, as the reference writer does.
        while (8 + text.len()) % 8 != 0 {
            text.push(' ');
        }
        let file = AtomicFile::create_reading(out, std::slice::from_ref(&self.path))?;
        let mut w = BufWriter::with_capacity(1 << 20, file.writer()?);
        let io = |e| AdapterError::io(out, e);
        w.write_all(&(text.len() as u64).to_le_bytes()).map_err(io)?;
        w.write_all(text.as_bytes()).map_err(io)?;
        let mut bytes = Vec::new();
        self.for_each_chunk(|_, _, data| {
            match data {
                ChunkData::Raw(b) => w.write_all(b).map_err(io)?,
                ChunkData::F32(v) => {
                    bytes.clear();
                    match dtype {
                        OutDtype::F32 => v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes())),
                        OutDtype::F16 => {
                            v.iter().for_each(|x| bytes.extend_from_slice(&f16::from_f32(*x).to_le_bytes()))
                        }
                        OutDtype::Bf16 => {
                            v.iter().for_each(|x| bytes.extend_from_slice(&bf16::from_f32(*x).to_le_bytes()))
                        }
                    }
                    w.write_all(&bytes).map_err(io)?;
                }
            }
            Ok(())
        })?;
        let size = w.into_inner().map_err(|e| io(e.into_error()))?.written();
        file.commit()?;
        Ok(ExportReport { path: out.display().to_string(), tensors: self.tensors.len(), bytes: size, dtype })
    }
}
