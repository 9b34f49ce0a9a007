/* C test of the embedding core (no Lua): the id map (with backward-shift
 * deletion) against a plain array, the radix sort against qsort, gradient
 * coalescing, a lookup's backward, the row-wise Adam against the dense
 * kernel when every row is touched, the row blocks (weights next to their
 * optimizer state), gradients added by id, and the sightings hook of dynamic
 * tables. Prints nothing on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/embedding_internal.h"
#include "check.h"
#include "mtl/autograd.h"
#include "mtl/embedding.h"
#include "mtl/optim.h"

/* The id map (mtl/id_map.h): random keys from a small range, so inserts,
 * hits and removals all happen. */
static void test_id_map(void) {
  enum { RANGE = 4096, OPS = 200000 };
  static int64_t present[RANGE]; /* value + 1, or 0 when absent */
  mtl_id_map m = {0};
  mtl_seed(3);
  for (int op = 0; op < OPS; op++) {
    int64_t k = (int64_t)(mtl_rand_u64() % RANGE), key = (k - RANGE / 2) * 7919; /* negative keys too */
    mtl_id_entry *e = mtl_id_map_find(&m, key);
    CHECK((e != NULL) == (present[k] != 0), "key %lld: found %d, present %lld", (long long)key, e != NULL,
          (long long)present[k]);
    if (e) CHECK(e->val == present[k] - 1, "key %lld: value %lld", (long long)key, (long long)e->val);
    if (mtl_rand_u64() % 3 == 0) {
      if (e) {
        mtl_id_map_remove(&m, e);
        present[k] = 0;
      }
    } else if (!e) { /* insert, or find_or_insert (which must add it) */
      bool added = false;
      e = op % 2 ? mtl_id_map_insert(&m, key) : mtl_id_map_find_or_insert(&m, key, &added);
      CHECK(e != NULL, "insert failed");
      if (!e) break;
      CHECK(op % 2 || (added && e->key == key && e->val == 0), "find_or_insert did not add key %lld",
            (long long)key);
      e->val = op;
      present[k] = op + 1;
    } else if (op % 2) { /* a present key: find_or_insert finds it (the map may grow) */
      bool added = true;
      mtl_id_entry *f = mtl_id_map_find_or_insert(&m, key, &added);
      CHECK(f && !added && f->key == key && f->val == present[k] - 1, "find_or_insert missed key %lld",
            (long long)key);
    }
  }
  int64_t count = 0;
  for (int k = 0; k < RANGE; k++) count += present[k] != 0;
  CHECK(m.count == count, "count %lld, expected %lld", (long long)m.count, (long long)count);
  mtl_id_map_free(&m);
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void test_sort(void) {
  enum { N = 5000 };
  static int64_t keys[N], vals[N], ref[N];
  /* key ranges of 17, 64, 3, 24, 25, 36 and 1 varying bits (the radix passes adapt to them) */
  const int64_t range[] = {100000, 0, 7, 10000000, 1 << 25, (int64_t)1 << 36, 2};
  for (int round = 0; round < (int)(sizeof range / sizeof range[0]); round++) {
    for (int i = 0; i < N; i++) {
      uint64_t r = mtl_rand_u64();
      keys[i] = range[round] == 0 ? (int64_t)r : (int64_t)(r % (uint64_t)range[round]) - (round == 2 ? 3 : 0);
      vals[i] = i;
      ref[i] = keys[i];
    }
    int64_t orig[N];
    memcpy(orig, keys, sizeof orig);
    CHECK(mtl_sort_pairs(N, keys, vals) == 0, "%s", mtl_error_message());
    qsort(ref, N, sizeof ref[0], cmp_i64);
    for (int i = 0; i < N; i++) {
      CHECK(keys[i] == ref[i], "round %d: position %d: %lld, expected %lld", round, i, (long long)keys[i],
            (long long)ref[i]);
      CHECK(orig[vals[i]] == keys[i], "round %d: value %d does not travel with its key", round, i);
      if (i > 0 && keys[i] == keys[i - 1]) CHECK(vals[i] > vals[i - 1], "round %d: the sort is not stable", round);
    }
  }
}

static mtl_embedding *fixed_table(int64_t rows, int64_t dim) {
  mtl_embedding_config c = {.kind = MTL_EMB_FIXED, .dim = dim, .num_rows = rows, .init = MTL_INIT_NORMAL,
                            .scale = 0.5};
  mtl_embedding *t = mtl_embedding_new(&c);
  CHECK(t != NULL, "%s", mtl_error_message());
  return t;
}

/* lookup -> backward(g): the coalesced gradient is the per-id sum of g's rows. */
static void test_lookup_backward(void) {
  mtl_embedding *t = fixed_table(10, 3);
  if (!t) return;
  int64_t n = 6, ids_v[6] = {7, 2, 7, 0, 2, 7}, gshape[2] = {6, 3};
  mtl_tensor *ids = mtl_tensor_new(MTL_I64, 1, &n), *g = mtl_tensor_new(MTL_F32, 2, gshape);
  memcpy(mtl_i64(ids), ids_v, sizeof ids_v);
  for (int i = 0; i < 18; i++) mtl_f32(g)[i] = (float)(i + 1);
  mtl_tensor *y = mtl_embedding_lookup(t, ids);
  CHECK(y && y->ndim == 2 && y->shape[0] == 6 && y->shape[1] == 3, "lookup shape");
  for (int i = 0; y && i < 6; i++)
    for (int j = 0; j < 3; j++)
      CHECK(mtl_f32(y)[i * 3 + j] == mtl_embedding_row(t, ids_v[i])[j], "row %d", i);
  CHECK(y && mtl_backward(y, g) == 0, "%s", mtl_error_message());
  CHECK(mtl_embedding_grad_coalesce(t) == 0, "%s", mtl_error_message());
  CHECK(t->g_nnz == 3, "nnz %lld", (long long)t->g_nnz);
  int64_t want_rows[3] = {0, 2, 7};
  for (int k = 0; k < 3 && t->g_nnz == 3; k++) {
    CHECK(t->g_rows[k] == want_rows[k], "entry %d is row %lld", k, (long long)t->g_rows[k]);
    for (int j = 0; j < 3; j++) {
      float want = 0;
      for (int i = 0; i < 6; i++)
        if (ids_v[i] == want_rows[k]) want += mtl_f32(g)[i * 3 + j];
      CHECK(t->g_vals[k * 3 + j] == want, "row %lld entry %d: %g, expected %g", (long long)want_rows[k], j,
            t->g_vals[k * 3 + j], want);
    }
  }
  mtl_tensor_release(y);
  mtl_tensor_release(ids);
  mtl_tensor_release(g);
  mtl_embedding_release(t);
}

static mtl_tensor *i64_tensor(int64_t n, const int64_t *v) {
  mtl_tensor *t = mtl_tensor_new(MTL_I64, 1, &n);
  if (t) memcpy(mtl_i64(t), v, (size_t)n * sizeof *v);
  return t;
}

/* mtl_embedding_grad_add: entries by id accumulate like a lookup's backward;
 * a bad id adds nothing. */
static void test_grad_add(void) {
  mtl_embedding *t = fixed_table(10, 2);
  if (!t) return;
  int64_t ids_v[3] = {7, 2, 7}, vshape[2] = {3, 2};
  mtl_tensor *ids = i64_tensor(3, ids_v), *vals = mtl_tensor_new(MTL_F32, 2, vshape);
  for (int i = 0; i < 6; i++) mtl_f32(vals)[i] = (float)(i + 1); /* rows {1,2} {3,4} {5,6} */
  CHECK(mtl_embedding_grad_add(t, ids, vals) == 0, "%s", mtl_error_message());
  mtl_tensor *y = mtl_embedding_lookup(t, ids); /* and a lookup's backward of ones on top */
  mtl_tensor *g = mtl_tensor_new(MTL_F32, 2, vshape);
  for (int i = 0; i < 6; i++) mtl_f32(g)[i] = 1;
  CHECK(y && mtl_backward(y, g) == 0, "%s", mtl_error_message());
  CHECK(mtl_embedding_grad_coalesce(t) == 0 && t->g_nnz == 2, "nnz %lld", (long long)t->g_nnz);
  float want[4] = {3 + 1, 4 + 1, 1 + 5 + 2, 2 + 6 + 2}; /* row 2, then row 7 */
  for (int j = 0; j < 4 && t->g_nnz == 2; j++) CHECK(t->g_vals[j] == want[j], "value %d: %g", j, t->g_vals[j]);
  /* errors: nothing added */
  int64_t bad_v[3] = {1, 12, 3};
  mtl_tensor *bad = i64_tensor(3, bad_v);
  CHECK(mtl_embedding_grad_add(t, bad, vals) < 0 &&
            !strcmp(mtl_error_message(),
                    "mtl.Embedding.add_grad: id 12 out of range for a fixed table of 10 rows (valid: 0..9)"),
        "%s", mtl_error_message());
  CHECK(t->g_nnz == 2, "nothing added: nnz %lld", (long long)t->g_nnz);
  mtl_tensor *two = mtl_tensor_new(MTL_I64, 1, (int64_t[]){2});
  CHECK(mtl_embedding_grad_add(t, two, vals) < 0 &&
            !strcmp(mtl_error_message(), "mtl.Embedding.add_grad: expected float32 values [2,2] (one row per id), "
                                         "got float32 [3,2]"),
        "%s", mtl_error_message());
  mtl_embedding_config dc = {.kind = MTL_EMB_DYNAMIC, .dim = 2, .min_count = 1, .initial_capacity = 4};
  mtl_embedding *d = mtl_embedding_new(&dc);
  CHECK(d && mtl_embedding_grad_add(d, ids, vals) < 0 &&
            !strcmp(mtl_error_message(), "mtl.Embedding.add_grad: id 7 has no row in this dynamic table"),
        "%s", mtl_error_message());
  mtl_embedding_release(d);
  mtl_tensor_release_all(6, (mtl_tensor *[]){ids, vals, y, g, bad, two});
  mtl_embedding_release(t);
}

/* The sightings hook of a dynamic table: here it returns the lookup's ids
 * followed by another "rank's" ids, as mtl.dist's does for rank 0 of 2. A
 * table looking up only its own ids with the hook admits, counts and stamps
 * exactly like a table that looks up both ranks' ids without one, and reads
 * the same rows for its ids. */
static const int64_t *other_ids;
static int64_t other_n;
static int two_ranks(void *ctx, int64_t n, const int64_t *ids, mtl_tensor **out) {
  (void)ctx;
  int64_t m = n + other_n;
  if (!(*out = mtl_tensor_new(MTL_I64, 1, &m))) return -1;
  memcpy(mtl_i64(*out), ids, (size_t)n * sizeof *ids);
  memcpy(mtl_i64(*out) + n, other_ids, (size_t)other_n * sizeof *ids);
  return 0;
}
static int failing(void *ctx, int64_t n, const int64_t *ids, mtl_tensor **out) {
  (void)ctx, (void)n, (void)ids;
  *out = NULL;
  return mtl_error("the other ranks are gone");
}

static void test_sightings(void) {
  mtl_embedding_config c = {.kind = MTL_EMB_DYNAMIC, .dim = 2, .min_count = 2, .ttl_steps = 2, .initial_capacity = 2,
                            .init = MTL_INIT_UNIFORM, .scale = 1};
  mtl_embedding *a = mtl_embedding_new(&c), *b = mtl_embedding_new(&c);
  if (!a || !b) return;
  mtl_embedding_set_sightings(a, two_ranks, NULL);
  static const int64_t mine[3][3] = {{5, 6, 5}, {9, 6, 7}, {1, 5, 9}}, theirs[3][2] = {{6, 7}, {7, 9}, {8, 8}};
  for (int step = 0; step < 3; step++) {
    other_ids = theirs[step];
    other_n = 2;
    int64_t both[5] = {mine[step][0], mine[step][1], mine[step][2], theirs[step][0], theirs[step][1]};
    mtl_tensor *ia = i64_tensor(3, mine[step]), *ib = i64_tensor(5, both);
    mtl_seed(11 + (uint64_t)step);
    mtl_tensor *ya = mtl_embedding_lookup(a, ia);
    mtl_seed(11 + (uint64_t)step);
    mtl_tensor *yb = mtl_embedding_lookup(b, ib);
    CHECK(ya && yb, "%s", mtl_error_message());
    CHECK(a->nrows == b->nrows && a->pending.count == b->pending.count, "step %d: rows %lld/%lld, pending %lld/%lld",
          step, (long long)a->nrows, (long long)b->nrows, (long long)a->pending.count, (long long)b->pending.count);
    for (int64_t id = 0; id < 12; id++) {
      int64_t ra = mtl_embedding_find(a, id), rb = mtl_embedding_find(b, id);
      CHECK((ra < 0) == (rb < 0), "step %d: id %lld has a row in one table only", step, (long long)id);
      if (ra >= 0 && rb >= 0)
        CHECK(!memcmp(mtl_embedding_row(a, ra), mtl_embedding_row(b, rb), 2 * sizeof(float)) &&
                  a->last_seen[ra] == b->last_seen[rb], "step %d: id %lld differs", step, (long long)id);
    }
    for (int i = 0; ya && yb && i < 6; i++) CHECK(mtl_f32(ya)[i] == mtl_f32(yb)[i], "step %d: value %d", step, i);
    mtl_tensor_release_all(4, (mtl_tensor *[]){ia, ib, ya, yb});
    mtl_embedding_tick(a);
    mtl_embedding_tick(b);
  }
  CHECK(a->nrows == 5, "ids seen twice: 5, 6, 7, 9, 8: %lld rows", (long long)a->nrows);
  mtl_embedding_set_sightings(a, failing, NULL);
  mtl_tensor *ids = i64_tensor(1, (int64_t[]){4});
  CHECK(!mtl_embedding_lookup(a, ids) && !strcmp(mtl_error_message(), "the other ranks are gone"), "%s",
        mtl_error_message());
  a->training = false; /* an eval lookup does not ask */
  mtl_tensor *y = mtl_embedding_lookup(a, ids);
  CHECK(y != NULL, "%s", mtl_error_message());
  mtl_tensor_release_all(2, (mtl_tensor *[]){ids, y});
  mtl_embedding_release(a);
  mtl_embedding_release(b);
}

/* Row-wise Adam with every row touched once per step against the dense
 * kernel on a copy: equal up to the eps placement (tiny here). */
static void test_sparse_vs_dense_adam(void) {
  int64_t rows = 5, dim = 4, shape[2] = {5, 4};
  mtl_embedding *t = fixed_table(rows, dim);
  if (!t) return;
  mtl_optim_config c;
  mtl_optim_defaults(MTL_OPTIM_ADAM, &c);
  c.lr = 0.01;
  mtl_optimizer *o = mtl_optimizer_new(MTL_OPTIM_ADAM, 1, &c);
  CHECK(o && mtl_optimizer_add_table(o, 0, t) == 0, "%s", mtl_error_message());
  mtl_tensor *w = mtl_tensor_new(MTL_F32, 2, shape), *g = mtl_tensor_new(MTL_F32, 2, shape);
  mtl_tensor *st[MTL_OPTIM_MAX_STATE] = {mtl_tensor_zeros(MTL_F32, 2, shape), mtl_tensor_zeros(MTL_F32, 2, shape), NULL};
  mtl_tensor_copy_into(w, t->weight);
  for (int step = 1; o && step <= 10; step++) {
    mtl_embedding_zero_grad(t);
    for (int64_t r = rows - 1; r >= 0; r--) { /* reverse order: coalescing must sort */
      float *dst = mtl_embedding_grad_append(t, r);
      for (int64_t j = 0; j < dim; j++) dst[j] = mtl_f32(g)[r * dim + j] = (float)sin(step * 1.3 + r * 0.7 + j);
    }
    CHECK(mtl_optimizer_step(o) == 0, "%s", mtl_error_message());
    CHECK(mtl_optim_dense_update(MTL_OPTIM_ADAM, &c, w, g, st, step) == 0, "%s", mtl_error_message());
  }
  for (int64_t i = 0; i < rows * dim; i++) {
    float sparse = mtl_embedding_row(t, i / dim)[i % dim];
    CHECK(fabsf(mtl_f32(w)[i] - sparse) < 1e-5f, "element %lld: dense %g, sparse %g", (long long)i, mtl_f32(w)[i],
          sparse);
  }
  mtl_optimizer_free(o);
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) mtl_tensor_release(st[i]);
  mtl_tensor_release(w);
  mtl_tensor_release(g);
  mtl_embedding_release(t);
}

