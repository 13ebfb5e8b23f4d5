#!/usr/bin/env bash
# The one CI script: developers run it locally, `.ci/run` calls it on a clean checkout
# (after targets/install-deps.sh). Every step is loud; any failure stops the run with a
# non-zero status. Set AQ_CI_QUICK=1 to stop after the host steps. The demo runs in the
# dev profile, which is optimised (Cargo.toml), so it reuses the test build's artefacts.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
step() { printf '\n== %s (t=%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "rustfmt"
cargo fmt --all -- --check

# Code behind cfg(target_arch) is only linted on its target: x86_64 here (SSE2/AVX2),
# aarch64 (NEON) in targets/ci-aarch64.sh.
step "clippy x86_64 (SSE2/AVX2 paths)"
cargo clippy --workspace --all-targets -- -D warnings

step "the README's test command: cargo test --workspace"
cargo test --workspace

step "the README's first command: cargo run -p arrowquant-cli -- demo"
cargo run -p arrowquant-cli -- demo

step "core without std: thumbv7em-none-eabihf and aarch64-unknown-none"
cargo build -p arrowquant-core --no-default-features --features alloc --target thumbv7em-none-eabihf
cargo build -p arrowquant-core --no-default-features --features alloc --target aarch64-unknown-none
cargo build -p arrowquant-core --no-default-features --target thumbv7em-none-eabihf

if [ "${AQ_CI_QUICK:-0}" = 1 ]; then
  step "AQ_CI_QUICK=1: stopping before the cross-target steps"
  exit 0
fi

step "aarch64: clippy, the product crates' tests under qemu-user, release CLI"
AQ_MUSL="${AQ_MUSL:-0}" bash targets/ci-aarch64.sh

step "Cortex-M4F firmware under qemu-system-arm"
bash targets/ci-embedded.sh

step "reliability: every fuzz target built and run 30 s, core tests under Miri"
bash targets/ci-reliability.sh 30

step "done in $(( $(date +%s) - t0 ))s"
