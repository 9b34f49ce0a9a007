/* Layers' building blocks: dropout, layer_norm, batch_norm, mix. Each is one fused
 * kernel with its hand-written backward right after it (rows in ops_nn.def).
 *
 * Saved tensors, by op (slot: contents):
 *   dropout     0: mask (0 or 1/(1-p) per element)
 *   layer_norm  0: x (contiguous)  1: mean [rows]  2: 1/std [rows]  3: weight or NULL
 *   batch_norm  0: x (contiguous)  1: mean [c]     2: 1/std [c]     3: weight or NULL
 * Row statistics are accumulated in double; element loops stay in float. */
#include <math.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

static int check_f32(const char *op, const mtl_tensor *t, const char *what) {
  if (t && t->dtype != MTL_F32)
    return mtl_error("%s: expected a float32 tensor for %s, got %s", op, what, mtl_dtype_name(t->dtype));
  return 0;
}

/* A per-feature parameter (weight, bias, running stats) must be 1-D [c]. */
static int check_vector(const char *op, const mtl_tensor *t, const char *what, int64_t c,
                        const mtl_tensor *x) {
  if (!t) return 0;
  if (check_f32(op, t, what) < 0) return -1;
  if (t->ndim != 1 || t->shape[0] != c) {
    char s1[128], s2[128];
    return mtl_error("%s: %s must be [%lld] to match the input %s, got %s", op, what, (long long)c,
                     mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(t, s2, sizeof s2));
  }
  return 0;
}

static int check_eps(const char *op, double eps) {
  if (!(eps >= 0) || !isfinite(eps))
    return mtl_error("%s: eps must be a finite number >= 0, got %g", op, eps);
  return 0;
}

/* Contiguous copies (or new references) of the optional tensors; on failure
 * releases what it made and returns -1. */
static int contiguous_all(int n, mtl_tensor **in, mtl_tensor **out) {
  for (int i = 0; i < n; i++) {
    out[i] = NULL;
    if (in[i] && !(out[i] = mtl_tensor_contiguous_data(in[i]))) {
      for (int k = 0; k < i; k++) mtl_tensor_release(out[k]);
      return -1;
    }
  }
  return 0;
}

/* Sum and dot product over a row in 8 independent float lanes, so the
 * compiler vectorizes them without -ffast-math; lanes are added in double. */
static double row_sum(const float *x, int64_t n) {
  float lane[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) lane[k] += x[j + k];
  double s = 0;
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; j < n; j++) s += x[j];
  return s;
}

static double row_dot(const float *a, const float *b, int64_t n) {
  float lane[8] = {0};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; k++) lane[k] += a[j + k] * b[j + k];
  double s = 0;
  for (int k = 0; k < 8; k++) s += lane[k];
  for (; j < n; j++) s += (double)a[j] * b[j];
  return s;
}

/* ---- dropout --------------------------------------------------------------- */
/* Each element is kept with probability 1-p (one mtl_rand_uniform draw per
 * element, in row-major order) and scaled by 1/(1-p). In eval mode, or with
 * p = 0, the input itself is returned (a new reference, like PyTorch). */
mtl_tensor *mtl_dropout(mtl_tensor *a, double p, bool training) {
  const char *op = "mtl.dropout";
  if (check_f32(op, a, "the input") < 0) return NULL;
  if (!(p >= 0 && p < 1)) return (void)mtl_error("%s: p must be in [0, 1), got %g", op, p), NULL;
  if (!training || p == 0) {
    mtl_tensor_retain(a);
    return a;
  }
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  mtl_tensor *mask = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!out || !mask || !src) goto fail;
  float scale = (float)(1.0 / (1.0 - p));
  float *m = mtl_f32(mask), *y = mtl_f32(out);
  const float *x = mtl_f32(src);
  int64_t n = a->numel;
  /* mtl_rand_uniform() is (mtl_rand_u64() >> 11) * 2^-53, so "uniform >= p"
   * is exactly "(u64 >> 11) >= ceil(p * 2^53)": the same decisions from the
   * same draws, without the conversion to double (the spec checks this
   * against mtl.rand's draws). */
  uint64_t threshold = (uint64_t)ceil(p * 0x1p53);
  for (int64_t i = 0; i < n; i++) m[i] = (mtl_rand_u64() >> 11) >= threshold ? scale : 0.0f;
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * m[i];
  if (mtl_needs_grad(1, &a)) {
    mtl_node *node = mtl_record(MTL_OP_DROPOUT, out, 1, &a);
    if (!node) goto fail;
    mtl_node_save(node, 0, mask);
  }
  mtl_tensor_release(mask);
  mtl_tensor_release(src);
  return out;
