/* Matrix products through cblas_sgemm. Transposed views are handed to BLAS as
 * transpose flags with their leading dimension, never copied. */
#include <cblas.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* Swaps the two last dims of a view (no copy, no autograd). */
static mtl_tensor *t_view(mtl_tensor *a) {
  int64_t shape[MTL_MAX_DIMS], stride[MTL_MAX_DIMS];
  memcpy(shape, a->shape, sizeof shape);
  memcpy(stride, a->stride, sizeof stride);
  int d = a->ndim;
  shape[d - 2] = a->shape[d - 1];
  shape[d - 1] = a->shape[d - 2];
  stride[d - 2] = a->stride[d - 1];
  stride[d - 1] = a->stride[d - 2];
  return mtl_tensor_view(a, d, shape, stride, a->offset);
}

/* How a 2-D (strided) operand goes to sgemm: its transpose flag and leading
 * dimension, or a contiguous copy in *tmp when its strides do not allow it. */
static int operand(const mtl_tensor *t, int64_t off, const int64_t *shape, const int64_t *stride,
                   CBLAS_TRANSPOSE *tr, int *ld, const float **ptr, mtl_tensor **tmp) {
  int64_t r = shape[0], c = shape[1];
  int64_t c1 = c > 1 ? c : 1, r1 = r > 1 ? r : 1;
  const float *base = (const float *)t->storage->data + off;
  /* BLAS takes leading dimensions as int: a wider stride means a copy */
  if ((stride[1] == 1 || c == 1) && stride[0] >= c1 && stride[0] <= INT_MAX) {
    *tr = CblasNoTrans; *ld = (int)stride[0]; *ptr = base; return 0;
  }
  if ((stride[0] == 1 || r == 1) && stride[1] >= r1 && stride[1] <= INT_MAX) {
    *tr = CblasTrans; *ld = (int)stride[1]; *ptr = base; return 0;
  }
  mtl_tensor view = *t; /* a 2-D window on t's storage, to copy from */
  view.ndim = 2;
  view.shape[0] = r; view.shape[1] = c;
  view.stride[0] = stride[0]; view.stride[1] = stride[1];
  view.offset = off;
  view.numel = r * c;
  mtl_tensor *cpy = mtl_tensor_new(MTL_F32, 2, view.shape);
  if (!cpy) return -1;
  mtl_tensor_copy_into(cpy, &view);
  *tmp = cpy;
  *tr = CblasNoTrans; *ld = (int)c1; *ptr = mtl_f32(cpy);
  return 0;
}

/* A 2-D window of a tensor's storage. */
typedef struct {
  const mtl_tensor *t;
  int64_t off, shape[2], stride[2];
} mat2;

static mat2 window(const mtl_tensor *t, int64_t off, int64_t r, int64_t c, int64_t sr, int64_t sc) {
  mat2 w = {t, off, {r, c}, {sr, sc}};
  return w;
}

static mat2 transposed(mat2 a) {
  mat2 t = {a.t, a.off, {a.shape[1], a.shape[0]}, {a.stride[1], a.stride[0]}};
  return t;
}

/* ---- statistics of the products (mtl_gemm_stats_enable) ---- */
static atomic_bool stats_on;
static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static mtl_gemm_stat stats[MTL_GEMM_STATS_MAX];
static int n_stats;

void mtl_gemm_stats_enable(bool on) {
  pthread_mutex_lock(&stats_lock);
  if (on) n_stats = 0;
  atomic_store(&stats_on, on);
  pthread_mutex_unlock(&stats_lock);
}

int mtl_gemm_stats(mtl_gemm_stat *out, int max) {
  pthread_mutex_lock(&stats_lock);
  int n = n_stats < max ? n_stats : max;
  if (n > 0) memcpy(out, stats, (size_t)n * sizeof *out);
  pthread_mutex_unlock(&stats_lock);
  return n;
}

