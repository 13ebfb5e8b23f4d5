//! AVX2 + F16C entry point of the statistics: the only stats function compiled with
//! `#[target_feature]`. It loops over the whole buffer.

use super::{GroupStats, generic};
use crate::input::Input;
use crate::simd::avx2::Avx2;

impl Avx2 {
    /// Statistics of each whole group (lengths validated by the caller).
    pub(crate) fn group_stats(self, input: Input<'_>, group: usize, out: &mut [GroupStats]) {
        // SAFETY: a token exists only if the CPU runs AVX2 and F16C.
        unsafe { group_stats_avx2(self, input, group, out) }
    }
}

#[target_feature(enable = "avx2,f16c")]
fn group_stats_avx2(t: Avx2, input: Input<'_>, group: usize, out: &mut [GroupStats]) {
    generic::group_stats(t, input, group, out)
}

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::simd::Backend;

    #[test]
    fn stats_match_reference() {
        if Backend::Avx2.is_available() {
            crate::testutil::stats_parity(Backend::Avx2);
        } else {
            std::eprintln!("SKIPPED: this CPU has no AVX2+F16C, the AVX2 statistics cannot run here");
        }
    }
}
