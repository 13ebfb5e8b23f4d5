//! The two-level encoder: outliers, sub-group fits, quantized sub-scales and the
//! least-squares refit of the super-block scales (see the module docs of
//! [`crate::kquant`]).

use half::f16;

use super::bitpack::pack_bits;
use super::{MAX_BLOCK, MAX_OUTLIERS, MAX_SUBS, RowScales, TwoLevelFormat};
use crate::QuantError;
use crate::input::Input;
use crate::kernels::fault_to_error;
use crate::kernels::scalar::min_max_ref;
use crate::params::check_range;
use crate::search::affine::{BaseSums, assign_codes, base_sums, code_sums, direct_error, fit_affine};
use crate::search::{SearchConfig, Unit, Weighting, Weights, fill_weights};

/// Applies the NaN/infinity policy to block `index` (already converted into `x`).
pub(super) fn check_block(
    input: Input<'_>,
    block_len: usize,
    index: usize,
    x: &[f32],
    first_element: u64,
) -> Result<(), QuantError> {
    let (min, max, nan) = min_max_ref(x);
    check_range(min, max, nan).map_err(|fault| fault_to_error(input, block_len, index, fault, first_element))
}

/// The sub-groups' continuous scales and (non-negative) minimums.
struct SubFits {
    scale: [f32; MAX_SUBS],
    min: [f32; MAX_SUBS],
}

fn fit_subs(fmt: &TwoLevelFormat, cfg: &SearchConfig, x: &[f32], w: Option<&[f32]>) -> SubFits {
    let s = fmt.sub_len();
    let qmax = fmt.bits.max_code() as f32;
    let mut fits = SubFits { scale: [0.0; MAX_SUBS], min: [0.0; MAX_SUBS] };
    for (j, xj) in x.chunks_exact(s).enumerate() {
        let f = match w {
            None => fit_affine(xj, Unit, qmax, cfg, true),
            Some(w) => fit_affine(xj, &w[j * s..(j + 1) * s], qmax, cfg, true),
        };
        fits.scale[j] = f.scale;
        fits.min[j] = -f.offset;
    }
    fits
}

/// Quantized sub-scales and sub-mins with their super-scales.
#[derive(Clone, Copy)]
struct Quantized {
    d: f16,
    dmin: f16,
    sc: [u8; MAX_SUBS],
    mc: [u8; MAX_SUBS],
}

/// The candidates for a sub-scale code near `target`: `[floor, floor + 1]`, clamped.
#[inline]
fn neighbours(target: f32, max: f32) -> [f32; 2] {
    let t = if target > 0.0 { target } else { 0.0 };
    let lo = libm::floorf(t);
    let lo = if lo < max { lo } else { max };
    let hi = if lo + 1.0 < max { lo + 1.0 } else { max };
    [lo, hi]
}

/// Rounds `target` to the nearest code in `[0, max]`.
#[inline]
fn nearest(target: f32, max: f32) -> f32 {
    crate::search::affine::round_code(target, max)
}

/// Chooses every sub-group's `(sc, mc)` for the super-scales in `q`; returns the
/// total weighted squared error.
fn choose_codes<W: Weights>(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    x: &[f32],
    w: W,
    fits: &SubFits,
    q: &mut Quantized,
    weights_of: impl Fn(W, usize) -> W,
) -> f32 {
    let s = fmt.sub_len();
    let qmax = fmt.bits.max_code() as f32;
    let scmax = ((1u32 << fmt.scale_bits()) - 1) as f32;
    let mcmax = ((1u32 << fmt.min_bits()) - 1) as f32;
    let (d, dmin) = (q.d.to_f32(), q.dmin.to_f32());
    let mut total = 0.0f32;
    for (j, xj) in x.chunks_exact(s).enumerate() {
        let wj = weights_of(w, j * s);
        let ts = if d > 0.0 { fits.scale[j] / d } else { 0.0 };
        let tm = if dmin > 0.0 { fits.min[j] / dmin } else { 0.0 };
        let err = |sc: f32, mc: f32| {
            let scale = d * sc;
            let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
            direct_error(xj, wj, scale, inv, dmin * mc, qmax)
        };
        let (mut bs, mut bm) = (nearest(ts, scmax), nearest(tm, mcmax));
        let mut best = err(bs, bm);
        if cfg.neighbors {
            for sc in neighbours(ts, scmax) {
                for mc in neighbours(tm, mcmax) {
                    if sc == bs && mc == bm {
                        continue;
                    }
                    let e = err(sc, mc);
                    if e < best {
                        (best, bs, bm) = (e, sc, mc);
                    }
                }
            }
        }
        q.sc[j] = bs as u8;
        q.mc[j] = bm as u8;
        total += best;
    }
    total
}

