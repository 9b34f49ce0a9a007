/* Elementwise ops: broadcasting binary arithmetic, scalar forms, unary maps.
 * Each op's backward sits right after its forward; rows in ops_elementwise.def. */
#include <math.h>
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

static int check_float(const char *op, const mtl_tensor *t, const char *what) {
  if (t->dtype != MTL_F32)
    return mtl_error("%s: expected a float32 tensor for %s, got %s", op, what, mtl_dtype_name(t->dtype));
  return 0;
}

typedef enum { BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV } binop;

static inline float apply(binop k, float x, float y) {
  switch (k) {
    case BIN_ADD: return x + y;
    case BIN_SUB: return x - y;
    case BIN_MUL: return x * y;
    default: return x / y;
  }
}

/* out = a (k) b with broadcasting; out is contiguous of the broadcast shape.
 * The innermost dim runs as a tight loop with its two strides. */
static void binary_kernel(binop k, const mtl_tensor *a, const mtl_tensor *b, mtl_tensor *out) {
  int nd = out->ndim;
  float *po = mtl_f32(out);
  const float *pa = mtl_f32(a), *pb = mtl_f32(b);
  int64_t n = out->numel;
  if (n == 0) return;
  if (a->numel == n && b->numel == n && mtl_tensor_is_contiguous(a) && mtl_tensor_is_contiguous(b)) {
    switch (k) {
      case BIN_ADD: for (int64_t i = 0; i < n; i++) po[i] = pa[i] + pb[i]; break;
      case BIN_SUB: for (int64_t i = 0; i < n; i++) po[i] = pa[i] - pb[i]; break;
      case BIN_MUL: for (int64_t i = 0; i < n; i++) po[i] = pa[i] * pb[i]; break;
      case BIN_DIV: for (int64_t i = 0; i < n; i++) po[i] = pa[i] / pb[i]; break;
    }
    return;
  }
  int64_t sa[MTL_MAX_DIMS], sb[MTL_MAX_DIMS];
  broadcast_strides(a, nd, out->shape, sa);
  broadcast_strides(b, nd, out->shape, sb);
  if (nd == 0) { po[0] = apply(k, pa[0], pb[0]); return; }
  int64_t inner = out->shape[nd - 1], ia = sa[nd - 1], ib = sb[nd - 1];
  int64_t idx[MTL_MAX_DIMS] = {0}, oa = 0, ob = 0;
  for (int64_t row = 0; row < n / inner; row++) {
    float *o = po + row * inner;
    const float *x = pa + oa, *y = pb + ob;
    if (ia == 1 && ib == 1) {
      switch (k) {
        case BIN_ADD: for (int64_t j = 0; j < inner; j++) o[j] = x[j] + y[j]; break;
        case BIN_SUB: for (int64_t j = 0; j < inner; j++) o[j] = x[j] - y[j]; break;
        case BIN_MUL: for (int64_t j = 0; j < inner; j++) o[j] = x[j] * y[j]; break;
        case BIN_DIV: for (int64_t j = 0; j < inner; j++) o[j] = x[j] / y[j]; break;
      }
    } else {
      for (int64_t j = 0; j < inner; j++) o[j] = apply(k, x[j * ia], y[j * ib]);
    }
    for (int d = nd - 2; d >= 0; d--) {
      if (++idx[d] < out->shape[d]) { oa += sa[d]; ob += sb[d]; break; }
      oa -= (idx[d] - 1) * sa[d];
      ob -= (idx[d] - 1) * sb[d];
      idx[d] = 0;
    }
  }
}

static const int binop_id[] = {MTL_OP_ADD, MTL_OP_SUB, MTL_OP_MUL, MTL_OP_DIV};
static const char *const binop_name[] = {"mtl.add", "mtl.sub", "mtl.mul", "mtl.div"};

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
    if (k == BIN_MUL || k == BIN_DIV) {
      mtl_node_save(n, 0, a);
      mtl_node_save(n, 1, b);
    }
  }
  return out;
}

mtl_tensor *mtl_add(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_ADD, a, b); }
mtl_tensor *mtl_sub(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_SUB, a, b); }
mtl_tensor *mtl_mul(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_MUL, a, b); }
mtl_tensor *mtl_div(mtl_tensor *a, mtl_tensor *b) { return binary(BIN_DIV, a, b); }

/* Gradient helpers: run ops with grad mode off (backward turns it off). */
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

