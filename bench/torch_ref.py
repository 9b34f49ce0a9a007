#!/usr/bin/env python3
# Copied unchanged (apart from this note) from the shared benchmark kit, ../shared/bench/torch_ref.py,
# so that bench/compare.sh does not depend on ../shared. The workload is ../shared/bench/SPEC.md.
"""torch_ref.py - PyTorch (CPU) reference of the multi-task ranking benchmark.

Implements the five models of SPEC.md (shared_bottom, mmoe, ple, esmm, dbmtl)
on the CSV files written by gen_synth.py, and measures:

  load_train_seconds / load_test_seconds
      pandas.read_csv + conversion to tensors + dense z-scoring (timed apart;
      read_csv_train_seconds is the pandas.read_csv call alone)
  warm-up
      20 training steps on the first 20 batches; afterwards parameters are
      restored to their initial values and both optimizers are re-created, so
      the timed epoch starts from the same initial model
  train_examples_per_s
      one epoch over the training file in file order (no shuffling), batches
      of --batch rows, last partial batch included; forward + backward +
      Adam (dense) + SparseAdam (embeddings) per batch
  infer_examples_per_s
      forward pass (no grad, eval mode) over the whole test file in batches
      of --batch rows, producing p_click, p_ctcvr (and p_cvr); preceded by
      5 untimed inference batches (the first 5 test batches)
  AUCs (sklearn.metrics.roc_auc_score) on the test file
      auc_click  : p_click vs is_click, all rows
      auc_cvr    : on rows with is_click=1, p_cvr vs is_pay; p_cvr is the
                   CVR tower output for esmm, clip(p_pay/p_click, 0, 1) for
                   the other models
      auc_ctcvr  : p_ctcvr vs is_pay, all rows (p_pay for non-esmm models,
                   pCTR*pCVR for esmm)
  peak_rss_mib  resource.getrusage(RUSAGE_SELF).ru_maxrss at the end

Prints a few human-readable lines, then ONE JSON line (the last line) with all
figures.

Usage:
  /usr/bin/python3 torch_ref.py --model mmoe --batch 1024 --threads 2 \
      --train /tmp/mtlbench/train.csv --test /tmp/mtlbench/test.csv
Options: --model {shared_bottom,mmoe,ple,esmm,dbmtl}, --batch (1024),
  --preset {spec,paper} (spec; "paper" = the small MMoE-paper model sizes of
  SPEC.md section 6, defined for shared_bottom and mmoe only),
  --threads (torch.set_num_threads; OMP/OpenBLAS thread counts are set to the
  same value before torch is imported), --epochs (1), --train, --test,
  --train-rows N / --test-rows N (use only the first N rows; 0 = all),
  --seed (0, torch.manual_seed for parameter init),
  --phase-split (time each step's phases during the timed epoch and report
  the mean ms per step in "phase_ms"; off by default, and the default timed
  loop is unchanged).
Deterministic up to floating-point summation order; no network access.
"""
import argparse
import json
import os
import resource
import sys
import time

MODELS = ("shared_bottom", "mmoe", "ple", "esmm", "dbmtl")
PRESETS = ("spec", "paper")
PAPER_MODELS = ("shared_bottom", "mmoe")


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch reference for the MTL ranking benchmark")
    ap.add_argument("--model", choices=MODELS, required=True)
    ap.add_argument("--preset", choices=PRESETS, default="spec",
                    help="model sizes: spec (SPEC.md sections 2-3) or paper (SPEC.md section 6)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train", default="/tmp/mtlbench/train.csv")
    ap.add_argument("--test", default="/tmp/mtlbench/test.csv")
    ap.add_argument("--train-rows", type=int, default=0)
    ap.add_argument("--test-rows", type=int, default=0)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--infer-warmup", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=0,
                    help="OPENBLAS_NUM_THREADS (default: same as --threads)")
    ap.add_argument("--phase-split", action="store_true",
                    help="time forward/backward/optimizer phases of every timed training step")
    a = ap.parse_args()
    if a.preset == "paper" and a.model not in PAPER_MODELS:
        ap.error("model %s is not defined for preset paper (defined: %s)"
                 % (a.model, ", ".join(PAPER_MODELS)))
    return a


ARGS = parse_args()
# thread pools must be sized before torch (and its OpenBLAS/OpenMP) loads
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(ARGS.threads)
if ARGS.blas_threads:
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.blas_threads)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

