-- DBMTL: Deep Bayesian Multi-Target Learning, tasks that read the tasks they depend on (Zhang et al., 2019).
-- Zhang et al., "Deep Bayesian Multi-Target Learning for Recommender
-- Systems" (2019); the EasyRec implementation's wiring.
--   b   = MLP_bottom(x)                       (optional; or an MMoE bottom)
--   h_t = Tower_t(b)                          task tower hidden [B, h_t]
--   r_t = Relation_t(concat(h_t, r_d for each d in deps(t)))
--   logit_t = Linear(r_t)   (or Linear(h_t) with logit_input = "tower")
-- deps form a DAG (e.g. click -> cart -> pay): P(l, m | x) = P(l | x) P(m | l, x).
-- A task without a relation MLP passes concat(h_t, r_d ...) on unchanged.
local nn = require "mtl.nn"
local mtl = require "mtl"
local join = require("mtl.config.check").join
local did_you_mean = require("mtl.config.util").did_you_mean

local DBMTL = nn.class("DBMTL")

-- bottom: an MLP (layer sizes or {hidden =, ...}), or false for none.
local function check_bottom(c, v, path)
  if v ~= false then c:mlp(v, path, true) end
end

-- mmoe: {experts = n, expert = MLP}, an MMoE between the bottom and the towers.
local function check_mmoe(c, v, path)
  if not c:table(v, path, "{experts = n, expert = {sizes}}") then return end
  c:keys(v, path, { "experts", "expert" })
  if v.experts == nil then v.experts = 4 else c:number(v.experts, path .. ".experts", { int = true, min = 1 }) end
  if v.expert ~= nil then c:mlp(v.expert, path .. ".expert") end
end

DBMTL.options = {
  bottom = { "any", default = { 256, 128 }, check = check_bottom },
  mmoe = { "any", check = check_mmoe },
  tower = { "mlp", empty = true, default = { 64 } },
  relation = { "mlp", empty = true },
}

-- Per task, besides name, label, tower, ...: the tasks it depends on, its
-- relation MLP, and what its logit reads.
DBMTL.task_options = {
  relations = { "any", check = function(c, v, path)
    if c:list(v, path, "a list of task names", true) then
      for j, r in ipairs(v) do c:string(r, path .. "." .. j, "a task name") end
    end
  end },
  relation = { "mlp", empty = true },
  logit_input = { "enum", values = { "relation", "tower" } },
}

DBMTL.bench = {
  spec = { bottom = { 256, 128 }, tower = { 64 },
           tasks = { { name = "click", label = "is_click", relation = { 32 }, logit_input = "tower" },
                     { name = "pay", label = "is_pay", relations = { "click" } } } },
}

-- Every relation names another task of the model.
function DBMTL.check(c, m, path)
  if type(m.tasks) ~= "table" then return end
  local names = {}
  for _, t in ipairs(m.tasks) do
    local name = type(t) == "table" and t.name or t
    if type(name) == "string" then names[name] = true end
  end
  for i, t in ipairs(m.tasks) do
    if type(t) == "table" and type(t.relations) == "table" then
      local p = join(path, "tasks." .. i .. ".relations")
      for j, r in ipairs(t.relations) do
        if r == t.name then c:err("'%s.%d': task '%s' cannot depend on itself", p, j, r)
        elseif type(r) == "string" and not names[r] then
          c:err("'%s.%d': no task is named '%s'%s", p, j, r, did_you_mean(r, names))
        end
      end
    end
  end
end

