/* Lua binding of the tensor ops (elementwise, reductions, matrix products):
 * one small C function per op, each checking its arguments, converting
 * 1-based dims, and pushing the result. Ops are registered both as
 * mtl.<op>(...) and as tensor methods t:<op>(...). */
#include <math.h>
#include <string.h>

#include "bind.h"

/* ---- argument helpers ------------------------------------------------------ */
static bool is_number(lua_State *L, int idx) { return lua_type(L, idx) == LUA_TNUMBER; }

/* A number, or def when the argument is nil/absent. */
static double opt_number(lua_State *L, int idx, double def, const char *fname, const char *what) {
  if (lua_isnoneornil(L, idx)) return def;
  if (!is_number(L, idx))
    luaL_error(L, "%s: expected a number or nil for %s, got %s", fname, what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

/* A 1-based (or negative) dim of a to a 0-based one; nil gives def. */
static int opt_dim(lua_State *L, int idx, const mtl_tensor *a, int def, const char *fname) {
  if (lua_isnoneornil(L, idx)) return def;
  if (!is_number(L, idx))
    luaL_error(L, "%s: expected a dimension (a number) for argument %d, got %s", fname, idx,
               luaL_typename(L, idx));
  double d = lua_tonumber(L, idx);
  if (d != floor(d))
    luaL_error(L, "%s: expected an integer dimension for argument %d, got %g", fname, idx, d);
  if (a->ndim == 0)
    luaL_error(L, "%s: dimension %g out of range (the tensor has no dimensions)", fname, d);
  if (d == 0 || d > a->ndim || d < -a->ndim)
    luaL_error(L, "%s: dimension %g out of range (expected 1..%d or -%d..-1)", fname, d, a->ndim,
               a->ndim);
  return d < 0 ? (int)d + a->ndim : (int)d - 1;
}

/* Checks that argument idx is a tensor or a number. */
static void check_tensor_or_number(lua_State *L, int idx, const char *fname) {
  if (!bind_test_tensor(L, idx) && !is_number(L, idx))
    luaL_error(L, "%s: expected a tensor or a number for argument %d, got %s", fname, idx,
               luaL_typename(L, idx));
}

/* The tensor at idx, or (for a number) a new 0-dim float tensor put in *tmp
 * for the caller to release. Call after bind_slot, once arguments are checked. */
static mtl_tensor *as_tensor(lua_State *L, int idx, mtl_tensor **tmp) {
  mtl_tensor *t = bind_test_tensor(L, idx);
  if (t) return t;
  t = mtl_tensor_new(MTL_F32, 0, NULL);
  if (t) mtl_f32(t)[0] = (float)lua_tonumber(L, idx);
  *tmp = t;
  return t;
}

/* ---- arithmetic ------------------------------------------------------------ */
/* Binary arithmetic accepting tensor or number on either side: tensor with
 * tensor broadcasts; a number on one side picks the core's scalar form (the
 * binding only dispatches, the core decides the numerics). */
typedef mtl_tensor *(*binary_fn)(mtl_tensor *, mtl_tensor *);
typedef mtl_tensor *(*scalar_fn)(mtl_tensor *, double);

static int arith(lua_State *L, const char *name, binary_fn tt, scalar_fn ts, scalar_fn st) {
  mtl_tensor *a = bind_test_tensor(L, 1), *b = bind_test_tensor(L, 2);
  if (a && b) {
    mtl_tensor **slot = bind_slot(L);
    return bind_fill(L, slot, tt(a, b));
  }
  bool tensor_first = a && is_number(L, 2);
  if (!tensor_first && !(b && is_number(L, 1)))
    return luaL_error(L, "%s: expected tensors or numbers, got %s and %s", name, luaL_typename(L, 1),
                      luaL_typename(L, 2));
  /* name the op the user called, not its scalar kernel */
  mtl_tensor *t = tensor_first ? a : b;
  if (t->dtype != MTL_F32)
    return luaL_error(L, "%s: expected a float32 tensor for the %s argument, got %s", name,
                      tensor_first ? "first" : "second", mtl_dtype_name(t->dtype));
  double s = lua_tonumber(L, tensor_first ? 2 : 1);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, (tensor_first ? ts : st)(t, s));
}

static int l_add(lua_State *L) { return arith(L, "mtl.add", mtl_add, mtl_add_scalar, mtl_add_scalar); }
static int l_sub(lua_State *L) { return arith(L, "mtl.sub", mtl_sub, mtl_sub_scalar, mtl_rsub_scalar); }
static int l_mul(lua_State *L) { return arith(L, "mtl.mul", mtl_mul, mtl_mul_scalar, mtl_mul_scalar); }
static int l_div(lua_State *L) { return arith(L, "mtl.div", mtl_div, mtl_div_scalar, mtl_rdiv_scalar); }

/* pow(t, p) with p a number or a tensor; pow(x, t) with x a number (2 ^ t). */
static int l_pow(lua_State *L) {
  mtl_tensor *a = bind_test_tensor(L, 1), *b = bind_test_tensor(L, 2);
  if (!(a || b) || !(a || is_number(L, 1)) || !(b || is_number(L, 2)))
    return luaL_error(L, "mtl.pow: expected tensors or numbers, got %s and %s", luaL_typename(L, 1),
                      luaL_typename(L, 2));
  mtl_tensor **slot = bind_slot(L);
  if (!b) return bind_fill(L, slot, mtl_pow_scalar(a, lua_tonumber(L, 2)));
  mtl_tensor *tmp = NULL;
  if (!a && !(a = as_tensor(L, 1, &tmp))) return bind_error(L);
  mtl_tensor *r = mtl_pow(a, b);
  mtl_tensor_release(tmp);
  return bind_fill(L, slot, r);
}

typedef mtl_tensor *(*unary_fn)(mtl_tensor *);
static int unary(lua_State *L, const char *name, unary_fn f) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a));
}

