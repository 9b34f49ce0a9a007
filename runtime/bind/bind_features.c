/* Lua binding of the per-batch feature transforms (runtime/src/features.c). */
#include <stdlib.h>

#include "bind.h"
#include "mtl/features.h"

/* core.bucketize(x float [n], {b1, b2, ...}) -> int64 [n] */
static int l_bucketize(lua_State *L) {
  mtl_tensor *x = bind_check_tensor(L, 1, "mtl.bucketize");
  luaL_checktype(L, 2, LUA_TTABLE);
  int nb = (int)lua_objlen(L, 2);
  if (nb > 1000000) return luaL_error(L, "mtl.bucketize: too many boundaries (%d)", nb);
  double *b = lua_newuserdata(L, sizeof(double) * (size_t)(nb > 0 ? nb : 1)); /* freed by the GC */
  for (int i = 0; i < nb; i++) {
    lua_rawgeti(L, 2, i + 1);
    if (!lua_isnumber(L, -1)) return luaL_error(L, "mtl.bucketize: boundary %d must be a number", i + 1);
    b[i] = lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_bucketize(x, b, nb));
}

/* core.hash_cross({ids1, ids2, ...}) -> int64 [n] */
static int l_hash_cross(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  int n = (int)lua_objlen(L, 1);
  if (n < 1 || n > 16) return luaL_error(L, "mtl.hash_cross: expected 1 to 16 columns, got %d", n);
  mtl_tensor *cols[16];
  for (int i = 0; i < n; i++) {
    lua_rawgeti(L, 1, i + 1);
    cols[i] = bind_test_tensor(L, -1);
    if (!cols[i]) return luaL_error(L, "mtl.hash_cross: column %d is not a tensor", i + 1);
    lua_pop(L, 1); /* still referenced by the table */
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_hash_cross(n, cols));
}

/* core.kv_lookup(key, ids, offsets, values[, missing]) -> float [n] */
static int l_kv_lookup(lua_State *L) {
  const char *fn = "mtl.kv_lookup";
  mtl_tensor *k = bind_check_tensor(L, 1, fn), *i = bind_check_tensor(L, 2, fn), *o = bind_check_tensor(L, 3, fn),
             *v = bind_check_tensor(L, 4, fn);
  double missing = luaL_optnumber(L, 5, 0.0);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_kv_lookup(k, i, o, v, missing));
}

/* core.vocab_index(ids int64, sorted keys int64) -> int64 rows (0 = OOV) */
static int l_vocab_index(lua_State *L) {
  mtl_tensor *ids = bind_check_tensor(L, 1, "mtl.vocab_index"), *keys = bind_check_tensor(L, 2, "mtl.vocab_index");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_vocab_index(ids, keys));
}

static int l_sort_unique(lua_State *L) {
  mtl_tensor *ids = bind_check_tensor(L, 1, "mtl.sort_unique");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_sort_unique(ids));
}

/* core.seq_pad(offsets int64 [n + 1][, len[, max_len]]) -> index int64 [n * L]
 * (1-based steps, S + 1 at padding), mask float [n, L] (mtl/features.h) */
static int l_seq_pad(lua_State *L) {
  mtl_tensor *off = bind_check_tensor(L, 1, "mtl.seq_pad");
  lua_Integer len = luaL_optinteger(L, 2, 0), max_len = luaL_optinteger(L, 3, 0);
  mtl_tensor **si = bind_slot(L), **sm = bind_slot(L);
  mtl_tensor *index, *mask;
  if (mtl_seq_pad(off, (int64_t)len, (int64_t)max_len, &index, &mask) < 0) return bind_fill(L, si, NULL);
  bind_fill(L, si, index);
  bind_fill(L, sm, mask);
  return 2;
}

void bind_features_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg fns[] = {
    {"bucketize", l_bucketize}, {"hash_cross", l_hash_cross}, {"kv_lookup", l_kv_lookup},
    {"vocab_index", l_vocab_index}, {"sort_unique", l_sort_unique}, {"seq_pad", l_seq_pad}, {NULL, NULL},
  };
  bind_register_list(L, mod, 0, fns);
}
