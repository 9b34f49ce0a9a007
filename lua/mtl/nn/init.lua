-- mtl.nn: a small, Torch-flavoured module system (see docs/models.md).
--   local nn = require "mtl.nn"
--   local mlp = nn.MLP{input = 232, hidden = {256, 128}}
--   local y = mlp(x)
local nn = require "mtl.nn.module"
require("mtl.nn.blocks")(nn)
require("mtl.nn.gating")(nn)
require("mtl.nn.tower")(nn)
require("mtl.nn.attention")(nn)
require("mtl.nn.variational_dropout")(nn)
require("mtl.nn.interaction")(nn)
require("mtl.nn.graph")(nn)
return nn