static mtl_optimizer *table_optimizer(mtl_optim_kind kind, double momentum, mtl_embedding *t) {
  mtl_optim_config c;
  mtl_optim_defaults(kind, &c);
  c.momentum = momentum;
  mtl_optimizer *o = mtl_optimizer_new(kind, 1, &c);
  CHECK(o && mtl_optimizer_add_table(o, 0, t) == 0, "%s", mtl_error_message());
  return o;
}

/* A row and its optimizer state are one block: Adam's table has blocks of
 * [w | m | v]; an update changes only the touched blocks; another optimizer
 * with other state moves the weights bit-exactly into its layout; a dynamic
 * table grows with its blocks. */
static void test_row_blocks(void) {
  enum { ROWS = 50, DIM = 5 };
  mtl_embedding *t = fixed_table(ROWS, DIM);
  if (!t) return;
  static float w0[ROWS][DIM], blocks[ROWS][3 * DIM];
  CHECK(t->row_stride == DIM && mtl_tensor_is_contiguous(t->weight), "a table without state is contiguous");
  for (int r = 0; r < ROWS; r++) memcpy(w0[r], mtl_embedding_row(t, r), sizeof w0[r]);
  mtl_optimizer *adam = table_optimizer(MTL_OPTIM_ADAM, 0, t);
  CHECK(t->row_stride == 3 * DIM, "Adam's row stride %lld", (long long)t->row_stride);
  CHECK(t->slot[0] && t->slot[1] && !t->slot[2], "Adam uses slots 0 and 1");
  for (int r = 0; t->slot[1] && r < ROWS; r++) {
    CHECK(mtl_embedding_slot_row(t, 0, r) == mtl_embedding_row(t, r) + DIM, "row %d: m follows w", r);
    CHECK(mtl_embedding_slot_row(t, 1, r) == mtl_embedding_row(t, r) + 2 * DIM, "row %d: v follows m", r);
    CHECK(!memcmp(w0[r], mtl_embedding_row(t, r), sizeof w0[r]), "row %d moved bit-exactly", r);
    for (int j = 0; j < DIM; j++)
      CHECK(mtl_embedding_slot_row(t, 0, r)[j] == 0 && mtl_embedding_slot_row(t, 1, r)[j] == 0, "fresh state");
  }
  for (int r = 0; r < ROWS; r++) memcpy(blocks[r], mtl_embedding_row(t, r), sizeof blocks[r]);
  const int64_t touched[2] = {40, 3};
  for (int k = 0; k < 2; k++) {
    float *g = mtl_embedding_grad_append(t, touched[k]);
    for (int j = 0; j < DIM; j++) g[j] = (float)(j + 1);
  }
  CHECK(mtl_optimizer_step(adam) == 0, "%s", mtl_error_message());
  for (int r = 0; r < ROWS; r++) {
    bool hit = r == 3 || r == 40, same = !memcmp(blocks[r], mtl_embedding_row(t, r), sizeof blocks[r]);
    CHECK(hit != same, "row %d: %s", r, hit ? "not updated" : "untouched row or state changed");
  }
  for (int r = 0; r < ROWS; r++) memcpy(w0[r], mtl_embedding_row(t, r), sizeof w0[r]);
  /* SGD with momentum: one slot, the weights move, the old optimizer is refused */
  mtl_optimizer *sgd = table_optimizer(MTL_OPTIM_SGD, 0.9, t);
  CHECK(t->row_stride == 2 * DIM && t->slot[0] && !t->slot[1], "SGD with momentum: stride %lld",
        (long long)t->row_stride);
  for (int r = 0; r < ROWS; r++) {
    CHECK(!memcmp(w0[r], mtl_embedding_row(t, r), sizeof w0[r]), "row %d moved bit-exactly", r);
    CHECK(mtl_embedding_slot_row(t, 0, r)[0] == 0, "row %d: fresh momentum", r);
  }
  CHECK(adam && mtl_optimizer_step(adam) < 0, "the older optimizer must refuse to step");
  /* plain SGD: no state, a contiguous weight again */
  mtl_optimizer *plain = table_optimizer(MTL_OPTIM_SGD, 0, t);
  CHECK(t->row_stride == DIM && mtl_tensor_is_contiguous(t->weight) && !t->slot[0], "plain SGD: contiguous");
  for (int r = 0; r < ROWS; r++) CHECK(!memcmp(w0[r], mtl_embedding_row(t, r), sizeof w0[r]), "row %d", r);
  mtl_optimizer_free(adam);
  mtl_optimizer_free(sgd);
  mtl_optimizer_free(plain);
  mtl_embedding_release(t);

  /* a dynamic table with Adam state grows from 2 rows to 64 */
  mtl_embedding_config c = {.kind = MTL_EMB_DYNAMIC, .dim = DIM, .init = MTL_INIT_UNIFORM, .scale = 1,
                            .initial_capacity = 2, .min_count = 1};
  t = mtl_embedding_new(&c);
  CHECK(t != NULL, "%s", mtl_error_message());
  if (!t) return;
  adam = table_optimizer(MTL_OPTIM_ADAM, 0, t);
  int64_t first = mtl_embedding_insert(t, 1000);
  for (int j = 0; j < DIM; j++) mtl_embedding_slot_row(t, 1, first)[j] = (float)j + 0.5f;
  memcpy(blocks[0], mtl_embedding_row(t, first), sizeof blocks[0]);
  for (int64_t id = 0; id < 63; id++) CHECK(mtl_embedding_insert(t, id) >= 0, "%s", mtl_error_message());
  CHECK(t->row_cap == 64 && t->row_stride == 3 * DIM, "capacity %lld, stride %lld", (long long)t->row_cap,
        (long long)t->row_stride);
  CHECK(mtl_embedding_find(t, 1000) == first && !memcmp(blocks[0], mtl_embedding_row(t, first), sizeof blocks[0]),
        "the first row's block survived growing");
  for (int64_t id = 0; id < 63; id++) {
    int64_t r = mtl_embedding_find(t, id);
    CHECK(r >= 0 && mtl_embedding_slot_row(t, 0, r)[0] == 0 && mtl_embedding_slot_row(t, 1, r)[DIM - 1] == 0,
          "id %lld: fresh state", (long long)id);
  }
  mtl_optimizer_free(adam);
  mtl_embedding_release(t);
}

int main(void) {
  test_id_map();
  test_sort();
  test_lookup_backward();
  test_grad_add();
  test_sightings();
  test_sparse_vs_dense_adam();
  test_row_blocks();
  mtl_memory_release_cache();
  if (failures) fprintf(stderr, "%d failures\n", failures);
  return failures != 0;
}
