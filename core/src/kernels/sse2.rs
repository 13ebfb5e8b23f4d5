//! SSE2 entry points of quantize+pack and unpack+dequantize. SSE2 is the x86_64
//! baseline, so no `#[target_feature]` is needed. Each loops over the whole buffer.

use super::generic;
use crate::format::GroupFormat;
use crate::input::Input;
use crate::params::GroupFault;
use crate::simd::sse2::Sse2;

impl Sse2 {
    /// Quantizes whole groups of `input` (lengths validated by the caller).
    pub(crate) fn quantize(
        self,
        format: GroupFormat,
        input: Input<'_>,
        codes: &mut [u8],
        params: &mut [u8],
    ) -> Result<(), (usize, GroupFault)> {
        generic::quantize(self, format, input, codes, params)
    }

    /// Dequantizes whole groups (lengths validated by the caller).
    pub(crate) fn dequantize(
        self,
        format: GroupFormat,
        codes: &[u8],
        params: &[u8],
        out: &mut [f32],
    ) -> Result<(), usize> {
        generic::dequantize(self, format, codes, params, out)
    }
}

// SSE2 is part of the x86_64 baseline: these tests always run on x86_64. They run under
// Miri too (tests/miri.sh), with the sizes of `testutil` under `cfg(miri)`.
#[cfg(test)]
mod tests {
    use crate::simd::Backend;

    crate::testutil::kernel_parity_tests!(Backend::Sse2, crate::simd::sse2::Sse2::new(), true);
}
