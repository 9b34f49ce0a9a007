/* Optimizers: configs, the per-kind update kernels (dense and row-wise), the
 * optimizer object and gradient clipping. Update rules in docs/optim.md.
 *
 * Each kernel updates n consecutive floats of a parameter with its gradient
 * and state; the dense path calls it once per tensor, the row-wise path once
 * per touched row (n = dim). Scalars are folded before the loops so the loops
 * are plain float arithmetic the compiler can vectorize. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedding_internal.h"
#include "mtl/autograd.h"
#include "mtl/optim.h"

/* ---- configs ----------------------------------------------------------------- */
static const char *const kind_names[] = {"sgd", "adam", "adamw", "adagrad", "ftrl", "rmsprop"};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == MTL_OPTIM__COUNT, "optimizer names out of step");

const char *mtl_optim_kind_name(mtl_optim_kind k) {
  return k >= 0 && k < MTL_OPTIM__COUNT ? kind_names[k] : "?";
}

int mtl_optim_kind_from_name(const char *s) {
  for (int k = 0; k < MTL_OPTIM__COUNT; k++)
    if (!strcmp(s, kind_names[k])) return k;
  return -1;
}

void mtl_optim_defaults(mtl_optim_kind k, mtl_optim_config *c) {
  memset(c, 0, sizeof *c);
  c->beta1 = 0.9;
  c->beta2 = 0.999;
  c->eps = 1e-8;
  c->alpha = 0.99;
  c->lr_power = -0.5;
  switch (k) {
    case MTL_OPTIM_SGD: c->lr = 0.01; break;
    case MTL_OPTIM_ADAM: c->lr = 1e-3; break;
    case MTL_OPTIM_ADAMW: c->lr = 1e-3; c->weight_decay = 1e-2; break;
    case MTL_OPTIM_ADAGRAD: c->lr = 1e-2; c->eps = 1e-10; break;
    case MTL_OPTIM_FTRL: c->lr = 1e-3; c->initial_accumulator = 0.1; break;
    default: c->lr = 1e-2; break; /* rmsprop */
  }
}

const char *const *mtl_optim_options(mtl_optim_kind k) {
  static const char *const sgd[] = {"lr", "momentum", "nesterov", "weight_decay", NULL};
  static const char *const adam[] = {"lr", "beta1", "beta2", "eps", "weight_decay", NULL};
  static const char *const adagrad[] = {"lr", "lr_decay", "weight_decay", "initial_accumulator", "eps", NULL};
  static const char *const ftrl[] = {"lr", "lr_power", "l1", "l2", "initial_accumulator", NULL};
  static const char *const rmsprop[] = {"lr", "alpha", "eps", "weight_decay", "momentum", "centered", NULL};
  switch (k) {
    case MTL_OPTIM_SGD: return sgd;
    case MTL_OPTIM_ADAM:
    case MTL_OPTIM_ADAMW: return adam;
    case MTL_OPTIM_ADAGRAD: return adagrad;
    case MTL_OPTIM_FTRL: return ftrl;
    default: return rmsprop;
  }
}

/* v must be finite and in [lo, hi] ([lo, hi) when hi_open); +-1e300 stand for no bound. */
static int check_range(const char *fname, const char *what, double v, double lo, double hi, bool hi_open) {
  if (isfinite(v) && v >= lo && v <= hi && !(hi_open && v == hi)) return 0;
  if (hi >= 1e300) return mtl_error("%s: %s must be a finite number >= %g, got %g", fname, what, lo, v);
  if (lo <= -1e300) return mtl_error("%s: %s must be a finite number <= %g, got %g", fname, what, hi, v);
  return mtl_error("%s: %s must be in [%g, %g%s, got %g", fname, what, lo, hi, hi_open ? ")" : "]", v);
}

