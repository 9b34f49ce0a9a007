-- mtl: a Lua-scriptable environment for multi-task recommendation models.
--   local mtl = require "mtl"
-- returns one table; nothing is put in the global namespace.

-- LuaJIT 2.1 as Debian 12 ships it (2.1.0-beta3, git 2022-03) may fuse a
-- table load into a later instruction across a store that grows the table
-- (LuaJIT issue #1117, fixed upstream in 2023-11): `local n = t[i]; t[i + 1]
-- = h; math.sqrt(n)` then reads freed memory, rarely (it depends on where the
-- table lands). It gave NaN weights in one model build of ~20. Load fusion
-- saves little for mtl's Lua code (the work is in C): off on those versions
-- (spec/luajit_spec.lua).
if jit and jit.version_num <= 20100 then jit.opt.start("-fuse") end

-- OpenBLAS's idle threads spin (sched_yield) for 2^28 cycles after each
-- product by default, so with 2 threads on 2 cores its worker takes a core
-- from mtl's own pool and the main thread between products: mtl bench at
-- --threads 2 trained mmoe at 39-46k ex/s with the default, 57-58k with 2^4
-- (inference 76-94k against 123-170k; docs/performance.md, "2 threads"). OpenBLAS reads the
-- setting when it loads, with mtl.core just below; a user's value wins.
if jit then
  local ffi = require "ffi"
  pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite);")
  ffi.C.setenv("OPENBLAS_THREAD_TIMEOUT", "4", 0)
end
local core = require "mtl.core"

local mtl = {}
for name, fn in pairs(core) do
  if name ~= "Tensor" and name ~= "Tensor_mt" then mtl[name] = fn end
end
mtl.core = core
mtl.Tensor = core.Tensor
mtl.version = "0.1.0" -- `mtl --version`

require("mtl.tensor")(mtl, core)
require("mtl.autograd")(mtl, core)

-- Library parts, one line each (keep this list in dependency order).
-- [parts]
mtl.data = require("mtl.data")
require("mtl.checkpoint")(mtl, core)
require("mtl.optim")(mtl, core)
require("mtl.schedule")(mtl)
require("mtl.metrics")(mtl, core)
require("mtl.dist")(mtl, core) -- starts MPI when mpirun started this process

-- Parts that themselves require "mtl" load on first use: mtl.nn, ...
local lazy = { nn = "mtl.nn", models = "mtl.models", losses = "mtl.losses", features = "mtl.features",
               train = "mtl.train", sweep = "mtl.sweep", repl = "mtl.repl", plot = "mtl.plot",
               synth = "mtl.synth" }
setmetatable(mtl, {
  __index = function(t, k)
    local name = lazy[k]
    if name then
      local v = require(name)
      rawset(t, k, v)
      return v
    end
  end,
})

return mtl
