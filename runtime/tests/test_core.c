/* C tests of the core, without Lua: tensors, views and strides, copies,
 * memory accounting, random numbers, an op and its backward, and the error
 * messages set on bad input. Prints nothing on success; on failure prints
 * each failed check (file:line) and exits with status 1. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "check.h"
#include "mtl/autograd.h"
#include "mtl/core.h"
#include "mtl/ops.h"

#define CHECK_NEAR(a, b, tol)                                                          \
  do {                                                                                 \
    double a_ = (a), b_ = (b);                                                         \
    if (!(fabs(a_ - b_) <= (tol))) {                                                   \
      fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g (tol %g)\n", __FILE__, __LINE__, \
              #a, a_, b_, (double)(tol));                                              \
      failures++;                                                                      \
    }                                                                                  \
  } while (0)

/* The current error message must equal want exactly. */
#define CHECK_MSG(want)                                                                    \
  do {                                                                                     \
    const char *got_ = mtl_error_message();                                                \
    if (strcmp(got_, (want)) != 0) {                                                       \
      fprintf(stderr, "%s:%d: error message\n  got:  %s\n  want: %s\n", __FILE__, __LINE__, \
              got_, (want));                                                               \
      failures++;                                                                          \
    }                                                                                      \
  } while (0)

/* A float tensor of the given shape holding 0, 1, 2, ... in row-major order. */
static mtl_tensor *iota(int ndim, const int64_t *shape) {
  mtl_tensor *t = mtl_tensor_new(MTL_F32, ndim, shape);
  if (!t) return NULL;
  for (int64_t i = 0; i < t->numel; i++) mtl_f32(t)[i] = (float)i;
  return t;
}

/* Releases the tensors; the storage accounting must then be back to base. */
static void release_to_baseline(const char *test, size_t base, mtl_tensor *const *ts, size_t n) {
  for (size_t i = 0; i < n; i++) mtl_tensor_release(ts[i]);
  size_t now = mtl_memory_in_use();
  CHECK(now == base, "%s: %zu bytes in use after release, %zu before", test, now, base);
}

static double at2(const mtl_tensor *t, int64_t i, int64_t j) {
  int64_t idx[2] = {i, j};
  return mtl_tensor_get_at(t, idx);
}

static void test_creation(void) {
  int64_t shape[3] = {2, 3, 4};
  mtl_tensor *t = mtl_tensor_zeros(MTL_F32, 3, shape);
  CHECK(t != NULL);
  CHECK(t->refcount == 1 && t->ndim == 3 && t->numel == 24 && t->offset == 0);
  CHECK(t->stride[0] == 12 && t->stride[1] == 4 && t->stride[2] == 1);
  CHECK(mtl_tensor_is_contiguous(t));
  CHECK(t->dtype == MTL_F32 && mtl_dtype_size(t->dtype) == 4);
  CHECK(strcmp(mtl_dtype_name(MTL_F32), "float32") == 0);
  CHECK(strcmp(mtl_dtype_name(MTL_I64), "int64") == 0);
  double sum = 0;
  for (int64_t i = 0; i < t->numel; i++) sum += fabs(mtl_f32(t)[i]);
  CHECK(sum == 0);
  CHECK(!t->requires_grad && t->grad == NULL && t->node == NULL);
  char buf[64];
  CHECK(strcmp(mtl_shape_str(t, buf, sizeof buf), "[2,3,4]") == 0);
  mtl_tensor_release(t);

  /* fill, int64 */
  int64_t s2[2] = {2, 2};
  mtl_tensor *l = mtl_tensor_new(MTL_I64, 2, s2);
  CHECK(l && mtl_tensor_fill(l, 7) == 0);
  CHECK(mtl_i64(l)[0] == 7 && mtl_i64(l)[3] == 7 && mtl_dtype_size(l->dtype) == 8);
  int64_t idx[2] = {1, 0};
  mtl_tensor_set_at(l, idx, -5);
  CHECK(mtl_tensor_get_at(l, idx) == -5 && mtl_i64(l)[2] == -5);
  mtl_tensor_release(l);

  /* a scalar (0 dims) holds one element */
  mtl_tensor *s = mtl_tensor_new(MTL_F32, 0, NULL);
  CHECK(s && s->numel == 1 && s->ndim == 0);
  CHECK(strcmp(mtl_shape_str(s, buf, sizeof buf), "[]") == 0);
  mtl_tensor_release(s);

  /* zero-sized dimensions: no elements, strides still well defined */
  int64_t z[3] = {3, 0, 2};
  mtl_tensor *e = mtl_tensor_zeros(MTL_F32, 3, z);
  CHECK(e && e->numel == 0 && e->stride[2] == 1 && e->stride[1] == 2 && e->stride[0] == 2);
  mtl_tensor *e2 = mtl_tensor_zeros_like(e);
  CHECK(e2 && mtl_tensor_copy_into(e2, e) == 0);
  mtl_tensor_release(e2);
  mtl_tensor_release(e);

  /* refcounting: a retained tensor survives one release */
  mtl_tensor *r = mtl_tensor_zeros(MTL_F32, 2, s2);
  mtl_tensor_retain(r);
  CHECK(r->refcount == 2);
  mtl_tensor_release(r);
  CHECK(r->refcount == 1);
  mtl_tensor_release(r);
}

