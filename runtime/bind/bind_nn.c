/* Lua binding of the nn family: dropout, layer_norm, batch_norm (also tensor
 * methods) and the losses (module functions only). Defaults follow PyTorch:
 *   mtl.dropout(x, p = 0.5, training = true)
 *   mtl.layer_norm(x, weight, bias, eps = 1e-5)
 *   mtl.batch_norm(x, weight, bias, running_mean, running_var,
 *                  training = false, momentum = 0.1, eps = 1e-5, activation = "none")
 *       activation "relu": max(batch_norm(...), 0) in the same pass (and backward)
 *   mtl.binary_cross_entropy_with_logits(logits, target, opts)  (alias bce_with_logits)
 *   mtl.binary_cross_entropy(p, target, opts)                   (alias bce)
 *       opts: nil, a reduction string, or {weight=, mask=, reduction=}
 *   mtl.mse(a, target, reduction = "mean")
 *   mtl.cross_entropy(logits [n,c], target int64 [n] of 1-based classes, reduction = "mean") */
#include <stdio.h>
#include <string.h>

#include "bind.h"

static double opt_number(lua_State *L, int idx, double def, const char *fname, const char *what) {
  if (lua_isnoneornil(L, idx)) return def;
  if (lua_type(L, idx) != LUA_TNUMBER)
    luaL_error(L, "%s: expected a number for %s, got %s", fname, what, luaL_typename(L, idx));
  return lua_tonumber(L, idx);
}

static bool opt_bool(lua_State *L, int idx, bool def, const char *fname, const char *what) {
  if (lua_isnoneornil(L, idx)) return def;
  if (!lua_isboolean(L, idx))
    luaL_error(L, "%s: expected a boolean for %s, got %s", fname, what, luaL_typename(L, idx));
  return lua_toboolean(L, idx);
}

/* nil -> "mean"; otherwise one of "mean", "sum", "none". */
static mtl_reduction check_reduction(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return MTL_REDUCE_MEAN;
  if (lua_type(L, idx) != LUA_TSTRING)
    luaL_error(L, "%s: reduction must be 'mean', 'sum' or 'none', got %s", fname, luaL_typename(L, idx));
  const char *s = lua_tostring(L, idx);
  if (!strcmp(s, "mean")) return MTL_REDUCE_MEAN;
  if (!strcmp(s, "sum")) return MTL_REDUCE_SUM;
  if (!strcmp(s, "none")) return MTL_REDUCE_NONE;
  luaL_error(L, "%s: reduction must be 'mean', 'sum' or 'none', got '%s'", fname, s);
  return MTL_REDUCE_MEAN;
}

/* ---- layers' building blocks ------------------------------------------------ */
static int l_dropout(lua_State *L) {
  const char *f = "mtl.dropout";
  mtl_tensor *x = bind_check_tensor(L, 1, f);
  double p = opt_number(L, 2, 0.5, f, "p");
  bool training = opt_bool(L, 3, true, f, "training");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_dropout(x, p, training));
}

static int l_layer_norm(lua_State *L) {
  const char *f = "mtl.layer_norm";
  mtl_tensor *x = bind_check_tensor(L, 1, f);
  mtl_tensor *w = bind_opt_tensor(L, 2, f), *b = bind_opt_tensor(L, 3, f);
  double eps = opt_number(L, 4, 1e-5, f, "eps");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_layer_norm(x, w, b, eps));
}

static int l_batch_norm(lua_State *L) {
  const char *f = "mtl.batch_norm";
  mtl_tensor *x = bind_check_tensor(L, 1, f);
  mtl_tensor *w = bind_opt_tensor(L, 2, f), *b = bind_opt_tensor(L, 3, f);
  mtl_tensor *rm = bind_opt_tensor(L, 4, f), *rv = bind_opt_tensor(L, 5, f);
  bool training = opt_bool(L, 6, false, f, "training");
  double momentum = opt_number(L, 7, 0.1, f, "momentum");
  double eps = opt_number(L, 8, 1e-5, f, "eps");
  const char *act = luaL_optstring(L, 9, "none");
  bool relu = strcmp(act, "relu") == 0;
  if (!relu && strcmp(act, "none") != 0)
    return luaL_error(L, "%s: activation (argument 9) must be \"relu\" or \"none\", got \"%s\"", f, act);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_batch_norm_act(x, w, b, rm, rv, training, momentum, eps, relu));
}

/* ---- losses ------------------------------------------------------------------ */
/* opts at idx: nil, a reduction string, or a table {weight=, mask=, reduction=}. */
static void check_bce_opts(lua_State *L, int idx, const char *fname, mtl_tensor **weight,
                           mtl_tensor **mask, mtl_reduction *red) {
  *weight = *mask = NULL;
  *red = MTL_REDUCE_MEAN;
  if (lua_isnoneornil(L, idx)) return;
  if (lua_type(L, idx) == LUA_TSTRING) {
    *red = check_reduction(L, idx, fname);
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: expected an options table {weight=, mask=, reduction=} for argument %d, got %s", fname,
               idx, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    if (!k || (strcmp(k, "weight") && strcmp(k, "mask") && strcmp(k, "reduction")))
      luaL_error(L, "%s: unknown option '%s' (expected weight, mask or reduction)", fname,
                 k ? k : luaL_typename(L, -2));
    lua_pop(L, 1);
  }
  static const char *const names[2] = {"weight", "mask"};
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, idx, names[i]);
    if (!lua_isnil(L, -1)) {
      mtl_tensor *t = bind_test_tensor(L, -1);
      if (!t) luaL_error(L, "%s: option %s must be a tensor, got %s", fname, names[i], luaL_typename(L, -1));
      *(i == 0 ? weight : mask) = t; /* stays alive: the options table holds it */
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "reduction");
  *red = check_reduction(L, lua_gettop(L), fname);
  lua_pop(L, 1);
}

