/* Lua binding of embedding tables: the mtl.Embedding userdata (a boxed,
 * reference-counted mtl_embedding), its constructor and methods, and its
 * state_dict / from_state for checkpoints. Ids from Lua are int64 tensors or
 * tables of integers and strings; bag offsets are 1-based positions.
 * Methods take the table as argument 1 (t:method(...)). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bind_embedding.h"

#define MAX_EXACT 9007199254740992.0 /* 2^53: larger Lua numbers are not exact integers */

mtl_embedding *bind_test_embedding(lua_State *L, int idx) {
  mtl_embedding **ud = luaL_testudata(L, idx, BIND_EMBEDDING_MT);
  return ud ? *ud : NULL;
}

static mtl_embedding *check_table(lua_State *L, int idx, const char *fname) {
  mtl_embedding *t = bind_test_embedding(L, idx);
  if (!t) luaL_error(L, "%s: expected an mtl.Embedding for argument %d, got %s", fname, idx, luaL_typename(L, idx));
  return t;
}

int bind_push_embedding(lua_State *L, mtl_embedding *t) {
  if (!t) return bind_error(L);
  mtl_embedding **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, BIND_EMBEDDING_MT);
  lua_setmetatable(L, -2);
  *ud = t;
  return 1;
}

/* Pushes a tensor (new reference) without raising for NULL: returns it. */
static mtl_tensor *push_tensor(lua_State *L, mtl_tensor *t) {
  if (t) bind_push(L, t);
  else lua_pushnil(L);
  return t;
}

/* ---- ids from Lua ------------------------------------------------------------- */
/* The 64-bit id of the Lua value at idx (an integer or a string); pos > 0
 * names the id's position in a list for the error text. */
static int64_t check_id(lua_State *L, int idx, const char *fname, int pos) {
  int ty = lua_type(L, idx);
  if (ty == LUA_TSTRING) {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return mtl_embedding_string_key(s, len);
  }
  char where[32] = "";
  if (pos > 0) snprintf(where, sizeof where, " %d", pos);
  if (ty == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    if (v == floor(v) && fabs(v) <= MAX_EXACT) return (int64_t)v;
    luaL_error(L, "%s: id%s must be an integer (use an int64 tensor beyond 2^53), got %g", fname, where, v);
  }
  luaL_error(L, "%s: id%s must be an integer or a string, got %s", fname, where, luaL_typename(L, idx));
  return 0;
}

/* An int64 tensor from the value at idx: the tensor itself, or a table of
 * integers / strings converted into a new tensor. A converted tensor is left
 * pushed on the stack so the GC owns it (callers use absolute indices). */
static mtl_tensor *check_ids(lua_State *L, int idx, const char *fname, const char *what, bool strings) {
  mtl_tensor *t = bind_test_tensor(L, idx);
  if (t) return t;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: expected %s as an int64 tensor or a table of integers%s, got %s", fname, what,
               strings ? " or strings" : "", luaL_typename(L, idx));
  int64_t n = (int64_t)lua_objlen(L, idx);
  mtl_tensor **slot = bind_slot(L);
  bind_fill(L, slot, mtl_tensor_new(MTL_I64, 1, &n));
  int64_t *p = mtl_i64(*slot);
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    if (!strings && lua_type(L, -1) == LUA_TSTRING)
      luaL_error(L, "%s: %s entry %d must be an integer, got string", fname, what, (int)i + 1);
    p[i] = check_id(L, -1, fname, (int)i + 1);
    lua_pop(L, 1);
  }
  return *slot;
}

