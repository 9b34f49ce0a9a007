-- Shared-bottom: one bottom MLP shared by all tasks, hard or soft (Caruana 1997).
-- Caruana, "Multitask Learning", Machine Learning 28 (1997); Ruder, "An
-- Overview of Multi-Task Learning in Deep Neural Networks" (2017) for the
-- two sharing modes. The seed's NaiveMultiTask.
--   hard sharing:  h = MLP_bottom(x);  logit_t = Tower_t(h)
--   soft sharing:  logit_t = Tower_t(MLP_t(x)), one full stack per task, plus
--                  penalty = weight * sum_l sum_{t<u} ||W_l^t - W_l^u||^2
--                  pulling corresponding bottom layers together.
local nn = require "mtl.nn"
local mtl = require "mtl"

local SharedBottom = nn.class("SharedBottom")

SharedBottom.options = {
  bottom = { "mlp", empty = true, default = { 256, 128 } },
  tower = { "mlp", empty = true, default = { 64 } },
  sharing = { "enum", values = { "hard", "soft" }, default = "hard" },
  soft_weight = { "number", min = 0, default = 1e-4 },
  batch_norm = { "boolean", default = false },
  dropout = { "any", default = 0, check = nn.check_dropout },
}

SharedBottom.bench = {
  spec = { bottom = { 256, 128 }, tower = { 64 } },
  paper = { bottom = { 113 }, tower = { 8 } },
}

function SharedBottom:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.sharing = opts.sharing
  self.soft_weight = opts.soft_weight
  local mlp = nn.mlp_options(opts.bottom, opts.input, { batch_norm = opts.batch_norm, dropout = opts.dropout })
  if self.sharing == "hard" then self.bottom = nn.MLP(mlp) end
  for _, t in ipairs(self.tasks) do
    if self.sharing == "soft" then self["bottom_" .. t.name] = nn.MLP(mlp) end
    local h = (self.bottom or self["bottom_" .. t.name]).output_dim
    self["tower_" .. t.name] = nn.task_tower(t, opts.tower, h)
  end
end

function SharedBottom:forward(x)                 -- x [B, input]
  local out = {}
  local h = self.bottom and self.bottom(x)       -- [B, bottom[-1]]
  for _, t in ipairs(self.tasks) do
    local ht = h or self["bottom_" .. t.name](x)
    out[t.name] = nn.head(self["tower_" .. t.name](ht))   -- logits, prob [B]
  end
  return out
end

-- Soft sharing's L2 penalty between corresponding bottom layers (nil for hard).
function SharedBottom:aux_loss()
  if self.sharing ~= "soft" or #self.tasks < 2 then return nil end
  local total
  for i = 1, #self.tasks do
    for j = i + 1, #self.tasks do
      local a, b = self["bottom_" .. self.tasks[i].name], self["bottom_" .. self.tasks[j].name]
      for l = 1, a.n do
        local d = a["fc" .. l].weight - b["fc" .. l].weight
        local s = mtl.sum(d * d)
        total = total and total + s or s
      end
    end
  end
  return total * self.soft_weight
end

-- EasyRec's model_class SimpleMultiTask: no shared layers, each tower reads
-- the concatenated features.
SharedBottom.easyrec = {
  class = "SimpleMultiTask", field = "simple_multi_task",
  map = function(m, model, er)
    model.tasks = er.task_towers(m)
    model.bottom = {}
  end,
}

return SharedBottom