static int l_neg(lua_State *L) { return unary(L, "mtl.neg", mtl_neg); }
static int l_exp(lua_State *L) { return unary(L, "mtl.exp", mtl_exp); }
static int l_log(lua_State *L) { return unary(L, "mtl.log", mtl_log); }
static int l_log1p(lua_State *L) { return unary(L, "mtl.log1p", mtl_log1p); }
static int l_sqrt(lua_State *L) { return unary(L, "mtl.sqrt", mtl_sqrt); }
static int l_abs(lua_State *L) { return unary(L, "mtl.abs", mtl_abs); }
static int l_relu(lua_State *L) { return unary(L, "mtl.relu", mtl_relu); }
static int l_sigmoid(lua_State *L) { return unary(L, "mtl.sigmoid", mtl_sigmoid); }
static int l_tanh(lua_State *L) { return unary(L, "mtl.tanh", mtl_tanh); }
static int l_gelu(lua_State *L) { return unary(L, "mtl.gelu", mtl_gelu); }
static int l_gelu_tanh(lua_State *L) { return unary(L, "mtl.gelu_tanh", mtl_gelu_tanh); }
static int l_elu(lua_State *L) { return unary(L, "mtl.elu", mtl_elu); }
static int l_selu(lua_State *L) { return unary(L, "mtl.selu", mtl_selu); }
static int l_swish(lua_State *L) { return unary(L, "mtl.swish", mtl_swish); }
static int l_softplus(lua_State *L) { return unary(L, "mtl.softplus", mtl_softplus); }
static int l_softsign(lua_State *L) { return unary(L, "mtl.softsign", mtl_softsign); }

/* clamp(t, lo, hi): either bound may be nil (open), not both. */
static int l_clamp(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.clamp");
  if (lua_isnoneornil(L, 2) && lua_isnoneornil(L, 3))
    return luaL_error(L, "mtl.clamp: expected at least one bound (lo or hi), got nil and nil");
  double lo = opt_number(L, 2, -INFINITY, "mtl.clamp", "lo");
  double hi = opt_number(L, 3, INFINITY, "mtl.clamp", "hi");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_clamp(a, lo, hi));
}

/* leaky_relu(t[, slope = 0.01]) */
static int l_leaky_relu(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.leaky_relu");
  double slope = opt_number(L, 2, 0.01, "mtl.leaky_relu", "slope");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_leaky_relu(a, slope));
}

/* where(mask, a, b): a and b may be numbers. As a method the receiver is the
 * mask: mask:where(a, b) (not PyTorch's a.where(cond, b)). */
static int l_where(lua_State *L) {
  mtl_tensor *mask = bind_check_tensor(L, 1, "mtl.where");
  check_tensor_or_number(L, 2, "mtl.where");
  check_tensor_or_number(L, 3, "mtl.where");
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *ta = NULL, *tb = NULL, *r = NULL;
  mtl_tensor *a = as_tensor(L, 2, &ta), *b = as_tensor(L, 3, &tb);
  if (a && b) r = mtl_where(mask, a, b);
  mtl_tensor_release(ta);
  mtl_tensor_release(tb);
  return bind_fill(L, slot, r);
}