fail:
  mtl_tensor_release(out);
  mtl_tensor_release(mask);
  mtl_tensor_release(src);
  return NULL;
}

int mtl_dropout_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  mtl_tensor *gi = mtl_tensor_new(MTL_F32, n->out_ndim, n->out_shape);
  if (!gi) { mtl_tensor_release(gc); return -1; }
  const float *m = mtl_f32(n->saved[0]), *go = mtl_f32(gc);
  float *pi = mtl_f32(gi);
  for (int64_t i = 0; i < gi->numel; i++) pi[i] = go[i] * m[i];
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}

/* ---- layer_norm ------------------------------------------------------------ */
/* y = (x - mean) / sqrt(var + eps) * weight + bias over the last dim, with the
 * biased variance of each row. */
mtl_tensor *mtl_layer_norm(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias, double eps) {
  const char *op = "mtl.layer_norm";
  if (check_f32(op, a, "the input") < 0) return NULL;
  if (a->ndim < 1)
    return (void)mtl_error("%s: expected an input with at least 1 dimension, got a scalar", op), NULL;
  int64_t d = a->shape[a->ndim - 1], rows = 1;
  for (int i = 0; i < a->ndim - 1; i++) rows *= a->shape[i];
  if (check_vector(op, weight, "weight", d, a) < 0 || check_vector(op, bias, "bias", d, a) < 0 ||
      check_eps(op, eps) < 0)
    return NULL;

  mtl_tensor *in[3] = {a, weight, bias}, *c[3];
  if (contiguous_all(3, in, c) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  mtl_tensor *mean = mtl_tensor_new(MTL_F32, 1, &rows), *rstd = mtl_tensor_new(MTL_F32, 1, &rows);
  if (!out || !mean || !rstd) goto fail;
  const float *w = c[1] ? mtl_f32(c[1]) : NULL, *b = c[2] ? mtl_f32(c[2]) : NULL;
  float *pm = mtl_f32(mean), *pr = mtl_f32(rstd);
  for (int64_t r = 0; r < rows && d > 0; r++) {
    const float *x = mtl_f32(c[0]) + r * d;
    float *y = mtl_f32(out) + r * d;
    float mu = (float)(row_sum(x, d) / (double)d);
    for (int64_t j = 0; j < d; j++) y[j] = x[j] - mu; /* two passes: stable variance */
    float rs = (float)(1.0 / sqrt(row_dot(y, y, d) / (double)d + eps));
    pm[r] = mu;
    pr[r] = rs;
    if (w && b) for (int64_t j = 0; j < d; j++) y[j] = y[j] * rs * w[j] + b[j];
    else if (w) for (int64_t j = 0; j < d; j++) y[j] = y[j] * rs * w[j];
    else if (b) for (int64_t j = 0; j < d; j++) y[j] = y[j] * rs + b[j];
    else for (int64_t j = 0; j < d; j++) y[j] *= rs;
  }
  if (mtl_needs_grad(3, in)) {
    mtl_node *node = mtl_record(MTL_OP_LAYER_NORM, out, 3, in);
    if (!node) goto fail;
    mtl_node_save(node, 0, c[0]);
    mtl_node_save(node, 1, mean);
    mtl_node_save(node, 2, rstd);
    if (c[1]) mtl_node_save(node, 3, c[1]);
  }
  mtl_tensor_release_all(3, c);
  mtl_tensor_release(mean);
  mtl_tensor_release(rstd);
  return out;
fail:
  mtl_tensor_release_all(3, c);
  mtl_tensor_release(out);
  mtl_tensor_release(mean);
  mtl_tensor_release(rstd);
  return NULL;
}

/* With xh = normalized x and gh = g * weight (per row of length d):
 *   dx = rstd * (gh - mean(gh) - xh * mean(gh * xh)),
 *   dweight = sum over rows of g * xh,  dbias = sum over rows of g. */
int mtl_layer_norm_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *xt = n->saved[0], *wt = n->saved[3];
  bool want_x = mtl_node_wants(n, 0), want_w = mtl_node_wants(n, 1), want_b = mtl_node_wants(n, 2);
  int64_t d = xt->shape[xt->ndim - 1], rows = n->saved[1]->numel;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  mtl_tensor *gx = want_x ? mtl_tensor_new(MTL_F32, xt->ndim, xt->shape) : NULL;
  /* scratch: dweight and dbias sums in double, then one row of xh in float */
  size_t scratch_bytes = (size_t)(2 * d) * sizeof(double) + (size_t)d * sizeof(float);
  double *acc = mtl_alloc(scratch_bytes);
  if (!gc || (want_x && !gx) || !acc) {
    mtl_tensor_release(gc);
    mtl_tensor_release(gx);
    if (acc) mtl_free(acc, scratch_bytes);
    return -1;
  }
  double *dw = acc, *db = acc + d;
  float *xh = (float *)(acc + 2 * d);
  memset(acc, 0, (size_t)(2 * d) * sizeof(double));
  const float *w = wt ? mtl_f32(wt) : NULL;
  for (int64_t r = 0; r < rows && d > 0; r++) {
    const float *x = mtl_f32(xt) + r * d, *go = mtl_f32(gc) + r * d;
    float mu = mtl_f32(n->saved[1])[r], rs = mtl_f32(n->saved[2])[r];
    for (int64_t j = 0; j < d; j++) xh[j] = (x[j] - mu) * rs;
    if (want_x) {
      float *gi = mtl_f32(gx) + r * d; /* first holds gh = g * weight */
      if (w) for (int64_t j = 0; j < d; j++) gi[j] = go[j] * w[j];
      else memcpy(gi, go, (size_t)d * sizeof(float));
      float m1 = (float)(row_sum(gi, d) / (double)d), m2 = (float)(row_dot(gi, xh, d) / (double)d);
      for (int64_t j = 0; j < d; j++) gi[j] = rs * (gi[j] - m1 - xh[j] * m2);
    }
    if (want_w) for (int64_t j = 0; j < d; j++) dw[j] += go[j] * xh[j];
    if (want_b) for (int64_t j = 0; j < d; j++) db[j] += go[j];
  }
  mtl_tensor_release(gc);
  int rc = 0;
  if (want_x) rc = mtl_node_accumulate(n, 0, gx);
  for (int k = 1; k <= 2 && rc == 0; k++) {
    if (!(k == 1 ? want_w : want_b)) continue;
    mtl_tensor *gp = mtl_tensor_new(MTL_F32, 1, &d);
    if (!gp) { rc = -1; break; }
    const double *src = k == 1 ? dw : db;
    for (int64_t j = 0; j < d; j++) mtl_f32(gp)[j] = (float)src[j];
    rc = mtl_node_accumulate(n, k, gp);
  }
  mtl_free(acc, scratch_bytes);
  return rc;
}

