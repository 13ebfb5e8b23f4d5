#!/usr/bin/env bash
# Every issue-4 figure of docs/MEMORY.md in one run, in this order: end to end against
# the kernel (default codec RUNS=3, the int4/int8/int2 presets once), peak RSS on the
# 1 GB model (3 runs) and the 13.2 GB one, the kernel_throughput floors, and the 2 GiB
# cgroup runs with 1 and 2 threads (needs root). Takes about 20 minutes on 2 cores.
# Usage: benches/scripts/measure_issue4.sh [DIR]   (DIR from gen_synthetic_7b.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/arrowquant-synthetic}
s="$root/benches/scripts"
big="$dir/synthetic-7b.safetensors"
small="$dir/synthetic-1g.safetensors"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p arrowquant-std --features rayon --example kernel_throughput --example quantize
echo "== $(date -u +%F) $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
echo "== end to end against the kernel"
RUNS=3 "$s/e2e_vs_kernel.sh" "$big" default
RUNS=1 "$s/e2e_vs_kernel.sh" "$big" int4 int8 int2
echo "== peak RSS: 1 GB model x3, 13.2 GB model x1 (default settings, 1 thread, warm)"
for _ in 1 2 3; do FEATURES=rayon "$s/measure_memory.sh" "$small" --threads 1; done
FEATURES=rayon "$s/measure_memory.sh" "$big" --threads 1
echo "== floors"
"$CARGO_TARGET_DIR/release/examples/kernel_throughput" --mib 256 --model "$big"
echo "== 2 GiB cgroup, 1 thread"
FEATURES=rayon "$s/cgroup_2g.sh" "$big" --threads 1
echo "== 2 GiB cgroup, 2 threads"
FEATURES=rayon "$s/cgroup_2g.sh" "$big" --threads 2