# preset spec: dim 16 -> x has 14*16 + 8 = 232 floats; preset paper: dim 4 -> 64
EMB_DIM = 4 if ARGS.preset == "paper" else 16
ID_FIELDS = ["user_id", "item_id", "trigger_id"] + ["c%d" % i for i in range(1, 11)]
ID_CARDS = [100_000, 200_000, 200_000, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000]
TAG_CARD = 10_000
DENSE = ["d%d" % i for i in range(1, 9)]
IN_DIM = EMB_DIM * (len(ID_FIELDS) + 1) + len(DENSE)  # 232 (spec) or 64 (paper)
EMB_INIT = 0.05  # embeddings ~ U(-0.05, 0.05)


# ----------------------------------------------------------------- data
class Data:
    pass


def load(path, nrows, stats=None):
    dtypes = {c: np.int64 for c in ["is_click", "is_pay"] + ID_FIELDS}
    dtypes["tags"] = str
    dtypes.update({c: np.float64 for c in DENSE})
    t0 = time.perf_counter()
    df = pd.read_csv(path, dtype=dtypes, nrows=(nrows or None), engine="c")
    d = Data()
    d.read_csv_seconds = time.perf_counter() - t0
    d.n = len(df)
    d.click = torch.from_numpy(df["is_click"].to_numpy(np.float32))
    d.pay = torch.from_numpy(df["is_pay"].to_numpy(np.float32))
    ids = df[ID_FIELDS].to_numpy(np.int64)
    for j, card in enumerate(ID_CARDS):
        if ids[:, j].min() < 0 or ids[:, j].max() >= card:
            raise ValueError("%s out of range" % ID_FIELDS[j])
    d.ids = torch.from_numpy(np.ascontiguousarray(ids))
    tags = df["tags"].to_numpy()
    lens = np.fromiter((t.count("|") + 1 for t in tags), dtype=np.int64, count=d.n)
    flat = np.array("|".join(tags).split("|")).astype(np.int64)
    off = np.zeros(d.n + 1, dtype=np.int64)
    np.cumsum(lens, out=off[1:])
    d.tag_flat = torch.from_numpy(flat)
    d.tag_off = torch.from_numpy(off)
    dense = df[DENSE].to_numpy(np.float64)
    if stats is None:  # z-score statistics of the training file
        mean = dense.mean(0)
        std = dense.std(0)  # population std (ddof=0)
        std[std == 0] = 1.0
        stats = (mean, std)
    d.dense = torch.from_numpy(((dense - stats[0]) / stats[1]).astype(np.float32))
    return d, stats


def batch_slice(d, s, e):
    o0, o1 = int(d.tag_off[s]), int(d.tag_off[e])
    return (d.ids[s:e], d.tag_flat[o0:o1], d.tag_off[s:e] - o0, d.dense[s:e],
            d.click[s:e], d.pay[s:e])


# ----------------------------------------------------------------- models
def mlp(in_dim, hidden):
    layers = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.ReLU()]
        in_dim = h
    return nn.Sequential(*layers)


def tower(in_dim, hidden=64):  # [hidden] -> 1, returns logits
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class Embed(nn.Module):
    def __init__(self):
        super().__init__()
        self.tables = nn.ModuleList(nn.Embedding(c, EMB_DIM, sparse=True) for c in ID_CARDS)
        self.tags = nn.EmbeddingBag(TAG_CARD, EMB_DIM, mode="mean", sparse=True)
        for t in list(self.tables) + [self.tags]:
            nn.init.uniform_(t.weight, -EMB_INIT, EMB_INIT)

    def forward(self, ids, tag_flat, tag_off, dense):
        parts = [t(ids[:, j]) for j, t in enumerate(self.tables)]
        parts.append(self.tags(tag_flat, tag_off))
        parts.append(dense)
        return torch.cat(parts, 1)  # [B, IN_DIM]


class SharedBottom(nn.Module):
    def __init__(self, bottom=(256, 128), tower_hidden=64):
        super().__init__()
        self.bottom = mlp(IN_DIM, list(bottom))
        self.t_click = tower(bottom[-1], tower_hidden)
        self.t_pay = tower(bottom[-1], tower_hidden)

    def forward(self, x):
        h = self.bottom(x)
        return self.t_click(h).squeeze(1), self.t_pay(h).squeeze(1)


