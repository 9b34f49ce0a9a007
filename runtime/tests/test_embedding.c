/* C test of the embedding core (no Lua): the id map (with backward-shift
 * deletion) against a plain array, the radix sort against qsort, gradient
 * coalescing, a lookup's backward, and the row-wise Adam against the dense
 * kernel when every row is touched. Prints nothing on success. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/embedding_internal.h"
#include "mtl/autograd.h"
#include "mtl/embedding.h"
#include "mtl/optim.h"

static int failures;

#define CHECK(cond, ...)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);   \
      fprintf(stderr, __VA_ARGS__);                                               \
      fprintf(stderr, "\n");                                                      \
      failures++;                                                                 \
    }                                                                             \
  } while (0)

/* Random keys from a small range, so inserts, hits and removals all happen. */
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
    } else if (!e) {
      e = mtl_id_map_insert(&m, key);
      CHECK(e != NULL, "insert failed");
      if (!e) break;
      e->val = op;
      present[k] = op + 1;
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
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      uint64_t r = mtl_rand_u64();
      keys[i] = round == 0 ? (int64_t)(r % 100000) : round == 1 ? (int64_t)r : (int64_t)(r % 7) - 3;
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
      CHECK(mtl_f32(y)[i * 3 + j] == mtl_f32(t->weight)[ids_v[i] * 3 + j], "row %d", i);
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
  for (int64_t i = 0; i < rows * dim; i++)
    CHECK(fabsf(mtl_f32(w)[i] - mtl_f32(t->weight)[i]) < 1e-5f, "element %lld: dense %g, sparse %g", (long long)i,
          mtl_f32(w)[i], mtl_f32(t->weight)[i]);
  mtl_optimizer_free(o);
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) mtl_tensor_release(st[i]);
  mtl_tensor_release(w);
  mtl_tensor_release(g);
  mtl_embedding_release(t);
}

int main(void) {
  test_id_map();
  test_sort();
  test_lookup_backward();
  test_sparse_vs_dense_adam();
  mtl_memory_release_cache();
  if (failures) fprintf(stderr, "%d failures\n", failures);
  return failures != 0;
}
