#!/usr/bin/env bash
# The main job on the default teacher, at a small budget: install, fetch SmolLM2-135M-Instruct,
# build, make the Debian corpus, convert the teacher into an ARWKV student, distill it (align on the
# corpus, then align on the teacher's own chat replies; configs/smollm2-demo.toml, about 14 minutes
# on 2 cores with the corpus), evaluate it against the teacher before and after each stage, and
# chat with teacher and students side by side (runs/demo/report.md).
# configs/smollm2.toml is the full run (about 45 minutes of training): scripts/distill.sh configs/smollm2.toml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch_models.sh
scripts/build.sh
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
build/arwkv info "$model"
echo
echo "== the teacher (greedy)"
build/arwkv generate -m "$model" -p "The capital of France is" -n 16 --temperature 0
echo
EVAL_TOKENS=${EVAL_TOKENS:-4088} CHAT_TOKENS=${CHAT_TOKENS:-32} scripts/distill.sh configs/smollm2-demo.toml
