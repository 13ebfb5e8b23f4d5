#!/usr/bin/env bash
# End-to-end throughput against the core kernel, per codec (issue 4): for each preset,
#   kernel  = `kernel_throughput` (in memory, one thread, the codec's encode alone and
#             with the decode-and-compare every tensor gets), and
#   e2e     = `measure_memory.sh` on MODEL from a warm page cache with 1 and with 2
#             threads (the rayon feature),
# and prints one table line per preset with the ratios e2e/kernel and 2-thread/1-thread.
# Usage: benches/scripts/e2e_vs_kernel.sh MODEL.safetensors [PRESET ...]
#   PRESET: `default` (the local profile: INT4 g128 min-max) or a preset name
#   (int2, int4, int8, ...); default list: default int4 int8.
# Env: RUNS=N end-to-end runs per setting (median; default 1).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$1
shift
presets=("$@")
[[ ${#presets[@]} -gt 0 ]] || presets=(default int4 int8)
runs=${RUNS:-1}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p arrowquant-std --features rayon --example kernel_throughput --example quantize
kt="$CARGO_TARGET_DIR/release/examples/kernel_throughput"

# Warm the page cache once: every run below reads the model from memory.
cat "$model" >/dev/null

median_e2e() { # threads, preset args... -> median MB/s
    local threads=$1
    shift
    local v=()
    for _ in $(seq "$runs"); do
        # Each run's line goes to stderr as well (not with `tee /dev/stderr`, which
        # would truncate a stderr redirected to a file).
        local line
        line=$(FEATURES=rayon "$root/benches/scripts/measure_memory.sh" "$model" --threads "$threads" "$@")
        echo "$line" >&2
        v+=("$(sed -n 's/.*throughput_MB_s=\([0-9]*\).*/\1/p' <<<"$line")")
    done
    printf '%s\n' "${v[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

printf '%-8s %12s %14s %10s %10s %12s %12s %10s\n' preset encode_MB_s enc+qual_MB_s e2e_1t e2e_2t e2e1/encode e2e2/encode 2t/1t
for p in "${presets[@]}"; do
    args=()
    [[ $p == default ]] || args=(--preset "$p")
    k=$("$kt" --mib 256 "${args[@]}")
    enc=$(sed -n 's/.*encode_MB_s=\([0-9]*\).*/\1/p' <<<"$k")
    encq=$(sed -n 's/.*stream+quality_MB_s=\([0-9]*\).*/\1/p' <<<"$k")
    e1=$(median_e2e 1 "${args[@]}")
    e2=$(median_e2e 2 "${args[@]}")
    awk -v p="$p" -v enc="$enc" -v encq="$encq" -v e1="$e1" -v e2="$e2" 'BEGIN {
        printf "%-8s %12d %14d %10d %10d %12.2f %12.2f %10.2f\n", p, enc, encq, e1, e2, e1 / enc, e2 / enc, e2 / e1 }'
done
