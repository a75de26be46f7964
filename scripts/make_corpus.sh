#!/usr/bin/env bash
# make_corpus.sh: the default training corpus, from Debian text packages (see ASSETS.md "Text").
#
# Downloads the packages with `apt-get download` (nothing is installed), unpacks them with
# `dpkg-deb -x` and extracts plain text into a git-ignored cache:
#   linux-doc-6.1   Documentation/**/*.rst.gz and *.txt
#   python3.11-doc  html/_sources/**/*.txt
#   perl-doc        pod/*.pod through pod2text
#   fortunes        one document per fortune file ("%" separators become blank lines)
#   jargon-text     the Jargon File
#   dict-gcide      the GCIDE dictionary (dictd .dict.dz is gzip data)
# Files over 128 KB are cut into pieces of about 64 KB at blank lines. Every file is then ordered
# by the MD5 of its path (deterministic, mixes the sources): the first HELDOUT_MB go to the
# held-out set (heldout/ and heldout.txt, for `arwkv eval --text`), the next CORPUS_MB to the
# training corpus (corpus/), the next DEV_MB to a tuning text (dev.txt: recipe choices are scored
# on it, so that heldout.txt is never tuned on). heldout-ext.txt is text from packages the corpus
# does not use at all (EXT_PACKAGES: git's AsciiDoc manuals, Debian's constitution, social
# contract, manifesto and bug-reporting guides), for held-out figures on another source. A prompts file for `arwkv chatgen` is made from perlfaq questions,
# Python module titles and Jargon File terms. Finally `arwkv data` tokenizes corpus/ into data/.
#
# Settings (environment): CACHE (default build-corpus), CORPUS_MB (50), HELDOUT_MB (1), DEV_MB (1),
# PROMPTS (1000), TOKENIZER (models/SmolLM2-135M-Instruct.Q4_1.gguf), ARWKV (build/arwkv),
# DATA_OUT (CACHE/data), VAL_FRACTION (0.01), SEED (0), PACKAGES (the list above).
# Re-running reuses what the cache holds; delete CACHE/text to extract again.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CACHE:-$ROOT/build-corpus}
CORPUS_MB=${CORPUS_MB:-50}
HELDOUT_MB=${HELDOUT_MB:-1}
DEV_MB=${DEV_MB:-1}
EXT_PACKAGES=${EXT_PACKAGES:-git-doc doc-debian}
PROMPTS=${PROMPTS:-1000}
TOKENIZER=${TOKENIZER:-$ROOT/models/SmolLM2-135M-Instruct.Q4_1.gguf}
ARWKV=${ARWKV:-$ROOT/build/arwkv}
DATA_OUT=${DATA_OUT:-$CACHE/data}
VAL_FRACTION=${VAL_FRACTION:-0.01}
SEED=${SEED:-0}
PACKAGES=${PACKAGES:-linux-doc-6.1 python3.11-doc perl-doc fortunes jargon-text dict-gcide}

say() { echo "make_corpus: $*" >&2; }

fetch() {
  mkdir -p "$CACHE/debs" "$CACHE/root"
  for p in $PACKAGES; do
    if ! ls "$CACHE/debs/${p}"_*.deb >/dev/null 2>&1; then
      say "downloading $p"
      (cd "$CACHE/debs" && apt-get download "$p" 2>&1 | { grep -v '^W: Download is performed unsandboxed' >&2 || true; })
    fi
    if [ ! -d "$CACHE/root/$p" ]; then
      mkdir -p "$CACHE/root/$p.tmp"
      dpkg-deb -x "$(ls "$CACHE/debs/${p}"_*.deb | head -1)" "$CACHE/root/$p.tmp"
      mv "$CACHE/root/$p.tmp" "$CACHE/root/$p"
    fi
  done
}

# chunk FILE PREFIX: pieces PREFIX-0000.txt ... of about 64 KB, cut at blank lines.
chunk() {
  awk -v prefix="$2" '
    function next_file() { if (f != "") close(f); f = sprintf("%s-%04d.txt", prefix, n++); size = 0 }
    BEGIN { f = ""; n = 0; next_file() }
    { if (size >= 65536 && $0 ~ /^[ \t\r]*$/) next_file(); print > f; size += length($0) + 1 }' "$1"
}

