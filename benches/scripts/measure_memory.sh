#!/usr/bin/env bash
# Quantizes a model with the adapter's example driver under /usr/bin/time -v and
# prints peak RSS (maximum resident set size, file-backed pages included) and
# throughput. Extra arguments go to the driver (e.g. --threads 2, --max-memory 128M).
# Usage: benches/scripts/measure_memory.sh MODEL.safetensors [driver options...]
# Env: FEATURES=rayon to build with rayon; OUT=path of the Parquet output;
#      COLD=1 to evict the model from the page cache first (posix_fadvise DONTNEED).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=$1; shift
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p arrowquant-std --example quantize ${FEATURES:+--features $FEATURES}
bin="$CARGO_TARGET_DIR/release/examples/quantize"
out=${OUT:-${TMPDIR:-/tmp}/arrowquant-measure.parquet}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [[ ${COLD:-0} == 1 ]]; then
    python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)" "$model"
fi
# Start without an output of an earlier run: replacing a multi-GB file by rename
# frees its blocks inside the timed run, which is not the cost of quantizing.
rm -f "$out"
/usr/bin/time -v "$bin" "$model" "$out" "$@" >"$tmp/report.json" 2>"$tmp/time.txt" || { cat "$tmp/time.txt"; exit 1; }
rss_kib=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt")
python3 - "$tmp/report.json" "$rss_kib" "$model" "$*" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).readline())
rss = int(sys.argv[2]) / 1024
print(f"model={sys.argv[3]} args='{sys.argv[4]}' input_GB={r['input_bytes']/1e9:.2f} "
      f"peak_rss_MiB={rss:.1f} time_s={r['time_s']:.1f} throughput_MB_s={r['throughput_mb_s']:.0f} "
      f"threads={r['threads']} bpw={r['bits_per_weight']:.3f} cosine_min={r['cosine_min']:.4f} "
      f"fallbacks={r['fallback_tensors']} output_MB={r['output_bytes']/1e6:.0f}")
PY
