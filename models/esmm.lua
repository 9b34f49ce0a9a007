-- ESMM: Entire Space Multi-Task Model.
-- Ma et al., "Entire Space Multi-Task Model: An Effective Approach for
-- Estimating Post-Click Conversion Rate", SIGIR 2018.
--   pCTR = sigmoid(Tower_ctr(x)),  pCVR = sigmoid(Tower_cvr(x))
--   pCTCVR = pCTR * pCVR
-- Both losses run over all impressions: BCE(pCTR, is_click) and
-- BCE(pCTCVR, is_click AND is_pay); pCVR is never fit on clicks alone, which
-- avoids the sample selection bias of a CVR model trained on clicked rows.
local nn = require "mtl.nn"
local mtl = require "mtl"

local ESMM = nn.class("ESMM")

-- opts: input, tower = {256, 128, 64} (each tower an MLP then Linear(., 1)),
--       ctr = {name=, label=}, cvr = {name=, label=} (defaults ctr/is_click, cvr/is_pay)
function ESMM:__init(opts)
  self.ctr_task = opts.ctr or { name = "ctr", label = "is_click" }
  self.cvr_task = opts.cvr or { name = "cvr", label = "is_pay" }
  local hidden = opts.tower or { 256, 128, 64 }
  self.ctr = nn.Tower{ input = opts.input, hidden = hidden, batch_norm = opts.batch_norm }
  self.cvr = nn.Tower{ input = opts.input, hidden = hidden, batch_norm = opts.batch_norm }
  self.tasks = nn.tasks{ self.ctr_task, self.cvr_task }
end

function ESMM:forward(x)                          -- x [B, input]
  local ctr, cvr = nn.head(self.ctr(x)), nn.head(self.cvr(x))   -- logits, prob [B]
  return {
    [self.ctr_task.name] = ctr,
    [self.cvr_task.name] = cvr,
    ctcvr = { prob = ctr.prob * cvr.prob },       -- pCTCVR [B]
  }
end

-- ESMM's own losses: CTR on clicks, CTCVR on click AND pay, both on probabilities.
function ESMM:default_losses()
  return {
    { name = self.ctr_task.name, output = self.ctr_task.name, label = self.ctr_task.label, on = "prob" },
    { name = "ctcvr", output = "ctcvr", label = { self.ctr_task.label, self.cvr_task.label }, on = "prob" },
  }
end

-- Evaluation: CTR over all impressions, CVR over clicked rows only (its true
-- space), CTCVR over all impressions.
function ESMM:eval_targets()
  local c, v = self.ctr_task, self.cvr_task
  return {
    { name = c.name, output = c.name, label = c.label },
    { name = v.name, output = v.name, label = v.label, mask = c.label },
    { name = "ctcvr", output = "ctcvr", label = { c.label, v.label } },
  }
end

return ESMM