static void test_views(void) {
  int64_t shape[2] = {3, 4};
  mtl_tensor *a = iota(2, shape); /* a[i][j] = 4 i + j */
  CHECK(a != NULL);

  /* transposed view: shape [4,3], strides [1,4], shares storage */
  int64_t tshape[2] = {4, 3}, tstride[2] = {1, 4};
  mtl_tensor *t = mtl_tensor_view(a, 2, tshape, tstride, 0);
  CHECK(t && t->storage == a->storage && a->storage->refcount == 2);
  CHECK(!mtl_tensor_is_contiguous(t));
  CHECK(at2(t, 0, 1) == 4 && at2(t, 3, 2) == 11 && at2(t, 2, 0) == 2);
  /* writing through the view changes the base */
  int64_t i12[2] = {1, 2};
  mtl_tensor_set_at(t, i12, 100);
  CHECK(at2(a, 2, 1) == 100);
  mtl_tensor_set_at(t, i12, 9);

  /* contiguous copy of the view: row-major order of the transposed values */
  mtl_tensor *c = mtl_tensor_contiguous_data(t);
  CHECK(c && c != t && mtl_tensor_is_contiguous(c) && c->storage != a->storage);
  const float want_t[12] = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
  for (int i = 0; i < 12; i++) CHECK(mtl_f32(c)[i] == want_t[i]);
  mtl_tensor_release(c);

  /* checksums: the same for the view and its contiguous copy (and the
   * independently hashed bytes of it), different for another shape */
  mtl_tensor *tc = mtl_tensor_contiguous_data(t);
  CHECK(tc && mtl_tensor_checksum(t) == mtl_tensor_checksum(tc));
  int64_t head[3] = {MTL_F32, 4, 3};
  unsigned char bytes[sizeof head + 12 * sizeof(float)];
  memcpy(bytes, head, sizeof head);
  if (tc) memcpy(bytes + sizeof head, mtl_f32(tc), 12 * sizeof(float));
  CHECK(mtl_tensor_checksum(t) == XXH3_64bits(bytes, sizeof bytes));
  int64_t flat_shape[1] = {12};
  mtl_tensor *flat = tc ? mtl_tensor_view(tc, 1, flat_shape, NULL, 0) : NULL;
  CHECK(flat && mtl_tensor_checksum(flat) != mtl_tensor_checksum(tc));
  mtl_tensor_release(flat);
  mtl_tensor_release(tc);

  /* contiguous_data on a contiguous tensor returns the tensor itself */
  mtl_tensor *same = mtl_tensor_contiguous_data(a);
  CHECK(same == a && a->refcount == 2);
  mtl_tensor_release(same);

  /* a narrow view: rows 1..2, columns 1..2 (0-based) via offset and strides */
  int64_t nshape[2] = {2, 2}, nstride[2] = {4, 1};
  mtl_tensor *n = mtl_tensor_view(a, 2, nshape, nstride, 5);
  CHECK(n && at2(n, 0, 0) == 5 && at2(n, 0, 1) == 6 && at2(n, 1, 0) == 9 && at2(n, 1, 1) == 10);
  CHECK(!mtl_tensor_is_contiguous(n));
  /* fill through a strided view touches only its elements */
  CHECK(mtl_tensor_fill(n, -1) == 0);
  double total = 0;
  for (int i = 0; i < 12; i++) total += mtl_f32(a)[i];
  CHECK_NEAR(total, 66 - (5 + 6 + 9 + 10) - 4, 0);
  CHECK(mtl_f32(a)[4] == 4 && mtl_f32(a)[7] == 7 && mtl_f32(a)[5] == -1);

  /* an expanded view (stride 0) reads one row many times */
  int64_t eshape[2] = {3, 4}, estride[2] = {0, 1};
  mtl_tensor *ex = mtl_tensor_view(a, 2, eshape, estride, 0);
  CHECK(ex && at2(ex, 2, 3) == 3 && at2(ex, 1, 1) == 1 && !mtl_tensor_is_contiguous(ex));

  /* a dimension of size 1 with any stride is still contiguous */
  int64_t oshape[2] = {1, 4}, ostride[2] = {99, 1};
  mtl_tensor *o = mtl_tensor_view(a, 2, oshape, ostride, 8);
  CHECK(o && mtl_tensor_is_contiguous(o) && at2(o, 0, 3) == 11 && at2(o, 0, 2) == -1);

  /* an alias shares everything but has no autograd link */
  mtl_tensor *al = mtl_tensor_alias(t);
  CHECK(al && al->storage == a->storage && al->stride[0] == 1 && al->stride[1] == 4 && !al->node);

  mtl_tensor_release(al);
  mtl_tensor_release(o);
  mtl_tensor_release(ex);
  mtl_tensor_release(n);
  mtl_tensor_release(t);
  CHECK(a->storage->refcount == 1);
  mtl_tensor_release(a);
}

