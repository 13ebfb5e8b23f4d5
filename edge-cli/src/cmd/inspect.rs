//! `arrowquant inspect FILE`: the tensors of a safetensors model, an ArrowQuant
//! Parquet file, a device (postcard) file or a GGUF file, with shapes, dtypes (the
//! ggml type for GGUF), bits, bits per weight and sizes; for GGUF also its key-value
//! pairs (arrays shown by type and length). The kind of file is recognised by its
//! first bytes (`PAR1`, `AQDV`, `GGUF`), not its name.

use std::path::Path;

use anyhow::{Context, anyhow};
use arrowquant_core::device;
use arrowquant_std::{EqualizationOutcome, FileKind, Model, QuantizedFile, TimeAwareOutcome};
use serde_json::{Value, json};

use crate::args::{GlobalArgs, InspectArgs};
use crate::exit::Outcome;
use crate::report::{equalization_text, mb, mixed_text, time_aware_text};

/// One row of the listing.
struct Row {
    name: String,
    dtype: String,
    shape: Vec<u64>,
    elements: u64,
    bits: Option<u32>,
    bytes: u64,
    extra: Value,
}

/// Runs `arrowquant inspect`.
///
/// # Errors
/// Unreadable or malformed files (exit 2).
pub fn run(args: &InspectArgs, global: &GlobalArgs) -> anyhow::Result<Outcome> {
    let path = &args.file;
    let mut quantized = None;
    let (kind, rows, file_bytes, meta) = match sniff(path)? {
        Kind::Parquet => {
            let q = QuantizedFile::open(path)
                .with_context(|| format!("opening quantized file {}", path.display()))?;
            let listing = parquet_rows(&q);
            quantized = Some(q);
            listing
        }
        Kind::Device => device_rows(path)?,
        Kind::Gguf => gguf_rows(path)?,
        Kind::Safetensors => safetensors_rows(path)?,
    };
    let elements: u64 = rows.iter().map(|r| r.elements).sum();
    let bpw = |bytes: u64, n: u64| if n > 0 { bytes as f64 * 8.0 / n as f64 } else { 0.0 };
    if global.json {
        let tensors: Vec<Value> = rows
            .iter()
            .map(|r| {
                let mut v = json!({
                    "name": r.name, "dtype": r.dtype, "shape": r.shape, "elements": r.elements,
                    "bits": r.bits, "bytes": r.bytes, "bits_per_weight": bpw(r.bytes, r.elements),
                });
                if let (Some(o), Some(e)) = (v.as_object_mut(), r.extra.as_object()) {
                    o.extend(e.clone());
                }
                v
            })
            .collect();
        crate::out::print_json(&json!({
            "command": "inspect",
            "file": path.display().to_string(),
            "kind": kind,
            "file_bytes": file_bytes,
            "tensor_count": rows.len(),
            "elements": elements,
            "bits_per_weight": bpw(file_bytes, elements),
            "metadata": meta,
            "tensors": tensors,
            "time_aware": quantized.as_ref().map(|q| json!({
                "stored": q.time_groups().is_some(),
                "skipped_reason": skipped_reason(q),
                "table": q.time_groups(),
            })),
            "mixed_precision": quantized.as_ref().and_then(|q| q.mixed_precision()),
            "equalization": quantized.as_ref().map(|q| json!({
                "stored": q.equalization().is_some(),
                "skipped_reason": equalization_skipped_reason(q),
                "table": q.equalization(),
            })),
        }))?;
        return Ok(Outcome::Success);
    }
    let mut o = format!(
        "{} ({kind}): {} tensors, {elements} weights, {:.3} MB, {:.3} bits/weight\n",
        path.display(),
        rows.len(),
        mb(file_bytes),
        bpw(file_bytes, elements)
    );
    if let Some(m) = meta.as_object().filter(|m| !m.is_empty()) {
        for (k, v) in m {
            o.push_str(&format!("  {k}: {}\n", v.as_str().map_or_else(|| v.to_string(), str::to_string)));
        }
    }
    if let Some(q) = &quantized {
        sections_text(&mut o, q);
    }
    o.push_str(&format!(
        "{:<56} {:>5} {:>18} {:>10} {:>5} {:>8} {:>12}\n",
        "tensor", "dtype", "shape", "elements", "bits", "bpw", "bytes"
    ));
    for r in &rows {
        let shape = format!("{:?}", r.shape);
        let bits = r.bits.map_or_else(|| "raw".into(), |b| b.to_string());
        o.push_str(&format!(
            "{:<56} {:>5} {:>18} {:>10} {:>5} {:>8.3} {:>12}\n",
            crate::out::esc(&r.name),
            r.dtype,
            shape,
            r.elements,
            bits,
            bpw(r.bytes, r.elements),
            r.bytes
        ));
    }
    crate::out::print(&o)?;
    Ok(Outcome::Success)
}

