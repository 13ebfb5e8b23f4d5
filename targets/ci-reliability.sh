#!/usr/bin/env bash
# Reliability CI: builds every fuzz target and runs each for 30 s, then runs the core's
# tests under Miri. Exits non-zero on a build failure, a fuzz crash or a Miri error.
# (The malformed-input corpus and the crash-safety tests are ordinary tests of the
# `arrowquant-tests` crate, run by targets/ci.sh.)
#
# Usage: targets/ci-reliability.sh [FUZZ_SECONDS]   (default 30)
# Installs what is missing: cargo-fuzz (`cargo install cargo-fuzz --locked`) and the
# nightly miri and rust-src components. Needs a nightly toolchain (`rustup toolchain
# install nightly`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-30}"

step() { printf '\n=== %s\n' "$*"; }

step "tools"
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
if ! rustup +nightly component list --installed | grep -q '^miri'; then
    rustup +nightly component add miri rust-src
fi
cargo +nightly fuzz --version

start=$(date +%s)
step "fuzz: every target for ${secs} s"
tests/fuzz/run.sh "$secs"
fuzz_done=$(date +%s)

step "miri: arrowquant-core tests"
tests/miri.sh
end=$(date +%s)

echo
echo "ci-reliability: passed (fuzz $((fuzz_done - start)) s, miri $((end - fuzz_done)) s)"
