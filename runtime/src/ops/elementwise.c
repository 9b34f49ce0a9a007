/* Elementwise ops: broadcasting binary arithmetic and pow, scalar forms, unary
 * maps (exp, log, tanh, gelu, ...), where(mask, a, b) and comparisons.
 * Each op's backward sits right after its forward; rows in ops_elementwise.def. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mtl/autograd.h"
#include "mtl/ops.h"

/* ---- broadcasting --------------------------------------------------------- */
int mtl_broadcast_shape(const char *op, const mtl_tensor *a, const mtl_tensor *b, int *ndim,
                        int64_t *shape) {
  int nd = a->ndim > b->ndim ? a->ndim : b->ndim;
  for (int i = 0; i < nd; i++) {
    int ia = a->ndim - nd + i, ib = b->ndim - nd + i;
    int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1) {
      char x[128], y[128];
      return mtl_error("%s: shapes cannot be broadcast together: %s and %s (dimension %d: %lld vs %lld)",
                       op, mtl_shape_str(a, x, sizeof x), mtl_shape_str(b, y, sizeof y), i + 1,
                       (long long)sa, (long long)sb);
    }
    shape[i] = sa == 1 ? sb : sa;
  }
  *ndim = nd;
  return 0;
}

/* Strides of t seen through the broadcast shape (0 on broadcast dims). */
static void broadcast_strides(const mtl_tensor *t, int nd, const int64_t *shape, int64_t *st) {
  for (int i = 0; i < nd; i++) {
    int it = t->ndim - nd + i;
    st[i] = (it < 0 || (t->shape[it] == 1 && shape[i] != 1)) ? 0 : t->stride[it];
  }
}

/* Walks a broadcast output shape one row (innermost dim) at a time, keeping
 * each operand's element offset (from its data pointer, mtl_f32/mtl_i64) and
 * its stride along the row. The output itself is contiguous: row r starts at
 * r * inner. A 0-dim shape is one row of one element. */
typedef struct {
  int nd, nin;
  int64_t inner, rows;
  int64_t shape[MTL_MAX_DIMS], idx[MTL_MAX_DIMS];
  int64_t st[3][MTL_MAX_DIMS];
  int64_t off[3], step[3];
} bcast_iter;

static void bcast_init(bcast_iter *it, int nd, const int64_t *shape, int nin,
                       const mtl_tensor *const *ts) {
  int64_t numel = 1;
  for (int i = 0; i < nd; i++) numel *= shape[i];
  it->nd = nd;
  it->nin = nin;
  it->inner = nd ? shape[nd - 1] : 1;
  it->rows = it->inner ? numel / it->inner : 0;
  memcpy(it->shape, shape, (size_t)nd * sizeof *shape);
  memset(it->idx, 0, sizeof it->idx);
  for (int k = 0; k < nin; k++) {
    broadcast_strides(ts[k], nd, shape, it->st[k]);
    it->off[k] = 0;
    it->step[k] = nd ? it->st[k][nd - 1] : 0;
  }
}

static void bcast_next(bcast_iter *it) {
  for (int d = it->nd - 2; d >= 0; d--) {
    if (++it->idx[d] < it->shape[d]) {
      for (int k = 0; k < it->nin; k++) it->off[k] += it->st[k][d];
      return;
    }
    for (int k = 0; k < it->nin; k++) it->off[k] -= (it->idx[d] - 1) * it->st[k][d];
    it->idx[d] = 0;
  }
}

static int check_float(const char *op, const mtl_tensor *t, const char *what) {
  if (t->dtype != MTL_F32)
    return mtl_error("%s: expected a float32 tensor for %s, got %s", op, what, mtl_dtype_name(t->dtype));
  return 0;
}

/* ---- binary arithmetic with broadcasting ---------------------------------- */
typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_POW } binop;

/* One output row o[0..inner) from x (stride ia) and y (stride ib). The common
 * stride patterns get their own loop so the compiler can vectorize them. */
#define ROW_LOOP(EXPR)                                                              \
  do {                                                                              \
    if (ia == 1 && ib == 1) {                                                       \
      for (int64_t j = 0; j < inner; j++) { float x = xa[j], y = yb[j]; o[j] = (EXPR); } \
    } else if (ia == 1 && ib == 0) {                                                \
      const float y = yb[0];                                                        \
      for (int64_t j = 0; j < inner; j++) { float x = xa[j]; o[j] = (EXPR); }       \
    } else if (ia == 0 && ib == 1) {                                                \
      const float x = xa[0];                                                        \
      for (int64_t j = 0; j < inner; j++) { float y = yb[j]; o[j] = (EXPR); }       \
    } else {                                                                        \
      for (int64_t j = 0; j < inner; j++) {                                         \
        float x = xa[j * ia], y = yb[j * ib];                                       \
        o[j] = (EXPR);                                                              \
      }                                                                             \
    }                                                                               \
  } while (0)