/* ---- batch_norm ------------------------------------------------------------ */
/* x [n, c]: each column j is normalized with its mean and (biased) variance in
 * training, or with running_mean[j] / running_var[j] in eval. Training also
 * updates the running stats in place, as PyTorch does:
 *   running = (1 - momentum) * running + momentum * batch   (unbiased var). */
mtl_tensor *mtl_batch_norm(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias,
                           mtl_tensor *running_mean, mtl_tensor *running_var,
                           bool training, double momentum, double eps) {
  return mtl_batch_norm_act(a, weight, bias, running_mean, running_var, training, momentum, eps, false);
}

/* The training statistics in one pass over x: per column the sum and the sum
 * of squares in double (float inputs: the cancellation in ss - sum^2 / n costs
 * no float precision unless |mean| / std exceeds ~10^4). */
mtl_tensor *mtl_batch_norm_act(mtl_tensor *a, mtl_tensor *weight, mtl_tensor *bias,
                               mtl_tensor *running_mean, mtl_tensor *running_var,
                               bool training, double momentum, double eps, bool relu) {
  const char *op = relu ? "mtl.batch_norm (with relu)" : "mtl.batch_norm";
  char s1[128];
  if (check_f32(op, a, "the input") < 0) return NULL;
  if (a->ndim != 2)
    return (void)mtl_error("%s: expected an input [n,c], got %s", op, mtl_shape_str(a, s1, sizeof s1)), NULL;
  int64_t rows = a->shape[0], c = a->shape[1];
  if (check_vector(op, weight, "weight", c, a) < 0 || check_vector(op, bias, "bias", c, a) < 0 ||
      check_vector(op, running_mean, "running_mean", c, a) < 0 ||
      check_vector(op, running_var, "running_var", c, a) < 0 || check_eps(op, eps) < 0)
    return NULL;
  if (!running_mean != !running_var)
    return (void)mtl_error("%s: running_mean and running_var must be given together", op), NULL;
  if (!training && !running_mean)
    return (void)mtl_error("%s: eval mode needs running_mean and running_var", op), NULL;
  if (training && rows < 2)
    return (void)mtl_error("%s: expected more than 1 value per channel when training, got input %s", op,
                           mtl_shape_str(a, s1, sizeof s1)), NULL;
  if (!(momentum >= 0 && momentum <= 1))
    return (void)mtl_error("%s: momentum must be in [0, 1], got %g", op, momentum), NULL;
  if (running_mean && (running_mean->requires_grad || running_var->requires_grad))
    return (void)mtl_error("%s: running_mean and running_var are buffers and must not require a gradient", op), NULL;

  mtl_tensor *in[3] = {a, weight, bias}, *cc[3];
  if (contiguous_all(3, in, cc) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, 2, a->shape);
  mtl_tensor *mean = mtl_tensor_new(MTL_F32, 1, &c), *rstd = mtl_tensor_new(MTL_F32, 1, &c);
  /* scratch in double: column sums, then squared deviations */
  size_t scratch_bytes = (size_t)(2 * c) * sizeof(double);
  double *acc = c > 0 ? mtl_alloc(scratch_bytes) : NULL;
  if (!out || !mean || !rstd || (c > 0 && !acc)) goto fail;
  const float *x = mtl_f32(cc[0]);
  float *pm = mtl_f32(mean), *pr = mtl_f32(rstd);
  if (training) {
    double *sum = acc, *ss = acc + c;
    memset(acc, 0, scratch_bytes);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < c; j++) {
        double v = x[i * c + j];
        sum[j] += v;
        ss[j] += v * v;
      }
    for (int64_t j = 0; j < c; j++) {
      double mean = sum[j] / (double)rows, dev2 = ss[j] - sum[j] * mean; /* sum of squared deviations */
      pm[j] = (float)mean;
      ss[j] = dev2 > 0 ? dev2 : 0;
    }
    for (int64_t j = 0; j < c; j++) pr[j] = (float)(1.0 / sqrt(ss[j] / (double)rows + eps));
    if (running_mean) {
      /* the running stats may be strided 1-D views: write through strides */
      float *rm = mtl_f32(running_mean), *rv = mtl_f32(running_var);
      int64_t sm = running_mean->stride[0], sv = running_var->stride[0];
      for (int64_t j = 0; j < c; j++) {
        rm[j * sm] = (float)((1 - momentum) * rm[j * sm] + momentum * pm[j]);
        rv[j * sv] = (float)((1 - momentum) * rv[j * sv] + momentum * (ss[j] / (double)(rows - 1)));
      }
    }
  } else {
    const float *rm = mtl_f32(running_mean), *rv = mtl_f32(running_var);
    int64_t sm = running_mean->stride[0], sv = running_var->stride[0];
    for (int64_t j = 0; j < c; j++) {
      pm[j] = rm[j * sm];
      pr[j] = (float)(1.0 / sqrt((double)rv[j * sv] + eps));
    }
  }
  /* y = x * scale + shift per column; acc is reused for (scale, shift) in float */
  if (c > 0) {
    float *scale = (float *)acc, *shift = scale + c;
    const float *w = cc[1] ? mtl_f32(cc[1]) : NULL, *b = cc[2] ? mtl_f32(cc[2]) : NULL;
    for (int64_t j = 0; j < c; j++) {
      scale[j] = pr[j] * (w ? w[j] : 1.0f);
      shift[j] = (b ? b[j] : 0.0f) - pm[j] * scale[j];
    }
    float *y = mtl_f32(out);
    if (relu)
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < c; j++) {
          float v = fmaf(x[i * c + j], scale[j], shift[j]); /* as the backward's mask */
          y[i * c + j] = v > 0.0f ? v : 0.0f;
        }
    else
      for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < c; j++) y[i * c + j] = x[i * c + j] * scale[j] + shift[j];
  }
  if (mtl_needs_grad(3, in)) {
    mtl_node *node = mtl_record(MTL_OP_BATCH_NORM, out, 3, in);
    if (!node) goto fail;
    mtl_node_save(node, 0, cc[0]);
    mtl_node_save(node, 1, mean);
    mtl_node_save(node, 2, rstd);
    node->iarg[0] = training;
    node->iarg[1] = relu;
    if (relu) {
      /* the output's (scale, shift) per column, to recompute the mask */
      int64_t two_c[2] = {2, c};
      mtl_tensor *ss_t = mtl_tensor_new(MTL_F32, 2, two_c);
      if (!ss_t) goto fail;
      if (c > 0) memcpy(mtl_f32(ss_t), acc, (size_t)(2 * c) * sizeof(float));
      mtl_node_save(node, 3, ss_t);
      mtl_tensor_release(ss_t);
    } else if (cc[1]) {
      mtl_node_save(node, 3, cc[1]);
    }
  }
  if (acc) mtl_free(acc, scratch_bytes);
  mtl_tensor_release_all(3, cc);
  mtl_tensor_release(mean);
  mtl_tensor_release(rstd);
  return out;
