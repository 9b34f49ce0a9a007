/* Matrix products through cblas_sgemm. Transposed views are handed to BLAS as
 * transpose flags with their leading dimension, never copied. */
#include <cblas.h>
#include <limits.h>
#include <string.h>

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

/* c[m,n] = a[m,k] b[k,n] (+ beta c), for the 2-D slices at offsets oa, ob. */
static int gemm2d(const mtl_tensor *a, int64_t oa, const mtl_tensor *b, int64_t ob, float *c,
                  int64_t m, int64_t k, int64_t n, float beta) {
  if (m == 0 || n == 0) return 0;
  if (k == 0) {
    if (beta == 0.0f) memset(c, 0, (size_t)(m * n) * sizeof(float));
    return 0;
  }
  int d = a->ndim, e = b->ndim;
  int64_t sa[2] = {a->shape[d - 2], a->shape[d - 1]}, ta[2] = {a->stride[d - 2], a->stride[d - 1]};
  int64_t sb[2] = {b->shape[e - 2], b->shape[e - 1]}, tb[2] = {b->stride[e - 2], b->stride[e - 1]};
  CBLAS_TRANSPOSE fa, fb;
  int lda, ldb;
  const float *pa, *pb;
  mtl_tensor *tmpa = NULL, *tmpb = NULL;
  if (operand(a, oa, sa, ta, &fa, &lda, &pa, &tmpa) < 0) return -1;
  if (operand(b, ob, sb, tb, &fb, &ldb, &pb, &tmpb) < 0) { mtl_tensor_release(tmpa); return -1; }
  cblas_sgemm(CblasRowMajor, fa, fb, (int)m, (int)n, (int)k, 1.0f, pa, lda, pb, ldb, beta, c, (int)n);
  mtl_tensor_release(tmpa);
  mtl_tensor_release(tmpb);
  return 0;
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

mtl_tensor *mtl_linear(mtl_tensor *x, mtl_tensor *w, mtl_tensor *bias) {
  char s1[128], s2[128];
  if (x->dtype != MTL_F32 || w->dtype != MTL_F32 || (bias && bias->dtype != MTL_F32))
    return (void)mtl_error("mtl.linear: expected float32 tensors, got x %s, weight %s%s%s",
                           mtl_dtype_name(x->dtype), mtl_dtype_name(w->dtype), bias ? ", bias " : "",
                           bias ? mtl_dtype_name(bias->dtype) : ""), NULL;
  if (x->ndim != 2 || w->ndim != 2)
    return (void)mtl_error("mtl.linear: expected x [n,in] and weight [out,in], got %s and %s",
                           mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  if (x->shape[1] != w->shape[1])
    return (void)mtl_error("mtl.linear: input features differ: x %s, weight %s",
                           mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  if (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))
    return (void)mtl_error("mtl.linear: bias must be [%lld], got %s", (long long)w->shape[0],
                           mtl_shape_str(bias, s1, sizeof s1)), NULL;
  int64_t m = x->shape[0], k = x->shape[1], nout = w->shape[0];
  if (m > INT_MAX || k > INT_MAX || nout > INT_MAX)
    return (void)mtl_error("mtl.linear: dimensions too large for BLAS (at most %d): x %s, weight %s",
                           INT_MAX, mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(w, s2, sizeof s2)), NULL;
  int64_t shape[2] = {m, nout};
  mtl_tensor *out = mtl_tensor_new(MTL_F32, 2, shape);
  if (!out) return NULL;
  float *po = mtl_f32(out);
  float beta = 0.0f;
  if (bias) {
    mtl_tensor *bc = mtl_tensor_contiguous_data(bias);
    if (!bc) { mtl_tensor_release(out); return NULL; }
    for (int64_t i = 0; i < m; i++) memcpy(po + i * nout, mtl_f32(bc), (size_t)nout * sizeof(float));
    mtl_tensor_release(bc);
    beta = 1.0f;
  }
  mtl_tensor *wt = t_view(w);
  if (!wt) { mtl_tensor_release(out); return NULL; }
  int rc = gemm2d(x, x->offset, wt, wt->offset, po, m, k, nout, beta);
  mtl_tensor_release(wt);
  if (rc < 0) { mtl_tensor_release(out); return NULL; }
  mtl_tensor *in[3] = {x, w, bias};
  if (mtl_needs_grad(bias ? 3 : 2, in) && !mtl_record(MTL_OP_LINEAR, out, bias ? 3 : 2, in)) {
    mtl_tensor_release(out);
    return NULL;
  }
  return out;
}

/* dx = g W, dW = g^T x, dbias = column sums of g. */
int mtl_linear_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *x = n->in[0], *w = n->in[1];
  if (mtl_node_wants(n, 0) && mtl_node_accumulate(n, 0, matmul_raw(g, w)) < 0) return -1;
  if (mtl_node_wants(n, 1)) {
    mtl_tensor *gt = t_view(g);
    if (!gt) return -1;
    mtl_tensor *gw = matmul_raw(gt, x);
    mtl_tensor_release(gt);
    if (mtl_node_accumulate(n, 1, gw) < 0) return -1;
  }
  if (n->nin > 2 && mtl_node_wants(n, 2) && mtl_node_accumulate(n, 2, mtl_sum(g, 0, false)) < 0)
    return -1;
  return 0;
}
