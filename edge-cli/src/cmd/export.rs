//! `arrowquant export IN.parquet --format postcard|safetensors|gguf -o OUT`.
//!
//! GGUF: the library's [`arrowquant_std::export_parquet_gguf`] (blocks repacked into
//! ggml's layout where it holds them bit for bit; other codecs refused, naming the
//! tensor).
//!
//! The postcard (device) format holds one record per quantized tensor: a postcard
//! header and the packed blocks exactly as stored in the Parquet file (no
//! re-quantization), closed by a CRC-32 (layout in `arrowquant_core::device`). Plain
//! group codecs and two-level codecs (every preset) are carried; per-row two-level
//! layouts are not.
//! Tensors stored unquantized in the Parquet file (1-D biases and norms, integer
//! tensors, excluded tensors) become raw records (their bytes, tag 2); only a dtype
//! the device format does not name is listed as skipped.
//! After writing, every record is read back with the core's device reader and
//! compared, value for value, with the Parquet path's dequantization.
//!
//! The stored blocks come from [`QuantizedFile::for_each_encoded_tensor`], which checks
//! every row against the manifest and decodes pages under the reader's panic guard;
//! this module does no Parquet reading of its own.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, anyhow, bail, ensure};
use arrowquant_core::device;
use arrowquant_core::preset::LayoutKind;
use arrowquant_std::{AtomicFile, QuantizedFile, StoredTensor};
use serde_json::json;

use crate::args::{ExportArgs, ExportFormat, GlobalArgs};
use crate::exit::Outcome;

/// What [`write_postcard`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct PostcardExport {
    /// File size in bytes.
    pub bytes: u64,
    /// Tensor records written.
    pub records: usize,
    /// Tensors left out (a raw dtype the device format does not name).
    pub skipped: Vec<String>,
}

/// Runs `arrowquant export`.
///
/// # Errors
/// Input and write errors (exit 2); nothing is left at the output on error.
pub fn run(args: &ExportArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    match args.format {
        ExportFormat::Safetensors | ExportFormat::Gguf => crate::output::stream_if_stdout(&args.output),
        ExportFormat::Postcard => {
            crate::output::refuse_stdout(&args.output, crate::cmd::quantize::POSTCARD_NOT_STREAMED)?
        }
    }
    crate::output::check(&args.output, std::slice::from_ref(&args.input))?;
    match args.format {
        ExportFormat::Safetensors => {
            crate::cmd::dequantize::write_safetensors(&args.input, &args.output, args.dtype, global, "export")
        }
        ExportFormat::Gguf => {
            let q = QuantizedFile::open(&args.input)
                .with_context(|| format!("opening quantized file {}", args.input.display()))?;
            let e = arrowquant_std::export_parquet_gguf(&q, &args.output)
                .with_context(|| format!("exporting {} to GGUF", args.input.display()))?;
            if global.json {
                crate::out::print_json(&json!({
                    "command": "export",
                    "input": args.input.display().to_string(),
                    "output": args.output.display().to_string(),
                    "format": "gguf",
                    "tensors": e.tensors,
                    "repacked": e.repacked,
                    "file_type": e.main_type,
                    "bytes": e.bytes,
                    "skipped": e.skipped,
                }))?;
            } else {
                let mut s = format!(
                    "wrote {} ({} tensors, {} repacked into ggml blocks without re-quantizing, mostly {}; {:.3} MB)\n",
                    args.output.display(),
                    e.tensors,
                    e.repacked,
                    e.main_type,
                    crate::report::mb(e.bytes)
                );
                if !e.skipped.is_empty() {
                    s.push_str(&format!("skipped: {}\n", e.skipped.join(", ")));
                }
                crate::out::print(&s)?;
            }
            Ok(Outcome::Success)
        }
        ExportFormat::Postcard => {
            let q = QuantizedFile::open(&args.input)
                .with_context(|| format!("opening quantized file {}", args.input.display()))?;
            let e = write_postcard(&q, &args.output)?;
            if global.json {
                crate::out::print_json(&json!({
                    "command": "export",
                    "input": args.input.display().to_string(),
                    "output": args.output.display().to_string(),
                    "format": "postcard",
                    "records": e.records,
                    "bytes": e.bytes,
                    "skipped": e.skipped,
                    "verified": true,
                }))?;
            } else {
                let mut s = format!(
                    "wrote {} ({} tensor records, {:.3} MB; read back and identical to the Parquet dequantization)\n",
                    args.output.display(),
                    e.records,
                    crate::report::mb(e.bytes)
                );
                if !e.skipped.is_empty() {
                    s.push_str(&format!(
                        "skipped (dtype not in the device format): {}\n",
                        e.skipped.join(", ")
                    ));
                }
                crate::out::print(&s)?;
            }
            Ok(Outcome::Success)
        }
    }
}

