/* The Lua binding's shared helpers. Only runtime/bind includes lua.h.
 * Pattern for a function returning a tensor (so an error cannot leak):
 *   mtl_tensor **slot = bind_slot(L);          -- push the userdata first
 *   return bind_fill(L, slot, mtl_add(a, b));  -- raises the core's message on NULL
 */
#ifndef MTL_BIND_H
#define MTL_BIND_H

#include <lauxlib.h>
#include <lua.h>

#include "mtl/autograd.h"
#include "mtl/core.h"
#include "mtl/ops.h"
#include "mtl/reader.h"

#define BIND_TENSOR_MT "mtl.Tensor"

/* The tensor at idx; raises "name: expected a tensor for argument N, got T". */
mtl_tensor *bind_check_tensor(lua_State *L, int idx, const char *fname);
mtl_tensor *bind_opt_tensor(lua_State *L, int idx, const char *fname); /* nil -> NULL */
mtl_tensor *bind_test_tensor(lua_State *L, int idx);                   /* NULL if not one */
mtl_tensor **bind_slot(lua_State *L);
int bind_fill(lua_State *L, mtl_tensor **slot, mtl_tensor *t);
/* Pushes t (a new reference, or NULL for an error). */
int bind_push(lua_State *L, mtl_tensor *t);
/* Makes the Tensor userdata at idx hold t (taking a new reference) and
 * releases the tensor it held, so every Lua reference to that tensor now
 * sees t: how runtime/serve shares one copy of the weights between Lua
 * states. Returns -1 (changing nothing) when idx holds no tensor or t
 * differs from it in dtype or shape. */
int bind_replace_tensor(lua_State *L, int idx, mtl_tensor *t);
/* A 1-based (or negative, from the end) Lua dim to a 0-based one. */
int bind_check_dim(lua_State *L, int idx, int ndim, const char *fname);
/* A shape given as numbers from idx on, or one table; returns ndim. */
int bind_check_shape(lua_State *L, int idx, int64_t *shape, const char *fname);
/* Raises the core's current error message. */
int bind_error(lua_State *L);
/* luaL_error with C's printf (LuaJIT's lacks %lld, %zu, widths, ...). */
int bind_errorf(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers f under name in the module table (at mod) and, if methods != 0,
 * in the Tensor methods table (at methods). */
void bind_register(lua_State *L, int mod, int methods, const char *name, lua_CFunction f);
/* bind_register for each entry of a {NULL, NULL}-terminated list. */
void bind_register_list(lua_State *L, int mod, int methods, const luaL_Reg *list);
/* The metatable `name` of a boxed core object (created, or reused on a module
 * reload): __index = a table of the methods, __gc = gc, __tostring =
 * tostring unless NULL. Leaves the stack as it was. */
void bind_new_class(lua_State *L, const char *name, const luaL_Reg *methods, lua_CFunction gc,
                    lua_CFunction tostring);
/* After a new tensor reached Lua (bind_fill and bind_push call it): steps
 * the GC when tensor memory grew (heap tracking), and raises "interrupted"
 * once after a Ctrl-C (bind_runtime.c). */
void bind_track(lua_State *L);

/* The reader of an mtl.Reader userdata at idx (bind_io.c); NULL when idx
 * holds none or a closed one. */
mtl_reader *bind_test_reader(lua_State *L, int idx);
/* The module (also a host's package.preload["mtl.core"], as runtime/serve's). */
int luaopen_mtl_core(lua_State *L);

/* Each family's registration (called by luaopen_mtl_core). */
void bind_runtime_open(lua_State *L, int mod, int methods); /* threads, seed, memory, Ctrl-C */
void bind_tensor_open(lua_State *L, int mod, int methods);
void bind_ops_open(lua_State *L, int mod, int methods);   /* elementwise, reduce, matmul */
void bind_shape_open(lua_State *L, int mod, int methods); /* shape and indexing */
void bind_nn_open(lua_State *L, int mod, int methods);    /* dropout, norms, losses */
void bind_checkpoint_open(lua_State *L, int mod, int methods);
void bind_embedding_open(lua_State *L, int mod, int methods);
void bind_optim_open(lua_State *L, int mod, int methods);
void bind_io_open(lua_State *L, int mod, int methods);
void bind_metrics_open(lua_State *L, int mod, int methods);
void bind_features_open(lua_State *L, int mod, int methods);
void bind_stats_open(lua_State *L, int mod, int methods);
void bind_dist_open(lua_State *L, int mod, int methods); /* core._dist (mtl.dist) */

#endif
