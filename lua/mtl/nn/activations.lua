-- Activations by name (mtl.config.check.ACTIVATIONS), those EasyRec's DNN
-- and MLP layers accept: elementwise ones are functions (ops in C), the two
-- with parameters are modules:
--   Dice (Zhou et al., DIN, KDD 2018), as EasyRec computes it:
--     p = sigmoid(BN(x)) (batch statistics, no scale or shift, eps 1e-9;
--     running averages in evaluation), y = p x + alpha (1 - p) x
--   PReLU: y = max(0, x) + alpha min(0, x)
-- alpha is one per feature, initially 0. nn.activation_module(name, n) gives
-- a module for n features of either kind.
local mtl = require "mtl"

return function(nn)
  local class = nn.class

  -- Each looks its op up in `mtl` when called, so that tracing (mtl.onnx)
  -- sees the call.
  local activations = {
    relu6 = function(x) return mtl.clamp(x, 0, 6) end,
    leaky_relu = function(x) return mtl.leaky_relu(x, 0.01) end,
    linear = function(x) return x end, none = function(x) return x end,
  }
  for _, op in ipairs({ "relu", "sigmoid", "tanh", "gelu", "gelu_tanh", "elu", "selu", "swish", "softplus", "softsign" }) do
    activations[op] = function(x) return mtl[op](x) end
  end
  nn.activations = activations
  local PARAMETRIC = { dice = true, prelu = true }
  nn.parametric_activation = PARAMETRIC

  -- The function of an elementwise activation name (or a function itself).
  function nn.activation(name)
    if type(name) == "function" then return name end
    name = name or "relu"
    local slope = type(name) == "string" and name:match("^leaky_relu:(.+)$")
    if slope and tonumber(slope) then
      slope = tonumber(slope)
      return function(x) return mtl.leaky_relu(x, slope) end
    end
    local f = activations[name]
    if not f then
      local why = PARAMETRIC[name] and " (it has parameters: nn.activation_module)" or ""
      error(string.format("nn: unknown activation '%s'%s", tostring(name), why), 3)
    end
    return f
  end

  local Dice = class("Dice")
  nn.Dice = Dice
  Dice.block = true
  Dice.options = { n = { "int", required = true }, eps = { "number", gt = 0, default = 1e-9 },
                   momentum = { "number", gt = 0, max = 1, default = 0.01 } }
  function Dice:__init(opts)
    self.n, self.eps, self.momentum = opts.n, opts.eps, opts.momentum
    self:param("alpha", mtl.zeros(opts.n))
    self:buffer("running_mean", mtl.zeros(opts.n))
    self:buffer("running_var", mtl.ones(opts.n))
  end
  function Dice:forward(x)                                    -- x [B, n]
    local z = mtl.batch_norm(x, nil, nil, self.running_mean, self.running_var, self.training, self.momentum, self.eps)
    local p = mtl.sigmoid(z)
    return p * x + self.alpha * (1 - p) * x
  end
  function Dice:extra_repr() return tostring(self.n) end

  local PReLU = class("PReLU")
  nn.PReLU = PReLU
  PReLU.block = true
  PReLU.options = { n = { "int", required = true } }
  function PReLU:__init(opts)
    self.n = opts.n
    self:param("alpha", mtl.zeros(opts.n))
  end
  function PReLU:forward(x) return mtl.relu(x) - self.alpha * mtl.relu(-x) end
  function PReLU:extra_repr() return tostring(self.n) end

  local Activation = class("Activation")
  nn.Activation = Activation
  function Activation:__init(name)
    self.name = name or "relu"
    self.fn = nn.activation(self.name)
  end
  function Activation:forward(x) return self.fn(x) end
  function Activation:extra_repr() return tostring(self.name) end
  nn.ReLU = function() return Activation("relu") end
  nn.Sigmoid = function() return Activation("sigmoid") end
  nn.Tanh = function() return Activation("tanh") end

  -- A module applying activation `name` to [B, n] inputs.
  function nn.activation_module(name, n)
    if name == "dice" then return Dice{ n = n } end
    if name == "prelu" then return PReLU{ n = n } end
    return Activation(name)
  end
end
