/* Losses: binary cross entropy (on logits and on probabilities), mean squared
 * error, softmax cross entropy. Each is one fused kernel with its backward
 * right after it (rows in ops_loss.def).
 *
 * Reductions: "none" keeps one loss per element (per row for cross_entropy);
 * "sum" adds them; "mean" divides the sum by the number of terms (with a mask:
 * by the number of unmasked elements, and 0 when there are none). The node
 * keeps the reduction in iarg[0] and the factor applied to each term's
 * gradient (1/count for mean, else 1) in darg[0]. Sums run in double. */
#include <math.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

static int check_f32(const char *op, const mtl_tensor *t, const char *what) {
  if (t->dtype != MTL_F32)
    return mtl_error("%s: expected a float32 tensor for %s, got %s", op, what, mtl_dtype_name(t->dtype));
  return 0;
}

static bool same_shape(const mtl_tensor *a, const mtl_tensor *b) {
  if (a->ndim != b->ndim) return false;
  for (int i = 0; i < a->ndim; i++)
    if (a->shape[i] != b->shape[i]) return false;
  return true;
}

/* t must have exactly the shape of x (named `xname`). */
static int check_like(const char *op, const mtl_tensor *t, const char *what, const mtl_tensor *x,
                      const char *xname) {
  if (same_shape(t, x)) return 0;
  char s1[128], s2[128];
  return mtl_error("%s: %s must be shaped like the %s %s, got %s", op, what, xname,
                   mtl_shape_str(x, s1, sizeof s1), mtl_shape_str(t, s2, sizeof s2));
}

static int check_reduction(const char *op, mtl_reduction red) {
  if (red != MTL_REDUCE_MEAN && red != MTL_REDUCE_SUM && red != MTL_REDUCE_NONE)
    return mtl_error("%s: unknown reduction %d", op, (int)red);
  return 0;
}

/* The output: shaped like the per-element losses for "none", else a scalar. */
static mtl_tensor *loss_output(mtl_reduction red, int ndim, const int64_t *shape) {
  return red == MTL_REDUCE_NONE ? mtl_tensor_new(MTL_F32, ndim, shape) : mtl_tensor_new(MTL_F32, 0, NULL);
}

/* Writes the reduced value (mean over count terms) into a scalar output. */
static double reduce_total(mtl_reduction red, double total, int64_t count, bool masked) {
  if (red != MTL_REDUCE_MEAN) return total;
  if (count == 0) return masked ? 0.0 : NAN; /* PyTorch: mean of nothing is nan */
  return total / (double)count;
}

/* The gradient of term i: g[0] for a reduced loss, g[i] for "none". */
static inline float gout_at(const float *g, bool none, int64_t i) { return none ? g[i] : g[0]; }

/* Records the loss's node (when an input needs a gradient) with the
 * reduction and each term's gradient factor (1/count for mean, else 1).
 * *node is NULL when nothing was recorded; returns -1 on error. */
static int record_loss(int op, mtl_tensor *out, int nin, mtl_tensor **in, mtl_reduction red, int64_t count,
                       mtl_node **node) {
  *node = NULL;
  if (!mtl_needs_grad(nin, in)) return 0;
  if (!(*node = mtl_record(op, out, nin, in))) return -1;
  (*node)->iarg[0] = red;
  (*node)->darg[0] = red == MTL_REDUCE_MEAN ? (count ? 1.0 / (double)count : 0.0) : 1.0;
  return 0;
}

/* The end of a loss's forward: releases its n temporaries (NULL ones too)
 * and returns out; when !ok, releases out as well and returns NULL. */
static mtl_tensor *finish(bool ok, mtl_tensor *out, int n, mtl_tensor *const *temps) {
  mtl_tensor_release_all(n, temps);
  if (ok) return out;
  mtl_tensor_release(out);
  return NULL;
}

