#!/usr/bin/env bash
# compare.sh - mtl against the PyTorch reference on SPEC.md's workload, side by side.
#
#   bench/compare.sh MODEL BATCH THREADS [PRESET]
#
# Runs PAIRS (default 3) rounds, each round in this order:
#   1. mtl       build/mtl bench/bench.lua --model MODEL --batch BATCH --threads THREADS
#   2. torch     bench/torch_ref.py with the same flags (the Debian default setting)
#   3. torch-passive (THREADS >= 2 only) the same with OMP_WAIT_POLICY=PASSIVE, PyTorch's
#                best 2-thread setting on this machine (../shared/bench/RESULTS.md; the
#                OpenMP OpenBLAS variant is also tried when installed, as torch-ompblas)
#   4. sgemm     bench/sgemm_peak.c (built once into /tmp) at THREADS threads: the
#                GEMM rate that the sgemm bound uses (preset spec only)
#   1b. mtl-bf16 (PRECISION=bf16 or "fp32 bf16") the same with --precision bf16: inference in
#                bf16 on AVX512-BF16 (training is FP32 either way); PyTorch stays FP32
#   1c. mtl-blas (PRECISION="blas fp32") FP32 inference on sgemm + bias/ReLU passes, as before
#                the packed FP32 kernel (MTL_FP32_KERNEL=blas; docs/performance.md)
# so every figure is measured alternately (A B A B ...) in one session, and prints the
# median of each figure over the rounds and the ratio mtl / PyTorch (for throughput a
# ratio above 1 means mtl is faster; for seconds and MiB below 1 is better).
#
# "bound" = the model's matrix-product FLOPs per example (mtl's step_gflops / train
# ex/s, 3x the forward for training) at the median sgemm rate of the sgemm_peak shapes
# (all eight at THREADS threads): the fraction of the time the GEMMs alone would take.
#
# Env: PAIRS=3, MTL=<repo>/build/mtl, PY=/usr/bin/python3, DATA=/tmp/mtlbench,
#      OUT=$DATA/compare.jsonl (every raw JSON line is appended, tagged), EXTRA="" (more
#      flags for both sides, e.g. "--train-rows 50000 --test-rows 10000"),
#      PRECISION=fp32: the mtl runs of a round, any of "blas", "fp32", "bf16" (side mtl is
#      fp32, side mtl-bf16 bf16, side mtl-blas blas; with bf16 alone the mtl side is the
#      bf16 run's training),
#      WAIT_IDLE=0: on a shared machine, the most seconds to wait before each run for
#      the other processes to leave the CPUs idle (under 10% busy over two seconds);
#      the busy fraction seen when each run starts is printed and kept in OUT.
# The data is generated with bench/gen_synth.py when missing (SPEC.md 1.1).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MODEL="${1:?usage: compare.sh MODEL BATCH THREADS [PRESET]}"
BATCH="${2:?usage: compare.sh MODEL BATCH THREADS [PRESET]}"
THREADS="${3:?usage: compare.sh MODEL BATCH THREADS [PRESET]}"
PRESET="${4:-spec}"
PAIRS="${PAIRS:-3}"
MTL="${MTL:-$ROOT/build/mtl}"
PY="${PY:-/usr/bin/python3}"
DATA="${DATA:-/tmp/mtlbench}"
OUT="${OUT:-$DATA/compare.jsonl}"
EXTRA="${EXTRA:-}"
WAIT_IDLE="${WAIT_IDLE:-0}"
PRECISION="${PRECISION:-fp32}"
OMPBLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp

[ -x "$MTL" ] || { echo "compare.sh: $MTL not found (build first, or set MTL=)" >&2; exit 2; }
mkdir -p "$DATA"
if [ ! -s "$DATA/train.csv" ] || [ ! -s "$DATA/test.csv" ]; then
  echo "generating the benchmark data in $DATA (SPEC.md 1.1) ..." >&2
  "$PY" "$HERE/gen_synth.py" --rows 200000 --seed 1 --out "$DATA/train.csv" --oracle "$DATA/train_oracle.csv" || exit 1
  "$PY" "$HERE/gen_synth.py" --rows 50000 --seed 2 --out "$DATA/test.csv" --oracle "$DATA/test_oracle.csv" || exit 1
fi
SGEMM=""
if [ "$PRESET" = spec ]; then
  SGEMM=/tmp/mtl_sgemm_peak
  if [ ! -x "$SGEMM" ] || [ "$HERE/sgemm_peak.c" -nt "$SGEMM" ]; then
    gcc -O2 -o "$SGEMM" "$HERE/sgemm_peak.c" -lopenblas || exit 1
  fi
fi

ARGS=(--model "$MODEL" --batch "$BATCH" --threads "$THREADS" --preset "$PRESET"
      --train "$DATA/train.csv" --test "$DATA/test.csv")
# shellcheck disable=SC2206
EXTRA_ARGS=($EXTRA)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# busy: the fraction of all CPU time that was not idle over the last second
busy() {
  local a b
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  local total=0 idle=$(( (b[4] + b[5]) - (a[4] + a[5]) )) i
  for i in 1 2 3 4 5 6 7 8; do total=$(( total + b[i] - a[i] )); done
  [ "$total" -gt 0 ] || { echo 0; return; }
  echo "$(( 100 * (total - idle) / total ))"
}