static double seconds_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void stats_add(int64_t m, int64_t n, int64_t k, char ta, char tb, double dt) {
  pthread_mutex_lock(&stats_lock);
  int i = 0;
  while (i < n_stats && !(stats[i].m == m && stats[i].n == n && stats[i].k == k && stats[i].ta == ta &&
                          stats[i].tb == tb))
    i++;
  if (i == n_stats && n_stats < MTL_GEMM_STATS_MAX) {
    mtl_gemm_stat z = {m, n, k, ta, tb, 0, 0.0};
    stats[n_stats++] = z;
  }
  if (i < n_stats) {
    stats[i].calls++;
    stats[i].seconds += dt;
  }
  pthread_mutex_unlock(&stats_lock);
}

/* c[m,n] (row stride ldc) = a[m,k] b[k,n] + beta c, on the calling thread */
static int gemm_serial(const mat2 *a, const mat2 *b, float *c, int64_t ldc, float beta) {
  int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
  if (m == 0 || n == 0) return 0;
  if (k == 0) {
    if (beta == 0.0f)
      for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
    return 0;
  }
  CBLAS_TRANSPOSE fa, fb;
  int lda, ldb;
  const float *pa, *pb;
  mtl_tensor *tmpa = NULL, *tmpb = NULL;
  if (operand(a->t, a->off, a->shape, a->stride, &fa, &lda, &pa, &tmpa) < 0) return -1;
  if (operand(b->t, b->off, b->shape, b->stride, &fb, &ldb, &pb, &tmpb) < 0) {
    mtl_tensor_release(tmpa);
    return -1;
  }
  /* OpenBLAS zeroes C for beta = 0 in a pass of its own that runs at a fraction of
   * memset's speed (a 1024 x 256 product: 0.14 ms more than with beta = 1); clearing
   * C here and adding (beta = 1, which skips that pass) gives the same result. */
  if (beta == 0.0f) {
    if (ldc == n) memset(c, 0, (size_t)(m * n) * sizeof(float));
    else
      for (int64_t i = 0; i < m; i++) memset(c + i * ldc, 0, (size_t)n * sizeof(float));
    beta = 1.0f;
  }
  bool timed = atomic_load_explicit(&stats_on, memory_order_relaxed);
  double t0 = timed ? seconds_now() : 0.0;
  cblas_sgemm(CblasRowMajor, fa, fb, (int)m, (int)n, (int)k, 1.0f, pa, lda, pb, ldb, beta, c, (int)ldc);
  if (timed) stats_add(m, n, k, fa == CblasTrans ? 'T' : 'N', fb == CblasTrans ? 'T' : 'N', seconds_now() - t0);
  mtl_tensor_release(tmpa);
  mtl_tensor_release(tmpb);
  return 0;
}

/* OpenBLAS runs a product on its own threads (mtl_set_num_threads sets their
 * number). Splitting products over mtl's pool instead does not work with the
 * pthreads OpenBLAS: its calls from two threads at once run one after the
 * other (docs/performance.md). */
static int gemm_win(const mat2 *a, const mat2 *b, float *c, int64_t ldc, float beta) {
  return gemm_serial(a, b, c, ldc, beta);
}

/* Element passes over at least this many floats go to mtl's pool. */
#define PAR_MIN_FLOATS (1 << 16)

/* c[m,n] = a[m,k] b[k,n] (+ beta c), for the 2-D slices at offsets oa, ob. */
static int gemm2d(const mtl_tensor *a, int64_t oa, const mtl_tensor *b, int64_t ob, float *c,
                  int64_t m, int64_t k, int64_t n, float beta) {
  int d = a->ndim, e = b->ndim;
  mat2 wa = window(a, oa, m, k, a->stride[d - 2], a->stride[d - 1]);
  mat2 wb = window(b, ob, k, n, b->stride[e - 2], b->stride[e - 1]);
  return gemm_win(&wa, &wb, c, n, beta);
}