/* A float vector of n values from a tensor or a table at idx, copied into out. */
static void check_floats(lua_State *L, int idx, int64_t n, float *out, const char *fname, const char *what) {
  mtl_tensor *t = bind_test_tensor(L, idx);
  if (t) {
    if (t->dtype != MTL_F32 || t->numel != n) {
      char s[64];
      luaL_error(L, "%s: expected %s as a float32 tensor of %d values, got %s %s", fname, what, (int)n,
                 mtl_dtype_name(t->dtype), mtl_shape_str(t, s, sizeof s));
    }
    mtl_tensor *c = mtl_tensor_contiguous_data(t);
    if (!c) bind_error(L);
    memcpy(out, mtl_f32(c), (size_t)n * sizeof *out);
    mtl_tensor_release(c);
    return;
  }
  if (!lua_istable(L, idx) || (int64_t)lua_objlen(L, idx) != n)
    luaL_error(L, "%s: expected %s as a table or tensor of %d numbers, got %s", fname, what, (int)n,
               lua_istable(L, idx) ? "a table of another length" : luaL_typename(L, idx));
  for (int64_t i = 0; i < n; i++) {
    lua_rawgeti(L, idx, (int)i + 1);
    if (lua_type(L, -1) != LUA_TNUMBER)
      luaL_error(L, "%s: %s entry %d must be a number, got %s", fname, what, (int)i + 1, luaL_typename(L, -1));
    out[i] = (float)lua_tonumber(L, -1);
    lua_pop(L, 1);
  }
}

/* ---- construction ----------------------------------------------------------------- */
static const char *const init_names[] = {"uniform", "normal", "truncated_normal", "zeros", NULL};
static const char *const kind_names[] = {"fixed", "hashed", "dynamic", NULL};
static const char *const combiner_names[] = {"sum", "mean", "sqrtn", NULL};

static int find_name(const char *const *names, const char *s) {
  for (int i = 0; names[i]; i++)
    if (!strcmp(names[i], s)) return i;
  return -1;
}

/* Option value helpers (cfg table at idx). Each returns def when absent. */
static int64_t opt_int(lua_State *L, int idx, const char *key, int64_t def, double lo, const char *fname) {
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "%s: option '%s' must be an integer, got %s", fname, key, luaL_typename(L, -1));
  double v = lua_tonumber(L, -1);
  if (v != floor(v) || v < lo || v > MAX_EXACT)
    luaL_error(L, "%s: option '%s' must be an integer >= %g, got %g", fname, key, lo, v);
  lua_pop(L, 1);
  return (int64_t)v;
}

