#!/usr/bin/env bash
# Builds tools/check_llamacpp/llama_logits against the static llama.cpp that scripts/build_llamacpp.sh
# builds (its pinned llama-cpp-python 0.3.16 source). Prints the program's path.
# Environment: ARWKV_LLAMACPP_DIR (default <repo>/build-llamacpp), JOBS (default 2).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${ARWKV_LLAMACPP_DIR:-$repo/build-llamacpp}
src=$cache/llama_cpp_python-0.3.16/vendor/llama.cpp
build=$cache/build
out=$cache/check/llama_logits
if [[ ! -f $build/build.ninja ]]; then
  "$repo/scripts/build_llamacpp.sh" >/dev/null
fi
nice cmake --build "$build" --target llama ggml -j"${JOBS:-2}" >&2
mkdir -p "$(dirname "$out")"
if [[ ! -x $out || $0 -nt $out || $repo/tools/check_llamacpp/llama_logits.cpp -nt $out ]]; then
  g++ -O2 -std=c++17 "$repo/tools/check_llamacpp/llama_logits.cpp" -I"$src/include" -I"$src/ggml/include" \
    "$build/src/libllama.a" "$build/ggml/src/libggml.a" "$build/ggml/src/libggml-cpu.a" \
    "$build/ggml/src/libggml-base.a" -fopenmp -lpthread -ldl -lm -o "$out"
fi
echo "$out"