/* ---- binary cross entropy (logits or probabilities) ---------------------- */
/* Per element, with x = logit, p = probability, y = target:
 *   on logits:        max(x,0) - x*y + log1p(exp(-|x|))   (stable for any |x|)
 *   on probabilities: -(y * max(log p, -100) + (1-y) * max(log(1-p), -100))
 * times weight[i]; masked elements (mask 0) contribute exactly 0. */
static inline float bce_logit_term(float x, float y) {
  return fmaxf(x, 0.0f) - x * y + log1pf(expf(-fabsf(x)));
}
static inline float clamped_log(float v) { return fmaxf(logf(v), -100.0f); }
static inline float clamped_log1m(float v) { return fmaxf(log1pf(-v), -100.0f); }
static inline float bce_prob_term(float p, float y) {
  return -(y * clamped_log(p)) - (1.0f - y) * clamped_log1m(p); /* +0, not -0, at p = y */
}
static inline float stable_sigmoid(float x) { /* one exp, never overflows */
  float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
  return x >= 0 ? r : e * r;
}

/* Inputs (x, target, weight) are the node's inputs; saved: 0 x, 1 target,
 * 2 weight, 3 mask (contiguous, NULL when absent). */
static mtl_tensor *bce_impl(bool on_logits, mtl_tensor *x, mtl_tensor *y, mtl_tensor *w, mtl_tensor *m,
                            mtl_reduction red) {
  const char *op = on_logits ? "mtl.binary_cross_entropy_with_logits" : "mtl.binary_cross_entropy";
  const char *xname = on_logits ? "logits" : "input";
  if (check_reduction(op, red) < 0 || check_f32(op, x, xname) < 0 || check_f32(op, y, "target") < 0 ||
      check_like(op, y, "target", x, xname) < 0)
    return NULL;
  if (w && (check_f32(op, w, "weight") < 0 || check_like(op, w, "weight", x, xname) < 0)) return NULL;
  if (m && check_like(op, m, "mask", x, xname) < 0) return NULL;

  mtl_tensor *xc = mtl_tensor_contiguous_data(x), *yc = mtl_tensor_contiguous_data(y);
  mtl_tensor *wc = w ? mtl_tensor_contiguous_data(w) : NULL, *mc = m ? mtl_tensor_contiguous_data(m) : NULL;
  mtl_tensor *out = NULL;
  if (!xc || !yc || (w && !wc) || (m && !mc)) goto fail;
  int64_t n = x->numel;
  const float *px = mtl_f32(xc), *py = mtl_f32(yc), *pw = wc ? mtl_f32(wc) : NULL;
  /* The mask as 0/1 floats: a float32 mask is used directly, an int64 one
   * is converted once. Any other value is an error. */
  if (mc && mc->dtype == MTL_I64) {
    mtl_tensor *f = mtl_tensor_new(MTL_F32, mc->ndim, mc->shape);
    if (!f) goto fail;
    for (int64_t i = 0; i < n; i++) {
      int64_t v = mtl_i64(mc)[i];
      if (v != 0 && v != 1) {
        mtl_tensor_release(f);
        mtl_error("%s: mask must hold 0 or 1, got %lld at element %lld", op, (long long)v, (long long)i + 1);
        goto fail;
      }
      mtl_f32(f)[i] = (float)v;
    }
    mtl_tensor_release(mc);
    mc = f;
  }
  const float *pm = mc ? mtl_f32(mc) : NULL;
  for (int64_t i = 0; pm && i < n; i++)
    if (pm[i] != 0.0f && pm[i] != 1.0f) {
      mtl_error("%s: mask must hold 0 or 1, got %g at element %lld", op, pm[i], (long long)i + 1);
      goto fail;
    }
  if (!on_logits)
    for (int64_t i = 0; i < n; i++)
      if (!(px[i] >= 0.0f && px[i] <= 1.0f) && !(pm && pm[i] == 0.0f)) {
        mtl_error("%s: the input must hold probabilities in [0, 1], got %g at element %lld", op, px[i],
                  (long long)i + 1);
        goto fail;
      }

  bool none = red == MTL_REDUCE_NONE;
  out = loss_output(red, x->ndim, x->shape);
  if (!out) goto fail;
  float *po = mtl_f32(out);
  double total = 0;
  int64_t count = 0;
  for (int64_t i = 0; i < n; i++) {
    float l = 0.0f;
    if (!pm || pm[i] != 0.0f) {
      l = on_logits ? bce_logit_term(px[i], py[i]) : bce_prob_term(px[i], py[i]);
      if (pw) l *= pw[i];
      total += l;
      count++;
    }
    if (none) po[i] = l;
  }
  if (!none) po[0] = (float)reduce_total(red, total, count, pm != NULL);

  mtl_tensor *in[3] = {x, y, w};
  mtl_node *node;
  if (record_loss(on_logits ? MTL_OP_BCE_WITH_LOGITS : MTL_OP_BCE, out, 3, in, red, count, &node) < 0) goto fail;
  if (node) {
    mtl_node_save(node, 0, xc);
    mtl_node_save(node, 1, yc);
    if (wc) mtl_node_save(node, 2, wc);
    if (mc) mtl_node_save(node, 3, mc);
  }
  return finish(true, out, 4, (mtl_tensor *[]){xc, yc, wc, mc});
fail:
  return finish(false, out, 4, (mtl_tensor *[]){xc, yc, wc, mc});
}