fail:
  if (acc) mtl_free(acc, scratch_bytes);
  mtl_tensor_release_all(3, cc);
  mtl_tensor_release(out);
  mtl_tensor_release(mean);
  mtl_tensor_release(rstd);
  return NULL;
}

/* With xh = normalized x, per column j over the n rows:
 *   dbias = sum g,  dweight = sum g * xh,
 *   training: dx = rstd * w * (g - dbias / n - xh * dweight / n)
 *   eval:     dx = rstd * w * g   (the running stats are constants). */
int mtl_batch_norm_backward(mtl_node *n, mtl_tensor *g) {
  bool relu = n->iarg[1] != 0;
  mtl_tensor *xt = n->saved[0], *wt = relu ? NULL : n->saved[3];
  bool want_x = mtl_node_wants(n, 0), want_w = mtl_node_wants(n, 1), want_b = mtl_node_wants(n, 2);
  bool training = n->iarg[0] != 0;
  int64_t rows = xt->shape[0], c = xt->shape[1];
  const float *x = mtl_f32(xt), *pm = mtl_f32(n->saved[1]), *pr = mtl_f32(n->saved[2]);
  /* with relu: the gradient of the BN output is g where scale x + shift > 0
   * (computed as the forward did), else 0; scale = rstd w takes w's place */
  const float *scale = relu ? mtl_f32(n->saved[3]) : NULL, *shift = relu ? scale + c : NULL;
  const float *w = wt ? mtl_f32(wt) : NULL;
#define BN_G(i, j) (relu ? (fmaf(x[(i) * c + (j)], scale[j], shift[j]) > 0.0f ? go[(i) * c + (j)] : 0.0f) : go[(i) * c + (j)])
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  size_t scratch_bytes = (size_t)(2 * c) * sizeof(double);
  double *acc = c > 0 ? mtl_alloc(scratch_bytes) : NULL;
  if (!gc || (c > 0 && !acc)) {
    mtl_tensor_release(gc);
    if (acc) mtl_free(acc, scratch_bytes);
    return -1;
  }
  const float *go = mtl_f32(gc);
  double *db = acc, *dw = acc ? acc + c : NULL;
  int rc = 0;
  if (c > 0) {
    memset(acc, 0, scratch_bytes);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < c; j++) {
        float gij = BN_G(i, j);
        db[j] += gij;
        dw[j] += (double)gij * (double)((x[i * c + j] - pm[j]) * pr[j]);
      }
  }
  if (want_x) {
    mtl_tensor *gx = mtl_tensor_new(MTL_F32, 2, xt->shape);
    if (!gx) rc = -1;
    if (gx && c > 0) {
      /* per column: gx = k * g + k2 * (x - mean) + k3, folded into float */
      float *k1 = mtl_alloc((size_t)(3 * c) * sizeof(float));
      if (!k1) { mtl_tensor_release(gx); gx = NULL; rc = -1; }
      else {
        float *k2 = k1 + c, *k3 = k2 + c;
        for (int64_t j = 0; j < c; j++) {
          double kk = relu ? (double)scale[j] : (double)pr[j] * (w ? w[j] : 1.0f);
          k1[j] = (float)kk;
          if (training) {
            /* rstd*w*(g - db/n - (x-mean)*rstd*dw/n) */
            k2[j] = (float)(-kk * pr[j] * dw[j] / (double)rows);
            k3[j] = (float)(-kk * db[j] / (double)rows);
          } else {
            k2[j] = 0.0f;
            k3[j] = 0.0f;
          }
        }
        float *gi = mtl_f32(gx);
        for (int64_t i = 0; i < rows; i++)
          for (int64_t j = 0; j < c; j++)
            gi[i * c + j] = k1[j] * BN_G(i, j) + k2[j] * (x[i * c + j] - pm[j]) + k3[j];
        mtl_free(k1, (size_t)(3 * c) * sizeof(float));
      }
    }
    if (gx) rc = mtl_node_accumulate(n, 0, gx);
  }
  for (int k = 1; k <= 2 && rc == 0; k++) {
    if (!(k == 1 ? want_w : want_b)) continue;
    mtl_tensor *gp = mtl_tensor_new(MTL_F32, 1, &c);
    if (!gp) { rc = -1; break; }
    const double *src = k == 1 ? dw : db;
    for (int64_t j = 0; j < c; j++) mtl_f32(gp)[j] = (float)src[j];
    rc = mtl_node_accumulate(n, k, gp);
  }
