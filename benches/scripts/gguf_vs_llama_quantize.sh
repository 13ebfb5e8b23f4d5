#!/usr/bin/env bash
# ArrowQuant's GGUF output against llama-quantize on the same F16 GGUF, same run, same
# machine: wall time and peak RSS (/usr/bin/time) for Q4_K and Q8_0 on 1 and 2 threads,
# `llama-quantize --pure IN OUT TYPE N` (no mixes, no importance matrix) against
# `arrowquant quantize IN --format gguf --gguf-type TYPE --threads N`. Each pair runs
# RUNS times (default 3) alternating, the output removed before each run; the medians
# are printed as a Markdown table with the machine.
#
# Usage: benches/scripts/gguf_vs_llama_quantize.sh [DIR] [LAYERS]
#   DIR     where the model and outputs go (default /tmp/arrowquant-gguf); the model is
#           DIR/synthetic-LAYERSl.gguf from gen_synthetic (LAYERS default 8: 3.2 GB)
#   LLAMA_BIN=dir  llama.cpp's bin folder (default: what get_llama_cpp.sh builds with
#                  TOOLS=1 in ~/.cache/arrowquant)
#   TYPES="Q4_K Q8_0"  THREADS="1 2"  RUNS=3  EFFORT=fast
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/arrowquant-gguf}
layers=${2:-8}
runs=${RUNS:-3}
llama=${LLAMA_BIN:-$HOME/.cache/arrowquant/llama-build-0.3.36/bin}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$dir"
[[ -x "$llama/llama-quantize" ]] || { echo "no $llama/llama-quantize: run TOOLS=1 benches/scripts/get_llama_cpp.sh" >&2; exit 2; }
cargo build --release -q --workspace --bin arrowquant --example gen_synthetic
aq="$CARGO_TARGET_DIR/release/arrowquant"
model="$dir/synthetic-${layers}l.gguf"
[[ -f "$model" ]] || "$CARGO_TARGET_DIR/release/examples/gen_synthetic" "$model" "$layers" 7
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
flags=$(grep -m1 -o -w -E 'avx512f|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "# $(date -u +%F), $cpu ($flags), $(nproc) cores, model $(du -h "$model" | cut -f1) ($layers layers, F16)"

measure() { # label out cmd... -> prints "label wall_s rss_mib"
    local label=$1 out=$2; shift 2
    rm -f "$out"
    sync
    /usr/bin/time -f "%e %M" -o "$dir/time.txt" "$@" >/dev/null 2>"$dir/err.txt" || { cat "$dir/err.txt" >&2; exit 1; }
    read -r wall kib <"$dir/time.txt"
    echo "$label $wall $((kib / 1024))"
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

results="$dir/results.txt"
: >"$results"
for ty in ${TYPES:-Q4_K Q8_0}; do
    for th in ${THREADS:-1 2}; do
        for _ in $(seq "$runs"); do
            measure "llama-quantize $ty $th" "$dir/llama.gguf" \
                "$llama/llama-quantize" --pure "$model" "$dir/llama.gguf" "$ty" "$th" >>"$results"
            measure "arrowquant $ty $th" "$dir/aq.gguf" \
                "$aq" quantize "$model" --format gguf --gguf-type "$ty" --gguf-effort "${EFFORT:-fast}" \
                --threads "$th" -o "$dir/aq.gguf" -q >>"$results"
        done
    done
done
weights=$(python3 - "$model" <<'PY'
import struct, sys
# Weights: exact through the gguf package when python3 has it, else the F16 data
# bytes estimated from the file size (the header is a few KB).
try:
    import gguf
    r = gguf.GGUFReader(sys.argv[1])
    print(sum(int(t.n_elements) for t in r.tensors))
except Exception:
    import os
    print(os.path.getsize(sys.argv[1]) // 2)
PY
)
echo
echo "| tool | type | threads | wall s (median of $runs) | M weights/s | peak RSS MiB (median) |"
echo "|---|---|---|---|---|---|"
for ty in ${TYPES:-Q4_K Q8_0}; do
    for th in ${THREADS:-1 2}; do
        for tool in llama-quantize arrowquant; do
            w=$(awk -v t="$tool" -v y="$ty" -v n="$th" '$1==t && $2==y && $3==n {print $4}' "$results" | median)
            r=$(awk -v t="$tool" -v y="$ty" -v n="$th" '$1==t && $2==y && $3==n {print $5}' "$results" | median)
            echo "| $tool | $ty | $th | $w | $(awk -v n="$weights" -v s="$w" 'BEGIN {printf "%.1f", n / s / 1e6}') | $r |"
        done
    done
done
