//! Sensitivity analysis and mixed-precision bit allocation.
//!
//! Per tensor, [`tensor_stats`] gives the histogram entropy ([`HIST_BINS`] equal bins over
//! `[min, max]`), the kurtosis and the moments; [`measure`] encodes and decodes the tensor
//! with a candidate [`BlockCodec`] and returns its exact bit cost (codes and parameters of
//! every block, the padded last block included) and squared error. [`allocate`] then picks
//! one candidate per tensor to minimise the total cost under a bit budget
//! (`target_bpw * total parameters`):
//!
//! 1. greedy marginal analysis: start from each tensor's cheapest candidate and repeatedly
//!    take the upgrade with the largest cost decrease per extra bit that still fits;
//! 2. the best feasible uniform assignment (every tensor on the same candidate) replaces
//!    the greedy one if it is better;
//! 3. local search: single moves and pairwise exchanges (one tensor up, another down) that
//!    lower the cost within the budget, until none is left.
//!
//! The cost of a tensor is its squared error ([`Objective::SquaredError`]), its
//! parameter-weighted relative error ([`Objective::WeightedRelative`], the default) or minus
//! its SQNR in dB ([`Objective::NegSqnrDb`], which maximises the mean SQNR over tensors).
//! No heap: the candidate table and the choice are caller slices; [`measure`] uses fixed
//! stack buffers (`MAX_BLOCK` elements, `MAX_BLOCK_BYTES` bytes).

use super::DiffusionError;
use crate::codec::BlockCodec;
use crate::input::Input;

/// Histogram bins for the entropy.
pub const HIST_BINS: usize = 256;
/// Largest block (elements) [`measure`] supports.
pub const MAX_BLOCK: usize = 256;
/// Largest encoded block (codes, parameters) [`measure`] supports, in bytes.
pub const MAX_BLOCK_BYTES: usize = 512;

/// Distribution statistics of one tensor.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct TensorStats {
    /// Elements.
    pub count: u64,
    /// Smallest element.
    pub min: f32,
    /// Largest element.
    pub max: f32,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Pearson kurtosis `m4 / m2^2` (3 for a normal distribution; heavy tails are larger).
    pub kurtosis: f64,
    /// Entropy in bits of the [`HIST_BINS`]-bin histogram over `[min, max]`.
    pub entropy_bits: f64,
}

/// Computes [`TensorStats`] in two passes over `data` (moments, then the histogram).
///
/// # Errors
/// [`DiffusionError::Empty`], or [`DiffusionError::InvalidStats`] naming the first
/// non-finite element.
pub fn tensor_stats(data: &[f32]) -> Result<TensorStats, DiffusionError> {
    if data.is_empty() {
        return Err(DiffusionError::Empty);
    }
    let (mut min, mut max, mut sum) = (f32::INFINITY, f32::NEG_INFINITY, 0.0f64);
    for (i, &x) in data.iter().enumerate() {
        if !x.is_finite() {
            return Err(DiffusionError::InvalidStats { index: i });
        }
        min = min.min(x);
        max = max.max(x);
        sum += f64::from(x);
    }
    let n = data.len() as f64;
    let mean = sum / n;
    let (mut m2, mut m4) = (0.0, 0.0);
    let mut hist = [0u64; HIST_BINS];
    let span = f64::from(max) - f64::from(min);
    for &x in data {
        let d = f64::from(x) - mean;
        let d2 = d * d;
        m2 += d2;
        m4 += d2 * d2;
        let bin =
            if span > 0.0 { ((f64::from(x) - f64::from(min)) / span * HIST_BINS as f64) as usize } else { 0 };
        hist[bin.min(HIST_BINS - 1)] += 1;
    }
    let (m2, m4) = (m2 / n, m4 / n);
    let kurtosis = if m2 > 0.0 { m4 / (m2 * m2) } else { 0.0 };
    let entropy_bits = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * libm::log2(p)
        })
        .sum();
    Ok(TensorStats { count: data.len() as u64, min, max, mean, std: libm::sqrt(m2), kurtosis, entropy_bits })
}

/// The measured cost of one tensor under one candidate.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct CandidateCost {
    /// Encoded size in bits (codes + parameters of every block, the padded last one included).
    pub bits: u64,
    /// Sum of squared reconstruction errors over the real elements.
    pub sse: f64,
    /// Sum of squared elements (the signal energy).
    pub signal: f64,
    /// Elements.
    pub count: u64,
}

