-- CGC: Customized Gate Control, PLE's single extraction level.
-- Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task
-- Learning (MTL) Model for Personalized Recommendations", RecSys 2020.
--   E_t = task-specific experts of task t on its input     [B, s, h]
--   S   = shared experts on the shared input               [B, m, h]
--   out_t = sum softmax(W_t in_t) * [E_t, S]               [B, h]
--   (Layer with shared_gate, used by PLE below its last level:)
--   shared_out = sum softmax(W_s in_s) * [E_1, ..., E_T, S]
-- The gate weights index the experts in that bracket order.
local nn = require "mtl.nn"

-- One extraction level, reused by ple.lua.
local Layer = nn.class("ExtractionLayer")

-- opts: input, tasks (names), specific = 2, shared = 2, expert = {128},
--       shared_gate = false, fused
function Layer:__init(opts)
  self.task_names = opts.tasks
  self.n_specific, self.n_shared = opts.specific or 2, opts.shared or 2
  local expert = opts.expert or { 128 }
  for _, name in ipairs(self.task_names) do
    self["experts_" .. name] = nn.Experts{ n = self.n_specific, input = opts.input, hidden = expert, fused = opts.fused }
  end
  self.shared_experts = nn.Experts{ n = self.n_shared, input = opts.input, hidden = expert, fused = opts.fused }
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

local CGC = nn.class("CGC")
CGC.Layer = Layer

-- opts: input, tasks, specific = 2, shared = 2, expert = {128}, tower = {64}
function CGC:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  local names = {}
  for i, t in ipairs(self.tasks) do names[i] = t.name end
  self.level1 = Layer{ input = opts.input, tasks = names, specific = opts.specific, shared = opts.shared,
                       expert = opts.expert, fused = opts.fused }
  for _, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.Tower{ input = self.level1.output_dim, hidden = t.tower or opts.tower or { 64 } }
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

return CGC