static const char *opt_name(lua_State *L, int idx, const char *key, const char *const *names, const char *def,
                            const char *fname) {
  lua_getfield(L, idx, key);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return def;
  }
  const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  if (!s || find_name(names, s) < 0) {
    char list[128] = "";
    for (int i = 0; names[i]; i++) {
      strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
      strncat(list, names[i], sizeof list - strlen(list) - 1);
    }
    luaL_error(L, "%s: option '%s' must be one of %s, got %s", fname, key, list,
               s ? s : luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  return s; /* interned in the name table's strings: compare, do not keep */
}

/* Keys a config may hold, and the kinds each applies to (bit per kind). */
static const struct { const char *key; int kinds; bool state; } config_keys[] = {
  {"kind", 7, false}, {"dim", 7, false}, {"init", 7, false}, {"scale", 7, false},
  {"requires_grad", 7, false}, {"num_buckets", 1, false}, {"hash_bucket_size", 2, false},
  {"hash_seed", 2, false}, {"initial_capacity", 4, false}, {"min_count", 4, false},
  {"ttl_steps", 4, false}, {"evict_interval", 4, false}, {"default_row", 4, false},
  /* state_dict entries (from_state only) */
  {"weight", 7, true}, {"ids", 4, true}, {"last_seen", 4, true}, {"step", 4, true},
  {"last_evict", 4, true}, {"pending_ids", 4, true}, {"pending_counts", 4, true}, {"pending_seen", 4, true},
};

/* Reads a table config at idx into cfg (default_row goes into row, which
 * must hold dim floats once dim is known: the caller passes a buffer). */
static void parse_config(lua_State *L, int idx, mtl_embedding_config *cfg, bool with_state, bool *requires_grad,
                         float **row, const char *fname) {
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: expected a table of options {dim = ..., num_buckets | hash_bucket_size | kind = "
               "'dynamic', ...}, got %s", fname, luaL_typename(L, idx));
  memset(cfg, 0, sizeof *cfg);
  /* the kind: explicit, or from the size option given */
  lua_getfield(L, idx, "num_buckets");
  bool has_fixed = !lua_isnil(L, -1);
  lua_getfield(L, idx, "hash_bucket_size");
  bool has_hashed = !lua_isnil(L, -1);
  lua_pop(L, 2);
  const char *kind = opt_name(L, idx, "kind", kind_names, NULL, fname);
  int k = kind ? find_name(kind_names, kind) : has_fixed ? 0 : has_hashed ? 1 : -1;
  if (k < 0)
    luaL_error(L, "%s: give num_buckets (a fixed table), hash_bucket_size (a hashed table) or kind = 'dynamic'",
               fname);
  if (has_fixed && has_hashed)
    luaL_error(L, "%s: num_buckets and hash_bucket_size exclude each other", fname);
  cfg->kind = (mtl_embedding_kind)k;
  /* unknown keys and keys of another kind */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    int found = -1;
    for (size_t i = 0; key && i < sizeof config_keys / sizeof config_keys[0]; i++)
      if (!strcmp(key, config_keys[i].key) && (with_state || !config_keys[i].state)) found = (int)i;
    if (found < 0)
      luaL_error(L, "%s: unknown option '%s'", fname, key ? key : luaL_typename(L, -1));
    if (!(config_keys[found].kinds & (1 << k)))
      luaL_error(L, "%s: option '%s' does not apply to a %s table", fname, key, kind_names[k]);
  }
  cfg->dim = opt_int(L, idx, "dim", -1, 1, fname);
  if (cfg->dim < 1) luaL_error(L, "%s: option 'dim' (the row size) is required", fname);
  if (k == MTL_EMB_FIXED) cfg->num_rows = opt_int(L, idx, "num_buckets", 0, 1, fname);
  if (k == MTL_EMB_HASHED) {
    cfg->num_rows = opt_int(L, idx, "hash_bucket_size", 0, 1, fname);
    cfg->hash_seed = (uint64_t)opt_int(L, idx, "hash_seed", 0, 0, fname);
  }
  cfg->init = (mtl_embedding_init)find_name(init_names, opt_name(L, idx, "init", init_names, "uniform", fname));
  lua_getfield(L, idx, "scale");
  if (lua_isnil(L, -1)) cfg->scale = 0.05;
  else if (lua_type(L, -1) != LUA_TNUMBER)
    luaL_error(L, "%s: option 'scale' must be a number, got %s", fname, luaL_typename(L, -1));
  else cfg->scale = lua_tonumber(L, -1);
  lua_pop(L, 1);
  cfg->initial_capacity = opt_int(L, idx, "initial_capacity", 1024, 1, fname);
  cfg->min_count = opt_int(L, idx, "min_count", 1, 1, fname);
  cfg->ttl_steps = opt_int(L, idx, "ttl_steps", 0, 0, fname);
  cfg->evict_interval = opt_int(L, idx, "evict_interval", 0, 0, fname);
  lua_getfield(L, idx, "requires_grad");
  *requires_grad = lua_isnil(L, -1) ? true : lua_toboolean(L, -1);
  lua_pop(L, 1);
  lua_getfield(L, idx, "default_row"); /* left on the stack, with its buffer */
  if (!lua_isnil(L, -1)) {
    int v = lua_gettop(L);
    if (cfg->dim > (1 << 20)) luaL_error(L, "%s: dim must be in 1..%d, got %d", fname, 1 << 20, (int)cfg->dim);
    *row = lua_newuserdata(L, (size_t)cfg->dim * sizeof(float)); /* scratch owned by the GC */
    check_floats(L, v, cfg->dim, *row, fname, "default_row");
    cfg->default_row = *row;
  }
}

/* ---- state ----------------------------------------------------------------------- */
static mtl_tensor *field_tensor(lua_State *L, int idx, const char *key, bool required, const char *fname) {
  lua_getfield(L, idx, key);
  mtl_tensor *t = bind_test_tensor(L, -1);
  if (!t && (required || !lua_isnil(L, -1)))
    luaL_error(L, "%s: expected a tensor for '%s', got %s", fname, key, luaL_typename(L, -1));
  lua_pop(L, 1); /* the state table keeps it alive */
  return t;
}

