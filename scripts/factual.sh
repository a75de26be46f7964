#!/usr/bin/env bash
# factual.sh TEACHER STUDENT...: the short factual questions of tools/factual/questions.tsv (written
# for this, not trained on) through the teacher and each student, greedy, ANSWER_TOKENS (48) tokens
# at most, in `arwkv chat` (the model's chat template and system prompt). An answer is correct when
# it matches the question's pattern. Per model: the questions answered correctly, the share of
# those the teacher answers correctly that the model answers correctly, and the repetition of its
# answers, 1 − distinct-2 (distinct word bigrams over all word bigrams, per answer, averaged), also
# as a ratio to the teacher's. Writes OUT (runs/factual.md): the summary and every answer side by
# side; OUT.json: the summary.
#   scripts/factual.sh models/SmolLM2-135M-Instruct.Q4_1.gguf runs/demo/align runs/demo/chat
set -euo pipefail
cd "$(dirname "$0")/.."
(($# >= 1)) || { echo "usage: scripts/factual.sh TEACHER [STUDENT...]" >&2; exit 2; }
arwkv=${ARWKV:-build/arwkv}
n=${ANSWER_TOKENS:-48}
out=${OUT:-runs/factual.md}
questions=${QUESTIONS:-tools/factual/questions.tsv}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

grep -v '^#' "$questions" | grep . > "$tmp/q.tsv"
i=0
for m in "$@"; do
  [[ -e $m ]] || { echo "factual.sh: $m: no such model" >&2; exit 1; }
  echo "== $m" >&2
  while IFS=$'\t' read -r q _; do
    printf '%s\n' "$q" | "$arwkv" chat -m "$m" -n "$n" --temperature 0 -q 2>/dev/null | tr '\n\t' '  ' |
      sed -e 's/^.*assistant: *//' -e 's/[[:space:]]*$//'
    echo
  done < "$tmp/q.tsv" > "$tmp/a$i.txt"
  i=$((i + 1))
done

perl -CSD -e '
  my ($out, $qfile, $tmpdir, @models) = @ARGV;
  open my $qf, "<", $qfile or die; my @q; while (<$qf>) { chomp; push @q, [split /\t/, $_, 2]; }
  my (@ans, @ok, @rep);
  for my $m (0 .. $#models) {
    open my $f, "<", "$tmpdir/a$m.txt" or die; my @a = map { chomp; $_ } <$f>; $ans[$m] = \@a;
    my ($d2sum, $d2n) = (0, 0);
    for my $i (0 .. $#q) {
      my $a = $a[$i] // ""; my $re = $q[$i][1];
      $ok[$m][$i] = ($a =~ /$re/i) ? 1 : 0;
      my @w = split /\s+/, lc $a; next if @w < 2;
      my %seen; my $b = 0; for my $k (0 .. $#w - 1) { $seen{"$w[$k] $w[$k+1]"} = 1; $b++ }
      $d2sum += keys(%seen) / $b; $d2n++;
    }
    $rep[$m] = $d2n ? 1 - $d2sum / $d2n : 0;
  }
  my @known = grep { $ok[0][$_] } 0 .. $#q;
  open my $o, ">", $out or die; open my $j, ">", "$out.json" or die;
  print $o "# Factual questions: ", scalar(@q), " (", scalar(@known), " answered correctly by the teacher)\n\n";
  print $o "| model | correct | of the teacher'"'"'s correct | repetition (1 - distinct-2) | ratio to the teacher |\n|---|---:|---:|---:|---:|\n";
  my @js;
  for my $m (0 .. $#models) {
    my $c = 0; $c += $ok[$m][$_] for 0 .. $#q;
    my $ck = 0; $ck += $ok[$m][$_] for @known;
    my $share = @known ? $ck / @known : 0;
    my $ratio = $rep[0] > 0 ? sprintf("%.2f", $rep[$m] / $rep[0]) : undef;  # none when the teacher never repeats
    printf $o "| %s | %d / %d | %.2f | %.3f | %s |\n", $models[$m], $c, scalar(@q), $share, $rep[$m], $ratio // "-";
    push @js, sprintf("{\"model\": \"%s\", \"correct\": %d, \"questions\": %d, \"share_of_teacher_correct\": %.4f, \"repetition\": %.4f, \"repetition_ratio\": %s}",
                      $models[$m], $c, scalar(@q), $share, $rep[$m], $ratio // "null");
  }
  print $j "[", join(",\n ", @js), "]\n";
  print $o "\n";
  for my $i (0 .. $#q) {
    print $o "**$q[$i][0]** (`$q[$i][1]`)\n\n| model | | answer |\n|---|---|---|\n";
    for my $m (0 .. $#models) { (my $a = $ans[$m][$i] // "") =~ s/\|/\\|/g; printf $o "| %s | %s | %s |\n", $models[$m], $ok[$m][$i] ? "yes" : "no", $a; }
    print $o "\n";
  }
' "$out" "$tmp/q.tsv" "$tmp" "$@"
sed -n '1,/^$/p;/^| model | correct/,/^$/p' "$out" | head -20
