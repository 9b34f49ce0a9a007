"""The peer of bench/embedding_bench.lua's full steps, in PyTorch.

The same training step on tables of 10^5, 10^6 and 10^7 rows x 16 dims, so
that the cost of a big table can be compared with what PyTorch pays for it on
the same machine in the same minutes:

  a batch of B rows x 5 id fields (all in the table under test) -> lookup
  [B, 5, 16] -> [B, 80] -> MLP [256, 128] (ReLU) -> 1 logit -> BCE with logits
  against fixed random labels (20 % ones); backward; Adam on the dense
  parameters, then SparseAdam on the table (nn.Embedding(sparse=True)), as in
  bench/SPEC.md section 3.3.

ids "uniform": B = 1024, 5,120 uniform random ids, fresh every step;
ids "zipf":    B = 2048, 10,240 Zipf ids (P(rank k) ~ k^-1.05 over the table's
               rows, ranks scattered by row = (mul (k-1) + off) mod rows),
               fresh every step, as bench/embedding_bench.lua draws them.

Protocol as bench/embedding_bench.lua: all tables built first (one SparseAdam
each; one dense model and its Adam shared by all tables); each round runs, per
setting and table (orders rotating), 8 untimed warm-up steps and a block of
timed steps; ids are drawn outside the timed part. One thread: the thread's CPU
time; more: wall time. Prints per setting and table the median over rounds of
the per-block median step, and its ratio to the 10^5 table's step in the same
round (median over rounds, min..max).

  /usr/bin/python3 bench/embedding_torch.py [rounds] [steps] [max_rows] [settings] [threads]
"""
import math
import statistics
import sys
import time

import numpy as np
import torch

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 15
STEPS = int(sys.argv[2]) if len(sys.argv) > 2 else 20
MAX_ROWS = float(sys.argv[3]) if len(sys.argv) > 3 else 1e7
SETTINGS = (sys.argv[4] if len(sys.argv) > 4 else "full:uniform,full:zipf").split(",")
THREADS = int(sys.argv[5]) if len(sys.argv) > 5 else 1
DIM, FIELDS, WARM, ZIPF_S = 16, 5, 8, 1.05
BATCH = {"uniform": 1024, "zipf": 2048}
torch.set_num_threads(THREADS)
clock = time.thread_time if THREADS == 1 else time.perf_counter
for s in SETTINGS:
    if s not in ("full:uniform", "full:zipf"):
        sys.exit("embedding_torch.py: unknown setting %s (full:uniform, full:zipf)" % s)


def zipf_ranks(rng, n, s, size):
    """Ranks 1..n with P(k) ~ k^-s: rejection-inversion (Hoermann and
    Derflinger), vectorized over the draws."""
    def h_int(x):  # H(x) = ((x^(1-s)) - 1) / (1-s)
        return np.expm1((1 - s) * np.log(x)) / (1 - s)

    def h_inv(y):
        return np.exp(np.log1p(y * (1 - s)) / (1 - s))

    def h(x):
        return np.exp(-s * np.log(x))

    hx1 = h_int(1.5) - 1.0
    hn = h_int(n + 0.5)
    sc = 2 - h_inv(h_int(2.5) - h(2.0))
    out = np.empty(size, dtype=np.int64)
    todo = np.arange(size)
    while todo.size:
        u = hn + rng.random(todo.size) * (hx1 - hn)
        x = h_inv(u)
        k = np.clip(np.floor(x + 0.5), 1, n)
        ok = (k - x <= sc) | (u >= h_int(k + 0.5) - h(k))
        out[todo[ok]] = k[ok].astype(np.int64)
        todo = todo[~ok]
    return out


torch.manual_seed(1)
rng = np.random.default_rng(1)
cases = []
for rows in (10 ** 5, 10 ** 6, 10 ** 7):
    if rows > MAX_ROWS:
        break
    t0 = time.perf_counter()
    emb = torch.nn.Embedding(rows, DIM, sparse=True)
    torch.nn.init.uniform_(emb.weight, -0.05, 0.05)
    opt = torch.optim.SparseAdam(emb.parameters(), lr=1e-3)
    cases.append({"rows": rows, "name": "10^%d" % round(math.log10(rows)), "emb": emb, "opt": opt,
                  "mul": 2654435761 % rows, "off": int(rng.integers(0, rows)),
                  "build_s": time.perf_counter() - t0})

