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
        quantize_sse2(self, format, input, codes, params)
    }

    /// Dequantizes whole groups (lengths validated by the caller).
    pub(crate) fn dequantize(
        self,
        format: GroupFormat,
        codes: &[u8],
        params: &[u8],
        out: &mut [f32],
    ) -> Result<(), usize> {
        dequantize_sse2(self, format, codes, params, out)
    }
}

fn quantize_sse2(
    t: Sse2,
    format: GroupFormat,
    input: Input<'_>,
    codes: &mut [u8],
    params: &mut [u8],
) -> Result<(), (usize, GroupFault)> {
    generic::quantize(t, format, input, codes, params)
}

fn dequantize_sse2(
    t: Sse2,
    format: GroupFormat,
    codes: &[u8],
    params: &[u8],
    out: &mut [f32],
) -> Result<(), usize> {
    generic::dequantize(t, format, codes, params, out)
}

// These run under Miri too (tests/miri.sh), with the sizes of `testutil` under `cfg(miri)`.
#[cfg(test)]
mod tests {
    use crate::simd::Backend;
    use crate::testutil;

    // SSE2 is part of the x86_64 baseline: these tests always run on x86_64.

    #[test]
    fn quantize_matches_reference() {
        testutil::quantize_parity(Backend::Sse2);
    }

    #[test]
    fn quantize_special_values_match_reference() {
        testutil::quantize_special_values(Backend::Sse2);
    }

    #[test]
    fn dequantize_matches_reference() {
        testutil::dequantize_parity(Backend::Sse2);
    }

    #[test]
    fn dequantize_with_streaming_stores_matches_reference() {
        testutil::dequantize_streaming_parity(Backend::Sse2);
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        testutil::round_trip_error(Backend::Sse2);
    }

    #[test]
    fn packers_are_exhaustively_exact() {
        let t = crate::simd::sse2::Sse2::new().expect("baseline ISA");
        testutil::packers_exhaustive(t);
    }
}
