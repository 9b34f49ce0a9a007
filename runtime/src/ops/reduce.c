/* Reductions: sum and mean over one dim or all elements (more in this family:
 * max, min, softmax, log_softmax). Rows in ops_reduce.def. */
#include <math.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* Checks dim (-1 = all) and fills the output shape. */
static int reduced_shape(const char *op, const mtl_tensor *a, int dim, bool keepdim, int *nd,
                         int64_t *shape) {
  if (dim == -1) {
    *nd = 0;
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
    double acc = 0;
    for (int64_t i = 0; i < a->numel; i++) acc += x[i];
    y[0] = (float)(mean ? (a->numel ? acc / (double)a->numel : NAN) : acc);
  } else {
    int64_t outer, n, inner;
    split_dims(a, dim, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++) {
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
