#!/usr/bin/env bash
# Runs the quantizer inside a hard 2 GiB memory limit that counts page cache
# (cgroup v1 memory controller), with the model evicted from the page cache first so
# that reading it is charged to the group. Needs root. Prints the group's peak usage,
# its limit-hit count and the process's peak RSS; removes the group afterwards.
# Usage: benches/scripts/cgroup_2g.sh MODEL.safetensors [driver options...]
# Env: FEATURES=rayon to build with rayon (for --threads N).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$1; shift
limit=${LIMIT:-2147483648}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p arrowquant-std --example quantize ${FEATURES:+--features $FEATURES}
bin="$CARGO_TARGET_DIR/release/examples/quantize"
out=${OUT:-${TMPDIR:-/tmp}/arrowquant-cgroup.parquet}
cg=/sys/fs/cgroup/memory/arrowquant-2g-$$
if [[ ! -d /sys/fs/cgroup/memory ]]; then
    echo "no cgroup v1 memory controller at /sys/fs/cgroup/memory" >&2; exit 2
fi
mkdir "$cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo "$limit" > "$cg/memory.limit_in_bytes"
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)" "$model"
# Start without an output of an earlier run: replacing a multi-GB file by rename
# frees its blocks inside the timed run, which is not the cost of quantizing.
rm -f "$out"
status=0
sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec /usr/bin/time -f "peak_rss_KiB=%M wall_s=%e" "$@"' _ "$cg" \
    "$bin" "$model" "$out" "$@" >/tmp/arrowquant-cgroup-report.json || status=$?
echo "exit_status=$status limit_bytes=$(cat $cg/memory.limit_in_bytes) group_max_usage_bytes=$(cat $cg/memory.max_usage_in_bytes) limit_hits=$(cat $cg/memory.failcnt) oom_kills=$(grep -c . <(grep oom_kill $cg/memory.oom_control | awk '$2>0'))"
python3 -c "import json; r=json.loads(open('/tmp/arrowquant-cgroup-report.json').readline()); print(f\"throughput_MB_s={r['throughput_mb_s']:.0f} time_s={r['time_s']:.1f} output_MB={r['output_bytes']/1e6:.0f}\")" || true
exit $status
