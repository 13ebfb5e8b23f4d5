//! Mixed precision: one codec per tensor, chosen to minimise the total error under a
//! target average of bits per weight (`target_bpw`).
//!
//! 1. **Measure.** Every tensor the pipeline quantizes is read once more through the
//!    same mmap windows as the quantizer (one window mapped at a time) and, chunk by chunk,
//!    encoded and decoded with each of the [`candidates`] by
//!    [`sensitivity::measure`](arrowquant_core::diffusion::sensitivity::measure): exact
//!    payload bits (codes and block parameters, the padded last block included, which is
//!    exactly what the file's `codes` and `params` columns hold) and squared error.
//!    Chunks are [`MEASURE_CHUNK`] elements, a multiple of every candidate's block, so
//!    blocks are cut exactly as the quantizer cuts them.
//! 2. **Respect `min_accuracy`.** A candidate is admissible for a tensor when its
//!    guaranteed cosine `sqrt(1 - sse / signal)` (a lower bound: an error of relative
//!    norm `r` turns a vector by at most `asin r`) reaches `min_accuracy`; others get a
//!    penalty cost, so they are chosen only if the budget leaves nothing else, and then
//!    the quality fallback of the pipeline applies (and can break the budget: the
//!    report says so).
//! 3. **Allocate** with [`sensitivity::allocate`](arrowquant_core::diffusion::sensitivity::allocate)
//!    (objective `WeightedRelative`: parameter-weighted relative squared error).
//!
//! The budget covers the quantized payload only. Tensors stored raw (1-D biases and
//! norms, excluded tensors) and the Parquet file's own overhead (column metadata, the
//! manifest, zstd framing) come on top: the report gives both the payload figure the
//! budget applies to and the real file bits per weight.

use std::time::Instant;

use arrowquant_core::diffusion::sensitivity::{CandidateCost, Objective, allocate, measure};
use arrowquant_core::preset::Preset;
use arrowquant_core::{GroupFormat, Scheme};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::encode::codec::CodecChoice;
use crate::error::{AdapterError, Result};
use crate::model::safetensors::{Model, TensorInfo};
use crate::model::window::{AlignedScratch, WindowReader, with_input};

/// Elements per measurement chunk: a multiple of every candidate's block length.
pub const MEASURE_CHUNK: usize = 1 << 16;

/// One candidate codec with its report name (`preset:int2-fine`, `int4-g256-a`, ...).
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Name used in reports.
    pub name: String,
    /// The codec.
    pub codec: CodecChoice,
}

/// The candidates: the six presets and every plain group format (INT2/4/8 x groups of
/// 32..256 x asymmetric/symmetric), 30 in all, as measured in docs/DIFFUSION.md.
pub fn candidates() -> Vec<Candidate> {
    let mut c: Vec<Candidate> = Preset::ALL
        .iter()
        .filter_map(|p| {
            let codec = CodecChoice::from_preset(p.name()).ok()?;
            Some(Candidate { name: format!("preset:{}", p.name()), codec })
        })
        .collect();
    for bits in [2u8, 4, 8] {
        for g in [32usize, 64, 128, 256] {
            for (scheme, tag) in [(Scheme::Asymmetric, "a"), (Scheme::Symmetric, "s")] {
                if let Ok(f) = GroupFormat::new(bits, g, scheme) {
                    c.push(Candidate {
                        name: format!("int{bits}-g{g}-{tag}"),
                        codec: CodecChoice::from_format(f),
                    });
                }
            }
        }
    }
    c
}

/// The choice for one tensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixedTensor {
    /// Tensor name.
    pub name: String,
    /// Elements.
    pub elements: u64,
    /// The chosen candidate's name.
    pub choice: String,
    /// Its layout id (the `codec` column).
    pub codec: String,
    /// Its code width.
    pub bits: u32,
    /// Payload bits per weight the measurement predicts.
    pub planned_bpw: f64,
    /// SQNR in dB the measurement predicts.
    pub planned_sqnr_db: f64,
}

/// A uniform assignment (every tensor on one candidate), for comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UniformBaseline {
    /// Candidate name.
    pub candidate: String,
    /// Payload bits per weight.
    pub bpw: f64,
    /// Mean SQNR over the tensors, dB.
    pub mean_sqnr_db: f64,
    /// Whether `bpw <= target_bpw`.
    pub within_budget: bool,
}

