#!/usr/bin/env bash
# Makes what configs/smoke.toml reads, from committed files only, under ROOT/runs/ (default: the
# working directory): smoke-teacher (tests/data/teacher/qwen2_tiny with the 300-token tokenizer of
# this directory beside it), smoke-student (`arwkv convert --init transfer` of it), smoke-data (the
# text documents of text.jsonl) and smoke-chat (the chats of chat.jsonl, for the sft stage).
#   usage: configs/smoke/make_smoke.sh ARWKV_BINARY [ROOT]
# Then, from ROOT: ARWKV_BINARY distill REPO/configs/smoke.toml
set -euo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 ARWKV_BINARY [ROOT]" >&2
  exit 2
fi
arwkv=$(realpath "$1")
root=${2:-.}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fixture="$here/../../tests/data/teacher/qwen2_tiny"
runs="$root/runs"

mkdir -p "$runs"
rm -rf "$runs/smoke-teacher" "$runs/smoke-student" "$runs/smoke-data" "$runs/smoke-chat"
mkdir "$runs/smoke-teacher"
cp "$fixture/config.json" "$fixture/generation_config.json" "$fixture/model.safetensors" "$runs/smoke-teacher/"
cp "$here/tokenizer.json" "$here/tokenizer_config.json" "$runs/smoke-teacher/"

"$arwkv" convert --teacher "$runs/smoke-teacher" --out "$runs/smoke-student" --init transfer > /dev/null
"$arwkv" data --tokenizer "$runs/smoke-teacher" --out "$runs/smoke-data" --val-fraction 0.15 --threads 1 \
  "$here/text.jsonl" > /dev/null
"$arwkv" data --tokenizer "$runs/smoke-teacher" --out "$runs/smoke-chat" --val-fraction 0.15 --threads 1 \
  "$here/chat.jsonl" > /dev/null
echo "smoke fixtures in $runs: smoke-teacher smoke-student smoke-data smoke-chat"