/// Writes the device file of `q` to `out` (atomically) and verifies it.
///
/// # Errors
/// Read and write errors, codecs the device format cannot hold, a failed read-back.
pub fn write_postcard(q: &QuantizedFile, out: &Path) -> anyhow::Result<PostcardExport> {
    let file = AtomicFile::create_reading(out, &[q.path().to_path_buf()])?;
    let mut w = BufWriter::with_capacity(1 << 20, file.writer()?);
    let mut records = 0usize;
    let mut record = Vec::new();
    q.for_each_encoded_tensor(|t| -> anyhow::Result<()> {
        let name = &t.tensor.name;
        let Some(format) = device_codec(t.codec.codec().layout().kind) else {
            bail!(
                "{}: tensor `{name}`: codec `{}` (per-row two-level) cannot be written to the device format",
                q.path().display(),
                t.tensor.codec
            );
        };
        record.clear();
        device::append_tensor(&mut record, name, &t.tensor.shape, format, t.codes, t.params)
            .map_err(|e| anyhow!("{}: tensor `{name}`: {e}", q.path().display()))?;
        w.write_all(&record).with_context(|| format!("writing {}", out.display()))?;
        records += 1;
        Ok(())
    })?;
    let (raw_records, raw_hashes, skipped) = write_raw_tensors(q, &mut w, out)?;
    records += raw_records;
    w.flush().with_context(|| format!("writing {}", out.display()))?;
    drop(w);
    verify(q, file.tmp_path(), records, &raw_hashes)
        .with_context(|| format!("checking {} before keeping it", out.display()))?;
    file.commit()?;
    let bytes = std::fs::metadata(out).with_context(|| format!("{}", out.display()))?.len();
    Ok(PostcardExport { bytes, records, skipped })
}

/// The device codec of a stored layout: group layouts (searched ones store the same
/// layout as plain ones) and two-level layouts without per-row scales (every preset).
pub fn device_codec(kind: LayoutKind) -> Option<device::DeviceCodec> {
    match kind {
        LayoutKind::Group(f) => Some(f.into()),
        LayoutKind::TwoLevel { format, per_row: false } => Some(format.into()),
        LayoutKind::TwoLevel { per_row: true, .. } => None,
    }
}

/// FNV-1a of a raw tensor's bytes, to check non-float raw records on read-back.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// Appends one raw record per tensor stored unquantized (their bytes as in the Parquet
/// file) and returns how many, the byte hash of each non-float one, and the tensors
/// whose dtype the device format does not name (skipped). Memory: one raw tensor.
fn write_raw_tensors(
    q: &QuantizedFile,
    w: &mut impl Write,
    out: &Path,
) -> anyhow::Result<(usize, HashMap<String, u64>, Vec<String>)> {
    let raw: Vec<_> = q.tensors().iter().filter(|t| !t.is_quantized()).collect();
    let skipped: Vec<String> = raw
        .iter()
        .filter(|t| device::RawDtype::from_name(&t.dtype).is_none())
        .map(|t| t.name.clone())
        .collect();
    let (mut records, mut hashes) = (0usize, HashMap::new());
    if raw.len() == skipped.len() {
        return Ok((0, hashes, skipped));
    }
    let (mut current, mut buf, mut record): (Option<&StoredTensor>, Vec<u8>, Vec<u8>) =
        (None, Vec::new(), Vec::new());
    let mut flush = |t: &StoredTensor, buf: &mut Vec<u8>| -> anyhow::Result<()> {
        let Some(dtype) = device::RawDtype::from_name(&t.dtype) else { return Ok(()) };
        record.clear();
        device::append_tensor(&mut record, &t.name, &t.shape, device::DeviceCodec::Raw(dtype), buf, &[])
            .map_err(|e| anyhow!("{}: tensor `{}`: {e}", q.path().display(), t.name))?;
        w.write_all(&record).with_context(|| format!("writing {}", out.display()))?;
        if dtype.to_f32(&vec![0u8; dtype.size()]).is_none() {
            hashes.insert(t.name.clone(), fnv1a(buf));
        }
        records += 1;
        buf.clear();
        Ok(())
    };
    // The scan's callback returns the library's error type: a write error is kept
    // here and returned after the scan.
    let mut failed = None;
    q.for_each_chunk(|t, _, data| {
        if let (arrowquant_std::ChunkData::Raw(bytes), None) = (data, &failed) {
            if let Some(prev) = current.filter(|c| c.name != t.name) {
                failed = flush(prev, &mut buf).err();
            }
            current = q.tensor(&t.name);
            buf.extend_from_slice(bytes);
        }
        Ok(())
    })?;
    if let Some(e) = failed {
        return Err(e);
    }
    if let Some(t) = current {
        flush(t, &mut buf)?;
    }
    Ok((records, hashes, skipped))
}

/// Reads every record back and compares it with the Parquet path, bit for bit (raw
/// non-float records: their bytes, by hash).
fn verify(
    q: &QuantizedFile,
    written: &Path,
    records: usize,
    raw_hashes: &HashMap<String, u64>,
) -> anyhow::Result<()> {
    let bytes = std::fs::read(written).with_context(|| format!("reading {}", written.display()))?;
    let mut seen = 0usize;
    let mut values = Vec::new();
    for rec in device::tensors(&bytes) {
        let t = rec.map_err(|e| anyhow!("record {seen}: {e}"))?;
        if let Some(&h) = raw_hashes.get(t.name()) {
            ensure!(fnv1a(t.codes()) == h, "tensor `{}`: raw bytes differ from the Parquet file's", t.name());
            seen += 1;
            continue;
        }
        values.clear();
        values.resize(t.len(), 0f32);
        t.dequantize_into(&mut values).map_err(|e| anyhow!("tensor `{}`: {e}", t.name()))?;
        let expected = q.read_tensor_f32(t.name())?;
        ensure!(
            expected.len() == values.len()
                && expected.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()),
            "tensor `{}` does not decode to the Parquet file's values",
            t.name()
        );
        seen += 1;
    }
    ensure!(seen == records, "{seen} records read back, {records} written");
    Ok(())
}
