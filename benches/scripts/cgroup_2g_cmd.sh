#!/usr/bin/env bash
# Runs any command inside a hard 2 GiB memory limit that counts page cache (cgroup v1
# memory controller), after evicting INPUT (a file, or every file of a folder) from the
# page cache so that reading it is charged to the group. Needs root. Prints the
# command's exit status, the group's peak usage, limit hits, OOM kills and the
# process's peak RSS and wall time; removes the group afterwards. cgroup_2g.sh is the
# same for the `quantize` example on one model file; this one runs any command and evicts every file of a folder, e.g. for issue 18's
# conversion of the 7B-shaped Hugging Face folder:
#   benches/scripts/cgroup_2g_cmd.sh DIR/synthetic-7b-hf \
#       target/release/arrowquant quantize DIR/synthetic-7b-hf --format gguf --gguf-type Q4_K -o OUT.gguf -q
# Env: LIMIT (bytes, default 2147483648).
set -euo pipefail
input=$1; shift
limit=${LIMIT:-2147483648}
cg=/sys/fs/cgroup/memory/arrowquant-2g-cmd-$$
[[ -d /sys/fs/cgroup/memory ]] || { echo "no cgroup v1 memory controller at /sys/fs/cgroup/memory" >&2; exit 2; }
mkdir "$cg"
trap 'rmdir "$cg" 2>/dev/null || true' EXIT
echo "$limit" >"$cg/memory.limit_in_bytes"
python3 - "$input" <<'PY'
import os, sys
p = sys.argv[1]
files = [os.path.join(p, f) for f in os.listdir(p)] if os.path.isdir(p) else [p]
for f in files:
    if os.path.isfile(f):
        fd = os.open(f, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
PY
status=0
sh -c 'echo $$ > "$1/cgroup.procs"; shift; exec /usr/bin/time -f "peak_rss_KiB=%M wall_s=%e" "$@"' _ "$cg" "$@" || status=$?
echo "exit_status=$status limit_bytes=$(cat "$cg/memory.limit_in_bytes") group_max_usage_bytes=$(cat "$cg/memory.max_usage_in_bytes") limit_hits=$(cat "$cg/memory.failcnt") oom_kills=$(awk '$1=="oom_kill"{print $2}' "$cg/memory.oom_control")"
exit $status
