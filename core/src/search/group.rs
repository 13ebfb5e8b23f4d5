//! [`SearchedGroupCodec`]: the plain group layout of [`crate::format`] with
//! searched parameters.

use half::f16;

use super::affine::{assign_codes, direct_error, fit_affine};
use super::{SearchConfig, Unit, Weighting, fill_weights};
use crate::QuantError;
use crate::codec::BlockCodec;
use crate::format::{GroupFormat, GroupSize, Scheme};
use crate::input::Input;
use crate::kernels::fault_to_error;
use crate::kernels::scalar::{min_max_ref, write_params};
use crate::params::{GroupParams, check_range, params_from_range};

/// Group quantization in the ordinary [`GroupFormat`] layout whose scale and offset
/// come from the search of [`crate::search`] rather than the group's range.
///
/// The output decodes with [`GroupCodec`](crate::GroupCodec) (same bytes meaning).
/// Each group keeps whichever of the searched and the min-max parameters gives the
/// lower error, so it is never worse than the default codec.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SearchedGroupCodec {
    format: GroupFormat,
    search: SearchConfig,
}

impl SearchedGroupCodec {
    /// The format searched with `search`.
    pub fn new(format: GroupFormat, search: SearchConfig) -> Self {
        SearchedGroupCodec { format, search }
    }

    /// The layout.
    pub fn format(&self) -> GroupFormat {
        self.format
    }

    /// The search knobs.
    pub fn search(&self) -> SearchConfig {
        self.search
    }

    /// Parameters and codes of one group of finite values.
    fn encode_group(&self, x: &[f32], codes: &mut [u8], params: &mut [u8]) {
        let f = self.format;
        let qmax = f.bits.max_code() as f32;
        let (min, max, _) = min_max_ref(x);
        let (d0, m0) = params_from_range(f, min, max);
        let mut unpacked = [0u8; GroupSize::MAX];
        let u = &mut unpacked[..x.len()];
        let (d, m) = match f.scheme {
            Scheme::Asymmetric => {
                let mut wbuf = [0f32; GroupSize::MAX];
                let fit = if self.search.weighting == Weighting::Uniform {
                    fit_affine(x, Unit, qmax, &self.search, false)
                } else {
                    fill_weights(self.search.weighting, x, &mut wbuf[..x.len()]);
                    fit_affine(x, &wbuf[..x.len()], qmax, &self.search, false)
                };
                let (d1, m1) = (f16::from_f32(fit.scale), f16::from_f32(fit.offset));
                let e = |d: f16, m: f16| {
                    let p = GroupParams::from_stored(d, m);
                    direct_error(x, Unit, p.scale, p.inv_scale, -p.offset, qmax)
                };
                let pick = if d1.is_finite() && m1.is_finite() && e(d1, m1) < e(d0, m0) {
                    (d1, m1)
                } else {
                    (d0, m0)
                };
                let p = GroupParams::from_stored(pick.0, pick.1);
                assign_codes(x, p.inv_scale, -p.offset, qmax, u);
                pick
            }
            Scheme::Symmetric => {
                let d = symmetric_search(f, x, d0, &self.search);
                let p = GroupParams::from_stored(d, f16::ZERO);
                symmetric_codes(f, x, p.inv_scale, u);
                (d, f16::ZERO)
            }
        };
        f.bits.pack(u, codes).expect("lengths fixed by the format");
        write_params(f, d, m, params);
    }
}

/// Codes of the core's symmetric kernel: `clamp(round(x / d), -h, h - 1) + h`.
fn symmetric_codes(f: GroupFormat, x: &[f32], inv: f32, out: &mut [u8]) {
    let h = (1u32 << (f.bits.get() - 1)) as f32;
    for (o, &v) in out.iter_mut().zip(x) {
        let t = v * inv;
        let t = if t > -h { t } else { -h };
        let t = if t < h - 1.0 { t } else { h - 1.0 };
        *o = (libm::rintf(t) + h) as u8;
    }
}

fn symmetric_error(f: GroupFormat, x: &[f32], d: f16) -> f32 {
    let p = GroupParams::from_stored(d, f16::ZERO);
    let h = (1u32 << (f.bits.get() - 1)) as f32;
    let mut err = 0.0f32;
    for &v in x {
        let t = v * p.inv_scale;
        let t = if t > -h { t } else { -h };
        let t = if t < h - 1.0 { t } else { h - 1.0 };
        let e = libm::rintf(t) * p.scale - v;
        err += e * e;
    }
    err
}

/// Shrinks the covering scale `d0` over `grid_steps` factors in `[0.6, 1]` and keeps
/// the one with the lowest error (ties keep the larger scale).
fn symmetric_search(f: GroupFormat, x: &[f32], d0: f16, cfg: &SearchConfig) -> f16 {
    let mut best = d0;
    let mut best_err = symmetric_error(f, x, d0);
    let steps = u32::from(cfg.grid_steps);
    for k in 1..=steps {
        let d = f16::from_f32(d0.to_f32() * (1.0 - 0.4 * k as f32 / steps as f32));
        if d.to_f32() <= 0.0 {
            continue;
        }
        let e = symmetric_error(f, x, d);
        if e < best_err {
            best_err = e;
            best = d;
        }
    }
    best
}