#undef BN_G
  mtl_tensor_release(gc);
  if (acc) mtl_free(acc, scratch_bytes);
  return rc;
}

/* ---- mix: the gate-weighted sum of experts ------------------------------------
 * out[b,:] = sum_k gate[b,k] * E[b,k,:], where the experts E are the blocks
 * E_1 [B,n_1,d], E_2 [B,n_2,d], ... taken in order (k runs over n_1 + n_2 + ...)
 * and read through their strides (no concat, no broadcast temporary).
 * Node inputs: 0 = gate, 1.. = expert blocks. Backward:
 *   dE_i[b,k,:] = gate[b,k] * dout[b,:],  dgate[b,k] = <E[b,k,:], dout[b,:]>. */
#define MIX_MAX_BLOCKS 64
#define MIX_PAR_MIN 32768 /* output floats per part at least, on mtl's pool */

typedef struct {
  int nblocks;
  mtl_tensor *const *e;  /* expert blocks */
  const mtl_tensor *gate;
  int64_t d;
  const float *gout;     /* backward: dout [B, d] */
  float *out;            /* forward: out [B, d] (zeroed) */
  float *ggate;          /* backward: dgate [B, n] or NULL */
  float *ge[MIX_MAX_BLOCKS]; /* backward: dE_i [B, n_i, d] or NULL */
  bool add[MIX_MAX_BLOCKS];  /* add into ge[i] (a gradient sum) instead of writing */
} mix_job;