/* A contiguous version of a 1-D state tensor (pushed when copied). */
static mtl_tensor *contiguous(lua_State *L, mtl_tensor *t) {
  if (!t || mtl_tensor_is_contiguous(t)) return t;
  mtl_tensor **slot = bind_slot(L);
  bind_fill(L, slot, mtl_tensor_contiguous_data(t));
  return *slot;
}

static int load_state(lua_State *L, mtl_embedding *t, int idx, const char *fname) {
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "kind");
  const char *kind = lua_tostring(L, -1);
  if (!kind || strcmp(kind, mtl_embedding_kind_name(t->cfg.kind)) != 0)
    luaL_error(L, "%s: the state is of a %s table, this table is %s", fname, kind ? kind : "(missing kind)",
               mtl_embedding_kind_name(t->cfg.kind));
  lua_pop(L, 1);
  if (opt_int(L, idx, "dim", -1, 1, fname) != t->cfg.dim)
    luaL_error(L, "%s: the state has dim %d, the table %d", fname, (int)opt_int(L, idx, "dim", -1, 1, fname),
               (int)t->cfg.dim);
  mtl_tensor *w = field_tensor(L, idx, "weight", true, fname);
  mtl_tensor *ids = contiguous(L, field_tensor(L, idx, "ids", t->cfg.kind == MTL_EMB_DYNAMIC, fname));
  mtl_tensor *seen = contiguous(L, field_tensor(L, idx, "last_seen", false, fname));
  mtl_tensor *pids = contiguous(L, field_tensor(L, idx, "pending_ids", false, fname));
  mtl_tensor *pcounts = contiguous(L, field_tensor(L, idx, "pending_counts", false, fname));
  mtl_tensor *pseen = contiguous(L, field_tensor(L, idx, "pending_seen", false, fname));
  int64_t step = opt_int(L, idx, "step", 0, 0, fname);
  int64_t last_evict = opt_int(L, idx, "last_evict", step, 0, fname);
  if (mtl_embedding_load(t, ids, w, seen, pids, pcounts, pseen, step) < 0) return bind_error(L);
  t->last_evict = last_evict;
  return 0;
}

static int l_from_state(lua_State *L) {
  const char *fname = "mtl.Embedding.from_state";
  mtl_embedding_config cfg;
  bool rg;
  float *row = NULL;
  parse_config(L, 1, &cfg, true, &rg, &row, fname);
  mtl_embedding_init init = cfg.init;
  cfg.init = MTL_INIT_ZEROS; /* rows come from the state: draw nothing from the RNG */
  bind_push_embedding(L, mtl_embedding_new(&cfg));
  mtl_embedding *t = bind_test_embedding(L, -1);
  t->cfg.init = init;
  t->requires_grad = rg;
  load_state(L, t, 1, fname);
  return 1;
}

static int l_new(lua_State *L) {
  /* called as mtl.Embedding{...}: argument 1 is the class table */
  mtl_embedding_config cfg;
  bool rg;
  float *row = NULL;
  parse_config(L, 2, &cfg, false, &rg, &row, "mtl.Embedding");
  bind_push_embedding(L, mtl_embedding_new(&cfg));
  bind_test_embedding(L, -1)->requires_grad = rg;
  return 1;
}

/* sd[key] = t (a new reference; the GC owns it) */
static void set_tensor(lua_State *L, int sd, const char *key, mtl_tensor *t) {
  bind_push(L, t);
  lua_setfield(L, sd, key);
}

static void set_int(lua_State *L, const char *key, int64_t v) {
  lua_pushnumber(L, (lua_Number)v);
  lua_setfield(L, -2, key);
}

