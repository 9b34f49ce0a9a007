-- MMoE: Multi-gate Mixture-of-Experts (Ma et al., KDD 2018).
-- Ma et al., "Modeling Task Relationships in Multi-task Learning with
-- Multi-gate Mixture-of-Experts", KDD 2018.
--   e_k = Expert_k(x), k = 1..n                       [B, n, h]
--   g_t = softmax(W_t x)                              [B, n]   (one gate per task)
--   h_t = sum_k g_t[k] e_k                            [B, h]
--   logit_t = Tower_t(h_t)
-- OMoE (one_gate = true): a single gate shared by all tasks.
local nn = require "mtl.nn"

local MMoE = nn.class("MMoE")

MMoE.options = {
  experts = { "int", default = 4 },
  expert = { "sizes", default = { 256, 128 } },
  tower = { "sizes", empty = true, default = { 64 } },
  one_gate = { "boolean", default = false },
  fused = { "boolean", default = true },
}

-- The benchmark's settings (bench/SPEC.md section 3; "paper": section 6.2).
MMoE.bench = {
  spec = { experts = 4, expert = { 256, 128 }, tower = { 64 } },
  paper = { experts = 8, expert = { 16 }, tower = { 8 } },
}

function MMoE:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.one_gate = opts.one_gate
  local n = opts.experts
  self.experts = nn.Experts{ n = n, input = opts.input, hidden = opts.expert, fused = opts.fused }
  local h = self.experts.output_dim
  for _, t in ipairs(self.tasks) do
    if not self.one_gate then self["gate_" .. t.name] = nn.Gate{ input = opts.input, n = n } end
    self["tower_" .. t.name] = nn.Tower{ input = h, hidden = t.tower or opts.tower }
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

-- The gates, one per task (OMoE: the shared one under every task's name).
function MMoE:gates()
  local out = {}
  for _, t in ipairs(self.tasks) do
    out[#out + 1] = nn.gate_entry(t.name, nil, self.gate or self["gate_" .. t.name])
  end
  return out
end

-- EasyRec's model_class MMoE: expert_dnn and num_expert.
MMoE.easyrec = {
  class = "MMoE", field = "mmoe",
  map = function(m, model, er)
    if m:has("experts") then m:unsupported("experts", "give expert_dnn and num_expert (mtl's experts all have the same shape)") end
    if not m.values.expert_dnn then m:err(nil, "MMoE needs expert_dnn (and num_expert)") end
    model.expert = er.dnn_sizes(m:get("expert_dnn"))
    local n = m:get("num_expert")
    if n < 1 then m:err(m:has("num_expert") and "num_expert" or nil, "MMoE needs num_expert >= 1") end
    model.experts = n
    model.tasks = er.task_towers(m)
  end,
}

return MMoE