static void mix_fwd_part(void *p, int64_t b0, int64_t b1) {
  mix_job *j = p;
  const float *pg = mtl_f32(j->gate);
  int64_t gs0 = j->gate->stride[0], gs1 = j->gate->stride[1], d = j->d;
  for (int64_t b = b0; b < b1; b++) {
    float *o = j->out + b * d;
    int64_t k = 0;
    for (int i = 0; i < j->nblocks; i++) {
      const mtl_tensor *e = j->e[i];
      const float *pe = mtl_f32(e) + b * e->stride[0];
      int64_t s = e->stride[2];
      for (int64_t r = 0; r < e->shape[1]; r++, k++) {
        float w = pg[b * gs0 + k * gs1];
        const float *row = pe + r * e->stride[1];
        if (s == 1)
          for (int64_t c = 0; c < d; c++) o[c] += w * row[c];
        else
          for (int64_t c = 0; c < d; c++) o[c] += w * row[c * s];
      }
    }
  }
}

static void mix_bwd_part(void *p, int64_t b0, int64_t b1) {
  mix_job *j = p;
  const float *pg = mtl_f32(j->gate);
  int64_t gs0 = j->gate->stride[0], gs1 = j->gate->stride[1], d = j->d, n = j->gate->shape[1];
  for (int64_t b = b0; b < b1; b++) {
    const float *gr = j->gout + b * d;
    int64_t k = 0;
    for (int i = 0; i < j->nblocks; i++) {
      const mtl_tensor *e = j->e[i];
      int64_t ne = e->shape[1], s = e->stride[2];
      const float *pe = mtl_f32(e) + b * e->stride[0];
      for (int64_t r = 0; r < ne; r++, k++) {
        if (j->ggate) {
          const float *row = pe + r * e->stride[1];
          double acc = 0;
          if (s == 1) acc = row_dot(row, gr, d);
          else
            for (int64_t c = 0; c < d; c++) acc += (double)row[c * s] * gr[c];
          j->ggate[b * n + k] = (float)acc;
        }
        if (j->ge[i]) {
          float w = pg[b * gs0 + k * gs1];
          float *dst = j->ge[i] + (b * ne + r) * d;
          if (j->add[i])
            for (int64_t c = 0; c < d; c++) dst[c] += w * gr[c];
          else
            for (int64_t c = 0; c < d; c++) dst[c] = w * gr[c];
        }
      }
    }
  }
}

