#!/usr/bin/python3
"""The reading benchmark's pandas side: SPEC.md §4 step 1 (the load step) the
way the PyTorch reference (../shared/bench/torch_ref.py, load()) does it, with
numpy arrays in place of torch tensors:
pandas.read_csv (C engine, int64 ids, str tags, float64 dense), tags to a flat
int64 id array plus int64 offsets, z-score of d1..d8 with the file's mean and
population std in float64, cast to float32.

    /usr/bin/python3 bench/read_bench_pandas.py [train.csv] [--repeat N]

Prints seconds (best and median of N runs, and the read_csv call alone) and rows/s.
"""
import sys
import time

import numpy as np
import pandas as pd

ID_FIELDS = ["user_id", "item_id", "trigger_id"] + ["c%d" % k for k in range(1, 11)]
DENSE = ["d%d" % k for k in range(1, 9)]


def load(path):
    dtypes = {c: np.int64 for c in ["is_click", "is_pay"] + ID_FIELDS}
    dtypes["tags"] = str
    dtypes.update({c: np.float64 for c in DENSE})
    t0 = time.perf_counter()
    df = pd.read_csv(path, dtype=dtypes, engine="c")
    t_csv = time.perf_counter() - t0
    n = len(df)
    click = df["is_click"].to_numpy(np.float32)
    pay = df["is_pay"].to_numpy(np.float32)
    ids = np.ascontiguousarray(df[ID_FIELDS].to_numpy(np.int64))
    tags = df["tags"].to_numpy()
    lens = np.fromiter((t.count("|") + 1 for t in tags), dtype=np.int64, count=n)
    flat = np.array("|".join(tags).split("|")).astype(np.int64)
    off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    dense = df[DENSE].to_numpy(np.float64)
    mean = dense.mean(0)
    std = dense.std(0)  # population std (ddof=0)
    std[std == 0] = 1.0
    z = ((dense - mean) / std).astype(np.float32)
    t = time.perf_counter() - t0
    return t, t_csv, (n, click, pay, ids, flat, off, z, mean, std)


def main():
    path, reps = "/tmp/mtlbench/train.csv", 5
    args = sys.argv[1:]
    while args:
        a = args.pop(0)
        if a == "--repeat":
            reps = int(args.pop(0))
        else:
            path = a
    times, csv_times = [], []
    for _ in range(reps):
        t, t_csv, result = load(path)
        times.append(t)
        csv_times.append(t_csv)
    times.sort()
    csv_times.sort()
    n, _, _, _, flat, _, _, mean, std = result
    print("pandas %s %s: %d rows, %d tag ids" % (pd.__version__, path, n, len(flat)))
    print("  load seconds: best %.4f  median %.4f  (%d runs); read_csv alone: best %.4f"
          % (times[0], times[(len(times) - 1) // 2], len(times), csv_times[0]))
    print("  rows/s: %.0f (best)" % (n / times[0]))
    for k, name in enumerate(DENSE):
        print("  %s mean %.6g std %.6g" % (name, mean[k], std[k]))


if __name__ == "__main__":
    main()