/* Product without autograd: a [..,m,k] x b [..,k,n] (2-D or batched 3-D). */
static mtl_tensor *matmul_raw(mtl_tensor *a, mtl_tensor *b) {
  int d = a->ndim;
  int64_t m = a->shape[d - 2], k = a->shape[d - 1], n = b->shape[d - 1];
  int64_t shape[3];
  if (d == 2) { shape[0] = m; shape[1] = n; }
  else { shape[0] = a->shape[0]; shape[1] = m; shape[2] = n; }
  mtl_tensor *out = mtl_tensor_new(MTL_F32, d, shape);
  if (!out) return NULL;
  int64_t batches = d == 3 ? a->shape[0] : 1;
  for (int64_t i = 0; i < batches; i++) {
    int64_t oa = a->offset + (d == 3 ? i * a->stride[0] : 0);
    int64_t ob = b->offset + (d == 3 ? i * b->stride[0] : 0);
    if (gemm2d(a, oa, b, ob, mtl_f32(out) + i * m * n, m, k, n, 0.0f) < 0) {
      mtl_tensor_release(out);
      return NULL;
    }
  }
  return out;
}

mtl_tensor *mtl_matmul(mtl_tensor *a, mtl_tensor *b) {
  char x[128], y[128];
  if (a->dtype != MTL_F32 || b->dtype != MTL_F32)
    return (void)mtl_error("mtl.matmul: expected float32 tensors, got %s and %s",
                           mtl_dtype_name(a->dtype), mtl_dtype_name(b->dtype)), NULL;
  if (!((a->ndim == 2 && b->ndim == 2) || (a->ndim == 3 && b->ndim == 3)))
    return (void)mtl_error("mtl.matmul: expected two 2-D or two 3-D tensors, got %s x %s",
                           mtl_shape_str(a, x, sizeof x), mtl_shape_str(b, y, sizeof y)), NULL;
  int d = a->ndim;
  if (d == 3 && a->shape[0] != b->shape[0])
    return (void)mtl_error("mtl.matmul: batch sizes differ: %s x %s", mtl_shape_str(a, x, sizeof x),
                           mtl_shape_str(b, y, sizeof y)), NULL;
  if (a->shape[d - 1] != b->shape[d - 2])
    return (void)mtl_error("mtl.matmul: inner dimensions differ: %s x %s",
                           mtl_shape_str(a, x, sizeof x), mtl_shape_str(b, y, sizeof y)), NULL;
  if (a->shape[d - 1] > INT_MAX || a->shape[d - 2] > INT_MAX || b->shape[d - 1] > INT_MAX)
    return (void)mtl_error("mtl.matmul: dimensions too large for BLAS (at most %d): %s x %s", INT_MAX,
                           mtl_shape_str(a, x, sizeof x), mtl_shape_str(b, y, sizeof y)), NULL;
  mtl_tensor *out = matmul_raw(a, b);
  if (!out) return NULL;
  mtl_tensor *in[2] = {a, b};
  if (mtl_needs_grad(2, in) && !mtl_record(MTL_OP_MATMUL, out, 2, in)) {
    mtl_tensor_release(out);
    return NULL;
  }
  return out;
}

/* dA = G B^T, dB = A^T G (transposes as flags). */
int mtl_matmul_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *a = n->in[0], *b = n->in[1];
  if (mtl_node_wants(n, 0)) {
    mtl_tensor *bt = t_view(b);
    if (!bt) return -1;
    mtl_tensor *ga = matmul_raw(g, bt);
    mtl_tensor_release(bt);
    if (mtl_node_accumulate(n, 0, ga) < 0) return -1;
  }
  if (mtl_node_wants(n, 1)) {
    mtl_tensor *at = t_view(a);
    if (!at) return -1;
    mtl_tensor *gb = matmul_raw(at, g);
    mtl_tensor_release(at);
    if (mtl_node_accumulate(n, 1, gb) < 0) return -1;
  }
  return 0;
}