static void test_copy_into(void) {
  int64_t s34[2] = {3, 4}, s43[2] = {4, 3};
  mtl_tensor *src = iota(2, s34);
  mtl_tensor *dst = mtl_tensor_zeros(MTL_F32, 2, s34);
  /* dst seen transposed: writing src's row-major values into it */
  int64_t tstride[2] = {1, 4};
  mtl_tensor *dt = mtl_tensor_view(dst, 2, s43, tstride, 0);
  CHECK(mtl_tensor_copy_into(dt, src) == 0);
  /* dt[i][j] = k-th value where k = 3 i + j, i.e. dst[j][i] = 3 i + j */
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 3; j++) CHECK(at2(dst, j, i) == 3 * i + j);

  /* strided source into strided destination: columns 1..2 of src into a
   * transposed 2x3 window of a fresh tensor */
  int64_t s2[2] = {3, 2}, st2[2] = {4, 1};
  mtl_tensor *cols = mtl_tensor_view(src, 2, s2, st2, 1); /* [[1,2],[5,6],[9,10]] */
  int64_t s23[2] = {2, 3};
  mtl_tensor *d2 = mtl_tensor_zeros(MTL_F32, 2, s23);
  int64_t s32[2] = {3, 2}, tst[2] = {1, 3};
  mtl_tensor *d2t = mtl_tensor_view(d2, 2, s32, tst, 0);
  CHECK(mtl_tensor_copy_into(d2t, cols) == 0);
  const float want[6] = {1, 5, 9, 2, 6, 10};
  for (int i = 0; i < 6; i++) CHECK(mtl_f32(d2)[i] == want[i]);

  /* dtype conversion float -> int64 (truncation) and back */
  int64_t s3[1] = {3};
  mtl_tensor *f = mtl_tensor_new(MTL_F32, 1, s3);
  mtl_f32(f)[0] = 2.75f; mtl_f32(f)[1] = -1.5f; mtl_f32(f)[2] = 1e6f;
  mtl_tensor *l = mtl_tensor_new(MTL_I64, 1, s3);
  CHECK(mtl_tensor_copy_into(l, f) == 0);
  CHECK(mtl_i64(l)[0] == 2 && mtl_i64(l)[1] == -1 && mtl_i64(l)[2] == 1000000);
  CHECK(mtl_tensor_copy_into(f, l) == 0);
  CHECK(mtl_f32(f)[0] == 2.0f && mtl_f32(f)[1] == -1.0f);

  /* same numel, different shape: a flat copy */
  int64_t s12[1] = {12};
  mtl_tensor *flat = mtl_tensor_zeros(MTL_F32, 1, s12);
  CHECK(mtl_tensor_copy_into(flat, src) == 0 && mtl_f32(flat)[11] == 11 && mtl_f32(flat)[4] == 4);

  /* numel mismatch is an error naming both shapes */
  CHECK(mtl_tensor_copy_into(f, src) == -1);
  CHECK_MSG("copy: sizes differ: [3] and [3,4]");

  mtl_tensor_release(flat);
  mtl_tensor_release(l);
  mtl_tensor_release(f);
  mtl_tensor_release(d2t);
  mtl_tensor_release(d2);
  mtl_tensor_release(cols);
  mtl_tensor_release(dt);
  mtl_tensor_release(dst);
  mtl_tensor_release(src);
}

