/* mtl.core: the Tensor userdata, constructors, inspection, autograd entry
 * points, and the module's luaopen. Runtime settings (threads, seed, memory,
 * the GC policy, Ctrl-C) are in bind_runtime.c. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"

/* ---- helpers -------------------------------------------------------------- */
int bind_error(lua_State *L) { return luaL_error(L, "%s", mtl_error_message()); }

int bind_errorf(lua_State *L, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return luaL_error(L, "%s", buf);
}

mtl_tensor *bind_test_tensor(lua_State *L, int idx) {
  mtl_tensor **ud = luaL_testudata(L, idx, BIND_TENSOR_MT);
  return ud ? *ud : NULL;
}

mtl_tensor *bind_check_tensor(lua_State *L, int idx, const char *fname) {
  mtl_tensor **ud = luaL_testudata(L, idx, BIND_TENSOR_MT);
  if (!ud || !*ud)
    luaL_error(L, "%s: expected a tensor for argument %d, got %s", fname, idx, luaL_typename(L, idx));
  return *ud;
}

mtl_tensor *bind_opt_tensor(lua_State *L, int idx, const char *fname) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return bind_check_tensor(L, idx, fname);
}

mtl_tensor **bind_slot(lua_State *L) {
  mtl_tensor **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, BIND_TENSOR_MT);
  lua_setmetatable(L, -2);
  return ud;
}

int bind_fill(lua_State *L, mtl_tensor **slot, mtl_tensor *t) {
  if (!t) return bind_error(L);
  *slot = t; /* owned by the userdata from here, even if we raise below */
  bind_track(L);
  return 1;
}

int bind_push(lua_State *L, mtl_tensor *t) {
  if (!t) return bind_error(L);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, t); /* from here the GC owns the reference */
}

int bind_replace_tensor(lua_State *L, int idx, mtl_tensor *t) {
  mtl_tensor **ud = luaL_testudata(L, idx, BIND_TENSOR_MT);
  if (!ud || !*ud || !t || (*ud)->dtype != t->dtype || (*ud)->ndim != t->ndim) return -1;
  for (int i = 0; i < t->ndim; i++)
    if ((*ud)->shape[i] != t->shape[i]) return -1;
  mtl_tensor *own = *ud;
  mtl_tensor_retain(t);
  *ud = t;
  mtl_tensor_release(own);
  return 0;
}

int bind_check_dim(lua_State *L, int idx, int ndim, const char *fname) {
  lua_Integer d = luaL_checkinteger(L, idx);
  lua_Integer z = d < 0 ? d + ndim : d - 1;
  if (ndim == 0) luaL_error(L, "%s: a 0-dimensional tensor has no dimension %d", fname, (int)d);
  if (d == 0 || z < 0 || z >= ndim)
    luaL_error(L, "%s: dimension %d out of range (expected 1..%d or -%d..-1)", fname, (int)d, ndim, ndim);
  return (int)z;
}

int bind_check_shape(lua_State *L, int idx, int64_t *shape, const char *fname) {
  int n = 0;
  if (lua_istable(L, idx)) {
    n = (int)lua_objlen(L, idx);
    if (n > MTL_MAX_DIMS) luaL_error(L, "%s: at most %d dimensions, got %d", fname, MTL_MAX_DIMS, n);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, idx, i + 1);
      if (!lua_isnumber(L, -1))
        luaL_error(L, "%s: shape entry %d must be a number, got %s", fname, i + 1, luaL_typename(L, -1));
      double v = lua_tonumber(L, -1);
      if (v != floor(v) || v < -1 || v > 9e18)
        luaL_error(L, "%s: shape entry %d must be a non-negative integer, got %g", fname, i + 1, v);
      shape[i] = (int64_t)v;
      lua_pop(L, 1);
    }
    return n;
  }
  int top = lua_gettop(L);
  for (int i = idx; i <= top; i++) {
    if (!lua_isnumber(L, i)) break;
    if (n == MTL_MAX_DIMS) luaL_error(L, "%s: at most %d dimensions", fname, MTL_MAX_DIMS);
    double v = lua_tonumber(L, i);
    if (v != floor(v) || v < -1 || v > 9e18)
      luaL_error(L, "%s: size %d must be a non-negative integer, got %g", fname, n + 1, v);
    shape[n++] = (int64_t)v;
  }
  return n;
}

