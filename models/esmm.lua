-- ESMM: Entire Space Multi-Task Model, pCTCVR = pCTR * pCVR (Ma et al., SIGIR 2018).
-- Ma et al., "Entire Space Multi-Task Model: An Effective Approach for
-- Estimating Post-Click Conversion Rate", SIGIR 2018.
--   pCTR = sigmoid(Tower_ctr(x)),  pCVR = sigmoid(Tower_cvr(x))
--   pCTCVR = pCTR * pCVR
-- Both losses run over all impressions: BCE(pCTR, is_click) and
-- BCE(pCTCVR, is_click AND is_pay); pCVR is never fit on clicks alone, which
-- avoids the sample selection bias of a CVR model trained on clicked rows.
-- With groups (EasyRec's ESMM.groups) x is [MLP_g(x_g) for each feature
-- group g], each group through an MLP of its own.
local nn = require "mtl.nn"
local mtl = require "mtl"
local join, set_of = require("mtl.config.check").join, require("mtl.config.check").set_of
local did_you_mean = require("mtl.config.util").did_you_mean

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

-- groups: {{input = group name, hidden = sizes[, activation, batch_norm, dropout]}, ...}
local function check_groups(c, v, path)
  if not c:list(v, path, "a list of {input = group, hidden = sizes}") then return end
  local names = {}
  for _, g in ipairs(c.cfg and c.cfg.groups or {}) do if type(g) == "table" then names[#names + 1] = g.name end end
  for i, g in ipairs(v) do
    local p = join(path, i)
    if c:table(g, p, "{input = group, hidden = sizes}") then
      local rest = {}
      for k, x in pairs(g) do if k ~= "input" then rest[k] = x end end
      c:mlp(rest, p, true)
      if c:string(g.input, join(p, "input"), "a feature group name") and c.cfg and #names > 0
        and not set_of(names)[g.input] then
        c:err("'%s': no feature group is named '%s'%s", join(p, "input"), g.input, did_you_mean(g.input, names))
      end
    end
  end
end

ESMM.options = {
  tower = { "mlp", empty = true, default = { 256, 128, 64 } },
  cvr_tower = { "mlp", empty = true },               -- the CVR tower, when it differs from `tower`
  groups = { "any", check = check_groups },
  ctr = { "any", default = DEFAULT.ctr, check = check_task },
  cvr = { "any", default = DEFAULT.cvr, check = check_task },
  batch_norm = { "boolean", default = false },
}

ESMM.bench = { spec = { tower = { 256, 128, 64 } } }
ESMM.reads_groups = true -- with the groups option

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
  local d = opts.input
  if opts.groups then
    if not opts.inputs then error("esmm: 'groups' reads feature groups; give the features groups (config groups)", 0) end
    self.inputs, self.group_list, d = opts.inputs, opts.groups, 0
    for _, g in ipairs(opts.groups) do
      local dim = opts.inputs[g.input] or error(string.format("esmm: no feature group is named '%s'", g.input), 0)
      local mlp = nn.MLP(nn.mlp_options(g.hidden and g or {}, dim, { hidden = {} }))
      self["group_" .. g.input] = mlp
      d = d + mlp.output_dim
    end
  end
  self.ctr = nn.Tower(nn.mlp_options(opts.tower, d, { batch_norm = opts.batch_norm }))
  self.cvr = nn.Tower(nn.mlp_options(opts.cvr_tower or opts.tower, d, { batch_norm = opts.batch_norm }))
  self.tasks = nn.tasks{ self.ctr_task, self.cvr_task }
end

function ESMM:forward(x)                          -- x [B, input], or {group = [B, d_g]}
  if self.group_list then
    local parts = {}
    for i, g in ipairs(self.group_list) do parts[i] = self["group_" .. g.input](x[g.input]) end
    x = #parts == 1 and parts[1] or mtl.concat(parts, 2)
  end
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

-- ESMM.groups (Tower{input, dnn}): each feature group through its own DNN.
local function map_groups(m, model, er)
  local list = m:get("groups")
  if #list == 0 then return end
  model.groups = {}
  local names = {}
  for i, g in ipairs(list) do
    local name = g:get("input")
    if not er.st.group_by_name[name] then
      g:verr("input", nil, "no feature group is named '%s'%s", name, did_you_mean(name, er.st.group_by_name))
    end
    local spec = er.dnn(g:get("dnn"))
    spec.input = name
    model.groups[i], names[i] = spec, name
  end
  er.read_groups(names)
end

-- EasyRec's model_class ESMM: ctr_tower and cvr_tower, each with its DNN.
ESMM.easyrec = {
  class = "ESMM", field = "esmm",
  map = function(m, model, er)
    map_groups(m, model, er)
    local ctr, cvr = m:get("ctr_tower"), m:get("cvr_tower")
    if not ctr then m:err(nil, "ESMM needs ctr_tower") end
    if not cvr then m:err(nil, "ESMM needs cvr_tower") end
    if not (ctr and cvr) then return end
    local tc, tv = er.map_task(ctr, 1), er.map_task(cvr, 2)
    model.tower = tc.tower
    if not er.same_dnn(tc.tower, tv.tower) then model.cvr_tower = tv.tower end
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
