//! NEON entry point of the statistics (NEON is the aarch64 baseline: no
//! `#[target_feature]` needed). It loops over the whole buffer.

use super::{GroupStats, generic};
use crate::input::Input;
use crate::simd::neon::Neon;

impl Neon {
    /// Statistics of each whole group (lengths validated by the caller).
    pub(crate) fn group_stats(self, input: Input<'_>, group: usize, out: &mut [GroupStats]) {
        generic::group_stats(self, input, group, out)
    }
}

#[cfg(all(test, not(miri)))]
mod tests {
    use crate::simd::Backend;

    // NEON is part of the aarch64 baseline: this test always runs on aarch64.
    #[test]
    fn stats_match_reference() {
        crate::testutil::stats_parity(Backend::Neon);
    }
}