/// The sections stored beside the tensors of a quantized file (time-aware groups
/// with their per-layer parameters, equalization, mixed precision).
fn sections_text(o: &mut String, q: &QuantizedFile) {
    time_aware_text(o, q.time_groups(), skipped_reason(q).as_deref());
    if let Some(t) = q.time_groups() {
        for l in &t.layers {
            o.push_str(&format!("    {}:", l.layer));
            for g in &l.groups {
                o.push_str(&format!(" [{}, {}) s={:.6e} zp={};", g.t_start, g.t_end, g.scale, g.zero_point));
            }
            o.push('\n');
        }
    }
    equalization_text(o, q.equalization(), equalization_skipped_reason(q).as_deref());
    if let Some(m) = q.mixed_precision() {
        mixed_text(o, m, Some(q.bits_per_weight()));
    }
}

enum Kind {
    Parquet,
    Device,
    Gguf,
    Safetensors,
}

fn sniff(path: &Path) -> anyhow::Result<Kind> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_dir() {
        return Ok(Kind::Safetensors);
    }
    // Refuses pipes and devices without blocking; other formats reach `Model::open`,
    // which names them.
    Ok(match FileKind::sniff(path).with_context(|| format!("{}", path.display()))? {
        FileKind::Parquet => Kind::Parquet,
        FileKind::Device => Kind::Device,
        FileKind::Gguf => Kind::Gguf,
        _ => Kind::Safetensors,
    })
}

type Listing = (&'static str, Vec<Row>, u64, Value);

fn safetensors_rows(path: &Path) -> anyhow::Result<Listing> {
    let m = Model::open(path).with_context(|| format!("opening model {}", path.display()))?;
    let file_bytes = m.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|x| x.len()).sum();
    let rows = m
        .tensors
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            dtype: t.dtype.name().into(),
            shape: t.shape.clone(),
            elements: t.elements(),
            bits: Some(t.dtype.size() as u32 * 8),
            bytes: t.byte_len,
            extra: json!({ "file": m.files[t.file].display().to_string() }),
        })
        .collect();
    Ok(("safetensors", rows, file_bytes, json!(m.metadata)))
}

