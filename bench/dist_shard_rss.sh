#!/usr/bin/env bash
# Peak resident memory per rank of a row-sharded table against one process
# holding the whole table (docs/distributed.md, "Row-sharded tables"):
#   bash bench/dist_shard_rss.sh [ROWS=40000000] [RANKS=4] [STEPS=20]
# Runs bench/dist_shard_rss.lua in one process, then at RANKS ranks (one after
# the other, so they do not share the memory), and prints the largest rank's
# peak over the single process's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rows=${1:-40000000}
ranks=${2:-4}
steps=${3:-20}
mtl="$root/build/mtl"
mpirun=(mpirun --oversubscribe -np "$ranks")
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)
echo "start: $(date -u) $(uptime)"
one=$("$mtl" "$root/bench/dist_shard_rss.lua" "$rows" "$steps")
echo "$one"
many=$("${mpirun[@]}" "$mtl" "$root/bench/dist_shard_rss.lua" "$rows" "$steps" | sort)
echo "$many"
peak_one=$(sed -n 's/.*peak RSS \([0-9]*\) MiB/\1/p' <<<"$one")
peak_many=$(sed -n 's/.*peak RSS \([0-9]*\) MiB/\1/p' <<<"$many" | sort -n | tail -1)
awk -v a="$peak_many" -v b="$peak_one" -v n="$ranks" \
  'BEGIN { printf "largest rank peak / one process peak at %d ranks: %d / %d MiB = %.3f\n", n, a, b, a / b }'
