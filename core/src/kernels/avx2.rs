//! AVX2 + F16C entry points of quantize+pack and unpack+dequantize: the only kernel
//! functions compiled with `#[target_feature]`. Each loops over the whole buffer.

use super::generic;
use crate::format::GroupFormat;
use crate::input::Input;
use crate::params::GroupFault;
use crate::simd::avx2::Avx2;

impl Avx2 {
    /// Quantizes whole groups of `input` (lengths validated by the caller).
    pub(crate) fn quantize(
        self,
        format: GroupFormat,
        input: Input<'_>,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), (usize, GroupFault)> {
        // SAFETY: a token exists only if the CPU runs AVX2 and F16C.
        unsafe { quantize_avx2(self, format, input, codes, params) }
    }

    /// Dequantizes whole groups (lengths validated by the caller).
    pub(crate) fn dequantize(
        self,
        format: GroupFormat,
        codes: &[u8],
        params: &[u8],
        out: &mut [f32],
    ) -> Result<(), usize> {
        // SAFETY: a token exists only if the CPU runs AVX2 and F16C.
        unsafe { dequantize_avx2(self, format, codes, params, out) }
    }
}

#[target_feature(enable = "avx2,f16c")]
fn quantize_avx2(
    t: Avx2,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), (usize, GroupFault)> {
    generic::quantize(t, format, input, codes, params)
}

#[target_feature(enable = "avx2,f16c")]
fn dequantize_avx2(
    t: Avx2,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), usize> {
    generic::dequantize(t, format, codes, params, out)
}

// AVX2 is optional on x86_64: on a CPU without it these tests say SKIPPED on stderr.
#[cfg(all(test, not(miri)))]
mod tests {
    use crate::simd::Backend;

    crate::testutil::kernel_parity_tests!(Backend::Avx2, crate::simd::avx2::Avx2::new(), false);
}
