#!/usr/bin/env bash
# distill.sh CONFIG.toml: the whole ARWKV pipeline on the default teacher, measured.
#
#   1. the Debian corpus (scripts/make_corpus.sh) unless its data directory exists, and for a stage
#      whose data directory is named teacher-chat (or teacher-chat-prose: the same chats with the
#      corpus files of configs/chat-prose-files.txt) and does not exist yet, the teacher's replies to
#      the first CHAT_PROMPTS prompts of build-corpus/prompts.txt (arwkv chatgen, sampled, seed 1,
#      CHAT_REPLY_TOKENS tokens at most, CHAT_WORKERS processes) tokenized into it;
#   2. the student of the config's [run] student, converted from its teacher (--init transfer,
#      its output scales calibrated on CALIBRATE_TOKENS tokens of the data) unless it exists;
#   3. held-out evaluation of the untrained student: teacher and student perplexity, mean KL and
#      top-1 agreement (arwkv eval --teacher), on EVAL_TOKENS tokens in windows of 512 spread evenly
#      over the held-out file (eval --spread: the file is many documents of several sources);
#   4. arwkv distill CONFIG (resumes if interrupted);
#   5. the same evaluation after every stage, and the same chat prompts through the teacher and
#      every student;
#   6. OUT/report.md: the table, the answers side by side, and OUT/curves.png.
#
# Settings (environment): ARWKV (build/arwkv), EVAL_TOKENS (8192), EVAL_TEXT
# (build-corpus/heldout.txt), CHAT_TOKENS (48), INIT (transfer), BACKEND (cpu: where evaluation and
# chat run; training runs where the config's [run] backend says), CALIBRATE_TOKENS (4096; 0: no
# calibration), CHAT_PROMPTS (96), CHAT_REPLY_TOKENS (80), CHAT_WORKERS (the number of cores:
# chatgen processes on consecutive ranges of the prompts), COMPLETE (1: the side by side continues
# plain-text prompts with arwkv generate instead of chatting, for a base teacher without a chat
# template such as Gemma 3 270M).
# Assumes the build and the model exist (scripts/setup.sh, fetch_models.sh, build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:?usage: scripts/distill.sh CONFIG.toml}
arwkv=${ARWKV:-build/arwkv}
eval_tokens=${EVAL_TOKENS:-8192}
eval_text=${EVAL_TEXT:-build-corpus/heldout.txt}
chat_tokens=${CHAT_TOKENS:-48}
init=${INIT:-transfer}
calibrate_tokens=${CALIBRATE_TOKENS:-4096}
backend=${BACKEND:-cpu}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

