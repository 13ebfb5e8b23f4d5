#!/usr/bin/env bash
# Reliability CI: builds every fuzz target once and runs each for 30 s, while the
# core's tests run under Miri in the background. Exits non-zero on a build failure, a fuzz crash, a Miri
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
#   MIRI_TESTS="a b"     test name filters for Miri (default: the modules whose tests
#                        reach every `unsafe` block: the SIMD layer, kernels,
#                        statistics, metrics, kquant and ggml; `all` runs every
#                        arrowquant-core test: 935 s on 2026-12-07 (138 tests),
#                        longer than the fuzz build it hides behind, which put
#                        .ci/run at 37.7 minutes of its 40)
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

# Miri interprets on one thread; the fuzz build leaves a core idle for minutes (the
# parquet crate is one long serial compile) and the fuzz runs are fixed-length, so
# Miri runs in the background meanwhile instead of after them.
miri_log="$(mktemp)"
trap 'rm -f "$miri_log"' EXIT
t1=$(now)
if [[ $miri == yes ]]; then
    miri_tests="${MIRI_TESTS:-simd:: kernels:: stats:: metrics:: kquant:: ggml::}"
    step "miri: arrowquant-core tests ($miri_tests), in the background"
    (
        if [[ $miri_tests == all ]]; then
            tests/miri.sh
        else
            read -r -a filters <<<"$miri_tests"
            tests/miri.sh --lib -- "${filters[@]}"
        fi
    ) >"$miri_log" 2>&1 &
    miri_pid=$!
fi

step "fuzz: build every target once, run each for ${secs} s"
export SANITIZER="${SANITIZER:-none}"
export FUZZ_PROFILE="${FUZZ_PROFILE:-dev}"
export PARALLEL="${PARALLEL:-2}"
export FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$PWD/target/fuzz-ci}"
fuzz_status=0
tests/fuzz/run.sh "$secs" || fuzz_status=$?
t_fuzz=$(($(now) - t1))

miri_status=0
if [[ $miri == yes ]]; then
    wait "$miri_pid" || miri_status=$?
    step "miri output (exit $miri_status)"
    cat "$miri_log"
else
    cat >&2 <<'EOF'

!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
!!! MIRI SKIPPED: `rustup +nightly component add miri rust-src` failed (this
!!! nightly may not ship Miri). Run it by hand: tests/miri.sh (tests/fuzz/README.md).
!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!
EOF
fi
t_both=$(($(now) - t1))
[[ $fuzz_status -eq 0 ]] || die "a fuzz target failed to build, or crashed (exit $fuzz_status)"
[[ $miri_status -eq 0 ]] || die "Miri failed (exit $miri_status)"

echo
echo "ci-reliability: passed (tools ${t_tools} s, fuzz build + runs ${t_fuzz} s, fuzz and Miri together ${t_both} s${miri_note}, total $(($(now) - t0)) s)"