/// Least-squares `(d, dmin)` for fixed codes and sub-codes, rounded to f16; `None`
/// when the system is degenerate or the result unusable.
fn refit_super<W: Weights>(
    fmt: &TwoLevelFormat,
    x: &[f32],
    w: W,
    q: &Quantized,
    base: &[BaseSums],
    weights_of: impl Fn(W, usize) -> W,
) -> Option<(f16, f16)> {
    let s = fmt.sub_len();
    let qmax = fmt.bits.max_code() as f32;
    let (d, dmin) = (q.d.to_f32(), q.dmin.to_f32());
    // Normal equations of min Σ w (d A - dmin B - x)², A = sc q, B = mc.
    let (mut aa, mut ab, mut bb, mut ax, mut bx) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for (j, xj) in x.chunks_exact(s).enumerate() {
        let (sc, mc) = (f32::from(q.sc[j]), f32::from(q.mc[j]));
        let scale = d * sc;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let c = code_sums(xj, weights_of(w, j * s), inv, -(dmin * mc), qmax);
        let (sc, mc) = (f64::from(sc), f64::from(mc));
        aa += sc * sc * f64::from(c.qq);
        ab += sc * mc * f64::from(c.q);
        bb += mc * mc * f64::from(base[j].w);
        ax += sc * f64::from(c.qx);
        bx += mc * f64::from(base[j].x);
    }
    let det = ab * ab - aa * bb;
    let (nd, ndmin) = if bb > 0.0 && det != 0.0 {
        ((-ax * bb + ab * bx) / det, (aa * bx - ab * ax) / det)
    } else if aa > 0.0 {
        (ax / aa, f64::from(dmin))
    } else {
        return None;
    };
    let (hd, hm) = (f16::from_f32(nd as f32), f16::from_f32(ndmin as f32));
    let usable = |h: f16| h.is_finite() && h.to_f32() >= 0.0;
    (usable(hd) && usable(hm)).then_some((hd, hm))
}

/// Initial super-scales: the largest sub-scale and sub-min map to the top code.
fn initial_super(fmt: &TwoLevelFormat, fits: &SubFits) -> (f16, f16) {
    let n = fmt.subs();
    let max_s = fits.scale[..n].iter().fold(0f32, |a, &v| if v > a { v } else { a });
    let max_m = fits.min[..n].iter().fold(0f32, |a, &v| if v > a { v } else { a });
    let scmax = ((1u32 << fmt.scale_bits()) - 1) as f32;
    let mcmax = ((1u32 << fmt.min_bits()) - 1) as f32;
    (f16::from_f32(max_s / scmax), f16::from_f32(max_m / mcmax))
}

/// Takes the `k` largest-magnitude elements out of `x` (ties: lower index first),
/// recording them, and refills their slots with the mean of the rest of their
/// sub-group so they do not stretch its range.
fn take_outliers(x: &mut [f32], sub: usize, k: usize, idx: &mut [u8], val: &mut [f16], taken: &mut [bool]) {
    for t in 0..k {
        let mut best = usize::MAX;
        let mut best_abs = -1.0f32;
        for (i, &v) in x.iter().enumerate() {
            let a = if v < 0.0 { -v } else { v };
            if !taken[i] && a > best_abs {
                best_abs = a;
                best = i;
            }
        }
        taken[best] = true;
        idx[t] = best as u8;
        val[t] = f16::from_f32(x[best]);
    }
    for (xj, tj) in x.chunks_exact_mut(sub).zip(taken.chunks_exact(sub)) {
        let (mut sum, mut cnt) = (0f32, 0u32);
        for (&v, &t) in xj.iter().zip(tj) {
            if !t {
                sum += v;
                cnt += 1;
            }
        }
        let fill = if cnt > 0 { sum / cnt as f32 } else { 0.0 };
        for (v, &t) in xj.iter_mut().zip(tj) {
            if t {
                *v = fill;
            }
        }
    }
}

