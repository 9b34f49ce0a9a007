-- mtl as a LuaRocks rock (docs/install.md). In a checkout:
--   luarocks --lua-version=5.1 make [--tree DIR] [--deps-mode=none]
-- builds with CMake and installs the mtl command, the Lua modules, the
-- models and mtl/core.so into the rocks tree (bin/, share/lua/5.1/,
-- lib/lua/5.1/). The C serving library (libmtlserve, its headers, mtl.pc,
-- the CMake package) comes with `cmake --install` only. --deps-mode=none
-- when the dependencies come from Debian packages (tools/setup.sh).
rockspec_format = "3.0"
package = "mtl"
version = "scm-1"
source = {
  -- `luarocks make` builds the checkout it runs in; mtl is not on a rocks server
  url = "git+file://.",
}
description = {
  summary = "A Lua-scriptable environment for multi-task recommendation models",
  detailed = [[
A C11 core (tensors, ops with their gradients, a reverse-mode autodiff tape,
embedding tables, optimizers, readers, metrics) exposed to LuaJIT, with
multi-task models (shared-bottom, ESMM, MMoE, CGC, PLE, DBMTL, AITM), feature
columns, a training loop, sweeps, ONNX export and the `mtl` command.]],
}
supported_platforms = { "linux" }
dependencies = {
  "lua == 5.1", -- LuaJIT 2.1
  "lpeg",
  "lua-cjson",
  "argparse",
  -- optional: luasql-sqlite3 (sweeps), libedit (the REPL's line editing)
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    CMAKE_INSTALL_BINDIR = "$(BINDIR)",
    MTL_INSTALL_LUADIR = "$(LUADIR)",
    MTL_INSTALL_LUA_CDIR = "$(LIBDIR)",
    -- where LuaRocks deploys them in its tree, seen from <tree>/bin/mtl
    MTL_LAUNCHER_LUADIR = "../share/lua/5.1",
    MTL_LAUNCHER_LUA_CDIR = "../lib/lua/5.1",
    MTL_LAUNCHER_DOCDIR = "../lib/luarocks/rocks-5.1/mtl/scm-1/docs", -- copy_directories below
    MTL_INSTALL_SERVE = "OFF",
    MTL_INSTALL_DOCS = "OFF",
  },
  copy_directories = { "docs" },
}
