#!/usr/bin/env bash
# Runs the unit tests of arrowquant-core under Miri (nightly), which checks every
# unsafe block the tests reach for undefined behaviour: out-of-bounds or misaligned
# accesses, uninitialised reads, invalid values, aliasing violations.
#
# Under Miri `is_x86_feature_detected!` reports only compile-time features, so the
# scalar and SSE2 paths run (Miri interprets the SSE2 intrinsics); AVX2 paths are
# skipped by their own availability checks. Tests that are too slow interpreted use
# smaller sizes under `cfg(miri)`.
#
# Usage: tests/miri.sh [extra cargo miri test args]
# Needs: rustup toolchain nightly with the miri and rust-src components
#        (`rustup +nightly component add miri rust-src`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/miri-run}"
start=$(date +%s)
cargo +nightly miri test -p arrowquant-core "$@"
echo "miri: arrowquant-core tests passed in $(( $(date +%s) - start )) s"
