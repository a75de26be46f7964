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
# (extra llama-bench arguments), NO_BUILD (set: use the bench_teacher already built), OUT_DIR
# (keep the raw JSON results there), MAX_BUSY and IDLE_WAIT_S (before each repetition, wait up to
# IDLE_WAIT_S seconds for the other programs to use at most MAX_BUSY percent of the CPUs). Needs jq.
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

if [[ -z ${NO_BUILD:-} ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARWKV_BUILD_TESTS=OFF \
    -DARWKV_BUILD_BENCH=ON >/dev/null
  cmake --build "$build" --target bench_teacher -j2 >&2
fi

llama_args=(-m "$model" -t "$threads" -r 1 ${LLAMA_BENCH_ARGS:-} -o json)
ours_args=(--model="$model" --threads="$threads" --n_gen="$n_gen" --benchmark_format=json)
# Share of all CPU time that other programs used over the last second, in percent.
busy_percent() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local total=0 idle=$(((b[4] + b[5]) - (a[4] + a[5])))
  for k in 1 2 3 4 5 6 7 8; do total=$((total + b[k] - a[k])); done
  echo $((100 - 100 * idle / (total > 0 ? total : 1)))
}
# Waits (at most IDLE_WAIT_S seconds, default 300) until the others leave the CPUs nearly idle.
wait_for_idle() {
  local waited=0 busy
  while busy=$(busy_percent) && ((busy > ${MAX_BUSY:-15} && waited < ${IDLE_WAIT_S:-300})); do
    sleep 4; waited=$((waited + 5))
  done
  ((busy <= ${MAX_BUSY:-15})) || echo "vs_llamacpp: machine still ${busy}% busy, measuring anyway" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# One repetition of each program in turn, so that both see the same changes in the machine's load.
for ((i = 1; i <= reps; i++)); do
  wait_for_idle
  echo "vs_llamacpp: repetition $i/$reps" >&2
  "$llama_bench" "${llama_args[@]}" -p 128,1024 -n 0 >"$work/llama_pp_$i.json" 2>>"$work/llama.log"
  "$llama_bench" "${llama_args[@]}" -p 0 -n "$n_gen" -d 128,1024 >"$work/llama_tg_$i.json" 2>>"$work/llama.log"
  "$build/bench/bench_teacher" "${ours_args[@]}" >"$work/ours_$i.json" 2>>"$work/ours.log"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ -n ${OUT_DIR:-} ]]; then mkdir -p "$OUT_DIR" && cp "$work"/*.json "$OUT_DIR"/; fi

# "median best" of a JSON array of samples. The machine is shared: a repetition that another
# program disturbed is slow, so the median and the best say more than a mean would.
stats='sort | (length / 2 | floor) as $h
  | (if length % 2 == 1 then .[$h] else (.[$h - 1] + .[$h]) / 2 end) as $median
  | "\($median) \(max)"'
llama() {  # n_prompt n_gen n_depth
  jq -rs --argjson p "$1" --argjson g "$2" --argjson d "$3" \
    "[.[][] | select(.n_prompt == \$p and .n_gen == \$g and .n_depth == \$d) | .avg_ts] | $stats" \
    "$work"/llama_*.json
}
ours() {  # benchmark name
  jq -rs --arg n "$1" \
    "[.[].benchmarks[] | select((.run_name | sub(\"/real_time$\"; \"\")) == \$n) | .tokens_per_second]
     | $stats" "$work"/ours_*.json
}
row() {  # label "llama_median llama_best" "ours_median ours_best"
  read -r lm lb <<<"$2"
  read -r om ob <<<"$3"
  awk -v label="$1" -v lm="$lm" -v lb="$lb" -v om="$om" -v ob="$ob" 'BEGIN {
    printf "| %s | %.1f (%.1f) | %.1f (%.1f) | %.2f (%.2f) |\n", label, lm, lb, om, ob, om / lm, ob / lb }'
}

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
commit=$(jq -r '.[0].build_commit' "$work/llama_pp_1.json")
echo
echo "SmolLM2-135M-Instruct, F32 weights (KV cache: llama.cpp f16, arwkv fp32); $threads threads on $cpu;"
echo "llama.cpp $commit (llama-cpp-python 0.3.16 vendor copy); $reps repetitions each, interleaved;"
echo "load average before: $load_before, after: $load_after."
echo
echo "| test | llama.cpp tokens/s median (best) | arwkv tokens/s median (best) | arwkv / llama.cpp |"
echo "|---|---:|---:|---:|"
row "prefill T=128" "$(llama 128 0 0)" "$(ours prefill/T:128)"
row "prefill T=1024" "$(llama 1024 0 0)" "$(ours prefill/T:1024)"
row "decode ctx=128 ($n_gen tokens)" "$(llama 0 "$n_gen" 128)" "$(ours decode/ctx:128)"
row "decode ctx=1024 ($n_gen tokens)" "$(llama 0 "$n_gen" 1024)" "$(ours decode/ctx:1024)"
