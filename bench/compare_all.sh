#!/usr/bin/env bash
# compare_all.sh - bench/compare.sh over the whole matrix, then one markdown table.
#
#   bench/compare_all.sh [OUTDIR]
#
# Runs compare.sh for every model x batch {1024, 256} x threads {1, 2} (preset spec)
# and for mmoe and shared_bottom x batch {128, 32} x 1 thread (preset paper), saving
# each configuration's output as OUTDIR/<model>-<batch>-t<threads>-<preset>.txt
# (default OUTDIR /tmp/mtlbench/compare), and prints the table docs/performance.md
# shows. A configuration whose file exists already is not run again, so an
# interrupted matrix resumes; delete the files to measure again.
# Env: as compare.sh (PAIRS, MTL, PY, DATA, EXTRA, PRECISION: "fp32 bf16" adds mtl's bf16
# inference to every configuration and a column to the table); MODELS, BATCHES, THREADS,
# PAPER=0 to leave out preset paper.
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
OUTDIR="${1:-/tmp/mtlbench/compare}"
MTL="${MTL:-$HERE/../build/mtl}"
# the models with benchmark settings (a `bench` table in models/<name>.lua)
bench_models() { "$MTL" -e "print(table.concat(require('mtl.bench').models('$1'), ' '))"; }
MODELS="${MODELS:-$(bench_models spec)}"
BATCHES="${BATCHES:-1024 256}"
THREADS="${THREADS:-1 2}"
PAPER="${PAPER:-1}"
mkdir -p "$OUTDIR"

one() { # model batch threads preset
  local f="$OUTDIR/$1-$2-t$3-$4.txt"
  if [ -s "$f" ] && tail -1 "$f" | grep -q '^{'; then return 0; fi
  echo "== $1 batch $2 threads $3 preset $4" >&2
  "$HERE/compare.sh" "$1" "$2" "$3" "$4" >"$f.tmp" && mv "$f.tmp" "$f"
}

for t in $THREADS; do
  for b in $BATCHES; do
    for m in $MODELS; do one "$m" "$b" "$t" spec; done
  done
done
if [ "$PAPER" = 1 ]; then
  for b in 128 32; do
    for m in $(bench_models paper); do one "$m" "$b" 1 paper; done
  done
fi

"${PY:-/usr/bin/python3}" - "$OUTDIR" <<'EOF'
import glob, json, os, sys
rows = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.txt"))):
    lines = [l for l in open(f) if l.startswith("{")]
    if not lines:
        continue
    s = json.loads(lines[-1])
    model, batch, threads, preset = s["config"].split()
    rows.append((preset != "spec", model, -int(batch), int(threads), s))
rows.sort(key=lambda r: (r[0], r[3], r[2], r[1]))
bf16 = any("mtl_bf16" in r[4] for r in rows)
print("| model | preset | B | threads | mtl train ex/s | PyTorch train ex/s (setting) | ratio | "
      "mtl infer ex/s | PyTorch infer ex/s | ratio | train / bound | infer / bound | "
      "peak RSS MiB mtl / PyTorch | AUC click / cvr / ctcvr mtl | PyTorch |"
      + (" mtl bf16 infer ex/s (ratio to PyTorch FP32) |" if bf16 else ""))
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if bf16 else ""))
for _, model, nb, threads, s in rows:
    m, best = s["mtl"], s["best_torch"]
    t = s[best]
    def f(x, spec="%.0f"):
        return "-" if x is None else spec % x
    tb = s.get("train_bound")
    ib = s.get("infer_bound")
    b = s.get("mtl_bf16")
    extra = (" %s (%.2f) |" % (f(b["infer_examples_per_s"]), b["infer_examples_per_s"] / t["infer_examples_per_s"])
             if b else " - |") if bf16 else ""
    print(("| %s | %s | %d | %d | %s | %s (%s) | %.2f | %s | %s | %.2f | %s | %s | %s / %s | %.4f / %.4f / %.4f | %.4f / %.4f / %.4f |" + extra) % (
        model, s["config"].split()[3], -nb, threads, f(m["train_examples_per_s"]), f(t["train_examples_per_s"]),
        best, m["train_examples_per_s"] / t["train_examples_per_s"], f(m["infer_examples_per_s"]),
        f(t["infer_examples_per_s"]), m["infer_examples_per_s"] / t["infer_examples_per_s"],
        "-" if tb is None else "%.0f%%" % (100 * tb), "-" if ib is None else "%.0f%%" % (100 * ib),
        f(m["peak_rss_mib"]), f(t["peak_rss_mib"]), m["auc_click"], m["auc_cvr"], m["auc_ctcvr"],
        t["auc_click"], t["auc_cvr"], t["auc_ctcvr"]))
EOF
