/* Lua binding of the checkpoint family. */
#include "bind.h"

void bind_checkpoint_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
