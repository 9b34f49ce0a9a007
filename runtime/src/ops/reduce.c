/* Reductions: sum, mean, max and min over one dim or all elements, and
 * softmax / log_softmax over a dim. Inputs of any strides are first made
 * contiguous and seen as [outer, n, inner] around the reduced dim, so every
 * kernel walks memory in order. Rows in ops_reduce.def. */
#include <math.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* Checks dim (-1 = all) and fills the output shape. */
static int reduced_shape(const char *op, const mtl_tensor *a, int dim, bool keepdim, int *nd,
                         int64_t *shape) {
  if (dim == -1) { /* all elements: a scalar, or all-ones dims with keepdim */
    *nd = keepdim ? a->ndim : 0;
    for (int i = 0; i < *nd; i++) shape[i] = 1;
    return 0;
  }
  if (dim < 0 || dim >= a->ndim)
    return mtl_error("%s: dimension %d out of range (tensor has %d dimensions)", op, dim + 1, a->ndim);
  int k = 0;
  for (int i = 0; i < a->ndim; i++) {
    if (i == dim) {
      if (keepdim) shape[k++] = 1;
    } else {
      shape[k++] = a->shape[i];
    }
  }
  *nd = k;
  return 0;
}

/* Splits a contiguous tensor around dim into [outer, n, inner]. */
static void split_dims(const mtl_tensor *a, int dim, int64_t *outer, int64_t *n, int64_t *inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < dim; i++) *outer *= a->shape[i];
  for (int i = dim + 1; i < a->ndim; i++) *inner *= a->shape[i];
  *n = a->shape[dim];
}

/* Sum of a contiguous run: eight float lanes (independent add chains the
 * compiler can pipeline or vectorize) over blocks of 1024, blocks added in
 * double, so the rounding error stays small for long runs. */
static double sum_run(const float *x, int64_t n) {
  double total = 0;
  for (int64_t start = 0; start < n; start += 1024) {
    int64_t len = n - start < 1024 ? n - start : 1024, i = 0;
    const float *p = x + start;
    float lane[8] = {0};
    for (; i + 8 <= len; i += 8)
      for (int k = 0; k < 8; k++) lane[k] += p[i + k];
    float rest = 0;
    for (; i < len; i++) rest += p[i];
    total += (double)((lane[0] + lane[1]) + (lane[2] + lane[3])) +
             (double)((lane[4] + lane[5]) + (lane[6] + lane[7])) + (double)rest;
  }
  return total;
}

static mtl_tensor *sum_impl(int op_id, const char *op, mtl_tensor *a, int dim, bool keepdim, bool mean) {
  if (a->dtype != MTL_F32)
    return (void)mtl_error("%s: expected a float32 tensor, got %s", op, mtl_dtype_name(a->dtype)), NULL;
  int nd = 0;
  int64_t shape[MTL_MAX_DIMS];
  if (reduced_shape(op, a, dim, keepdim, &nd, shape) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, nd, shape);
  if (!out) return NULL;
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!src) { mtl_tensor_release(out); return NULL; }
  const float *x = mtl_f32(src);
  float *y = mtl_f32(out);
  if (dim == -1) {
    double acc = sum_run(x, a->numel);
    y[0] = (float)(mean ? (a->numel ? acc / (double)a->numel : NAN) : acc);
  } else {
    int64_t outer, n, inner;
    split_dims(a, dim, &outer, &n, &inner);
    for (int64_t o = 0; inner == 1 && o < outer; o++) { /* the last dim: contiguous runs */
      double acc = sum_run(x + o * n, n);
      y[o] = (float)(mean ? (n ? acc / (double)n : NAN) : acc);
    }
    for (int64_t o = 0; inner > 1 && o < outer; o++) {
      float *yo = y + o * inner;
      for (int64_t j = 0; j < inner; j++) yo[j] = 0;
      for (int64_t r = 0; r < n; r++) {
        const float *xr = x + (o * n + r) * inner;
        for (int64_t j = 0; j < inner; j++) yo[j] += xr[j];
      }
      if (mean) {
        float s = n ? 1.0f / (float)n : NAN;
        for (int64_t j = 0; j < inner; j++) yo[j] *= s;
      }
    }
  }
  mtl_tensor_release(src);
  if (mtl_needs_grad(1, &a)) {
    mtl_node *nd_ = mtl_record(op_id, out, 1, &a);
    if (!nd_) { mtl_tensor_release(out); return NULL; }
    nd_->iarg[0] = dim;
    nd_->iarg[1] = keepdim;
  }
  return out;
}

