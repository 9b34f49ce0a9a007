/* Lua binding of the embedding family (filled in by its issue). */
#include "bind.h"

void bind_embedding_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