int mtl_optim_check(mtl_optim_kind k, const mtl_optim_config *c, const char *fname) {
  const double big = 1e300;
  if (check_range(fname, "lr", c->lr, 0, big, false) < 0 ||
      check_range(fname, "weight_decay", c->weight_decay, 0, big, false) < 0 ||
      check_range(fname, "momentum", c->momentum, 0, big, false) < 0 ||
      check_range(fname, "beta1", c->beta1, 0, 1, true) < 0 ||
      check_range(fname, "beta2", c->beta2, 0, 1, true) < 0 ||
      check_range(fname, "eps", c->eps, 0, big, false) < 0 ||
      check_range(fname, "alpha", c->alpha, 0, 1, false) < 0 ||
      check_range(fname, "lr_decay", c->lr_decay, 0, big, false) < 0 ||
      check_range(fname, "initial_accumulator", c->initial_accumulator, 0, big, false) < 0 ||
      check_range(fname, "lr_power", c->lr_power, -big, 0, false) < 0 ||
      check_range(fname, "l1", c->l1, 0, big, false) < 0 ||
      check_range(fname, "l2", c->l2, 0, big, false) < 0)
    return -1;
  if (k == MTL_OPTIM_SGD && c->nesterov && c->momentum <= 0)
    return mtl_error("%s: nesterov needs a momentum > 0", fname);
  return 0;
}

void mtl_optim_state_layout(mtl_optim_kind k, const mtl_optim_config *c,
                            const char *names[MTL_OPTIM_MAX_STATE], float init[MTL_OPTIM_MAX_STATE]) {
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) {
    names[i] = NULL;
    init[i] = 0.0f;
  }
  switch (k) {
    case MTL_OPTIM_SGD:
      if (c->momentum != 0) names[0] = "momentum_buffer";
      break;
    case MTL_OPTIM_ADAM:
    case MTL_OPTIM_ADAMW:
      names[0] = "exp_avg";
      names[1] = "exp_avg_sq";
      break;
    case MTL_OPTIM_ADAGRAD:
      names[0] = "sum";
      init[0] = (float)c->initial_accumulator;
      break;
    case MTL_OPTIM_FTRL:
      names[0] = "accumulator";
      init[0] = (float)c->initial_accumulator;
      names[1] = "linear";
      break;
    default:
      names[0] = "square_avg";
      if (c->momentum > 0) names[1] = "momentum_buffer";
      if (c->centered) names[2] = "grad_avg";
  }
}

/* ---- kernels ------------------------------------------------------------------- */
/* The scalars of one update, folded from the config and the step. */
typedef struct {
  float lr, wd, mom, b1, c1, b2, c2, eps, step_size, dv, decay, alpha, calpha, lrp, l1, l2;
  bool nesterov, centered, sqrt_power;
} kparams;

static void fold(mtl_optim_kind k, const mtl_optim_config *c, int64_t step, bool sparse, kparams *p) {
  memset(p, 0, sizeof *p);
  p->lr = (float)c->lr;
  p->wd = (float)c->weight_decay;
  p->mom = (float)c->momentum;
  p->nesterov = c->nesterov;
  p->eps = (float)c->eps;
  p->decay = 1.0f;
  switch (k) {
    case MTL_OPTIM_ADAM:
    case MTL_OPTIM_ADAMW: {
      double bc1 = 1 - pow(c->beta1, (double)step), bc2 = 1 - pow(c->beta2, (double)step);
      p->b1 = (float)c->beta1;
      p->c1 = (float)(1 - c->beta1);
      p->b2 = (float)c->beta2;
      p->c2 = (float)(1 - c->beta2);
      /* torch.optim.Adam: lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps);
       * SparseAdam (SPEC.md 3.3): lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps) */
      p->step_size = (float)(sparse ? c->lr * sqrt(bc2) / bc1 : c->lr / bc1);
      p->dv = sparse ? 1.0f : (float)sqrt(bc2);
      if (k == MTL_OPTIM_ADAMW) {
        p->decay = (float)(1 - c->lr * c->weight_decay);
        p->wd = 0.0f;
      }
      break;
    }
    case MTL_OPTIM_ADAGRAD:
      p->step_size = (float)(c->lr / (1 + (double)(step - 1) * c->lr_decay));
      break;
    case MTL_OPTIM_RMSPROP:
      p->alpha = (float)c->alpha;
      p->calpha = (float)(1 - c->alpha);
      p->centered = c->centered;
      break;
    case MTL_OPTIM_FTRL:
      p->lrp = (float)-c->lr_power;
      p->sqrt_power = c->lr_power == -0.5;
      p->l1 = (float)c->l1;
      p->l2 = (float)c->l2;
      break;
    default:
      break;
  }
}