/* out = a (k) b with broadcasting; out is contiguous of the broadcast shape. */
static void binary_kernel(binop k, const mtl_tensor *a, const mtl_tensor *b, mtl_tensor *out) {
  int64_t n = out->numel;
  if (n == 0) return;
  const mtl_tensor *ts[2] = {a, b};
  bcast_iter it;
  bcast_init(&it, out->ndim, out->shape, 2, ts);
  int64_t inner = it.inner, rows = it.rows;
  if (a->numel == n && b->numel == n && mtl_tensor_is_contiguous(a) && mtl_tensor_is_contiguous(b)) {
    inner = n; /* same layout: one long row */
    rows = 1;
    it.step[0] = it.step[1] = 1;
  }
  const int64_t ia = it.step[0], ib = it.step[1];
  float *po = mtl_f32(out);
  const float *pa = mtl_f32(a), *pb = mtl_f32(b);
  for (int64_t row = 0; row < rows; row++) {
    float *restrict o = po + row * inner;
    const float *xa = pa + it.off[0], *yb = pb + it.off[1];
    switch (k) {
      case BIN_ADD: ROW_LOOP(x + y); break;
      case BIN_SUB: ROW_LOOP(x - y); break;
      case BIN_MUL: ROW_LOOP(x * y); break;
      case BIN_DIV: ROW_LOOP(x / y); break;
      case BIN_POW: ROW_LOOP(powf(x, y)); break;
    }
    bcast_next(&it);
  }
}

static const int binop_id[] = {MTL_OP_ADD, MTL_OP_SUB, MTL_OP_MUL, MTL_OP_DIV, MTL_OP_POW};
static const char *const binop_name[] = {"mtl.add", "mtl.sub", "mtl.mul", "mtl.div", "mtl.pow"};

static mtl_tensor *binary(binop k, mtl_tensor *a, mtl_tensor *b) {
  const char *op = binop_name[k];
  if (check_float(op, a, "the first argument") < 0 || check_float(op, b, "the second argument") < 0)
    return NULL;
  int nd = 0;
  int64_t shape[MTL_MAX_DIMS];
  if (mtl_broadcast_shape(op, a, b, &nd, shape) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, nd, shape);
  if (!out) return NULL;
  binary_kernel(k, a, b, out);
  mtl_tensor *in[2] = {a, b};
  if (mtl_needs_grad(2, in)) {
    mtl_node *n = mtl_record(binop_id[k], out, 2, in);
    if (!n) { mtl_tensor_release(out); return NULL; }
    if (k == BIN_MUL || k == BIN_DIV || k == BIN_POW) {
      mtl_node_save(n, 0, a);
      mtl_node_save(n, 1, b);
    }
    if (k == BIN_POW) { /* d/db needs the output a^b */
      mtl_tensor *y = mtl_tensor_alias(out);
      if (!y) { mtl_tensor_release(out); return NULL; }
      mtl_node_save(n, 2, y);
      mtl_tensor_release(y);
    }
  }
  return out;
}

mtl_tensor *mtl_add(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_ADD, a, b); }
mtl_tensor *mtl_sub(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_SUB, a, b); }
mtl_tensor *mtl_mul(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_MUL, a, b); }
mtl_tensor *mtl_div(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_DIV, a, b); }
mtl_tensor *mtl_pow(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_POW, a, b); }

/* Backward functions run with grad mode off (mtl_backward turns it off), so
 * they may compose ops freely. Gradients come back in the broadcast (output)
 * shape; mtl_node_accumulate sums them down to each input's shape. */
int mtl_add_backward(mtl_node *n, mtl_tensor *g) {
  if (mtl_node_wants(n, 0)) { mtl_tensor_retain(g); if (mtl_node_accumulate(n, 0, g) < 0) return -1; }
  if (mtl_node_wants(n, 1)) { mtl_tensor_retain(g); if (mtl_node_accumulate(n, 1, g) < 0) return -1; }
  return 0;
}

int mtl_sub_backward(mtl_node *n, mtl_tensor *g) {
  if (mtl_node_wants(n, 0)) { mtl_tensor_retain(g); if (mtl_node_accumulate(n, 0, g) < 0) return -1; }
  if (mtl_node_wants(n, 1) && mtl_node_accumulate(n, 1, mtl_neg(g)) < 0) return -1;
  return 0;
}