static int l_state_dict(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "state_dict");
  lua_createtable(L, 0, 20);
  int sd = lua_gettop(L);
  lua_pushstring(L, mtl_embedding_kind_name(t->cfg.kind));
  lua_setfield(L, sd, "kind");
  set_int(L, "dim", t->cfg.dim);
  lua_pushstring(L, init_names[t->cfg.init]);
  lua_setfield(L, sd, "init");
  lua_pushnumber(L, t->cfg.scale);
  lua_setfield(L, sd, "scale");
  lua_pushboolean(L, t->requires_grad);
  lua_setfield(L, sd, "requires_grad");
  if (t->cfg.kind == MTL_EMB_FIXED) set_int(L, "num_buckets", t->cfg.num_rows);
  if (t->cfg.kind == MTL_EMB_HASHED) {
    set_int(L, "hash_bucket_size", t->cfg.num_rows);
    set_int(L, "hash_seed", (int64_t)t->cfg.hash_seed);
  }
  if (t->cfg.kind != MTL_EMB_DYNAMIC) {
    push_tensor(L, mtl_tensor_alias(t->weight)); /* shares the table's memory */
    lua_setfield(L, sd, "weight");
    return 1;
  }
  set_int(L, "initial_capacity", t->cfg.initial_capacity);
  set_int(L, "min_count", t->cfg.min_count);
  set_int(L, "ttl_steps", t->cfg.ttl_steps);
  set_int(L, "evict_interval", t->cfg.evict_interval);
  set_int(L, "step", t->step);
  set_int(L, "last_evict", t->last_evict);
  if (t->default_row) {
    int64_t n = t->cfg.dim;
    mtl_tensor *d = push_tensor(L, mtl_tensor_new(MTL_F32, 1, &n));
    if (!d) return bind_error(L);
    memcpy(mtl_f32(d), t->default_row, (size_t)n * sizeof(float));
    lua_setfield(L, sd, "default_row");
  }
  mtl_tensor *ids;
  int64_t *rows;
  if (mtl_embedding_sorted_rows(t, &ids, &rows) < 0) return bind_error(L);
  set_tensor(L, sd, "ids", ids);
  mtl_tensor *w = mtl_embedding_gather_rows(t, NULL, t->nrows, rows);
  mtl_tensor *seen = mtl_tensor_new(MTL_I64, 1, &t->nrows);
  if (!w || !seen) {
    free(rows);
    mtl_tensor_release(w);
    mtl_tensor_release(seen);
    return bind_error(L);
  }
  for (int64_t k = 0; k < t->nrows; k++) mtl_i64(seen)[k] = t->last_seen[rows[k]];
  free(rows);
  set_tensor(L, sd, "weight", w);
  set_tensor(L, sd, "last_seen", seen);
  mtl_tensor *pids, *pcounts, *pseen;
  if (mtl_embedding_pending(t, &pids, &pcounts, &pseen) < 0) return bind_error(L);
  set_tensor(L, sd, "pending_ids", pids);
  set_tensor(L, sd, "pending_counts", pcounts);
  set_tensor(L, sd, "pending_seen", pseen);
  lua_settop(L, sd);
  return 1;
}

static int l_load_state_dict(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "load_state_dict");
  load_state(L, t, 2, "mtl.Embedding.load_state_dict");
  lua_settop(L, 1);
  return 1;
}

/* ---- lookups -------------------------------------------------------------------------- */
static int l_lookup(lua_State *L) {
  const char *fname = "mtl.Embedding.lookup";
  lua_settop(L, 2); /* converted ids are pushed above the arguments */
  mtl_embedding *t = check_table(L, 1, fname);
  mtl_tensor *ids = check_ids(L, 2, fname, "ids", true);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_embedding_lookup(t, ids));
}

/* t:lookup_bag(ids, offsets[, combiner | {combiner =, weights =, base =}])
 * offsets: the start of each bag. base (default 1) is the position of ids[1]
 * in the offsets' numbering: 1 for Lua positions, 0 for a reader's 0-based
 * offsets, or the first offset of a slice of a larger bag column. */