/// Encodes one block of finite values `x_in` into `codes` and `params`.
pub(super) fn encode_block(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    x_in: &[f32],
    codes: &mut [u8],
    params: &mut [u8],
) {
    let b = fmt.block_len();
    let s = fmt.sub_len();
    let n = fmt.subs();
    let k = fmt.outliers();
    let mut xbuf = [0f32; MAX_BLOCK];
    let x = &mut xbuf[..b];
    x.copy_from_slice(x_in);
    let mut out_idx = [0u8; MAX_OUTLIERS];
    let mut out_val = [f16::ZERO; MAX_OUTLIERS];
    let mut taken = [false; MAX_BLOCK];
    if k > 0 {
        take_outliers(x, s, k, &mut out_idx[..k], &mut out_val[..k], &mut taken[..b]);
    }
    let x = &*x;
    let q = if cfg.weighting == Weighting::Uniform {
        search_block(fmt, cfg, row, x, Unit, |w, _| w, None)
    } else {
        let mut wbuf = [0f32; MAX_BLOCK];
        fill_weights(cfg.weighting, x, &mut wbuf[..b]);
        for (w, &t) in wbuf.iter_mut().zip(&taken[..b]) {
            if t {
                *w = 0.0;
            }
        }
        let w: &[f32] = &wbuf[..b];
        search_block(fmt, cfg, row, x, w, |w, at| &w[at..], Some(w))
    };

    // Final codes for the chosen parameters.
    let qmax = fmt.bits.max_code() as f32;
    let (d, dmin) = (q.d.to_f32(), q.dmin.to_f32());
    let mut unpacked = [0u8; MAX_BLOCK];
    for (j, (xj, uj)) in x.chunks_exact(s).zip(unpacked.chunks_exact_mut(s)).enumerate() {
        let scale = d * f32::from(q.sc[j]);
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        assign_codes(xj, inv, dmin * f32::from(q.mc[j]), qmax, uj);
    }
    fmt.bits.pack(&unpacked[..b], codes).expect("lengths fixed by the format");

    let mut p = params;
    if row.is_none() {
        p[..2].copy_from_slice(&q.d.to_le_bytes());
        p[2..4].copy_from_slice(&q.dmin.to_le_bytes());
        p = &mut p[4..];
    }
    let (sc_bytes, rest) = p.split_at_mut(fmt.scales_len());
    pack_bits(&q.sc[..n], fmt.scale_bits(), sc_bytes);
    let (mc_bytes, rest) = rest.split_at_mut(fmt.mins_len());
    pack_bits(&q.mc[..n], fmt.min_bits(), mc_bytes);
    for (t, o) in rest.chunks_exact_mut(3).enumerate() {
        o[..2].copy_from_slice(&out_val[t].to_le_bytes());
        o[2] = out_idx[t];
    }
}

/// The parameter search of one block (weights `w`, `weights_of(w, i)` = weights from
/// element `i`).
fn search_block<W: Weights>(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    x: &[f32],
    w: W,
    weights_of: impl Fn(W, usize) -> W + Copy,
    wslice: Option<&[f32]>,
) -> Quantized {
    let s = fmt.sub_len();
    let fits = fit_subs(fmt, cfg, x, wslice);
    let (d, dmin) = match row {
        Some(r) => (r.d, r.dmin),
        None => initial_super(fmt, &fits),
    };
    let mut cur = Quantized { d, dmin, sc: [0; MAX_SUBS], mc: [0; MAX_SUBS] };
    let mut best = cur;
    let mut best_err = f32::INFINITY;
    let mut base = [BaseSums::default(); MAX_SUBS];
    if row.is_none() && cfg.block_refits > 0 {
        for (j, xj) in x.chunks_exact(s).enumerate() {
            base[j] = base_sums(xj, weights_of(w, j * s));
        }
    }
    for round in 0..=cfg.block_refits {
        let err = choose_codes(fmt, cfg, x, w, &fits, &mut cur, weights_of);
        if err < best_err {
            best_err = err;
            best = cur;
        } else {
            break;
        }
        if row.is_some() || round == cfg.block_refits {
            break;
        }
        match refit_super(fmt, x, w, &cur, &base, weights_of) {
            Some((d, dmin)) if (d, dmin) != (cur.d, cur.dmin) => {
                cur.d = d;
                cur.dmin = dmin;
            }
            _ => break,
        }
    }
    best
}

/// The first pass of per-row mode (see [`super::TwoLevelCodec::row_scales`]).
pub(super) fn row_scales(fmt: &TwoLevelFormat, cfg: &SearchConfig, row: Input<'_>) -> Result<RowScales, QuantError> {
    let s = fmt.sub_len();
    let qmax = fmt.bits.max_code() as f32;
    let mut buf = [0f32; 64];
    let (mut max_s, mut max_m) = (0f32, 0f32);
    let mut start = 0;
    while start < row.len() {
        let end = (start + s).min(row.len());
        let x = &mut buf[..end - start];
        row.slice(start, end).to_f32(x);
        let (min, max, nan) = min_max_ref(x);
        check_range(min, max, nan)
            .map_err(|fault| fault_to_error(row.slice(start, end), end - start, 0, fault, start as u64))?;
        let f = fit_affine(x, Unit, qmax, cfg, true);
        max_s = if f.scale > max_s { f.scale } else { max_s };
        max_m = if -f.offset > max_m { -f.offset } else { max_m };
        start = end;
    }
    let scmax = ((1u32 << fmt.scale_bits()) - 1) as f32;
    let mcmax = ((1u32 << fmt.min_bits()) - 1) as f32;
    Ok(RowScales { d: f16::from_f32(max_s / scmax), dmin: f16::from_f32(max_m / mcmax) })
}
