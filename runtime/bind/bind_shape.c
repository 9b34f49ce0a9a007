/* Lua binding of the shape and indexing family (runtime/src/ops/shape.c).
 *
 * Dims and positions are 1-based here (negative dims count from the end) and
 * become 0-based before reaching C. Each op is mtl.<op>(t, ...) and
 * t:<op>(...). Conventions chosen for Lua users:
 * - reshape/view/expand/permute take sizes as numbers or one table:
 *   t:reshape(2, -1) == t:reshape{2, -1};
 * - concat/stack take a table of tensors: mtl.concat({a, b}, dim); the method
 *   form a:concat(b, dim) (or a:concat({b, c}, dim)) puts a first, like
 *   Torch7's a:cat(b, dim). dim defaults to 1, as in PyTorch;
 * - split and chunk return a Lua table of tensors (as Torch7's split/chunk
 *   do; PyTorch returns a tuple): local parts = t:split(2, 1); unpack(parts)
 *   gives them as multiple values;
 * - index_select/gather take 1-based int64 index tensors (index_select also a
 *   table of integers); they are converted to 0-based copies here.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bind.h"

/* An integer argument (exact, |v| <= 2^53). */
static int64_t check_int(lua_State *L, int idx, const char *fname, const char *what) {
  if (!lua_isnumber(L, idx))
    luaL_error(L, "%s: expected an integer for %s, got %s", fname, what, luaL_typename(L, idx));
  double v = lua_tonumber(L, idx);
  if (v != floor(v) || fabs(v) > 9007199254740992.0)
    luaL_error(L, "%s: expected an integer for %s, got %g", fname, what, v);
  return (int64_t)v;
}

/* Sizes from idx on: numbers, or one table; nothing else may follow. */
static int check_sizes(lua_State *L, int idx, int64_t *shape, const char *fname) {
  if (!lua_istable(L, idx) && !lua_isnumber(L, idx))
    luaL_error(L, "%s: expected sizes (numbers or a table), got %s", fname, luaL_typename(L, idx));
  int n = bind_check_shape(L, idx, shape, fname);
  int next = lua_istable(L, idx) ? idx + 1 : idx + n;
  if (!lua_isnone(L, next))
    luaL_error(L, "%s: expected sizes (numbers or a table), got %s after them", fname, luaL_typename(L, next));
  return n;
}

/* f(t, sizes...) for reshape and expand */
static int resized(lua_State *L, const char *fname, mtl_tensor *(*f)(mtl_tensor *, int, const int64_t *)) {
  mtl_tensor *a = bind_check_tensor(L, 1, fname);
  int64_t shape[MTL_MAX_DIMS];
  int nd = check_sizes(L, 2, shape, fname);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a, nd, shape));
}

static int l_reshape(lua_State *L) { return resized(L, "mtl.reshape", mtl_reshape); }

static int l_transpose(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.transpose");
  int d0 = bind_check_dim(L, 2, a->ndim, "mtl.transpose");
  int d1 = bind_check_dim(L, 3, a->ndim, "mtl.transpose");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_transpose(a, d0, d1));
}

/* t:t(): the transpose of a matrix. */
static int l_t(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.t");
  if (a->ndim != 2) {
    char s[128];
    return luaL_error(L, "mtl.t: expected a 2-D tensor, got %s", mtl_shape_str(a, s, sizeof s));
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_transpose(a, 0, 1));
}

/* t:permute(3, 1, 2) or t:permute{3, 1, 2}: out dim i is t's dim dims[i]. */
static int l_permute(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.permute");
  int64_t dims[MTL_MAX_DIMS];
  int n = 0;
  bool table = lua_istable(L, 2);
  int count = table ? (int)lua_objlen(L, 2) : lua_gettop(L) - 1;
  if (count > MTL_MAX_DIMS) count = MTL_MAX_DIMS + 1; /* reported below */
  for (int i = 0; i < count && i < MTL_MAX_DIMS; i++) {
    if (table) lua_rawgeti(L, 2, i + 1);
    dims[n++] = check_int(L, table ? -1 : i + 2, "mtl.permute", "a dimension");
    if (table) lua_pop(L, 1);
  }
  if (count > MTL_MAX_DIMS) n = count;
  if (n != a->ndim) {
    char s[128];
    return luaL_error(L, "mtl.permute: expected %d dimensions for a tensor of shape %s, got %d", a->ndim,
                      mtl_shape_str(a, s, sizeof s), n);
  }
  int perm[MTL_MAX_DIMS];
  for (int i = 0; i < n; i++) {
    /* 1-based, or negative from the end; out-of-range values stay invalid */
    int64_t d = dims[i] < 0 ? dims[i] + a->ndim : dims[i] - 1;
    perm[i] = d < 0 || d >= a->ndim ? -1 : (int)d;
    if (perm[i] < 0)
      return luaL_error(L, "mtl.permute: dimension %d out of range (expected 1..%d or -%d..-1)", (int)dims[i],
                        a->ndim, a->ndim);
  }
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_permute(a, perm));
}