mtl_tensor *mtl_sum(mtl_tensor *a, int dim, bool keepdim) {
  return sum_impl(MTL_OP_SUM, "mtl.sum", a, dim, keepdim, false);
}
mtl_tensor *mtl_mean(mtl_tensor *a, int dim, bool keepdim) {
  return sum_impl(MTL_OP_MEAN, "mtl.mean", a, dim, keepdim, true);
}

/* Spreads g (the reduced gradient) back over the input's shape, times scale. */
static mtl_tensor *spread(const mtl_tensor *x, int dim, mtl_tensor *g, float scale) {
  mtl_tensor *out = mtl_tensor_new(MTL_F32, x->ndim, x->shape);
  if (!out) return NULL;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) { mtl_tensor_release(out); return NULL; }
  const float *pg = mtl_f32(gc);
  float *po = mtl_f32(out);
  if (dim == -1) {
    float v = pg[0] * scale;
    for (int64_t i = 0; i < out->numel; i++) po[i] = v;
  } else {
    int64_t outer, n, inner;
    split_dims(x, dim, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t r = 0; r < n; r++)
        for (int64_t j = 0; j < inner; j++) po[(o * n + r) * inner + j] = pg[o * inner + j] * scale;
  }
  mtl_tensor_release(gc);
  return out;
}

int mtl_sum_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  return mtl_node_accumulate(n, 0, spread(n->in[0], (int)n->iarg[0], g, 1.0f));
}

int mtl_mean_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  const mtl_tensor *x = n->in[0];
  int dim = (int)n->iarg[0];
  int64_t cnt = dim == -1 ? x->numel : x->shape[dim];
  return mtl_node_accumulate(n, 0, spread(x, dim, g, cnt ? 1.0f / (float)cnt : 0.0f));
}

/* ---- max and min ------------------------------------------------------------
 * Values and 0-based positions along dim (the flat position when dim == -1).
 * Ties keep the first occurrence; a nan wins over any number (the first nan),
 * so a nan in the input shows in the result as in PyTorch. The gradient goes
 * to the chosen element only. */
#define EXTREME_KERNEL(T, BETTER)                                               \
  for (int64_t o = 0; o < outer; o++) {                                         \
    const T *xo = (const T *)x + o * n * inner;                                 \
    T *yo = (T *)y + o * inner;                                                 \
    int64_t *io = ix + o * inner;                                               \
    for (int64_t j = 0; j < inner; j++) { yo[j] = xo[j]; io[j] = 0; }           \
    for (int64_t r = 1; r < n; r++) {                                           \
      const T *xr = xo + r * inner;                                             \
      for (int64_t j = 0; j < inner; j++) {                                     \
        T v = xr[j], b = yo[j];                                                 \
        if (BETTER) { yo[j] = v; io[j] = r; }                                   \
      }                                                                         \
    }                                                                           \
  }

static mtl_tensor *extreme(bool is_max, mtl_tensor *a, int dim, bool keepdim, mtl_tensor **indices) {
  const char *op = is_max ? "mtl.max" : "mtl.min";
  char s[128];
  if (indices) *indices = NULL;
  int nd = 0;
  int64_t shape[MTL_MAX_DIMS];
  if (reduced_shape(op, a, dim, keepdim, &nd, shape) < 0) return NULL;
  if (dim == -1 && a->numel == 0)
    return (void)mtl_error("%s: cannot reduce an empty tensor %s", op, mtl_shape_str(a, s, sizeof s)), NULL;
  if (dim >= 0 && a->shape[dim] == 0)
    return (void)mtl_error("%s: cannot reduce over dimension %d of size 0 (tensor %s)", op, dim + 1,
                           mtl_shape_str(a, s, sizeof s)), NULL;
  mtl_tensor *out = mtl_tensor_new(a->dtype, nd, shape);
  mtl_tensor *idx = out ? mtl_tensor_new(MTL_I64, nd, shape) : NULL;
  mtl_tensor *src = idx ? mtl_tensor_contiguous_data(a) : NULL;
  if (!src) {
    mtl_tensor_release(out);
    mtl_tensor_release(idx);
    return NULL;
  }
  int64_t outer = 1, n = a->numel, inner = 1;
  if (dim >= 0) split_dims(a, dim, &outer, &n, &inner);
  /* element pointers of either dtype (offset applied) */
  const void *x = a->dtype == MTL_F32 ? (const void *)mtl_f32(src) : (const void *)mtl_i64(src);
  void *y = a->dtype == MTL_F32 ? (void *)mtl_f32(out) : (void *)mtl_i64(out);
  int64_t *ix = mtl_i64(idx);
  if (a->dtype == MTL_F32) {
    if (is_max) { EXTREME_KERNEL(float, v > b || (v != v && b == b)) }
    else { EXTREME_KERNEL(float, v < b || (v != v && b == b)) }
  } else {
    if (is_max) { EXTREME_KERNEL(int64_t, v > b) }
    else { EXTREME_KERNEL(int64_t, v < b) }
  }
  mtl_tensor_release(src);
  if (a->dtype == MTL_F32 && mtl_needs_grad(1, &a)) {
    mtl_node *node = mtl_record(is_max ? MTL_OP_MAX : MTL_OP_MIN, out, 1, &a);
    /* The node keeps its own copy of the positions: the caller may change
     * the ones it gets (the binding makes them 1-based in place). */
    mtl_tensor *keep = node ? mtl_tensor_empty_like(idx) : NULL;
    if (!keep) {
      mtl_tensor_release(out);
      mtl_tensor_release(idx);
      return NULL;
    }
    memcpy(mtl_i64(keep), ix, (size_t)idx->numel * sizeof(int64_t));
    mtl_node_save(node, 0, keep);
    mtl_tensor_release(keep);
    node->iarg[0] = dim;
  }
  if (indices) *indices = idx;
  else mtl_tensor_release(idx);
  return out;
}