int mtl_mul_backward(mtl_node *n, mtl_tensor *g) {
  if (mtl_node_wants(n, 0) && mtl_node_accumulate(n, 0, mtl_mul(g, n->saved[1])) < 0) return -1;
  if (mtl_node_wants(n, 1) && mtl_node_accumulate(n, 1, mtl_mul(g, n->saved[0])) < 0) return -1;
  return 0;
}

/* d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 */
int mtl_div_backward(mtl_node *n, mtl_tensor *g) {
  mtl_tensor *a = n->saved[0], *b = n->saved[1];
  if (mtl_node_wants(n, 0) && mtl_node_accumulate(n, 0, mtl_div(g, b)) < 0) return -1;
  if (mtl_node_wants(n, 1)) {
    mtl_tensor *q = mtl_div(g, b);
    if (!q) return -1;
    mtl_tensor *r = mtl_div(q, b);
    mtl_tensor_release(q);
    if (!r) return -1;
    mtl_tensor *s = mtl_mul(r, a);
    mtl_tensor_release(r);
    if (!s) return -1;
    mtl_tensor *t = mtl_neg(s);
    mtl_tensor_release(s);
    if (mtl_node_accumulate(n, 1, t) < 0) return -1;
  }
  return 0;
}

/* y = a^b: dy/da = b a^(b-1) (0 where b == 0, so 0^0 has slope 0 and not
 * 0 * inf); dy/db = y log(a) (0 where a == 0, the limit for b > 0). Both are
 * computed in the output shape, walking a and b with broadcast strides. */
int mtl_pow_backward(mtl_node *n, mtl_tensor *g) {
  const mtl_tensor *a = n->saved[0], *b = n->saved[1];
  bool wa = mtl_node_wants(n, 0), wb = mtl_node_wants(n, 1);
  if (!wa && !wb) return 0;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  mtl_tensor *ga = wa ? mtl_tensor_new(MTL_F32, n->out_ndim, n->out_shape) : NULL;
  mtl_tensor *gb = wb ? mtl_tensor_new(MTL_F32, n->out_ndim, n->out_shape) : NULL;
  if ((wa && !ga) || (wb && !gb)) {
    mtl_tensor_release(ga);
    mtl_tensor_release(gb);
    mtl_tensor_release(gc);
    return -1;
  }
  const mtl_tensor *ts[2] = {a, b};
  bcast_iter it;
  bcast_init(&it, n->out_ndim, n->out_shape, 2, ts);
  const float *pa = mtl_f32(a), *pb = mtl_f32(b), *py = mtl_f32(n->saved[2]), *pg = mtl_f32(gc);
  for (int64_t row = 0; row < it.rows; row++) {
    const float *x = pa + it.off[0], *e = pb + it.off[1];
    int64_t base = row * it.inner;
    for (int64_t j = 0; j < it.inner; j++) {
      float xj = x[j * it.step[0]], ej = e[j * it.step[1]], gj = pg[base + j];
      if (ga) mtl_f32(ga)[base + j] = ej == 0.0f ? 0.0f : gj * ej * powf(xj, ej - 1.0f);
      if (gb) mtl_f32(gb)[base + j] = xj == 0.0f ? 0.0f : gj * py[base + j] * logf(xj);
    }
    bcast_next(&it);
  }
  mtl_tensor_release(gc);
  if (ga && mtl_node_accumulate(n, 0, ga) < 0) { mtl_tensor_release(gb); return -1; }
  if (gb && mtl_node_accumulate(n, 1, gb) < 0) return -1;
  return 0;
}

/* ---- unary maps ----------------------------------------------------------
 * A unary op is a forward expression in x (and the op's scalar arguments
 * arg[]) and a derivative expressed through x, the output y and arg[]. The
 * UNARY macro turns each into a tight loop over contiguous floats, so the
 * compiler sees the expression (and can vectorize it) instead of calling a
 * function pointer per element. `save` says which of x and y the derivative
 * reads; only those are kept for backward. */
enum { SAVE_X = 1, SAVE_Y = 2 };

typedef void (*unary_fwd)(const float *restrict xs, float *restrict ys, int64_t n, const double *arg);
typedef void (*unary_bwd)(const float *restrict xs, const float *restrict ys, const float *restrict gs,
                          float *restrict gi, int64_t n, const double *arg);
typedef struct {
  int id;
  const char *name;
  int save;
  unary_fwd f;
  unary_bwd df;
} unary_def;

