//! Mixed precision for GGUF output: with `target_bpw` (`--target-bpw`), each tensor
//! that would be quantized gets one of ggml's types ([`CANDIDATES`]) so that the
//! quantized tensors average at most `target_bpw` payload bits per weight, with the
//! least parameter-weighted relative error (the Parquet output's allocator,
//! [`crate::features::mixed::allocate_table`], with the same `min_accuracy` penalty).
//!
//! # Measuring in bounded time and memory
//! A candidate's bits are exact (ggml sizes follow from the shape). Its error is
//! measured on a sample: up to [`SAMPLE_CHUNKS`] chunks of
//! [`MEASURE_CHUNK`] elements spread evenly over the tensor, each read through one
//! mmap window, encoded and decoded with every candidate, and the squared error and
//! signal scaled to the whole tensor. A 7B model's tensors are measured on at most 1 Mi
//! elements each, so the plan costs a fraction of the quantization itself; a small
//! tensor is measured whole. Every chunk starts on a multiple of 256 elements and
//! rows hold whole blocks of every type they can take, so blocks are cut exactly as
//! the writer cuts them.
//!
//! A candidate falls back per tensor as the uniform choice would (a 384-wide row takes
//! Q5_0 for Q4_K, ...): the table holds what would really be written.

use std::time::Instant;

use arrowquant_core::diffusion::sensitivity::{CandidateCost, measure};
use arrowquant_core::ggml::{Effort, GgmlCodec, GgmlType};

use super::{GgufSource, SourceData, SourceTensor};
use crate::config::Config;
use crate::error::{AdapterError, Result};
use crate::features::mixed::{MEASURE_CHUNK, MixedPrecision, allocate_table};
use crate::model::window::{AlignedScratch, WindowReader, with_input};

/// The types mixed precision chooses among, cheapest first: the K types and the
/// 32-element types (rows that 256 does not divide, as in a 384-wide model, take the
/// 32-element types directly instead of only through a K type's fallback).
pub const CANDIDATES: [GgmlType; 12] = [
    GgmlType::Q2_K,
    GgmlType::Q3_K,
    GgmlType::IQ4_XS,
    GgmlType::Q4_0,
    GgmlType::IQ4_NL,
    GgmlType::Q4_K,
    GgmlType::Q4_1,
    GgmlType::Q5_0,
    GgmlType::Q5_K,
    GgmlType::Q5_1,
    GgmlType::Q6_K,
    GgmlType::Q8_0,
];

/// Chunks of [`MEASURE_CHUNK`] elements measured per tensor at most (16 x 64 Ki = 1 Mi).
pub const SAMPLE_CHUNKS: u64 = 16;

/// Replaces the type of every quantized tensor in `plan` by the allocation's choice
/// (reason: the plan's SQNR) and returns the plan's report; `None` (plan untouched)
/// without `target_bpw` or without a tensor to quantize.
///
/// # Errors
/// I/O and quantization errors while measuring (naming the tensor), or no assignment
/// fitting the budget (the message gives the smallest achievable figure).
pub(super) fn plan_types(
    source: &GgufSource,
    config: &Config,
    effort: Effort,
    window: u64,
    plan: &mut [(GgmlType, Option<String>)],
) -> Result<Option<MixedPrecision>> {
    if config.target_bpw.is_none() {
        return Ok(None);
    }
    // Tensors the uniform plan quantizes, from floats, whose rows take every candidate
    // in some block type (not the F16 fallback of rows that 32 does not divide).
    let members: Vec<usize> = (0..source.tensors.len())
        .filter(|&i| {
            let t = &source.tensors[i];
            plan[i].0.is_quantized()
                && matches!(t.data, SourceData::Float(_))
                && CANDIDATES.iter().all(|c| c.for_row_len(t.ne[0]).is_quantized())
        })
        .collect();
    if members.is_empty() {
        return Ok(None);
    }
    let start = Instant::now();
    let mut table = Vec::with_capacity(members.len() * CANDIDATES.len());
    let mut reader: Option<WindowReader> = None;
    for &i in &members {
        let t = &source.tensors[i];
        if reader.as_ref().is_none_or(|r| r.path() != t.file) {
            reader = Some(WindowReader::open(&t.file)?);
        }
        if let Some(r) = &reader {
            table.extend(measure_sampled(t, r, effort, window)?);
        }
    }
    let rows: Vec<(String, u64)> =
        members.iter().map(|&i| (source.tensors[i].name.clone(), elements(&source.tensors[i]))).collect();
    let names: Vec<String> = CANDIDATES.iter().map(|c| c.name().to_string()).collect();
    let describe = |row: usize, c: usize| {
        let ty = CANDIDATES[c].for_row_len(source.tensors[members[row]].ne[0]);
        (ty.name().to_string(), ty.name().to_string(), ty.bits_per_weight().floor() as u32)
    };
    let elapsed = start.elapsed().as_secs_f64();
    let (mp, choice) = allocate_table(&source.path, config, &rows, &names, &describe, &table, elapsed)?;
    for ((&i, &c), t) in members.iter().zip(&choice).zip(&mp.tensors) {
        let ty = CANDIDATES[c].for_row_len(source.tensors[i].ne[0]);
        let mut why = format!(
            "mixed precision (target {} bpw): planned {:.2} dB at {:.3} bpw",
            mp.target_bpw, t.planned_sqnr_db, t.planned_bpw
        );
        if ty != CANDIDATES[c] {
            why.push_str(&format!(" ({} for row length {}: {ty})", CANDIDATES[c], source.tensors[i].ne[0]));
        }
        plan[i] = (ty, Some(why));
    }
    Ok(Some(mp))
}

