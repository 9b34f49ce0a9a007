#!/usr/bin/env python3
# Copied unchanged (apart from this note) from the shared benchmark kit, ../shared/bench/gen_synth.py,
# so that the project's benchmarks (bench/read_bench*.{lua,py}) do not depend on ../shared.
# The data and its format are specified in ../shared/bench/SPEC.md §1.
"""gen_synth.py - deterministic synthetic e-commerce multi-task ranking data.

Writes one CSV (header line, comma separated, no quoting) with the columns

    is_click,is_pay,user_id,item_id,trigger_id,c1,...,c10,tags,d1,...,d8

  is_click, is_pay   0/1 labels; is_pay is always 0 when is_click is 0
  user_id            integer id in [0, 100000)
  item_id            integer id in [0, 200000)
  trigger_id         integer id in [0, 200000) (same id space as item_id)
  c1..c10            categorical integer ids in [0, card_j), cards
                     5,10,20,50,100,200,500,1000,5000,10000
  tags               1..8 tag ids in [0, 10000) joined by '|' (may repeat)
  d1..d8             floats (printed with 6 significant digits), several
                     heavy-tailed (price, counts)

Ground truth ("the hidden world"): every row's labels are drawn from
    p_click           = sigmoid(click_logit(row))
    p_pay_given_click = sigmoid(pay_logit(row))
    is_click ~ Bernoulli(p_click); is_pay = is_click * Bernoulli(p_pay_given_click)
where both logits combine user/item latent factors (dim 8), user/item biases,
an item-trigger similarity, per-value effects of some categorical fields,
a user-x-tag interaction and (partly nonlinear) effects of the dense features.
The pay logit uses latent factors that are correlated with, but different
from, the click ones.  The world (all latent vectors, effects, id
permutations, item attributes) is built from --world-seed (default fixed), so
files generated with different --seed values share the same ground truth:
--seed only drives which rows are sampled and the label coin flips.

--oracle FILE writes, row-aligned with the CSV, the true probabilities
p_click, p_cvr (= p(pay | click)) and p_ctcvr (= p_click * p_cvr); the
script also prints the oracle AUCs (best achievable in expectation).

Ids are Zipf-like in popularity (users exponent 0.90, items 1.00, ranks
mapped to ids by a fixed random permutation).

Usage (the benchmark's files):
    python3 gen_synth.py --rows 200000 --seed 1 --out /tmp/mtlbench/train.csv \
        --oracle /tmp/mtlbench/train_oracle.csv
    python3 gen_synth.py --rows 50000  --seed 2 --out /tmp/mtlbench/test.csv \
        --oracle /tmp/mtlbench/test_oracle.csv

Needs only numpy (pandas not used).  Deterministic: numpy.random.Generator
(PCG64) seeded from the arguments; same numpy => byte-identical output.
No network access.
"""
import argparse
import os
import sys
import time

import numpy as np

N_USERS = 100_000
N_ITEMS = 200_000
N_TAGS = 10_000
CAT_CARDS = [5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000]
MAX_TAGS = 8
K = 8  # latent dimension of the hidden world

# calibrated intercepts (click rate ~15%, pay|click ~10% on this world)
B_CLICK = -2.25
B_PAY = -4.11

DEFAULT_WORLD_SEED = 20240607


def zipf_cdf(n, a, q=2.0):
    """CDF over ranks 0..n-1 of p(r) ~ 1/(r+q)^a."""
    w = 1.0 / np.power(np.arange(n, dtype=np.float64) + q, a)
    c = np.cumsum(w)
    return c / c[-1]


