-- Blocks: Linear, activations, Dropout, BatchNorm, LayerNorm, Sequential, MLP.
local mtl = require "mtl"

return function(nn)
  local class = nn.class

  -- U(-bound, bound) of the given shape, from mtl's seeded stream.
  local function uniform(bound, ...)
    return mtl.rand(...) * (2 * bound) - bound
  end
  nn.init_uniform = uniform

  -- Linear(in, out[, {bias = true}]): y = x W^T + b; W [out, in]. PyTorch's
  -- default init: W and b ~ U(-1/sqrt(in), 1/sqrt(in)).
  local Linear = class("Linear")
  nn.Linear = Linear
  function Linear:__init(n_in, n_out, opts)
    assert(type(n_in) == "number" and type(n_out) == "number",
      "nn.Linear: expected (in_features, out_features)")
    opts = opts or {}
    self.n_in, self.n_out = n_in, n_out
    local bound = 1 / math.sqrt(n_in)
    self:param("weight", uniform(bound, n_out, n_in))
    if opts.bias ~= false then self:param("bias", uniform(bound, n_out)) end
  end
  function Linear:forward(x) return mtl.linear(x, self.weight, self.bias) end
  function Linear:extra_repr() return self.n_in .. " -> " .. self.n_out end

  -- Activations by name, used by MLP and towers. Each looks its op up in
  -- `mtl` when called, so that tracing (mtl.onnx) sees the call.
  local activations = {
    relu = function(x) return mtl.relu(x) end, sigmoid = function(x) return mtl.sigmoid(x) end,
    tanh = function(x) return mtl.tanh(x) end, gelu = function(x) return mtl.gelu(x) end,
    leaky_relu = function(x) return mtl.leaky_relu(x, 0.01) end,
    linear = function(x) return x end, none = function(x) return x end,
  }
  nn.activations = activations
  -- Activations mtl.linear applies in its own output pass (by name).
  nn.fused_activation = { relu = "relu", linear = "none", none = "none" }
  local function activation(name)
    if type(name) == "function" then return name end
    local f = activations[name or "relu"]
    if not f then error(string.format("nn: unknown activation '%s'", tostring(name)), 3) end
    return f
  end
  nn.activation = activation

  -- Option checks shared by the blocks' schemas (mtl.config.check): an
  -- activation by name (or a function), a dropout rate or one per layer.
  function nn.check_activation(c, v, path)
    if type(v) ~= "function" then c:enum(v, path, require("mtl.config.util").sorted_keys(activations)) end
  end
  function nn.check_dropout(c, v, path)
    if type(v) ~= "table" then c:number(v, path, { min = 0, lt = 1 }) return end
    if c:list(v, path, "a number in [0, 1) or one per layer") then
      for i, x in ipairs(v) do c:number(x, path .. "." .. i, { min = 0, lt = 1 }) end
    end
  end

  local Activation = class("Activation")
  nn.Activation = Activation
  function Activation:__init(name)
    self.name = name or "relu"
    self.fn = activation(self.name)
  end
  function Activation:forward(x) return self.fn(x) end
  function Activation:extra_repr() return tostring(self.name) end
  nn.ReLU = function() return Activation("relu") end
  nn.Sigmoid = function() return Activation("sigmoid") end
  nn.Tanh = function() return Activation("tanh") end

  local Dropout = class("Dropout")
  nn.Dropout = Dropout
  function Dropout:__init(p) self.p = p or 0.5 end
  function Dropout:forward(x)
    if self.p == 0 or not self.training then return x end
    return mtl.dropout(x, self.p, true)
  end
  function Dropout:extra_repr() return "p=" .. self.p end

  -- BatchNorm(n): over the feature columns of [batch, n]; running statistics
  -- (momentum 0.1 as PyTorch; EasyRec uses Keras' 0.99 decay = 0.01 here).
  local BatchNorm = class("BatchNorm")
  nn.BatchNorm = BatchNorm
  function BatchNorm:__init(n, opts)
    opts = opts or {}
    self.n, self.eps, self.momentum = n, opts.eps or 1e-5, opts.momentum or 0.1
    self:param("weight", mtl.ones(n))
    self:param("bias", mtl.zeros(n))
    self:buffer("running_mean", mtl.zeros(n))
    self:buffer("running_var", mtl.ones(n))
  end
  function BatchNorm:forward(x)
    return mtl.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
      self.training, self.momentum, self.eps)
  end
  function BatchNorm:extra_repr() return tostring(self.n) end

  local LayerNorm = class("LayerNorm")
  nn.LayerNorm = LayerNorm
  function LayerNorm:__init(n, opts)
    opts = opts or {}
    self.n, self.eps = n, opts.eps or 1e-5
    self:param("weight", mtl.ones(n))
    self:param("bias", mtl.zeros(n))
  end
  function LayerNorm:forward(x) return mtl.layer_norm(x, self.weight, self.bias, self.eps) end
  function LayerNorm:extra_repr() return tostring(self.n) end

  -- Sequential(m1, m2, ...) or Sequential{m1, m2, ...}
  local Sequential = class("Sequential")
  nn.Sequential = Sequential
  function Sequential:__init(...)
    local mods = { ... }
    if #mods == 1 and not nn.is_module(mods[1]) and type(mods[1]) == "table" then mods = mods[1] end
    self.n = 0
    for _, m in ipairs(mods) do self:add(m) end
  end
  function Sequential:add(m)
    assert(nn.is_module(m), "nn.Sequential: expected a module")
    self.n = self.n + 1
    self[tostring(self.n)] = m
    return self
  end
  function Sequential:get(i) return self[tostring(i)] end
  function Sequential:forward(x)
    for i = 1, self.n do x = self[tostring(i)](x) end
    return x
  end

  -- MLP{input=, hidden={256,128}, activation="relu", batch_norm=false,
  --     dropout=0 (a number or a list per layer), last_activation=true}
  -- EasyRec's DNN layer order: dense -> BN -> activation -> dropout.
  local MLP = class("MLP")
  nn.MLP = MLP
  MLP.block = true
  MLP.options = {
    input = { "int", required = true },
    hidden = { "sizes", empty = true, required = true },
    activation = { "any", default = "relu", check = nn.check_activation },
    batch_norm = { "boolean", default = false },
    dropout = { "any", default = 0, check = nn.check_dropout },
    last_activation = { "boolean", default = true },
  }
  function MLP:__init(opts)
    self.act_name = opts.activation
    self.act = activation(self.act_name)
    self.sizes = { opts.input }
    self.bn = opts.batch_norm
    self.last_activation = opts.last_activation
    self.n = #opts.hidden
    local dropout = opts.dropout
    self.drop = {}
    for i, h in ipairs(opts.hidden) do
      self.sizes[i + 1] = h
      self["fc" .. i] = nn.Linear(self.sizes[i], h)
      if self.bn then self["bn" .. i] = nn.BatchNorm(h) end
      self.drop[i] = type(dropout) == "table" and (dropout[i] or 0) or dropout
    end
    self.output_dim = self.sizes[#self.sizes]
  end
  function MLP:forward(x)
    local fused = not self.bn and nn.fused_activation[self.act_name]
    for i = 1, self.n do
      local last = i == self.n
      local fc = self["fc" .. i]
      if fused and (not last or self.last_activation) then
        x = mtl.linear(x, fc.weight, fc.bias, fused) -- bias and activation in one pass
      else
        x = fc(x)
        if self.bn and not (last and not self.last_activation) then x = self["bn" .. i](x) end
        if not last or self.last_activation then x = self.act(x) end
      end
      local p = self.drop[i]
      if p > 0 and self.training then x = mtl.dropout(x, p, true) end
    end
    return x
  end
  function MLP:extra_repr()
    return table.concat(self.sizes, " -> ") .. ", " .. tostring(self.act_name)
  end
end