static void test_memory(void) {
  size_t base = mtl_memory_in_use();
  int64_t shape[2] = {100, 100};
  mtl_tensor *ts[10];
  for (int i = 0; i < 10; i++) ts[i] = mtl_tensor_zeros(MTL_F32, 2, shape);
  size_t held = mtl_memory_in_use() - base;
  CHECK(held >= 10 * 40000 && held <= 10 * 40000 * 5 / 4); /* size classes waste < 25 % */
  /* views hold no new storage */
  mtl_tensor *v = mtl_tensor_alias(ts[0]);
  CHECK(mtl_memory_in_use() - base == held);
  mtl_tensor_release(v);
  for (int i = 0; i < 10; i++) mtl_tensor_release(ts[i]);
  CHECK(mtl_memory_in_use() == base);
  /* freed buffers are cached and reused by the next step (sanitizer builds,
   * MTL_NO_POOLS, free them at once so that ASan sees every free) */
  size_t cached = mtl_memory_cached();
#ifdef MTL_NO_POOLS
  CHECK(cached == 0);
#else
  CHECK(cached >= held);
#endif
  mtl_tensor *again = mtl_tensor_zeros(MTL_F32, 2, shape);
#ifndef MTL_NO_POOLS
  CHECK(mtl_memory_cached() == cached - held / 10);
#endif
  mtl_tensor_release(again);
  /* many steps of allocate/free do not grow the cache */
  for (int step = 0; step < 1000; step++) {
    mtl_tensor *a = mtl_tensor_zeros(MTL_F32, 2, shape);
    int64_t s2[1] = {77 + step % 5};
    mtl_tensor *b = mtl_tensor_new(MTL_F32, 1, s2);
    mtl_tensor_release(a);
    mtl_tensor_release(b);
  }
  CHECK(mtl_memory_in_use() == base);
  CHECK(mtl_memory_cached() <= cached + 4096);
  mtl_memory_release_cache();
  CHECK(mtl_memory_cached() == 0);
  CHECK(mtl_memory_in_use() == base);

  /* a buffer bigger than the largest size class bypasses the cache */
  int64_t big[1] = {(int64_t)(80u << 20) / 4};
  mtl_tensor *b = mtl_tensor_new(MTL_F32, 1, big);
  CHECK(b && mtl_memory_in_use() - base == (size_t)80 << 20);
  mtl_tensor_release(b);
  CHECK(mtl_memory_in_use() == base && mtl_memory_cached() == 0);

  /* the limit refuses an allocation with a clear out-of-memory message */
  mtl_memory_set_limit((size_t)1 << 20);
  int64_t s[1] = {1 << 19}; /* 2 MiB of float32 */
  mtl_tensor *no = mtl_tensor_new(MTL_F32, 1, s);
  CHECK(no == NULL);
  CHECK_MSG("out of memory: cannot allocate 2097152 bytes (limit 1048576)");
  CHECK(mtl_memory_in_use() == base);
  mtl_memory_set_limit((size_t)64 << 30);

  /* raw buffers are 64-byte aligned */
  void *p = mtl_alloc(100);
  CHECK(p && ((uintptr_t)p & 63) == 0);
  mtl_free(p, 100);
  CHECK(mtl_memory_in_use() == base);
}

static void test_shape_errors(void) {
  int64_t neg[2] = {2, -3};
  CHECK(mtl_tensor_new(MTL_F32, 2, neg) == NULL);
  CHECK_MSG("mtl.tensor: size of dimension 2 must be >= 0, got -3");
  int64_t huge[3] = {1 << 30, 1 << 30, 1 << 30};
  CHECK(mtl_tensor_new(MTL_F32, 3, huge) == NULL);
  CHECK_MSG("mtl.tensor: out of memory: tensor of that shape is too large");
  int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  CHECK(mtl_tensor_new(MTL_F32, 9, nine) == NULL);
  CHECK_MSG("mtl.tensor: tensors have at most 8 dimensions, got 9");
  CHECK(mtl_shape_numel("f", 3, (int64_t[]){2, 0, 5}) == 0);
  CHECK(mtl_shape_numel("f", 2, (int64_t[]){6, 7}) == 42);
  /* mtl_error_prefix names the caller */
  mtl_error("bad %s", "thing");
  mtl_error_prefix("mtl.op");
  CHECK_MSG("mtl.op: bad thing");
  /* the status convention: -1 and a message */
  CHECK(mtl_error("x %d", 1) == -1);
  CHECK_MSG("x 1");
}

