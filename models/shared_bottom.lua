-- Shared-bottom multi-task model (the seed's NaiveMultiTask).
-- Caruana, "Multitask Learning", Machine Learning 28 (1997); Ruder, "An
-- Overview of Multi-Task Learning in Deep Neural Networks" (2017) for the
-- two sharing modes.
--   hard sharing:  h = MLP_bottom(x);  logit_t = Tower_t(h)
--   soft sharing:  logit_t = Tower_t(MLP_t(x)), one full stack per task, plus
--                  penalty = weight * sum_l sum_{t<u} ||W_l^t - W_l^u||^2
--                  pulling corresponding bottom layers together.
local nn = require "mtl.nn"
local mtl = require "mtl"

local SharedBottom = nn.class("SharedBottom")

-- opts: input (size of x), tasks, bottom = {256, 128}, tower = {64},
--       sharing = "hard" | "soft", soft_weight = 1e-4, batch_norm, dropout
function SharedBottom:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.sharing = opts.sharing or "hard"
  assert(self.sharing == "hard" or self.sharing == "soft",
    "shared_bottom: sharing must be 'hard' or 'soft', got " .. tostring(self.sharing))
  self.soft_weight = opts.soft_weight or 1e-4
  local mlp = { input = opts.input, hidden = opts.bottom or { 256, 128 },
                batch_norm = opts.batch_norm, dropout = opts.dropout }
  if self.sharing == "hard" then self.bottom = nn.MLP(mlp) end
  for _, t in ipairs(self.tasks) do
    if self.sharing == "soft" then self["bottom_" .. t.name] = nn.MLP(mlp) end
    local h = (self.bottom or self["bottom_" .. t.name]).output_dim
    self["tower_" .. t.name] = nn.Tower{ input = h, hidden = t.tower or opts.tower or { 64 } }
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

return SharedBottom