impl CandidateCost {
    /// Bits per weight.
    pub fn bpw(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.bits as f64 / self.count as f64 }
    }

    /// SQNR in dB (capped at 300 dB for an exact reconstruction).
    pub fn sqnr_db(&self) -> f64 {
        if self.sse <= self.signal * 1e-30 { 300.0 } else { 10.0 * libm::log10(self.signal / self.sse) }
    }
}

/// Encodes and decodes `data` block by block with `codec` and measures the error.
///
/// A partial last block is padded by repeating its elements (like the streaming
/// quantizer); the padding is paid for in `bits` but not counted in the error.
///
/// # Errors
/// [`DiffusionError::Empty`], [`DiffusionError::InvalidConfig`] if the codec's blocks exceed
/// [`MAX_BLOCK`] / [`MAX_BLOCK_BYTES`], and the codec's own errors.
pub fn measure<C: BlockCodec>(codec: &C, data: &[f32]) -> Result<CandidateCost, DiffusionError> {
    let (b, cl, pl) = (codec.block_len(), codec.codes_len(), codec.params_len());
    if b == 0 || b > MAX_BLOCK || cl > MAX_BLOCK_BYTES || pl > MAX_BLOCK_BYTES {
        return Err(DiffusionError::InvalidConfig(
            "candidate codec block larger than the measurement buffers",
        ));
    }
    if data.is_empty() {
        return Err(DiffusionError::Empty);
    }
    let mut block = [0f32; MAX_BLOCK];
    let mut back = [0f32; MAX_BLOCK];
    let mut codes = [0u8; MAX_BLOCK_BYTES];
    let mut params = [0u8; MAX_BLOCK_BYTES];
    let mut cost = CandidateCost { count: data.len() as u64, ..Default::default() };
    for (bi, chunk) in data.chunks(b).enumerate() {
        let real = chunk.len();
        block[..real].copy_from_slice(chunk);
        for i in real..b {
            block[i] = block[i % real];
        }
        codec.encode(Input::F32(&block[..b]), (bi * b) as u64, &mut codes[..cl], &mut params[..pl])?;
        codec.decode(&codes[..cl], &params[..pl], &mut back[..b])?;
        for (&x, &y) in chunk.iter().zip(&back[..real]) {
            let (x, y) = (f64::from(x), f64::from(y));
            cost.sse += (x - y) * (x - y);
            cost.signal += x * x;
        }
        cost.bits += ((cl + pl) * 8) as u64;
    }
    Ok(cost)
}

/// What [`allocate`] minimises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Objective {
    /// Total squared error over all tensors.
    SquaredError,
    /// Sum of `-SQNR_dB` over tensors: maximises the mean SQNR over tensors (may starve
    /// one large tensor to lift many small ones).
    NegSqnrDb,
    /// Sum of `count * sse / signal`: the parameter-weighted relative error, so every
    /// parameter counts the same whatever its tensor's scale.
    #[default]
    WeightedRelative,
}

impl Objective {
    /// The cost of one tensor under one candidate.
    pub fn cost(self, c: &CandidateCost) -> f64 {
        match self {
            Self::SquaredError => c.sse,
            Self::NegSqnrDb => -c.sqnr_db(),
            Self::WeightedRelative => c.count as f64 * c.sse / c.signal.max(1e-300),
        }
    }
}

/// The outcome of [`allocate`].
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct AllocationReport {
    /// Total bits of the chosen assignment.
    pub total_bits: u64,
    /// Total elements.
    pub total_count: u64,
    /// Sum of the chosen costs.
    pub total_cost: f64,
    /// Which stage produced the starting point: true if a uniform assignment beat the greedy one.
    pub started_from_uniform: bool,
    /// Improving moves the local search made.
    pub local_moves: u32,
}

impl AllocationReport {
    /// Achieved bits per weight.
    pub fn bpw(&self) -> f64 {
        if self.total_count == 0 { 0.0 } else { self.total_bits as f64 / self.total_count as f64 }
    }
}