static void test_random(void) {
  uint64_t a[5], b[5];
  mtl_seed(42);
  for (int i = 0; i < 5; i++) a[i] = mtl_rand_u64();
  mtl_seed(42);
  for (int i = 0; i < 5; i++) b[i] = mtl_rand_u64();
  CHECK(memcmp(a, b, sizeof a) == 0);
  mtl_seed(43);
  CHECK(mtl_rand_u64() != a[0]);
  CHECK(a[0] != a[1]);

  /* normals are reproducible too, including the Box-Muller spare */
  mtl_seed(7);
  double n1 = mtl_rand_normal(), n2 = mtl_rand_normal(), n3 = mtl_rand_normal();
  mtl_rand_normal();
  mtl_seed(7);
  CHECK(mtl_rand_normal() == n1 && mtl_rand_normal() == n2 && mtl_rand_normal() == n3);

  /* the saved state replays the stream */
  uint64_t st[4];
  mtl_rand_get_state(st);
  double u1 = mtl_rand_uniform(), u2 = mtl_rand_uniform();
  mtl_rand_set_state(st);
  CHECK(mtl_rand_uniform() == u1 && mtl_rand_uniform() == u2);

  /* distributions: uniform in [0,1) with mean 1/2, variance 1/12; normal
   * with mean 0, variance 1 (n = 200000: standard errors ~0.001 / 0.003) */
  mtl_seed(123);
  const int n = 200000;
  double su = 0, su2 = 0, sn = 0, sn2 = 0, umin = 1, umax = 0;
  for (int i = 0; i < n; i++) {
    double u = mtl_rand_uniform(), z = mtl_rand_normal();
    CHECK(u >= 0 && u < 1);
    if (u < umin) umin = u;
    if (u > umax) umax = u;
    su += u; su2 += u * u;
    sn += z; sn2 += z * z;
  }
  CHECK_NEAR(su / n, 0.5, 0.005);
  CHECK_NEAR(su2 / n - (su / n) * (su / n), 1.0 / 12, 0.002);
  CHECK_NEAR(sn / n, 0.0, 0.01);
  CHECK_NEAR(sn2 / n, 1.0, 0.02);
  CHECK(umin < 1e-4 && umax > 1 - 1e-4);
}

/* Random tensors are the stream's draws in row-major order; arange counts
 * like Python's range. */
static void test_filled(void) {
  size_t base = mtl_memory_in_use();
  int64_t shape[2] = {3, 5};
  mtl_seed(11);
  mtl_tensor *u = mtl_tensor_rand(MTL_F32, 2, shape), *z = mtl_tensor_randn(MTL_F32, 2, shape);
  CHECK(u && z && u->ndim == 2 && u->shape[1] == 5 && z->numel == 15);
  mtl_seed(11);
  for (int i = 0; u && i < 15; i++) CHECK(mtl_f32(u)[i] == (float)mtl_rand_uniform());
  for (int i = 0; z && i < 15; i++) CHECK(mtl_f32(z)[i] == (float)mtl_rand_normal());
  CHECK(mtl_tensor_rand(MTL_I64, 2, shape) == NULL);
  CHECK_MSG("mtl.rand: random tensors are float32, got int64");
  int64_t huge[2] = {1000000, 1000000};
  CHECK(mtl_tensor_randn(MTL_F32, 2, huge) == NULL);
  CHECK_MSG("mtl.randn: out of memory: cannot allocate 4000000000000 bytes (limit 68719476736)");
  int64_t neg[1] = {-2};
  CHECK(mtl_tensor_new_named("mtl.zeros", MTL_F32, 1, neg) == NULL);
  CHECK_MSG("mtl.zeros: size of dimension 1 must be >= 0, got -2");

  mtl_tensor *r = mtl_tensor_arange(1, 2, 0.25, MTL_F32);
  CHECK(r && r->ndim == 1 && r->numel == 4);
  for (int i = 0; r && i < 4; i++) CHECK(mtl_f32(r)[i] == 1 + 0.25f * (float)i);
  mtl_tensor *d = mtl_tensor_arange(5, 1, -2, MTL_I64); /* 5, 3 */
  CHECK(d && d->dtype == MTL_I64 && d->numel == 2 && mtl_i64(d)[0] == 5 && mtl_i64(d)[1] == 3);
  mtl_tensor *e = mtl_tensor_arange(3, 1, 1, MTL_F32);
  CHECK(e && e->numel == 0);
  CHECK(mtl_tensor_arange(0, 1, 0, MTL_F32) == NULL);
  CHECK_MSG("mtl.arange: step must be finite and nonzero, bounds finite (got start 0, stop 1, step 0)");
  CHECK(mtl_tensor_arange(0, INFINITY, 1, MTL_F32) == NULL);
  CHECK_MSG("mtl.arange: step must be finite and nonzero, bounds finite (got start 0, stop inf, step 1)");
  CHECK(mtl_tensor_arange(0, 0x1p62, 1, MTL_F32) == NULL);
  CHECK_MSG("mtl.arange: too many elements (4.61169e+18)");
  release_to_baseline("test_filled", base, (mtl_tensor *[]){u, z, r, d, e}, 5);
}