/* Comparisons: tensor <op> tensor, tensor <op> number, number <op> tensor. */
static int compare(lua_State *L, const char *op, const char *swapped) {
  mtl_tensor *a = bind_test_tensor(L, 1), *b = bind_test_tensor(L, 2);
  if (a && b) {
    mtl_tensor **slot = bind_slot(L);
    return bind_fill(L, slot, mtl_compare(op, a, b));
  }
  if (a && is_number(L, 2)) {
    double s = lua_tonumber(L, 2);
    mtl_tensor **slot = bind_slot(L);
    return bind_fill(L, slot, mtl_compare_scalar(op, a, s));
  }
  if (b && is_number(L, 1)) { /* s < t is t > s */
    double s = lua_tonumber(L, 1);
    mtl_tensor **slot = bind_slot(L);
    return bind_fill(L, slot, mtl_compare_scalar(swapped, b, s));
  }
  return luaL_error(L, "mtl.%s: expected tensors or numbers, got %s and %s", op, luaL_typename(L, 1),
                    luaL_typename(L, 2));
}

static int l_eq(lua_State *L) { return compare(L, "eq", "eq"); }
static int l_ne(lua_State *L) { return compare(L, "ne", "ne"); }
static int l_lt(lua_State *L) { return compare(L, "lt", "gt"); }
static int l_le(lua_State *L) { return compare(L, "le", "ge"); }
static int l_gt(lua_State *L) { return compare(L, "gt", "lt"); }
static int l_ge(lua_State *L) { return compare(L, "ge", "le"); }

/* ---- reductions ------------------------------------------------------------ */
/* sum(t) over all; sum(t, dim[, keepdim]) */
static int reduce(lua_State *L, const char *name, mtl_tensor *(*f)(mtl_tensor *, int, bool)) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  int dim = opt_dim(L, 2, a, -1, name);
  bool keep = lua_toboolean(L, 3);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a, dim, keep));
}

static int l_sum(lua_State *L) { return reduce(L, "mtl.sum", mtl_sum); }
static int l_mean(lua_State *L) { return reduce(L, "mtl.mean", mtl_mean); }

/* max(t[, dim[, keepdim]]) -> values, indices (1-based positions along dim;
 * over all elements: the 1-based flat position). */
typedef mtl_tensor *(*extreme_fn)(mtl_tensor *, int, bool, mtl_tensor **);
static int extreme(lua_State *L, const char *name, extreme_fn f) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  int dim = opt_dim(L, 2, a, -1, name);
  bool keep = lua_toboolean(L, 3);
  mtl_tensor **vslot = bind_slot(L), **islot = bind_slot(L);
  mtl_tensor *idx = NULL, *v = f(a, dim, keep, &idx);
  if (!v) return bind_error(L);
  *islot = idx; /* owned by the GC from here, even if bind_fill raises */
  int64_t *p = mtl_i64(idx);
  for (int64_t i = 0; i < idx->numel; i++) p[i] += 1;
  bind_fill(L, vslot, v);
  return 2;
}

static int l_max(lua_State *L) { return extreme(L, "mtl.max", mtl_max); }
static int l_min(lua_State *L) { return extreme(L, "mtl.min", mtl_min); }

/* softmax(t[, dim = -1]) */
static int softmax(lua_State *L, const char *name, mtl_tensor *(*f)(mtl_tensor *, int)) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  int dim = a->ndim == 0 && lua_isnoneornil(L, 2) ? 0 : opt_dim(L, 2, a, a->ndim - 1, name);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a, dim));
}

static int l_softmax(lua_State *L) { return softmax(L, "mtl.softmax", mtl_softmax); }
static int l_log_softmax(lua_State *L) { return softmax(L, "mtl.log_softmax", mtl_log_softmax); }

/* ---- matrix products --------------------------------------------------------- */
static int l_matmul(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.matmul"), *b = bind_check_tensor(L, 2, "mtl.matmul");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_matmul(a, b));
}

/* mtl.linear(x, w[, bias[, activation]]): activation "relu" fused, or nil/"none" */
static int l_linear(lua_State *L) {
  mtl_tensor *x = bind_check_tensor(L, 1, "mtl.linear"), *w = bind_check_tensor(L, 2, "mtl.linear");
  mtl_tensor *b = bind_opt_tensor(L, 3, "mtl.linear");
  mtl_activation act = MTL_ACT_NONE;
  if (!lua_isnoneornil(L, 4)) {
    if (lua_type(L, 4) != LUA_TSTRING)
      return luaL_error(L, "mtl.linear: expected an activation name for argument 4, got %s", luaL_typename(L, 4));
    const char *name = lua_tostring(L, 4);
    if (strcmp(name, "relu") == 0) act = MTL_ACT_RELU;
    else if (strcmp(name, "none") != 0)
      return luaL_error(L, "mtl.linear: unknown activation '%s' (expected 'relu' or 'none')", name);
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_linear_act(x, w, b, act));
}