/* t:squeeze() drops every size-1 dim; t:squeeze(d) only d (if its size is 1). */
static int l_squeeze(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.squeeze");
  int dim = lua_isnoneornil(L, 2) ? -1 : bind_check_dim(L, 2, a->ndim, "mtl.squeeze");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_squeeze(a, dim));
}

/* t:unsqueeze(d): a new size-1 dim at position d (1..ndim+1; -1 appends). */
static int l_unsqueeze(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.unsqueeze");
  int dim = bind_check_dim(L, 2, a->ndim + 1, "mtl.unsqueeze");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_unsqueeze(a, dim));
}

/* t:narrow(dim, start, length): positions start..start+length-1 of dim
 * (start 1-based; negative counts from the end, -1 = last). */
static int l_narrow(lua_State *L) {
  const char *fname = "mtl.narrow";
  mtl_tensor *a = bind_check_tensor(L, 1, fname);
  int dim = bind_check_dim(L, 2, a->ndim, fname);
  int64_t start = check_int(L, 3, fname, "start"), length = check_int(L, 4, fname, "length");
  int64_t size = a->shape[dim];
  if (start == 0 || start > size + 1 || start < -size)
    return bind_errorf(L, "%s: start %lld out of range for dimension %d of size %lld (expected 1..%lld or -%lld..-1)",
                      fname, (long long)start, dim + 1, (long long)size, (long long)size + 1, (long long)size);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_narrow(a, dim, start > 0 ? start - 1 : size + start, length));
}

/* t:expand(sizes): a broadcast view; -1 keeps a size. */
static int l_expand(lua_State *L) { return resized(L, "mtl.expand", mtl_expand); }

static int l_expand_as(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.expand_as"), *b = bind_check_tensor(L, 2, "mtl.expand_as");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_expand(a, b->ndim, b->shape));
}

static int l_contiguous(lua_State *L) {
  mtl_tensor *a = bind_check_tensor(L, 1, "mtl.contiguous");
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_contiguous(a));
}

/* ---- concat / stack ---------------------------------------------------------- */
/* Collects the tensors of mtl.concat(list, dim) or a:concat(b | list, dim)
 * into an array kept on the Lua stack (so an error frees it); returns the
 * count and sets *dim_idx to the argument holding dim. */
static int collect(lua_State *L, const char *fname, mtl_tensor ***out, int *dim_idx) {
  int first = bind_test_tensor(L, 1) ? 1 : 0; /* method form: arg 1 comes first */
  int list = first + 1;
  if (first && bind_test_tensor(L, 2)) { /* a:concat(b, dim) */
    mtl_tensor **ts = lua_newuserdata(L, 2 * sizeof *ts);
    ts[0] = bind_test_tensor(L, 1);
    ts[1] = bind_test_tensor(L, 2);
    *out = ts;
    *dim_idx = 3;
    return 2;
  }
  if (!lua_istable(L, list))
    luaL_error(L, "%s: expected a table of tensors for argument %d, got %s", fname, list, luaL_typename(L, list));
  size_t len = lua_objlen(L, list);
  if (len > 1000000) luaL_error(L, "%s: too many tensors (%d)", fname, (int)len);
  int n = (int)len + first;
  if (n == 0) luaL_error(L, "%s: expected a non-empty list of tensors", fname);
  mtl_tensor **ts = lua_newuserdata(L, (size_t)n * sizeof *ts);
  if (first) ts[0] = bind_test_tensor(L, 1);
  for (int i = 0; i < (int)len; i++) {
    lua_rawgeti(L, list, i + 1);
    ts[first + i] = bind_test_tensor(L, -1);
    if (!ts[first + i])
      luaL_error(L, "%s: expected a tensor at position %d of the list, got %s", fname, i + 1, luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  *out = ts;
  *dim_idx = list + 1;
  return n;
}

static int l_concat(lua_State *L) {
  mtl_tensor **ts;
  int nargs = lua_gettop(L); /* collect pushes its array after the arguments */
  int dim_idx, n = collect(L, "mtl.concat", &ts, &dim_idx);
  bool has_dim = dim_idx <= nargs && !lua_isnil(L, dim_idx);
  int dim = has_dim ? bind_check_dim(L, dim_idx, ts[0]->ndim, "mtl.concat") : 0;
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_concat(n, ts, dim));
}

static int l_stack(lua_State *L) {
  mtl_tensor **ts;
  int nargs = lua_gettop(L); /* collect pushes its array after the arguments */
  int dim_idx, n = collect(L, "mtl.stack", &ts, &dim_idx);
  bool has_dim = dim_idx <= nargs && !lua_isnil(L, dim_idx);
  int dim = has_dim ? bind_check_dim(L, dim_idx, ts[0]->ndim + 1, "mtl.stack") : 0;
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, mtl_stack(n, ts, dim));
}

