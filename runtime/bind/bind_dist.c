/* Lua binding of mtl.dist (runtime/dist, mtl/dist.h): core._dist, wrapped by
 * lua/mtl/dist.lua. Ranks are 0-based ids as in MPI; per-rank lists are Lua
 * arrays whose entry r + 1 belongs to rank r. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bind.h"
#include "bind_embedding.h"
#include "mtl/dist.h"

#define REQUEST_MT "mtl.dist.Request"

static mtl_dist_op check_op(lua_State *L, int idx, const char *fname) {
  static const char *const names[] = {"sum", "mean", "max", "min", NULL};
  const char *s = luaL_optstring(L, idx, "sum");
  for (int i = 0; names[i]; i++)
    if (!strcmp(s, names[i])) return (mtl_dist_op)i;
  luaL_error(L, "%s: unknown op '%s' (expected sum, mean, max or min)", fname, s);
  return MTL_DIST_SUM;
}

static mtl_dist_algorithm check_algorithm(lua_State *L, int idx, const char *fname) {
  const char *s = luaL_optstring(L, idx, "ordered");
  if (!strcmp(s, "ordered")) return MTL_DIST_ORDERED;
  if (!strcmp(s, "mpi")) return MTL_DIST_MPI;
  luaL_error(L, "%s: unknown algorithm '%s' (expected ordered or mpi)", fname, s);
  return MTL_DIST_ORDERED;
}

/* A per-rank count list from a Lua array (or int64 tensor) of size() entries. */
static void check_counts(lua_State *L, int idx, int64_t *out, const char *fname, const char *what) {
  int size = mtl_dist_size();
  mtl_tensor *t = bind_test_tensor(L, idx);
  if (!t && !lua_istable(L, idx))
    luaL_error(L, "%s: expected a list of %s (one per rank) for argument %d, got %s", fname, what, idx,
               luaL_typename(L, idx));
  int n = t ? (int)t->numel : (int)lua_objlen(L, idx);
  if (n != size)
    luaL_error(L, "%s: expected %d %s (one per rank), got %d%s", fname, size, what, n, mtl_dist_hint());
  if (t && t->dtype != MTL_I64) luaL_error(L, "%s: %s must be an int64 tensor, got %s", fname, what, mtl_dtype_name(t->dtype));
  for (int i = 0; i < n; i++) {
    double v;
    if (t) {
      int64_t at[MTL_MAX_DIMS] = {0};
      at[0] = i;
      v = mtl_tensor_get_at(t, at);
    } else {
      lua_rawgeti(L, idx, i + 1);
      if (!lua_isnumber(L, -1))
        luaL_error(L, "%s: %s entry %d must be a number, got %s", fname, what, i + 1, luaL_typename(L, -1));
      v = lua_tonumber(L, -1);
      lua_pop(L, 1);
    }
    if (v != floor(v) || v < 0 || v > 9e15)
      luaL_error(L, "%s: %s entry %d must be a non-negative integer, got %g", fname, what, i + 1, v);
    out[i] = (int64_t)v;
  }
}