static void sgd_kernel(float *restrict w, const float *restrict g, float *restrict buf, int64_t n,
                       const kparams *k) {
  const float lr = k->lr, wd = k->wd, mom = k->mom;
  if (!buf) {
    for (int64_t i = 0; i < n; i++) w[i] -= lr * (g[i] + wd * w[i]);
  } else if (k->nesterov) {
    for (int64_t i = 0; i < n; i++) {
      float d = g[i] + wd * w[i], b = mom * buf[i] + d;
      buf[i] = b;
      w[i] -= lr * (d + mom * b);
    }
  } else {
    for (int64_t i = 0; i < n; i++) {
      float b = mom * buf[i] + (g[i] + wd * w[i]);
      buf[i] = b;
      w[i] -= lr * b;
    }
  }
}

static void adam_kernel(float *restrict w, const float *restrict g, float *restrict m, float *restrict v,
                        int64_t n, const kparams *k) {
  const float wd = k->wd, decay = k->decay, b1 = k->b1, c1 = k->c1, b2 = k->b2, c2 = k->c2;
  const float ss = k->step_size, dv = k->dv, eps = k->eps;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] + wd * w[i];
    float mi = b1 * m[i] + c1 * gi, vi = b2 * v[i] + c2 * (gi * gi);
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] * decay - ss * (mi / (sqrtf(vi) / dv + eps));
  }
}

static void adagrad_kernel(float *restrict w, const float *restrict g, float *restrict s, int64_t n,
                           const kparams *k) {
  const float wd = k->wd, clr = k->step_size, eps = k->eps;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] + wd * w[i], si = s[i] + gi * gi;
    s[i] = si;
    w[i] -= clr * (gi / (sqrtf(si) + eps));
  }
}

static void rmsprop_kernel(float *restrict w, const float *restrict g, float *restrict sq,
                           float *restrict buf, float *restrict ga, int64_t n, const kparams *k) {
  const float wd = k->wd, a = k->alpha, ca = k->calpha, eps = k->eps, lr = k->lr, mom = k->mom;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i] + wd * w[i], s = a * sq[i] + ca * (gi * gi), avg;
    sq[i] = s;
    if (ga) {
      float gai = a * ga[i] + ca * gi;
      ga[i] = gai;
      avg = sqrtf(s - gai * gai) + eps;
    } else {
      avg = sqrtf(s) + eps;
    }
    if (buf) {
      float b = mom * buf[i] + gi / avg;
      buf[i] = b;
      w[i] -= lr * b;
    } else {
      w[i] -= lr * (gi / avg);
    }
  }
}

/* FTRL-Proximal (McMahan et al. 2013), as TensorFlow's ApplyFtrl. */
static void ftrl_kernel(float *restrict w, const float *restrict g, float *restrict acc, float *restrict z,
                        int64_t n, const kparams *k) {
  const float lr = k->lr, p = k->lrp, l1 = k->l1, l2 = k->l2;
  for (int64_t i = 0; i < n; i++) {
    float gi = g[i], a_new = acc[i] + gi * gi;
    float pn = k->sqrt_power ? sqrtf(a_new) : powf(a_new, p);
    float po = k->sqrt_power ? sqrtf(acc[i]) : powf(acc[i], p);
    float zi = z[i] + gi - (pn - po) / lr * w[i];
    z[i] = zi;
    acc[i] = a_new;
    w[i] = fabsf(zi) > l1 ? (copysignf(l1, zi) - zi) / (pn / lr + 2 * l2) : 0.0f;
  }
}