/// The plan with what the writer achieved: payload bits per weight and mean SQNR of
/// the planned tensors, as measured while writing.
pub(super) fn achieved(mut mp: MixedPrecision, written: &[crate::report::TensorReport]) -> MixedPrecision {
    let mut bits = 0u64;
    let mut n = 0u64;
    let mut sqnr = Vec::new();
    for t in mp.tensors.iter().filter_map(|m| written.iter().find(|w| w.name == m.name)) {
        bits += t.stored_bytes * 8;
        n += t.elements;
        sqnr.extend(t.sqnr_db);
    }
    mp.achieved_payload_bpw = (n > 0).then(|| bits as f64 / n as f64);
    mp.achieved_mean_sqnr_db = (!sqnr.is_empty()).then(|| sqnr.iter().sum::<f64>() / sqnr.len() as f64);
    mp
}

fn elements(t: &SourceTensor) -> u64 {
    t.ne.iter().product()
}

/// One table row: every candidate's exact bits on `t` and its error measured on the
/// sampled chunks, scaled to the whole tensor.
fn measure_sampled(
    t: &SourceTensor,
    reader: &WindowReader,
    effort: Effort,
    window: u64,
) -> Result<Vec<CandidateCost>> {
    let SourceData::Float(d) = t.data else {
        return Err(AdapterError::MixedPrecision {
            path: t.file.clone(),
            reason: format!("tensor `{}`: already quantized, nothing to measure", t.name),
        });
    };
    let quant_err = |e: arrowquant_core::QuantError| AdapterError::Quant {
        path: t.file.clone(),
        tensor: t.name.clone(),
        source: e,
    };
    let n = elements(t);
    let chunk = MEASURE_CHUNK as u64;
    let chunks = n.div_ceil(chunk);
    let stride = chunks.div_ceil(SAMPLE_CHUNKS).max(1);
    let codecs: Vec<GgmlCodec> = CANDIDATES
        .iter()
        .map(|c| GgmlCodec::with_effort(c.for_row_len(t.ne[0]), effort).ok_or(c))
        .collect::<std::result::Result<_, _>>()
        .map_err(|c| AdapterError::MixedPrecision {
            path: t.file.clone(),
            reason: format!("tensor `{}`: no encoder for {c}", t.name),
        })?;
    let mut sampled = CandidateCost::default();
    let mut costs = vec![CandidateCost::default(); codecs.len()];
    let mut x = vec![0f32; MEASURE_CHUNK];
    let mut scratch = AlignedScratch::default();
    let size = d.size() as u64;
    for k in (0..chunks).step_by(stride as usize) {
        let first = k * chunk;
        let len = chunk.min(n - first);
        reader.for_each_window(
            t.offset + first * size,
            len * size,
            window.max(len * size),
            size,
            |_, bytes| {
                with_input(d, bytes, &mut scratch, |input| -> Result<()> {
                    let x = &mut x[..input.len()];
                    input.to_f32(x);
                    for (codec, acc) in codecs.iter().zip(costs.iter_mut()) {
                        let m = measure(codec, x).map_err(|e| match e {
                            arrowquant_core::diffusion::DiffusionError::Quant(q) => quant_err(q),
                            other => AdapterError::MixedPrecision {
                                path: t.file.clone(),
                                reason: format!("tensor `{}`: {}: {other}", t.name, codec.ggml_type()),
                            },
                        })?;
                        acc.sse += m.sse;
                        acc.signal += m.signal;
                    }
                    sampled.count += x.len() as u64;
                    Ok(())
                })
            },
        )?;
    }
    // `sampled.count` counted once per chunk, not once per candidate.
    let scale = n as f64 / sampled.count.max(1) as f64;
    for (codec, c) in codecs.iter().zip(costs.iter_mut()) {
        c.count = n;
        c.bits = codec.ggml_type().bytes_for(n).unwrap_or(u64::MAX / 2) * 8;
        c.sse *= scale;
        c.signal *= scale;
    }
    Ok(costs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_are_cheapest_first_and_their_blocks_divide_the_chunk() {
        for w in CANDIDATES.windows(2) {
            assert!(w[0].bits_per_weight() <= w[1].bits_per_weight(), "{} before {}", w[0], w[1]);
        }
        for c in CANDIDATES {
            assert_eq!(MEASURE_CHUNK % c.block_len(), 0, "{c}");
        }
    }
}