static void mix_run(int64_t B, int64_t d, mtl_task_fn part, mix_job *j) {
  if (mtl_get_num_threads() > 1 && B * d >= 2 * MIX_PAR_MIN) mtl_parallel_for(B, MIX_PAR_MIN / d + 1, part, j);
  else part(j, 0, B);
}

mtl_tensor *mtl_mix(int nblocks, mtl_tensor *const *experts, mtl_tensor *gate) {
  const char *op = "mtl.mix";
  char s1[128], s2[128];
  if (nblocks < 1 || nblocks > MIX_MAX_BLOCKS)
    return (void)mtl_error("%s: expected 1 to %d expert blocks, got %d", op, MIX_MAX_BLOCKS, nblocks), NULL;
  if (check_f32(op, gate, "the gate") < 0) return NULL;
  if (gate->ndim != 2)
    return (void)mtl_error("%s: expected a gate [B,n], got %s", op, mtl_shape_str(gate, s1, sizeof s1)), NULL;
  int64_t B = gate->shape[0], total = 0, d = -1;
  for (int i = 0; i < nblocks; i++) {
    const mtl_tensor *e = experts[i];
    if (check_f32(op, e, "the experts") < 0) return NULL;
    if (e->ndim != 3 || e->shape[0] != B || (d >= 0 && e->shape[2] != d))
      return (void)mtl_error("%s: expected experts [B,n,d] with B = %lld and one d, got %s (block %d) "
                             "with gate %s", op, (long long)B, mtl_shape_str(e, s1, sizeof s1), i + 1,
                             mtl_shape_str(gate, s2, sizeof s2)), NULL;
    d = e->shape[2];
    total += e->shape[1];
  }
  if (total != gate->shape[1])
    return (void)mtl_error("%s: the gate has %lld weights per row but the experts number %lld",
                           op, (long long)gate->shape[1], (long long)total), NULL;
  int64_t shape[2] = {B, d};
  mtl_tensor *out = mtl_tensor_zeros(MTL_F32, 2, shape);
  if (!out) return NULL;
  mix_job j = {nblocks, experts, gate, d, NULL, mtl_f32(out), NULL, {NULL}, {false}};
  if (d > 0) mix_run(B, d, mix_fwd_part, &j);
  mtl_tensor *in[MIX_MAX_BLOCKS + 1];
  in[0] = gate;
  for (int i = 0; i < nblocks; i++) in[i + 1] = experts[i];
  if (mtl_needs_grad(nblocks + 1, in) && !mtl_record(MTL_OP_MIX, out, nblocks + 1, in)) {
    mtl_tensor_release(out);
    return NULL;
  }
  return out;
}

