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

require("mtl.tensor")(mtl, core)
require("mtl.autograd")(mtl, core)

-- Library parts, one line each (keep this list in dependency order).
-- [parts]

return mtl
