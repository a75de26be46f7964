#!/usr/bin/env bash
# ablate.sh [CONFIG...]: the recipe ablations of docs/recipe.md on the default teacher. Makes the
# three initial students (transfer, calibrated transfer, silent arwkv), scores them on the tuning
# text (build-corpus/dev.txt, never the held-out files), runs each ablation config (default: all of
# configs/ablations, align before kd, the kd rows start from align-calibrated) and prints every
# validation point (the corpus's val split) as one table.
# Settings (environment): ARWKV (build/arwkv), CALIBRATE_TOKENS (8192), DEV_TOKENS (4096).
set -euo pipefail
cd "$(dirname "$0")/.."
arwkv=${ARWKV:-build/arwkv}
teacher=models/SmolLM2-135M-Instruct.Q4_1.gguf
data=build-corpus/data
dev=build-corpus/dev.txt
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
[[ -d $data && -f $dev ]] || scripts/make_corpus.sh
mkdir -p runs/ablate

make_student() {  # make_student NAME INIT [CALIBRATE...]
  local s=runs/ablate/student-$1
  if [[ ! -f $s/config.json ]]; then
    "$arwkv" convert --teacher "$teacher" --out "$s" --init "$2" "${@:3}"
  fi
  if [[ ! -f runs/ablate/init-$1.json ]]; then
    "$arwkv" eval -m "$s" --teacher "$teacher" --text "$dev" --max-tokens "${DEV_TOKENS:-4096}" \
      --json runs/ablate/init-$1.json.tmp
    mv runs/ablate/init-$1.json.tmp runs/ablate/init-$1.json
  fi
}
make_student transfer transfer
make_student calibrated transfer --calibrate "$data" --calibrate-tokens "${CALIBRATE_TOKENS:-8192}"
make_student arwkv arwkv

configs=("$@")
[[ ${#configs[@]} -gt 0 ]] || configs=(configs/ablations/align-*.toml configs/ablations/kd-*.toml)
for c in "${configs[@]}"; do
  name=$(basename "$c" .toml)
  if [[ ! -f runs/ablate/$name/done ]]; then
    "$arwkv" distill "$c"
    touch "runs/ablate/$name/done"
  fi
done

echo "| initial student | ppl (dev) | mean KL | top-1 |"
echo "|---|---:|---:|---:|"
for s in transfer calibrated arwkv; do
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(f"| {sys.argv[2]} | {d[\"perplexity\"]:.4g} | {d[\"mean_kl\"]:.2f} | {d[\"top1_agreement\"]:.3f} |")' \
    runs/ablate/init-$s.json $s
done
echo
echo "| run | step | tokens | val KL | val top-1 |"
echo "|---|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
  name=$(basename "$c" .toml)
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r.get("type") == "val": print(f"| {sys.argv[2]} | {r[\"step\"]} | {r[\"tokens\"]} | {r[\"kl\"]:.3f} | {r[\"top1\"]:.3f} |")' \
    "runs/ablate/$name/metrics.jsonl" "$name"
done