mtl_tensor *mtl_max(mtl_tensor *a, int dim, bool keepdim, mtl_tensor **indices) {
  return extreme(true, a, dim, keepdim, indices);
}
mtl_tensor *mtl_min(mtl_tensor *a, int dim, bool keepdim, mtl_tensor **indices) {
  return extreme(false, a, dim, keepdim, indices);
}

/* Routes each output's gradient to the position that was chosen. */
static int extreme_backward(mtl_node *nd, mtl_tensor *g) {
  if (!mtl_node_wants(nd, 0)) return 0;
  const mtl_tensor *x = nd->in[0];
  int dim = (int)nd->iarg[0];
  int64_t outer = 1, n = x->numel, inner = 1;
  if (dim >= 0) split_dims(x, dim, &outer, &n, &inner);
  mtl_tensor *gi = mtl_tensor_zeros(MTL_F32, x->ndim, x->shape);
  if (!gi) return -1;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) { mtl_tensor_release(gi); return -1; }
  const float *pg = mtl_f32(gc);
  const int64_t *ix = mtl_i64(nd->saved[0]);
  float *pi = mtl_f32(gi);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t j = 0; j < inner; j++) {
      int64_t r = ix[o * inner + j];
      if (r >= 0 && r < n) pi[(o * n + r) * inner + j] = pg[o * inner + j];
    }
  mtl_tensor_release(gc);
  return mtl_node_accumulate(nd, 0, gi);
}

int mtl_max_backward(mtl_node *n, mtl_tensor *g) { return extreme_backward(n, g); }
int mtl_min_backward(mtl_node *n, mtl_tensor *g) { return extreme_backward(n, g); }

/* ---- softmax and log_softmax ---------------------------------------------------
 * Stable form: subtract the max of each slice before exp. A -inf entry gets
 * probability 0 (log-probability -inf); a slice that is all -inf has no
 * distribution and gives nan, as in PyTorch. Sums are kept in double. */
