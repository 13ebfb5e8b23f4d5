//! One tensor's data streamed into the GGUF file: copied (already ggml blocks),
//! quantized into ggml blocks, or converted to F32/F16/BF16, from mmap windows.
//!
//! A tensor with a row order ([`SourceTensor::rows`], the `llama` Q/K permutation)
//! is read in pieces of whole output rows: each piece maps the span of input rows it
//! needs once (at most one window) and gathers them in output order into a buffer of
//! the same bounded size, so a permuted tensor costs one more window of memory, never
//! the tensor. Rows are whole blocks (the type choice falls back when a block does
//! not divide the row), so a piece encodes exactly as the contiguous path does.

use std::io::Write;
use std::path::Path;

use arrowquant_core::ggml::{Effort, GgmlCodec, GgmlType};
use arrowquant_core::{Dtype, Input, Quality, QualityAccumulator};

use super::blocks::BlockEncoder;
use super::source::{SourceData, SourceTensor};
use crate::error::{AdapterError, Result};
use crate::model::window::{AlignedScratch, WindowReader, with_input};

/// Visits `t`'s float data in output order as `(first element, bytes)` pieces of at
/// most about `window` bytes, each a multiple of `unit` bytes (contiguous input) or
/// of whole rows (a row order).
fn for_each_piece(
    reader: &WindowReader,
    t: &SourceTensor,
    d: Dtype,
    (window, unit): (u64, u64),
    mut f: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<()> {
    let esize = d.size() as u64;
    let Some(order) = &t.rows else {
        return reader.for_each_window(t.offset, t.byte_len, window, unit, |at, b| f(at / esize, b));
    };
    let row_bytes = t.byte_len / order.len().max(1) as u64;
    let per_piece = (window / row_bytes.max(1)).max(1) as usize;
    let mut gathered = Vec::new();
    let mut done = 0usize;
    while done < order.len() {
        // Grow the piece while the span of input rows it touches fits the window.
        let (mut lo, mut hi, mut n) = (order[done], order[done], 0usize);
        while done + n < order.len() && n < per_piece {
            let r = order[done + n];
            let (l, h) = (lo.min(r), hi.max(r));
            if n > 0 && u64::from(h - l + 1) * row_bytes > window {
                break;
            }
            (lo, hi, n) = (l, h, n + 1);
        }
        let span = u64::from(hi - lo + 1) * row_bytes;
        gathered.clear();
        reader.for_each_window(t.offset + u64::from(lo) * row_bytes, span, span, row_bytes, |_, b| {
            for &r in &order[done..done + n] {
                let at = (u64::from(r - lo) * row_bytes) as usize;
                gathered.extend_from_slice(&b[at..at + row_bytes as usize]);
            }
            Ok(())
        })?;
        f(done as u64 * row_bytes / esize, &gathered)?;
        done += n;
    }
    Ok(())
}

/// Streams one tensor's data (without padding) to `sink`; the quality against the
/// input for converted and quantized tensors.
pub(super) fn write_tensor(
    reader: &WindowReader,
    t: &SourceTensor,
    (ty, effort, encoder): (GgmlType, Effort, &BlockEncoder),
    window: u64,
    sink: &mut impl Write,
    out: &Path,
) -> Result<Option<Quality>> {
    let io = |e| AdapterError::io(out, e);
    let quant = |e: arrowquant_core::QuantError| AdapterError::Quant {
        path: t.file.clone(),
        tensor: t.name.clone(),
        source: e,
    };
    let d = match t.data {
        SourceData::Ggml(src) => {
            reader.for_each_window(t.offset, t.byte_len, window, src.type_size() as u64, |_, b| {
                sink.write_all(b).map_err(io)
            })?;
            return Ok(None);
        }
        SourceData::Float(d) => d,
    };
    let mut scratch = AlignedScratch::default();
    if let Some(codec) = GgmlCodec::with_effort(ty, effort) {
        let mut acc = QualityAccumulator::new();
        let mut blocks = Vec::new();
        let unit = (d.size() * ty.block_len()) as u64;
        for_each_piece(reader, t, d, (window, unit), |first, bytes| {
            with_input(d, bytes, &mut scratch, |input| {
                encoder.encode(&codec, input, first, &mut blocks, &mut acc)
            })
            .map_err(quant)?;
            sink.write_all(&blocks).map_err(io)
        })?;
        return Ok(Some(acc.finish()));
    }
    // F32, F16 or BF16 out: convert element by element, through a small f32 buffer.
    let mut acc = QualityAccumulator::new();
    let mut conv = Converter::new(ty);
    for_each_piece(reader, t, d, (window, d.size() as u64), |_, bytes| {
        with_input(d, bytes, &mut scratch, |input| conv.write(input, &mut acc, sink)).map_err(io)
    })?;
    // An F32 tensor written as F32 is exact: no figure to report, as for raw tensors.
    Ok((ty != GgmlType::F32 || d != Dtype::F32).then(|| acc.finish()))
}

/// Writes values computed in memory (1-D: always F32 or, with `--exclude`, F32 too;
/// F16/BF16 handled for completeness).
pub(super) fn write_values(
    values: &[f32],
    ty: GgmlType,
    sink: &mut impl Write,
) -> std::io::Result<Option<Quality>> {
    let mut acc = QualityAccumulator::new();
    Converter::new(ty).write(Input::F32(values), &mut acc, sink)?;
    Ok((ty != GgmlType::F32).then(|| acc.finish()))
}

/// Floats to F32, F16 or BF16 bytes through fixed buffers (64 KiB of f32 each).
struct Converter {
    ty: GgmlType,
    x: Vec<f32>,
    y: Vec<f32>,
    bytes: Vec<u8>,
}

impl Converter {
    fn new(ty: GgmlType) -> Self {
        Converter {
            ty,
            x: vec![0f32; 16 << 10],
            y: vec![0f32; 16 << 10],
            bytes: Vec::with_capacity(64 << 10),
        }
    }

    fn write(
        &mut self,
        input: Input<'_>,
        acc: &mut QualityAccumulator,
        sink: &mut impl Write,
    ) -> std::io::Result<()> {
        let mut pos = 0;
        while pos < input.len() {
            let n = (input.len() - pos).min(self.x.len());
            input.slice(pos, pos + n).to_f32(&mut self.x[..n]);
            self.bytes.clear();
            for (v, r) in self.x[..n].iter().zip(&mut self.y[..n]) {
                *r = match self.ty {
                    GgmlType::F16 => {
                        let h = arrowquant_core::f16::from_f32(*v);
                        self.bytes.extend_from_slice(&h.to_le_bytes());
                        h.to_f32()
                    }
                    GgmlType::BF16 => {
                        let h = arrowquant_core::bf16::from_f32(*v);
                        self.bytes.extend_from_slice(&h.to_le_bytes());
                        h.to_f32()
                    }
                    _ => {
                        self.bytes.extend_from_slice(&v.to_le_bytes());
                        *v
                    }
                };
            }
            acc.update(&self.x[..n], &self.y[..n]);
            sink.write_all(&self.bytes)?;
            pos += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::hf::permute::rope_row_order;

    /// A tensor of `rows` x `cols` f32 values `r * 1000 + c` in a temp file.
    fn tensor_file(rows: usize, cols: usize) -> (tempfile::NamedTempFile, SourceTensor) {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let lead = 24u64; // an offset that is not a multiple of the page or the row
        f.write_all(&vec![0u8; lead as usize]).unwrap();
        for r in 0..rows {
            for c in 0..cols {
                f.write_all(&((r * 1000 + c) as f32).to_le_bytes()).unwrap();
            }
        }
        let t = SourceTensor {
            name: "blk.0.attn_q.weight".into(),
            ne: vec![cols as u64, rows as u64],
            dtype: "F32".into(),
            data: SourceData::Float(Dtype::F32),
            file: f.path().to_path_buf(),
            offset: lead,
            byte_len: (rows * cols * 4) as u64,
            rows: None,
            values: None,
        };
        (f, t)
    }

    #[test]
    fn permuted_rows_are_streamed_in_output_order_with_any_window() {
        let (rows, cols, heads) = (64, 8, 4);
        let (_f, mut t) = tensor_file(rows, cols);
        let order = rope_row_order(rows as u64, heads).unwrap();
        t.rows = Some(order.clone());
        let want: Vec<f32> =
            order.iter().flat_map(|&r| (0..cols).map(move |c| (r as usize * 1000 + c) as f32)).collect();
        let reader = WindowReader::open(&t.file).unwrap();
        // Windows of one row, a few rows, less than a head, several heads, everything.
        for window in [32, 100, 200, 1024, 1 << 20] {
            let mut got = Vec::new();
            let mut firsts = Vec::new();
            for_each_piece(&reader, &t, Dtype::F32, (window, 4), |first, b| {
                firsts.push(first);
                got.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())));
                Ok(())
            })
            .unwrap();
            assert_eq!(got, want, "window {window}");
            assert_eq!(firsts[0], 0);
            assert!(firsts.windows(2).all(|w| w[0] < w[1] && w[1] % cols as u64 == 0), "window {window}");
        }
    }

    #[test]
    fn permuted_f32_output_equals_the_permuted_input() {
        let (rows, cols) = (16, 32);
        let (_f, mut t) = tensor_file(rows, cols);
        let order = rope_row_order(rows as u64, 2).unwrap();
        t.rows = Some(order.clone());
        let reader = WindowReader::open(&t.file).unwrap();
        let enc = BlockEncoder::new(1).unwrap();
        let mut out = Vec::new();
        let q = write_tensor(&reader, &t, (GgmlType::F32, Effort::Fast, &enc), 256, &mut out, Path::new("o"))
            .unwrap();
        assert!(q.is_none(), "F32 to F32 is exact");
        let got: Vec<f32> = out.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let want: Vec<f32> =
            order.iter().flat_map(|&r| (0..cols).map(move |c| (r as usize * 1000 + c) as f32)).collect();
        assert_eq!(got, want);
        // Quantized: the same blocks as quantizing the permuted rows laid out contiguously.
        let mut q8 = Vec::new();
        write_tensor(&reader, &t, (GgmlType::Q8_0, Effort::Fast, &enc), 256, &mut q8, Path::new("o"))
            .unwrap();
        let mut direct = tempfile::NamedTempFile::new().unwrap();
        for v in &want {
            direct.write_all(&v.to_le_bytes()).unwrap();
        }
        let plain = SourceTensor { file: direct.path().to_path_buf(), offset: 0, rows: None, ..t.clone() };
        let reader2 = WindowReader::open(&plain.file).unwrap();
        let mut q8_direct = Vec::new();
        write_tensor(
            &reader2,
            &plain,
            (GgmlType::Q8_0, Effort::Fast, &enc),
            1 << 20,
            &mut q8_direct,
            Path::new("o"),
        )
        .unwrap();
        assert_eq!(q8, q8_direct);
    }
}
