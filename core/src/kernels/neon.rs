//! NEON entry points of quantize+pack and unpack+dequantize. NEON is the aarch64
//! baseline, so no `#[target_feature]` is needed. Each loops over the whole buffer.

use super::generic;
use crate::format::GroupFormat;
use crate::input::Input;
use crate::params::GroupFault;
use crate::simd::neon::Neon;

impl Neon {
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

// NEON is part of the aarch64 baseline: these tests always run on aarch64.
#[cfg(all(test, not(miri)))]
mod tests {
    use crate::simd::Backend;

    crate::testutil::kernel_parity_tests!(Backend::Neon, crate::simd::neon::Neon::new(), true);
}
