-- AITM: Adaptive Information Transfer along a conversion funnel (Xi et al., KDD 2021).
-- Xi et al., "Modeling the Sequential Dependence among Audience Multi-step
-- Conversions with Multi-task Learning in Targeted Display Advertising", KDD 2021.
-- Tasks form a chain in list order (click -> pay -> ...). For task t:
--   b   = MLP_bottom(x) (or x when bottom = {})               [B, d]
--   q_t = Tower_t(b)                                          [B, h]
--   p_t = Transfer_t(z_{t-1})                                 [B, h]  (t > 1)
--   AIT unit: w = softmax over u in {p_t, q_t} of <Wq u, Wk u> / sqrt(h)   [B, 2]
--             z_t = sum_u w_u Wv u (z_1 = q_1)                [B, h]
--   logit_t = Linear(z_t)                                     [B]
-- Calibrator (aux loss): alpha * sum_t mean(relu(prob_t - prob_{t-1})):
-- a later step of the funnel should never be likelier than the one before.
local nn = require "mtl.nn"
local mtl = require "mtl"

-- The AIT unit: attention over what the previous task passes on (p) and the
-- task's own tower (q). Its weights [B, 2] stay in self.last, like a gate's.
local AIT = nn.class("AIT")
AIT.block = true
AIT.options = { dim = { "int", required = true } }
function AIT:__init(opts)
  local h = opts.dim
  self.n = 2                                                -- two candidates, as a gate over 2 "experts"
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
AITM.blocks = { AIT = AIT }
AITM.options = {
  bottom = { "mlp", empty = true, default = {} },
  tower = { "mlp", default = { 128, 64 } },
  alpha = { "number", min = 0, default = 0.6 },
}

function AITM:__init(opts)
  self.tasks = nn.tasks(opts.tasks)
  self.alpha = opts.alpha
  local d = opts.input
  if #nn.mlp_hidden(opts.bottom) > 0 then
    self.bottom = nn.MLP(nn.mlp_options(opts.bottom, d))
    d = self.bottom.output_dim
  end
  local tower = nn.mlp_hidden(opts.tower)
  local h = tower[#tower]
  for i, t in ipairs(self.tasks) do
    self["tower_" .. t.name] = nn.MLP(nn.mlp_options(opts.tower, d))
    if i > 1 then
      self["transfer_" .. t.name] = nn.MLP{ input = h, hidden = { h } }
      self["ait_" .. t.name] = AIT{ dim = h }
    end
    self["logit_" .. t.name] = nn.Linear(h, 1)
  end
end

function AITM:forward(x)                                    -- x [B, input]
  local b = self.bottom and self.bottom(x) or x             -- [B, d]
  local out, z = {}, nil
  for i, t in ipairs(self.tasks) do
    local q = self["tower_" .. t.name](b)                   -- [B, h]
    z = i == 1 and q or self["ait_" .. t.name](self["transfer_" .. t.name](z), q)
    out[t.name] = nn.head(self["logit_" .. t.name](z):reshape(x:size(1)))   -- logits, prob [B]
  end
  self.last_out = out
  return out
end

-- The calibrator's penalty on the last forward's output (or on out).
function AITM:aux_loss(out)
  out = out or self.last_out
  local total
  for i = 2, #self.tasks do
    local p = mtl.mean(mtl.relu(out[self.tasks[i].name].prob - out[self.tasks[i - 1].name].prob))
    total = total and total + p or p
  end
  return total and total * self.alpha
end

-- Each AIT unit as a gate over {transferred, own}: how much task t takes
-- from the task before it.
function AITM:gates()
  local out = {}
  for i = 2, #self.tasks do
    local t = self.tasks[i].name
    out[#out + 1] = nn.gate_entry(t, nil, self["ait_" .. t], { "from " .. self.tasks[i - 1].name, "own tower" })
  end
  return out
end

return AITM
