#!/usr/bin/env bash
# embedding_compare.sh - the embedding benchmark's full training steps, mtl and
# PyTorch side by side: how much more a step costs with a 10^6 / 10^7-row table
# than with a 10^5-row one, for both, measured alternately in one session.
#
#   bench/embedding_compare.sh [THREADS]
#
# Runs PAIRS (default 3) rounds, each round in this order:
#   1. mtl    build/mtl bench/embedding_bench.lua ROUNDS 100 1e7 full:uniform,full:zipf THREADS
#   2. torch  bench/embedding_torch.py ROUNDS 20 1e7 full:uniform,full:zipf THREADS
# (the same step, ids, tables and protocol; ROUNDS=15 interleaved rounds inside each
# run) and keeps every raw output in OUT (default bench/results/embedding-<date>).
# Then prints, per setting and table, the median over the runs of each run's median
# step ms and step / 10^5 step ratio, for mtl and PyTorch.
#
# Env: PAIRS=3, ROUNDS=15, MTL=<repo>/build/mtl, PY=/usr/bin/python3, OUT=...
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$HERE")"
THREADS=${1:-1}
PAIRS=${PAIRS:-3}
ROUNDS=${ROUNDS:-15}
MTL=${MTL:-$ROOT/build/mtl}
PY=${PY:-/usr/bin/python3}
OUT=${OUT:-$ROOT/bench/results/embedding-$(date -u +%Y-%m-%d)}
mkdir -p "$OUT" || exit 1
SETTINGS=full:uniform,full:zipf
[ -x "$MTL" ] || { echo "embedding_compare.sh: $MTL not found (build first)" >&2; exit 1; }
"$PY" -c "import torch" 2>/dev/null || { echo "embedding_compare.sh: $PY has no torch (apt install python3-torch)" >&2; exit 1; }

for i in $(seq 1 "$PAIRS"); do
  f="$OUT/mtl-t$THREADS-$i.txt"
  echo "== round $i: mtl -> $f" >&2
  "$MTL" "$HERE/embedding_bench.lua" "$ROUNDS" 100 1e7 "$SETTINGS" "$THREADS" >"$f" 2>&1 || { cat "$f" >&2; exit 1; }
  f="$OUT/torch-t$THREADS-$i.txt"
  echo "== round $i: torch -> $f" >&2
  "$PY" "$HERE/embedding_torch.py" "$ROUNDS" 20 1e7 "$SETTINGS" "$THREADS" >"$f" 2>&1 || { cat "$f" >&2; exit 1; }
done

# per file: the setting lines, then "10^k ids step (..) ratio (..)" rows
awk -v threads="$THREADS" '
  FNR == 1 { who = (FILENAME ~ /\/mtl-/) ? "mtl" : "torch" }
  /^full:/ { setting = $1 }
  # mtl rows: rows ids touched step (..) ratio (..) ...; torch rows: rows ids step (..) ratio (..) ...
  /^10\^/ {
    key = setting " " $1; if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
    s = (who == "mtl") ? 4 : 3
    step[who, key] = step[who, key] " " $s; ratio[who, key] = ratio[who, key] " " $(s + 2)
  }
  function med(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    printf "%d thread(s); per figure the median over the runs of each run'"'"'s median\n", threads
    printf "%-13s %-5s %10s %10s %14s %14s\n", "setting", "rows", "mtl ms", "torch ms", "mtl / 10^5", "torch / 10^5"
    for (i = 1; i <= nk; i++) {
      k = order[i]; split(k, p, " ")
      printf "%-13s %-5s %10.3f %10.3f %14.2f %14.2f\n", p[1], p[2], med(step["mtl", k]), med(step["torch", k]),
        med(ratio["mtl", k]), med(ratio["torch", k])
    }
  }' "$OUT"/mtl-t"$THREADS"-*.txt "$OUT"/torch-t"$THREADS"-*.txt
