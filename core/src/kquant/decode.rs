//! The two-level decoder: `x = q * (d * sc) - dmin * mc`, then the outliers.

use half::f16;

use super::bitpack::unpack_bits;
use super::{MAX_BLOCK, MAX_SUBS, RowScales, TwoLevelFormat};
use crate::QuantError;

/// Decodes one block. `row` supplies `(d, dmin)` in per-row mode.
///
/// # Errors
/// [`QuantError::Corrupt`] for a non-finite scale or outlier value, or an outlier
/// index outside the block.
pub(super) fn decode_block(
    fmt: &TwoLevelFormat,
    row: Option<RowScales>,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), QuantError> {
    let b = fmt.block_len();
    let s = fmt.sub_len();
    let n = fmt.subs();
    let (scales, p) = match row {
        Some(r) => (r, params),
        None => {
            let r = RowScales {
                d: f16::from_le_bytes([params[0], params[1]]),
                dmin: f16::from_le_bytes([params[2], params[3]]),
            };
            (r, &params[4..])
        }
    };
    if !scales.d.is_finite() || !scales.dmin.is_finite() {
        return Err(QuantError::Corrupt);
    }
    let (d, dmin) = (scales.d.to_f32(), scales.dmin.to_f32());
    let (sc_bytes, rest) = p.split_at(fmt.scales_len());
    let (mc_bytes, outliers) = rest.split_at(fmt.mins_len());
    let (mut sc, mut mc) = ([0u8; MAX_SUBS], [0u8; MAX_SUBS]);
    unpack_bits(sc_bytes, fmt.scale_bits(), &mut sc[..n]);
    unpack_bits(mc_bytes, fmt.min_bits(), &mut mc[..n]);
    let mut q = [0u8; MAX_BLOCK];
    fmt.bits.unpack(codes, &mut q[..b])?;
    for (j, (oj, qj)) in out.chunks_exact_mut(s).zip(q.chunks_exact(s)).enumerate() {
        let scale = d * f32::from(sc[j]);
        let min = dmin * f32::from(mc[j]);
        for (y, &c) in oj.iter_mut().zip(qj) {
            *y = f32::from(c) * scale - min;
        }
    }
    for o in outliers.chunks_exact(3) {
        let v = f16::from_le_bytes([o[0], o[1]]);
        let i = usize::from(o[2]);
        if !v.is_finite() || i >= b {
            return Err(QuantError::Corrupt);
        }
        out[i] = v.to_f32();
    }
    Ok(())
}
