-- CGC: Customized Gate Control, PLE's single extraction level (Tang et al., RecSys 2020).
-- Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
-- Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
--   E_t = task-specific experts of task t on its input     [B, s, h]
--   S   = shared experts on the shared input               [B, m, h]
--   out_t = sum softmax(W_t in_t) * [E_t, S]               [B, h]
--   (Layer with shared_gate, used by PLE below its last level:)
--   shared_out = sum softmax(W_s in_s) * [E_1, ..., E_T, S]
-- The gate weights index the experts in that bracket order.
local nn = require "mtl.nn"

-- One extraction level, reused by ple.lua (a block: CGC.blocks).
local Layer = nn.class("ExtractionLayer")
Layer.block = true
Layer.options = {
  input = { "int", required = true },
  tasks = { "any", required = true, check = function(c, v, path)
    if c:list(v, path, "a list of task names") then
      for i, name in ipairs(v) do c:string(name, path .. "." .. i, "a task name") end
    end
  end },
  specific = { "int", default = 2 },
  shared = { "int", default = 2 },
  expert = { "mlp", default = { 128 } },
  shared_gate = { "boolean", default = false },
  fused = { "boolean", default = true },
}

function Layer:__init(opts)
  self.task_names = opts.tasks
  self.n_specific, self.n_shared = opts.specific, opts.shared
  local expert = opts.expert
  for _, name in ipairs(self.task_names) do
    self["experts_" .. name] = nn.Experts(nn.experts_options(expert, self.n_specific, opts.input, opts.fused))
  end
  self.shared_experts = nn.Experts(nn.experts_options(expert, self.n_shared, opts.input, opts.fused))
  for _, name in ipairs(self.task_names) do
    self["gate_" .. name] = nn.Gate{ input = opts.input, n = self.n_specific + self.n_shared }
  end
  if opts.shared_gate then
    self.shared_gate = nn.Gate{ input = opts.input, n = #self.task_names * self.n_specific + self.n_shared }
  end
  self.output_dim = self.shared_experts.output_dim
end

-- inputs: {task name = [B, input]}, shared: [B, input]
-- returns {task name = [B, h]} and, with a shared gate, shared_out [B, h]
function Layer:forward(inputs, shared)
  local S = self.shared_experts(shared)                      -- [B, m, h]
  local outs, all = {}, {}
  for _, name in ipairs(self.task_names) do
    local E = self["experts_" .. name](inputs[name])         -- [B, s, h]
    all[#all + 1] = E
    outs[name] = nn.mix({ E, S }, self["gate_" .. name](inputs[name]))
  end
  local shared_out
  if self.shared_gate then
    all[#all + 1] = S
    shared_out = nn.mix(all, self.shared_gate(shared))
  end
  return outs, shared_out
end

-- The task gates of this level (level: its number), experts labeled
-- "<task> k" (task-specific) and "shared k".
function Layer:gates(level, out)
  for _, name in ipairs(self.task_names) do
    local labels = {}
    for k = 1, self.n_specific do labels[k] = name .. " " .. k end
    for k = 1, self.n_shared do labels[#labels + 1] = "shared " .. k end
    out[#out + 1] = nn.gate_entry(name, level, self["gate_" .. name], labels)
  end
  return out
end

local CGC = nn.class("CGC")
CGC.Layer = Layer
CGC.blocks = { ExtractionLayer = Layer }

CGC.options = {
  specific = { "int", default = 2 },
  shared = { "int", default = 2 },
  expert = { "mlp", default = { 128 } },
  tower = { "mlp", empty = true, default = { 64 } },
  fused = { "boolean", default = true },
}

function CGC:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  local names = {}
  for i, t in ipairs(self.tasks) do names[i] = t.name end
  self.level1 = Layer{ input = opts.input, tasks = names, specific = opts.specific, shared = opts.shared,
                       expert = opts.expert, fused = opts.fused }
  for _, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.task_tower(t, opts.tower, self.level1.output_dim)
  end
end

function CGC:forward(x)                           -- x [B, input]
  local inputs = {}
  for _, t in ipairs(self.tasks) do inputs[t.name] = x end
  local h = self.level1(inputs, x)               -- {task = [B, h]}
  local out = {}
  for _, t in ipairs(self.tasks) do out[t.name] = nn.head(self["tower_" .. t.name](h[t.name])) end
  return out
end

function CGC:gates() return self.level1:gates(1, {}) end

return CGC