class MMoE(nn.Module):
    def __init__(self, n_exp=4, expert=(256, 128), tower_hidden=64):
        super().__init__()
        self.experts = nn.ModuleList(mlp(IN_DIM, list(expert)) for _ in range(n_exp))
        self.gates = nn.ModuleList(nn.Linear(IN_DIM, n_exp) for _ in range(2))
        self.towers = nn.ModuleList(tower(expert[-1], tower_hidden) for _ in range(2))

    def forward(self, x):
        e = torch.stack([ex(x) for ex in self.experts], 1)          # [B,n_exp,out]
        out = []
        for g, t in zip(self.gates, self.towers):
            w = F.softmax(g(x), dim=1).unsqueeze(2)                  # [B,n_exp,1]
            out.append(t((w * e).sum(1)).squeeze(1))
        return out[0], out[1]


class PLE(nn.Module):
    """2 extraction levels; per level 2 experts per task + 2 shared experts,
    expert = Linear(in,128)+ReLU.  Task gate t softmaxes over [task t experts,
    shared experts]; level 1 also has a shared gate over [task0 experts,
    task1 experts, shared experts] whose output is level 2's shared input."""

    def __init__(self, n_task_exp=2, n_shared_exp=2, levels=2, dim=128):
        super().__init__()
        self.levels = levels
        self.lv = nn.ModuleList()
        in_dim = IN_DIM
        for lvl in range(levels):
            m = nn.Module()
            m.task_exp = nn.ModuleList(
                nn.ModuleList(mlp(in_dim, [dim]) for _ in range(n_task_exp)) for _ in range(2))
            m.shared_exp = nn.ModuleList(mlp(in_dim, [dim]) for _ in range(n_shared_exp))
            m.task_gate = nn.ModuleList(nn.Linear(in_dim, n_task_exp + n_shared_exp) for _ in range(2))
            if lvl < levels - 1:
                m.shared_gate = nn.Linear(in_dim, 2 * n_task_exp + n_shared_exp)
            self.lv.append(m)
            in_dim = dim
        self.towers = nn.ModuleList(tower(dim) for _ in range(2))

    def forward(self, x):
        task_in = [x, x]
        shared_in = x
        for lvl, m in enumerate(self.lv):
            te = [[ex(task_in[t]) for ex in m.task_exp[t]] for t in range(2)]
            se = [ex(shared_in) for ex in m.shared_exp]
            new_task = []
            for t in range(2):
                e = torch.stack(te[t] + se, 1)
                w = F.softmax(m.task_gate[t](task_in[t]), dim=1).unsqueeze(2)
                new_task.append((w * e).sum(1))
            if lvl < self.levels - 1:
                e = torch.stack(te[0] + te[1] + se, 1)
                w = F.softmax(m.shared_gate(shared_in), dim=1).unsqueeze(2)
                shared_in = (w * e).sum(1)
            task_in = new_task
        return (self.towers[0](task_in[0]).squeeze(1),
                self.towers[1](task_in[1]).squeeze(1))


class ESMM(nn.Module):
    def __init__(self):
        super().__init__()
        self.ctr = nn.Sequential(mlp(IN_DIM, [256, 128, 64]), nn.Linear(64, 1))
        self.cvr = nn.Sequential(mlp(IN_DIM, [256, 128, 64]), nn.Linear(64, 1))

    def forward(self, x):  # logits of pCTR and pCVR
        return self.ctr(x).squeeze(1), self.cvr(x).squeeze(1)


class DBMTL(nn.Module):
    def __init__(self):
        super().__init__()
        self.bottom = mlp(IN_DIM, [256, 128])
        self.h_click = mlp(128, [64])
        self.h_pay = mlp(128, [64])
        self.rel = mlp(64, [32])           # relation MLP on the click hidden
        self.o_click = nn.Linear(64, 1)
        self.o_pay = nn.Linear(64 + 32, 1)

    def forward(self, x):
        b = self.bottom(x)
        hc = self.h_click(b)
        hp = torch.cat([self.h_pay(b), self.rel(hc)], 1)  # no stop-gradient
        return self.o_click(hc).squeeze(1), self.o_pay(hp).squeeze(1)


NETS = {"shared_bottom": SharedBottom, "mmoe": MMoE, "ple": PLE, "esmm": ESMM, "dbmtl": DBMTL}
# preset paper (SPEC.md section 6): the MMoE paper's sizes (8 experts of 16 units,
# towers of 8 units, a parameter-matched shared bottom of 113 units)
PAPER_NETS = {
    "shared_bottom": lambda: SharedBottom(bottom=(113,), tower_hidden=8),
    "mmoe": lambda: MMoE(n_exp=8, expert=(16,), tower_hidden=8),
}


