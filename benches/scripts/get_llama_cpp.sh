#!/usr/bin/env bash
# Gets llama.cpp from the PyPI sdist of llama-cpp-python 0.3.36 (it vendors the whole
# tree under vendor/llama.cpp) into a cache folder and builds what our measurements
# compare against: libggml-base.so (ggml's own quantizers and decoders, used by
# benches/scripts/ggml_quality.py through GGML_LIB) and, with TOOLS=1, llama-quantize,
# llama-perplexity, llama-embedding, llama-tokenize and llama-gguf.
#
# Usage: benches/scripts/get_llama_cpp.sh [CACHE_DIR]     (default: ~/.cache/arrowquant)
#   TOOLS=1   also build the five tools (10-15 minutes on 2 cores)
# Needs: python3 with pip, cmake, a C/C++ compiler. Prints the library path last.
#
# AVX2/FMA/F16C are set explicitly and GGML_NATIVE is off: some of our VMs advertise
# AMX and AVX-512 but fault on AMX instructions (SIGILL) in a native build.
set -euo pipefail
cache="${1:-$HOME/.cache/arrowquant}"
version=0.3.36
src="$cache/llama_cpp_python-$version/vendor/llama.cpp"
build="$cache/llama-build-$version"
mkdir -p "$cache"
if [ ! -d "$src" ]; then
  # --no-binary for this package only: its build dependencies may come as wheels.
  python3 -m pip download --no-deps --no-binary llama-cpp-python "llama-cpp-python==$version" -d "$cache"
  tar -xzf "$cache/llama_cpp_python-$version.tar.gz" -C "$cache"
fi
# Examples on: llama-embedding and llama-gguf live under examples/. Configuring only
# generates build files; the targets below are all that is compiled. Re-run every time
# (a few seconds) so a cache configured by an older version of this script is updated.
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON \
  -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=ON -DLLAMA_BUILD_SERVER=OFF >/dev/null
targets=(ggml-base)
if [ "${TOOLS:-0}" = 1 ]; then
  targets+=(llama-quantize llama-perplexity llama-embedding llama-tokenize llama-gguf)
fi
cmake --build "$build" -j "$(nproc)" --target "${targets[@]}"
echo "GGML_LIB=$build/bin/libggml-base.so"