# wait_idle: up to WAIT_IDLE seconds until two one-second samples are < 10% busy
BUSY=-1
wait_idle() {
  if [ "$WAIT_IDLE" -le 0 ]; then BUSY=$(busy); return 0; fi
  local start=$SECONDS quiet=0
  while [ $(( SECONDS - start )) -lt "$WAIT_IDLE" ]; do
    BUSY=$(busy)
    if [ "$BUSY" -lt 10 ]; then quiet=$(( quiet + 1 )); [ $quiet -ge 2 ] && return 0; else quiet=0; fi
  done
  echo "  (gave up waiting for idle CPUs after ${WAIT_IDLE}s: ${BUSY}% busy)" >&2
}

# run TAG CMD...: the command's last line (its JSON) tagged with "side" and "round"
run() {
  local tag="$1"; shift
  wait_idle
  local log="$TMP/$tag.$round.log"
  if ! "$@" >"$log" 2>&1; then
    echo "compare.sh: $tag failed (round $round):" >&2
    tail -5 "$log" >&2
    return 1
  fi
  local line
  line="$(grep '^{' "$log" | tail -1)"
  [ -n "$line" ] || { echo "compare.sh: $tag printed no JSON line" >&2; return 1; }
  printf '{"side": "%s", "round": %d, "config": "%s %s %s %s", "busy_before": %d, "result": %s}\n' \
    "$tag" "$round" "$MODEL" "$BATCH" "$THREADS" "$PRESET" "$BUSY" "$line" | tee -a "$OUT" >>"$TMP/all.jsonl"
  echo "  round $round $tag done (CPUs ${BUSY}% busy before it)" >&2
}

echo "compare: $MODEL batch $BATCH threads $THREADS preset $PRESET, $PAIRS rounds ($(date '+%F %T'), load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
for round in $(seq 1 "$PAIRS"); do
  for p in $PRECISION; do
    case "$p" in
      fp32) run mtl "$MTL" "$HERE/bench.lua" "${ARGS[@]}" "${EXTRA_ARGS[@]}" --quiet ;;
      bf16) run mtl-bf16 "$MTL" "$HERE/bench.lua" "${ARGS[@]}" "${EXTRA_ARGS[@]}" --quiet --precision bf16 ;;
      blas) run mtl-blas env MTL_FP32_KERNEL=blas "$MTL" "$HERE/bench.lua" "${ARGS[@]}" "${EXTRA_ARGS[@]}" --quiet ;;
      *) echo "compare.sh: PRECISION: unknown precision '$p' (expected blas, fp32, bf16)" >&2; exit 2 ;;
    esac
  done
  run torch "$PY" "$HERE/torch_ref.py" "${ARGS[@]}" "${EXTRA_ARGS[@]}"
  if [ "$THREADS" -ge 2 ]; then
    run torch-passive env OMP_WAIT_POLICY=PASSIVE "$PY" "$HERE/torch_ref.py" "${ARGS[@]}" "${EXTRA_ARGS[@]}"
    if [ -e "$OMPBLAS/libblas.so.3" ]; then
      run torch-ompblas env LD_LIBRARY_PATH="$OMPBLAS" "$PY" "$HERE/torch_ref.py" "${ARGS[@]}" "${EXTRA_ARGS[@]}"
    fi
  fi
  if [ -n "$SGEMM" ]; then run sgemm "$SGEMM" -t "$THREADS"; fi
done

"$PY" - "$TMP/all.jsonl" "$THREADS" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
threads = int(sys.argv[2])
by = {}
for r in rows:
    by.setdefault(r["side"], []).append(r["result"])
bf16 = by.get("mtl-bf16")
if bf16 and "mtl" not in by:  # bf16 alone: its training is the mtl side's
    by["mtl"] = bf16

def med(side, key):
    vals = [x[key] for x in by.get(side, []) if isinstance(x.get(key), (int, float))]
    return statistics.median(vals) if vals else None

sgemm = None
if "sgemm" in by:
    rates = []
    for x in by["sgemm"]:
        rs = [r["gflops"] for r in x["results"] if r["threads"] == threads]
        if rs:
            rates.append(statistics.median(rs))
    sgemm = statistics.median(rates) if rates else None

torch_sides = [s for s in ("torch", "torch-passive", "torch-ompblas") if s in by]
best = None  # PyTorch's best setting by training throughput
for s in torch_sides:
    if best is None or med(s, "train_examples_per_s") > med(best, "train_examples_per_s"):
        best = s
figures = ["train_examples_per_s", "infer_examples_per_s", "train_seconds", "infer_seconds",
           "load_train_seconds", "peak_rss_mib", "train_loss_last_epoch",
           "auc_click", "auc_cvr", "auc_ctcvr", "logloss_click", "logloss_ctcvr"]
head = "%-22s %12s" % ("figure (median)", "mtl")
for s in torch_sides:
    head += " %14s %9s" % (s, "ratio")
