-- PLE: Progressive Layered Extraction, stacked CGC levels (Tang et al., RecSys 2020).
-- Tang et al., "Progressive Layered Extraction (PLE)", RecSys 2020.
--   level 1: task inputs = shared input = x
--   level l: CGC layer; on every level but the last a shared gate mixes all
--            experts [E_1 .. E_T, S] into the next level's shared input,
--            and each task's output is its next task input.
--   logit_t = Tower_t(out_t of the last level)
-- With levels = 1 it computes exactly what CGC computes (same weights).
local nn = require "mtl.nn"
local CGC = require "models.cgc"

local PLE = nn.class("PLE")

-- Whether expert gives one MLP per level (a list of them) rather than one for all.
local function per_level(expert) return type(expert) == "table" and expert.hidden == nil and type(expert[1]) == "table" end

-- expert: one MLP (layer sizes or {hidden =, ...}) for every level, or a list of them, one per level.
local function check_expert(c, v, path, opts)
  if not per_level(v) then c:mlp(v, path) return end
  if not c:list(v, path, "a list of layer sizes, or one per level") then return end
  for i, e in ipairs(v) do c:mlp(e, path .. "." .. i) end
  if type(opts.levels) == "number" and #v ~= opts.levels then
    c:err("'%s' gives %d levels of expert sizes, %s is %d", path, #v, path:gsub("expert$", "levels"), opts.levels)
  end
end

PLE.options = {
  levels = { "int", default = 2 },
  specific = { "int", default = 2 },
  shared = { "int", default = 2 },
  expert = { "any", default = { 128 }, check = check_expert },
  tower = { "mlp", empty = true, default = { 64 } },
  fused = { "boolean", default = true },
}

PLE.bench = { spec = { levels = 2, specific = 2, shared = 2, expert = { 128 }, tower = { 64 } } }

function PLE:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.levels = opts.levels
  local names = {}
  for i, t in ipairs(self.tasks) do names[i] = t.name end
  local input = opts.input
  for l = 1, self.levels do
    local expert = opts.expert
    if per_level(expert) then expert = expert[l] end
    self["level" .. l] = CGC.Layer{ input = input, tasks = names, specific = opts.specific, shared = opts.shared,
                                    expert = expert, shared_gate = l < self.levels, fused = opts.fused }
    input = self["level" .. l].output_dim
  end
  for _, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.task_tower(t, opts.tower, input)
  end
end

function PLE:forward(x)                           -- x [B, input]
  local inputs, shared = {}, x
  for _, t in ipairs(self.tasks) do inputs[t.name] = x end
  for l = 1, self.levels do
    inputs, shared = self["level" .. l](inputs, shared)   -- {task = [B, h]}, [B, h] or nil
  end
  local out = {}
  for _, t in ipairs(self.tasks) do out[t.name] = nn.head(self["tower_" .. t.name](inputs[t.name])) end
  return out
end

function PLE:gates()
  local out = {}
  for l = 1, self.levels do self["level" .. l]:gates(l, out) end
  return out
end

-- EasyRec's model_class PLE: extraction_networks, one per level.
PLE.easyrec = {
  class = "PLE", field = "ple",
  map = function(m, model, er)
    model.tasks = er.task_towers(m)
    local nets = m:get("extraction_networks")
    if #nets == 0 then m:err(nil, "PLE needs extraction_networks") end
    local specific, shared, experts = nil, nil, {}
    for l, net in ipairs(nets) do
      net:get("network_name")
      local s, h = net:get("expert_num_per_task"), net:get("share_num")
      if not net:has("expert_num_per_task") or s < 1 then
        net:err(net:has("expert_num_per_task") and "expert_num_per_task" or nil, "'%s' needs expert_num_per_task >= 1", net.path)
      end
      if not net:has("share_num") then
        net:err(nil, "'%s' has no share_num; mtl's PLE has the same number of shared experts on every level", net.path)
      elseif h < 1 then net:verr("share_num", nil, "'%s.share_num' must be >= 1", net.path) end
      if specific and s ~= specific then
        net:unsupported_value("expert_num_per_task", string.format("mtl's PLE has the same expert_num_per_task on every level (%d on level 1)", specific))
      end
      if shared and h and h ~= shared then
        net:unsupported_value("share_num", string.format("mtl's PLE has the same share_num on every level (%d on level 1)", shared))
      end
      specific, shared = specific or s, shared or h
      local task_net = er.dnn(net:get("task_expert_net"))
      if not net.values.task_expert_net then net:err(nil, "'%s' needs task_expert_net", net.path) end
      local share_net = net.values.share_expert_net and er.dnn(net:get("share_expert_net"))
      net.used.share_expert_net = true
      if share_net and not er.same_dnn(share_net, task_net) then
        net:err("share_expert_net", "mtl's PLE experts of one level have one shape; task_expert_net is {%s}, share_expert_net is {%s}",
          table.concat(task_net.hidden, ", "), table.concat(share_net.hidden, ", "))
      end
      if #task_net.hidden == 0 then net:err("task_expert_net", "'%s.task_expert_net' needs hidden_units", net.path) end
      experts[l] = task_net
    end
    model.levels = #nets
    model.specific, model.shared = specific, shared
    local all_same = true
    for l = 2, #experts do if not er.same_dnn(experts[l], experts[1]) then all_same = false end end
    model.expert = all_same and experts[1] or experts
  end,
}

return PLE
