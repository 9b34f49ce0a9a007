-- ESMM: Entire Space Multi-Task Model, pCTCVR = pCTR * pCVR (Ma et al., SIGIR 2018).
-- Ma et al., "Entire Space Multi-Task Model: An Effective Approach for
-- Estimating Post-Click Conversion Rate", SIGIR 2018.
--   pCTR = sigmoid(Tower_ctr(x)),  pCVR = sigmoid(Tower_cvr(x))
--   pCTCVR = pCTR * pCVR
-- Both losses run over all impressions: BCE(pCTR, is_click) and
-- BCE(pCTCVR, is_click AND is_pay); pCVR is never fit on clicks alone, which
-- avoids the sample selection bias of a CVR model trained on clicked rows.
local nn = require "mtl.nn"
local join = require("mtl.config.check").join

local ESMM = nn.class("ESMM")

local DEFAULT = { ctr = { name = "ctr", label = "is_click" }, cvr = { name = "cvr", label = "is_pay" } }

-- ctr, cvr: a task name or {name =, label =} (label defaults to the name).
local function check_task(c, v, path, opts)
  if type(v) == "string" then v = { name = v }; opts[path:match("[^.]+$")] = v end -- "ctr" or "cvr"
  if not c:table(v, path, "a task {name =, label =}") then return end
  c:keys(v, path, { "name", "label" }, function(k)
    if k == "weight" or k == "mask" or k == "tower" then
      return " (ESMM's losses are fixed; give 'losses' to weight them, 'model.tower' for the towers)"
    end
  end)
  c:string(v.name, path .. ".name", "a task name")
  if v.label == nil then v.label = v.name end
  if c.label_ref then c:label_ref(v.label, path .. ".label") end
end

ESMM.options = {
  tower = { "sizes", empty = true, default = { 256, 128, 64 } },
  ctr = { "any", default = DEFAULT.ctr, check = check_task },
  cvr = { "any", default = DEFAULT.cvr, check = check_task },
  batch_norm = { "boolean", default = false },
}

ESMM.bench = { spec = { tower = { 256, 128, 64 } } }

-- ESMM has two fixed tasks: model.tasks = {ctr task, cvr task} is another
-- way to give model.ctr and model.cvr (runs before the options are checked).
function ESMM.check_tasks(c, m, path)
  local tasks = join(path, "tasks")
  if m.tasks ~= nil then
    if c:list(m.tasks, tasks, "a list of two tasks {name =, label =} (ctr, then cvr)") and #m.tasks ~= 2 then
      c:err("'%s': esmm has exactly two tasks (ctr, then cvr), got %d", tasks, #m.tasks)
    elseif #m.tasks == 2 then
      for i, role in ipairs({ "ctr", "cvr" }) do
        if m[role] ~= nil then c:err("'%s' and '%s' both give the esmm %s task; give one", join(path, role), tasks, role)
        else m[role] = m.tasks[i] end
      end
    end
    m.tasks = nil
  end
end

-- After the options: the two tasks need two names.
function ESMM.check(c, m, path)
  if type(m.ctr) == "table" and type(m.cvr) == "table" and m.ctr.name == m.cvr.name then
    c:err("'%s': the esmm tasks need two names, both are '%s'", join(path, "cvr.name"), tostring(m.ctr.name))
  end
end

function ESMM:__init(opts)
  self.ctr_task, self.cvr_task = opts.ctr, opts.cvr
  self.ctr = nn.Tower{ input = opts.input, hidden = opts.tower, batch_norm = opts.batch_norm }
  self.cvr = nn.Tower{ input = opts.input, hidden = opts.tower, batch_norm = opts.batch_norm }
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

-- Ranking: both task outputs are probabilities in their own space (pCVR is
-- conditional on the click), not products to divide.
function ESMM:direct_outputs()
  return { [self.ctr_task.name] = true, [self.cvr_task.name] = true }
end

-- EasyRec's model_class ESMM: ctr_tower and cvr_tower of one shape.
ESMM.easyrec = {
  class = "ESMM", field = "esmm", maps_use_bn = true,
  unsupported = { ["ESMM.groups"] = "mtl's ESMM reads all features through one group" },
  map = function(m, model, er)
    local ctr, cvr = m:get("ctr_tower"), m:get("cvr_tower")
    if not ctr then m:err(nil, "ESMM needs ctr_tower") end
    if not cvr then m:err(nil, "ESMM needs cvr_tower") end
    if not (ctr and cvr) then return end
    local tc, tv = er.map_task(ctr, 1), er.map_task(cvr, 2)
    if not er.same_list(tc.tower, tv.tower) then
      cvr:err("dnn", "mtl's ESMM towers have one shape; ctr_tower.dnn is {%s}, cvr_tower.dnn is {%s}",
        table.concat(tc.tower, ", "), table.concat(tv.tower, ", "))
    end
    local bn_c = ctr.values.dnn and ctr.values.dnn:get("use_bn")
    local bn_v = cvr.values.dnn and cvr.values.dnn:get("use_bn")
    if bn_c == nil then bn_c = true end
    if bn_v == nil then bn_v = true end
    if bn_c ~= bn_v then cvr:err("dnn", "mtl's ESMM towers both use batch normalization or neither (use_bn)") end
    model.tower = tc.tower
    model.batch_norm = bn_c and #tc.tower > 0 or nil
    model.ctr = { name = tc.name, label = tc.label }
    model.cvr = { name = tv.name, label = tv.label }
    local sample_weight
    for _, t in ipairs({ tc, tv }) do
      if t.mask then t.obj:unsupported("task_space_indicator_label", "ESMM's losses already cover the entire space") end
      sample_weight = sample_weight or t.sample_weight
    end
    if tc.weight ~= 1 or tv.weight ~= 1 or sample_weight then
      -- ESMM's two losses (default_losses above) with the towers' weights
      er.cfg.losses = {
        { name = tc.name, output = tc.name, label = tc.label, on = "prob", weight = tc.weight, sample_weight = tc.sample_weight },
        { name = "ctcvr", output = "ctcvr", label = { tc.label, tv.label }, on = "prob", weight = tv.weight,
          sample_weight = tv.sample_weight },
      }
    end
  end,
}

return ESMM
