#!/usr/bin/env bash
# Cortex-M4F firmware tests of arrowquant-core on QEMU, runnable on a fresh Debian/Ubuntu
# machine with rustup (called by .ci/run; developers can run it too).
#
# Installs what is missing (qemu-system-arm, an ELF size tool, defmt-print, the
# thumbv7em-none-eabihf target), runs the defmt-test suite in targets/cortex-m under
# qemu-system-arm (mps2-an386), runs the standalone example, prints the closing
# `N passed, N failed` line and the footprint, and exits non-zero on any failure or if
# .text of the example exceeds 64 KiB.
#
# Environment: QEMU_TIMEOUT (seconds per QEMU run, default 120).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
t0=$SECONDS
step() { echo "== [$((SECONDS - t0)) s] $*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" -eq 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

step "install: qemu-system-arm, size tool, thumbv7em target, defmt-print"
command -v qemu-system-arm >/dev/null || apt_install qemu-system-arm
size_tool="$(command -v arm-none-eabi-size || command -v llvm-size || true)"
if [ -z "$size_tool" ]; then
    apt_install binutils-arm-none-eabi
    size_tool="$(command -v arm-none-eabi-size)"
fi
rustup target add thumbv7em-none-eabihf >/dev/null
# defmt-print decodes the firmware's log frames; building it takes about 160 CPU-s.
command -v defmt-print >/dev/null || cargo install defmt-print --locked
qemu-system-arm --version | sed -n 1p
defmt-print --version | sed -n 1p

# Cargo reads targets/cortex-m/.cargo/config.toml (target, linker scripts, runner)
# only when run from that folder.
cd "$here/cortex-m"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

step "build and run the firmware tests (release profile) under qemu-system-arm"
set +e
cargo test --release 2>&1 | tee "$log"
tests_status=${PIPESTATUS[0]}
set -e
summary="$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)"

step "run the standalone example (cargo run --release --bin quantize_flash)"
set +e
cargo run --release --bin quantize_flash
example_status=$?
set -e

step "footprint ($size_tool)"
test_elf="$( (cargo test --release --no-run --message-format=json 2>/dev/null || true) |
    sed -n 's/.*"executable":"\([^"]*on_m4[^"]*\)".*/\1/p' | tail -n 1)"
example_elf="target/thumbv7em-none-eabihf/release/quantize_flash"
[ "$example_status" -eq 0 ] || example_elf="" # a failed build may leave a stale ELF
text_of() { "$size_tool" -A "$1" | awk '$1 == ".text" { print $2 }'; }
section_report() {
    "$size_tool" -A "$1" | awk -v name="$2" '
        $1 == ".vector_table" || $1 == ".text" { text += $2 }
        $1 == ".rodata" { ro = $2 }
        $1 == ".data" { data = $2 }
        $1 == ".bss" { bss = $2 }
        END { printf "%-34s .text %6d B (with vector table %6d B)  .rodata %6d B  static RAM (.data+.bss) %6d B\n", name, text - 1024, text, ro, data + bss }'
}
example_text=""
if [ -n "$example_elf" ]; then
    section_report "$example_elf" "example quantize_flash:"
    example_text="$(text_of "$example_elf")"
fi
if [ -n "$test_elf" ] && [ "$tests_status" -eq 0 ]; then
    section_report "$test_elf" "test suite on_m4 (with defmt-test):"
fi

step "done in $((SECONDS - t0)) s"
status=0
if [ -z "$summary" ]; then
    echo "cortex-m: no test summary found (the tests did not run)"
    status=1
else
    echo "cortex-m: $summary"
fi
if [ "$tests_status" -ne 0 ]; then
    echo "cortex-m: cargo test failed (exit $tests_status)"
    status=1
fi
if [ "$example_status" -ne 0 ]; then
    echo "cortex-m: the example failed (exit $example_status)"
    status=1
fi
if [ -n "$example_text" ] && [ "$example_text" -gt 65536 ]; then
    echo "cortex-m: .text of the example is $example_text B, over the 64 KiB budget"
    status=1
fi
exit "$status"
