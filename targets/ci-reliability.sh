#!/usr/bin/env bash
# Reliability CI: builds every fuzz target once and runs each for 30 s, then runs the
# core's tests under Miri. Exits non-zero on a build failure, a fuzz crash, a Miri
# error, or a tool that cannot be installed (except Miri: see below).
# (The malformed-input corpus and the crash-safety tests are ordinary tests of the
# `arrowquant-tests` crate, run by targets/ci.sh.)
#
# Usage: targets/ci-reliability.sh [FUZZ_SECONDS]   (default 30)
#   FUZZ_TARGET_DIR=DIR  where the fuzz targets are built (default: target/fuzz-ci,
#                        apart from tests/fuzz/target so CI and hand runs never mix
#                        sanitizer builds)
#   SANITIZER=address    cargo fuzz's sanitizer for this run (default: none; the
#                        10-minute runs in tests/fuzz/README.md use address)
#   FUZZ_PROFILE=release build profile of the targets (default: dev, opt-level 1 with
#                        debug assertions: half the build time, enough for 30 s runs)
#   PARALLEL=N           targets fuzzed at a time (default 2, one per core here)
#   MIRI_TESTS="a b"     test name filters for Miri (default: the tests that reach
#                        unsafe code, see tests/fuzz/README.md; "all" runs every
#                        arrowquant-core test, which takes far longer)
#
# Installs what is missing: a nightly toolchain (`rustup toolchain install nightly
# --profile minimal`), cargo-fuzz (`cargo install cargo-fuzz --locked`) and the nightly
# miri and rust-src components. If Miri cannot be installed the Miri step is skipped
# with a loud message (tests/fuzz/README.md says how to run it by hand); every other
# tool that cannot be installed fails the script.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs="${1:-30}"

step() { printf '\n=== %s\n' "$*"; }
die() {
    printf '\n!!! ci-reliability: %s\n' "$*" >&2
    exit 1
}
now() { date +%s; }

t0=$(now)
step "tools"
if ! rustc +nightly -V >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal || die "cannot install a nightly toolchain (rustup toolchain install nightly --profile minimal)"
fi
rustc +nightly -V
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || die "cannot install cargo-fuzz (cargo install cargo-fuzz --locked)"
fi
cargo +nightly fuzz --version
miri=yes
miri_note=""
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri'; then
    if ! rustup +nightly component add miri rust-src; then
        miri=no
        miri_note=" SKIPPED"
    fi
fi
t_tools=$(($(now) - t0))

t1=$(now)
step "fuzz: build every target once, run each for ${secs} s"
export SANITIZER="${SANITIZER:-none}"
export FUZZ_PROFILE="${FUZZ_PROFILE:-dev}"
export PARALLEL="${PARALLEL:-2}"
export FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target/fuzz-ci}"
tests/fuzz/run.sh "$secs"
t_fuzz=$(($(now) - t1))

t2=$(now)
if [[ $miri == yes ]]; then
    step "miri: arrowquant-core tests"
    miri_tests="${MIRI_TESTS:-kernels::sse2 stats::sse2 kernels::generic simd:: format:: kquant::bitpack}"
    if [[ $miri_tests == all ]]; then
        tests/miri.sh
    else
        read -r -a filters <<<"$miri_tests"
        tests/miri.sh --lib -- "${filters[@]}"
    fi
else
    cat >&2 <<'EOF'

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!! MIRI SKIPPED: `rustup +nightly component add miri rust-src` failed (this
!!! nightly may not ship Miri). Run it by hand: tests/miri.sh (tests/fuzz/README.md).
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
EOF
fi
t_miri=$(($(now) - t2))

echo
echo "ci-reliability: passed (tools ${t_tools} s, fuzz build + runs ${t_fuzz} s, miri ${t_miri} s${miri_note}, total $(($(now) - t0)) s)"