typedef mtl_tensor *(*bce_fn)(mtl_tensor *, mtl_tensor *, mtl_tensor *, mtl_tensor *, mtl_reduction);

static int bce_common(lua_State *L, const char *fname, bce_fn fn) {
  mtl_tensor *x = bind_check_tensor(L, 1, fname), *y = bind_check_tensor(L, 2, fname);
  mtl_tensor *w, *m;
  mtl_reduction red;
  check_bce_opts(L, 3, fname, &w, &m, &red);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, fn(x, y, w, m, red));
}

static int l_bce_with_logits(lua_State *L) {
  return bce_common(L, "mtl.binary_cross_entropy_with_logits", mtl_bce_with_logits);
}
static int l_bce(lua_State *L) { return bce_common(L, "mtl.binary_cross_entropy", mtl_bce); }

static int l_mse(lua_State *L) {
  const char *f = "mtl.mse";
  mtl_tensor *a = bind_check_tensor(L, 1, f), *t = bind_check_tensor(L, 2, f);
  mtl_reduction red = check_reduction(L, 3, f);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_mse(a, t, red));
}

/* The target's classes are 1-based in Lua: a 0-based copy goes to the core.
 * Targets of the wrong dtype or shape go through unchanged, so the core's
 * message reports them. */
static int l_cross_entropy(lua_State *L) {
  const char *f = "mtl.cross_entropy";
  mtl_tensor *x = bind_check_tensor(L, 1, f), *t = bind_check_tensor(L, 2, f);
  mtl_reduction red = check_reduction(L, 3, f);
  mtl_tensor *target = t;
  if (x->ndim == 2 && t->dtype == MTL_I64 && t->ndim == 1 && t->shape[0] == x->shape[0]) {
    mtl_tensor **tmp = bind_slot(L); /* owned by the GC from here: errors cannot leak it */
    if (!(*tmp = mtl_tensor_new(MTL_I64, 1, t->shape))) return bind_error(L);
    if (mtl_tensor_copy_into(*tmp, t) < 0) return bind_error(L);
    int64_t *p = mtl_i64(*tmp), c = x->shape[1];
    for (int64_t i = 0; i < t->numel; i++) {
      if (p[i] < 1 || p[i] > c) {
        char msg[200]; /* lua_pushfstring has no %lld */
        snprintf(msg, sizeof msg, "%s: target class %lld at position %lld is out of range (expected 1..%lld)", f,
                 (long long)p[i], (long long)i + 1, (long long)c);
        return luaL_error(L, "%s", msg);
      }
      p[i] -= 1;
    }
    target = *tmp;
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_cross_entropy(x, target, red));
}

/* mtl.mix(experts, gate): experts a tensor [B,n,d] or a list of blocks [B,n_i,d] */
static int l_mix(lua_State *L) {
  const char *f = "mtl.mix";
  mtl_tensor *blocks[64];
  int n = 0;
  if (lua_type(L, 1) == LUA_TTABLE) {
    n = (int)lua_objlen(L, 1);
    if (n < 1 || n > 64) return luaL_error(L, "%s: expected 1 to 64 expert blocks, got %d", f, n);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 1, i + 1);
      mtl_tensor *t = bind_test_tensor(L, -1);
      if (!t) return luaL_error(L, "%s: expert block %d is not a tensor (%s)", f, i + 1, luaL_typename(L, -1));
      blocks[i] = t; /* the table keeps it alive */
      lua_pop(L, 1);
    }
  } else {
    blocks[0] = bind_check_tensor(L, 1, f);
    n = 1;
  }
  mtl_tensor *gate = bind_check_tensor(L, 2, f);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_mix(n, blocks, gate));
}

void bind_nn_open(lua_State *L, int mod, int methods) {
  static const luaL_Reg with_methods[] = {
    {"dropout", l_dropout}, {"layer_norm", l_layer_norm}, {"batch_norm", l_batch_norm}, {NULL, NULL},
  };
  static const luaL_Reg module_only[] = {
    {"binary_cross_entropy_with_logits", l_bce_with_logits}, {"bce_with_logits", l_bce_with_logits},
    {"binary_cross_entropy", l_bce}, {"bce", l_bce}, {"mse", l_mse}, {"cross_entropy", l_cross_entropy},
    {"mix", l_mix},
    {NULL, NULL},
  };
  for (const luaL_Reg *r = with_methods; r->name; r++) bind_register(L, mod, methods, r->name, r->func);
  for (const luaL_Reg *r = module_only; r->name; r++) bind_register(L, mod, 0, r->name, r->func);
}
