#!/usr/bin/env bash
# Teacher speed against llama.cpp, in one command: llama-bench and bench_teacher run one after the
# other on the same F32 GGUF (SmolLM2-135M-Instruct dequantized by llama-quantize), with the same
# thread count, and a Markdown table of tokens/s and the ratio ours / llama.cpp is printed.
#
#   prefill T     llama-bench pp<T>           bench_teacher prefill/T:<T>
#   decode ctx D  llama-bench tg<N> @ d<D>    bench_teacher decode/ctx:<D>
# Decode is N one-token steps into a KV cache that already holds D tokens (not timed), on both.
# llama.cpp keeps its KV cache in f16 (llama-bench of this version offers no f32 cache), ours in
# fp32; weights and activations are F32 on both.
#
# Environment: THREADS (default: nproc), REPS (repetitions of each case, default 5), N_GEN (decode
# tokens per repetition, default 32), BUILD_DIR (our build, default build-bench), MODEL (default
# models/SmolLM2-135M-Instruct.F32.gguf, made by scripts/build_llamacpp.sh), LLAMA_BENCH_ARGS
# (extra llama-bench arguments). Needs jq.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
threads=${THREADS:-$(nproc)}
reps=${REPS:-5}
n_gen=${N_GEN:-32}
build=${BUILD_DIR:-build-bench}
llama_bench=${ARWKV_LLAMACPP_DIR:-$repo/build-llamacpp}/build/bin/llama-bench
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

model=${MODEL:-}
if [[ -z $model ]]; then model=$(scripts/build_llamacpp.sh); fi
[[ -f $model ]] || { echo "vs_llamacpp: no model at $model" >&2; exit 1; }

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARWKV_BUILD_TESTS=OFF \
  -DARWKV_BUILD_BENCH=ON >/dev/null
cmake --build "$build" --target bench_teacher -j2 >&2

llama_args=(-m "$model" -t "$threads" -r "$reps" ${LLAMA_BENCH_ARGS:-} -o json)
echo "vs_llamacpp: llama-bench prefill" >&2
"$llama_bench" "${llama_args[@]}" -p 128,1024 -n 0 >"$work/llama_pp.json" 2>"$work/llama.log"
echo "vs_llamacpp: llama-bench decode" >&2
"$llama_bench" "${llama_args[@]}" -p 0 -n "$n_gen" -d 128,1024 >"$work/llama_tg.json" 2>>"$work/llama.log"
echo "vs_llamacpp: bench_teacher" >&2
"$build/bench/bench_teacher" --model="$model" --threads="$threads" --n_gen="$n_gen" \
  --benchmark_repetitions="$reps" --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$work/ours.json"

# llama.cpp's mean and stddev of tokens/s for one case.
llama() {  # file n_prompt n_gen n_depth
  jq -r --argjson p "$2" --argjson g "$3" --argjson d "$4" \
    '.[] | select(.n_prompt == $p and .n_gen == $g and .n_depth == $d)
     | "\(.avg_ts) \(.stddev_ts)"' "$work/$1"
}
# Ours, from Google Benchmark's mean and stddev aggregates.
ours() {  # benchmark name
  jq -r --arg n "$1" '[.benchmarks[] | select(.run_name == $n)] as $r
     | "\($r[] | select(.aggregate_name == "mean") | .tokens_per_second)
        \($r[] | select(.aggregate_name == "stddev") | .tokens_per_second)"' "$work/ours.json" | tr '\n' ' '
}
row() {  # label "llama_mean llama_sd" "ours_mean ours_sd"
  read -r lm ls <<<"$2"
  read -r om os <<<"$3"
  awk -v label="$1" -v lm="$lm" -v ls="$ls" -v om="$om" -v os="$os" 'BEGIN {
    printf "| %s | %.1f ± %.1f | %.1f ± %.1f | %.2f |\n", label, lm, ls, om, os, om / lm }'
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
commit=$(jq -r '.[0].build_commit' "$work/llama_pp.json")
echo
echo "SmolLM2-135M-Instruct, F32 weights (KV cache: llama.cpp f16, arwkv fp32); $threads threads on $cpu;"
echo "llama.cpp $commit (llama-cpp-python 0.3.16 vendor copy); $reps repetitions, mean ± stddev."
echo
echo "| test | llama.cpp tokens/s | arwkv tokens/s | arwkv / llama.cpp |"
echo "|---|---:|---:|---:|"
row "prefill T=128" "$(llama llama_pp.json 128 0 0)" "$(ours prefill/T:128)"
row "prefill T=1024" "$(llama llama_pp.json 1024 0 0)" "$(ours prefill/T:1024)"
row "decode ctx=128 ($n_gen tokens)" "$(llama llama_tg.json 0 "$n_gen" 128)" "$(ours decode/ctx:128)"
row "decode ctx=1024 ($n_gen tokens)" "$(llama llama_tg.json 0 "$n_gen" 1024)" "$(ours decode/ctx:1024)"
