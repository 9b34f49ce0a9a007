/* Lua binding of the metrics family (filled in by its issue). */
#include "bind.h"

void bind_metrics_open(lua_State *L, int mod, int methods) {
  (void)L;
  (void)mod;
  (void)methods;
}
