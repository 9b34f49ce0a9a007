-- DBMTL: Deep Bayesian Multi-Target Learning.
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

local DBMTL = nn.class("DBMTL")

-- Orders tasks so that every task comes after the tasks it depends on;
-- an unknown task or a cycle is a configuration error.
local function topo_order(tasks)
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
    for _, d in ipairs(t.relations or {}) do
      if not by_name[d] then
        error(string.format("dbmtl: task '%s' depends on unknown task '%s'", t.name, d), 0)
      end
      visit(by_name[d], path)
    end
    path[#path] = nil
    state[t.name] = "done"
    order[#order + 1] = t
  end
  for _, t in ipairs(tasks) do visit(t, {}) end
  return order
end

-- opts: input, tasks (each: name, label, relations = {names}, tower = {64},
--       relation = {32} or nil, logit_input = "relation" | "tower"),
--       bottom = {256, 128} (or false), mmoe = {experts=, expert=} (optional)
function DBMTL:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.order = topo_order(self.tasks)
  local dim = opts.input
  if opts.bottom ~= false then
    self.bottom = nn.MLP{ input = dim, hidden = opts.bottom or { 256, 128 } }
    dim = self.bottom.output_dim
  end
  if opts.mmoe then
    self.experts = nn.Experts{ n = opts.mmoe.experts or 4, input = dim, hidden = opts.mmoe.expert or { 128 } }
    for _, t in ipairs(self.tasks) do self["gate_" .. t.name] = nn.Gate{ input = dim, n = opts.mmoe.experts or 4 } end
    dim = self.experts.output_dim
  end
  local rel_dim = {}
  for _, t in ipairs(self.order) do
    local tower = nn.MLP{ input = dim, hidden = t.tower or opts.tower or { 64 } }
    self["tower_" .. t.name] = tower
    local in_dim = tower.output_dim
    for _, d in ipairs(t.relations or {}) do in_dim = in_dim + rel_dim[d] end
    local relation = t.relation or opts.relation
    if relation and #relation > 0 then
      self["relation_" .. t.name] = nn.MLP{ input = in_dim, hidden = relation }
      rel_dim[t.name] = self["relation_" .. t.name].output_dim
    else
      rel_dim[t.name] = in_dim
    end
    local logit_in = (t.logit_input == "tower") and tower.output_dim or rel_dim[t.name]
    self["logit_" .. t.name] = nn.Linear(logit_in, 1)
  end
end

function DBMTL:forward(x)                         -- x [B, input]
  local b = self.bottom and self.bottom(x) or x   -- [B, bottom]
  local e = self.experts and self.experts(b)      -- [B, n, h]
  local rel, out = {}, {}
  for _, t in ipairs(self.order) do
    local inp = e and nn.mix(e, self["gate_" .. t.name](b)) or b
    local h = self["tower_" .. t.name](inp)       -- [B, tower]
    local parts = { h }
    for _, d in ipairs(t.relations or {}) do parts[#parts + 1] = rel[d] end
    local r = #parts > 1 and mtl.concat(parts, 2) or h
    if self["relation_" .. t.name] then r = self["relation_" .. t.name](r) end
    rel[t.name] = r                               -- [B, relation]
    local logits = self["logit_" .. t.name](t.logit_input == "tower" and h or r)
    out[t.name] = nn.head(logits:reshape(logits:size(1)))
  end
  return out
end

return DBMTL
