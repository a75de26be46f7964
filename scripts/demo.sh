#!/usr/bin/env bash
# The main job on the default teacher: install, fetch SmolLM2-135M-Instruct, build, then talk to it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch_models.sh
scripts/build.sh
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
build/arwkv info "$model"
echo
echo "== arwkv generate (greedy)"
build/arwkv generate -m "$model" -p "The capital of France is" -n 24 --temperature 0
echo
echo "== arwkv chat (two turns from stdin)"
printf 'What is the capital of France?\nAnd of Italy?\n' | build/arwkv chat -m "$model" -n 48 --temperature 0