static mtl_tensor *unary(const unary_def *u, mtl_tensor *a, const double *arg, int narg) {
  if (check_float(u->name, a, "the argument") < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!src) { mtl_tensor_release(out); return NULL; }
  u->f(mtl_f32(src), mtl_f32(out), a->numel, arg);
  if (mtl_needs_grad(1, &a)) {
    mtl_node *n = mtl_record(u->id, out, 1, &a);
    if (!n) { mtl_tensor_release(src); mtl_tensor_release(out); return NULL; }
    if (u->save & SAVE_X) mtl_node_save(n, 0, src);
    if (u->save & SAVE_Y) {
      mtl_tensor *y_alias = mtl_tensor_alias(out); /* output values, no graph link */
      if (!y_alias) { mtl_tensor_release(src); mtl_tensor_release(out); return NULL; }
      mtl_node_save(n, 1, y_alias);
      mtl_tensor_release(y_alias);
    }
    for (int i = 0; i < narg; i++) n->darg[i] = arg[i];
  }
  mtl_tensor_release(src);
  return out;
}

static int unary_backward(const unary_def *u, mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  mtl_tensor *gi = mtl_tensor_new(MTL_F32, n->out_ndim, n->out_shape);
  if (!gi) return -1;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) { mtl_tensor_release(gi); return -1; }
  const float *go = mtl_f32(gc);
  /* x or y that the derivative does not read: any valid pointer will do */
  const float *x = n->saved[0] ? mtl_f32(n->saved[0]) : go;
  const float *y = n->saved[1] ? mtl_f32(n->saved[1]) : go;
  u->df(x, y, go, mtl_f32(gi), gi->numel, n->darg);
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}

#define UNARY(ID, lname, save, fexpr, dfexpr) UNARY_NAMED(ID, lname, "mtl." #lname, save, fexpr, dfexpr)
/* opname: the name errors show (the scalar forms report the op users call) */
#define UNARY_NAMED(ID, lname, opname, save, fexpr, dfexpr)                                                     \
  static void f_##lname(const float *restrict xs, float *restrict ys, int64_t n, const double *arg) { \
    (void)arg;                                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                             \
      const float x = xs[i];                                                                      \
      ys[i] = (fexpr);                                                                            \
    }                                                                                             \
  }                                                                                               \
  static void df_##lname(const float *restrict xs, const float *restrict ys,                      \
                         const float *restrict gs, float *restrict gi, int64_t n,                 \
                         const double *arg) {                                                     \
    (void)arg;                                                                                    \
    for (int64_t i = 0; i < n; i++) {                                                             \
      const float x = xs[i], y = ys[i];                                                           \
      (void)x; (void)y;                                                                           \
      gi[i] = gs[i] * (dfexpr);                                                                   \
    }                                                                                             \
  }                                                                                               \
  static const unary_def def_##lname = {MTL_OP_##ID, opname, save, f_##lname, df_##lname}; \
  int mtl_##lname##_backward(mtl_node *n, mtl_tensor *g) { return unary_backward(&def_##lname, n, g); }

#define SQRT_2PI 2.50662827463100050242f
#define SQRT1_2 0.70710678118654752440f

/* Scalar-argument forms of arithmetic: arg[0] is the scalar. */
UNARY_NAMED(ADD_SCALAR, add_scalar, "mtl.add", 0, x + (float)arg[0], 1.0f)
UNARY_NAMED(MUL_SCALAR, mul_scalar, "mtl.mul", 0, x * (float)arg[0], (float)arg[0])
UNARY_NAMED(SUB_SCALAR, sub_scalar, "mtl.sub", 0, x - (float)arg[0], 1.0f)
UNARY_NAMED(RSUB_SCALAR, rsub_scalar, "mtl.sub", 0, (float)arg[0] - x, -1.0f)
/* x / s divides (x * (1/s) can differ in the last bit); the slope 1/s is
 * rounded once from double */
UNARY_NAMED(DIV_SCALAR, div_scalar, "mtl.div", 0, x / (float)arg[0], (float)(1.0 / arg[0]))
UNARY_NAMED(RDIV_SCALAR, rdiv_scalar, "mtl.div", SAVE_X | SAVE_Y, (float)arg[0] / x, -y / x)
UNARY(NEG, neg, 0, -x, -1.0f)
UNARY(EXP, exp, SAVE_Y, expf(x), y)
/* log(0) = -inf and log(<0) = nan, as IEEE says; never an error */
UNARY(LOG, log, SAVE_X, logf(x), 1.0f / x)
UNARY(LOG1P, log1p, SAVE_X, log1pf(x), 1.0f / (1.0f + x))
UNARY(SQRT, sqrt, SAVE_Y, sqrtf(x), 0.5f / y)
/* x^p: the slope is p x^(p-1), and 0 for p == 0 (not 0 * inf at x == 0) */
UNARY_NAMED(POW_SCALAR, pow_scalar, "mtl.pow", SAVE_X, powf(x, (float)arg[0]),
      arg[0] == 0 ? 0.0f : (float)arg[0] * powf(x, (float)arg[0] - 1.0f))
