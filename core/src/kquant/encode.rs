//! The two-level encoder: outliers, sub-group fits, quantized sub-scales and the
//! least-squares refit of the super-block scales (see the module docs of
//! [`crate::kquant`]).

use half::f16;

use super::bitpack::pack_bits;
use super::lanes::{self, L, LaneGroup, ROWS, Sums, V, transpose};
use super::{MAX_BLOCK, MAX_OUTLIERS, MAX_SUBS, RowScales, TwoLevelFormat};
use crate::QuantError;
use crate::input::Input;
use crate::kernels::fault_to_error;
use crate::kernels::scalar::min_max_ref;
use crate::params::check_range;
use crate::search::affine::{fit_affine, round_code};
use crate::search::{SearchConfig, Unit, Weighting, fill_weights};

/// Applies the NaN/infinity policy to block `index` (already converted into `x`).
#[inline(always)]
fn check_block(
    input: Input<'_>,
    block_len: usize,
    index: usize,
    x: &[f32],
    first_element: u64,
) -> Result<(), QuantError> {
    // Fast vectorisable screen; NaN fails the comparison too.
    let mut ok = true;
    for &v in x {
        ok &= v.abs() <= crate::params::F16_MAX;
    }
    if ok {
        return Ok(());
    }
    let (min, max, nan) = min_max_ref(x);
    check_range(min, max, nan).map_err(|fault| fault_to_error(input, block_len, index, fault, first_element))
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
    round_code(target, max)
}

/// Initial super-scales: the largest sub-scale and sub-min map to the top code.
fn initial_super(fmt: &TwoLevelFormat, scale: &[f32], min: &[f32]) -> (f16, f16) {
    let max_s = scale.iter().fold(0f32, |a, &v| if v > a { v } else { a });
    let max_m = min.iter().fold(0f32, |a, &v| if v > a { v } else { a });
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

/// Encodes whole blocks of `input` (lengths checked by the caller), with the widest
/// vector instructions this CPU has. Every path runs the same source with the same
/// IEEE operations (no fused multiply-add), so the bytes are identical on all paths.
pub(super) fn encode_blocks(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    input: Input<'_>,
    first_element: u64,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    #[cfg(all(feature = "std", target_arch = "x86_64"))]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was detected on this CPU just above.
        return unsafe { encode_blocks_avx2(fmt, cfg, row, input, first_element, codes, params) };
    }
    encode_blocks_baseline(fmt, cfg, row, input, first_element, codes, params)
}

/// [`encode_blocks`] compiled for AVX2.
#[cfg(all(feature = "std", target_arch = "x86_64"))]
#[target_feature(enable = "avx2")]
fn encode_blocks_avx2(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    input: Input<'_>,
    first_element: u64,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    encode_blocks_generic(fmt, cfg, row, input, first_element, codes, params)
}

/// [`encode_blocks`] for the target's baseline instruction set.
pub(super) fn encode_blocks_baseline(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    input: Input<'_>,
    first_element: u64,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    encode_blocks_generic(fmt, cfg, row, input, first_element, codes, params)
}

#[inline(always)]
fn encode_blocks_generic(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    input: Input<'_>,
    first_element: u64,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), QuantError> {
    let b = fmt.block_len();
    let mut buf = [0f32; MAX_BLOCK];
    let code_chunks = codes.chunks_exact_mut(fmt.codes_len());
    let param_chunks = params.chunks_exact_mut(fmt.params_len(row.is_some()));
    for ((i, c), p) in (0..input.len() / b).zip(code_chunks).zip(param_chunks) {
        let x = &mut buf[..b];
        input.slice(i * b, (i + 1) * b).to_f32(x);
        check_block(input, b, i, x, first_element)?;
        encode_block(fmt, cfg, row, x, c, p);
    }
    Ok(())
}