def zipf_sample(rng, cdf, size):
    r = np.searchsorted(cdf, rng.random(size), side="right")
    return np.minimum(r, len(cdf) - 1)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class World:
    """All hidden, seed-independent parameters of the ground truth."""

    def __init__(self, seed):
        g = np.random.default_rng(seed)
        # popularity: rank -> id permutations
        self.user_perm = g.permutation(N_USERS)
        self.item_perm = g.permutation(N_ITEMS)
        self.tag_perm = g.permutation(N_TAGS)
        self.user_cdf = zipf_cdf(N_USERS, 0.90)
        self.item_cdf = zipf_cdf(N_ITEMS, 1.00)
        self.tag_cdf = zipf_cdf(N_TAGS, 1.00)
        self.c10_cdf = zipf_cdf(CAT_CARDS[9], 1.00)
        # item attributes (functions of item id)
        self.item_cat = g.integers(0, CAT_CARDS[5], N_ITEMS)      # c6
        self.item_brand = g.integers(0, CAT_CARDS[6], N_ITEMS)    # c7
        self.item_shop = g.integers(0, CAT_CARDS[8], N_ITEMS)     # c9
        self.item_tag = self.tag_perm[zipf_sample(g, self.tag_cdf, N_ITEMS)]
        self.item_logprice = (g.normal(3.0, 1.0, CAT_CARDS[5])[self.item_cat]
                              + g.normal(0.0, 0.5, N_ITEMS))
        self.item_sales = np.floor(g.pareto(1.2, N_ITEMS) * 20.0)  # heavy tail
        # user attributes (functions of user id)
        self.user_city = g.integers(0, CAT_CARDS[7], N_USERS)     # c8
        self.user_seg = g.integers(0, CAT_CARDS[2], N_USERS)      # c3
        self.user_act = g.lognormal(1.5, 1.0, N_USERS)            # activity
        # latent factors; item vectors partly shared within a category so
        # that a same-category trigger is similar to the item
        cat_vec = g.normal(0.0, 0.5, (CAT_CARDS[5], K))
        self.U = g.normal(0.0, 0.5, (N_USERS, K))
        self.V = 0.6 * cat_vec[self.item_cat] + 0.8 * g.normal(0.0, 0.5, (N_ITEMS, K))
        self.T = g.normal(0.0, 0.5, (N_TAGS, K))
        # pay-side factors: correlated (0.6) with the click ones
        self.U2 = 0.6 * self.U + 0.8 * g.normal(0.0, 0.5, (N_USERS, K))
        self.V2 = 0.6 * self.V + 0.8 * g.normal(0.0, 0.5, (N_ITEMS, K))
        self.ub = g.normal(0.0, 0.3, N_USERS)
        self.ib = g.normal(0.0, 0.5, N_ITEMS)
        self.ub2 = 0.5 * self.ub + g.normal(0.0, 0.3, N_USERS)
        self.ib2 = 0.6 * self.ib + g.normal(0.0, 0.4, N_ITEMS)
        # categorical per-value effects (c10 is a pure noise field for click)
        click_sd = [0.3, 0.2, 0.2, 0.1, 0.2, 0.3, 0.2, 0.2, 0.2, 0.0]
        pay_sd = [0.1, 0.1, 0.2, 0.0, 0.3, 0.2, 0.3, 0.1, 0.3, 0.0]
        self.ce = [g.normal(0.0, s, c) for s, c in zip(click_sd, CAT_CARDS)]
        self.pe = [g.normal(0.0, s, c) for s, c in zip(pay_sd, CAT_CARDS)]
        # items sorted by category, for same-category trigger sampling
        self.cat_order = np.argsort(self.item_cat, kind="stable")
        self.cat_start = np.searchsorted(self.item_cat[self.cat_order],
                                         np.arange(CAT_CARDS[5]))
        self.cat_count = np.bincount(self.item_cat, minlength=CAT_CARDS[5])