impl BlockCodec for SearchedGroupCodec {
    fn block_len(&self) -> usize {
        self.format.group_len()
    }

    fn codes_len(&self) -> usize {
        self.format.codes_len()
    }

    fn params_len(&self) -> usize {
        self.format.params_len()
    }

    fn encode(
        &self,
        input: Input<'_>,
        first_element: u64,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), QuantError> {
        let g = self.format.group_len();
        let groups = check_lengths(self, input.len(), codes.len(), params.len())?;
        let mut buf = [0f32; GroupSize::MAX];
        let code_chunks = codes.chunks_exact_mut(self.codes_len());
        let param_chunks = params.chunks_exact_mut(self.params_len());
        for ((i, c), p) in (0..groups).zip(code_chunks).zip(param_chunks) {
            let x = &mut buf[..g];
            input.slice(i * g, (i + 1) * g).to_f32(x);
            let (min, max, nan) = min_max_ref(x);
            check_range(min, max, nan).map_err(|fault| fault_to_error(input, g, i, fault, first_element))?;
            self.encode_group(x, c, p);
        }
        Ok(())
    }

    fn decode(&self, codes: &[u8], params: &[u8], out: &mut [f32]) -> Result<(), QuantError> {
        crate::kernels::dequantize_ref(self.format, codes, params, out)
    }
}

/// Validates buffer lengths for whole blocks of `codec`; returns the block count.
pub(crate) fn check_lengths<C: BlockCodec>(
    codec: &C,
    len: usize,
    codes: usize,
    params: usize,
) -> Result<usize, QuantError> {
    let b = codec.block_len();
    if !len.is_multiple_of(b) {
        return Err(QuantError::NotBlockMultiple { len, block: b });
    }
    let n = len / b;
    if codes != n * codec.codes_len() {
        return Err(QuantError::LengthMismatch { expected: n * codec.codes_len(), actual: codes });
    }
    if params != n * codec.params_len() {
        return Err(QuantError::LengthMismatch { expected: n * codec.params_len(), actual: params });
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::GroupCodec;
    use std::vec;

    fn data(n: usize, seed: u32) -> std::vec::Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let u = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                u * u * u * 10.0 + u * 0.1
            })
            .collect()
    }

    fn sq_err(a: &[f32], b: &[f32]) -> f64 {
        a.iter().zip(b).map(|(x, y)| f64::from(x - y) * f64::from(x - y)).sum()
    }

    #[test]
    fn never_worse_than_min_max_and_decodes_with_group_codec() {
        // Under Miri two groups (interpreted, the fine search takes about 0.5 s a group).
        let x = data(if cfg!(miri) { 128 } else { 4096 }, 7);
        for (bits, scheme) in
            [(2, Scheme::Asymmetric), (4, Scheme::Asymmetric), (4, Scheme::Symmetric), (8, Scheme::Symmetric)]
        {
            let f = GroupFormat::new(bits, 64, scheme).unwrap();
            let n = x.len() / 64;
            let (mut c0, mut p0) = (vec![0u8; n * f.codes_len()], vec![0u8; n * f.params_len()]);
            let plain = GroupCodec::with_backend(f, crate::Backend::Scalar).unwrap();
            plain.encode(Input::F32(&x), 0, &mut c0, &mut p0).unwrap();
            let (mut c1, mut p1) = (c0.clone(), p0.clone());
            let searched = SearchedGroupCodec::new(f, SearchConfig::FINE);
            searched.encode(Input::F32(&x), 0, &mut c1, &mut p1).unwrap();
            let (mut y0, mut y1) = (vec![0f32; x.len()], vec![0f32; x.len()]);
            plain.decode(&c0, &p0, &mut y0).unwrap();
            plain.decode(&c1, &p1, &mut y1).unwrap();
            for g in 0..n {
                let r = g * 64..(g + 1) * 64;
                assert!(sq_err(&x[r.clone()], &y1[r.clone()]) <= sq_err(&x[r.clone()], &y0[r]) * 1.000_01);
            }
            if bits == 2 {
                assert!(sq_err(&x, &y1) < 0.8 * sq_err(&x, &y0), "the search must help at 2 bits");
            }
        }
    }

    #[test]
    fn rejects_non_finite_naming_the_element() {
        let mut x = data(128, 1);
        x[70] = f32::NAN;
        let f = GroupFormat::new(4, 64, Scheme::Asymmetric).unwrap();
        let c = SearchedGroupCodec::new(f, SearchConfig::FAST);
        let (mut codes, mut params) = ([0u8; 64], [0u8; 8]);
        assert_eq!(
            c.encode(Input::F32(&x), 10, &mut codes, &mut params),
            Err(QuantError::NonFinite { element: 80 })
        );
        x[70] = 1.0e6;
        assert_eq!(
            c.encode(Input::F32(&x), 0, &mut codes, &mut params),
            Err(QuantError::OutOfRange { element: 70 })
        );
    }
}