/* ---- split / chunk ------------------------------------------------------------ */
#define MAX_PIECES 1000000

/* Pushes a table of the n pieces of a along dim with the given sizes. The
 * table and its (empty) userdata are made before cutting, so no Lua error can
 * come between mtl_split and handing the pieces to the GC. */
static int push_pieces(lua_State *L, mtl_tensor *a, int dim, int n, const int64_t *sizes) {
  mtl_tensor **pieces = lua_newuserdata(L, (size_t)n * sizeof *pieces);
  mtl_tensor ***slots = lua_newuserdata(L, (size_t)n * sizeof *slots);
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    slots[i] = bind_slot(L);
    lua_rawseti(L, -2, i + 1);
  }
  if (mtl_split(a, dim, n, sizes, pieces) < 0) return bind_error(L);
  for (int i = 0; i < n; i++) bind_fill(L, slots[i], pieces[i]);
  return 1;
}

/* t:split(size, dim): pieces of `size` along dim (the last may be shorter);
 * t:split({s1, s2, ...}, dim): pieces of those sizes. Returns a table. */
static int l_split(lua_State *L) {
  const char *fname = "mtl.split";
  mtl_tensor *a = bind_check_tensor(L, 1, fname);
  int dim = lua_isnoneornil(L, 3) ? 0 : bind_check_dim(L, 3, a->ndim, fname);
  if (a->ndim == 0) return luaL_error(L, "%s: cannot split a 0-dimensional tensor", fname);
  int64_t len = a->shape[dim];
  int n;
  int64_t *sizes;
  if (lua_istable(L, 2)) {
    size_t cnt = lua_objlen(L, 2);
    if (cnt < 1 || cnt > MAX_PIECES)
      return luaL_error(L, "%s: expected 1..%d piece sizes, got %d", fname, MAX_PIECES, (int)cnt);
    n = (int)cnt;
    sizes = lua_newuserdata(L, (size_t)n * sizeof *sizes);
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 2, i + 1);
      sizes[i] = check_int(L, -1, fname, "a piece size");
      lua_pop(L, 1);
    }
  } else {
    int64_t size = check_int(L, 2, fname, "the split size");
    if (size < 1) return bind_errorf(L, "%s: the split size must be >= 1, got %lld", fname, (long long)size);
    int64_t cnt = len == 0 ? 1 : (len - 1) / size + 1;
    if (cnt > MAX_PIECES)
      return bind_errorf(L, "%s: that makes %lld pieces (at most %d)", fname, (long long)cnt, MAX_PIECES);
    n = (int)cnt;
    sizes = lua_newuserdata(L, (size_t)n * sizeof *sizes);
    for (int i = 0; i < n; i++) sizes[i] = i < n - 1 ? size : len - size * (n - 1);
  }
  return push_pieces(L, a, dim, n, sizes);
}

/* t:chunk(n, dim): n pieces of ceil(size/n) along dim (fewer when the size
 * does not allow n non-empty ones, as in PyTorch); a table. */
