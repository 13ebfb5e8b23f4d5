//! The Arrow batch API: quantize an in-memory record batch of layers into a record
//! batch of the ArrowQuant file schema ([`crate::container::parquet::schema::schema`]).
//!
//! Input columns: `layer_name: Utf8`, `weights: List<Float32>` and optionally
//! `shape: List<Int64>` (a missing or null shape means 1-D). Every layer is
//! quantized (no 1-D or pattern exclusions: the caller chose the layers), with the
//! same quality fallback as files.

use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use arrowquant_core::{BlockCodec, Input, QualityAccumulator};

use crate::config::Config;
use crate::container::parquet::writer::{BatchBuilder, TensorRowInfo};
use crate::encode::chunk::{EncodedChunk, encode_chunk, metrics_of};
use crate::encode::codec::CodecChoice;
use crate::error::{AdapterError, Result};
use crate::pipeline::Tuning;

fn schema_err(column: &str, problem: impl Into<String>) -> AdapterError {
    AdapterError::BatchSchema { column: column.to_string(), problem: problem.into() }
}

/// Quantizes every row of `batch` (one layer per row).
///
/// # Errors
/// [`AdapterError::BatchSchema`] naming a missing or mistyped column or a bad row;
/// [`AdapterError::Quant`] for rejected weights; [`AdapterError::BelowAccuracy`]
/// with `fail_fast`.
pub fn quantize_batch(batch: &RecordBatch, config: &Config) -> Result<RecordBatch> {
    config.validate()?;
    let names = batch.column_by_name("layer_name").ok_or_else(|| schema_err("layer_name", "is missing"))?;
    let names = names
        .as_string_opt::<i32>()
        .ok_or_else(|| schema_err("layer_name", format!("must be Utf8, found {}", names.data_type())))?;
    let weights = batch.column_by_name("weights").ok_or_else(|| schema_err("weights", "is missing"))?;
    let weights = match weights.data_type() {
        DataType::List(f) if f.data_type() == &DataType::Float32 => weights.as_list::<i32>(),
        other => return Err(schema_err("weights", format!("must be List<Float32>, found {other}"))),
    };
    let shapes = match batch.column_by_name("shape") {
        None => None,
        Some(s) => match s.data_type() {
            DataType::List(f) if f.data_type() == &DataType::Int64 => Some(s.as_list::<i32>()),
            other => return Err(schema_err("shape", format!("must be List<Int64>, found {other}"))),
        },
    };
    let base = CodecChoice::from_config(config)?;
    let tuning = Tuning::for_config(config);
    let mut out = BatchBuilder::new();
    for r in 0..batch.num_rows() {
        if names.is_null(r) {
            return Err(schema_err("layer_name", format!("is null in row {r}")));
        }
        let name = names.value(r);
        if weights.is_null(r) {
            return Err(schema_err("weights", format!("is null in row {r} (`{name}`)")));
        }
        let w = weights.value(r);
        let w = w.as_primitive::<Float32Type>();
        if w.null_count() > 0 {
            return Err(schema_err("weights", format!("row {r} (`{name}`) holds null values")));
        }
        let w: &[f32] = w.values();
        let shape: Vec<u64> = match shapes {
            Some(s) if !s.is_null(r) => {
                let v = s.value(r);
                let v = v.as_primitive::<Int64Type>();
                let dims: Option<Vec<u64>> = v.values().iter().map(|&d| u64::try_from(d).ok()).collect();
                let dims = dims.ok_or_else(|| {
                    schema_err("shape", format!("row {r} (`{name}`) has a negative dimension"))
                })?;
                if dims.iter().product::<u64>() != w.len() as u64 {
                    return Err(schema_err(
                        "shape",
                        format!("row {r} (`{name}`): shape {dims:?} does not match {} weights", w.len()),
                    ));
                }
                dims
            }
            _ => vec![w.len() as u64],
        };
        quantize_layer(name, &shape, w, config, base, tuning, &mut out)?;
    }
    out.finish().map_err(|e| schema_err("output", e.to_string()))
}

fn quantize_layer(
    name: &str,
    shape: &[u64],
    w: &[f32],
    config: &Config,
    base: CodecChoice,
    tuning: Tuning,
    out: &mut BatchBuilder,
) -> Result<()> {
    let min = config.min_accuracy;
    let mut codec = base;
    let mut reasons = Vec::new();
    let (chunks, q) = loop {
        let bl = codec.block_len();
        let step = (tuning.chunk_elements / bl).max(1) * bl;
        let mut chunks = Vec::new();
        let mut acc = QualityAccumulator::new();
        for s in (0..w.len()).step_by(step) {
            let mut c = EncodedChunk::default();
            let q = encode_chunk(codec.codec(), Input::F32(&w[s..(s + step).min(w.len())]), s as u64, &mut c)
                .map_err(|e| AdapterError::Quant {
                    path: "<record batch>".into(),
                    tensor: name.to_string(),
                    source: e,
                })?;
            acc.merge(&q);
            chunks.push(c);
        }
        let q = acc.finish();
        if q.cosine >= min {
            break (chunks, q);
        }
        if config.fail_fast {
            return Err(AdapterError::BelowAccuracy {
                tensor: name.to_string(),
                cosine: q.cosine,
                bits: codec.bits(),
                min_accuracy: min,
            });
        }
        reasons.push(format!("cosine {:.6} at {} bits is below min_accuracy {min}", q.cosine, codec.bits()));
        match codec.wider() {
            Some(wc) => codec = wc,
            None => break (chunks, q),
        }
    };
    let info = TensorRowInfo {
        name: name.to_string(),
        shape: shape.to_vec(),
        dtype: "F32".into(),
        codec: codec.id(),
        preset: codec.preset().map(|p| p.name().to_string()),
        bits: codec.bits(),
        bits_requested: base.bits(),
        block_len: codec.block_len() as u32,
        scheme: codec.scheme_name().map(String::from),
        block_codes_len: codec.codes_len() as u32,
        block_params_len: codec.params_len() as u32,
        fallback_reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
        raw_reason: None,
        metrics: Some(metrics_of(&q)),
    };
    for (i, c) in chunks.iter().enumerate() {
        out.push(
            &info,
            i as u32,
            &crate::container::parquet::writer::ChunkRow {
                element_offset: c.element_offset,
                element_count: c.elements,
                blocks: c.blocks,
                padding: c.padding,
                codes: &c.codes,
                params: &c.params,
            },
        );
    }
    Ok(())
}