static mtl_tensor *softmax_impl(bool logsm, mtl_tensor *a, int dim) {
  const char *op = logsm ? "mtl.log_softmax" : "mtl.softmax";
  char s[128];
  if (a->dtype != MTL_F32)
    return (void)mtl_error("%s: expected a float32 tensor, got %s", op, mtl_dtype_name(a->dtype)), NULL;
  if (a->ndim == 0)
    return (void)mtl_error("%s: expected a tensor with at least 1 dimension, got %s", op,
                           mtl_shape_str(a, s, sizeof s)), NULL;
  if (dim < 0 || dim >= a->ndim)
    return (void)mtl_error("%s: dimension %d out of range (tensor has %d dimensions)", op, dim + 1,
                           a->ndim), NULL;
  int64_t outer, n, inner;
  split_dims(a, dim, &outer, &n, &inner);
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!src) { mtl_tensor_release(out); return NULL; }
  /* Per-column running sum and max, used when dim is not the last one. */
  size_t scratch = (size_t)inner * (sizeof(double) + sizeof(float));
  double *acc = inner > 1 ? mtl_alloc(scratch) : NULL;
  if (inner > 1 && !acc) {
    mtl_tensor_release(src);
    mtl_tensor_release(out);
    return NULL;
  }
  float *mx = acc ? (float *)(acc + inner) : NULL;
  for (int64_t o = 0; o < outer && n > 0; o++) {
    const float *x = mtl_f32(src) + o * n * inner;
    float *y = mtl_f32(out) + o * n * inner;
    if (inner == 1) { /* the common case: one contiguous row */
      float m = -INFINITY;
      for (int64_t r = 0; r < n; r++) m = x[r] > m ? x[r] : m;
      double sum = 0;
      if (logsm) {
        for (int64_t r = 0; r < n; r++) sum += expf(x[r] - m);
        float ls = (float)log(sum);
        for (int64_t r = 0; r < n; r++) y[r] = (x[r] - m) - ls;
      } else {
        for (int64_t r = 0; r < n; r++) { y[r] = expf(x[r] - m); sum += y[r]; }
        float inv = (float)(1.0 / sum);
        for (int64_t r = 0; r < n; r++) y[r] *= inv;
      }
      continue;
    }
    for (int64_t j = 0; j < inner; j++) { mx[j] = -INFINITY; acc[j] = 0; }
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < inner; j++) mx[j] = x[r * inner + j] > mx[j] ? x[r * inner + j] : mx[j];
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < inner; j++) {
        float e = expf(x[r * inner + j] - mx[j]);
        y[r * inner + j] = e;
        acc[j] += e;
      }
    /* finish: acc becomes log(sum) or 1/sum */
    for (int64_t j = 0; j < inner; j++) acc[j] = logsm ? log(acc[j]) : 1.0 / acc[j];
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < inner; j++) {
        int64_t k = r * inner + j;
        y[k] = logsm ? (x[k] - mx[j]) - (float)acc[j] : y[k] * (float)acc[j];
      }
  }
  if (acc) mtl_free(acc, scratch);
  mtl_tensor_release(src);
  if (mtl_needs_grad(1, &a)) {
    mtl_node *node = mtl_record(logsm ? MTL_OP_LOG_SOFTMAX : MTL_OP_SOFTMAX, out, 1, &a);
    mtl_tensor *y = node ? mtl_tensor_alias(out) : NULL; /* output values, no graph link */
    if (!y) { mtl_tensor_release(out); return NULL; }
    mtl_node_save(node, 0, y);
    mtl_tensor_release(y);
    node->iarg[0] = dim;
  }
  return out;
}

mtl_tensor *mtl_softmax(mtl_tensor *a, int dim) { return softmax_impl(false, a, dim); }
mtl_tensor *mtl_log_softmax(mtl_tensor *a, int dim) { return softmax_impl(true, a, dim); }

/* With y the output and g its gradient, along the dim:
 *   softmax:      dx = y * (g - sum(g * y))
 *   log_softmax:  dx = g - exp(y) * sum(g)  */
static int softmax_backward_impl(bool logsm, mtl_node *nd, mtl_tensor *g) {
  if (!mtl_node_wants(nd, 0)) return 0;
  const mtl_tensor *yt = nd->saved[0];
  int64_t outer, n, inner;
  split_dims(yt, (int)nd->iarg[0], &outer, &n, &inner);
  mtl_tensor *gi = mtl_tensor_new(MTL_F32, yt->ndim, yt->shape);
  if (!gi) return -1;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  size_t scratch = (size_t)inner * sizeof(double);
  double *acc = gc ? mtl_alloc(scratch) : NULL;
  if (!acc) {
    mtl_tensor_release(gc);
    mtl_tensor_release(gi);
    return -1;
  }
  for (int64_t o = 0; o < outer; o++) {
    const float *y = mtl_f32(yt) + o * n * inner, *go = mtl_f32(gc) + o * n * inner;
    float *gx = mtl_f32(gi) + o * n * inner;
    for (int64_t j = 0; j < inner; j++) acc[j] = 0;
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < inner; j++)
        acc[j] += logsm ? go[r * inner + j] : go[r * inner + j] * y[r * inner + j];
    for (int64_t r = 0; r < n; r++)
      for (int64_t j = 0; j < inner; j++) {
        int64_t k = r * inner + j;
        gx[k] = logsm ? go[k] - expf(y[k]) * (float)acc[j] : y[k] * (go[k] - (float)acc[j]);
      }
  }
  mtl_free(acc, scratch);
  mtl_tensor_release(gc);
  return mtl_node_accumulate(nd, 0, gi);
}

int mtl_softmax_backward(mtl_node *n, mtl_tensor *g) { return softmax_backward_impl(false, n, g); }
int mtl_log_softmax_backward(mtl_node *n, mtl_tensor *g) { return softmax_backward_impl(true, n, g); }