# A [run] key of the config: key = "value" (the configs this script is for are written that way).
run_key() {
  awk -v key="$1" '
    /^\[\[?/ { in_run = ($0 ~ /^\[run\]/) }
    in_run && $1 == key { sub(/^[^=]*=[ \t]*"/, ""); sub(/".*/, ""); print; exit }' "$config"
}
out=$(run_key out)
student=$(run_key student)
teacher=$(run_key teacher)
data=$(run_key data)
for v in out student teacher data; do
  [[ -n ${!v} ]] || { echo "distill.sh: $config has no [run] $v" >&2; exit 1; }
done
stages=$(awk '/^\[\[stage\]\]/ { s = 1 } s && $1 == "name" { sub(/^[^=]*=[ \t]*"/, ""); sub(/".*/, ""); print; s = 0 }' "$config")

say() { echo "== $*" >&2; }

if [[ ! -d $data ]]; then
  say "making the corpus ($data)"
  DATA_OUT=$data scripts/make_corpus.sh
fi
chat_prompts=${CHAT_PROMPTS:-96}
chat_reply_tokens=${CHAT_REPLY_TOKENS:-80}
nproc_=$(nproc)
chat_workers=${CHAT_WORKERS:-$nproc_}
stage_data=$(awk '/^\[\[stage\]\]/ { s = 1 } s && $1 == "data" { sub(/^[^=]*=[ \t]*"/, ""); sub(/".*/, ""); print }' "$config")
for d in $stage_data; do
  kind=$(basename "$d")
  [[ ($kind == teacher-chat || $kind == teacher-chat-prose) && ! -f $d/manifest.json ]] || continue
  chats=$(dirname "$d")/teacher-chat.jsonl
  mkdir -p "$(dirname "$d")"
  if [[ ! -f $chats ]]; then
    say "the teacher's replies to $chat_prompts prompts ($chats)"
    # One decoding process per core, each on a consecutive range of the prompts: decoding one
    # sequence gains little from a second thread, and the pieces are the lines one process writes.
    parts=()
    pids=()
    for ((w = 0; w < chat_workers; w++)); do
      first=$((chat_prompts * w / chat_workers)) end=$((chat_prompts * (w + 1) / chat_workers))
      ((end > first)) || continue
      parts+=("$chats.part$w")
      OMP_NUM_THREADS=$(((nproc_ + chat_workers - 1) / chat_workers)) \
        "$arwkv" chatgen -m "$teacher" --prompts build-corpus/prompts.txt --skip "$first" --limit "$end" \
        -n "$chat_reply_tokens" --keep-truncated --seed 1 --out "$chats.part$w" 2> "$chats.part$w.log" &
      pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || { cat "$chats".part*.log >&2; exit 1; }; done
    tail -qn1 "$chats".part*.log | tr '\r' '\n' | grep wrote >&2 || true
    cat "${parts[@]}" > "$chats.tmp" && mv "$chats.tmp" "$chats"
    rm -f "${parts[@]}" "$chats".part*.log
  fi
  prose=()  # teacher-chat-prose: the chats and the corpus files of configs/chat-prose-files.txt
  [[ $kind == teacher-chat-prose ]] && mapfile -t prose < <(grep -v '^#' configs/chat-prose-files.txt | grep . | sed 's|^|build-corpus/|')
  "$arwkv" data --tokenizer "$teacher" --out "$d" --val-fraction 0.08 --seed 1 --force "$chats" "${prose[@]}"
done
mkdir -p "$out"
if [[ ! -f $student/config.json ]]; then
  calibrate=()
  [[ $init == transfer && $calibrate_tokens -gt 0 ]] && calibrate=(--calibrate "$data" --calibrate-tokens "$calibrate_tokens")
  say "converting $teacher into $student (--init $init ${calibrate[*]})"
  "$arwkv" convert --teacher "$teacher" --out "$student" --init "$init" "${calibrate[@]}"
fi

evaluate() {  # evaluate NAME MODEL
  if [[ ! -f $out/eval-$1.json ]]; then
    say "evaluating $1 on $eval_tokens held-out tokens"
    "$arwkv" eval --backend "$backend" -m "$2" --teacher "$teacher" --text "$eval_text" --max-tokens "$eval_tokens" --spread \
      --json "$out/eval-$1.json.tmp" >&2
    mv "$out/eval-$1.json.tmp" "$out/eval-$1.json"
  fi
}

evaluate init "$student"
say "arwkv distill $config"
"$arwkv" distill "$config"
for s in $stages; do evaluate "$s" "$out/$s"; done

prompts=(
  "What is the capital of France?"
  "Give me three tips for writing clear code."
  "What does a compiler do?"
  "Write a haiku about the sea."
)
complete=${COMPLETE:-0}
if [[ $complete == 1 ]]; then
  prompts=(
    "The capital of France is"
    "Three tips for writing clear code:"
    "A compiler is a program that"
    "The sea at night"
  )
fi
answer() {  # answer MODEL PROMPT
  if [[ $complete == 1 ]]; then
    "$arwkv" generate --backend "$backend" -m "$1" -p "$2" -n "$chat_tokens" --temperature 0 -q 2>/dev/null
  else
    printf '%s\n' "$2" | "$arwkv" chat --backend "$backend" -m "$1" -n "$chat_tokens" --temperature 0 -q 2>/dev/null
  fi | tr '\n' ' ' | sed -e 's/[[:space:]]*$//' -e 's/|/\\|/g'
}

json_num() { grep -o "\"$2\": *[-0-9.eE+]*" "$1" | head -1 | sed 's/.*: *//'; }

say "writing $out/report.md"
{
  echo "# $teacher -> ARWKV student ($config)"
  echo
  echo "Held-out text: \`$eval_text\`, $eval_tokens tokens scored in windows of 512 spread evenly over the file."
  echo
  echo "| student | teacher ppl | student ppl | mean KL (nats) | top-1 agreement |"
  echo "|---|---|---|---|---|"
  for s in init $stages; do
    f=$out/eval-$s.json
    printf '| %s | %.2f | %.2f | %.3f | %.3f |\n' "$s" "$(json_num "$f" teacher_perplexity)" \
      "$(json_num "$f" perplexity)" "$(json_num "$f" mean_kl)" "$(json_num "$f" top1_agreement)"
  done
  echo
  if [[ $complete == 1 ]]; then echo "Greedy continuations ($chat_tokens tokens at most):"
  else echo "Greedy chat answers ($chat_tokens tokens at most):"; fi
  echo
  for p in "${prompts[@]}"; do
    echo "**$p**"
    echo
    echo "| model | answer |"
    echo "|---|---|"
    echo "| teacher | $(answer "$teacher" "$p") |"
    for s in init $stages; do
      m=$out/$s
      [[ $s == init ]] && m=$student
      echo "| $s | $(answer "$m" "$p") |"
    done
    echo
  done
  echo "Curves: \`$out/curves.png\`; metrics: \`$out/metrics.jsonl\`."
} > "$out/report.md.tmp"
mv "$out/report.md.tmp" "$out/report.md"
cat "$out/report.md"