static int l_chunk(lua_State *L) {
  const char *fname = "mtl.chunk";
  mtl_tensor *a = bind_check_tensor(L, 1, fname);
  int64_t want = check_int(L, 2, fname, "the number of chunks");
  int dim = lua_isnoneornil(L, 3) ? 0 : bind_check_dim(L, 3, a->ndim, fname);
  if (a->ndim == 0) return luaL_error(L, "%s: cannot chunk a 0-dimensional tensor", fname);
  if (want < 1 || want > MAX_PIECES)
    return bind_errorf(L, "%s: the number of chunks must be in 1..%d, got %lld", fname, MAX_PIECES, (long long)want);
  int64_t len = a->shape[dim];
  int64_t size = len == 0 ? 0 : (len - 1) / want + 1;
  int n = size == 0 ? (int)want : (int)((len - 1) / size + 1); /* an empty dim gives n empty chunks */
  int64_t *sizes = lua_newuserdata(L, (size_t)n * sizeof *sizes);
  for (int i = 0; i < n; i++) sizes[i] = i < n - 1 ? size : len - size * (n - 1);
  return push_pieces(L, a, dim, n, sizes);
}

/* ---- index_select / gather ------------------------------------------------------ */
/* A 0-based int64 copy of the 1-based index at idx (an int64 tensor, or for
 * 1-D uses a table of integers), left on the Lua stack. */
static mtl_tensor *index_arg(lua_State *L, int idx, const char *fname, bool allow_table) {
  mtl_tensor **slot = NULL;
  if (allow_table && lua_istable(L, idx)) {
    size_t len = lua_objlen(L, idx);
    if (len > 100000000) luaL_error(L, "%s: index table too long", fname);
    int64_t n = (int64_t)len;
    slot = bind_slot(L);
    bind_fill(L, slot, mtl_tensor_new(MTL_I64, 1, &n));
    for (int64_t i = 0; i < n; i++) {
      lua_rawgeti(L, idx, (int)i + 1);
      mtl_i64(*slot)[i] = check_int(L, -1, fname, "an index") - 1;
      lua_pop(L, 1);
    }
    return *slot;
  }
  mtl_tensor *index = bind_test_tensor(L, idx);
  if (!index)
    luaL_error(L, "%s: expected an int64 index tensor%s for argument %d, got %s", fname,
               allow_table ? " or a table of integers" : "", idx, luaL_typename(L, idx));
  if (index->dtype != MTL_I64)
    luaL_error(L, "%s: expected an int64 index tensor, got %s", fname, mtl_dtype_name(index->dtype));
  slot = bind_slot(L);
  mtl_tensor *src = mtl_tensor_contiguous_data(index);
  if (!src) bind_error(L);
  mtl_tensor *z = mtl_tensor_new(MTL_I64, index->ndim, index->shape);
  if (z) {
    const int64_t *s = mtl_i64(src);
    int64_t *d = mtl_i64(z);
    for (int64_t i = 0; i < z->numel; i++) d[i] = s[i] == INT64_MIN ? INT64_MIN : s[i] - 1;
  }
  mtl_tensor_release(src);
  bind_fill(L, slot, z);
  return z;
}

/* f(t, dim, index) with 1-based positions in index (allow_table: also a Lua list) */
static int indexed(lua_State *L, const char *fname, bool allow_table,
                   mtl_tensor *(*f)(mtl_tensor *, int, mtl_tensor *)) {
  mtl_tensor *a = bind_check_tensor(L, 1, fname);
  int dim = bind_check_dim(L, 2, a->ndim, fname);
  mtl_tensor *index = index_arg(L, 3, fname, allow_table);
  mtl_tensor **slot = bind_slot(L);
  return bind_fill(L, slot, f(a, dim, index));
}

/* t:index_select(dim, index): the entries of dim at the (1-based) positions. */
static int l_index_select(lua_State *L) { return indexed(L, "mtl.index_select", true, mtl_index_select); }

/* t:gather(dim, index): out[i][j] = t[i][index[i][j]] for dim 2. */
static int l_gather(lua_State *L) { return indexed(L, "mtl.gather", false, mtl_gather); }

void bind_shape_open(lua_State *L, int mod, int methods) {
  static const luaL_Reg ops[] = {
    {"reshape", l_reshape}, {"view", l_reshape}, {"transpose", l_transpose}, {"t", l_t},
    {"permute", l_permute}, {"squeeze", l_squeeze}, {"unsqueeze", l_unsqueeze}, {"narrow", l_narrow},
    {"expand", l_expand}, {"expand_as", l_expand_as}, {"contiguous", l_contiguous},
    {"concat", l_concat}, {"stack", l_stack}, {"split", l_split}, {"chunk", l_chunk},
    {"index_select", l_index_select}, {"gather", l_gather},
    {NULL, NULL},
  };
  for (const luaL_Reg *r = ops; r->name; r++) bind_register(L, mod, methods, r->name, r->func);
}
