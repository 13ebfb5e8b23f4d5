#!/usr/bin/env bash
# The one CI script: developers run it locally, `.ci/run` calls it on a clean checkout.
# Every step is loud; any failure stops the run with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."

t0=$(date +%s)
step() { printf '\n== %s (t=%ss)\n' "$*" "$(( $(date +%s) - t0 ))"; }

step "rustfmt"
cargo fmt --all -- --check

# Code behind cfg(target_arch) is only linted on its target: lint once per SIMD target.
step "clippy x86_64 (SSE2/AVX2 paths)"
cargo clippy --workspace --all-targets -- -D warnings
step "clippy aarch64 (NEON paths)"
cargo clippy --workspace --all-targets --target aarch64-unknown-linux-gnu -- -D warnings

step "the README's test command: cargo test --workspace"
cargo test --workspace

step "core without std: thumbv7em-none-eabihf and aarch64-unknown-none (alloc only)"
cargo build -p arrowquant-core --no-default-features --features alloc --target thumbv7em-none-eabihf
cargo build -p arrowquant-core --no-default-features --features alloc --target aarch64-unknown-none
cargo build -p arrowquant-core --no-default-features --target thumbv7em-none-eabihf

step "core tests on aarch64 under qemu-user (NEON)"
cargo test -p arrowquant-core --target aarch64-unknown-linux-gnu

step "done in $(( $(date +%s) - t0 ))s"