mtl_tensor *mtl_bce_with_logits(mtl_tensor *logits, mtl_tensor *target, mtl_tensor *weight,
                                mtl_tensor *mask, mtl_reduction red) {
  return bce_impl(true, logits, target, weight, mask, red);
}

mtl_tensor *mtl_bce(mtl_tensor *p, mtl_tensor *target, mtl_tensor *weight, mtl_tensor *mask,
                    mtl_reduction red) {
  return bce_impl(false, p, target, weight, mask, red);
}

/* Derivatives of one (unweighted) term:
 *   logits: d/dx = sigmoid(x) - y,   d/dy = -x
 *   probs:  d/dp = (p - y) / max(p (1-p), 1e-12)   (PyTorch's form),
 *           d/dy = max(log(1-p), -100) - max(log p, -100)
 *   both:   d/dweight = the term itself.
 * Each gradient is scaled by g (per element or scalar), weight and the
 * reduction factor; masked elements get exactly 0. */
static int bce_backward_impl(bool on_logits, mtl_node *n, mtl_tensor *g) {
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  const float *px = mtl_f32(n->saved[0]), *py = mtl_f32(n->saved[1]);
  const float *pw = n->saved[2] ? mtl_f32(n->saved[2]) : NULL, *pm = n->saved[3] ? mtl_f32(n->saved[3]) : NULL;
  const float *go = mtl_f32(gc);
  bool none = n->iarg[0] == MTL_REDUCE_NONE;
  float scale = (float)n->darg[0];
  int64_t cnt = n->saved[0]->numel;
  int rc = 0;
  for (int k = 0; k < 3 && rc == 0; k++) {
    if (!mtl_node_wants(n, k)) continue;
    mtl_tensor *gi = mtl_tensor_new(MTL_F32, n->saved[0]->ndim, n->saved[0]->shape);
    if (!gi) { rc = -1; break; }
    float *pg = mtl_f32(gi);
    for (int64_t i = 0; i < cnt; i++) {
      if (pm && pm[i] == 0.0f) { pg[i] = 0.0f; continue; }
      float x = px[i], y = py[i], d;
      if (k == 0)
        d = on_logits ? stable_sigmoid(x) - y : (x - y) / fmaxf(x * (1.0f - x), 1e-12f);
      else if (k == 1)
        d = on_logits ? -x : clamped_log1m(x) - clamped_log(x);
      else
        d = on_logits ? bce_logit_term(x, y) : bce_prob_term(x, y);
      if (pw && k != 2) d *= pw[i];
      pg[i] = d * gout_at(go, none, i) * scale;
    }
    rc = mtl_node_accumulate(n, k, gi);
  }
  mtl_tensor_release(gc);
  return rc;
}