def generate(world, rows, seed):
    w = world
    g = np.random.default_rng([seed, 7919])
    n = rows
    user = w.user_perm[zipf_sample(g, w.user_cdf, n)]
    item = w.item_perm[zipf_sample(g, w.item_cdf, n)]
    # trigger: 60% an item of the same category, else a popularity draw
    same = g.random(n) < 0.6
    ic = w.item_cat[item]
    pos = w.cat_start[ic] + np.floor(g.random(n) * w.cat_count[ic]).astype(np.int64)
    trig_same = w.cat_order[pos]
    trig_any = w.item_perm[zipf_sample(g, w.item_cdf, n)]
    trigger = np.where(same, trig_same, trig_any)

    c = np.empty((n, 10), dtype=np.int64)
    c[:, 0] = np.searchsorted(np.cumsum([0.55, 0.3, 0.1, 0.04, 0.01]),
                              g.random(n) * 0.999999, side="right")  # device
    c[:, 1] = g.integers(0, 10, n)                                    # slot
    c[:, 2] = w.user_seg[user]                                        # user seg
    c[:, 3] = g.integers(0, 50, n)                                    # page
    c[:, 4] = (w.item_cat[item] * 7 + g.integers(0, 3, n)) % 100      # scene
    c[:, 5] = w.item_cat[item]                                        # category
    c[:, 6] = w.item_brand[item]                                      # brand
    c[:, 7] = w.user_city[user]                                       # city
    c[:, 8] = w.item_shop[item]                                       # shop
    c[:, 9] = zipf_sample(g, w.c10_cdf, n)                            # query

    # tags: 1..8 per row; first = the item's tag, rest popularity draws
    ntag = g.integers(1, MAX_TAGS + 1, n)
    tagm = w.tag_perm[zipf_sample(g, w.tag_cdf, n * MAX_TAGS)].reshape(n, MAX_TAGS)
    tagm[:, 0] = w.item_tag[item]
    tmask = np.arange(MAX_TAGS)[None, :] < ntag[:, None]
    tag_mean = (w.T[tagm] * tmask[:, :, None]).sum(1) / ntag[:, None]

    # dense features
    logprice = w.item_logprice[item] + g.normal(0.0, 0.1, n)
    d = np.empty((n, 8), dtype=np.float64)
    d[:, 0] = np.exp(logprice)                                  # price
    d[:, 1] = w.item_sales[item]                                # item sales
    d[:, 2] = g.poisson(w.user_act[user])                       # user 30d clicks
    d[:, 3] = np.floor(g.exponential(8.0, n)) + 1.0             # position
    d[:, 4] = np.round(g.beta(1.0, 4.0, n), 3)                  # discount
    d[:, 5] = g.normal(0.0, 1.0, n)                             # match score
    d[:, 6] = g.exponential(24.0, n)                            # hours since visit
    d[:, 7] = g.normal(0.0, 1.0, n)                             # noise

    lp = logprice - 3.0
    click = (B_CLICK + w.ub[user] + w.ib[item]
             + np.einsum("ij,ij->i", w.U[user], w.V[item])
             + 0.8 * np.einsum("ij,ij->i", w.V[item], w.V[trigger])
             + 1.0 * np.einsum("ij,ij->i", w.U[user], tag_mean)
             - 0.15 * lp + 0.08 * np.log1p(d[:, 1]) + 0.10 * np.log1p(d[:, 2])
             - 0.35 * np.log(d[:, 3]) + 0.6 * d[:, 4]
             + 0.35 * d[:, 5] - 0.15 * d[:, 5] ** 2
             - 0.08 * np.log1p(d[:, 6]))
    pay = (B_PAY + w.ub2[user] + w.ib2[item]
           + np.einsum("ij,ij->i", w.U2[user], w.V2[item])
           + 0.5 * np.einsum("ij,ij->i", w.V2[item], w.V[trigger])
           - 0.45 * lp + 0.10 * np.log1p(d[:, 1]) + 0.15 * np.log1p(d[:, 2])
           + 1.8 * d[:, 4] + 0.2 * d[:, 5] - 0.1 * np.log1p(d[:, 6]))
    for j in range(10):
        click += w.ce[j][c[:, j]]
        pay += w.pe[j][c[:, j]]
    p_click = sigmoid(click)
    p_cvr = sigmoid(pay)
    is_click = (g.random(n) < p_click).astype(np.int64)
    is_pay = is_click * (g.random(n) < p_cvr).astype(np.int64)
    return dict(is_click=is_click, is_pay=is_pay, user=user, item=item,
                trigger=trigger, c=c, ntag=ntag, tagm=tagm, d=d,
                p_click=p_click, p_cvr=p_cvr)