static int l_lookup_bag(lua_State *L) {
  const char *fname = "mtl.Embedding.lookup_bag";
  lua_settop(L, 4); /* converted ids and offsets are pushed above the arguments */
  mtl_embedding *t = check_table(L, 1, fname);
  mtl_tensor *ids = check_ids(L, 2, fname, "ids", true);
  mtl_tensor *offsets = check_ids(L, 3, fname, "offsets", false);
  mtl_tensor *weights = NULL;
  const char *comb = "mean";
  int64_t base = 1;
  if (lua_type(L, 4) == LUA_TSTRING) {
    comb = lua_tostring(L, 4);
  } else if (lua_istable(L, 4)) {
    lua_pushnil(L);
    while (lua_next(L, 4)) {
      lua_pop(L, 1);
      const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
      if (strcmp(key, "combiner") != 0 && strcmp(key, "weights") != 0 && strcmp(key, "base") != 0)
        luaL_error(L, "%s: unknown option '%s' (expected combiner, weights, base)", fname, key);
    }
    lua_getfield(L, 4, "combiner");
    if (!lua_isnil(L, -1)) {
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s: combiner must be 'sum', 'mean' or 'sqrtn', got %s", fname, luaL_typename(L, -1));
      comb = lua_tostring(L, -1);
    }
    lua_getfield(L, 4, "weights");
    if (!lua_isnil(L, -1) && !(weights = bind_test_tensor(L, -1)))
      luaL_error(L, "%s: weights must be a float32 tensor, got %s", fname, luaL_typename(L, -1));
    /* both stay on the stack (alive) until return */
    lua_getfield(L, 4, "base");
    if (!lua_isnil(L, -1)) {
      double b = lua_tonumber(L, -1);
      if (!lua_isnumber(L, -1) || b != floor(b) || b < 0 || b > MAX_EXACT)
        luaL_error(L, "%s: base must be a non-negative integer", fname);
      base = (int64_t)b;
    }
  } else if (!lua_isnoneornil(L, 4)) {
    luaL_error(L, "%s: expected a combiner name or an options table for argument 4, got %s", fname,
               luaL_typename(L, 4));
  }
  int c = find_name(combiner_names, comb);
  if (c < 0) luaL_error(L, "%s: combiner must be 'sum', 'mean' or 'sqrtn', got '%s'", fname, comb);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_embedding_bag(t, ids, offsets, base, weights, (mtl_combiner)c));
}

/* ---- inspection -------------------------------------------------------------------------- */
static int l_rows(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_table(L, 1, "rows")->nrows);
  return 1;
}

static int l_dim(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_table(L, 1, "dim")->cfg.dim);
  return 1;
}

static int l_size(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "size");
  lua_createtable(L, 2, 0);
  lua_pushnumber(L, (lua_Number)t->nrows);
  lua_rawseti(L, -2, 1);
  lua_pushnumber(L, (lua_Number)t->cfg.dim);
  lua_rawseti(L, -2, 2);
  return 1;
}

static int l_kind(lua_State *L) {
  lua_pushstring(L, mtl_embedding_kind_name(check_table(L, 1, "kind")->cfg.kind));
  return 1;
}

static int l_capacity(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_table(L, 1, "capacity")->row_cap);
  return 1;
}

/* Raises the range error of a fixed table in fname's name. */
static void check_fixed_id(lua_State *L, mtl_embedding *t, int64_t id, const char *fname) {
  if (t->cfg.kind == MTL_EMB_FIXED && (id < 0 || id >= t->cfg.num_rows)) {
    char msg[200]; /* lua_pushfstring has no %lld */
    snprintf(msg, sizeof msg, "%s: id %lld out of range for a fixed table of %lld rows (valid ids: 0..%lld)",
             fname, (long long)id, (long long)t->cfg.num_rows, (long long)t->cfg.num_rows - 1);
    luaL_error(L, "%s", msg);
  }
}

/* t:get(id) -> [dim] copy of the row, or nil when a dynamic table has no row for id */
static int l_get(lua_State *L) {
  const char *fname = "mtl.Embedding.get";
  mtl_embedding *t = check_table(L, 1, fname);
  int64_t id = check_id(L, 2, fname, 0);
  check_fixed_id(L, t, id, fname);
  int64_t row = mtl_embedding_find(t, id);
  if (row < 0) {
    lua_pushnil(L);
    return 1;
  }
  int64_t dim = t->cfg.dim;
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *v = mtl_tensor_new(MTL_F32, 1, &dim);
  if (v) memcpy(mtl_f32(v), mtl_embedding_row(t, row), (size_t)dim * sizeof(float));
  return bind_fill(L, slot, v);
}