static void push_counts(lua_State *L, const int64_t *counts) {
  int size = mtl_dist_size();
  lua_createtable(L, size, 0);
  for (int i = 0; i < size; i++) {
    lua_pushnumber(L, (lua_Number)counts[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* ---- state ---------------------------------------------------------------- */

static int l_start(lua_State *L) {
  if (mtl_dist_start() < 0) return bind_error(L);
  return 0;
}

static int l_rank(lua_State *L) {
  lua_pushinteger(L, mtl_dist_rank());
  return 1;
}

static int l_size(lua_State *L) {
  lua_pushinteger(L, mtl_dist_size());
  return 1;
}

static int l_info(lua_State *L) {
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, mtl_dist_rank());
  lua_setfield(L, -2, "rank");
  lua_pushinteger(L, mtl_dist_size());
  lua_setfield(L, -2, "size");
  lua_pushboolean(L, mtl_dist_with_mpi());
  lua_setfield(L, -2, "with_mpi");
  lua_pushstring(L, mtl_dist_library());
  lua_setfield(L, -2, "library");
  lua_pushnumber(L, mtl_dist_timeout());
  lua_setfield(L, -2, "timeout");
  lua_pushnumber(L, (lua_Number)mtl_dist_collectives());
  lua_setfield(L, -2, "collectives");
  return 1;
}

static int l_set_context(lua_State *L) {
  mtl_dist_set_context(lua_isnoneornil(L, 1) ? "" : luaL_checkstring(L, 1));
  return 0;
}

static int l_context(lua_State *L) {
  lua_pushstring(L, mtl_dist_context());
  return 1;
}

static int l_set_timeout(lua_State *L) {
  if (mtl_dist_set_timeout(luaL_checknumber(L, 1)) < 0) return bind_error(L);
  return 0;
}

/* ---- collectives ---------------------------------------------------------- */

static int l_barrier(lua_State *L) {
  if (mtl_dist_barrier() < 0) return bind_error(L);
  return 0;
}

static int l_broadcast(lua_State *L) {
  const char *fname = "mtl.dist.broadcast";
  mtl_tensor *t = bind_check_tensor(L, 1, fname);
  lua_Number root = luaL_optnumber(L, 2, 0);
  if (root != floor(root) || fabs(root) > 1e9) luaL_error(L, "%s: root must be a rank (an integer), got %g", fname, root);
  if (mtl_dist_broadcast(t, (int)root) < 0) return bind_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_allreduce(lua_State *L) {
  const char *fname = "mtl.dist.allreduce";
  mtl_tensor *t = bind_check_tensor(L, 1, fname);
  mtl_dist_op op = check_op(L, 2, fname);
  if (mtl_dist_allreduce(t, op, check_algorithm(L, 3, fname)) < 0) return bind_error(L);
  lua_settop(L, 1);
  return 1;
}

static int l_allgather(lua_State *L) {
  mtl_tensor *t = bind_check_tensor(L, 1, "mtl.dist.allgather");
  int64_t *counts = lua_newuserdata(L, (size_t)mtl_dist_size() * sizeof *counts); /* scratch, collected */
  mtl_tensor **slot = bind_slot(L);
  bind_fill(L, slot, mtl_dist_allgather(t, counts));
  push_counts(L, counts);
  return 2;
}

static int l_alltoallv(lua_State *L) {
  const char *fname = "mtl.dist.alltoallv";
  mtl_tensor *t = bind_check_tensor(L, 1, fname);
  int64_t *counts = lua_newuserdata(L, (size_t)mtl_dist_size() * 2 * sizeof *counts);
  check_counts(L, 2, counts, fname, "send counts");
  mtl_tensor **slot = bind_slot(L);
  bind_fill(L, slot, mtl_dist_alltoallv(t, counts, counts + mtl_dist_size()));
  push_counts(L, counts + mtl_dist_size());
  return 2;
}

/* iallreduce(tensor or list, op, algorithm, bucket_bytes, fname) -> request */
static int l_iallreduce(lua_State *L) {
  const char *fname = luaL_optstring(L, 5, "mtl.dist.iallreduce");
  int n = 1;
  if (!bind_test_tensor(L, 1)) {
    if (!lua_istable(L, 1))
      luaL_error(L, "%s: expected a tensor or a list of tensors for argument 1, got %s", fname, luaL_typename(L, 1));
    n = (int)lua_objlen(L, 1);
  }
  mtl_dist_op op = check_op(L, 2, fname);
  mtl_dist_algorithm alg = check_algorithm(L, 3, fname);
  lua_Number bytes = luaL_optnumber(L, 4, 4 << 20);
  if (!(bytes >= 1 && bytes <= 9e15)) luaL_error(L, "%s: bucket_bytes must be >= 1, got %g", fname, bytes);
  mtl_tensor **ts = lua_newuserdata(L, (size_t)(n ? n : 1) * sizeof *ts);
  if (bind_test_tensor(L, 1)) {
    ts[0] = bind_test_tensor(L, 1);
  } else {
    for (int i = 0; i < n; i++) {
      lua_rawgeti(L, 1, i + 1);
      if (!(ts[i] = bind_test_tensor(L, -1)))
        luaL_error(L, "%s: entry %d of the list is not a tensor (got %s)", fname, i + 1, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  }
  mtl_dist_request **ud = lua_newuserdata(L, sizeof *ud);
  *ud = NULL;
  luaL_getmetatable(L, REQUEST_MT);
  lua_setmetatable(L, -2);
  if (!(*ud = mtl_dist_iallreduce(ts, n, op, alg, (size_t)bytes))) return bind_error(L);
  return 1;
}

static mtl_dist_request *check_request(lua_State *L) {
  mtl_dist_request **ud = luaL_checkudata(L, 1, REQUEST_MT);
  return *ud;
}

static int l_request_wait(lua_State *L) {
  if (mtl_dist_wait(check_request(L)) < 0) return bind_error(L);
  return 0;
}

static int l_request_test(lua_State *L) {
  bool done = false;
  if (mtl_dist_test(check_request(L), &done) < 0) return bind_error(L);
  lua_pushboolean(L, done);
  return 1;
}

static int l_request_buffers(lua_State *L) {
  lua_pushinteger(L, mtl_dist_request_buffers(check_request(L)));
  return 1;
}

static int l_request_gc(lua_State *L) {
  mtl_dist_request **ud = luaL_checkudata(L, 1, REQUEST_MT);
  mtl_dist_request_free(*ud);
  *ud = NULL;
  return 0;
}

/* ---- replicated dynamic tables ---------------------------------------------- */
/* The sightings hook (mtl_embedding_set_sightings) of a shared table: the
 * lookup's ids of every rank, in rank order. */
static int all_ranks_ids(void *ctx, int64_t n, const int64_t *ids, mtl_tensor **out) {
  (void)ctx;
  *out = NULL;
  mtl_tensor *mine = mtl_tensor_new(MTL_I64, 1, &n);
  int64_t *counts = malloc((size_t)mtl_dist_size() * sizeof *counts);
  if (mine && counts) {
    memcpy(mtl_i64(mine), ids, (size_t)n * sizeof *ids);
    *out = mtl_dist_allgather(mine, counts);
  } else {
    mtl_error("mtl.dist.share_sightings: out of memory");
  }
  free(counts);
  mtl_tensor_release(mine);
  return *out ? 0 : -1;
}

/* share_sightings(t[, on = true]): t's training lookups count, admit and
 * stamp the ids of every rank's same lookup (a collective per lookup). */
static int l_share_sightings(lua_State *L) {
  const char *fname = "mtl.dist.share_sightings";
  mtl_embedding *t = bind_test_embedding(L, 1);
  if (!t) return luaL_error(L, "%s: expected an mtl.Embedding for argument 1, got %s", fname, luaL_typename(L, 1));
  if (t->cfg.kind != MTL_EMB_DYNAMIC)
    return luaL_error(L, "%s: a %s table has no sightings (only a dynamic table counts and admits ids)", fname,
                      mtl_embedding_kind_name(t->cfg.kind));
  bool on = lua_isnoneornil(L, 2) || lua_toboolean(L, 2);
  mtl_embedding_set_sightings(t, on ? all_ranks_ids : NULL, NULL);
  return 0;
}

void bind_dist_open(lua_State *L, int mod, int methods) {
  (void)methods;
  static const luaL_Reg request_methods[] = {
    {"wait", l_request_wait}, {"test", l_request_test}, {"buffers", l_request_buffers}, {NULL, NULL}};
  luaL_newmetatable(L, REQUEST_MT);
  lua_newtable(L);
  for (const luaL_Reg *r = request_methods; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, l_request_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  static const luaL_Reg fns[] = {
    {"start", l_start}, {"rank", l_rank}, {"size", l_size}, {"info", l_info},
    {"set_context", l_set_context}, {"context", l_context}, {"set_timeout", l_set_timeout},
    {"barrier", l_barrier}, {"broadcast", l_broadcast}, {"allreduce", l_allreduce},
    {"allgather", l_allgather}, {"alltoallv", l_alltoallv}, {"iallreduce", l_iallreduce},
    {"share_sightings", l_share_sightings}, {NULL, NULL}};
  lua_newtable(L); /* core._dist; lua/mtl/dist.lua wraps it as mtl.dist */
  for (const luaL_Reg *r = fns; r->name; r++) {
    lua_pushcfunction(L, r->func);
    lua_setfield(L, -2, r->name);
  }
  lua_setfield(L, mod, "_dist");
}