void bind_register(lua_State *L, int mod, int methods, const char *name, lua_CFunction f) {
  lua_pushcfunction(L, f);
  lua_setfield(L, mod, name);
  if (methods) {
    lua_pushcfunction(L, f);
    lua_setfield(L, methods, name);
  }
}

void bind_register_list(lua_State *L, int mod, int methods, const luaL_Reg *list) {
  for (const luaL_Reg *r = list; r->name; r++) bind_register(L, mod, methods, r->name, r->func);
}

void bind_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                    lua_CFunction tostring) {
  luaL_newmetatable(L, name);
  lua_newtable(L);
  luaL_register(L, NULL, methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, gc);
  lua_setfield(L, -2, "__gc");
  if (tostring) {
    lua_pushcfunction(L, tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

static mtl_dtype check_dtype(lua_State *L, int idx, mtl_dtype def, const char *fname) {
  if (lua_isnoneornil(L, idx)) return def;
  const char *s = luaL_checkstring(L, idx);
  if (!strcmp(s, "float32") || !strcmp(s, "float")) return MTL_F32;
  if (!strcmp(s, "int64") || !strcmp(s, "long")) return MTL_I64;
  luaL_error(L, "%s: unknown dtype '%s' (expected 'float32' or 'int64')", fname, s);
  return MTL_F32;
}

/* ---- construction from nested tables ------------------------------------- */
/* Walks a nested table once to find its shape, checking it is rectangular. */
static void table_shape(lua_State *L, int idx, int depth, int *ndim, int64_t *shape, int *first) {
  int64_t n = (int64_t)lua_objlen(L, idx);
  if (*first) {
    if (depth >= MTL_MAX_DIMS) luaL_error(L, "mtl.tensor: nesting deeper than %d levels", MTL_MAX_DIMS);
    shape[depth] = n;
    *ndim = depth + 1;
  } else if (depth >= *ndim || shape[depth] != n) {
    luaL_error(L, "mtl.tensor: the nested table is not rectangular (level %d)", depth + 1);
  }
  if (n == 0) { *first = 0; return; }
  lua_rawgeti(L, idx, 1);
  int sub = lua_istable(L, -1);
  lua_pop(L, 1);
  if (!sub) {
    if (depth + 1 < *ndim && !*first)
      luaL_error(L, "mtl.tensor: the nested table is not rectangular (level %d)", depth + 1);
    *first = 0;
    return;
  }
  for (int64_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (!lua_istable(L, -1))
      luaL_error(L, "mtl.tensor: the nested table is not rectangular (level %d, entry %d)", depth + 1, (int)i);
    table_shape(L, lua_gettop(L), depth + 1, ndim, shape, first);
    lua_pop(L, 1);
  }
}

static void table_fill(lua_State *L, int idx, int depth, int ndim, mtl_tensor *t, int64_t *pos) {
  int64_t n = t->shape[depth];
  for (int64_t i = 1; i <= n; i++) {
    lua_rawgeti(L, idx, (int)i);
    if (depth + 1 < ndim) {
      if (!lua_istable(L, -1))
        luaL_error(L, "mtl.tensor: the nested table is not rectangular (level %d)", depth + 1);
      table_fill(L, lua_gettop(L), depth + 1, ndim, t, pos);
    } else {
      int ok = lua_isnumber(L, -1) || lua_isboolean(L, -1);
      if (!ok)
        luaL_error(L, "mtl.tensor: expected a number at element %d, got %s", (int)(*pos + 1),
                   luaL_typename(L, -1));
      double v = lua_isboolean(L, -1) ? lua_toboolean(L, -1) : lua_tonumber(L, -1);
      if (t->dtype == MTL_F32) mtl_f32(t)[*pos] = (float)v;
      else {
        if (v != floor(v) || fabs(v) > 9.2e18)
          luaL_error(L, "mtl.tensor: int64 tensor needs integers, got %g at element %d", v, (int)(*pos + 1));
        mtl_i64(t)[*pos] = (int64_t)v;
      }
      (*pos)++;
    }
    lua_pop(L, 1);
  }
}

static int l_tensor(lua_State *L) {
  mtl_dtype dt = check_dtype(L, 2, MTL_F32, "mtl.tensor");
  if (lua_isnumber(L, 1)) { /* a scalar: 0-dim tensor */
    mtl_tensor **slot = bind_slot(L);
    mtl_tensor *t = mtl_tensor_new(dt, 0, NULL);
    if (t) mtl_tensor_fill(t, lua_tonumber(L, 1));
    return bind_fill(L, slot, t);
  }
  if (bind_test_tensor(L, 1)) { /* copy of a tensor */
    mtl_tensor *src = bind_test_tensor(L, 1);
    if (lua_isnoneornil(L, 2)) dt = src->dtype;
    mtl_tensor **slot = bind_slot(L);
    mtl_tensor *t = mtl_tensor_new(dt, src->ndim, src->shape);
    if (t) mtl_tensor_copy_into(t, src);
    return bind_fill(L, slot, t);
  }
  if (!lua_istable(L, 1))
    return luaL_error(L, "mtl.tensor: expected a (nested) table of numbers, got %s", luaL_typename(L, 1));
  int ndim = 0, first = 1;
  int64_t shape[MTL_MAX_DIMS];
  table_shape(L, 1, 0, &ndim, shape, &first);
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *t = mtl_tensor_new(dt, ndim, shape);
  if (!t) return bind_error(L);
  *slot = t;
  int64_t pos = 0;
  table_fill(L, 1, 0, ndim, t, &pos);
  bind_track(L);
  return 1;
}

/* zeros/ones/full/rand/randn(shape..., [dtype]) */
typedef enum { FILL_ZEROS, FILL_ONES, FILL_FULL, FILL_RAND, FILL_RANDN } fill_kind;

static int make_filled(lua_State *L, const char *fname, fill_kind kind) {
  int64_t shape[MTL_MAX_DIMS];
  int ndim, next;
  double value = kind == FILL_ONES ? 1.0 : 0.0;
  if (kind == FILL_FULL && !lua_istable(L, 1)) {
    /* full(sizes..., value[, dtype]): the last number is the value */
    int top = lua_gettop(L), last = top;
    if (lua_type(L, last) == LUA_TSTRING) last--;
    if (last < 1 || !lua_isnumber(L, last)) return luaL_error(L, "%s: expected (sizes..., value[, dtype])", fname);
    value = lua_tonumber(L, last);
    lua_pushvalue(L, last); /* keep the value; the shape is read from the numbers before it */
    lua_remove(L, last);
    lua_insert(L, 1);       /* stack: value, sizes..., [dtype] */
    ndim = bind_check_shape(L, 2, shape, fname);
    next = ndim + 2;
  } else {
    ndim = bind_check_shape(L, 1, shape, fname);
    next = lua_istable(L, 1) ? 2 : ndim + 1;
    if (kind == FILL_FULL) { /* full({sizes}, value[, dtype]) */
      value = luaL_checknumber(L, next);
      next++;
    }
  }
  mtl_dtype dt = check_dtype(L, next, MTL_F32, fname);
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) return luaL_error(L, "%s: size %d must be >= 0, got %d", fname, i + 1, (int)shape[i]);
  mtl_tensor **slot = bind_slot(L);
  if (kind == FILL_RAND) return bind_fill(L, slot, mtl_tensor_rand(dt, ndim, shape));
  if (kind == FILL_RANDN) return bind_fill(L, slot, mtl_tensor_randn(dt, ndim, shape));
  mtl_tensor *t = mtl_tensor_new_named(fname, dt, ndim, shape);
  if (t) mtl_tensor_fill(t, value);
  return bind_fill(L, slot, t);
}

static int l_zeros(lua_State *L) { return make_filled(L, "mtl.zeros", FILL_ZEROS); }
static int l_ones(lua_State *L) { return make_filled(L, "mtl.ones", FILL_ONES); }
static int l_full(lua_State *L) { return make_filled(L, "mtl.full", FILL_FULL); }
static int l_rand(lua_State *L) { return make_filled(L, "mtl.rand", FILL_RAND); }
static int l_randn(lua_State *L) { return make_filled(L, "mtl.randn", FILL_RANDN); }

/* arange(n) = 0..n-1; arange(a, b[, step]) = a, a+step, ... < b */
static int l_arange(lua_State *L) {
  double a = 0, b, step = 1;
  int top = lua_gettop(L), nnum = 0;
  for (int i = 1; i <= top && i <= 3 && lua_isnumber(L, i); i++) nnum++;
  if (nnum == 0) return luaL_error(L, "mtl.arange: expected (n) or (start, stop[, step])");
  if (nnum == 1) b = lua_tonumber(L, 1);
  else { a = lua_tonumber(L, 1); b = lua_tonumber(L, 2); if (nnum > 2) step = lua_tonumber(L, 3); }
  mtl_dtype dt = check_dtype(L, nnum + 1, MTL_F32, "mtl.arange");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_tensor_arange(a, b, step, dt));
}

/* ---- inspection ------------------------------------------------------------ */
static int l_gc(lua_State *L) {
  mtl_tensor **ud = luaL_checkudata(L, 1, BIND_TENSOR_MT);
  if (*ud) mtl_tensor_release(*ud);
  *ud = NULL;
  return 0;
}

/* Pushes the n sizes (a shape or strides) as a list of numbers. */
static int push_sizes(lua_State *L, const int64_t *sizes, int n) {
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushnumber(L, (lua_Number)sizes[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

static int l_shape(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "shape");
  return push_sizes(L, t->shape, t->ndim);
}

static int l_stride(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "stride");
  return push_sizes(L, t->stride, t->ndim);
}

static int l_dim(lua_State *L) {
  lua_pushinteger(L, bind_check_tensor(L, 1, "dim")->ndim);
  return 1;
}

static int l_size(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "size");
  if (lua_isnoneornil(L, 2)) return l_shape(L);
  int d = bind_check_dim(L, 2, t->ndim, "size");
  lua_pushnumber(L, (lua_Number)t->shape[d]);
  return 1;
}

static int l_numel(lua_State *L) {
  lua_pushnumber(L, (lua_Number)bind_check_tensor(L, 1, "numel")->numel);
  return 1;
}

static int l_dtype(lua_State *L) {
  lua_pushstring(L, mtl_dtype_name(bind_check_tensor(L, 1, "dtype")->dtype));
  return 1;
}

static void check_index(lua_State *L, mtl_tensor *t, int first, const char *fname, int64_t *idx) {
  int nidx = lua_gettop(L) - first + 1;
  if (!strcmp(fname, "set")) nidx--; /* last argument is the value */
  if (nidx != t->ndim)
    luaL_error(L, "%s: expected %d indices for a %d-dimensional tensor, got %d", fname, t->ndim, t->ndim, nidx);
  for (int i = 0; i < t->ndim; i++) {
    double v = luaL_checknumber(L, first + i);
    if (v != floor(v))
      luaL_error(L, "%s: index %d must be an integer, got %g", fname, i + 1, v);
    lua_Integer k = (v < -1e15 || v > 1e15) ? 0 : (lua_Integer)v;
    if (k < 1 || k > t->shape[i])
      luaL_error(L, "%s: index %d out of range for dimension %d (expected 1..%d)", fname, (int)k, i + 1,
                 (int)t->shape[i]);
    idx[i] = k - 1;
  }
}

static int l_get(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "get");
  int64_t idx[MTL_MAX_DIMS];
  check_index(L, t, 2, "get", idx);
  lua_pushnumber(L, mtl_tensor_get_at(t, idx));
  return 1;
}