/// A GGUF file: every tensor (shape outermost first, as for safetensors) with its
/// ggml type, and the key-value pairs (arrays as `[type; length]`).
fn gguf_rows(path: &Path) -> anyhow::Result<Listing> {
    use arrowquant_std::core::gguf::Value as Kv;
    let m = arrowquant_std::GgufModel::open(path)
        .with_context(|| format!("opening GGUF file {}", path.display()))?;
    let file_bytes = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?.len();
    let rows = m
        .header
        .tensor_ranges()
        .map(|(t, r)| {
            let ty = t.ggml_type();
            Row {
                name: t.name().to_string(),
                dtype: ty.name().to_string(),
                shape: t.dims().iter().rev().copied().collect(),
                elements: t.elements(),
                bits: ty.is_quantized().then(|| ty.bits_per_weight().floor() as u32),
                bytes: r.end - r.start,
                extra: json!({ "offset": r.start }),
            }
        })
        .collect();
    let mut meta = serde_json::Map::new();
    for (k, v) in m.header.metadata().iter() {
        let shown = match v {
            Kv::String(s) => json!(s),
            Kv::Bool(b) => json!(b),
            Kv::F32(x) => json!(x),
            Kv::F64(x) => json!(x),
            Kv::U8(x) => json!(x),
            Kv::I8(x) => json!(x),
            Kv::U16(x) => json!(x),
            Kv::I16(x) => json!(x),
            Kv::U32(x) => json!(x),
            Kv::I32(x) => json!(x),
            Kv::U64(x) => json!(x),
            Kv::I64(x) => json!(x),
            Kv::Array(a) => json!(format!("[{}; {}]", a.element_type(), a.len())),
            // A value type added to core later: shown by its type name.
            other => json!(format!("({})", other.value_type())),
        };
        meta.insert(k.to_string(), shown);
    }
    Ok(("gguf", rows, file_bytes, Value::Object(meta)))
}

/// Why a quantized file has no time-aware parameters (None if it has them). The file
/// records its configuration, so the reason can be told after the fact.
fn skipped_reason(q: &QuantizedFile) -> Option<String> {
    if q.time_groups().is_some() {
        return None;
    }
    Some(match q.config() {
        Some(c) => TimeAwareOutcome::skip_reason(&c)
            .unwrap_or_else(|| "the file records a calibration file but no parameters".into()),
        None => "the file's configuration could not be read".into(),
    })
}

/// Why a quantized file has no channel-equalization table (None if it has one), told
/// from its recorded configuration.
fn equalization_skipped_reason(q: &QuantizedFile) -> Option<String> {
    if q.equalization().is_some() {
        return None;
    }
    Some(match q.config() {
        Some(c) => EqualizationOutcome::skip_reason(&c)
            .unwrap_or_else(|| "the file records a calibration file but no equalization table".into()),
        None => "the file's configuration could not be read".into(),
    })
}

fn parquet_rows(q: &QuantizedFile) -> Listing {
    let rows = q
        .tensors()
        .iter()
        .map(|t| Row {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            elements: t.elements,
            bits: t.is_quantized().then_some(t.bits),
            bytes: t.stored_bytes,
            extra: json!({
                "codec": t.codec, "group_size": t.block_len, "scheme": t.scheme, "bits_requested": t.bits_requested,
                "cosine": t.cosine, "fallback_reason": t.fallback_reason, "raw_reason": t.raw_reason,
            }),
        })
        .collect();
    let config: Value = serde_json::from_str(q.config_json()).unwrap_or(Value::Null);
    let meta =
        json!({ "tool_version": q.tool_version(), "config": config, "source_metadata": q.source_metadata() });
    ("arrowquant-parquet", rows, q.file_size(), meta)
}

fn device_rows(path: &Path) -> anyhow::Result<Listing> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows = Vec::new();
    for (i, rec) in device::tensors(&bytes).enumerate() {
        let t = rec.map_err(|e| anyhow!("{}: record {i}: {e}", path.display()))?;
        rows.push(Row {
            name: t.name().to_string(),
            dtype: t.raw_dtype().map_or("-", |d| d.name()).into(),
            shape: t.shape().to_vec(),
            elements: t.len() as u64,
            bits: Some(u32::from(t.bits())),
            bytes: (t.codes().len() + t.params().len()) as u64,
            extra: json!({
                "group_size": t.group_len(),
                "groups": t.groups(),
                "codec": match t.codec() {
                    device::DeviceCodec::Group(_) => "group".to_string(),
                    device::DeviceCodec::TwoLevel(_) => "two-level".to_string(),
                    device::DeviceCodec::Raw(d) => format!("raw {}", d.name()),
                },
            }),
        });
    }
    Ok(("arrowquant-device", rows, bytes.len() as u64, json!({})))
}