/* The scalar forms of arithmetic: values against double arithmetic rounded
 * once, and their gradients (d(x - s) = 1, d(s - x) = -1, d(x / s) = 1/s,
 * d(s / x) = -s / x^2). */
static void test_scalar_arithmetic(void) {
  size_t base = mtl_memory_in_use();
  int64_t shape[1] = {4};
  mtl_tensor *x = mtl_tensor_new(MTL_F32, 1, shape);
  const float xs[4] = {0.5f, 1.25f, -3.0f, 7.1f};
  for (int i = 0; i < 4; i++) mtl_f32(x)[i] = xs[i];
  mtl_tensor_set_requires_grad(x, true);
  struct {
    mtl_tensor *(*f)(mtl_tensor *, double);
    double s;
    const char *name;
  } cases[] = {
    {mtl_sub_scalar, 1.5, "sub_scalar"}, {mtl_rsub_scalar, 1.5, "rsub_scalar"},
    {mtl_div_scalar, 3.0, "div_scalar"}, {mtl_rdiv_scalar, 3.0, "rdiv_scalar"},
  };
  for (int k = 0; k < 4; k++) {
    mtl_tensor *y = cases[k].f(x, cases[k].s);
    CHECK(y && y->node && strcmp(mtl_op_name(y->node->op), cases[k].name) == 0);
    if (!y) continue;
    for (int i = 0; i < 4; i++) {
      double v = xs[i], s = cases[k].s;
      double want = k == 0 ? v - s : k == 1 ? s - v : k == 2 ? v / s : s / v;
      CHECK(mtl_f32(y)[i] == (float)want); /* exact: one rounding of the true value */
    }
    mtl_tensor *l = mtl_sum(y, -1, false);
    mtl_tensor_zero_grad(x);
    CHECK(l && mtl_backward(l, NULL) == 0 && x->grad);
    for (int i = 0; x->grad && i < 4; i++) {
      double v = xs[i], s = cases[k].s;
      double slope = k == 0 ? 1 : k == 1 ? -1 : k == 2 ? 1 / s : -s / (v * v);
      CHECK_NEAR(mtl_f32(x->grad)[i], slope, 1e-6 * fabs(slope));
    }
    mtl_tensor_release(l);
    mtl_tensor_release(y);
  }
  /* a quotient that x * (1/3) rounds differently (4.07 / 3) */
  volatile float x0 = 4.07f, third = (float)(1.0 / 3.0);
  mtl_f32(x)[0] = x0;
  mtl_tensor *q = mtl_div_scalar(x, 3.0);
  CHECK(q && mtl_f32(q)[0] == (float)(x0 / 3.0) && mtl_f32(q)[0] != x0 * third);
  mtl_tensor_release(q);
  int64_t si[1] = {2};
  mtl_tensor *ids = mtl_tensor_zeros(MTL_I64, 1, si);
  CHECK(mtl_div_scalar(ids, 2.0) == NULL);
  CHECK_MSG("mtl.div: expected a float32 tensor for the argument, got int64");
  mtl_tensor_release(ids);
  mtl_tensor_release(x);
  CHECK(mtl_memory_in_use() == base);
}