torch.manual_seed(2)
dense = torch.nn.Sequential(torch.nn.Linear(FIELDS * DIM, 256), torch.nn.ReLU(), torch.nn.Linear(256, 128),
                            torch.nn.ReLU(), torch.nn.Linear(128, 1))
dense_opt = torch.optim.Adam(dense.parameters(), lr=1e-3)
labels = {k: (torch.rand(b) < 0.2).float() for k, b in BATCH.items()}
loss_fn = torch.nn.BCEWithLogitsLoss()


def draw(c, ids):
    n = BATCH[ids] * FIELDS
    if ids == "zipf":
        k = zipf_ranks(rng, c["rows"], ZIPF_S, n)
        r = ((k - 1) * c["mul"] + c["off"]) % c["rows"]
    else:
        r = rng.integers(0, c["rows"], n)
    return torch.from_numpy(r.astype(np.int64)).view(BATCH[ids], FIELDS)


def step(c, ids, x):
    t0 = clock()
    c["opt"].zero_grad()
    dense_opt.zero_grad()
    e = c["emb"](x).view(x.shape[0], FIELDS * DIM)
    t1 = clock()
    loss = loss_fn(dense(e).view(-1), labels[ids])
    loss.backward()
    t2 = clock()
    dense_opt.step()
    t3 = clock()
    c["opt"].step()
    t4 = clock()
    return t4 - t0, t1 - t0, t4 - t3


per = {(s, c["name"]): {"step": [], "ratio": [], "lookup": [], "sparse": []} for s in SETTINGS for c in cases}
for rnd in range(ROUNDS):
    for j in range(len(SETTINGS)):
        s = SETTINGS[(rnd + j) % len(SETTINGS)]
        ids = s.split(":")[1]
        block = {}
        for k in range(len(cases)):
            c = cases[(rnd + k) % len(cases)]
            for _ in range(WARM):
                step(c, ids, draw(c, ids))
            xs = [draw(c, ids) for _ in range(STEPS)]
            ts = [step(c, ids, x) for x in xs]
            block[c["name"]] = [statistics.median(t[i] for t in ts) * 1e3 for i in range(3)]
        for c in cases:
            p = per[(s, c["name"])]
            st, lk, sp = block[c["name"]]
            p["step"].append(st)
            p["lookup"].append(lk)
            p["sparse"].append(sp)
            p["ratio"].append(st / block[cases[0]["name"]][0])

print("PyTorch %s, dim %d, %d thread%s, %d interleaved rounds; per table and round a block of %d steps; "
      "%s ms per step: median over rounds of the per-block medians (min..max over rounds); Zipf exponent %.2f"
      % (torch.__version__, DIM, THREADS, "s" if THREADS > 1 else "", ROUNDS, STEPS,
         "wall" if THREADS > 1 else "CPU", ZIPF_S))
for s in SETTINGS:
    ids = s.split(":")[1]
    print()
    print("%s (batch %d x %d fields, MLP [256,128] -> 1, BCE, Adam + SparseAdam)" % (s, BATCH[ids], FIELDS))
    print("%-5s %6s  %-22s %-19s %-22s %-22s" % ("rows", "ids", "step ms", "step / 10^5 step", "lookup ms",
                                                "SparseAdam ms"))
    for c in cases:
        p = per[(s, c["name"])]

        def cell(xs, fmt):
            return (fmt + " (" + fmt + ".." + fmt + ")") % (statistics.median(xs), min(xs), max(xs))
        print("%-5s %6d  %-22s %-19s %-22s %-22s" % (c["name"], BATCH[ids] * FIELDS, cell(p["step"], "%.3f"),
                                                     cell(p["ratio"], "%.2f"), cell(p["lookup"], "%.3f"),
                                                     cell(p["sparse"], "%.3f")))
print()
print("build (table + SparseAdam): " + ", ".join("%s %.1f s" % (c["name"], c["build_s"]) for c in cases))
