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

-- experts: a count (each expert an `expert` MLP), or a list of MLPs, one per
-- expert (EasyRec's deprecated experts { dnn }); their last sizes agree.
local function check_experts(c, v, path)
  if type(v) == "number" then c:number(v, path, { int = true, min = 1 }) return end
  if not c:list(v, path, "a count, or a list of expert MLPs") then return end
  local last
  for i, e in ipairs(v) do
    if c:mlp(e, path .. "." .. i) then
      local h = nn.mlp_hidden(e)
      if last and h[#h] ~= last then
        c:err("'%s.%d' ends with %d units, expert 1 with %d: the gates mix experts of one size", path, i, h[#h], last)
      end
      last = last or h[#h]
    end
  end
end

MMoE.options = {
  experts = { "any", default = 4, check = check_experts },
  expert = { "mlp", default = { 256, 128 } },
  tower = { "mlp", empty = true, default = { 64 } },
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
  local n, h = opts.experts, nil
  if type(n) == "table" then                      -- experts of their own shapes
    self.n_lists = #n
    for k, e in ipairs(n) do
      self["expert" .. k] = nn.Experts(nn.experts_options(e, 1, opts.input, opts.fused))
      h = self["expert" .. k].output_dim
    end
    n = #n
  else
    self.experts = nn.Experts(nn.experts_options(opts.expert, n, opts.input, opts.fused))
    h = self.experts.output_dim
  end
  for _, t in ipairs(self.tasks) do
    if not self.one_gate then self["gate_" .. t.name] = nn.Gate{ input = opts.input, n = n } end
    self["tower_" .. t.name] = nn.task_tower(t, opts.tower, h)
  end
  if self.one_gate then self.gate = nn.Gate{ input = opts.input, n = n } end
end

-- [B, n, h], or a list of [B, 1, h] (experts of their own shapes; nn.mix takes either).
function MMoE:expert_outputs(x)
  if self.experts then return self.experts(x) end
  local list = {}
  for k = 1, self.n_lists do list[k] = self["expert" .. k](x) end
  return list
end

function MMoE:forward(x)                          -- x [B, input]
  local e = self:expert_outputs(x)                -- [B, n, h]
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
    model.tasks = er.task_towers(m)
    local list = m:get("experts")
    if #list > 0 then -- the deprecated form: one DNN per expert
      if m:has("expert_dnn") or m:has("num_expert") then
        m:err("experts", "give experts, or expert_dnn and num_expert, not both")
        m.used.expert_dnn, m.used.num_expert = true, true
      end
      model.experts = {}
      for i, e in ipairs(list) do
        e:get("expert_name")
        if not e.values.dnn then e:err(nil, "'%s' needs a dnn", e.path) end
        model.experts[i] = er.dnn(e:get("dnn"))
      end
      return
    end
    if not m.values.expert_dnn then m:err(nil, "MMoE needs expert_dnn (and num_expert), or experts") end
    model.expert = er.dnn(m:get("expert_dnn"))
    local n = m:get("num_expert")
    if n < 1 then m:err(m:has("num_expert") and "num_expert" or nil, "MMoE needs num_expert >= 1") end
    model.experts = n
  end,
}

return MMoE