print(head)
summary = {"config": rows[0]["config"], "rounds": len(by.get("mtl", [])), "sgemm_gflops": sgemm,
           "mtl": {}, "best_torch": best}
for f in figures:
    m = med("mtl", f)
    line = "%-22s %12s" % (f, "-" if m is None else "%.5g" % m)
    summary["mtl"][f] = m
    for s in torch_sides:
        t = med(s, f)
        summary.setdefault(s, {})[f] = t
        ratio = (m / t) if (m is not None and t) else None
        line += " %14s %9s" % ("-" if t is None else "%.5g" % t, "-" if ratio is None else "%.3f" % ratio)
    print(line)
m_tr, m_gf = med("mtl", "train_examples_per_s"), med("mtl", "step_gflops")
if m_gf is not None:
    flop_per_ex = m_gf * 1e9 / m_tr  # training FLOPs per example
    summary["train_flops_per_example"] = flop_per_ex
    line = "%-22s %12.1f" % ("train GFLOP/s", m_gf)
    for s in torch_sides:
        line += " %14.1f %9s" % (flop_per_ex * med(s, "train_examples_per_s") / 1e9, "")
    print(line)
    if sgemm:
        print("%-22s %12.1f  (median of sgemm_peak's shapes at %d thread%s)" % (
            "sgemm GFLOP/s", sgemm, threads, "" if threads == 1 else "s"))
        line = "%-22s %11.1f%%" % ("train / sgemm bound", 100 * m_gf / sgemm)
        for s in torch_sides:
            line += " %13.1f%% %9s" % (100 * flop_per_ex * med(s, "train_examples_per_s") / 1e9 / sgemm, "")
        print(line)
        summary["train_bound"] = m_gf / sgemm
        ig = med("mtl", "infer_gflops")
        if ig is not None:
            line = "%-22s %11.1f%%" % ("infer / sgemm bound", 100 * ig / sgemm)
            ife = ig * 1e9 / med("mtl", "infer_examples_per_s")
            for s in torch_sides:
                line += " %13.1f%% %9s" % (100 * ife * med(s, "infer_examples_per_s") / 1e9 / sgemm, "")
            print(line)
            summary["infer_bound"] = ig / sgemm
            bg = med("mtl-blas", "infer_gflops")
            if bg is not None:
                print("%-22s %11.1f%%  (mtl-blas: FP32 inference on sgemm)" % ("infer / bound blas", 100 * bg / sgemm))
                summary["infer_bound_blas"] = bg / sgemm
if "mtl-blas" in by:
    b = med("mtl-blas", "infer_examples_per_s")
    print("%-22s %12.5g  (mtl fp32 / blas %.3f)" % ("infer ex/s mtl-blas", b, med("mtl", "infer_examples_per_s") / b))
    summary["mtl_blas"] = {f: med("mtl-blas", f) for f in figures}
    print("mtl-blas infer ex/s per round: " + ", ".join("%.0f" % x["infer_examples_per_s"] for x in by["mtl-blas"]))
    r = [a["infer_examples_per_s"] / b["infer_examples_per_s"] for a, b in zip(by["mtl"], by["mtl-blas"])]
    print("mtl / mtl-blas infer per round: %s (median %.3f)" % (", ".join("%.2f" % x for x in r), statistics.median(r)))
if bf16:
    line = "%-22s %12.5g" % ("infer ex/s mtl-bf16", med("mtl-bf16", "infer_examples_per_s"))
    for s in torch_sides:
        line += " %14.5g %9.3f" % (med(s, "infer_examples_per_s"), med("mtl-bf16", "infer_examples_per_s") / med(s, "infer_examples_per_s"))
    print(line)
    for f in ("auc_click", "auc_cvr", "auc_ctcvr"):
        print("%-22s %12.5g  (fp32 %s)" % (f + " bf16", med("mtl-bf16", f), "-" if "mtl" not in by else "%.5g" % med("mtl", f)))
    summary["mtl_bf16"] = {f: med("mtl-bf16", f) for f in figures}
    summary["mtl_bf16"]["precision"] = bf16[0].get("precision")
    print("mtl-bf16 infer ex/s per round: " + ", ".join("%.0f" % x["infer_examples_per_s"] for x in bf16))
    for s in torch_sides:  # the rounds ran side by side: their ratios, round by round
        r = [a["infer_examples_per_s"] / b["infer_examples_per_s"] for a, b in zip(bf16, by[s])]
        print("mtl-bf16 / %s infer per round: %s (median %.3f)" % (s, ", ".join("%.2f" % x for x in r), statistics.median(r)))
print("mtl train ex/s per round: " + ", ".join("%.0f" % x["train_examples_per_s"] for x in by["mtl"]))
for s in torch_sides:
    print("%s train ex/s per round: %s" % (s, ", ".join("%.0f" % x["train_examples_per_s"] for x in by[s])))
for s in ["mtl"] + torch_sides:
    print("%s infer ex/s per round: %s" % (s, ", ".join("%.0f" % x["infer_examples_per_s"] for x in by[s])))
print(json.dumps(summary))
EOF