/// The plan and, after quantization, what it achieved. Stored as JSON under
/// [`crate::container::parquet::schema::KEY_MIXED_PRECISION`] and reported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MixedPrecision {
    /// The budget: payload bits per weight over the tensors below.
    pub target_bpw: f64,
    /// The allocation objective.
    pub objective: String,
    /// Candidate names, in table order.
    pub candidates: Vec<String>,
    /// One entry per quantized tensor, in file order.
    pub tensors: Vec<MixedTensor>,
    /// Payload bits per weight of the plan.
    pub planned_bpw: f64,
    /// Mean predicted SQNR over the tensors, dB.
    pub planned_mean_sqnr_db: f64,
    /// Every uniform assignment.
    pub uniform: Vec<UniformBaseline>,
    /// (tensor, candidate) pairs penalised because their guaranteed cosine is below `min_accuracy`.
    pub penalized_for_min_accuracy: u64,
    /// Seconds spent measuring.
    pub measure_time_s: f64,
    /// Payload bits per weight actually written (codes + params of these tensors).
    pub achieved_payload_bpw: Option<f64>,
    /// Mean SQNR actually measured while writing, dB.
    pub achieved_mean_sqnr_db: Option<f64>,
    /// Tensors whose width the quality fallback raised above the plan.
    pub fallback_tensors: Vec<String>,
}

impl MixedPrecision {
    /// The best uniform assignment within the budget (highest mean SQNR).
    pub fn best_uniform_within_budget(&self) -> Option<&UniformBaseline> {
        self.uniform
            .iter()
            .filter(|u| u.within_budget)
            .max_by(|a, b| a.mean_sqnr_db.total_cmp(&b.mean_sqnr_db))
    }
}

/// Measures `t` with every candidate, streaming it through mmap windows. With
/// `factors` (channel equalization, [`crate::features::equalization`]) the columns are scaled
/// first, so the tensor is measured as it will be quantized (`W * s`).
///
/// # Errors
/// I/O, or a quantization error naming the tensor (NaN, infinity, ...).
pub fn measure_tensor(
    t: &TensorInfo,
    reader: &WindowReader,
    cands: &[Candidate],
    window_bytes: u64,
    factors: Option<&[f32]>,
) -> Result<Vec<CandidateCost>> {
    let quant_err = |e: arrowquant_core::QuantError| AdapterError::Quant {
        path: reader.path().to_path_buf(),
        tensor: t.name.clone(),
        source: e,
    };
    let dtype = t.dtype.quantizable().ok_or_else(|| quant_err(arrowquant_core::QuantError::Misaligned))?;
    let chunk_bytes = (MEASURE_CHUNK * dtype.size()) as u64;
    let mut costs = vec![CandidateCost::default(); cands.len()];
    let mut buf = vec![0f32; MEASURE_CHUNK];
    let mut scratch = AlignedScratch::default();
    reader.for_each_window(t.offset, t.byte_len, window_bytes, chunk_bytes, |pos, bytes| {
        let first = pos / dtype.size() as u64;
        with_input(dtype, bytes, &mut scratch, |input| -> Result<()> {
            for s in (0..input.len()).step_by(MEASURE_CHUNK) {
                let e = (s + MEASURE_CHUNK).min(input.len());
                let x = &mut buf[..e - s];
                input.slice(s, e).to_f32(x);
                if let Some(f) = factors {
                    crate::features::equalization::scale_columns(x, first + s as u64, f);
                }
                for (c, acc) in cands.iter().zip(costs.iter_mut()) {
                    let m = measure(c.codec.codec(), x).map_err(|e| match e {
                        arrowquant_core::diffusion::DiffusionError::Quant(q) => quant_err(q),
                        other => AdapterError::MixedPrecision {
                            path: reader.path().to_path_buf(),
                            reason: format!("tensor `{}`: candidate {}: {other}", t.name, c.name),
                        },
                    })?;
                    acc.bits += m.bits;
                    acc.sse += m.sse;
                    acc.signal += m.signal;
                    acc.count += m.count;
                }
            }
            Ok(())
        })
    })?;
    Ok(costs)
}

/// Plans the codec of every tensor in `quantized` (indices into `model.tensors`).
/// Returns the plan and the codec per listed tensor. `factors[i]` are the
/// channel-equalization factors of tensor `i` (empty slice: none).
///
/// # Errors
/// I/O and quantization errors while measuring; [`AdapterError::MixedPrecision`] if no
/// assignment fits the budget (the message gives the smallest achievable figure).
pub fn plan(
    model: &Model,
    config: &Config,
    quantized: &[usize],
    window_bytes: u64,
    factors: &[Option<Vec<f32>>],
) -> Result<(MixedPrecision, Vec<CodecChoice>)> {
    let cands = candidates();
    let nc = cands.len();
    let start = Instant::now();
    let mut table: Vec<CandidateCost> = Vec::with_capacity(quantized.len() * nc);
    let mut reader: Option<(usize, WindowReader)> = None;
    for &i in quantized {
        let t = &model.tensors[i];
        if reader.as_ref().is_none_or(|(f, _)| *f != t.file) {
            reader = Some((t.file, WindowReader::open(&model.files[t.file])?));
        }
        let Some((_, r)) = reader.as_ref() else { continue };
        let f = factors.get(i).and_then(|f| f.as_deref());
        table.extend(measure_tensor(t, r, &cands, window_bytes, f)?);
    }
    let measure_time_s = start.elapsed().as_secs_f64();
    let rows: Vec<(String, u64)> =
        quantized.iter().map(|&i| (model.tensors[i].name.clone(), model.tensors[i].elements())).collect();
    let names: Vec<String> = cands.iter().map(|c| c.name.clone()).collect();
    let describe = |_: usize, c: usize| (cands[c].name.clone(), cands[c].codec.id(), cands[c].codec.bits());
    let (mp, choice) = allocate_table(&model.path, config, &rows, &names, &describe, &table, measure_time_s)?;
    let codecs = choice.iter().map(|&c| cands[c].codec).collect();
    Ok((mp, codecs))
}

