/* Lua binding of the optim family (filled in by its issue). */
#include "bind.h"

void bind_optim_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