int mtl_bce_with_logits_backward(mtl_node *n, mtl_tensor *g) { return bce_backward_impl(true, n, g); }
int mtl_bce_backward(mtl_node *n, mtl_tensor *g) { return bce_backward_impl(false, n, g); }

/* ---- mean squared error ----------------------------------------------------- */
/* (a - target)^2 per element; saved: 0 the difference a - target. */
mtl_tensor *mtl_mse(mtl_tensor *a, mtl_tensor *target, mtl_reduction red) {
  const char *op = "mtl.mse";
  if (check_reduction(op, red) < 0 || check_f32(op, a, "the input") < 0 ||
      check_f32(op, target, "target") < 0 || check_like(op, target, "target", a, "input") < 0)
    return NULL;
  mtl_tensor *ac = mtl_tensor_contiguous_data(a), *tc = mtl_tensor_contiguous_data(target);
  mtl_tensor *diff = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  mtl_tensor *out = loss_output(red, a->ndim, a->shape);
  if (!ac || !tc || !diff || !out) goto fail;
  int64_t n = a->numel;
  const float *pa = mtl_f32(ac), *pt = mtl_f32(tc);
  float *pd = mtl_f32(diff), *po = mtl_f32(out);
  for (int64_t i = 0; i < n; i++) pd[i] = pa[i] - pt[i];
  if (red == MTL_REDUCE_NONE) {
    for (int64_t i = 0; i < n; i++) po[i] = pd[i] * pd[i];
  } else {
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += (double)pd[i] * (double)pd[i];
    po[0] = (float)reduce_total(red, total, n, false);
  }
  mtl_tensor *in[2] = {a, target};
  mtl_node *node;
  if (record_loss(MTL_OP_MSE, out, 2, in, red, n, &node) < 0) goto fail;
  if (node) mtl_node_save(node, 0, diff);
  return finish(true, out, 3, (mtl_tensor *[]){ac, tc, diff});
fail:
  return finish(false, out, 3, (mtl_tensor *[]){ac, tc, diff});
}

/* d/da = 2 (a - target), d/dtarget = -2 (a - target). */
int mtl_mse_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *diff = n->saved[0];
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  const float *pd = mtl_f32(diff), *go = mtl_f32(gc);
  bool none = n->iarg[0] == MTL_REDUCE_NONE;
  int rc = 0;
  for (int k = 0; k < 2 && rc == 0; k++) {
    if (!mtl_node_wants(n, k)) continue;
    mtl_tensor *gi = mtl_tensor_new(MTL_F32, diff->ndim, diff->shape);
    if (!gi) { rc = -1; break; }
    float *pg = mtl_f32(gi), f = (float)(2.0 * n->darg[0] * (k == 0 ? 1.0 : -1.0));
    if (none) for (int64_t i = 0; i < diff->numel; i++) pg[i] = f * pd[i] * go[i];
    else {
      float s = f * go[0];
      for (int64_t i = 0; i < diff->numel; i++) pg[i] = s * pd[i];
    }
    rc = mtl_node_accumulate(n, k, gi);
  }
  mtl_tensor_release(gc);
  return rc;
}

/* ---- softmax cross entropy -------------------------------------------------- */
/* logits [n, c], target int64 [n] of 0-based classes:
 *   loss_i = logsumexp(logits_i) - logits_i[target_i]   (max subtracted first).
 * saved: 0 softmax probabilities [n, c], 1 target (contiguous). */
