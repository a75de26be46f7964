#!/usr/bin/env bash
# Data-parallel training speed and memory, in one command: each config (default the SmolLM2 align
# and kd configs of configs/parallel/) runs as one process with RANKS threads and under mpirun as
# RANKS ranks of one thread each, from fresh output directories, and a Markdown table compares
# them: training tokens/s (from the metrics, over the steps after the first), the ranks' ratio to
# the one process, the bytes rank 0 sent per step, the optimiser moments rank 0 holds, and the peak
# resident memory of each process (/usr/bin/time).
#
# Usage: bench/data_parallel.sh [CONFIG...]
# Environment: RANKS (default: the number of cores), OUT (default build/data-parallel), ARWKV
# (default build/arwkv), MPIRUN (default mpirun).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
ranks=${RANKS:-$(nproc)}
out=${OUT:-build/data-parallel}
arwkv=$(realpath "${ARWKV:-build/arwkv}")
mpirun=${MPIRUN:-mpirun}
configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(configs/parallel/smollm2-align.toml configs/parallel/smollm2-kd.toml)
command -v "$mpirun" > /dev/null || { echo "data_parallel: no $mpirun (Debian: openmpi-bin)" >&2; exit 1; }
mpi_args=(--oversubscribe -np "$ranks")
[[ $(id -u) -eq 0 ]] && mpi_args+=(--allow-run-as-root)
mkdir -p "$out"

echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(nproc) cores;" \
  "load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| config | layout | tokens/s | / one process | sent per step (rank 0) | optimiser moments (rank 0) | peak RSS MiB per process | wall s |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"

# tokens/s over the steps after the first, MB sent per step (rank 0), from metrics.jsonl.
summarise() {
  python3 - "$1" << 'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
train = [r for r in recs if r["type"] == "train"]
a, b = train[0], train[-1]
tps = (b["tokens"] - a["tokens"]) / max(b["seconds"] - a["seconds"], 1e-9)
sent = [r.get("comm_bytes", 0) for r in train]
print(f"{tps:.1f} {sum(sent) / len(sent) / 1e6:.1f}")
EOF
}

for config in "${configs[@]}"; do
  [[ -f $config ]] || { echo "data_parallel: no config $config" >&2; exit 1; }
  name=$(basename "$config" .toml)
  one_tps=""
  for layout in one ranks; do
    run_out="$out/$name-$layout"
    rm -rf "$run_out"
    mkdir -p "$run_out"
    t0=$(date +%s.%N)
    if [[ $layout == one ]]; then
      OMP_NUM_THREADS=$ranks /usr/bin/time -f %M -o "$run_out/rss.0" \
        "$arwkv" distill "$config" --out "$run_out" > "$run_out/log" 2>&1 ||
        { cat "$run_out/log" >&2; exit 1; }
      label="1 process x $ranks threads"
    else
      OMP_NUM_THREADS=1 "$mpirun" "${mpi_args[@]}" -x OMP_NUM_THREADS sh -c \
        "exec /usr/bin/time -f %M -o '$run_out/rss.'\$OMPI_COMM_WORLD_RANK '$arwkv' distill '$config' --out '$run_out'" \
        > "$run_out/log" 2>&1 || { cat "$run_out/log" >&2; exit 1; }
      label="$ranks ranks x 1 thread"
    fi
    wall=$(echo "$(date +%s.%N) - $t0" | bc)
    read -r tps mb <<< "$(summarise "$run_out/metrics.jsonl")"
    [[ -n $one_tps ]] || one_tps=$tps
    ratio=$(echo "scale=3; $tps / $one_tps" | bc)
    moments=$(grep -o 'optimiser moments: [0-9.]* MiB on rank 0' "$run_out/log" | grep -o '[0-9.]* MiB')
    rss=$(for f in "$run_out"/rss.*; do echo $(($(tail -1 "$f") / 1024)); done | paste -sd/ -)
    echo "| $name | $label | $tps | $ratio | $mb MB | $moments | $rss | $(printf %.0f "$wall") |"
  done
done