/// Encodes one block of finite values `x_in` into `codes` and `params`.
#[inline(always)]
fn encode_block(
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
    let mut xt = [[0f32; L]; ROWS];
    let groups = transpose(x, s, &mut xt);
    let mut wt = [[0f32; L]; ROWS];
    let weighted = cfg.weighting != Weighting::Uniform;
    if weighted {
        let mut wbuf = [0f32; MAX_BLOCK];
        fill_weights(cfg.weighting, x, &mut wbuf[..b]);
        for (w, &t) in wbuf.iter_mut().zip(&taken[..b]) {
            if t {
                *w = 0.0;
            }
        }
        transpose(&wbuf[..b], s, &mut wt);
    }
    // Two literal cases so that the uniform one is compiled without weights.
    let q = if weighted {
        let lg = LaneGroups { x: &xt, w: Some(&wt), sub: s, groups, n };
        search_block(fmt, cfg, row, &lg)
    } else {
        let lg = LaneGroups { x: &xt, w: None, sub: s, groups, n };
        search_block(fmt, cfg, row, &lg)
    };

    // Final codes for the chosen parameters, in element order (the same per-element
    // arithmetic as the lane passes, so the codes are the ones the search scored).
    let qmax = fmt.bits.max_code() as f32;
    let (d, dmin) = (q.d.to_f32(), q.dmin.to_f32());
    let mut unpacked = [0u8; MAX_BLOCK];
    for (j, (xj, uj)) in x.chunks_exact(s).zip(unpacked.chunks_exact_mut(s)).enumerate() {
        let scale = d * f32::from(q.sc[j]);
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        let neg = dmin * f32::from(q.mc[j]);
        for (u, &v) in uj.iter_mut().zip(xj) {
            *u = round_code((v + neg) * inv, qmax) as u8;
        }
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

/// The transposed block: lane group `g` is rows `g * sub .. (g + 1) * sub`.
struct LaneGroups<'a> {
    x: &'a [V; ROWS],
    w: Option<&'a [V; ROWS]>,
    sub: usize,
    groups: usize,
    /// Real sub-groups (lanes beyond are padding).
    n: usize,
}

impl LaneGroups<'_> {
    fn get(&self, g: usize) -> LaneGroup<'_> {
        let r = g * self.sub..(g + 1) * self.sub;
        LaneGroup { x: &self.x[r.clone()], w: self.w.map(|w| &w[r]) }
    }
}

/// Quantized sub-scales and sub-mins with their super-scales (padded to whole lane
/// groups).
#[derive(Clone, Copy)]
struct Quantized {
    d: f16,
    dmin: f16,
    sc: [u8; MAX_SUBS],
    mc: [u8; MAX_SUBS],
}

impl Quantized {
    /// Scale, inverse scale and negated offset of the lanes of group `g`.
    fn lanes(&self, g: usize) -> (V, V, V) {
        let (d, dmin) = (self.d.to_f32(), self.dmin.to_f32());
        let mut scale = [0f32; L];
        let mut inv = [0f32; L];
        let mut neg = [0f32; L];
        for l in 0..L {
            let j = (g * L + l).min(MAX_SUBS - 1);
            scale[l] = d * f32::from(self.sc[j]);
            inv[l] = if scale[l] > 0.0 { 1.0 / scale[l] } else { 0.0 };
            neg[l] = dmin * f32::from(self.mc[j]);
        }
        (scale, inv, neg)
    }
}

/// The sub-groups' continuous fits.
struct Fits {
    scale: [f32; MAX_SUBS],
    min: [f32; MAX_SUBS],
    sums: [Sums; MAX_SUBS / L],
}

/// Per-lane error of the sub-codes `(sc, mc)` under `(d, dmin)`.
#[inline(always)]
fn sub_code_error(grp: &LaneGroup<'_>, d: f32, dmin: f32, sc: V, mc: V, qmax: f32) -> V {
    let mut scale = [0f32; L];
    let mut inv = [0f32; L];
    let mut neg = [0f32; L];
    for l in 0..L {
        scale[l] = d * sc[l];
        inv[l] = if scale[l] > 0.0 { 1.0 / scale[l] } else { 0.0 };
        neg[l] = dmin * mc[l];
    }
    grp.direct_error(scale, inv, neg, qmax)
}