# copy_tree SRC DEST FIND-ARGS...: every file find selects below SRC, decompressed, as DEST/<path>.txt
copy_tree() {
  local src=$1 dest=$2
  shift 2
  (cd "$src" && find . -type f "$@" -printf '%P\n') | sort | while IFS= read -r f; do
    local out="$dest/${f%.gz}"
    out="${out%.txt}.txt"
    mkdir -p "$(dirname "$out")"
    case "$f" in
      *.gz) gzip -dc "$src/$f" >"$out" ;;
      *) cp "$src/$f" "$out" ;;
    esac
  done
}

extract() {
  local T=$CACHE/text.tmp R=$CACHE/root
  rm -rf "$T"
  mkdir -p "$T"
  if [ -d "$R/linux-doc-6.1" ]; then
    say "extracting linux-doc"
    copy_tree "$R/linux-doc-6.1/usr/share/doc/linux-doc-6.1/Documentation" "$T/linux-doc" \
      \( -name '*.rst.gz' -o -name '*.rst' -o -name '*.txt' -o -name '*.txt.gz' \)
  fi
  if [ -d "$R/python3.11-doc" ]; then
    say "extracting python3.11-doc"
    copy_tree "$R/python3.11-doc/usr/share/doc/python3.11/html/_sources" "$T/python" -name '*.txt'
  fi
  if [ -d "$R/perl-doc" ]; then
    say "extracting perl-doc (pod2text)"
    mkdir -p "$T/perl"
    for pod in "$R"/perl-doc/usr/share/perl/*/pod/*.pod; do
      name=$(basename "$pod" .pod)
      if command -v pod2text >/dev/null; then
        pod2text "$pod" >"$T/perl/$name.txt" 2>/dev/null || true
      else
        grep -v '^=' "$pod" >"$T/perl/$name.txt"
      fi
    done
  fi
  if [ -d "$R/fortunes" ]; then
    say "extracting fortunes"
    mkdir -p "$T/fortunes"
    for f in "$R"/fortunes/usr/share/games/fortunes/*; do
      case "$f" in *.dat | *.u8) continue ;; esac
      [ -f "$f" ] && [ ! -L "$f" ] && sed 's/^%$//' "$f" >"$T/fortunes/$(basename "$f").txt"
    done
  fi
  if [ -d "$R/jargon-text" ]; then
    say "extracting the Jargon File"
    gzip -dc "$R/jargon-text/usr/share/doc/jargon-text/jargon.txt.gz" >"$T/jargon.txt"
  fi
  if [ -d "$R/dict-gcide" ]; then
    say "extracting GCIDE"
    gzip -dc "$R/dict-gcide/usr/share/dictd/gcide.dict.dz" >"$T/gcide.txt"
  fi
  say "cutting large files"
  find "$T" -type f -size +128k | sort | while IFS= read -r f; do
    chunk "$f" "${f%.txt}"
    rm "$f"
  done
  find "$T" -type f -empty -delete
  rm -rf "$CACHE/text"
  mv "$T" "$CACHE/text"
}

# Files by MD5 of their path: held-out first, then the training corpus, each up to its size.
select_files() {
  local list=$CACHE/order.txt
  (cd "$CACHE/text" && find . -type f -printf '%s %P\n') |
    perl -MDigest::MD5=md5_hex -ne 'chomp; my ($s, $p) = split / /, $_, 2; print md5_hex($p), " $s $p\n"' |
    sort >"$list"
  rm -rf "$CACHE/heldout" "$CACHE/corpus" "$CACHE/dev" "$CACHE/heldout.txt" "$CACHE/dev.txt"
  awk -v h=$((HELDOUT_MB * 1000000)) -v c=$((CORPUS_MB * 1000000)) -v d=$((DEV_MB * 1000000)) '
    { if (held < h) { held += $2; print "heldout", $3 } else if (used < c) { used += $2; print "corpus", $3 }
      else if (dev < d) { dev += $2; print "dev", $3 } }' \
    "$list" | while read -r set f; do
    mkdir -p "$CACHE/$set/$(dirname "$f")"
    cp "$CACHE/text/$f" "$CACHE/$set/$f"
  done
  (cd "$CACHE/heldout" && find . -type f -printf '%P\n' | sort | xargs cat) >"$CACHE/heldout.txt"
  if [ -d "$CACHE/dev" ]; then (cd "$CACHE/dev" && find . -type f -printf '%P\n' | sort | xargs cat) >"$CACHE/dev.txt"; fi
  say "corpus: $(du -sb "$CACHE/corpus" | cut -f1) bytes in $(find "$CACHE/corpus" -type f | wc -l) files;" \
    "held out: $(wc -c <"$CACHE/heldout.txt") bytes; dev: $(wc -c <"$CACHE/dev.txt" 2>/dev/null || echo 0) bytes"
}

# heldout-ext.txt: text of EXT_PACKAGES, none of which the corpus reads (about 1 MB).
external_heldout() {
  local R=$CACHE/root-ext out=$CACHE/heldout-ext.txt
  mkdir -p "$CACHE/debs" "$R"
  for p in $EXT_PACKAGES; do
    if ! ls "$CACHE/debs/${p}"_*.deb >/dev/null 2>&1; then
      say "downloading $p"
      (cd "$CACHE/debs" && apt-get download "$p" 2>&1 | { grep -v '^W: Download is performed unsandboxed' >&2 || true; })
    fi
    [ -d "$R/$p" ] || { dpkg-deb -x "$(ls "$CACHE/debs/${p}"_*.deb | head -1)" "$R/$p.tmp" && mv "$R/$p.tmp" "$R/$p"; }
  done
  {
    for f in constitution.txt social-contract.txt debian-manifesto bug-reporting.txt; do
      if [ -e "$R/doc-debian/usr/share/doc/debian/$f.gz" ]; then gzip -dc "$R/doc-debian/usr/share/doc/debian/$f.gz"; fi
    done
    if [ -d "$R/git-doc" ]; then find "$R/git-doc/usr/share/doc/git-doc" -maxdepth 1 -name '*.txt' | sort | xargs cat; fi
  } >"$out.all"
  head -c 1000000 "$out.all" >"$out.tmp"
  rm -f "$out.all"
  mv "$out.tmp" "$out"
  say "external held-out text: $(wc -c <"$out") bytes in $out"
}

# hash_order: the lines of stdin, without repeats, in the order of their MD5 (deterministic).
hash_order() { perl -MDigest::MD5=md5_hex -ne 'print md5_hex($_), "\t$_"' | sort -u | cut -f2-; }

# One user prompt per line: every perlfaq question and Python module title, then Jargon File terms
# up to PROMPTS in all, mixed in a fixed order.
make_prompts() {
  local R=$CACHE/root
  {
    cat "$R"/perl-doc/usr/share/perl/*/pod/perlfaq[1-9].pod 2>/dev/null | sed -n 's/^=head2 //p' |
      perl -pe 's/E<lt>/</g; s/E<gt>/>/g; 1 while s/[A-Z]<+\s*([^<>]*?)\s*>+/$1/' | { grep '?$' || true; } | hash_order
    cat "$R"/python3.11-doc/usr/share/doc/python3.11/html/_sources/library/*.txt 2>/dev/null |
      sed -n 's/^:mod:`\([^`]*\)` --- \(.*\)$/What is the Python module \1 for? (\2)/p' | hash_order
    gzip -dc "$R/jargon-text/usr/share/doc/jargon-text/jargon.txt.gz" 2>/dev/null |
      sed -n 's/^   :\([^:]\{2,40\}\): .*/What does the hacker jargon term "\1" mean?/p' | hash_order
  } | awk -v n="$PROMPTS" 'NR <= n' | hash_order >"$CACHE/prompts.txt"
  say "prompts: $(wc -l <"$CACHE/prompts.txt") in $CACHE/prompts.txt"
}

tokenize() {
  if [ ! -x "$ARWKV" ] || [ ! -e "$TOKENIZER" ]; then
    say "skipping arwkv data: need $ARWKV (scripts/build.sh) and $TOKENIZER (scripts/fetch_models.sh)"
    return
  fi
  say "tokenizing into $DATA_OUT"
  "$ARWKV" data --tokenizer "$TOKENIZER" --out "$DATA_OUT" --force --val-fraction "$VAL_FRACTION" --seed "$SEED" \
    "$CACHE/corpus"
}

fetch
[ -d "$CACHE/text" ] || extract
select_files
external_heldout
make_prompts
tokenize
