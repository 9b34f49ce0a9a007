#!/usr/bin/env bash
# profile.sh - where the time of one training step goes (perf, by category).
#
#   bench/profile.sh MODEL BATCH [STEPS] [PRESET] [THREADS]
#
# Runs bench/step_loop.lua under `perf record` (sampling only the timed steps:
# recording starts when the loop prints "timed") and sums the samples by
# function into categories: GEMM (OpenBLAS kernel, packing, beta), embeddings
# (lookups, bags, their backward, coalescing, SparseAdam), dense Adam,
# elementwise (linear's epilogue and gradient mask, mix, softmax, losses,
# copies), framework (Lua, autograd, allocation, GC) and the rest.
# Env: MTL (default <repo>/build/mtl), PERF_FREQ (2000).
set -u
HERE="$(cd "$(dirname "$0")" && pwd)"
MTL="${MTL:-$HERE/../build/mtl}"
MODEL="${1:?usage: profile.sh MODEL BATCH [STEPS] [PRESET] [THREADS]}"
BATCH="${2:?usage: profile.sh MODEL BATCH [STEPS] [PRESET] [THREADS]}"
STEPS="${3:-200}"
PRESET="${4:-spec}"
THREADS="${5:-1}"
DATA="$(mktemp -d)"
trap 'rm -rf "$DATA"' EXIT
mkfifo "$DATA/ctl" "$DATA/ack"
# perf starts disabled (-D -1) and is enabled through its control fifo when the loop says "timed"
perf record -F "${PERF_FREQ:-2000}" -D -1 --control "fifo:$DATA/ctl,$DATA/ack" -o "$DATA/perf.data" \
  "$MTL" "$HERE/step_loop.lua" "$MODEL" "$BATCH" "$STEPS" "$PRESET" "$THREADS" 2>"$DATA/err" &
PID=$!
exec 3>"$DATA/ctl" 4<"$DATA/ack"
until grep -q timed "$DATA/err" 2>/dev/null; do
  kill -0 $PID 2>/dev/null || { cat "$DATA/err" >&2; exit 1; }
  sleep 0.05
done
echo enable >&3
read -r -u 4 _
wait $PID
perf report -i "$DATA/perf.data" --no-children --sort symbol -F overhead,sym --stdio 2>/dev/null |
  /usr/bin/python3 -c '
import re, sys
cats = [
  ("GEMM kernel", r"sgemm_kernel|sgemm_small"),
  ("GEMM packing", r"sgemm_.*copy"),
  ("GEMM beta (zeroing C)", r"sgemm_beta"),
  ("GEMM other", r"sgemm|cblas|gemm_"),
  ("embedding forward (lookup, bag)", r"embedding_lookup$|embedding_bag$|embedding_resolve|embedding_lookup\b|embedding_bag\b|gather_rows"),
  ("embedding backward (append, coalesce, sort)", r"embedding_.*backward|grad_append|grad_coalesce|sort_pairs|radix"),
  ("SparseAdam / dense Adam (optim.c)", r"run_kernel|optim_|adam"),
  ("linear epilogue and gradient mask", r"lin_fwd_part|lin_mask_part|mtl_linear"),
  ("mix", r"mix_|mtl_mix|row_dot"),
  ("other ops (softmax, losses, concat, copies)", r"softmax|bce|concat|join|copy_into|contiguous|unary|binary|sum_|reduce|sigmoid|log1p|expf|logf|memmove|memcpy|memset"),
  ("framework (Lua, autograd, tensors, allocation)", r"lua|lj_|\[JIT\]|0x0000|tensor_|node_|record|backward|alloc|free|handle|mutex|testudata|bind_|accumulate|needs_grad|topo"),
]
tot = {}
for line in sys.stdin:
    m = re.match(r"\s*([\d.]+)%\s+\[[.k]\]\s+(\S+)", line)
    if not m: continue
    pct, sym = float(m.group(1)), m.group(2)
    for name, rx in cats:
        if re.search(rx, sym):
            tot[name] = tot.get(name, 0) + pct; break
    else:
        tot["rest (kernel, libc, ...)"] = tot.get("rest (kernel, libc, ...)", 0) + pct
for name, pct in sorted(tot.items(), key=lambda kv: -kv[1]):
    print("%6.1f%%  %s" % (pct, name))
'
cat "$DATA/err" | grep -v '^timed$' >&2
