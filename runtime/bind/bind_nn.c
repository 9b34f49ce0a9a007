/* Lua binding of the nn family. */
#include "bind.h"

void bind_nn_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