/// Allocates from a measured table (`table[row * candidates + c]` for each tensor in
/// `rows`, name and elements) under the configuration's `target_bpw`, with the
/// `min_accuracy` penalty; `describe(row, c)` gives the choice name, the layout id and
/// the code width written for tensor `row` under candidate `c` (a ggml type may fall
/// back per tensor). Shared by the Parquet and the GGUF outputs.
///
/// # Errors
/// [`AdapterError::MixedPrecision`] if no assignment fits the budget.
pub(crate) fn allocate_table(
    path: &std::path::Path,
    config: &Config,
    rows: &[(String, u64)],
    candidate_names: &[String],
    describe: &dyn Fn(usize, usize) -> (String, String, u32),
    table: &[CandidateCost],
    measure_time_s: f64,
) -> Result<(MixedPrecision, Vec<usize>)> {
    let target = config.target_bpw.unwrap_or(f64::INFINITY);
    let nc = candidate_names.len();
    let min_cos = config.min_accuracy;
    let mut penalized = table.to_vec();
    let mut penalized_count = 0;
    for c in &mut penalized {
        let rel = if c.signal > 0.0 { c.sse / c.signal } else { 0.0 };
        let guaranteed = (1.0 - rel).max(0.0).sqrt();
        if guaranteed < min_cos {
            c.sse = c.signal.max(f64::MIN_POSITIVE) * 1e6;
            penalized_count += 1;
        }
    }
    let objective = Objective::WeightedRelative;
    let mut choice = vec![0usize; rows.len()];
    let rep = allocate(&penalized, nc, target, objective, &mut choice).map_err(|e| {
        AdapterError::MixedPrecision { path: path.to_path_buf(), reason: format!("target_bpw {target}: {e}") }
    })?;
    let n = rows.len().max(1) as f64;
    let total: u64 = rows.iter().map(|r| r.1).sum();
    let tensors: Vec<MixedTensor> = rows
        .iter()
        .zip(&choice)
        .enumerate()
        .map(|(row, ((name, elements), &c))| {
            let m = &table[row * nc + c];
            let (choice, codec, bits) = describe(row, c);
            MixedTensor {
                name: name.clone(),
                elements: *elements,
                choice,
                codec,
                bits,
                planned_bpw: m.bpw(),
                planned_sqnr_db: m.sqnr_db(),
            }
        })
        .collect();
    let uniform = candidate_names
        .iter()
        .enumerate()
        .map(|(c, cand)| {
            let bits: u64 = (0..rows.len()).map(|r| table[r * nc + c].bits).sum();
            let bpw = if total > 0 { bits as f64 / total as f64 } else { 0.0 };
            let mean = (0..rows.len()).map(|r| table[r * nc + c].sqnr_db()).sum::<f64>() / n;
            UniformBaseline { candidate: cand.clone(), bpw, mean_sqnr_db: mean, within_budget: bpw <= target }
        })
        .collect();
    let planned_mean_sqnr_db = tensors.iter().map(|t| t.planned_sqnr_db).sum::<f64>() / n;
    Ok((
        MixedPrecision {
            target_bpw: target,
            objective: format!("{objective:?}"),
            candidates: candidate_names.to_vec(),
            tensors,
            planned_bpw: rep.bpw(),
            planned_mean_sqnr_db,
            uniform,
            penalized_for_min_accuracy: penalized_count,
            measure_time_s,
            achieved_payload_bpw: None,
            achieved_mean_sqnr_db: None,
            fallback_tensors: Vec::new(),
        },
        choice,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowquant_core::BlockCodec;

    #[test]
    fn candidates_have_blocks_dividing_the_measurement_chunk() {
        let c = candidates();
        assert_eq!(c.len(), 30);
        for x in &c {
            assert_eq!(MEASURE_CHUNK % x.codec.block_len(), 0, "{}", x.name);
        }
        let names: std::collections::HashSet<&str> = c.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names.len(), 30, "names are unique");
    }
}
