-- mtl: a Lua-scriptable environment for multi-task recommendation models.
--   local mtl = require "mtl"
-- returns one table; nothing is put in the global namespace.
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
