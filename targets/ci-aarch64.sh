#!/usr/bin/env bash
# aarch64 Linux (Raspberry Pi 3/4/5, other ARM64 boards) from an x86_64 Debian/Ubuntu
# machine with rustup, plain cargo, no containers (called by .ci/run; developers can
# run it too). Uses the linker and qemu runner of the root .cargo/config.toml.
#
# 1. clippy for aarch64-unknown-linux-gnu with -D warnings (lints the NEON cfgs);
# 2. the whole workspace test suite under qemu-aarch64, with a closing
#    `N passed, N failed` line, and a check that the NEON-selection test ran and passed;
# 3. the CLI binary those tests built (dev profile, optimised: Cargo.toml; not built
#    again), smoke-run under qemu: `--version` and the demo (AQ_A64_RELEASE=1 also
#    builds the release CLI);
# 4. the release CLI as a static aarch64-unknown-linux-musl binary (AQ_MUSL=0 skips it).
#
# Exits non-zero on any failure.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
t0=$SECONDS
step() { echo "== [$((SECONDS - t0)) s] $*"; }
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}
gnu=aarch64-unknown-linux-gnu
musl=aarch64-unknown-linux-musl

step "install: cross gcc and libc, qemu-user, rust targets"
missing=()
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
if [ "${#missing[@]}" -gt 0 ]; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
rustup target add "$gnu" >/dev/null
rustup component add clippy >/dev/null

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0

step "clippy --target $gnu -D warnings"
if ! cargo clippy --workspace --all-targets --target "$gnu" -- -D warnings; then
    echo "aarch64: clippy failed"
    status=1
fi

step "tests under qemu-aarch64 (${AQ_A64_TESTS:---workspace})"
set +e
# AQ_A64_TESTS selects the packages (default: the whole workspace, integration suite
# included). The integration tests start the aarch64 `arrowquant` binary; qemu-user
# cannot exec a foreign binary by itself (no binfmt_misc here), so they prefix it with
# the emulator named in ARROWQUANT_RUNNER.
export ARROWQUANT_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
# shellcheck disable=SC2086
cargo test ${AQ_A64_TESTS:---workspace} --target "$gnu" 2>&1 | tee "$log"
test_status=${PIPESTATUS[0]}
set -e
# Sum libtest's per-binary results ("test result: ok. 12 passed; 0 failed; ...").
read -r passed failed < <(awk '/^test result:/ {
        for (i = 1; i <= NF; i++) { if ($(i + 1) ~ /^passed/) p += $i; if ($(i + 1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$log")
if [ "$test_status" -ne 0 ]; then
    echo "aarch64: cargo test failed (exit $test_status)"
    status=1
fi
# The NEON assertion must have run, not just compiled away.
if grep -qE 'neon_is_the_selected_backend_on_aarch64 \.\.\. ok' "$log"; then
    echo "aarch64: NEON is the selected backend (test passed)"
else
    echo "aarch64: the NEON-selection test did not run or did not pass"
    status=1
fi

step "the aarch64 CLI under qemu: --version and the demo"
# The test step built it once for the CLI's tests (env!("CARGO_BIN_EXE_arrowquant")).
# `cargo build -p arrowquant-cli` here would resolve fewer features than the workspace
# test build and compile core, std-adapter, the CLI, arrow and parquet again; building
# it in the release profile would cost CI minutes for the same optimised code.
bin="target/$gnu/debug/arrowquant"
if ! ls -l "$bin"; then
    echo "aarch64: $bin was not built by the test step"
    status=1
fi
if ! qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" --version; then
    echo "aarch64: the CLI does not start under qemu"
    status=1
fi
if ! qemu-aarch64 -L /usr/aarch64-linux-gnu "$bin" demo >/dev/null 2>"$log.demo"; then
    cat "$log.demo"
    echo "aarch64: the demo failed under qemu"
    status=1
fi
if [ "${AQ_A64_RELEASE:-0}" = 1 ]; then
    step "release CLI for $gnu"
    if cargo build --release --target "$gnu" -p arrowquant-cli; then
        qemu-aarch64 -L /usr/aarch64-linux-gnu "target/$gnu/release/arrowquant" --version || status=1
    else
        echo "aarch64: release build failed"
        status=1
    fi
fi

if [ "${AQ_MUSL:-1}" != 0 ]; then
    step "static release CLI for $musl"
    # Rust's musl target links its own bundled musl (self-contained crt and libc.a);
    # the Debian cross gcc serves as linker driver and compiles zstd-sys's C code,
    # which needs only freestanding headers plus string/stdlib functions musl provides.
    rustup target add "$musl" >/dev/null
    if CC_aarch64_unknown_linux_musl=aarch64-linux-gnu-gcc \
        CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
        cargo build --release --target "$musl" -p arrowquant-cli; then
        bin="target/$musl/release/arrowquant"
        ls -l "$bin"
        if file "$bin" | grep 'statically linked' >/dev/null; then
            # No -L: a static binary needs no aarch64 libraries on the host.
            qemu-aarch64 "$bin" --version || status=1
        else
            echo "aarch64: $bin is not statically linked: $(file "$bin")"
            status=1
        fi
    else
        echo "aarch64: musl release build failed"
        status=1
    fi
fi

step "done in $((SECONDS - t0)) s"
echo "aarch64: $passed passed, $failed failed"
exit "$status"
