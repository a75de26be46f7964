#!/usr/bin/env bash
# End-to-end check of `arwkv export` against llama.cpp itself (SPEC §5):
#   1. builds llama.cpp (scripts/build_llamacpp.sh, pinned llama-cpp-python 0.3.16 source) and
#      tools/check_llamacpp/llama_logits, and arwkv with the slow export test;
#   2. runs tests/slow/test_export_llamacpp: SmolLM2-135M → `convert` (transfer init, ranks
#      64/64/32/128) → every time-mix parameter perturbed → export f32/f16/q8_0 → llama.cpp's logits
#      on four prompts against arwkv's, llama.cpp's tokenization against ours, and the `export --to hf`
#      directory converted by llama.cpp's convert_hf_to_gguf.py against our direct export; a gated
#      student and one with group norm and no gate;
#   3. the same round trip through the command line, and both files read back by the `gguf` Python
#      package (tools/check_llamacpp/compare_gguf.py: every key with its type, every tensor; the
#      converter's file must hold the same tensors and values as ours).
# Environment: BUILD (arwkv build dir, default build-export), PY (default /tmp/venv/py/bin/python),
# JOBS (default 2).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$repo/build-export}
py=${PY:-/tmp/venv/py/bin/python}
vendor=$repo/build-llamacpp/llama_cpp_python-0.3.16/vendor/llama.cpp
work=$(mktemp -d /tmp/arwkv_check_export.XXXXXX)
trap 'rm -rf "$work"' EXIT

tool=$("$repo/tools/check_llamacpp/build.sh")
echo "llama_logits: $tool"
[[ -f $build/build.ninja ]] || cmake -S "$repo" -B "$build" -G Ninja -DARWKV_BUILD_BENCH=OFF >/dev/null
nice cmake --build "$build" --target arwkv test_export test_export_llamacpp -j"${JOBS:-2}"

"$build/tests/test_export"
ARWKV_PYTHON=$py "$build/tests/test_export_llamacpp"

arwkv=$build/arwkv
"$arwkv" convert --teacher "$repo/models/SmolLM2-135M-Instruct.Q4_1.gguf" --out "$work/student" \
  --lora-ranks 64,64,32,128 >/dev/null
"$arwkv" export -m "$work/student" --to gguf "$work/student.gguf"
"$arwkv" export -m "$work/student" --to hf "$work/hf"
PYTHONPATH=$vendor/gguf-py:$repo/tools/check_llamacpp/stubs "$py" "$vendor/convert_hf_to_gguf.py" "$work/hf" \
  --outtype f32 --outfile "$work/converted.gguf" >"$work/convert.log" 2>&1
PYTHONPATH=$vendor/gguf-py "$py" "$repo/tools/check_llamacpp/compare_gguf.py" "$work/student.gguf" \
  "$work/converted.gguf" | grep -v '^tensor blk\.'
echo 'generate through the exported GGUF read back:'
"$arwkv" export -m "$work/student.gguf" --to hf "$work/back" >/dev/null
"$arwkv" generate -m "$work/back" -p "The capital of France is" -n 8 --temperature 0
echo "check_export: all checks passed"