/// Chooses every sub-group's `(sc, mc)` for the super-scales in `q`; returns the
/// total weighted squared error of the real sub-groups.
#[inline(always)]
fn choose_codes(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    lg: &LaneGroups<'_>,
    fits: &Fits,
    q: &mut Quantized,
) -> f32 {
    let qmax = fmt.bits.max_code() as f32;
    let scmax = ((1u32 << fmt.scale_bits()) - 1) as f32;
    let mcmax = ((1u32 << fmt.min_bits()) - 1) as f32;
    let (d, dmin) = (q.d.to_f32(), q.dmin.to_f32());
    let mut total = 0f32;
    for g in 0..lg.groups {
        let grp = lg.get(g);
        let mut ts = [0f32; L];
        let mut tm = [0f32; L];
        for l in 0..L {
            ts[l] = if d > 0.0 { fits.scale[g * L + l] / d } else { 0.0 };
            tm[l] = if dmin > 0.0 { fits.min[g * L + l] / dmin } else { 0.0 };
        }
        let (mut bs, mut bm) = ([0f32; L], [0f32; L]);
        let mut best = [f32::INFINITY; L];
        if !cfg.neighbors {
            for l in 0..L {
                bs[l] = nearest(ts[l], scmax);
                bm[l] = nearest(tm[l], mcmax);
            }
            best = sub_code_error(&grp, d, dmin, bs, bm, qmax);
        } else {
            let mut lo_s = [0f32; L];
            let mut lo_m = [0f32; L];
            let mut hi_s = [0f32; L];
            let mut hi_m = [0f32; L];
            for l in 0..L {
                [lo_s[l], hi_s[l]] = neighbours(ts[l], scmax);
                [lo_m[l], hi_m[l]] = neighbours(tm[l], mcmax);
            }
            for (cs, cm) in [(lo_s, lo_m), (lo_s, hi_m), (hi_s, lo_m), (hi_s, hi_m)] {
                let e = sub_code_error(&grp, d, dmin, cs, cm, qmax);
                for l in 0..L {
                    if e[l] < best[l] {
                        (best[l], bs[l], bm[l]) = (e[l], cs[l], cm[l]);
                    }
                }
            }
        }
        for l in 0..L {
            let j = g * L + l;
            q.sc[j] = bs[l] as u8;
            q.mc[j] = bm[l] as u8;
            if j < lg.n {
                total += best[l];
            }
        }
    }
    total
}

/// Least-squares `(d, dmin)` for fixed codes and sub-codes, rounded to f16; `None`
/// when the system is degenerate or the result unusable.
#[inline(always)]
fn refit_super(fmt: &TwoLevelFormat, lg: &LaneGroups<'_>, fits: &Fits, q: &Quantized) -> Option<(f16, f16)> {
    let qmax = fmt.bits.max_code() as f32;
    // Normal equations of min Σ w (d A - dmin B - x)², A = sc q, B = mc.
    let (mut aa, mut ab, mut bb, mut ax, mut bx) = (0f64, 0f64, 0f64, 0f64, 0f64);
    for g in 0..lg.groups {
        let (_, inv, neg) = q.lanes(g);
        let c = lg.get(g).code_sums(inv, neg, qmax);
        let base = &fits.sums[g];
        for l in 0..L {
            let j = g * L + l;
            if j >= lg.n {
                break;
            }
            let (sc, mc) = (f64::from(q.sc[j]), f64::from(q.mc[j]));
            aa += sc * sc * f64::from(c.qq[l]);
            ab += sc * mc * f64::from(c.q[l]);
            bb += mc * mc * f64::from(base.w[l]);
            ax += sc * f64::from(c.qx[l]);
            bx += mc * f64::from(base.x[l]);
        }
    }
    let det = ab * ab - aa * bb;
    let (nd, ndmin) = if bb > 0.0 && det != 0.0 {
        ((-ax * bb + ab * bx) / det, (aa * bx - ab * ax) / det)
    } else if aa > 0.0 {
        (ax / aa, f64::from(q.dmin.to_f32()))
    } else {
        return None;
    };
    let (hd, hm) = (f16::from_f32(nd as f32), f16::from_f32(ndmin as f32));
    let usable = |h: f16| h.is_finite() && h.to_f32() >= 0.0;
    (usable(hd) && usable(hm)).then_some((hd, hm))
}

