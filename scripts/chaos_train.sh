#!/usr/bin/env bash
# chaos_train.sh [KILLS]: distillation under faults, on the smoke config (configs/smoke.toml, all
# three stages, the committed tiny fixtures) with every stage's token budget times STRETCH (16), a
# few seconds per run, checkpoints every 2-4 steps.
#
#   1. an uninterrupted reference run;
#   2. the same run SIGKILLed at KILLS (default 30) random moments (checkpoint writes included: the
#      smoke stages checkpoint every 2-4 steps) and resumed after each kill; then run to the end;
#   3. the same run on a full disk (a tmpfs too small for its checkpoints; needs root, else it is
#      skipped): it must stop
#      with an error that says so, and its last complete checkpoint, copied off the full disk, must
#      resume to the end;
#   and in each case the final student and metrics.jsonl (without its timings) must equal the
#   reference's. Prints one line per check and exits non-zero if any fails.
#
# Settings (environment): ARWKV (build/arwkv), SEED (random delays; default 1), TMPFS_KB (1500),
# STRETCH (16).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
arwkv=$(realpath "${ARWKV:-$repo/build/arwkv}")
kills=${1:-30}
RANDOM=${SEED:-1}
tmpfs_kb=${TMPFS_KB:-1500}
work=$(mktemp -d)
config=$work/chaos.toml
awk -v k="${STRETCH:-16}" '$1 == "tokens" { $3 = $3 * k } { print }' "$repo/configs/smoke.toml" > "$config"
full=$work/full
cleanup() {
  mountpoint -q "$full" 2>/dev/null && umount "$full"
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
bash "$repo/configs/smoke/make_smoke.sh" "$arwkv" > make.log 2>&1
failed=0
check() {  # check NAME OUT: OUT's final student and metrics equal the reference's
  local same=yes
  cmp -s "$2/sft/model.safetensors" ref/sft/model.safetensors || same=no
  python3 - "$2/metrics.jsonl" ref/metrics.jsonl <<'EOF' || same=no
import json, sys
def records(path):
    out = []
    for line in open(path):
        j = json.loads(line)
        j.pop("tokens_per_s", None)
        j.pop("seconds", None)
        out.append(j)
    return out
sys.exit(0 if records(sys.argv[1]) == records(sys.argv[2]) else 1)
EOF
  echo "chaos: $1: final student and metrics equal the uninterrupted run's: $same"
  [[ $same == yes ]] || failed=1
}

"$arwkv" distill "$config" --out ref > ref.log 2>&1

# Kills at random moments: a delay of 0-600 ms after each start (a run takes a few seconds; each
# start resumes from the last checkpoint), so kills land in loading, steps, validation and
# checkpoint writes.
done_kills=0 finished_early=0 partial_seen=0 kills_since_start=0
while ((done_kills < kills)); do
  "$arwkv" distill "$config" --out chaos >> chaos.log 2>&1 &
  pid=$!
  sleep "0.$(printf '%03d' $((RANDOM % 600)))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    done_kills=$((done_kills + 1)) kills_since_start=$((kills_since_start + 1))
    compgen -G "chaos/checkpoints/.tmp-*" > /dev/null && partial_seen=$((partial_seen + 1))
  else
    wait "$pid" || { echo "chaos: a resumed run failed (chaos.log)"; exit 1; }
    finished_early=$((finished_early + 1))
    rm -rf chaos chaos.log  # it got to the end before the kill: start over so that later kills still land
    kills_since_start=0
  fi
done
"$arwkv" distill "$config" --out chaos >> chaos.log 2>&1
resumes=$(grep -c "resuming at step" chaos.log || true)
echo "chaos: $done_kills kills ($partial_seen left a half-written checkpoint behind); $finished_early runs finished before their kill and were started over"
echo "chaos: the last run: $kills_since_start kills, $resumes resumes from a checkpoint"
check "killed $kills_since_start times and resumed" chaos

# A full disk.
mkdir -p "$full"
if [[ $(id -u) -ne 0 ]] || ! mount -t tmpfs -o "size=${tmpfs_kb}k" tmpfs "$full" 2> /dev/null; then
  echo "chaos: full disk: skipped (this user cannot mount a tmpfs)"
else
  if "$arwkv" distill "$config" --out "$full/run" > full.log 2>&1; then
    echo "chaos: full disk: the run did not fail on a ${tmpfs_kb} KiB disk"
    failed=1
  else
    echo "chaos: full disk: $(grep -m1 'error' full.log)"
    grep -q "No space left on device" full.log || { echo "chaos: full disk: the error does not say the disk is full"; failed=1; }
    cp -r "$full/run" resumed
    umount "$full"
    "$arwkv" distill "$config" --out resumed > resumed.log 2>&1
    echo "chaos: full disk: resumed on another disk: $(grep -m1 'resuming at step' resumed.log || echo 'from the start')"
    check "after a full disk" resumed
  fi
fi
exit $failed