static int l_has(lua_State *L) {
  const char *fname = "mtl.Embedding.has";
  mtl_embedding *t = check_table(L, 1, fname);
  int64_t id = check_id(L, 2, fname, 0);
  bool has = t->cfg.kind == MTL_EMB_FIXED ? id >= 0 && id < t->cfg.num_rows : mtl_embedding_find(t, id) >= 0;
  lua_pushboolean(L, has);
  return 1;
}

/* t:set(id, values): writes a row (a dynamic table creates it, bypassing min_count). */
static int l_set(lua_State *L) {
  const char *fname = "mtl.Embedding.set";
  mtl_embedding *t = check_table(L, 1, fname);
  int64_t id = check_id(L, 2, fname, 0);
  check_fixed_id(L, t, id, fname);
  int64_t dim = t->cfg.dim;
  float *buf = lua_newuserdata(L, (size_t)dim * sizeof *buf);
  check_floats(L, 3, dim, buf, fname, "values");
  int64_t row = mtl_embedding_insert(t, id);
  if (row < 0) {
    mtl_error_prefix(fname);
    return bind_error(L);
  }
  memcpy(mtl_embedding_row(t, row), buf, (size_t)dim * sizeof *buf);
  lua_settop(L, 1);
  return 1;
}

/* t:export() -> ids int64 [n], vectors [n, dim], sorted by id */
static int l_export(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "export");
  mtl_tensor *ids;
  int64_t *rows;
  if (mtl_embedding_sorted_rows(t, &ids, &rows) < 0) return bind_error(L);
  bind_push(L, ids);
  mtl_tensor *v = mtl_embedding_gather_rows(t, NULL, t->nrows, rows);
  free(rows);
  bind_push(L, v);
  return 2;
}

/* t:weight() -> the [rows, dim] weight of a fixed or hashed table (shares memory) */
static int l_weight(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "weight");
  if (t->cfg.kind == MTL_EMB_DYNAMIC)
    return luaL_error(L, "mtl.Embedding.weight: a dynamic table has no fixed row order; use export()");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_tensor_alias(t->weight));
}

/* t:grad() -> ids int64 [nnz] (sorted), values [nnz, dim]; or nil */
static int l_grad(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "grad");
  if (t->g_nnz == 0) {
    lua_pushnil(L);
    return 1;
  }
  if (mtl_embedding_grad_coalesce(t) < 0) return bind_error(L);
  int64_t n = t->g_nnz, shape[2] = {n, t->cfg.dim};
  mtl_tensor *ids = push_tensor(L, mtl_tensor_new(MTL_I64, 1, &n));
  mtl_tensor *vals = push_tensor(L, mtl_tensor_new(MTL_F32, 2, shape));
  if (!ids || !vals) return bind_error(L);
  for (int64_t k = 0; k < n; k++) mtl_i64(ids)[k] = mtl_embedding_row_id(t, t->g_rows[k]);
  memcpy(mtl_f32(vals), t->g_vals, (size_t)(n * t->cfg.dim) * sizeof(float));
  return 2;
}

/* t:add_grad(ids, values): adds sparse gradient entries (mtl_embedding_grad_add). */
static int l_add_grad(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "add_grad");
  mtl_tensor *ids = bind_check_tensor(L, 2, "mtl.Embedding.add_grad");
  mtl_tensor *values = bind_check_tensor(L, 3, "mtl.Embedding.add_grad");
  if (mtl_embedding_grad_add(t, ids, values) < 0) return bind_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_zero_grad(lua_State *L) {
  mtl_embedding_zero_grad(check_table(L, 1, "zero_grad"));
  return 0;
}

static int l_train(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "train");
  t->training = lua_isnoneornil(L, 2) ? true : lua_toboolean(L, 2);
  lua_settop(L, 1);
  return 1;
}

static int l_eval(lua_State *L) {
  check_table(L, 1, "eval")->training = false;
  lua_settop(L, 1);
  return 1;
}