/* Runs kind's kernel over n floats; s = state pointers (NULL when unused). */
static void run_kernel(mtl_optim_kind kind, float *w, const float *g, float *const *s, int64_t n,
                       const kparams *k) {
  switch (kind) {
    case MTL_OPTIM_SGD: sgd_kernel(w, g, s[0], n, k); break;
    case MTL_OPTIM_ADAM:
    case MTL_OPTIM_ADAMW: adam_kernel(w, g, s[0], s[1], n, k); break;
    case MTL_OPTIM_ADAGRAD: adagrad_kernel(w, g, s[0], n, k); break;
    case MTL_OPTIM_FTRL: ftrl_kernel(w, g, s[0], s[1], n, k); break;
    default: rmsprop_kernel(w, g, s[0], s[1], s[2], n, k); break;
  }
}

static int check_lr(mtl_optim_kind kind, const mtl_optim_config *c) {
  if (kind == MTL_OPTIM_FTRL && !(c->lr > 0))
    return mtl_error("mtl.optim.ftrl: lr must be > 0, got %g", c->lr);
  return 0;
}

int mtl_optim_dense_update(mtl_optim_kind kind, const mtl_optim_config *c, mtl_tensor *param,
                           const mtl_tensor *grad, mtl_tensor *const *state, int64_t step) {
  const char *name = mtl_optim_kind_name(kind);
  if (grad->dtype != MTL_F32 || grad->numel != param->numel || !mtl_tensor_is_contiguous(grad) ||
      !mtl_tensor_is_contiguous(param)) {
    char a[64], b[64];
    return mtl_error("mtl.optim.%s: expected a contiguous float32 parameter and gradient of the same size, "
                     "got %s and %s %s", name, mtl_shape_str(param, a, sizeof a),
                     mtl_dtype_name(grad->dtype), mtl_shape_str(grad, b, sizeof b));
  }
  if (check_lr(kind, c) < 0) return -1;
  kparams k;
  fold(kind, c, step, false, &k);
  float *s[MTL_OPTIM_MAX_STATE];
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) s[i] = state[i] ? mtl_f32(state[i]) : NULL;
  run_kernel(kind, mtl_f32(param), mtl_f32(grad), s, param->numel, &k);
  return 0;
}

/* The lazy update of the coalesced rows [begin, end): a row's weights and
 * state are one block of row_stride floats (embedding.h), prefetched a few
 * rows ahead. Rows are unique, so parts of the range can run in parallel. */
typedef struct {
  mtl_optim_kind kind;
  const kparams *k;
  const mtl_embedding *t;
} sparse_job;

static void sparse_update_rows(void *ctx, int64_t begin, int64_t end) {
  const sparse_job *j = ctx;
  const mtl_embedding *t = j->t;
  int64_t dim = t->cfg.dim, stride = t->row_stride;
  const int64_t *rows = t->g_rows;
  float *w = mtl_f32(t->weight), *base[MTL_OPTIM_MAX_STATE];
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) base[i] = t->slot[i] ? mtl_f32(t->slot[i]) : NULL;
  for (int64_t e = begin; e < end + MTL_PREFETCH_UPDATE; e++) {
    if (e < end) mtl_prefetch_floats(w + rows[e] * stride, stride, 1);
    int64_t u = e - MTL_PREFETCH_UPDATE; /* the row updated now */
    if (u < begin) continue;
    int64_t off = rows[u] * stride;
    float *s[MTL_OPTIM_MAX_STATE];
    for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) s[i] = base[i] ? base[i] + off : NULL;
    run_kernel(j->kind, w + off, t->g_vals + u * dim, s, dim, j->k);
  }
}

int mtl_optim_sparse_update(mtl_optim_kind kind, const mtl_optim_config *c, mtl_embedding *t, int64_t step) {
  if (t->g_nnz == 0) return 0;
  if (check_lr(kind, c) < 0 || mtl_embedding_grad_coalesce(t) < 0) return -1;
  kparams k;
  fold(kind, c, step, true, &k);
  sparse_job j = {kind, &k, t};
  int64_t grain = mtl_embedding_is_big(t) ? MTL_EMB_PAR_ROWS_BIG : MTL_EMB_PAR_ROWS_SMALL;
  mtl_parallel_for(t->g_nnz, grain, sparse_update_rows, &j);
  return 0;
}