static void test_autograd(void) {
  size_t base = mtl_memory_in_use();
  mtl_seed(5);
  int64_t sx[2] = {2, 3}, sw[2] = {3, 2};
  mtl_tensor *x = iota(2, sx);        /* [[0,1,2],[3,4,5]] */
  mtl_tensor *w = mtl_tensor_new(MTL_F32, 2, sw);
  for (int i = 0; i < 6; i++) mtl_f32(w)[i] = (float)(0.5 * (i + 1)); /* [[.5,1],[1.5,2],[2.5,3]] */
  CHECK(mtl_tensor_set_requires_grad(x, true) == 0);
  CHECK(mtl_tensor_set_requires_grad(w, true) == 0);

  /* L = sum(matmul(x, w) * matmul(x, w)) */
  mtl_tensor *y = mtl_matmul(x, w);
  CHECK(y && y->node && y->requires_grad && y->shape[0] == 2 && y->shape[1] == 2);
  CHECK(strcmp(mtl_op_name(y->node->op), "matmul") == 0 && mtl_op_arity(y->node->op) == 2);
  /* y = [[0*.5+1*1.5+2*2.5, 0*1+1*2+2*3], [3*.5+4*1.5+5*2.5, 3+8+15]] */
  const double yv[4] = {6.5, 8, 20, 26};
  for (int i = 0; i < 4; i++) CHECK_NEAR(mtl_f32(y)[i], yv[i], 1e-5);
  mtl_tensor *sq = mtl_mul(y, y);
  mtl_tensor *loss = mtl_sum(sq, -1, false);
  CHECK(loss && loss->ndim == 0 && loss->numel == 1);
  CHECK_NEAR(mtl_f32(loss)[0], 6.5 * 6.5 + 64 + 400 + 676, 1e-3);
  CHECK(mtl_backward(loss, NULL) == 0);
  /* dL/dy = 2y; dL/dx = 2y w^T; dL/dw = x^T 2y */
  CHECK(x->grad && w->grad);
  for (int i = 0; i < 2; i++)
    for (int k = 0; k < 3; k++) {
      double g = 0;
      for (int j = 0; j < 2; j++) g += 2 * yv[i * 2 + j] * mtl_f32(w)[k * 2 + j];
      CHECK_NEAR(at2(x->grad, i, k), g, 1e-4);
    }
  for (int k = 0; k < 3; k++)
    for (int j = 0; j < 2; j++) {
      double g = 0;
      for (int i = 0; i < 2; i++) g += mtl_f32(x)[i * 3 + k] * 2 * yv[i * 2 + j];
      CHECK_NEAR(at2(w->grad, k, j), g, 1e-4);
    }

  /* a second backward through the spent graph is refused */
  CHECK(mtl_backward(loss, NULL) == -1);
  CHECK_MSG("backward: trying to backward through the graph a second time "
            "(its buffers were freed by the first backward)");

  /* gradients accumulate across backward calls: grad of sum(x) adds 1 */
  double before = at2(x->grad, 1, 2);
  mtl_tensor *s2 = mtl_sum(x, -1, false);
  CHECK(mtl_backward(s2, NULL) == 0);
  CHECK_NEAR(at2(x->grad, 1, 2), before + 1, 1e-4);
  mtl_tensor_zero_grad(x);
  CHECK(x->grad == NULL);

  /* no gradient for inputs that need none; grad mode off records nothing */
  mtl_tensor *c = iota(2, sx);
  mtl_tensor *p = mtl_mul(x, c);
  CHECK(p->node && !c->requires_grad);
  mtl_tensor *ps = mtl_sum(p, -1, false);
  CHECK(mtl_backward(ps, NULL) == 0);
  CHECK(c->grad == NULL && x->grad && at2(x->grad, 1, 1) == 4);
  mtl_set_grad_enabled(false);
  mtl_tensor *q = mtl_mul(x, c);
  CHECK(q && q->node == NULL && !q->requires_grad);
  mtl_set_grad_enabled(true);

  /* non-scalar backward needs a gradient; a wrong-shaped one is refused */
  mtl_tensor *m = mtl_mul(x, c);
  CHECK(mtl_backward(m, NULL) == -1);
  CHECK_MSG("backward: a gradient argument is needed for a non-scalar tensor [2,3]");
  int64_t s4[1] = {4};
  mtl_tensor *bad = mtl_tensor_zeros(MTL_F32, 1, s4);
  CHECK(mtl_backward(m, bad) == -1);
  CHECK_MSG("backward: gradient must be float32 shaped like the tensor [2,3], got float32 [4]");
  mtl_tensor *ones = mtl_tensor_new(MTL_F32, 2, sx);
  mtl_tensor_fill(ones, 1);
  mtl_tensor_zero_grad(x);
  CHECK(mtl_backward(m, ones) == 0);
  for (int i = 0; i < 6; i++) CHECK(mtl_f32(x->grad)[i] == mtl_f32(c)[i]);

  /* backward from a leaf checks its gradient argument the same way */
  int64_t sl[1] = {2};
  mtl_tensor *leaf = mtl_tensor_zeros(MTL_F32, 1, sl);
  mtl_tensor_set_requires_grad(leaf, true);
  CHECK(mtl_backward(leaf, bad) == -1);
  CHECK_MSG("backward: gradient must be float32 shaped like the tensor [2], got float32 [4]");
  CHECK(mtl_backward(leaf, NULL) == -1);
  CHECK_MSG("backward: a gradient argument is needed for a non-scalar tensor [2]");
  mtl_tensor *li2 = mtl_tensor_zeros(MTL_I64, 1, sl);
  CHECK(mtl_backward(leaf, li2) == -1);
  CHECK_MSG("backward: gradient must be float32 shaped like the tensor [2], got int64 [2]");
  mtl_tensor *g2 = mtl_tensor_new(MTL_F32, 1, sl);
  mtl_f32(g2)[0] = 3; mtl_f32(g2)[1] = -1;
  CHECK(mtl_backward(leaf, g2) == 0 && leaf->grad && mtl_f32(leaf->grad)[0] == 3 &&
        mtl_f32(leaf->grad)[1] == -1 && leaf->grad != g2);
  mtl_tensor_release(g2);
  mtl_tensor_release(li2);
  mtl_tensor_release(leaf);

  /* backward from a tensor with no history */
  CHECK(mtl_backward(c, NULL) == -1);
  CHECK_MSG("backward: the tensor does not require a gradient (no input of the computation "
            "was marked with requires_grad)");
  /* only float leaves can require gradients; results of ops cannot be marked */
  mtl_tensor *li = mtl_tensor_zeros(MTL_I64, 2, sx);
  CHECK(mtl_tensor_set_requires_grad(li, true) == -1);
  CHECK_MSG("requires_grad: only float32 tensors can require gradients, got int64");
  mtl_tensor *r = mtl_mul(x, c);
  CHECK(mtl_tensor_set_requires_grad(r, false) == -1);
  CHECK_MSG("requires_grad: only leaf tensors can be marked (this one is the result of 'mul')");

  /* op errors name the op, what it expected and what came */
  int64_t s43[2] = {4, 3}, s52[2] = {5, 2};
  mtl_tensor *a43 = mtl_tensor_zeros(MTL_F32, 2, s43), *b52 = mtl_tensor_zeros(MTL_F32, 2, s52);
  CHECK(mtl_matmul(a43, b52) == NULL);
  CHECK_MSG("mtl.matmul: inner dimensions differ: [4,3] x [5,2]");
  CHECK(mtl_add(a43, bad) == NULL);
  CHECK_MSG("mtl.add: shapes cannot be broadcast together: [4,3] and [4] (dimension 2: 3 vs 4)");
  CHECK(mtl_mul(a43, li) == NULL);
  CHECK_MSG("mtl.mul: expected a float32 tensor for the second argument, got int64");
  CHECK(mtl_sum(a43, 2, false) == NULL);
  CHECK_MSG("mtl.sum: dimension 3 out of range (tensor has 2 dimensions)");

  mtl_tensor *all[] = {x, w, y, sq, loss, s2, c, p, ps, q, m, bad, ones, li, r, a43, b52};
  release_to_baseline("test_autograd", base, all, sizeof all / sizeof all[0]);
}