def fmt_ints(a):
    return a.astype(str)


def write_csv(path, r):
    n = len(r["user"])
    cols = [fmt_ints(r["is_click"]), fmt_ints(r["is_pay"]), fmt_ints(r["user"]),
            fmt_ints(r["item"]), fmt_ints(r["trigger"])]
    cols += [fmt_ints(r["c"][:, j]) for j in range(10)]
    tstr = r["tagm"].astype(str)
    tags = tstr[:, 0]
    for j in range(1, MAX_TAGS):
        tags = np.where(r["ntag"] > j, np.char.add(np.char.add(tags, "|"), tstr[:, j]), tags)
    cols.append(tags)
    cols += [np.char.mod("%.6g", r["d"][:, j]) for j in range(8)]
    header = ["is_click", "is_pay", "user_id", "item_id", "trigger_id"]
    header += ["c%d" % (j + 1) for j in range(10)] + ["tags"]
    header += ["d%d" % (j + 1) for j in range(8)]
    with open(path, "w", newline="\n") as f:
        f.write(",".join(header) + "\n")
        step = 50_000
        for s in range(0, n, step):
            block = [col[s:s + step] for col in cols]
            f.write("\n".join(",".join(t) for t in zip(*block)) + "\n")


def auc(score, label):
    """ROC AUC with average ranks for ties (Mann-Whitney)."""
    score = np.asarray(score, dtype=np.float64)
    label = np.asarray(label)
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    # average ranks over tied runs
    bounds = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(s)]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    npos = int(label.sum())
    nneg = len(label) - npos
    if npos == 0 or nneg == 0:
        return float("nan")
    return float((ranks[label == 1].sum() - npos * (npos + 1) / 2.0) / (npos * nneg))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--world-seed", type=int, default=DEFAULT_WORLD_SEED)
    ap.add_argument("--out", required=True)
    ap.add_argument("--oracle", default=None,
                    help="write p_click,p_cvr,p_ctcvr per row to this CSV")
    a = ap.parse_args()
    t0 = time.perf_counter()
    world = World(a.world_seed)
    t1 = time.perf_counter()
    r = generate(world, a.rows, a.seed)
    t2 = time.perf_counter()
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    write_csv(a.out, r)
    if a.oracle:
        with open(a.oracle, "w", newline="\n") as f:
            f.write("p_click,p_cvr,p_ctcvr\n")
            m = np.stack([r["p_click"], r["p_cvr"], r["p_click"] * r["p_cvr"]], 1)
            np.savetxt(f, m, fmt="%.6f", delimiter=",")
    t3 = time.perf_counter()
    ic, ip = r["is_click"], r["is_pay"]
    clicked = ic == 1
    stats = dict(
        rows=a.rows, seed=a.seed, world_seed=a.world_seed,
        click_rate=round(float(ic.mean()), 5),
        pay_rate=round(float(ip.mean()), 5),
        pay_given_click=round(float(ip[clicked].mean()), 5),
        oracle_auc_click=round(auc(r["p_click"], ic), 5),
        oracle_auc_cvr_on_clicked=round(auc(r["p_cvr"][clicked], ip[clicked]), 5),
        oracle_auc_ctcvr=round(auc(r["p_click"] * r["p_cvr"], ip), 5),
        distinct_users=int(len(np.unique(r["user"]))),
        distinct_items=int(len(np.unique(r["item"]))),
        world_seconds=round(t1 - t0, 3), sample_seconds=round(t2 - t1, 3),
        write_seconds=round(t3 - t2, 3), total_seconds=round(t3 - t0, 3),
    )
    import json
    print(json.dumps(stats))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
