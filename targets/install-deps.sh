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

# Python packages are not installed here: the README's test command needs none, and
# targets/ci.sh makes its own venv (numpy, pyarrow, gguf, the all-MiniLM-L6-v2 weights)
# for the model and Python checks. It needs python3 with venv and ensurepip.
say "python3 with venv (the venv of the model and Python checks)"
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "python3 $(python3 -c 'import sys; print(sys.version.split()[0])') with venv: present"
else
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3 python3-venv
fi