/* A chain of 100,000 ops: backward and release must not recurse deeply. */
static void test_deep_chain(void) {
  size_t base = mtl_memory_in_use();
  int64_t s[1] = {3};
  mtl_tensor *x = mtl_tensor_zeros(MTL_F32, 1, s);
  mtl_tensor_fill(x, 1);
  mtl_tensor_set_requires_grad(x, true);
  mtl_tensor *cur = x;
  mtl_tensor_retain(cur);
  for (int i = 0; i < 100000; i++) {
    mtl_tensor *next = mtl_add_scalar(cur, 0.001);
    mtl_tensor_release(cur);
    cur = next;
    if (!cur) break;
  }
  CHECK(cur != NULL);
  if (cur) {
    CHECK_NEAR(mtl_f32(cur)[0], 101, 0.05);
    mtl_tensor *l = mtl_sum(cur, -1, false);
    CHECK(mtl_backward(l, NULL) == 0);
    CHECK(x->grad && mtl_f32(x->grad)[0] == 1 && mtl_f32(x->grad)[2] == 1);
    mtl_tensor_release(l);
    mtl_tensor_release(cur);
  }
  /* and a chain that is released without backward */
  cur = x;
  mtl_tensor_retain(cur);
  for (int i = 0; i < 100000 && cur; i++) {
    mtl_tensor *next = mtl_mul_scalar(cur, 1.0);
    mtl_tensor_release(cur);
    cur = next;
  }
  CHECK(cur != NULL);
  mtl_tensor_release(cur);
  mtl_tensor_release(x);
  CHECK(mtl_memory_in_use() == base);
}

static void test_threads(void) {
  mtl_set_num_threads(2);
  CHECK(mtl_get_num_threads() == 2);
  mtl_set_num_threads(0);
  CHECK(mtl_get_num_threads() == 1);
}

int main(void) {
  test_creation();
  test_views();
  test_copy_into();
  test_memory();
  test_shape_errors();
  test_random();
  test_filled();
  test_scalar_arithmetic();
  test_autograd();
  test_deep_chain();
  test_threads();
  mtl_memory_release_cache();
  if (failures) {
    fprintf(stderr, "test_core: %d check(s) failed\n", failures);
    return 1;
  }
  return 0;
}