UNARY(ABS, abs, SAVE_X, fabsf(x), (float)(x > 0.0f) - (float)(x < 0.0f))
/* arg = {lo, hi}. Each step has the operand order of SSE max/min, so it
 * compiles to maxss/minss (no branches) and a nan x stays nan. The gradient
 * passes where lo <= x <= hi (bounds included, as in PyTorch). */
static inline float clamp_f(float x, float lo, float hi) {
  float t = lo > x ? lo : x;
  return hi < t ? hi : t;
}
UNARY(CLAMP, clamp, SAVE_X, clamp_f(x, (float)arg[0], (float)arg[1]),
      (float)(x >= (float)arg[0]) * (float)(x <= (float)arg[1]))
/* derivatives written as (float)(cond) so the loops vectorize (a ?: does not) */
UNARY(RELU, relu, SAVE_Y, 0.0f > x ? 0.0f : x, (float)(y > 0.0f)) /* maxss order: nan stays nan */
UNARY(LEAKY_RELU, leaky_relu, SAVE_X, x * ((float)arg[0] + (1.0f - (float)arg[0]) * (float)(x > 0.0f)),
      (float)arg[0] + (1.0f - (float)arg[0]) * (float)(x > 0.0f))
/* sigmoid, stable for large |x|: one exp, of a non-positive number, and a
 * numerator of 1 (x >= 0) or e (x < 0). The choice is made with a bit mask:
 * any form the compiler can turn into a branch is mispredicted on mixed
 * signs and made the op twice as slow. */
static inline float sigmoid_f(float x) {
  float e = expf(-fabsf(x)), one = 1.0f, num;
  uint32_t be, b1, mask = (uint32_t)0 - (uint32_t)(x >= 0); /* all ones when x >= 0 */
  memcpy(&be, &e, 4);
  memcpy(&b1, &one, 4);
  be = (b1 & mask) | (be & ~mask);
  memcpy(&num, &be, 4);
  return num / (1.0f + e);
}
UNARY(SIGMOID, sigmoid, SAVE_Y, sigmoid_f(x), y * (1.0f - y))
UNARY(TANH, tanh, SAVE_Y, tanhf(x), 1.0f - y * y)
/* gelu(x) = x Phi(x) with the exact normal cdf; slope Phi(x) + x phi(x) */
UNARY(GELU, gelu, SAVE_X, 0.5f * x * (1.0f + erff(x * SQRT1_2)),
      0.5f * (1.0f + erff(x * SQRT1_2)) + x * expf(-0.5f * x * x) / SQRT_2PI)
/* gelu's tanh form, 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) (EasyRec's gelu) */
#define GELU_C 0.7978845608028654f
static inline float gelu_tanh_f(float x) { return 0.5f * x * (1.0f + tanhf(GELU_C * (x + 0.044715f * x * x * x))); }
static inline float gelu_tanh_d(float x) {
  float t = tanhf(GELU_C * (x + 0.044715f * x * x * x));
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * GELU_C * (1.0f + 3.0f * 0.044715f * x * x);
}
UNARY(GELU_TANH, gelu_tanh, SAVE_X, gelu_tanh_f(x), gelu_tanh_d(x))
/* elu (alpha 1) and selu (Klambauer et al.'s alpha and scale); expm1 on the negative side only */
#define SELU_ALPHA 1.6732632423543772f
#define SELU_SCALE 1.0507009873554805f
UNARY(ELU, elu, SAVE_X, x > 0.0f ? x : expm1f(x), x > 0.0f ? 1.0f : expf(x))
UNARY(SELU, selu, SAVE_X, SELU_SCALE * (x > 0.0f ? x : SELU_ALPHA * expm1f(x)),
      SELU_SCALE * (x > 0.0f ? 1.0f : SELU_ALPHA * expf(x)))
