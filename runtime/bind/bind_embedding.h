/* The mtl.Embedding userdata, for other bindings (optimizers, checkpoints)
 * and runtime/serve. */
#ifndef MTL_BIND_EMBEDDING_H
#define MTL_BIND_EMBEDDING_H

#include "bind.h"
#include "mtl/embedding.h"

#define BIND_EMBEDDING_MT "mtl.Embedding"

/* The table at idx, or NULL if it is not one. */
mtl_embedding *bind_test_embedding(lua_State *L, int idx);
/* Pushes a new userdata owning t (a new reference; NULL raises the core's error). */
int bind_push_embedding(lua_State *L, mtl_embedding *t);

#endif
