-- Blocks: Linear, Dropout, BatchNorm, LayerNorm, Sequential, MLP (activations: activations.lua).
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

  -- Activations by name (nn.activation, nn.activation_module, Dice, PReLU).
  require("mtl.nn.activations")(nn)
  local activation = nn.activation
  -- Activations mtl.linear applies in its own output pass (by name).
  nn.fused_activation = { relu = "relu", linear = "none", none = "none" }

  -- Option checks shared by the blocks' schemas (mtl.config.check): an
  -- activation by name (or a function), a dropout rate or one per layer.
  function nn.check_activation(c, v, path) c:activation(v, path) end
  function nn.check_dropout(c, v, path) c:dropout(v, path) end

  -- An "mlp" option (sizes, or {hidden =, activation =, batch_norm =,
  -- dropout =}) as nn.MLP's options for this input size; defaults fill what
  -- it does not say.
  function nn.mlp_options(spec, input, defaults)
    local o = {}
    for k, v in pairs(defaults or {}) do o[k] = v end
    if spec.hidden then
      for k, v in pairs(spec) do o[k] = v end
    else
      o.hidden = spec
    end
    o.input = input
    return o
  end

  -- The layer sizes of an "mlp" option.
  function nn.mlp_hidden(spec) return spec.hidden or spec end

  -- Experts options of n experts whose MLP is an "mlp" option.
  function nn.experts_options(spec, n, input, fused)
    local o = nn.mlp_options(spec, input)
    o.n, o.fused = n, fused
    return o
  end

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
  -- Batch norm then ReLU in one pass over the output (and one backward):
  -- what an MLP or Experts layer with batch_norm and relu runs.
  function BatchNorm:forward_relu(x)
    return mtl.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var,
      self.training, self.momentum, self.eps, "relu")
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
  --     dropout=0 (a number or a list per layer), last_activation=true,
  --     last_batch_norm=(last_activation), bias=true}
  -- EasyRec's DNN layer order: dense -> BN -> activation -> dropout. A
  -- parametric activation (dice, prelu) is a module per layer (act1, ...).
  local MLP = class("MLP")
  nn.MLP = MLP
  MLP.block = true
  MLP.graph_input = "tensor"
  MLP.options = {
    input = { "int", required = true },
    hidden = { "sizes", empty = true, required = true },
    activation = { "any", default = "relu", check = nn.check_activation },
    batch_norm = { "boolean", default = false },
    dropout = { "any", default = 0, check = nn.check_dropout },
    last_activation = { "boolean", default = true },
    last_batch_norm = { "boolean" },
    bias = { "boolean", default = true },
  }
  function MLP:__init(opts)
    self.act_name = opts.activation
    local parametric = nn.parametric_activation[self.act_name]
    self.act = not parametric and activation(self.act_name)
    self.sizes = { opts.input }
    self.bn = opts.batch_norm
    self.last_activation = opts.last_activation
    local last_bn = opts.last_batch_norm
    if last_bn == nil then last_bn = opts.last_activation end
    self.n = #opts.hidden
    local dropout = opts.dropout
    self.drop = {}
    for i, h in ipairs(opts.hidden) do
      self.sizes[i + 1] = h
      self["fc" .. i] = nn.Linear(self.sizes[i], h, { bias = opts.bias })
      if self.bn and (i < self.n or last_bn) then self["bn" .. i] = nn.BatchNorm(h) end
      if parametric and (i < self.n or self.last_activation) then self["act" .. i] = nn.activation_module(self.act_name, h) end
      self.drop[i] = type(dropout) == "table" and (dropout[i] or 0) or dropout
    end
    self.output_dim = self.sizes[#self.sizes]
  end
  function MLP:forward(x)
    local fused = not self.bn and nn.fused_activation[self.act_name]
    for i = 1, self.n do
      local act = i < self.n or self.last_activation
      local fc = self["fc" .. i]
      if fused and act then
        x = mtl.linear(x, fc.weight, fc.bias, fused) -- bias and activation in one pass
      else
        x = fc(x)
        local bn = self["bn" .. i]
        if bn and act and self.act_name == "relu" then
          x = bn:forward_relu(x)
        else
          if bn then x = bn(x) end
          if act then x = (self["act" .. i] or self.act)(x) end
        end
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