/// The parameter search of one block.
#[inline(always)]
fn search_block(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Option<RowScales>,
    lg: &LaneGroups<'_>,
) -> Quantized {
    let qmax = fmt.bits.max_code() as f32;
    let mut fits =
        Fits { scale: [0.0; MAX_SUBS], min: [0.0; MAX_SUBS], sums: [Sums::default(); MAX_SUBS / L] };
    for g in 0..lg.groups {
        let (s, m, sums) =
            lanes::fit(&lg.get(g), qmax, (cfg.grid_steps, cfg.grid_lo, cfg.grid_hi), cfg.refit_iters);
        fits.scale[g * L..(g + 1) * L].copy_from_slice(&s);
        fits.min[g * L..(g + 1) * L].copy_from_slice(&m);
        fits.sums[g] = sums;
    }
    let (d, dmin) = match row {
        Some(r) => (r.d, r.dmin),
        None => initial_super(fmt, &fits.scale[..lg.n], &fits.min[..lg.n]),
    };
    let mut cur = Quantized { d, dmin, sc: [0; MAX_SUBS], mc: [0; MAX_SUBS] };
    let mut best = cur;
    let mut best_err = f32::INFINITY;
    for round in 0..=cfg.block_refits {
        let err = choose_codes(fmt, cfg, lg, &fits, &mut cur);
        if err < best_err {
            best_err = err;
            best = cur;
        } else {
            break;
        }
        if row.is_some() || round == cfg.block_refits {
            break;
        }
        match refit_super(fmt, lg, &fits, &cur) {
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
pub(super) fn row_scales(
    fmt: &TwoLevelFormat,
    cfg: &SearchConfig,
    row: Input<'_>,
) -> Result<RowScales, QuantError> {
    let s = fmt.sub_len();
    let qmax = fmt.bits.max_code() as f32;
    let (mut max_s, mut max_m) = (0f32, 0f32);
    let mut keep = |scale: f32, min: f32| {
        max_s = if scale > max_s { scale } else { max_s };
        max_m = if min > max_m { min } else { max_m };
    };
    // Whole sub-groups, up to eight at a time through the lane search (a last lane
    // group of fewer than eight repeats its last sub-group, which leaves the maxima
    // unchanged); then a partial last sub-group on its own.
    let whole = row.len() / s * s;
    let mut buf = [0f32; L * 64];
    let mut xt = [[0f32; L]; ROWS];
    let mut start = 0;
    while start < whole {
        let end = (start + L * s).min(whole);
        let x = &mut buf[..end - start];
        row.slice(start, end).to_f32(x);
        check_block(row.slice(start, end), end - start, 0, x, start as u64)?;
        transpose(x, s, &mut xt);
        let grp = LaneGroup { x: &xt[..s], w: None };
        let (sc, mn, _) = lanes::fit(&grp, qmax, (cfg.grid_steps, cfg.grid_lo, cfg.grid_hi), cfg.refit_iters);
        for l in 0..L {
            keep(sc[l], mn[l]);
        }
        start = end;
    }
    if whole < row.len() {
        let x = &mut buf[..row.len() - whole];
        row.slice(whole, row.len()).to_f32(x);
        check_block(row.slice(whole, row.len()), x.len(), 0, x, whole as u64)?;
        let f = fit_affine(x, Unit, qmax, cfg, true);
        keep(f.scale, -f.offset);
    }
    let scmax = ((1u32 << fmt.scale_bits()) - 1) as f32;
    let mcmax = ((1u32 << fmt.min_bits()) - 1) as f32;
    Ok(RowScales { d: f16::from_f32(max_s / scmax), dmin: f16::from_f32(max_m / mcmax) })
}
