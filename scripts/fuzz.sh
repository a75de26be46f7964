#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang (ASan + UBSan) into build-fuzz/ and runs them.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...] [LIBFUZZER_OPTION...]
#
# SECONDS (default 60) is each target's time; TARGETs (gguf, safetensors, ..., or fuzz_gguf) pick
# some (default: all); options starting with '-' go to libFuzzer, e.g. -runs=10000000 to run a
# number of inputs instead of a time (then SECONDS is ignored), or -jobs/-workers. Each target
# starts from its seeds (test fixtures, fuzz/seeds/, seeds the target writes, fuzz/regressions/)
# and keeps what it learns in build-fuzz/corpus/TARGET. A finding (crash, leak, undefined
# behaviour, timeout, out of memory) is saved in build-fuzz/findings/TARGET/; the script prints
# every target's executions and findings and exits 1 when there is one.
# ARWKV_FUZZ_NICE (default 0) is the niceness the targets run at.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=60
targets=()
options=()
for arg in "$@"; do
  case "$arg" in
    -*) options+=("$arg") ;;
    *[!0-9]*) targets+=("fuzz_${arg#fuzz_}") ;;
    *) seconds=$arg ;;
  esac
done

# clang, its fuzzer runtime and libomp; then what every build needs and the default teacher, whose
# tokenizer the tokenizing targets use.
if ! command -v clang++ > /dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a > /dev/null 2>&1 ||
   ! ls /usr/lib/llvm-*/lib/libomp.so > /dev/null 2>&1; then
  echo "fuzz: installing clang, libclang-rt-dev and libomp-dev"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends clang libclang-rt-dev libomp-dev
fi
scripts/setup.sh
scripts/fetch_models.sh

build=build-fuzz
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DARWKV_FUZZ=ON -DARWKV_BUILD_TESTS=OFF -DARWKV_BUILD_BENCH=OFF \
    -DARWKV_CUDA=OFF > "$build.configure.log" 2>&1 || { cat "$build.configure.log"; exit 1; }
fi
cmake --build "$build" -j "$(nproc)" --target fuzz_all

if ((${#targets[@]} == 0)); then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

# The committed fixtures each target starts from (fuzz/seeds/NAME and fuzz/regressions/NAME too).
seeds_of() {
  local d=tests/data
  case "$1" in
    fuzz_gguf) echo $d/formats/quant_types.gguf $d/teacher/*/model-q8_0.gguf ;;
    fuzz_safetensors) echo $d/formats/py_safetensors.safetensors $d/teacher/llama_tiny/model.safetensors \
                           $d/student/gate_llama/model.safetensors ;;
    fuzz_tokenizer_json) echo $d/tokenizer/tiny_tokenizer.json ;;
    fuzz_tokenize) echo $d/tokenizer/*_goldens.json ;;
    fuzz_hf_config) echo $d/teacher/*/config.json $d/student/*/config.json $d/student_grad/*/config.json ;;
    fuzz_train_config) git ls-files 'configs/*.toml' 'configs/**/*.toml' ;;
  esac
}
# Longest input per target: long enough for the seeds' structure, short enough to stay fast.
max_len_of() {
  case "$1" in
    fuzz_state_file) echo 81920 ;;
    fuzz_gguf | fuzz_safetensors | fuzz_tokenizer_json | fuzz_dataset) echo 8192 ;;
    fuzz_tokenize) echo 1024 ;;
    *) echo 4096 ;;
  esac
}

status=0
summary=()
for t in "${targets[@]}"; do
  bin=$build/fuzz/$t
  [ -x "$bin" ] || { echo "fuzz: no target $t (fuzz/*.cpp: $(ls fuzz/fuzz_*.cpp | xargs -n1 basename | tr '\n' ' '))" >&2; exit 2; }
  name=${t#fuzz_}
  corpus=$build/corpus/$name
  seeds=$build/seeds/$name
  findings=$build/findings/$name
  rm -rf "$seeds" "$findings"
  mkdir -p "$corpus" "$seeds" "$findings"
  for f in $(seeds_of "$t") fuzz/seeds/"$name"/* fuzz/regressions/"$name"/*; do
    [ -f "$f" ] && cp "$f" "$seeds/$(echo "$f" | tr '/' '_')"
  done
  ARWKV_FUZZ_WRITE_SEEDS=$seeds "$bin" -runs=0 > /dev/null 2>&1 || true  # only targets that generate seeds write any
  [ "$name" = tokenize ] && for f in "$seeds"/*_goldens.json; do  # each mode byte in front of the goldens
    for m in 0 1 2 3 4 5; do { printf "\\x$m"; cat "$f"; } > "$f.$m"; done
    rm "$f"
  done
  dict=()
  [ -f "fuzz/dicts/$name.dict" ] && dict=(-dict="fuzz/dicts/$name.dict")
  limit=(-max_total_time="$seconds")
  for o in "${options[@]}"; do [[ "$o" == -runs=* ]] && limit=(); done
  log=$findings/../$name.log
  echo "fuzz: $t ${limit[*]} ${options[*]}"
  start=$(date +%s)
  rc=0
  nice -n "${ARWKV_FUZZ_NICE:-0}" "$bin" "${limit[@]}" -max_len="$(max_len_of "$t")" -timeout=30 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$findings/" "${dict[@]}" "${options[@]}" "$corpus" "$seeds" > "$log" 2>&1 || rc=$?
  elapsed=$(( $(date +%s) - start ))
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | awk '{s += $2} END {print s + 0}')
  found=$(find "$findings" -type f | wc -l)
  if ((rc != 0 || found > 0)); then
    status=1
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$log" | head -5 || true
    summary+=("$(printf '%-24s %12s executions %6ss  FOUND (exit %s): %s' "$t" "$execs" "$elapsed" "$rc" "$(ls "$findings" | head -3 | tr '\n' ' ')")")
  else
    summary+=("$(printf '%-24s %12s executions %6ss  nothing found' "$t" "$execs" "$elapsed")")
  fi
done
echo
printf '%s\n' "${summary[@]}"
((status == 0)) || echo "fuzz: findings above; the inputs are in $build/findings/, the logs in $build/findings/*.log"
exit $status