/* swish (silu) x sigmoid(x); slope s + x s (1 - s) */
static inline float swish_d(float x) {
  float s = sigmoid_f(x);
  return s + x * s * (1.0f - s);
}
UNARY(SWISH, swish, SAVE_X, x * sigmoid_f(x), swish_d(x))
/* softplus(x) = log(1 + e^x), stable for large |x|; its slope is sigmoid(x) */
UNARY(SOFTPLUS, softplus, SAVE_X, fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))), 1.0f / (1.0f + expf(-x)))
/* softsign x / (1 + |x|); slope 1 / (1 + |x|)^2 */
UNARY(SOFTSIGN, softsign, SAVE_X, x / (1.0f + fabsf(x)), 1.0f / ((1.0f + fabsf(x)) * (1.0f + fabsf(x))))

mtl_tensor *mtl_add_scalar(mtl_tensor *a, double s) { return unary(&def_add_scalar, a, &s, 1); }
mtl_tensor *mtl_mul_scalar(mtl_tensor *a, double s) { return unary(&def_mul_scalar, a, &s, 1); }
mtl_tensor *mtl_sub_scalar(mtl_tensor *a, double s) { return unary(&def_sub_scalar, a, &s, 1); }
mtl_tensor *mtl_rsub_scalar(mtl_tensor *a, double s) { return unary(&def_rsub_scalar, a, &s, 1); }
mtl_tensor *mtl_div_scalar(mtl_tensor *a, double s) { return unary(&def_div_scalar, a, &s, 1); }
mtl_tensor *mtl_rdiv_scalar(mtl_tensor *a, double s) { return unary(&def_rdiv_scalar, a, &s, 1); }
mtl_tensor *mtl_neg(mtl_tensor *a) { return unary(&def_neg, a, NULL, 0); }
mtl_tensor *mtl_exp(mtl_tensor *a) { return unary(&def_exp, a, NULL, 0); }
mtl_tensor *mtl_log(mtl_tensor *a) { return unary(&def_log, a, NULL, 0); }
mtl_tensor *mtl_log1p(mtl_tensor *a) { return unary(&def_log1p, a, NULL, 0); }
mtl_tensor *mtl_sqrt(mtl_tensor *a) { return unary(&def_sqrt, a, NULL, 0); }
mtl_tensor *mtl_pow_scalar(mtl_tensor *a, double p) { return unary(&def_pow_scalar, a, &p, 1); }
mtl_tensor *mtl_abs(mtl_tensor *a) { return unary(&def_abs, a, NULL, 0); }
mtl_tensor *mtl_relu(mtl_tensor *a) { return unary(&def_relu, a, NULL, 0); }
mtl_tensor *mtl_gelu_tanh(mtl_tensor *a) { return unary(&def_gelu_tanh, a, NULL, 0); }
mtl_tensor *mtl_elu(mtl_tensor *a) { return unary(&def_elu, a, NULL, 0); }
mtl_tensor *mtl_selu(mtl_tensor *a) { return unary(&def_selu, a, NULL, 0); }
mtl_tensor *mtl_swish(mtl_tensor *a) { return unary(&def_swish, a, NULL, 0); }
mtl_tensor *mtl_softplus(mtl_tensor *a) { return unary(&def_softplus, a, NULL, 0); }
mtl_tensor *mtl_softsign(mtl_tensor *a) { return unary(&def_softsign, a, NULL, 0); }
mtl_tensor *mtl_sigmoid(mtl_tensor *a) { return unary(&def_sigmoid, a, NULL, 0); }
mtl_tensor *mtl_tanh(mtl_tensor *a) { return unary(&def_tanh, a, NULL, 0); }
mtl_tensor *mtl_gelu(mtl_tensor *a) { return unary(&def_gelu, a, NULL, 0); }

mtl_tensor *mtl_clamp(mtl_tensor *a, double lo, double hi) {
  if (isnan(lo) || isnan(hi))
    return (void)mtl_error("mtl.clamp: bounds must not be nan"), NULL;
  if (lo > hi)
    return (void)mtl_error("mtl.clamp: lower bound %g is greater than upper bound %g", lo, hi), NULL;
  double arg[2] = {lo, hi};
  return unary(&def_clamp, a, arg, 2);
}

mtl_tensor *mtl_leaky_relu(mtl_tensor *a, double slope) {
  if (!isfinite(slope))
    return (void)mtl_error("mtl.leaky_relu: slope must be a finite number, got %g", slope), NULL;
  return unary(&def_leaky_relu, a, &slope, 1);
}

