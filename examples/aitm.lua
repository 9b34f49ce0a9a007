-- AITM (Xi et al., KDD 2021: "Modeling the Sequential Dependence among Audience
-- Multi-step Conversions with Multi-task Learning in Targeted Display Advertising").
-- Tasks form a conversion chain in list order (click -> pay -> ...). For task t:
--   q_t = Tower_t(x) [B, h];   p_t = Transfer_t(z_{t-1}) [B, h]   (t > 1)
--   AIT unit: w = softmax over u in {p_t, q_t} of <Wq u, Wk u> / sqrt(h)   [B, 2]
--             z_t = sum_u w_u Wv u [B, h]  (z_1 = q_1);   logit_t = Linear(z_t) [B]
-- Calibrator: aux = alpha * mean(relu(prob_t - prob_{t-1})): a later step is never likelier.
local nn = require "mtl.nn"
local mtl = require "mtl"

local AIT = nn.class("AIT")
function AIT:__init(h)
  self.query = nn.Linear(h, h)
  self.key = nn.Linear(h, h)
  self.value = nn.Linear(h, h)
end
function AIT:forward(p, q)                                  -- p, q [B, h]
  local B, h = p:size(1), p:size(2)
  local u = mtl.stack({ p, q }, 2):reshape(B * 2, h)        -- rows p_1, q_1, p_2, ...
  local score = mtl.sum(self.query(u) * self.key(u), 2) / math.sqrt(h)   -- [B*2]
  self.last = mtl.softmax(score:reshape(B, 2), 2)           -- [B, 2]: weights of p, q
  return nn.mix(self.value(u):reshape(B, 2, h), self.last)   -- [B, h]
end

local AITM = nn.class("AITM")
function AITM:__init(opts)             -- input, tasks (chain order), tower = {32, 16}, alpha = 0.6
  self.tasks = nn.tasks(opts.tasks)
  self.alpha = opts.alpha or 0.6
  local hidden = opts.tower or { 32, 16 }
  local h = hidden[#hidden]
  for i, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.MLP{ input = opts.input, hidden = hidden }
    if i > 1 then
      self["transfer_" .. t.name] = nn.MLP{ input = h, hidden = { h } }
      self["ait_" .. t.name] = AIT(h)
    end
    self["logit_" .. t.name] = nn.Linear(h, 1)
  end
end
function AITM:forward(x)                                    -- x [B, input]
  local out, z = {}
  for i, t in ipairs(self.tasks) do
    local q = self["tower_" .. t.name](x)                   -- [B, h]
    z = i == 1 and q or self["ait_" .. t.name](self["transfer_" .. t.name](z), q)
    out[t.name] = nn.head(self["logit_" .. t.name](z):reshape(x:size(1)))   -- logits, prob [B]
  end
  self.last_out = out
  return out
end
function AITM:aux_loss(out)            -- the calibrator's penalty (default: the last output)
  out = out or self.last_out
  local total = 0
  for i = 2, #self.tasks do
    total = total + mtl.mean(mtl.relu(out[self.tasks[i].name].prob - out[self.tasks[i - 1].name].prob))
  end
  return total * self.alpha
end
return AITM
