#!/usr/bin/env bash
# Checks arwkv serve with real clients on loopback: the official openai client (completions, chat,
# streamed chat), lm-eval's local-completions on a 20-question multiple-choice task made from local
# files, a bounded load test (concurrent clients for a fixed time; no failures, RSS reported), and
# the hostile load test (tools/check_server/hostile_load.py: normal clients beside 200 slow
# connections, malformed requests and streams hung up; no failures, p99 within 2x of theirs alone).
# HOSTILE_ONLY=1 runs only that one, with the system python3 (it needs no packages).
#
# Usage: scripts/check_server.sh [MODEL] [ARWKV]
#   MODEL default models/SmolLM2-135M-Instruct.Q4_1.gguf; ARWKV default build/arwkv.
#   Environment: PYTHON (a venv with openai, lm-eval, requests; default /tmp/venv/py/bin/python),
#   CLIENTS (32), DURATION (60), MAX_TOKENS (16), PORT (0 = any free port), HOSTILE_SECONDS (30
#   per phase).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
ARWKV=${2:-build/arwkv}
PYTHON=${PYTHON:-/tmp/venv/py/bin/python}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-60}
MAX_TOKENS=${MAX_TOKENS:-16}
WORK=$(mktemp -d)
trap 'kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT

"$ARWKV" serve -m "$MODEL" --host 127.0.0.1 --port "${PORT:-0}" --parallel 4 --max-queue "$((CLIENTS + 8))" \
  --ctx 2048 > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
  grep -q "http://" "$WORK/server.log" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log"; exit 1; }
  sleep 0.1
done
ADDR=$(grep -o 'http://[0-9.]*:[0-9]*' "$WORK/server.log" | head -1)
echo "== server at $ADDR (pid $SERVER_PID)"

hostile() {
  echo "== hostile load: 4 normal clients, then the same beside 200 slow connections, malformed requests, streams hung up"
  python3 tools/check_server/hostile_load.py "${ADDR#http://}" --seconds "${HOSTILE_SECONDS:-30}"
}
if [[ ${HOSTILE_ONLY:-0} == 1 ]]; then
  hostile
  exit
fi
NAME=$(curl -s "$ADDR/v1/models" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')

echo "== openai client"
"$PYTHON" tools/check_server/openai_client.py "$ADDR/v1"

echo "== lm-eval local-completions, 20 multiple-choice questions"
"$PYTHON" tools/check_server/make_mc_task.py "$WORK/tasks"
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 "$PYTHON" -m lm_eval --model local-completions \
  --model_args "model=$NAME,base_url=$ADDR/v1/completions,num_concurrent=4,tokenizer_backend=remote,tokenized_requests=True,max_retries=1" \
  --include_path "$WORK/tasks" --tasks arwkv_mc --output_path "$WORK/lm_eval" 2>&1 | tr "\r" "\n" | grep -v -E "it/s\]|^\s*$" | tail -6

echo "== load test: $CLIENTS clients, $DURATION s"
"$PYTHON" tools/check_server/load_test.py "$ADDR/v1" "$SERVER_PID" --clients "$CLIENTS" --seconds "$DURATION" \
  --max-tokens "$MAX_TOKENS"
hostile
echo "== server metrics"
curl -s "$ADDR/metrics"; echo