/* ---- linear: y = act(x W^T + bias), plain or grouped ----------------------
 * Shapes (see ops.h): x [m,in] with W [out,in] -> [m,out]; x [m,in] with a
 * grouped W [g,out,in] -> [m,g,out] (one GEMM when W's groups are adjacent
 * rows: the experts' first layers); x [m,g,in] with W [g,out,in] -> [m,g,out]
 * (g GEMMs writing straight into the output's slices through ldc). The bias
 * is written into the output first and BLAS adds the product (beta = 1), and
 * the activation runs over the output in place: one pass, no temporaries.
 * Backward applies the activation's derivative to the gradient in place when
 * it owns it (as mtl_backward hands it over), fusing the bias gradient's
 * column sums into the same pass. */

/* The layout of one linear call: groups g (1 when W is 2-D), per-group out/in,
 * x's group stride (0 when x is shared by all groups). */
typedef struct {
  int64_t m, g, out, in;
  int64_t xs_row, xs_group, xs_col; /* x strides */
  bool merged;                      /* W [g,out,in] seen as [g*out,in] and x shared: one GEMM */
} lin_shape;

static mat2 x_win(const mtl_tensor *x, const lin_shape *s, int64_t k) {
  return window(x, x->offset + k * s->xs_group, s->m, s->in, s->xs_row, s->xs_col);
}

/* W_k as [out,in] (or all groups as [g*out,in] when merged). */
static mat2 w_win(const mtl_tensor *w, const lin_shape *s, int64_t k) {
  if (w->ndim == 2) return window(w, w->offset, s->out, s->in, w->stride[0], w->stride[1]);
  if (s->merged) return window(w, w->offset, s->g * s->out, s->in, w->stride[1], w->stride[2]);
  return window(w, w->offset + k * w->stride[0], s->out, s->in, w->stride[1], w->stride[2]);
}