static int l_set(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "set");
  int64_t idx[MTL_MAX_DIMS];
  check_index(L, t, 2, "set", idx);
  double v = luaL_checknumber(L, lua_gettop(L));
  if (t->node || (t->requires_grad && mtl_grad_enabled()))
    return luaL_error(L, "set: cannot write into a tensor that requires a gradient (use mtl.no_grad)");
  mtl_tensor_set_at(t, idx, v);
  lua_settop(L, 1);
  return 1;
}

/* Flat (row-major position, 1-based) access, for tests and tools. */
static int64_t check_flat(lua_State *L, mtl_tensor *t, const char *fname, int64_t *idx) {
  lua_Integer k = luaL_checkinteger(L, 2);
  if (k < 1 || k > t->numel)
    luaL_error(L, "%s: index %d out of range (expected 1..%d)", fname, (int)k, (int)t->numel);
  int64_t r = k - 1;
  for (int i = t->ndim - 1; i >= 0; i--) {
    idx[i] = r % t->shape[i];
    r /= t->shape[i];
  }
  return k - 1;
}

static int l_get_flat(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "get_flat");
  int64_t idx[MTL_MAX_DIMS];
  check_flat(L, t, "get_flat", idx);
  lua_pushnumber(L, mtl_tensor_get_at(t, idx));
  return 1;
}