static int l_training(lua_State *L) {
  lua_pushboolean(L, check_table(L, 1, "training")->training);
  return 1;
}

static int l_requires_grad(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "requires_grad");
  if (lua_isnone(L, 2)) {
    lua_pushboolean(L, t->requires_grad);
    return 1;
  }
  t->requires_grad = lua_toboolean(L, 2);
  if (!t->requires_grad) mtl_embedding_zero_grad(t);
  lua_settop(L, 1);
  return 1;
}

static int l_tick(lua_State *L) {
  int64_t n = mtl_embedding_tick(check_table(L, 1, "tick"));
  if (n < 0) return bind_error(L);
  lua_pushnumber(L, (lua_Number)n);
  return 1;
}

static int l_evict(lua_State *L) {
  int64_t n = mtl_embedding_evict(check_table(L, 1, "evict"));
  if (n < 0) return bind_error(L);
  lua_pushnumber(L, (lua_Number)n);
  return 1;
}

static int l_steps(lua_State *L) {
  lua_pushnumber(L, (lua_Number)check_table(L, 1, "steps")->step);
  return 1;
}

static int l_tostring(lua_State *L) {
  mtl_embedding *t = check_table(L, 1, "tostring");
  if (t->cfg.kind == MTL_EMB_DYNAMIC)
    lua_pushfstring(L, "mtl.Embedding(dynamic, %d rows x %d, capacity %d)", (int)t->nrows, (int)t->cfg.dim,
                    (int)t->row_cap);
  else
    lua_pushfstring(L, "mtl.Embedding(%s, %d x %d)", mtl_embedding_kind_name(t->cfg.kind), (int)t->nrows,
                    (int)t->cfg.dim);
  return 1;
}

static int l_gc(lua_State *L) {
  mtl_embedding **ud = luaL_checkudata(L, 1, BIND_EMBEDDING_MT);
  mtl_embedding_release(*ud);
  *ud = NULL;
  return 0;
}

static int l_is(lua_State *L) {
  lua_pushboolean(L, bind_test_embedding(L, 1) != NULL);
  return 1;
}

void bind_embedding_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg meths[] = {
    {"lookup", l_lookup}, {"lookup_bag", l_lookup_bag}, {"rows", l_rows}, {"dim", l_dim},
    {"size", l_size}, {"kind", l_kind}, {"capacity", l_capacity}, {"get", l_get}, {"has", l_has},
    {"set", l_set}, {"export", l_export}, {"weight", l_weight}, {"grad", l_grad}, {"add_grad", l_add_grad},
    {"zero_grad", l_zero_grad}, {"train", l_train}, {"eval", l_eval}, {"training", l_training},
    {"requires_grad", l_requires_grad}, {"tick", l_tick}, {"evict", l_evict}, {"steps", l_steps},
    {"state_dict", l_state_dict}, {"load_state_dict", l_load_state_dict}, {NULL, NULL},
  };
  luaL_newmetatable(L, BIND_EMBEDDING_MT); /* reused on module reload */
  int mt = lua_gettop(L);
  lua_getfield(L, mt, "__index");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__index");
  }
  int m = lua_gettop(L);
  luaL_register(L, NULL, meths);
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, mt, "__gc");
  lua_pushcfunction(L, l_tostring);
  lua_setfield(L, mt, "__tostring");
  lua_pushstring(L, "mtl.Embedding"); /* checkpoints store it as this type (loader: from_state) */
  lua_setfield(L, mt, "__typename");
  /* mtl.Embedding: callable class table with from_state, is and the methods */
  static const luaL_Reg class_fns[] = {{"from_state", l_from_state}, {"is", l_is}, {NULL, NULL}};
  lua_newtable(L);
  int cls = lua_gettop(L);
  luaL_register(L, NULL, class_fns);
  lua_pushvalue(L, m);
  lua_setfield(L, cls, "methods");
  lua_newtable(L);
  lua_pushcfunction(L, l_new);
  lua_setfield(L, -2, "__call");
  lua_setmetatable(L, cls);
  lua_setfield(L, mod, "Embedding");
  lua_settop(L, mt - 1);
}