-- Orders tasks so that every task comes after the tasks it depends on;
-- a cycle is a configuration error.
function DBMTL.topo_order(tasks)
  local by_name = {}
  for _, t in ipairs(tasks) do by_name[t.name] = t end
  local order, state = {}, {}
  local function visit(t, path)
    if state[t.name] == "done" then return end
    if state[t.name] == "active" then
      error("dbmtl: the task relations form a cycle: " .. table.concat(path, " -> ") .. " -> " .. t.name, 0)
    end
    state[t.name] = "active"
    path[#path + 1] = t.name
    for _, d in ipairs(t.relations or {}) do visit(by_name[d], path) end
    path[#path] = nil
    state[t.name] = "done"
    order[#order + 1] = t
  end
  for _, t in ipairs(tasks) do visit(t, {}) end
  return order
end

function DBMTL:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.order = DBMTL.topo_order(self.tasks)
  local dim = opts.input
  if opts.bottom ~= false then
    self.bottom = nn.MLP(nn.mlp_options(opts.bottom, dim))
    dim = self.bottom.output_dim
  end
  if opts.mmoe then
    local n = opts.mmoe.experts or 4
    self.experts = nn.Experts(nn.experts_options(opts.mmoe.expert or { 128 }, n, dim))
    for _, t in ipairs(self.tasks) do self["gate_" .. t.name] = nn.Gate{ input = dim, n = n } end
    dim = self.experts.output_dim
  end
  local dims = {}
  for _, t in ipairs(self.tasks) do dims[t.name] = dim end
  DBMTL.build_heads(self, opts, dims)
end

-- The task heads, in self.order (also models/backbone.lua's): per task t a
-- tower MLP on its input (dims[t]: its width), the relation MLP on [tower ;
-- the relation outputs of the tasks it depends on], a Linear to the logit.
function DBMTL.build_heads(self, opts, dims)
  local rel_dim = {}
  for _, t in ipairs(self.order) do
    local tower = nn.MLP(nn.mlp_options(t.tower or opts.tower, dims[t.name]))
    self["tower_" .. t.name] = tower
    local in_dim = tower.output_dim
    for _, d in ipairs(t.relations or {}) do in_dim = in_dim + rel_dim[d] end
    local relation = t.relation or opts.relation
    if relation and #nn.mlp_hidden(relation) > 0 then
      self["relation_" .. t.name] = nn.MLP(nn.mlp_options(relation, in_dim))
      rel_dim[t.name] = self["relation_" .. t.name].output_dim
    else
      rel_dim[t.name] = in_dim
    end
    local logit_in = (t.logit_input == "tower") and tower.output_dim or rel_dim[t.name]
    self["logit_" .. t.name] = nn.Linear(logit_in, t.classes or 1)
  end
end

-- The heads on each task's input (input_of(t) -> [B, d]): {task = {logits, prob}}.
function DBMTL.run_heads(self, input_of)
  local rel, out = {}, {}
  for _, t in ipairs(self.order) do
    local h = self["tower_" .. t.name](input_of(t))  -- [B, tower]
    local parts = { h }
    for _, d in ipairs(t.relations or {}) do parts[#parts + 1] = rel[d] end
    local r = #parts > 1 and mtl.concat(parts, 2) or h
    if self["relation_" .. t.name] then r = self["relation_" .. t.name](r) end
    rel[t.name] = r                               -- [B, relation]
    local logits = self["logit_" .. t.name](t.logit_input == "tower" and h or r)
    out[t.name] = nn.head(t.classes == 2 and logits or logits:reshape(logits:size(1)))
  end
  return out
end

function DBMTL:forward(x)                         -- x [B, input]
  local b = self.bottom and self.bottom(x) or x   -- [B, bottom]
  local e = self.experts and self.experts(b)      -- [B, n, h]
  return DBMTL.run_heads(self, function(t)
    return e and nn.mix(e, self["gate_" .. t.name](b)) or b
  end)
end

-- With an MMoE bottom: one gate per task.
function DBMTL:gates()
  local out = {}
  if not self.experts then return out end
  for _, t in ipairs(self.tasks) do out[#out + 1] = nn.gate_entry(t.name, nil, self["gate_" .. t.name]) end
  return out
end

-- EasyRec's model_class DBMTL: bottom_dnn, an optional MMoE (expert_dnn,
-- num_expert), task towers with relation_tower_names and relation_dnn.
DBMTL.easyrec = {
  class = "DBMTL", field = "dbmtl",
  unsupported = {
    ["DBMTL.bottom_cmbf"] = "CMBF fuses image features (pretrained image embeddings) and text with cross-modal transformers; mtl has neither image features nor such a bottom",
    ["DBMTL.bottom_uniter"] = "UNITER fuses image features (pretrained image embeddings) and text with a transformer; mtl has neither image features nor such a bottom",
    ["DBMTL.sequence_dnn"] = "an MLP over the sequences of CMBF and UNITER bottoms, which mtl does not have",
    ["DBMTL.use_feature_bn"] = "mtl does not batch-normalize the input features",
  },
  map = function(m, model, er)
    model.tasks = er.task_towers(m, { bayes = true })
    model.bottom = m.values.bottom_dnn and er.dnn(m:get("bottom_dnn")) or false
    m.used.bottom_dnn = true
    if model.bottom and #model.bottom.hidden == 0 then model.bottom = false end
    local n = m:get("num_expert")
    if m.values.expert_dnn or n > 0 then
      if not m.values.expert_dnn then m:err("num_expert", "DBMTL's MMoE bottom needs expert_dnn") end
      if n < 1 then m:err(m:has("num_expert") and "num_expert" or "expert_dnn", "DBMTL's MMoE bottom needs num_expert >= 1") end
      model.mmoe = { experts = n, expert = er.dnn(m:get("expert_dnn")) }
    end
  end,
}

return DBMTL