static int l_set_flat(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "set_flat");
  int64_t idx[MTL_MAX_DIMS];
  check_flat(L, t, "set_flat", idx);
  double v = luaL_checknumber(L, 3);
  if (t->node || (t->requires_grad && mtl_grad_enabled()))
    return luaL_error(L, "set_flat: cannot write into a tensor that requires a gradient (use mtl.no_grad)");
  mtl_tensor_set_at(t, idx, v);
  return 0;
}

static int l_item(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "item");
  if (t->numel != 1) {
    char s[128];
    return luaL_error(L, "item: expected a tensor with one element, got %s", mtl_shape_str(t, s, sizeof s));
  }
  int64_t idx[MTL_MAX_DIMS] = {0};
  lua_pushnumber(L, mtl_tensor_get_at(t, idx));
  return 1;
}

/* Flat values (row-major) as a Lua array; the Lua side nests them. */
static int l_values(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "values");
  if (t->numel > 100000000) return luaL_error(L, "values: tensor too large for a Lua table");
  mtl_tensor *c = mtl_tensor_contiguous_data(t);
  if (!c) return bind_error(L);
  lua_createtable(L, (int)t->numel, 0);
  for (int64_t i = 0; i < t->numel; i++) {
    lua_pushnumber(L, t->dtype == MTL_F32 ? (lua_Number)mtl_f32(c)[i] : (lua_Number)mtl_i64(c)[i]);
    lua_rawseti(L, -2, (int)i + 1);
  }
  mtl_tensor_release(c);
  return 1;
}

