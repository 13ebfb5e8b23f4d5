#!/usr/bin/env bash
# Builds every fuzz target once, then runs each for TARGET_SECONDS (default 60), one
# after the other, at low priority. Usage: tests/fuzz/run.sh [TARGET_SECONDS]
#   TARGETS="decode_blocks stream_quantize" tests/fuzz/run.sh 600   # a subset
#   NO_STD_ADAPTER=1 tests/fuzz/run.sh 60   # only the core targets (no std-adapter feature)
#   NO_BUILD=1 ...                          # run the binaries already built
#   SANITIZER=none ...                      # cargo fuzz's --sanitizer (default: address)
#   FUZZ_TARGET_DIR=/tmp/t ...              # where to build (default: target/std-adapter,
#                                           # or target with NO_STD_ADAPTER)
#   FUZZ_PROFILE=dev ...                    # cargo fuzz build --dev (the fuzz workspace's
#                                           # dev profile, opt-level 1: builds in about half
#                                           # the time; CI's 30-second smoke runs use it)
#   PARALLEL=2 ...                          # run this many targets at a time
# The binaries are run directly (not through `cargo fuzz run`), so sources edited while
# the targets run do not trigger rebuilds between them. Logs go to
# tests/fuzz/logs/<target>.log; the corpus grows in tests/fuzz/corpus/<target> (seeded
# from tests/fuzz/seeds/<target> when present); crashes land in
# tests/fuzz/artifacts/<target>/. Exits non-zero if a build fails or a target crashes.
set -euo pipefail
secs="${1:-60}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

core_targets=(decode_blocks stream_quantize device_reader gguf_header)
std_targets=(safetensors_header sharded_index parquet_reader)
# The std-adapter build gets its own target dir, so the two feature sets never wait on
# each other's build lock nor rebuild each other's artefacts.
triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
if [[ -n "${NO_STD_ADAPTER:-}" ]]; then
    dir="${FUZZ_TARGET_DIR:-target}"
    build=()
    all=("${core_targets[@]}")
else
    dir="${FUZZ_TARGET_DIR:-target/std-adapter}"
    build=(--features std-adapter)
    all=("${core_targets[@]}" "${std_targets[@]}")
fi
build+=(--target-dir "$dir" --sanitizer "${SANITIZER:-address}")
if [[ ${FUZZ_PROFILE:-release} == dev ]]; then
    build+=(--dev)
    bin_dir="$dir/$triple/debug"
else
    bin_dir="$dir/$triple/release"
fi
read -r -a targets <<<"${TARGETS:-${all[*]}}"

if [[ -z "${NO_BUILD:-}" ]]; then
    # One build for every target (they share every dependency).
    build_start=$(date +%s)
    nice -n 10 cargo +nightly fuzz build --fuzz-dir . "${build[@]}"
    echo "fuzz build (${build[*]}): $(($(date +%s) - build_start)) s"
fi

mkdir -p logs
status=0
# Every input that once crashed a target is replayed first (regressions/<target>/).
for t in "${targets[@]}"; do
    if [[ -d "regressions/$t" ]] && ! "$bin_dir/$t" regressions/"$t"/* >"logs/$t.regressions.log" 2>&1; then
        echo "$t: a regression input fails, see logs/$t.regressions.log"
        status=1
    fi
done
# One target: libFuzzer for `secs` seconds; writes its exit status to logs/<target>.rc.
fuzz_one() {
    local t=$1 seeds=()
    mkdir -p "corpus/$t" "artifacts/$t"
    [[ -d "seeds/$t" ]] && seeds=("seeds/$t")
    set +e
    nice -n 10 "$bin_dir/$t" -artifact_prefix="artifacts/$t/" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=30 -print_final_stats=1 "corpus/$t" "${seeds[@]}" >"logs/$t.log" 2>&1
    echo $? >"logs/$t.rc"
    set -e
}
# Targets run PARALLEL at a time; results are printed in order once all have run.
parallel=${PARALLEL:-1}
running=0
for t in "${targets[@]}"; do
    fuzz_one "$t" &
    running=$((running + 1))
    if ((running >= parallel)); then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
printf '%-20s %8s %12s %s\n' target seconds execs result
for t in "${targets[@]}"; do
    log="logs/$t.log"
    rc=$(cat "logs/$t.rc")
    # `|| true`: after a crash there is no `Done` line, and a failed grep must not end
    # the script (set -e, pipefail) before the other targets are reported.
    execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
    ran=$(grep -ao 'Done [0-9]* runs in [0-9]* second' "$log" | grep -o 'in [0-9]*' | grep -o '[0-9]*' | tail -1 || true)
    if [[ $rc -eq 0 ]]; then
        result=ok
    else
        result="CRASH (exit $rc, see $log and artifacts/$t/)"
        status=1
    fi
    printf '%-20s %8s %12s %s\n' "$t" "${ran:-?}" "${execs:-?}" "$result"
done
exit $status