static void act_forward(mtl_activation act, float *y, int64_t n) {
  if (act == MTL_ACT_RELU)
    for (int64_t i = 0; i < n; i++) y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

/* The forward's element passes over rows [r0, r1) of the output: the bias
 * into each row before the product (which then adds with beta = 1), or the
 * activation after it. */
typedef struct {
  const float *bias;
  float *out;
  int64_t width;
  mtl_activation act;
} lin_rows;

static void lin_bias_part(void *p, int64_t r0, int64_t r1) {
  lin_rows *j = p;
  for (int64_t i = r0; i < r1; i++) memcpy(j->out + i * j->width, j->bias, (size_t)j->width * sizeof(float));
}

static void lin_act_part(void *p, int64_t r0, int64_t r1) {
  lin_rows *j = p;
  act_forward(j->act, j->out + r0 * j->width, (r1 - r0) * j->width);
}

/* part over rows [0, m) of [m, width] floats: on mtl's pool when large */
static void run_rows(int64_t m, int64_t width, mtl_task_fn part, void *ctx) {
  if (mtl_get_num_threads() > 1 && m * width >= 2 * PAR_MIN_FLOATS)
    mtl_parallel_for(m, PAR_MIN_FLOATS / (width > 0 ? width : 1) + 1, part, ctx);
  else
    part(ctx, 0, m);
}

mtl_tensor *mtl_linear_act(mtl_tensor *x, mtl_tensor *w, mtl_tensor *bias, mtl_activation act) {
  char s1[128], s2[128];
  if (x->dtype != MTL_F32 || w->dtype != MTL_F32 || (bias && bias->dtype != MTL_F32))
    return (void)mtl_error("mtl.linear: expected float32 tensors, got x %s, weight %s%s%s",
                           mtl_dtype_name(x->dtype), mtl_dtype_name(w->dtype), bias ? ", bias " : "",
                           bias ? mtl_dtype_name(bias->dtype) : ""), NULL;
  if ((int)act < 0 || act > MTL_ACT_RELU)
    return (void)mtl_error("mtl.linear: unknown activation %d", (int)act), NULL;
  lin_shape s = {0};
  if (w->ndim == 2) {
    if (x->ndim != 2)
      return (void)mtl_error("mtl.linear: expected x [n,in] and weight [out,in], got %s and %s",
                             mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
    s.g = 1; s.out = w->shape[0]; s.in = w->shape[1];
  } else if (w->ndim == 3 && (x->ndim == 2 || x->ndim == 3)) {
    s.g = w->shape[0]; s.out = w->shape[1]; s.in = w->shape[2];
    if (x->ndim == 3 && x->shape[1] != s.g)
      return (void)mtl_error("mtl.linear: groups differ: x %s, weight %s", mtl_shape_str(x, s1, sizeof s1),
                             mtl_shape_str(w, s2, sizeof s2)), NULL;
  } else {
    return (void)mtl_error("mtl.linear: expected x [n,in] and weight [out,in], or x [n,in] or [n,g,in] "
                           "and grouped weight [g,out,in], got %s and %s",
                           mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  }
  if (x->shape[x->ndim - 1] != s.in)
    return (void)mtl_error("mtl.linear: input features differ: x %s, weight %s",
                           mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  int64_t bshape[2] = {w->ndim == 3 ? s.g : s.out, s.out};
  int bnd = w->ndim == 3 ? 2 : 1;
  if (bias && (bias->ndim != bnd || bias->shape[0] != bshape[0] || (bnd == 2 && bias->shape[1] != s.out)))
    return (void)mtl_error("mtl.linear: bias must be %s, got %s", mtl_dims_str(bnd, bshape, s2, sizeof s2),
                           mtl_shape_str(bias, s1, sizeof s1)), NULL;
  s.m = x->shape[0];
  if (s.m > INT_MAX || s.in > INT_MAX || s.g * s.out > INT_MAX || s.g * s.in > INT_MAX)
    return (void)mtl_error("mtl.linear: dimensions too large for BLAS (at most %d): x %s, weight %s",
                           INT_MAX, mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  s.xs_row = x->stride[0];
  s.xs_col = x->stride[x->ndim - 1];
  s.xs_group = x->ndim == 3 ? x->stride[1] : 0;
  s.merged = w->ndim == 3 && x->ndim == 2 && (s.g == 1 || w->stride[0] == s.out * w->stride[1]);
  int64_t shape[3] = {s.m, s.g, s.out};
  if (w->ndim == 2) shape[1] = s.out;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, w->ndim == 3 ? 3 : 2, shape);
  if (!out) return NULL;
  float *po = mtl_f32(out);
  int64_t width = s.g * s.out; /* floats per output row */
  mtl_tensor *in[3] = {x, w, bias};
  bool grad = mtl_needs_grad(bias ? 3 : 2, in);
  /* a forward that records gradients trains w: its packings would go stale */
  if (grad && w->storage->bf16) mtl_bf16_unpack(w);
  if (grad && w->storage->fp32) mtl_fp32_unpack(w);
  bool bf16 = !grad && (s.xs_col == 1 || s.in == 1) && mtl_bf16_usable(w);
  if (bf16 || (!grad && mtl_fp32_kernel_in_use() != MTL_FP32_BLAS)) { /* inference: bf16, else packed FP32 */
    mtl_tensor *bc = bias ? mtl_tensor_contiguous_data(bias) : NULL;
    bool timed = atomic_load_explicit(&stats_on, memory_order_relaxed);
    double t0 = timed ? seconds_now() : 0.0;
    int rc = bias && !bc ? -1
             : bf16      ? mtl_linear_bf16(x, w, bc ? mtl_f32(bc) : NULL, act, po)
                         : mtl_linear_fp32(x, w, bc ? mtl_f32(bc) : NULL, act, po);
    if (timed && rc == 0) stats_add(s.m, width, s.in, 'N', bf16 ? 'B' : 'P', seconds_now() - t0);
    mtl_tensor_release(bc);
    if (rc < 0) { mtl_tensor_release(out); return NULL; }
    return out;
  }
  lin_rows rows = {NULL, po, width, act};
  float beta = 0.0f;
  if (bias) {
    mtl_tensor *bc = mtl_tensor_contiguous_data(bias);
    if (!bc) { mtl_tensor_release(out); return NULL; }
    rows.bias = mtl_f32(bc);
    run_rows(s.m, width, lin_bias_part, &rows);
    mtl_tensor_release(bc);
    beta = 1.0f;
  }
  int64_t calls = s.merged ? 1 : s.g;
  for (int64_t k = 0; k < calls; k++) {
    mat2 a = x_win(x, &s, k), b = transposed(w_win(w, &s, k));
    if (gemm_win(&a, &b, po + k * s.out, width, beta) < 0) { mtl_tensor_release(out); return NULL; }
  }
  if (act != MTL_ACT_NONE) run_rows(s.m, width, lin_act_part, &rows);
  if (grad) {
    mtl_node *n = mtl_record(MTL_OP_LINEAR, out, bias ? 3 : 2, in);
    if (!n) { mtl_tensor_release(out); return NULL; }
    n->iarg[0] = act;
    if (act != MTL_ACT_NONE) {
      mtl_tensor *y = mtl_tensor_alias(out); /* output values, no graph link */
      if (!y) { mtl_tensor_release(out); return NULL; }
      mtl_node_save(n, 0, y);
      mtl_tensor_release(y);
    }
  }
  return out;
}

mtl_tensor *mtl_linear(mtl_tensor *x, mtl_tensor *w, mtl_tensor *bias) {
  return mtl_linear_act(x, w, bias, MTL_ACT_NONE);
}

/* The activation's derivative applied to columns [c0, c1) of the gradient
 * [m, width] in place, and their sums into the bias gradient (a part owns its
 * columns, so the sums do not depend on the thread count). */
typedef struct {
  float *g;
  const float *y; /* relu: the saved output, else NULL */
  float *gb;      /* NULL: no bias gradient */
  int64_t m, width;
} lin_mask;

static void lin_mask_part(void *p, int64_t c0, int64_t c1) {
  lin_mask *j = p;
  for (int64_t i = 0; i < j->m; i++) {
    float *row = j->g + i * j->width;
    if (j->y) {
      const float *yr = j->y + i * j->width;
      for (int64_t c = c0; c < c1; c++) row[c] = yr[c] > 0.0f ? row[c] : 0.0f;
    }
    if (j->gb)
      for (int64_t c = c0; c < c1; c++) j->gb[c] += row[c];
  }
}

/* dx = g W, dW = g^T x, dbias = column sums of g (g after the activation's
 * derivative), per group. */
int mtl_linear_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *x = n->in[0], *w = n->in[1];
  mtl_activation act = (mtl_activation)n->iarg[0];
  lin_shape s = {0};
  s.m = x->shape[0];
  s.g = w->ndim == 3 ? w->shape[0] : 1;
  s.out = w->shape[w->ndim - 2];
  s.in = w->shape[w->ndim - 1];
  s.xs_row = x->stride[0];
  s.xs_col = x->stride[x->ndim - 1];
  s.xs_group = x->ndim == 3 ? x->stride[1] : 0;
  s.merged = w->ndim == 3 && x->ndim == 2 && (s.g == 1 || w->stride[0] == s.out * w->stride[1]);
  int64_t width = s.g * s.out;
  bool want_b = n->nin > 2 && mtl_node_wants(n, 2);
  /* the gradient before the activation, contiguous [m, width]: g itself
   * when it is contiguous and nothing else holds it (mtl_backward hands each
   * node its gradient that way), else a copy */
  mtl_tensor *gm = mtl_tensor_contiguous_data(g);
  if (!gm) return -1;
  if (act != MTL_ACT_NONE && gm == g && !(g->refcount == 2 && g->storage->refcount == 1 && !g->node)) {
    mtl_tensor_release(gm);
    gm = mtl_tensor_empty_like(g);
    if (!gm) return -1;
    mtl_tensor_copy_into(gm, g);
  }
  float *pg = mtl_f32(gm);
  mtl_tensor *gb = NULL;
  int64_t bshape[2] = {s.g, s.out};
  if (want_b) {
    gb = w->ndim == 3 ? mtl_tensor_zeros(MTL_F32, 2, bshape) : mtl_tensor_zeros(MTL_F32, 1, &bshape[1]);
    if (!gb) { mtl_tensor_release(gm); return -1; }
  }
  if (act != MTL_ACT_NONE || gb) {
    lin_mask job = {pg, act == MTL_ACT_RELU ? mtl_f32(n->saved[0]) : NULL, gb ? mtl_f32(gb) : NULL, s.m, width};
    if (mtl_get_num_threads() > 1 && s.m * width >= 2 * PAR_MIN_FLOATS)
      mtl_parallel_for(width, 64, lin_mask_part, &job);
    else
      lin_mask_part(&job, 0, width);
  }
  int rc = 0;
  /* dx and dW go straight into a gradient sum that already exists (beta = 1:
   * no new buffer, no zeroing pass, no separate add), else into a new tensor */
  if (mtl_node_wants(n, 0)) {
    mtl_tensor *sum = mtl_node_grad_sum(n, 0);
    mtl_tensor *gx = sum ? sum : mtl_tensor_new(MTL_F32, x->ndim, x->shape);
    if (!gx) rc = -1;
    int64_t xw = x->ndim == 3 ? s.g * s.in : s.in; /* floats per gx row */
    int64_t calls = s.merged || s.g == 1 ? 1 : s.g;
    for (int64_t k = 0; rc == 0 && k < calls; k++) {
      /* g_k [m,out] (all groups [m,g*out] when merged) times W_k [out,in] */
      mat2 a = window(gm, gm->offset + k * s.out, s.m, s.merged ? width : s.out, width, 1);
      mat2 b = w_win(w, &s, k);
      float beta = sum || (x->ndim == 2 && k > 0) ? 1.0f : 0.0f; /* a shared x sums its groups */
      rc = gemm_win(&a, &b, mtl_f32(gx) + (x->ndim == 3 ? k * s.in : 0), xw, beta);
    }
    if (!sum) {
      if (rc == 0) rc = mtl_node_accumulate(n, 0, gx);
      else mtl_tensor_release(gx);
    }
  }
  if (rc == 0 && mtl_node_wants(n, 1)) {
    mtl_tensor *sum = mtl_node_grad_sum(n, 1);
    mtl_tensor *gw = sum ? sum : mtl_tensor_new(MTL_F32, w->ndim, w->shape);
    if (!gw) rc = -1;
    int64_t calls = s.merged || s.g == 1 ? 1 : s.g;
    for (int64_t k = 0; rc == 0 && k < calls; k++) {
      /* g_k^T [out,m] (or [g*out,m]) times x_k [m,in] -> rows of gw */
      int64_t rows = s.merged ? width : s.out;
      mat2 a = transposed(window(gm, gm->offset + k * s.out, s.m, rows, width, 1));
      mat2 b = x_win(x, &s, k);
      rc = gemm_win(&a, &b, mtl_f32(gw) + k * s.out * s.in, s.in, sum ? 1.0f : 0.0f);
    }
    if (!sum) {
      if (rc == 0) rc = mtl_node_accumulate(n, 1, gw);
      else mtl_tensor_release(gw);
    }
  }
  mtl_tensor_release(gm);
  if (gb) {
    if (rc == 0) rc = mtl_node_accumulate(n, 2, gb);
    else mtl_tensor_release(gb);
  }
  return rc;
}