static int l_clone(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "clone");
  mtl_tensor **slot = bind_slot(L);
  mtl_tensor *c = mtl_tensor_new(t->dtype, t->ndim, t->shape);
  if (c) mtl_tensor_copy_into(c, t);
  return bind_fill(L, slot, c);
}

static int l_float(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "float");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_to_dtype(t, MTL_F32));
}

static int l_long(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "long");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_to_dtype(t, MTL_I64));
}

static int l_fill(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "fill");
  double v = luaL_checknumber(L, 2);
  if (t->node || (t->requires_grad && mtl_grad_enabled()))
    return luaL_error(L, "fill: cannot write into a tensor that requires a gradient (use mtl.no_grad)");
  mtl_tensor_fill(t, v);
  lua_settop(L, 1);
  return 1;
}

/* copy(dst, src): values of src into dst (same number of elements). */
static int l_copy(lua_State *L) {
  mtl_tensor *d = bind_check_tensor(L, 1, "copy"), *s = bind_check_tensor(L, 2, "copy");
  if (d->node || (d->requires_grad && mtl_grad_enabled()))
    return luaL_error(L, "copy: cannot write into a tensor that requires a gradient (use mtl.no_grad)");
  if (mtl_tensor_copy_into(d, s) < 0) return bind_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_is_contiguous(lua_State *L) {
  lua_pushboolean(L, mtl_tensor_is_contiguous(bind_check_tensor(L, 1, "is_contiguous")));
  return 1;
}

/* t:checksum(): the low 52 bits of the core's XXH3 checksum (an exact Lua
 * number): equal tensors give equal numbers, whatever their layout. */
static int l_checksum(lua_State *L) {
  uint64_t h = mtl_tensor_checksum(bind_check_tensor(L, 1, "checksum"));
  lua_pushnumber(L, (lua_Number)(h & (((uint64_t)1 << 52) - 1)));
  return 1;
}

/* Address of the first element (for LuaJIT FFI users and tests of sharing). */
static int l_data_ptr(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "data_ptr");
  lua_pushlightuserdata(L, (char *)t->storage->data + t->offset * (int64_t)mtl_dtype_size(t->dtype));
  return 1;
}

