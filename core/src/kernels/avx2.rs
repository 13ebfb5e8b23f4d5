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

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::simd::Backend;
    use crate::testutil;

    fn available() -> bool {
        let ok = Backend::Avx2.is_available();
        if !ok {
            std::eprintln!("SKIPPED: this CPU has no AVX2+F16C, the AVX2 kernels cannot run here");
        }
        ok
    }

    #[test]
    fn quantize_matches_reference() {
        if available() {
            testutil::quantize_parity(Backend::Avx2);
        }
    }

    #[test]
    fn quantize_special_values_match_reference() {
        if available() {
            testutil::quantize_special_values(Backend::Avx2);
        }
    }

    #[test]
    fn dequantize_matches_reference() {
        if available() {
            testutil::dequantize_parity(Backend::Avx2);
        }
    }

    #[test]
    fn dequantize_with_streaming_stores_matches_reference() {
        if available() {
            testutil::dequantize_streaming_parity(Backend::Avx2);
        }
    }

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        if available() {
            testutil::round_trip_error(Backend::Avx2);
        }
    }

    #[test]
    fn packers_are_exhaustively_exact() {
        if let Some(t) = crate::simd::avx2::Avx2::new() {
            testutil::packers_exhaustive(t);
        } else {
            assert!(!available());
        }
    }
}