mtl_tensor *mtl_cross_entropy(mtl_tensor *logits, mtl_tensor *target, mtl_reduction red) {
  const char *op = "mtl.cross_entropy";
  char s1[128], s2[128];
  if (check_reduction(op, red) < 0 || check_f32(op, logits, "logits") < 0) return NULL;
  if (logits->ndim != 2)
    return (void)mtl_error("%s: expected logits [n,c], got %s", op, mtl_shape_str(logits, s1, sizeof s1)), NULL;
  if (target->dtype != MTL_I64)
    return (void)mtl_error("%s: expected an int64 target of class indices, got %s", op,
                           mtl_dtype_name(target->dtype)), NULL;
  int64_t n = logits->shape[0], c = logits->shape[1];
  if (target->ndim != 1 || target->shape[0] != n)
    return (void)mtl_error("%s: target must be [%lld] to match logits %s, got %s", op, (long long)n,
                           mtl_shape_str(logits, s1, sizeof s1), mtl_shape_str(target, s2, sizeof s2)), NULL;
  mtl_tensor *xc = mtl_tensor_contiguous_data(logits), *tc = mtl_tensor_contiguous_data(target);
  mtl_tensor *out = loss_output(red, 1, &n), *prob = NULL;
  if (!xc || !tc || !out) goto fail;
  const int64_t *pt = mtl_i64(tc);
  for (int64_t i = 0; i < n; i++)
    if (pt[i] < 0 || pt[i] >= c) {
      mtl_error("%s: target class %lld at position %lld is out of range (expected 0..%lld)", op,
                (long long)pt[i], (long long)i, (long long)c - 1);
      goto fail;
    }
  bool grad = mtl_needs_grad(1, &logits);
  if (grad && !(prob = mtl_tensor_new(MTL_F32, 2, logits->shape))) goto fail;
  const float *px = mtl_f32(xc);
  float *po = mtl_f32(out);
  double total = 0;
  for (int64_t i = 0; i < n; i++) {
    const float *x = px + i * c;
    float mx = x[0];
    for (int64_t j = 1; j < c; j++) mx = fmaxf(mx, x[j]);
    double s = 0;
    for (int64_t j = 0; j < c; j++) s += expf(x[j] - mx);
    double lse = (double)mx + log(s);
    double l = lse - (double)x[pt[i]];
    if (red == MTL_REDUCE_NONE) po[i] = (float)l;
    total += l;
    if (prob) {
      float *p = mtl_f32(prob) + i * c;
      for (int64_t j = 0; j < c; j++) p[j] = expf((float)((double)x[j] - lse));
    }
  }
  if (red != MTL_REDUCE_NONE) po[0] = (float)reduce_total(red, total, n, false);
  mtl_node *node;
  if (record_loss(MTL_OP_CROSS_ENTROPY, out, 1, &logits, red, n, &node) < 0) goto fail;
  if (node) {
    mtl_node_save(node, 0, prob);
    mtl_node_save(node, 1, tc);
  }
  return finish(true, out, 3, (mtl_tensor *[]){xc, tc, prob});
fail:
  return finish(false, out, 3, (mtl_tensor *[]){xc, tc, prob});
}

/* d loss_i / d logits_ij = softmax_ij - [j == target_i]. */
int mtl_cross_entropy_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  mtl_tensor *prob = n->saved[0];
  const int64_t *pt = mtl_i64(n->saved[1]);
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  mtl_tensor *gi = mtl_tensor_new(MTL_F32, 2, prob->shape);
  if (!gc || !gi) {
    mtl_tensor_release(gc);
    mtl_tensor_release(gi);
    return -1;
  }
  int64_t rows = prob->shape[0], c = prob->shape[1];
  bool none = n->iarg[0] == MTL_REDUCE_NONE;
  const float *pp = mtl_f32(prob), *go = mtl_f32(gc);
  float *pg = mtl_f32(gi);
  for (int64_t i = 0; i < rows; i++) {
    float s = gout_at(go, none, i) * (float)n->darg[0];
    for (int64_t j = 0; j < c; j++) pg[i * c + j] = s * pp[i * c + j];
    pg[i * c + pt[i]] -= s;
  }
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}
