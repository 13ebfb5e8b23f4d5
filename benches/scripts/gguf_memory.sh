#!/usr/bin/env bash
# Peak RSS of `arrowquant quantize X.gguf --format gguf` from a 1 GB to a 13.5 GB
# 7B-shaped F16 GGUF (gen_synthetic: 2, 8 and 32 layers), with 1 and 2 threads, then
# the 32-layer run inside a hard 2 GiB cgroup that counts page cache (cgroup_2g_cmd.sh,
# needs root; the model is evicted from the page cache first). Issue #17's memory
# targets: peak RSS under 256 MiB and flat (within 10%) across sizes.
#
# Usage: benches/scripts/gguf_memory.sh [DIR]   (default /tmp/arrowquant-gguf; needs
#        about 22 GB free there)
#   TYPE=Q4_K  LAYERS="2 8 32"  THREADS="1 2"  CGROUP_THREADS="2"  CGROUP=1 (0: no cgroup run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/arrowquant-gguf}
ty=${TYPE:-Q4_K}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$dir"
cargo build --release -q --workspace --bin arrowquant --example gen_synthetic
aq="$CARGO_TARGET_DIR/release/arrowquant"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "# $(date -u +%F), $cpu, $(nproc) cores, $ty, effort fast"
echo
echo "| model | F16 GB | threads | wall s | peak RSS MiB |"
echo "|---|---|---|---|---|"
for layers in ${LAYERS:-2 8 32}; do
    model="$dir/synthetic-${layers}l.gguf"
    [[ -f "$model" ]] || "$CARGO_TARGET_DIR/release/examples/gen_synthetic" "$model" "$layers" 7 >/dev/null 2>&1
    gb=$(awk -v b="$(stat -c %s "$model")" 'BEGIN {printf "%.2f", b / 1e9}')
    for th in ${THREADS:-1 2}; do
        rm -f "$dir/out.gguf"
        /usr/bin/time -f "%e %M" -o "$dir/time.txt" \
            "$aq" quantize "$model" --format gguf --gguf-type "$ty" --threads "$th" -o "$dir/out.gguf" -q >/dev/null
        read -r wall kib <"$dir/time.txt"
        echo "| ${layers} layers | $gb | $th | $wall | $((kib / 1024)) |"
    done
done
rm -f "$dir/out.gguf"
if [[ ${CGROUP:-1} == 1 ]]; then
    big="$dir/synthetic-$(echo ${LAYERS:-2 8 32} | awk '{print $NF}')l.gguf"
    for th in ${CGROUP_THREADS:-2}; do
        echo
        echo "2 GiB cgroup, $th thread(s), $big:"
        "$root/benches/scripts/cgroup_2g_cmd.sh" "$big" \
            "$aq" quantize "$big" --format gguf --gguf-type "$ty" --threads "$th" -o "$dir/cgroup.gguf" -q
        rm -f "$dir/cgroup.gguf"
    done
fi