def make_net(kind, preset):
    if preset == "spec":
        return NETS[kind]()
    if kind not in PAPER_NETS:
        raise ValueError("model %s is not defined for preset %s" % (kind, preset))
    return PAPER_NETS[kind]()


class Model(nn.Module):
    def __init__(self, kind, preset="spec"):
        super().__init__()
        self.kind = kind
        self.emb = Embed()
        self.net = make_net(kind, preset)

    def forward(self, ids, tag_flat, tag_off, dense):
        return self.net(self.emb(ids, tag_flat, tag_off, dense))

    def loss(self, out, click, pay):
        a, b = out
        if self.kind == "esmm":
            p_ctr = torch.sigmoid(a)
            p_ctcvr = p_ctr * torch.sigmoid(b)
            return F.binary_cross_entropy(p_ctr, click) + F.binary_cross_entropy(p_ctcvr, pay)
        return (F.binary_cross_entropy_with_logits(a, click)
                + F.binary_cross_entropy_with_logits(b, pay))

    def predict(self, out):
        """-> p_click, p_ctcvr, p_cvr"""
        a, b = out
        p_click = torch.sigmoid(a)
        if self.kind == "esmm":
            p_cvr = torch.sigmoid(b)
            return p_click, p_click * p_cvr, p_cvr
        p_pay = torch.sigmoid(b)
        return p_click, p_pay, torch.clamp(p_pay / p_click, 0.0, 1.0)


def make_optimizers(model):
    sparse = list(model.emb.parameters())
    dense = list(model.net.parameters())
    return (torch.optim.Adam(dense, lr=1e-3),
            torch.optim.SparseAdam(sparse, lr=1e-3))


def train_step(model, opts, bt):
    ids, tf, to, dn, yc, yp = bt
    loss = model.loss(model(ids, tf, to, dn), yc, yp)
    for o in opts:
        o.zero_grad(set_to_none=True)
    loss.backward()
    for o in opts:
        o.step()
    return loss.detach()


PHASES = ("slice", "forward", "zero_grad", "backward", "adam", "sparse_adam")


def train_step_phases(model, opts, d, s, e, acc):
    """train_step with a perf_counter stamp between phases (--phase-split);
    adds the seconds of each phase to acc. On CPU every op has finished when
    it returns, so the stamps split the step's wall time."""
    pc = time.perf_counter
    t0 = pc()
    ids, tf, to, dn, yc, yp = batch_slice(d, s, e)
    t1 = pc()
    loss = model.loss(model(ids, tf, to, dn), yc, yp)
    t2 = pc()
    for o in opts:
        o.zero_grad(set_to_none=True)
    t3 = pc()
    loss.backward()
    t4 = pc()
    opts[0].step()
    t5 = pc()
    opts[1].step()
    t6 = pc()
    for i, dt in enumerate((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)):
        acc[i] += dt
    return loss.detach()