int mtl_mix_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *gate = n->in[0];
  int nblocks = n->nin - 1;
  int64_t B = gate->shape[0], d = n->out_shape[1];
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  mix_job j = {nblocks, n->in + 1, gate, d, mtl_f32(gc), NULL, NULL, {NULL}, {false}};
  mtl_tensor *gg = NULL, *ge[MIX_MAX_BLOCKS] = {NULL};
  int rc = 0;
  if (mtl_node_wants(n, 0)) {
    if (!(gg = mtl_tensor_new(MTL_F32, 2, gate->shape))) rc = -1;
    else j.ggate = mtl_f32(gg);
  }
  /* dE goes straight into a gradient sum that exists (several gates mix the
   * same experts), else into a new tensor */
  for (int i = 0; i < nblocks && rc == 0; i++) {
    if (!mtl_node_wants(n, i + 1)) continue;
    mtl_tensor *sum = mtl_node_grad_sum(n, i + 1);
    if (sum) {
      j.ge[i] = mtl_f32(sum);
      j.add[i] = true;
    } else if ((ge[i] = mtl_tensor_new(MTL_F32, 3, n->in[i + 1]->shape))) {
      j.ge[i] = mtl_f32(ge[i]);
    } else {
      rc = -1;
    }
  }
  if (rc == 0 && d > 0) mix_run(B, d, mix_bwd_part, &j);
  else if (rc == 0 && gg) memset(j.ggate, 0, (size_t)gg->numel * sizeof(float));
  if (gg) {
    if (rc == 0) rc = mtl_node_accumulate(n, 0, gg);
    else mtl_tensor_release(gg);
  }
  for (int i = 0; i < nblocks; i++) {
    if (!ge[i]) continue;
    if (rc == 0) rc = mtl_node_accumulate(n, i + 1, ge[i]);
    else mtl_tensor_release(ge[i]);
  }
  mtl_tensor_release(gc);
  return rc;
}