/* ---- where(mask, a, b) ----------------------------------------------------- */
/* Broadcast shape of up to three tensors; the message lists all of them. */
static int broadcast3(const char *op, const char *const *names, int nt, const mtl_tensor *const *ts,
                      int *ndim, int64_t *shape) {
  int nd = 0;
  for (int k = 0; k < nt; k++)
    if (ts[k]->ndim > nd) nd = ts[k]->ndim;
  for (int i = 0; i < nd; i++) {
    int64_t s = 1;
    for (int k = 0; k < nt; k++) {
      int ik = ts[k]->ndim - nd + i;
      int64_t sk = ik >= 0 ? ts[k]->shape[ik] : 1;
      if (sk == 1) continue;
      if (s != 1 && s != sk) {
        char msg[512];
        size_t len = 0;
        for (int m = 0; m < nt && len < sizeof msg; m++) {
          char b[128];
          len += (size_t)snprintf(msg + len, sizeof msg - len, "%s%s %s", m ? ", " : "", names[m],
                                  mtl_shape_str(ts[m], b, sizeof b));
        }
        return mtl_error("%s: shapes cannot be broadcast together: %s", op, msg);
      }
      s = sk;
    }
    shape[i] = s;
  }
  *ndim = nd;
  return 0;
}

/* Reads element j (with stride s) of a row of a mask of either dtype as "true". */
static inline bool mask_at(const mtl_tensor *m, int64_t off, int64_t j, int64_t s) {
  return m->dtype == MTL_F32 ? mtl_f32(m)[off + j * s] != 0.0f : mtl_i64(m)[off + j * s] != 0;
}

mtl_tensor *mtl_where(mtl_tensor *mask, mtl_tensor *a, mtl_tensor *b) {
  const char *op = "mtl.where";
  if (check_float(op, a, "a") < 0 || check_float(op, b, "b") < 0) return NULL;
  static const char *const names[3] = {"mask", "a", "b"};
  const mtl_tensor *ts[3] = {mask, a, b};
  int nd = 0;
  int64_t shape[MTL_MAX_DIMS];
  if (broadcast3(op, names, 3, ts, &nd, shape) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, nd, shape);
  if (!out) return NULL;
  bcast_iter it;
  bcast_init(&it, nd, shape, 3, ts);
  float *po = mtl_f32(out);
  const float *pa = mtl_f32(a), *pb = mtl_f32(b);
  for (int64_t row = 0; row < it.rows; row++) {
    float *o = po + row * it.inner;
    const float *x = pa + it.off[1], *y = pb + it.off[2];
    for (int64_t j = 0; j < it.inner; j++)
      o[j] = mask_at(mask, it.off[0], j, it.step[0]) ? x[j * it.step[1]] : y[j * it.step[2]];
    bcast_next(&it);
  }
  mtl_tensor *in[2] = {a, b};
  if (mtl_needs_grad(2, in)) {
    mtl_node *n = mtl_record(MTL_OP_WHERE, out, 2, in);
    if (!n) { mtl_tensor_release(out); return NULL; }
    mtl_node_save(n, 0, mask);
  }
  return out;
}

/* The gradient goes to a where the mask is set and to b elsewhere. */
int mtl_where_backward(mtl_node *n, mtl_tensor *g) {
  const mtl_tensor *mask = n->saved[0];
  if (!mtl_node_wants(n, 0) && !mtl_node_wants(n, 1)) return 0;
  mtl_tensor *gc = mtl_tensor_contiguous_data(g);
  if (!gc) return -1;
  const float *pg = mtl_f32(gc);
  for (int which = 0; which < 2; which++) {
    if (!mtl_node_wants(n, which)) continue;
    mtl_tensor *gi = mtl_tensor_new(MTL_F32, n->out_ndim, n->out_shape);
    if (!gi) { mtl_tensor_release(gc); return -1; }
    bcast_iter it;
    bcast_init(&it, n->out_ndim, n->out_shape, 1, &mask);
    float *pi = mtl_f32(gi);
    bool take = which == 0; /* a takes the gradient where the mask is true */
    for (int64_t row = 0; row < it.rows; row++) {
      int64_t base = row * it.inner;
      for (int64_t j = 0; j < it.inner; j++)
        pi[base + j] = mask_at(mask, it.off[0], j, it.step[0]) == take ? pg[base + j] : 0.0f;
      bcast_next(&it);
    }
    if (mtl_node_accumulate(n, which, gi) < 0) { mtl_tensor_release(gc); return -1; }
  }
  mtl_tensor_release(gc);
  return 0;
}

/* ---- comparisons (no gradient) ------------------------------------------------ */
typedef enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE } cmpop;
static const char *const cmp_names[] = {"eq", "ne", "lt", "le", "gt", "ge"};

static int parse_cmp(const char *op) {
  for (int i = 0; i < 6; i++)
    if (op && !strcmp(op, cmp_names[i])) return i;
  return mtl_error("mtl.compare: unknown comparison '%s' (expected eq, ne, lt, le, gt or ge)",
                   op ? op : "(null)");
}