/* ---- unary maps ----------------------------------------------------------
 * A unary op is a forward function f(x) and the derivative expressed through
 * x, the output y and the op's scalar arguments. One kernel runs them all. */
typedef struct {
  int id;
  const char *name;
  float (*f)(float x, const double *arg);
  float (*df)(float x, float y, const double *arg);
} unary_def;

static mtl_tensor *unary(const unary_def *u, mtl_tensor *a, const double *arg, int narg) {
  if (check_float(u->name, a, "the argument") < 0) return NULL;
  mtl_tensor *out = mtl_tensor_new(MTL_F32, a->ndim, a->shape);
  if (!out) return NULL;
  mtl_tensor *src = mtl_tensor_contiguous_data(a);
  if (!src) { mtl_tensor_release(out); return NULL; }
  const float *x = mtl_f32(src);
  float *y = mtl_f32(out);
  for (int64_t i = 0; i < a->numel; i++) y[i] = u->f(x[i], arg);
  if (mtl_needs_grad(1, &a)) {
    mtl_node *n = mtl_record(u->id, out, 1, &a);
    if (!n) { mtl_tensor_release(src); mtl_tensor_release(out); return NULL; }
    mtl_node_save(n, 0, src);
    mtl_tensor *y_alias = mtl_tensor_alias(out); /* output values, no graph link */
    if (!y_alias) { mtl_tensor_release(src); mtl_tensor_release(out); return NULL; }
    mtl_node_save(n, 1, y_alias);
    mtl_tensor_release(y_alias);
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
  const float *x = mtl_f32(n->saved[0]), *y = mtl_f32(n->saved[1]), *go = mtl_f32(gc);
  float *pi = mtl_f32(gi);
  for (int64_t i = 0; i < gi->numel; i++) pi[i] = go[i] * u->df(x[i], y[i], n->darg);
  mtl_tensor_release(gc);
  return mtl_node_accumulate(n, 0, gi);
}

#define UNARY(ID, lname, fexpr, dfexpr)                                                   \
  static float f_##lname(float x, const double *arg) { (void)arg; return (fexpr); }        \
  static float df_##lname(float x, float y, const double *arg) {                           \
    (void)x; (void)y; (void)arg; return (dfexpr);                                          \
  }                                                                                        \
  static const unary_def def_##lname = {MTL_OP_##ID, "mtl." #lname, f_##lname, df_##lname}; \
  int mtl_##lname##_backward(mtl_node *n, mtl_tensor *g) { return unary_backward(&def_##lname, n, g); }

/* Scalar-argument forms of arithmetic: arg[0] is the scalar. */
UNARY(ADD_SCALAR, add_scalar, x + (float)arg[0], 1.0f)
UNARY(MUL_SCALAR, mul_scalar, x * (float)arg[0], (float)arg[0])
UNARY(RSUB_SCALAR, rsub_scalar, (float)arg[0] - x, -1.0f)
UNARY(RDIV_SCALAR, rdiv_scalar, (float)arg[0] / x, -y / x)
UNARY(NEG, neg, -x, -1.0f)
UNARY(EXP, exp, expf(x), y)
UNARY(RELU, relu, x > 0 ? x : 0.0f, x > 0 ? 1.0f : 0.0f)
/* sigmoid written to be stable for large |x| */
UNARY(SIGMOID, sigmoid, x >= 0 ? 1.0f / (1.0f + expf(-x)) : expf(x) / (1.0f + expf(x)), y * (1.0f - y))

mtl_tensor *mtl_add_scalar(mtl_tensor *a, double s) { return unary(&def_add_scalar, a, &s, 1); }
mtl_tensor *mtl_mul_scalar(mtl_tensor *a, double s) { return unary(&def_mul_scalar, a, &s, 1); }
mtl_tensor *mtl_rsub_scalar(mtl_tensor *a, double s) { return unary(&def_rsub_scalar, a, &s, 1); }
mtl_tensor *mtl_rdiv_scalar(mtl_tensor *a, double s) { return unary(&def_rdiv_scalar, a, &s, 1); }
mtl_tensor *mtl_neg(mtl_tensor *a) { return unary(&def_neg, a, NULL, 0); }
mtl_tensor *mtl_exp(mtl_tensor *a) { return unary(&def_exp, a, NULL, 0); }
mtl_tensor *mtl_relu(mtl_tensor *a) { return unary(&def_relu, a, NULL, 0); }
mtl_tensor *mtl_sigmoid(mtl_tensor *a) { return unary(&def_sigmoid, a, NULL, 0); }

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