/* ---- the optimizer ----------------------------------------------------------------- */
mtl_optimizer *mtl_optimizer_new(mtl_optim_kind kind, int ngroups, const mtl_optim_config *groups) {
  char fname[64];
  snprintf(fname, sizeof fname, "mtl.optim.%s", mtl_optim_kind_name(kind));
  if (kind < 0 || kind >= MTL_OPTIM__COUNT) {
    mtl_error("mtl.optim: unknown optimizer kind %d", (int)kind);
    return NULL;
  }
  if (ngroups < 1) {
    mtl_error("%s: expected at least one parameter group", fname);
    return NULL;
  }
  for (int g = 0; g < ngroups; g++)
    if (mtl_optim_check(kind, &groups[g], fname) < 0) return NULL;
  mtl_optimizer *o = calloc(1, sizeof *o);
  if (o) o->groups = malloc((size_t)ngroups * sizeof *o->groups);
  if (!o || !o->groups) {
    free(o);
    mtl_error("%s: out of memory", fname);
    return NULL;
  }
  o->kind = kind;
  o->ngroups = ngroups;
  memcpy(o->groups, groups, (size_t)ngroups * sizeof *groups);
  return o;
}

void mtl_optimizer_free(mtl_optimizer *o) {
  if (!o) return;
  for (int i = 0; i < o->nparams; i++) {
    mtl_optim_param *p = &o->params[i];
    mtl_tensor_release(p->param);
    for (int s = 0; s < MTL_OPTIM_MAX_STATE; s++) mtl_tensor_release(p->state[s]);
    if (p->table) {
      mtl_embedding_drop_slots(p->table, o);
      mtl_embedding_release(p->table);
    }
  }
  free(o->params);
  free(o->groups);
  free(o);
}

static mtl_optim_param *new_param(mtl_optimizer *o, int group, const void *what) {
  const char *name = mtl_optim_kind_name(o->kind);
  if (group < 0 || group >= o->ngroups) {
    mtl_error("mtl.optim.%s: group %d out of range", name, group);
    return NULL;
  }
  for (int i = 0; i < o->nparams; i++)
    if ((const void *)o->params[i].param == what || (const void *)o->params[i].table == what) {
      mtl_error("mtl.optim.%s: parameter %d appears twice", name, o->nparams + 1);
      return NULL;
    }
  if (o->nparams == o->cap) {
    int cap = o->cap ? 2 * o->cap : 8;
    mtl_optim_param *p = realloc(o->params, (size_t)cap * sizeof *p);
    if (!p) {
      mtl_error("mtl.optim.%s: out of memory", name);
      return NULL;
    }
    o->params = p;
    o->cap = cap;
  }
  mtl_optim_param *p = &o->params[o->nparams];
  memset(p, 0, sizeof *p);
  p->group = group;
  return p;
}

int mtl_optimizer_add_tensor(mtl_optimizer *o, int group, mtl_tensor *t) {
  if (t->dtype != MTL_F32 || !mtl_tensor_is_contiguous(t)) {
    char s[64];
    return mtl_error("mtl.optim.%s: parameter %d must be a contiguous float32 tensor, got %s %s%s",
                     mtl_optim_kind_name(o->kind), o->nparams + 1, mtl_dtype_name(t->dtype),
                     mtl_shape_str(t, s, sizeof s), mtl_tensor_is_contiguous(t) ? "" : " (not contiguous)");
  }
  mtl_optim_param *p = new_param(o, group, t);
  if (!p) return -1;
  mtl_tensor_retain(t);
  p->param = t;
  o->nparams++;
  return 0;
}

int mtl_optimizer_add_table(mtl_optimizer *o, int group, mtl_embedding *t) {
  mtl_optim_param *p = new_param(o, group, t);
  if (!p) return -1;
  const char *names[MTL_OPTIM_MAX_STATE];
  float init[MTL_OPTIM_MAX_STATE];
  bool used[MTL_OPTIM_MAX_STATE];
  mtl_optim_state_layout(o->kind, &o->groups[group], names, init);
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) used[i] = names[i] != NULL;
  if (mtl_embedding_claim_slots(t, o, MTL_OPTIM_MAX_STATE, used, init) < 0) {
    mtl_error_prefix("mtl.optim");
    return -1;
  }
  mtl_embedding_retain(t);
  p->table = t;
  o->nparams++;
  return 0;
}

