/* Lua binding of the tensor ops: one small C function per op, each checking
 * its arguments, converting 1-based dims, and pushing the result. Ops are
 * registered both as mtl.<op>(...) and as tensor methods t:<op>(...). */
#include <math.h>
#include <string.h>

#include "bind.h"

/* Binary arithmetic accepting tensor or number on either side. */
typedef mtl_tensor *(*binary_fn)(mtl_tensor *, mtl_tensor *);

static int arith(lua_State *L, const char *name, binary_fn tt, int kind) {
  mtl_tensor *a = bind_test_tensor(L, 1), *b = bind_test_tensor(L, 2);
  if (a && b) {
    mtl_tensor **slot = bind_slot(L);
    return bind_fill(L, slot, tt(a, b));
  }
  if (a && lua_isnumber(L, 2)) {
    double s = lua_tonumber(L, 2);
    mtl_tensor **slot = bind_slot(L);
    switch (kind) {
      case 0: return bind_fill(L, slot, mtl_add_scalar(a, s));
      case 1: return bind_fill(L, slot, mtl_add_scalar(a, -s));
      case 2: return bind_fill(L, slot, mtl_mul_scalar(a, s));
      default: return bind_fill(L, slot, mtl_mul_scalar(a, 1.0 / s));
    }
  }
  if (b && lua_isnumber(L, 1)) {
    double s = lua_tonumber(L, 1);
    mtl_tensor **slot = bind_slot(L);
    switch (kind) {
      case 0: return bind_fill(L, slot, mtl_add_scalar(b, s));
      case 1: return bind_fill(L, slot, mtl_rsub_scalar(b, s));
      case 2: return bind_fill(L, slot, mtl_mul_scalar(b, s));
      default: return bind_fill(L, slot, mtl_rdiv_scalar(b, s));
    }
  }
  return luaL_error(L, "%s: expected tensors or numbers, got %s and %s", name, luaL_typename(L, 1),
                    luaL_typename(L, 2));
}

static int l_add(lua_State *L) { return arith(L, "mtl.add", mtl_add, 0); }
static int l_sub(lua_State *L) { return arith(L, "mtl.sub", mtl_sub, 1); }
static int l_mul(lua_State *L) { return arith(L, "mtl.mul", mtl_mul, 2); }
static int l_div(lua_State *L) { return arith(L, "mtl.div", mtl_div, 3); }

typedef mtl_tensor *(*unary_fn)(mtl_tensor *);
static int unary(lua_State *L, const char *name, unary_fn f) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a));
}

static int l_neg(lua_State *L) { return unary(L, "mtl.neg", mtl_neg); }
static int l_exp(lua_State *L) { return unary(L, "mtl.exp", mtl_exp); }
static int l_relu(lua_State *L) { return unary(L, "mtl.relu", mtl_relu); }
static int l_sigmoid(lua_State *L) { return unary(L, "mtl.sigmoid", mtl_sigmoid); }

/* sum(t) over all; sum(t, dim[, keepdim]) */
static int reduce(lua_State *L, const char *name, mtl_tensor *(*f)(mtl_tensor *, int, bool)) {
  mtl_tensor *a = bind_check_tensor(L, 1, name);
  int dim = lua_isnoneornil(L, 2) ? -1 : bind_check_dim(L, 2, a->ndim, name);
  bool keep = lua_toboolean(L, 3);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a, dim, keep));
}

static int l_sum(lua_State *L) { return reduce(L, "mtl.sum", mtl_sum); }
static int l_mean(lua_State *L) { return reduce(L, "mtl.mean", mtl_mean); }

static int l_matmul(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.matmul"), *b = bind_check_tensor(L, 2, "mtl.matmul");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_matmul(a, b));
}

static int l_linear(lua_State *L) {
  mtl_tensor *x = bind_check_tensor(L, 1, "mtl.linear"), *w = bind_check_tensor(L, 2, "mtl.linear");
  mtl_tensor *b = bind_opt_tensor(L, 3, "mtl.linear");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_linear(x, w, b));
}

void bind_ops_open(lua_State *L, int mod, int methods) {
  static const luaL_Reg ops[] = {
    {"add", l_add}, {"sub", l_sub}, {"mul", l_mul}, {"div", l_div}, {"neg", l_neg},
    {"exp", l_exp}, {"relu", l_relu}, {"sigmoid", l_sigmoid},
    {"sum", l_sum}, {"mean", l_mean}, {"matmul", l_matmul}, {"linear", l_linear},
    {NULL, NULL},
  };
  for (const luaL_Reg *r = ops; r->name; r++) bind_register(L, mod, methods, r->name, r->func);
}
