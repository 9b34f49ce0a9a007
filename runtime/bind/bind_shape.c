/* Lua binding of the shape family. */
#include "bind.h"

void bind_shape_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
