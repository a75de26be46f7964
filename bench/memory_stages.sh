#!/usr/bin/env bash
# Peak resident memory of distillation stages, in one command: runs each config given (default the
# Qwen2.5-0.5B align and kd configs of configs/memory/) as it is and with variants of its stage
# keys, each in a fresh process under /usr/bin/time, and prints a Markdown table: peak RSS, the
# ratio to the first variant, the last step's tokens/s and the wall time. A variant is a list of
# key=value pairs replacing (or adding) keys of every [[stage]] table, written into a copy of the
# config under $OUT; the run's out directory is moved there too.
#
# Usage: bench/memory_stages.sh [CONFIG...]
# Environment: VARIANTS (';'-separated; default: 'frozen_dtype="f32";frozen_dtype="bf16"'),
# OUT (default build/memory-stages), ARWKV (default build/arwkv).
# The configs name their student and data; configs/memory/qwen05-align.toml says how to make them.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
out=${OUT:-build/memory-stages}
arwkv=${ARWKV:-build/arwkv}
IFS=';' read -r -a variants <<< "${VARIANTS:-frozen_dtype=\"f32\";frozen_dtype=\"bf16\"}"
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(configs/memory/qwen05-align.toml configs/memory/qwen05-kd.toml)
[[ -x $arwkv ]] || { echo "memory_stages: no $arwkv (scripts/build.sh builds it)" >&2; exit 1; }
mkdir -p "$out"

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores;" \
  "avx512_bf16: $(grep -q avx512_bf16 /proc/cpuinfo && echo yes || echo no); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| config | variant | peak RSS MiB | / first | tokens/s (last step) | wall s |"
echo "|---|---|---:|---:|---:|---:|"
for config in "${configs[@]}"; do
  [[ -f $config ]] || { echo "memory_stages: no config $config" >&2; exit 1; }
  name=$(basename "$config" .toml)
  first=""
  i=0
  for variant in "${variants[@]}"; do
    i=$((i + 1))
    copy="$out/$name-$i.toml"
    run_out="$out/$name-$i"
    rm -rf "$run_out"
    # [run] out moves under $OUT; each key=value of the variant replaces or joins every stage table.
    awk -v out="$run_out" -v variant="$variant" '
      BEGIN { n = split(variant, kv, ","); }
      function flush() { if (in_stage) for (j = 1; j <= n; j++) if (!(j in seen)) print kv[j]; delete seen }
      /^\[\[stage\]\]/ { flush(); in_stage = 1; print; next }
      /^\[/ { flush(); in_stage = 0; print; next }
      /^out *=/ { print "out = \"" out "\""; next }
      {
        if (in_stage) for (j = 1; j <= n; j++) { split(kv[j], p, "="); key = p[1]; gsub(/ /, "", key)
          if ($0 ~ "^" key " *=") { print kv[j]; seen[j] = 1; next } }
        print
      }
      END { flush() }' "$config" > "$copy"
    log="$run_out.log"
    /usr/bin/time -f '%M %e' -o "$run_out.time" "$arwkv" distill "$copy" > "$log" 2>&1 ||
      { echo "memory_stages: $copy failed; see $log" >&2; tail -5 "$log" >&2; exit 1; }
    read -r kib wall < "$run_out.time"
    mib=$((kib / 1024))
    [[ -n $first ]] || first=$mib
    tps=$(grep '"type":"train"' "$run_out/metrics.jsonl" | tail -1 | sed 's/.*"tokens_per_s":\([0-9.]*\).*/\1/')
    printf '| %s | %s | %d | %.2f | %.0f | %.0f |\n' "$name" "$variant" "$mib" "$(echo "$mib / $first" | bc -l)" \
      "$tps" "$wall"
  done
done
