#!/usr/bin/env bash
# Data-parallel training throughput of `mtl bench` (docs/distributed.md,
# "Measured"): one process x 1 thread, one process x 2 threads and 2 ranks x
# 1 thread (mpirun), the same global batch, and two independent processes at
# half the batch, one a core, at the same time (the rate 2 ranks would reach
# if communication were free: what the machine gives two processes), run side
# by side: the four alternate, ROUNDS times, and the medians of train
# examples/s are compared.
#   bash bench/dist_train.sh [ROUNDS=5] [MODEL=mmoe] [BATCH=1024] [extra mtl bench flags...]
# Prints one line per run, then the medians (and the best runs: the least
# disturbed by other load), the ratios, and the 2-rank
# communication per step (bytes and % of the step, from mtl bench's JSON), and
# the CPU time the hypervisor took for others meanwhile (bench/cpu_steal.sh).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
rounds=${1:-5}
model=${2:-mmoe}
batch=${3:-1024}
shift $(( $# < 3 ? $# : 3 ))
mtl="$root/build/mtl"
mpirun=(mpirun -np 2 --bind-to core)
[[ $(id -u) == 0 ]] && mpirun+=(--allow-run-as-root)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sides=(one1 one2 ranks2 apart2)

run() { # side [flags...] -> the JSON line
  local side=$1
  shift
  case $side in
    one1) "$mtl" bench --model "$model" --batch "$batch" --threads 1 --quiet "$@" ;;
    one2) "$mtl" bench --model "$model" --batch "$batch" --threads 2 --quiet "$@" ;;
    ranks2) "${mpirun[@]}" "$mtl" bench --model "$model" --batch "$batch" --threads 1 --quiet "$@" ;;
    apart2) # two independent processes at B/2, one a core, at the same time: no
      # communication at all, so their summed rate is the most 2 ranks can reach
      taskset -c 0 "$mtl" bench --model "$model" --batch $((batch / 2)) --threads 1 --quiet "$@" | tail -1 >"$tmp/a0" &
      taskset -c 1 "$mtl" bench --model "$model" --batch $((batch / 2)) --threads 1 --quiet "$@" | tail -1 >"$tmp/a1"
      wait
      luajit - "$tmp/a0" "$tmp/a1" <<'LUA'
local json = require "cjson"
local a, b = json.decode(io.lines(arg[1])()), json.decode(io.lines(arg[2])())
print(json.encode({ train_examples_per_s = a.train_examples_per_s + b.train_examples_per_s }))
LUA
      ;;
  esac | tail -1
}

source "$root/bench/cpu_steal.sh"
echo "start: $(uptime)"
steal_start
for ((r = 1; r <= rounds; r++)); do
  for side in "${sides[@]}"; do
    line=$(run "$side" "$@")
    echo "$line" >>"$tmp/$side"
    printf 'round %d %-15s %s ex/s\n' "$r" "$side" "$(luajit -e "print(require('cjson').decode(io.read('*l')).train_examples_per_s)" <<<"$line")"
  done
done

echo "end: $(uptime)"
steal_report
luajit - "$tmp" "${sides[@]}" <<'EOF'
local json = require "cjson"
local dir = arg[1]
local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or (t[n / 2] + t[n / 2 + 1]) / 2
end
local med, best, last = {}, {}, {}
for i = 2, #arg do
  local side = arg[i]
  local rates, comm, pct, dense, sparse = {}, {}, {}, nil, nil
  for line in io.lines(dir .. "/" .. side) do
    local d = json.decode(line)
    rates[#rates + 1] = d.train_examples_per_s
    if d.comm_ms_per_step then
      comm[#comm + 1], pct[#pct + 1] = d.comm_ms_per_step, d.comm_percent_of_step
      dense, sparse = d.dense_bytes_per_step, d.sparse_bytes_per_step
    end
    last[side] = d
  end
  med[side] = median(rates)
  best[side] = math.max(unpack(rates))
  local extra = ""
  if #comm > 0 then
    extra = string.format("  communication: %.2f ms/step (%.1f %% of the step), payload %d B dense + %d B sparse per step",
      median(comm), median(pct), dense, sparse)
  end
  print(string.format("median %-15s %8.0f ex/s  (%d runs; best %.0f)%s", side, med[side], #rates, best[side], extra))
end
print(string.format("2 ranks x 1 thread / 1 process x 1 thread: %.2f (best runs: %.2f)", med.ranks2 / med.one1,
  best.ranks2 / best.one1))
print(string.format("2 ranks x 1 thread / 1 process x 2 threads: %.2f (best runs: %.2f)", med.ranks2 / med.one2,
  best.ranks2 / best.one2))
print(string.format("2 independent processes at B/2 / 1 process x 1 thread: %.2f (best runs: %.2f): the machine's ceiling",
  med.apart2 / med.one1, best.apart2 / best.one1))
print(string.format("2 ranks x 1 thread / 2 independent processes at B/2: %.2f (best runs: %.2f): what the communication costs",
  med.ranks2 / med.apart2, best.ranks2 / best.apart2))
EOF
