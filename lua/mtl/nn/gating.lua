-- Mixture-of-experts blocks: Experts (n expert MLPs, first layers fused into
-- one GEMM), Gate (softmax over experts) and mix (gate-weighted sum).
local mtl = require "mtl"

return function(nn)
  local class = nn.class

  -- Experts{n=, input=, hidden={h1, ...}, activation="relu", batch_norm=false,
  --         dropout=0, fused=true}
  -- Output [B, n, h_last]. Each expert is an MLP with EasyRec's DNN layer
  -- order (dense -> BN -> activation -> dropout); batch normalization and a
  -- parametric activation (dice, prelu) keep statistics and parameters per
  -- expert and unit (over the [B, n * h] view of a layer). Layer l's weights for all experts live in one
  -- tensor W_l [n, out, in] (b_l [n, out]). Fused mode runs each layer as one
  -- grouped mtl.linear: layer 1 as ONE GEMM (x [B, in] against W_1 seen as
  -- [n*h1, in]), later layers as one GEMM per expert reading and writing the
  -- [B, n, h] activations in place, with bias and relu in the GEMM's output
  -- pass; unfused mode runs each expert with its own Linear calls on views of
  -- the same tensors, so both modes share weights.
  local Experts = class("Experts")
  nn.Experts = Experts
  Experts.block = true
  Experts.options = {
    n = { "int", required = true },
    input = { "int", required = true },
    hidden = { "sizes", required = true },
    activation = { "any", default = "relu", check = nn.check_activation },
    batch_norm = { "boolean", default = false },
    dropout = { "any", default = 0, check = nn.check_dropout },
    fused = { "boolean", default = true },
  }
  function Experts:__init(opts)
    self.n_experts, self.input = opts.n, opts.input
    self.sizes = { opts.input }
    self.act_name = opts.activation
    local parametric = nn.parametric_activation[self.act_name]
    self.act = not parametric and nn.activation(self.act_name)
    self.bn = opts.batch_norm
    self.fused = opts.fused or self.bn or parametric -- per-expert statistics need the [B, n * h] view
    self.n_layers = #opts.hidden
    self.drop = {}
    for l, h in ipairs(opts.hidden) do
      local n_in = self.sizes[l]
      self.sizes[l + 1] = h
      local bound = 1 / math.sqrt(n_in)
      self:param("weight" .. l, nn.init_uniform(bound, opts.n, h, n_in))
      self:param("bias" .. l, nn.init_uniform(bound, opts.n, h))
      if self.bn then self["bn" .. l] = nn.BatchNorm(opts.n * h) end
      if parametric then self["act" .. l] = nn.activation_module(self.act_name, opts.n * h) end
      self.drop[l] = type(opts.dropout) == "table" and (opts.dropout[l] or 0) or opts.dropout
    end
    self.output_dim = self.sizes[#self.sizes]
  end

  function Experts:forward(x)
    if self.fused then return self:forward_fused(x) end
    return self:forward_each(x)
  end

  function Experts:forward_fused(x)                            -- x [B, in]
    local fused = not self.bn and nn.fused_activation[self.act_name]
    local B, n = x:size(1), self.n_experts
    local y = x
    for l = 1, self.n_layers do                                -- [B, n, h_l]
      local h = self.sizes[l + 1]
      y = mtl.linear(y, self["weight" .. l], self["bias" .. l], fused or nil)
      if not fused then
        local bn, act = self["bn" .. l], self["act" .. l]
        if bn or act then y = y:reshape(B, n * h) end          -- a unit of an expert is a feature
        if bn and not act and self.act_name == "relu" then
          y = bn:forward_relu(y)                               -- one pass for both
        else
          if bn then y = bn(y) end
          y = (act or self.act)(y)
        end
        if bn or act then y = y:reshape(B, n, h) end
      end
      if self.drop[l] > 0 and self.training then y = mtl.dropout(y, self.drop[l], true) end
    end
    return y                                                   -- [B, n, out]
  end

  function Experts:forward_each(x)
    local outs = {}
    for k = 1, self.n_experts do
      local y = x
      for l = 1, self.n_layers do
        local n_out, n_in = self.sizes[l + 1], self.sizes[l]
        local W = self["weight" .. l]:narrow(1, k, 1):reshape(n_out, n_in)
        local b = self["bias" .. l]:narrow(1, k, 1):reshape(n_out)
        y = self.act(mtl.linear(y, W, b))
        if self.drop[l] > 0 and self.training then y = mtl.dropout(y, self.drop[l], true) end
      end
      outs[k] = y
    end
    return mtl.stack(outs, 2)                                  -- [B, n, out]
  end

  function Experts:extra_repr()
    return string.format("%d x %s%s", self.n_experts, table.concat(self.sizes, " -> "),
      self.fused and ", fused" or "")
  end

  -- MMoELayer{input=, tasks=, experts=, expert=MLP}: EasyRec's keras MMoE
  -- block: `experts` MLPs (each an "mlp" option: layers and their options)
  -- and one softmax gate per task on the input; returns the tasks' mixtures,
  -- a list of [B, h] (its output_dims).
  local MMoELayer = class("MMoELayer")
  nn.MMoELayer = MMoELayer
  MMoELayer.block = true
  MMoELayer.graph_input = "tensor"
  MMoELayer.options = {
    input = { "int", required = true },
    tasks = { "int", required = true },
    experts = { "int", required = true },
    expert = { "mlp", required = true },
  }
  function MMoELayer:__init(opts)
    self.n_tasks, self.n_experts = opts.tasks, opts.experts
    for k = 1, opts.experts do self["expert" .. k] = nn.MLP(nn.mlp_options(opts.expert, opts.input)) end
    for t = 1, opts.tasks do self["gate" .. t] = nn.Gate{ input = opts.input, n = opts.experts } end
    local h = self.expert1.output_dim
    self.output_dims = {}
    for t = 1, opts.tasks do self.output_dims[t] = h end
  end
  function MMoELayer:forward(x)                                -- x [B, input]
    local e = {}
    for k = 1, self.n_experts do e[k] = self["expert" .. k](x) end
    local stacked = mtl.stack(e, 2)                            -- [B, n, h]
    local out = {}
    for t = 1, self.n_tasks do out[t] = nn.mix(stacked, self["gate" .. t](x)) end
    return out
  end

  -- Gate{input=, n=}: softmax(x W^T + b) over n experts -> [B, n]
  local Gate = class("Gate")
  nn.Gate = Gate
  Gate.block = true
  Gate.options = { input = { "int", required = true }, n = { "int", required = true } }
  function Gate:__init(opts)
    self.n = opts.n
    self.fc = nn.Linear(opts.input, opts.n)
  end
  function Gate:forward(x)
    local g = mtl.softmax(self.fc(x), 2)
    self.last = g -- kept for inspection (expert utilization); not part of the graph's state
    return g
  end
  function Gate:extra_repr() return tostring(self.n) end

  -- A model's gate as models report them (model:gates()): the task it feeds,
  -- its level (nil for one-level models), the nn.Gate and a label per expert
  -- (default "expert 1", "expert 2", ...). The training loop averages
  -- gate.last over evaluation batches into the report's expert utilization.
  function nn.gate_entry(task, level, gate, labels)
    if not labels then
      labels = {}
      for k = 1, gate.n do labels[k] = "expert " .. k end
    end
    return { task = task, level = level, gate = gate, experts = labels }
  end

  -- Mean gate weight per expert over the last batch of a model with gates():
  -- {task = {w1, ..., wn}} (a gate on level l of a leveled model: "task@l").
  function nn.Module:gate_weights()
    local res = {}
    for _, g in ipairs(self.gates and self:gates() or {}) do
      if g.gate.last then
        res[g.level and (g.task .. "@" .. g.level) or g.task] = mtl.mean(g.gate.last, 1):values()
      end
    end
    return res
  end

  -- mix(experts [B, n, d], gate [B, n]) -> [B, d] = sum_k gate[:, k] * experts[:, k, :]
  -- experts may be a list of blocks [B, n_i, d], weighed as if concatenated
  -- along dim 2 (one fused C kernel: no concat, no [B, n, d] product).
  function nn.mix(experts, gate)
    return mtl.mix(experts, gate)
  end
end
