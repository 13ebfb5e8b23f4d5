#!/usr/bin/env bash
# Cargo runner for the thumbv7em-none-eabihf ELFs of this crate (see .cargo/config.toml).
#
# Boots the ELF on QEMU's mps2-an386 board (Cortex-M4F) with semihosting, decodes the
# defmt frames with defmt-print, then prints a closing `N passed, N failed` line counted
# from defmt-test's output ("(k/n) running `name`..." per test, "all tests passed!" at
# the end; the first failing test ends the run) for test binaries (`target/.../deps/`).
# Exits with QEMU's status: the
# firmware's semihosting exit code, or 124 if it hung past $QEMU_TIMEOUT seconds.
set -uo pipefail

elf="$1"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

timeout "${QEMU_TIMEOUT:-120}" qemu-system-arm \
    -cpu cortex-m4 -machine mps2-an386 \
    -nographic -monitor none -serial none \
    -semihosting-config enable=on,target=native \
    -kernel "$elf" |
    defmt-print -e "$elf" | tee "$log"
status=("${PIPESTATUS[@]}")
qemu="${status[0]}"
decode="${status[1]}"

case "$elf" in
*/deps/*) ;; # a test binary: count its tests below
*) exit "$qemu" ;; # `cargo run` of an example: its exit status is the result
esac

started=$(grep -cE '\([0-9]+/[0-9]+\) running' "$log" || true)
total=$(grep -oE '\([0-9]+/[0-9]+\) running' "$log" | tail -n 1 | sed -E 's#^\([0-9]+/([0-9]+)\).*#\1#')
total="${total:-0}"
if [ "$qemu" -eq 0 ] && [ "$decode" -eq 0 ] && grep -q 'all tests passed!' "$log"; then
    passed="$started"
    failed=0
else
    # The test that was running when the firmware stopped failed; the rest never ran.
    passed=$((started > 0 ? started - 1 : 0))
    failed=1
    echo "qemu exit status $qemu, defmt-print exit status $decode; $((total - started)) test(s) not run"
fi
echo "$passed passed, $failed failed"

if [ "$qemu" -ne 0 ]; then exit "$qemu"; fi
if [ "$decode" -ne 0 ]; then exit "$decode"; fi
exit "$failed"
