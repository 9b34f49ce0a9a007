-- MMoE: Multi-gate Mixture-of-Experts.
-- Ma et al., "Modeling Task Relationships in Multi-task Learning with
-- Multi-gate Mixture-of-Experts", KDD 2018.
--   e_k = Expert_k(x), k = 1..n                       [B, n, h]
--   g_t = softmax(W_t x)                              [B, n]   (one gate per task)
--   h_t = sum_k g_t[k] e_k                            [B, h]
--   logit_t = Tower_t(h_t)
-- OMoE (one_gate = true): a single gate shared by all tasks.
local nn = require "mtl.nn"

local MMoE = nn.class("MMoE")

-- opts: input, tasks, experts = 4, expert = {256, 128}, tower = {64},
--       one_gate = false, fused = true
function MMoE:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.one_gate = opts.one_gate or false
  local n = opts.experts or 4
  self.experts = nn.Experts{ n = n, input = opts.input, hidden = opts.expert or { 256, 128 },
                             fused = opts.fused }
  local h = self.experts.output_dim
  for _, t in ipairs(self.tasks) do
    if not self.one_gate then self["gate_" .. t.name] = nn.Gate{ input = opts.input, n = n } end
    self["tower_" .. t.name] = nn.Tower{ input = h, hidden = t.tower or opts.tower or { 64 } }
  end
  if self.one_gate then self.gate = nn.Gate{ input = opts.input, n = n } end
end

function MMoE:forward(x)                          -- x [B, input]
  local e = self.experts(x)                       -- [B, n, h]
  local shared = self.one_gate and nn.mix(e, self.gate(x))
  local out = {}
  for _, t in ipairs(self.tasks) do
    local h = shared or nn.mix(e, self["gate_" .. t.name](x))   -- [B, h]
    out[t.name] = nn.head(self["tower_" .. t.name](h))
  end
  return out
end

-- Mean gate weight per expert for each task over the last batch: {task = {w1..wn}}.
function MMoE:gate_weights()
  local res = {}
  for _, t in ipairs(self.tasks) do
    local g = (self.gate or self["gate_" .. t.name]).last
    if g then res[t.name] = require("mtl").mean(g, 1):values() end
  end
  return res
end

return MMoE
