//! SSE2 entry point of the statistics (SSE2 is the x86_64 baseline: no
//! `#[target_feature]` needed). It loops over the whole buffer.

use super::{GroupStats, generic};
use crate::input::Input;
use crate::simd::sse2::Sse2;

impl Sse2 {
    /// Statistics of each whole group (lengths validated by the caller).
    pub(crate) fn group_stats(self, input: Input<'_>, group: usize, out: &mut [GroupStats]) {
        generic::group_stats(self, input, group, out)
    }
}

// These run under Miri too (tests/miri.sh), with the sizes of `testutil` under `cfg(miri)`.
#[cfg(test)]
mod tests {
    use crate::simd::Backend;

    // SSE2 is part of the x86_64 baseline: this test always runs on x86_64.
    #[test]
    fn stats_match_reference() {
        crate::testutil::stats_parity(Backend::Sse2);
    }
}
