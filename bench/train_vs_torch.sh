#!/usr/bin/env bash
# Training tokens/s on the CPU, arwkv vs PyTorch, in one command (SPEC §7): builds bench_train
# (Release, in its own build directory) and runs it, then bench/torch_train.py (transformers
# teacher + a PyTorch student written from SPEC §3, autograd backward) with the same thread count
# and shapes, and prints both tables and the ratios arwkv / PyTorch for the align and kd steps.
# Both time forward + backward of the step with the frozen teacher's forward included and the
# optimiser step excluded, median of REPS after one warm-up.
#
# Environment: TEACHER (default models/SmolLM2-135M-Instruct.Q4_1.gguf), BUILD_DIR (build-bench),
# THREADS (nproc), BATCH (4), SEQ_LEN (256), REPS (3), PYTHON (a Python with torch and
# transformers; default /tmp/venv/py/bin/python), NO_BUILD (set: use what is built).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${BUILD_DIR:-build-bench}
teacher=${TEACHER:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
threads=${THREADS:-$(nproc)}
batch=${BATCH:-4}
seq_len=${SEQ_LEN:-256}
reps=${REPS:-3}
python=${PYTHON:-/tmp/venv/py/bin/python}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

[[ -f $teacher ]] || { echo "train_vs_torch: no teacher at $teacher (scripts/fetch_models.sh)" >&2; exit 1; }
"$python" -c "import torch, transformers" 2>/dev/null ||
  { echo "train_vs_torch: $python lacks torch or transformers (pip install torch transformers)" >&2; exit 1; }
if [[ -z ${NO_BUILD:-} ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARWKV_BUILD_TESTS=OFF -DARWKV_BUILD_BENCH=ON >/dev/null
  nice cmake --build "$build" --target bench_train -j2 >&2
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "## Training steps on the CPU: arwkv vs PyTorch"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);" \
  "$threads threads on $cpu ($(nproc) cores); load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "### arwkv (bench_train)"
ours=$(OMP_NUM_THREADS=$threads "$build/bench/bench_train" --teacher="$teacher" --batch="$batch" \
  --seq-len="$seq_len" --reps="$reps")
echo "$ours"
echo
echo "### PyTorch (bench/torch_train.py)"
theirs=$(OMP_NUM_THREADS=$threads "$python" bench/torch_train.py --threads "$threads" --batch "$batch" \
  --seq-len "$seq_len" --reps "$reps")
echo "$theirs"
echo
echo "### arwkv / PyTorch"
echo
echo "| B | T | align step | kd step |"
echo "|---|---|---|---|"
# Rows of both tables: | B | T | tokens | teacher | align | kd |
join -j1 <(echo "$ours" | awk -F'|' '$2 ~ /^ *[0-9]/ { gsub(/ /, ""); print $2 "x" $3, $6, $7 }' | sort) \
         <(echo "$theirs" | awk -F'|' '$2 ~ /^ *[0-9]/ { gsub(/ /, ""); print $2 "x" $3, $6, $7 }' | sort) |
  awk '{ split($1, bt, "x"); printf "| %s | %s | %.2fx | %.2fx |\n", bt[1], bt[2], $2 / $4, $3 / $5 }'