/* ---- autograd -------------------------------------------------------------- */
static int l_requires_grad(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "requires_grad");
  if (lua_isnone(L, 2)) {
    lua_pushboolean(L, t->requires_grad);
    return 1;
  }
  if (mtl_tensor_set_requires_grad(t, lua_toboolean(L, 2)) < 0) return bind_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_grad(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "grad");
  if (!t->grad) {
    lua_pushnil(L);
    return 1;
  }
  mtl_tensor_retain(t->grad);
  return bind_push(L, t->grad);
}

static int l_zero_grad(lua_State *L) {
  mtl_tensor_zero_grad(bind_check_tensor(L, 1, "zero_grad"));
  return 0;
}

static int l_backward(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "backward");
  mtl_tensor *g = bind_opt_tensor(L, 2, "backward");
  if (mtl_backward(t, g) < 0) return bind_error(L);
  return 0;
}

static int l_detach(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "detach");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_detach(t));
}

static int l_is_leaf(lua_State *L) {
  lua_pushboolean(L, bind_check_tensor(L, 1, "is_leaf")->node == NULL);
  return 1;
}

static int l_grad_fn(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "grad_fn");
  if (!t->node) lua_pushnil(L);
  else lua_pushstring(L, mtl_op_name(t->node->op));
  return 1;
}

static int l_set_grad_enabled(lua_State *L) {
  lua_pushboolean(L, mtl_grad_enabled());
  mtl_set_grad_enabled(lua_toboolean(L, 1));
  return 1;
}

void bind_tensor_open(lua_State *L, int mod, int methods) {
  static const luaL_Reg fns[] = {
    {"tensor", l_tensor}, {"zeros", l_zeros}, {"ones", l_ones}, {"full", l_full},
    {"rand", l_rand}, {"randn", l_randn}, {"arange", l_arange}, {"set_grad_enabled", l_set_grad_enabled},
    {NULL, NULL},
  };
  bind_register_list(L, mod, 0, fns);
  static const luaL_Reg meths[] = {
    {"shape", l_shape}, {"stride", l_stride}, {"dim", l_dim}, {"size", l_size},
    {"numel", l_numel}, {"dtype", l_dtype}, {"get", l_get}, {"set", l_set}, {"item", l_item},
    {"get_flat", l_get_flat}, {"set_flat", l_set_flat},
    {"values", l_values}, {"clone", l_clone}, {"float", l_float}, {"long", l_long},
    {"fill", l_fill}, {"copy", l_copy}, {"is_contiguous", l_is_contiguous}, {"data_ptr", l_data_ptr},
    {"checksum", l_checksum},
    {"requires_grad", l_requires_grad}, {"get_grad", l_grad}, {"zero_grad", l_zero_grad},
    {"backward", l_backward}, {"detach", l_detach}, {"is_leaf", l_is_leaf}, {"grad_fn", l_grad_fn},
    {NULL, NULL},
  };
  bind_register_list(L, mod, methods, meths);
}

/* luaopen_mtl_core: returns the core table; the methods table is core.Tensor
 * and the metatable core.Tensor_mt (lua/mtl/tensor.lua completes both). */
int luaopen_mtl_core(lua_State *L) {
  lua_newtable(L);
  int mod = lua_gettop(L);
  luaL_newmetatable(L, BIND_TENSOR_MT); /* reused if it exists (module reload) */
  int mt = lua_gettop(L);
  lua_getfield(L, mt, "__methods");
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, mt, "__methods");
  }
  int methods = lua_gettop(L);
  lua_pushvalue(L, methods);
  lua_setfield(L, mt, "__index"); /* lua/mtl/tensor.lua installs a richer __index */
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, mt, "__gc");
  bind_runtime_open(L, mod, methods);
  bind_tensor_open(L, mod, methods);
  bind_ops_open(L, mod, methods);
  bind_shape_open(L, mod, methods);
  bind_nn_open(L, mod, methods);
  bind_checkpoint_open(L, mod, methods);
  bind_embedding_open(L, mod, methods);
  bind_optim_open(L, mod, methods);
  bind_io_open(L, mod, methods);
  bind_metrics_open(L, mod, methods);
  bind_features_open(L, mod, methods);
  bind_stats_open(L, mod, methods);
  bind_dist_open(L, mod, methods);
  lua_pushvalue(L, methods);
  lua_setfield(L, mod, "Tensor");
  lua_pushvalue(L, mt);
  lua_setfield(L, mod, "Tensor_mt");
  lua_settop(L, mod);
  return 1;
}
