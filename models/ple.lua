-- PLE: Progressive Layered Extraction (stacked CGC levels).
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

-- opts: input, tasks, levels = 2, specific = 2, shared = 2, expert = {128}
--       (or a list of expert sizes per level), tower = {64}
function PLE:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.levels = opts.levels or 2
  local names = {}
  for i, t in ipairs(self.tasks) do names[i] = t.name end
  local input = opts.input
  for l = 1, self.levels do
    local expert = opts.expert or { 128 }
    if type(expert[1]) == "table" then expert = expert[l] end
    self["level" .. l] = CGC.Layer{ input = input, tasks = names, specific = opts.specific, shared = opts.shared,
                                    expert = expert, shared_gate = l < self.levels, fused = opts.fused }
    input = self["level" .. l].output_dim
  end
  for _, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.Tower{ input = input, hidden = t.tower or opts.tower or { 64 } }
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

return PLE