/* ---- bf16 inference ----------------------------------------------------------- */
/* mtl.bf16_status() -> available, "bf16 (...)" or "fp32 (why not)" */
static int l_bf16_status(lua_State *L) {
  lua_pushboolean(L, mtl_bf16_available());
  lua_pushstring(L, mtl_bf16_status());
  return 2;
}

/* mtl.bf16_pack(w) -> bytes of the packing */
static int l_bf16_pack(lua_State *L) {
  mtl_tensor *w = bind_check_tensor(L, 1, "mtl.bf16_pack");
  if (mtl_bf16_pack(w) < 0) return luaL_error(L, "%s", mtl_error_message());
  lua_pushnumber(L, (lua_Number)mtl_bf16_packed_bytes(w));
  return 1;
}

static int l_bf16_unpack(lua_State *L) {
  mtl_bf16_unpack(bind_check_tensor(L, 1, "mtl.bf16_unpack"));
  return 0;
}

/* mtl.bf16_packed(w) -> bytes of w's packing, 0 when none */
static int l_bf16_packed(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mtl_bf16_packed_bytes(bind_check_tensor(L, 1, "mtl.bf16_packed")));
  return 1;
}

/* ---- packed FP32 inference ------------------------------------------------------ */
/* mtl.fp32_status() -> "avx512", "avx2", "scalar" or "blas": what inference runs on */
static int l_fp32_status(lua_State *L) {
  lua_pushstring(L, mtl_fp32_status());
  return 1;
}

/* mtl.fp32_pack(w) -> bytes of the packing */
static int l_fp32_pack(lua_State *L) {
  mtl_tensor *w = bind_check_tensor(L, 1, "mtl.fp32_pack");
  if (mtl_fp32_pack(w) < 0) return luaL_error(L, "%s", mtl_error_message());
  lua_pushnumber(L, (lua_Number)mtl_fp32_packed_bytes(w));
  return 1;
}

static int l_fp32_unpack(lua_State *L) {
  mtl_fp32_unpack(bind_check_tensor(L, 1, "mtl.fp32_unpack"));
  return 0;
}

/* mtl.fp32_packed(w) -> bytes of w's packing, 0 when none */
static int l_fp32_packed(lua_State *L) {
  lua_pushnumber(L, (lua_Number)mtl_fp32_packed_bytes(bind_check_tensor(L, 1, "mtl.fp32_packed")));
  return 1;
}

void bind_ops_open(lua_State *L, int mod, int methods) {
  static const luaL_Reg bf16[] = {
    {"bf16_status", l_bf16_status}, {"bf16_pack", l_bf16_pack}, {"bf16_unpack", l_bf16_unpack},
    {"bf16_packed", l_bf16_packed}, {"fp32_status", l_fp32_status}, {"fp32_pack", l_fp32_pack},
    {"fp32_unpack", l_fp32_unpack}, {"fp32_packed", l_fp32_packed}, {NULL, NULL},
  };
  bind_register_list(L, mod, 0, bf16);
  static const luaL_Reg ops[] = {
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"pow", l_pow},
    {"neg", l_neg}, {"exp", l_exp}, {"log", l_log}, {"log1p", l_log1p}, {"sqrt", l_sqrt},
    {"abs", l_abs}, {"clamp", l_clamp}, {"relu", l_relu}, {"leaky_relu", l_leaky_relu},
    {"sigmoid", l_sigmoid}, {"tanh", l_tanh}, {"gelu", l_gelu}, {"gelu_tanh", l_gelu_tanh}, {"elu", l_elu}, {"selu", l_selu}, {"swish", l_swish},
    {"softplus", l_softplus}, {"softsign", l_softsign}, {"where", l_where},
    {"eq", l_eq}, {"ne", l_ne}, {"lt", l_lt}, {"le", l_le}, {"gt", l_gt}, {"ge", l_ge},
    {"sum", l_sum}, {"mean", l_mean}, {"max", l_max}, {"min", l_min},
    {"softmax", l_softmax}, {"log_softmax", l_log_softmax},
    {"matmul", l_matmul}, {"linear", l_linear},
    {NULL, NULL},
  };
  bind_register_list(L, mod, methods, ops);
}