/* Allocates a dense parameter's state at its first update. */
static int ensure_state(mtl_optimizer *o, mtl_optim_param *p) {
  const char *names[MTL_OPTIM_MAX_STATE];
  float init[MTL_OPTIM_MAX_STATE];
  mtl_optim_state_layout(o->kind, &o->groups[p->group], names, init);
  for (int i = 0; i < MTL_OPTIM_MAX_STATE; i++) {
    if (!names[i] || p->state[i]) continue;
    p->state[i] = mtl_tensor_new(MTL_F32, p->param->ndim, p->param->shape);
    if (!p->state[i]) return -1;
    mtl_tensor_fill(p->state[i], init[i]);
  }
  return 0;
}

int mtl_optimizer_step(mtl_optimizer *o) {
  const char *name = mtl_optim_kind_name(o->kind);
  /* check first, so an error leaves every parameter as it was */
  for (int i = 0; i < o->nparams; i++) {
    mtl_optim_param *p = &o->params[i];
    if (p->table && p->table->slot_owner != o)
      return mtl_error("mtl.optim.%s: parameter %d (an embedding table) is now updated by another optimizer "
                       "created later; an optimizer's table state belongs to the last one created", name, i + 1);
    if (p->param && p->param->grad && ensure_state(o, p) < 0) return -1;
    if (check_lr(o->kind, &o->groups[p->group]) < 0) return -1;
  }
  o->steps++;
  for (int i = 0; i < o->nparams; i++) {
    mtl_optim_param *p = &o->params[i];
    const mtl_optim_config *c = &o->groups[p->group];
    if (p->table) {
      p->step++;
      if (mtl_optim_sparse_update(o->kind, c, p->table, p->step) < 0) return -1;
      if (mtl_embedding_tick(p->table) < 0) return -1;
    } else if (p->param->grad) {
      p->step++;
      if (mtl_optim_dense_update(o->kind, c, p->param, p->param->grad, p->state, p->step) < 0) return -1;
    }
  }
  return 0;
}

void mtl_optimizer_zero_grad(mtl_optimizer *o) {
  for (int i = 0; i < o->nparams; i++) {
    if (o->params[i].table) mtl_embedding_zero_grad(o->params[i].table);
    else mtl_tensor_zero_grad(o->params[i].param);
  }
}

/* ---- gradient norms ---------------------------------------------------------------- */
static double sqsum(const float *x, int64_t n) {
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
  return s;
}

static void scale(float *x, int64_t n, float c) {
  for (int64_t i = 0; i < n; i++) x[i] *= c;
}

double mtl_grad_sqnorm(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es) {
  double s = 0;
  for (int i = 0; i < nt; i++) {
    mtl_tensor *g = ts[i]->grad;
    if (g && g->dtype == MTL_F32 && mtl_tensor_is_contiguous(g)) s += sqsum(mtl_f32(g), g->numel);
  }
  for (int i = 0; i < ne; i++) {
    if (mtl_embedding_grad_coalesce(es[i]) < 0) return NAN; /* out of memory */
    s += sqsum(es[i]->g_vals, es[i]->g_nnz * es[i]->cfg.dim);
  }
  return s;
}

void mtl_grad_scale(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es, double coef) {
  float c = (float)coef;
  for (int i = 0; i < nt; i++) {
    mtl_tensor *g = ts[i]->grad;
    if (g && g->dtype == MTL_F32 && mtl_tensor_is_contiguous(g)) scale(mtl_f32(g), g->numel, c);
  }
  for (int i = 0; i < ne; i++) scale(es[i]->g_vals, es[i]->g_nnz * es[i]->cfg.dim, c);
}

double mtl_clip_grad_norm(int nt, mtl_tensor *const *ts, int ne, mtl_embedding *const *es, double max_norm) {
  double norm = sqrt(mtl_grad_sqnorm(nt, ts, ne, es));
  if (!isfinite(norm)) return norm;
  double coef = max_norm / (norm + 1e-6);
  if (coef < 1) mtl_grad_scale(nt, ts, ne, es, coef);
  return norm;
}