def logloss(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main():
    a = ARGS
    torch.set_num_threads(a.threads)
    info = {"model": a.model, "preset": a.preset, "batch": a.batch, "threads": a.threads,
            "epochs": a.epochs, "seed": a.seed, "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "env": {k: os.environ[k] for k in ("OMP_WAIT_POLICY", "LD_LIBRARY_PATH",
                                               "OPENBLAS_NUM_THREADS", "LD_PRELOAD")
                    if k in os.environ}}
    try:
        from threadpoolctl import threadpool_info
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        info["blas"] = ["%s %s %s %s threads=%s %s" % (
            p.get("internal_api"), p.get("version"), p.get("threading_layer"),
            p.get("architecture"), p.get("num_threads"), p.get("filepath")) for p in blas]
    except Exception as e:  # pragma: no cover
        info["blas"] = "unknown (%s)" % e

    t0 = time.perf_counter()
    tr, stats = load(a.train, a.train_rows)
    t1 = time.perf_counter()
    te, _ = load(a.test, a.test_rows, stats)
    t2 = time.perf_counter()
    info.update(train_rows=tr.n, test_rows=te.n,
                load_train_seconds=round(t1 - t0, 3), load_test_seconds=round(t2 - t1, 3),
                read_csv_train_seconds=round(tr.read_csv_seconds, 3))
    print("loaded %d train rows in %.2fs, %d test rows in %.2fs" % (tr.n, t1 - t0, te.n, t2 - t1))

    torch.manual_seed(a.seed)
    model = Model(a.model, a.preset)
    n_dense = sum(p.numel() for p in model.net.parameters())
    n_emb = sum(p.numel() for p in model.emb.parameters())
    info.update(dense_params=n_dense, embedding_params=n_emb)
    B = a.batch
    nb = (tr.n + B - 1) // B

    # warm-up, then restore the initial model and fresh optimizer state
    init_state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    opts = make_optimizers(model)
    tw = time.perf_counter()
    for b in range(min(a.warmup, nb)):
        train_step(model, opts, batch_slice(tr, b * B, min((b + 1) * B, tr.n)))
    info["warmup_seconds"] = round(time.perf_counter() - tw, 3)
    model.load_state_dict(init_state)
    del init_state
    opts = make_optimizers(model)

    epoch_stats = []
    phase_acc = [0.0] * len(PHASES)
    for ep in range(a.epochs):
        model.train()
        loss_sum = torch.zeros(())
        ts = time.perf_counter()
        if a.phase_split:
            for b in range(nb):
                s, e = b * B, min((b + 1) * B, tr.n)
                loss_sum += train_step_phases(model, opts, tr, s, e, phase_acc) * (e - s)
        else:
            for b in range(nb):
                s, e = b * B, min((b + 1) * B, tr.n)
                loss_sum += train_step(model, opts, batch_slice(tr, s, e)) * (e - s)
        dt = time.perf_counter() - ts
        epoch_stats.append((dt, float(loss_sum) / tr.n))
        print("epoch %d: %.2fs, %.0f ex/s, mean train loss %.5f"
              % (ep + 1, dt, tr.n / dt, float(loss_sum) / tr.n))
    train_s = sum(x[0] for x in epoch_stats)
    info.update(train_seconds=round(train_s, 3),
                train_examples_per_s=round(tr.n * a.epochs / train_s, 1),
                train_loss_last_epoch=round(epoch_stats[-1][1], 5))
    if a.phase_split:  # mean ms per step over all timed steps; "rest" = loop overhead
        steps = nb * a.epochs
        ph = {k: round(1e3 * v / steps, 4) for k, v in zip(PHASES, phase_acc)}
        ph["step"] = round(1e3 * train_s / steps, 4)
        ph["rest"] = round(1e3 * (train_s - sum(phase_acc)) / steps, 4)
        info.update(phase_split=True, phase_steps=steps, phase_ms=ph)
        print("phase ms/step: " + ", ".join("%s %.3f" % kv for kv in ph.items()))

    model.eval()
    with torch.no_grad():  # untimed inference warm-up on the first batches
        for s in range(0, min(a.infer_warmup * B, te.n), B):
            ids, tf, to, dn, _, _ = batch_slice(te, s, min(s + B, te.n))
            model.predict(model(ids, tf, to, dn))
    pc = np.empty(te.n, np.float32)
    pp = np.empty(te.n, np.float32)
    pv = np.empty(te.n, np.float32)
    ti = time.perf_counter()
    with torch.no_grad():
        for s in range(0, te.n, B):
            e = min(s + B, te.n)
            ids, tf, to, dn, _, _ = batch_slice(te, s, e)
            c, p, v = model.predict(model(ids, tf, to, dn))
            pc[s:e] = c.numpy()
            pp[s:e] = p.numpy()
            pv[s:e] = v.numpy()
    di = time.perf_counter() - ti
    info.update(infer_seconds=round(di, 3), infer_examples_per_s=round(te.n / di, 1))

    yc = te.click.numpy()
    yp = te.pay.numpy()
    clicked = yc == 1
    info.update(
        auc_click=round(float(roc_auc_score(yc, pc)), 5),
        auc_cvr=round(float(roc_auc_score(yp[clicked], pv[clicked])), 5),
        auc_ctcvr=round(float(roc_auc_score(yp, pp)), 5),
        logloss_click=round(logloss(pc, yc), 5),
        logloss_ctcvr=round(logloss(pp, yp), 5),
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    )
    print("infer: %.0f ex/s; AUC click %.4f cvr %.4f ctcvr %.4f; peak RSS %.0f MiB"
          % (info["infer_examples_per_s"], info["auc_click"], info["auc_cvr"],
             info["auc_ctcvr"], info["peak_rss_mib"]))
    print(json.dumps(info))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
