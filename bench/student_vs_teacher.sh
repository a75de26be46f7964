#!/usr/bin/env bash
# Student vs teacher on the CPU, in one command: builds bench_student and bench_memory (Release, in
# their own build directory), converts the teacher into a student checkpoint when there is none yet
# (inside the git-ignored build directory), then runs both and prints their Markdown tables:
#   bench_student  decode tokens/s at contexts 128 / 1K / 4K / 16K and prefill tokens/s, student and
#                  teacher interleaved in one process, with the ratio student / teacher and the
#                  size of each state;
#   bench_memory   peak resident memory (VmHWM) of a process holding 1K / 8K / 32K tokens of
#                  context, one fresh process per measurement.
# The student is converted with `arwkv convert` (transfer init, fp32): its weights are untrained,
# which changes nothing about its speed or memory. How each state is filled is printed with the
# results (the teacher's long KV caches are written with random values, not prefilled).
#
# Environment: TEACHER (default models/SmolLM2-135M-Instruct.Q4_1.gguf, from scripts/fetch_models.sh),
# BUILD_DIR (default build-svt), STUDENT (default $BUILD_DIR/student), THREADS (default: nproc),
# OMP_WAIT_POLICY (default: passive when the 1-minute load average is at least half the cores,
# since OpenMP spin-waits against other jobs cost up to 5x; active otherwise), NO_BUILD (set: use
# the programs already built), SPEED_ARGS / MEMORY_ARGS (extra arguments of each program, e.g.
# SPEED_ARGS="--reps=5 --contexts=128,4096").
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
build=${BUILD_DIR:-build-svt}
teacher=${TEACHER:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
student=${STUDENT:-$build/student}
threads=${THREADS:-$(nproc)}

[[ -f $teacher ]] || { echo "student_vs_teacher: no teacher at $teacher (scripts/fetch_models.sh fetches it)" >&2; exit 1; }

if [[ -z ${OMP_WAIT_POLICY:-} ]]; then
  OMP_WAIT_POLICY=$(awk -v n="$(nproc)" '{ print ($1 >= n / 2 ? "passive" : "active") }' /proc/loadavg)
fi
export OMP_WAIT_POLICY

if [[ -z ${NO_BUILD:-} ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DARWKV_BUILD_TESTS=OFF -DARWKV_BUILD_BENCH=ON >/dev/null
  nice cmake --build "$build" --target arwkv bench_student bench_memory -j2 >&2
fi

if [[ ! -f $student/config.json ]]; then
  echo "student_vs_teacher: converting $teacher into $student" >&2
  nice "$build/arwkv" convert --teacher "$teacher" --out "$student" >&2
fi

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "## Student vs teacher on the CPU"
echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);" \
  "$threads threads on $cpu ($(nproc) cores); OMP_WAIT_POLICY=$OMP_WAIT_POLICY;" \
  "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "Teacher: $teacher (dequantized to fp32 on load). Student: $student (arwkv convert, untrained)."

# shellcheck disable=SC2086  # the *_ARGS are word lists on purpose
nice "$build/bench/bench_student" --teacher="$teacher" --student="$student" --threads="$threads" ${SPEED_ARGS:-}
echo
# shellcheck disable=SC2086
nice "$build/bench/bench_memory" --teacher="$teacher" --student="$student" --threads="$threads" ${MEMORY_ARGS:-}