/// Chooses one candidate per tensor (`choice[t]`) minimising the total cost with
/// `total bits <= target_bpw * total elements`. `table` is row-major
/// `[tensors][candidates]`, each row measured on the same tensor (same `count`).
///
/// # Errors
/// [`DiffusionError::LengthMismatch`] for inconsistent shapes, [`DiffusionError::Empty`]
/// without tensors or candidates, [`DiffusionError::InvalidConfig`] for a non-finite or
/// non-positive target, and [`DiffusionError::BudgetTooSmall`] if even the cheapest
/// assignment exceeds the budget.
pub fn allocate(
    table: &[CandidateCost],
    candidates: usize,
    target_bpw: f64,
    objective: Objective,
    choice: &mut [usize],
) -> Result<AllocationReport, DiffusionError> {
    let tensors = choice.len();
    if tensors == 0 || candidates == 0 {
        return Err(DiffusionError::Empty);
    }
    if table.len() != tensors * candidates {
        return Err(DiffusionError::LengthMismatch { expected: tensors * candidates, actual: table.len() });
    }
    if !(target_bpw.is_finite() && target_bpw > 0.0) {
        return Err(DiffusionError::InvalidConfig("target_bpw must be finite and > 0"));
    }
    let row = |t: usize| &table[t * candidates..(t + 1) * candidates];
    let total_count: u64 = (0..tensors).map(|t| row(t)[0].count).sum();
    let budget = libm::floor(target_bpw * total_count as f64) as u64;
    let cost = |t: usize, c: usize| objective.cost(&row(t)[c]);
    let bits = |t: usize, c: usize| row(t)[c].bits;

    // 1. Greedy marginal analysis from the cheapest candidates.
    for (t, ch) in choice.iter_mut().enumerate() {
        *ch = (0..candidates)
            .min_by(|&a, &b| bits(t, a).cmp(&bits(t, b)).then(cost(t, a).total_cmp(&cost(t, b))))
            .unwrap_or(0);
    }
    let mut used: u64 = (0..tensors).map(|t| bits(t, choice[t])).sum();
    if used > budget {
        let min_millibits = libm::ceil(used as f64 * 1000.0 / total_count as f64) as u32;
        return Err(DiffusionError::BudgetTooSmall { min_millibits });
    }
    loop {
        let mut best: Option<(f64, usize, usize)> = None;
        for (t, &ct) in choice.iter().enumerate() {
            let (cb, cc) = (bits(t, ct), cost(t, ct));
            for c in 0..candidates {
                let (nb, nc) = (bits(t, c), cost(t, c));
                if nc < cc && used - cb + nb <= budget {
                    let gain = (cc - nc) / (nb.saturating_sub(cb).max(1)) as f64;
                    if best.is_none_or(|(g, _, _)| gain > g) {
                        best = Some((gain, t, c));
                    }
                }
            }
        }
        let Some((_, t, c)) = best else { break };
        used = used - bits(t, choice[t]) + bits(t, c);
        choice[t] = c;
    }
    let total = |choice: &[usize]| (0..tensors).map(|t| cost(t, choice[t])).sum::<f64>();
    let mut report = AllocationReport { total_count, ..Default::default() };

    // 2. The best feasible uniform assignment, if better.
    let mut best_uniform: Option<(f64, usize)> = None;
    for c in 0..candidates {
        let b: u64 = (0..tensors).map(|t| bits(t, c)).sum();
        if b <= budget {
            let v: f64 = (0..tensors).map(|t| cost(t, c)).sum();
            if best_uniform.is_none_or(|(bv, _)| v < bv) {
                best_uniform = Some((v, c));
            }
        }
    }
    if let Some((v, c)) = best_uniform
        && v < total(choice)
    {
        choice.fill(c);
        used = (0..tensors).map(|t| bits(t, c)).sum();
        report.started_from_uniform = true;
    }

    // 3. Local search: single moves, then pairwise exchanges.
    loop {
        let mut best: Option<(f64, usize, usize, usize, usize)> = None; // (delta, t1, c1, t2, c2)
        for t1 in 0..tensors {
            let (b1, k1) = (bits(t1, choice[t1]), cost(t1, choice[t1]));
            for c1 in 0..candidates {
                let (nb1, nk1) = (bits(t1, c1), cost(t1, c1));
                let after1 = used - b1 + nb1;
                if after1 <= budget && nk1 - k1 < best.map_or(-1e-12, |b| b.0) {
                    best = Some((nk1 - k1, t1, c1, t1, c1));
                }
                if nk1 >= k1 {
                    continue; // exchanges pair an improving move with a cheaper one elsewhere
                }
                for (t2, &ct2) in choice.iter().enumerate() {
                    if t2 == t1 {
                        continue;
                    }
                    let (b2, k2) = (bits(t2, ct2), cost(t2, ct2));
                    for c2 in 0..candidates {
                        let nb2 = bits(t2, c2);
                        if nb2 >= b2 || after1 - b2 + nb2 > budget {
                            continue;
                        }
                        let delta = (nk1 - k1) + (cost(t2, c2) - k2);
                        if delta < best.map_or(-1e-12, |b| b.0) {
                            best = Some((delta, t1, c1, t2, c2));
                        }
                    }
                }
            }
        }
        let Some((_, t1, c1, t2, c2)) = best else { break };
        used = used - bits(t1, choice[t1]) + bits(t1, c1);
        choice[t1] = c1;
        if t2 != t1 {
            used = used - bits(t2, choice[t2]) + bits(t2, c2);
            choice[t2] = c2;
        }
        report.local_moves += 1;
    }
    report.total_bits = used;
    report.total_cost = total(choice);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{GroupCodec, GroupFormat, Scheme};
    use std::vec;
    use std::vec::Vec;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                u * (1.0 + (i % 97) as f32 * 0.01)
            })
            .collect()
    }

    #[test]
    fn stats_of_known_data() {
        let s = tensor_stats(&[1.0, -1.0, 1.0, -1.0]).unwrap();
        assert_eq!(s.mean, 0.0);
        assert!((s.std - 1.0).abs() < 1e-12);
        assert!((s.kurtosis - 1.0).abs() < 1e-12);
        assert!((s.entropy_bits - 1.0).abs() < 1e-12);
        assert_eq!(tensor_stats(&[]), Err(DiffusionError::Empty));
        assert_eq!(tensor_stats(&[1.0, f32::NAN]), Err(DiffusionError::InvalidStats { index: 1 }));
    }

    #[test]
    fn measure_counts_padding_and_error() {
        let f = GroupFormat::new(4, 32, Scheme::Asymmetric).unwrap();
        let x = data(100, 1);
        let c = measure(&GroupCodec::new(f), &x).unwrap();
        assert_eq!(c.bits, 4 * (16 + 4) * 8);
        assert_eq!(c.count, 100);
        assert!(c.sse > 0.0 && c.sqnr_db() > 15.0);
        let f8 = GroupFormat::new(8, 32, Scheme::Asymmetric).unwrap();
        assert!(measure(&GroupCodec::new(f8), &x).unwrap().sse < c.sse);
    }

    #[test]
    fn allocation_respects_budget_and_beats_uniform() {
        let formats: Vec<GroupFormat> = [(2, 64), (2, 32), (4, 128), (4, 32), (8, 128)]
            .iter()
            .map(|&(b, g)| GroupFormat::new(b, g, Scheme::Asymmetric).unwrap())
            .collect();
        // Under Miri (each element is quantized and decoded five times, interpreted)
        // four tensors of 64..256 elements: still multiples of the smallest group.
        let (count, unit) = if cfg!(miri) { (4, 64) } else { (6, 512) };
        let tensors: Vec<Vec<f32>> = (0..count).map(|t| data(unit * (t + 1), t as u32 + 7)).collect();
        let mut table = Vec::new();
        for x in &tensors {
            for f in &formats {
                table.push(measure(&GroupCodec::new(*f), x).unwrap());
            }
        }
        let mut choice = vec![0; tensors.len()];
        for (target, obj) in [2.5, 3.0, 3.7, 5.0].into_iter().flat_map(|t| {
            [Objective::NegSqnrDb, Objective::WeightedRelative, Objective::SquaredError].map(|o| (t, o))
        }) {
            let r = allocate(&table, formats.len(), target, obj, &mut choice).unwrap();
            assert!(r.bpw() <= target + 1e-12, "{} > {target}", r.bpw());
            for c in 0..formats.len() {
                let bits: u64 = (0..tensors.len()).map(|t| table[t * formats.len() + c].bits).sum();
                if bits as f64 <= target * r.total_count as f64 {
                    let v: f64 = (0..tensors.len()).map(|t| obj.cost(&table[t * formats.len() + c])).sum();
                    assert!(r.total_cost <= v + 1e-9 * v.abs());
                }
            }
        }
        assert!(matches!(
            allocate(&table, formats.len(), 1.0, Objective::NegSqnrDb, &mut choice),
            Err(DiffusionError::BudgetTooSmall { min_millibits: 2500 })
        ));
        assert!(allocate(&table, formats.len(), f64::NAN, Objective::SquaredError, &mut choice).is_err());
        assert!(allocate(&table[1..], formats.len(), 3.0, Objective::SquaredError, &mut choice).is_err());
    }
}