/* o[j] = X(j) <cmp> Y(j) as 0/1, one loop per comparison. */
#define CMP_ROW(X, Y)                                                          \
  switch (c) {                                                                 \
    case CMP_EQ: for (int64_t j = 0; j < inner; j++) o[j] = (X) == (Y); break; \
    case CMP_NE: for (int64_t j = 0; j < inner; j++) o[j] = (X) != (Y); break; \
    case CMP_LT: for (int64_t j = 0; j < inner; j++) o[j] = (X) < (Y); break;  \
    case CMP_LE: for (int64_t j = 0; j < inner; j++) o[j] = (X) <= (Y); break; \
    case CMP_GT: for (int64_t j = 0; j < inner; j++) o[j] = (X) > (Y); break;  \
    case CMP_GE: for (int64_t j = 0; j < inner; j++) o[j] = (X) >= (Y); break; \
  }

static inline double as_double(const mtl_tensor *t, int64_t k) {
  return t->dtype == MTL_F32 ? (double)mtl_f32(t)[k] : (double)mtl_i64(t)[k];
}

/* Float tensors compare as floats, int64 ones as int64 (exact for ids), a
 * mixed pair in double. */
mtl_tensor *mtl_compare(const char *op, mtl_tensor *a, mtl_tensor *b) {
  int c = parse_cmp(op);
  if (c < 0) return NULL;
  char name[16];
  snprintf(name, sizeof name, "mtl.%s", cmp_names[c]);
  int nd = 0;
  int64_t shape[MTL_MAX_DIMS];
  if (mtl_broadcast_shape(name, a, b, &nd, shape) < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, nd, shape);
  if (!out) return NULL;
  const mtl_tensor *ts[2] = {a, b};
  bcast_iter it;
  bcast_init(&it, nd, shape, 2, ts);
  const int64_t inner = it.inner, sa = it.step[0], sb = it.step[1];
  for (int64_t row = 0; row < it.rows; row++) {
    float *o = mtl_f32(out) + row * inner;
    int64_t oa = it.off[0], ob = it.off[1];
    if (a->dtype == MTL_F32 && b->dtype == MTL_F32) {
      const float *x = mtl_f32(a) + oa, *y = mtl_f32(b) + ob;
      CMP_ROW(x[j * sa], y[j * sb])
    } else if (a->dtype == MTL_I64 && b->dtype == MTL_I64) {
      const int64_t *x = mtl_i64(a) + oa, *y = mtl_i64(b) + ob;
      CMP_ROW(x[j * sa], y[j * sb])
    } else {
      CMP_ROW(as_double(a, oa + j * sa), as_double(b, ob + j * sb))
    }
    bcast_next(&it);
  }
  return out;
}

/* a <cmp> s. A float tensor compares with s rounded to float (so t == 0.1
 * finds the float 0.1); an int64 one compares exactly, as int64 when s is an
 * integer in range and in double otherwise. */
mtl_tensor *mtl_compare_scalar(const char *op, mtl_tensor *a, double s) {
  int c = parse_cmp(op);
  if (c < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!src) { mtl_tensor_release(out); return NULL; }
  const int64_t inner = a->numel;
  float *o = mtl_f32(out);
  if (a->dtype == MTL_F32) {
    const float *x = mtl_f32(src), y = (float)s;
    CMP_ROW(x[j], y)
  } else if (s == floor(s) && s >= -9.2e18 && s <= 9.2e18) {
    const int64_t *x = mtl_i64(src), y = (int64_t)s;
    CMP_ROW(x[j], y)
  } else {
    const int64_t *x = mtl_i64(src);
    CMP_ROW((double)x[j], s)
  }
  mtl_tensor_release(src);
  return out;
}

/* ---- dtype conversion ------------------------------------------------------ */
mtl_tensor *mtl_to_dtype(mtl_tensor *a, mtl_dtype d) {
  mtl_tensor *out = mtl_tensor_new(d, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor_copy_into(out, a);
  if (d == MTL_F32 && a->dtype == MTL_F32 && mtl_needs_grad(1, &a) &&
      !mtl_record(MTL_OP_TO_FLOAT, out, 1, &a)) {
    mtl_tensor_release(out);
    return NULL;
  }
  return out;
}

int mtl_to_float_backward(mtl_node *n, mtl_tensor *g) {
  if (!mtl_node_wants(n, 0)) return 0;
  mtl_tensor_retain(g);
  return mtl_node_accumulate(n, 0, g);
}
