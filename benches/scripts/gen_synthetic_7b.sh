#!/usr/bin/env bash
# Writes the synthetic 7B-shaped fp16 models used by docs/MEMORY.md, streaming
# (the generator holds one 2 MiB buffer, whatever the size):
#   DIR/synthetic-7b.safetensors  32 layers, 13.2 GB
#   DIR/synthetic-1g.safetensors   2 layers,  1.07 GB (same shapes, fewer layers)
# and, with `hf` or `hf-small`, a Hugging Face folder for the GGUF converter (issue 18):
#   DIR/synthetic-7b-hf/  model.safetensors (32 layers + model.norm + lm_head, 13.5 GB),
#                         config.json, tokenizer.json (vocab 32000; needs $PYTHON with
#                         numpy and tokenizers, default python3)
#   DIR/synthetic-2l-hf/  the same with 2 layers (1.33 GB)
# Usage: benches/scripts/gen_synthetic_7b.sh [DIR] [full|small|both|hf|hf-small]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-/tmp/arrowquant-synthetic}
which=${2:-both}
mkdir -p "$dir"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cargo build --release -q -p arrowquant-std --example gen_synthetic
gen="$CARGO_TARGET_DIR/release/examples/gen_synthetic"
if [[ $which == small || $which == both ]]; then
    /usr/bin/time -f "small: %e s, max RSS %M KiB" "$gen" "$dir/synthetic-1g.safetensors" 2 7
fi
if [[ $which == full || $which == both ]]; then
    /usr/bin/time -f "full: %e s, max RSS %M KiB" "$gen" "$dir/synthetic-7b.safetensors" 32 7
fi
for mode in hf hf-small; do
    [[ $which == "$mode" ]] || continue
    layers=32; name=synthetic-7b-hf
    [[ $mode == hf-small ]] && { layers=2; name=synthetic-2l-hf; }
    /usr/bin/time -f "$mode: %e s, max RSS %M KiB" "$gen" "$dir/$name/" "$layers" 7
    "${PYTHON:-python3}" "$root/tests/python/tiny_models.py" --hf7b "$dir/$name" --layers "$layers"
    ls -l "$dir/$name"
done
ls -l "$dir"
