-- mtl.config.easyrec.model: EasyRec's model_config mapped onto mtl's model
-- section. The model itself is mapped by its file: models/<name>.lua holds
-- easyrec = {class =, field =, map = function(m, model, er), unsupported =
-- {["Message.field"] = why}}, found through the model
-- registry (mtl.models); this file resolves model_class, maps what every
-- multi-task model shares (the feature group, task towers, metrics) and hands
-- the model file its options object m (model_config.<field>), cfg.model and
-- er, the helpers below.
--
--   model.map_model(ctx, root, cfg, st)   model_config -> cfg.model, st.groups (easyrec/groups.lua)
--   model.map_metrics(st, list)           EvalMetrics objects -> st.metrics, st.gauc
--   model.model_classes()                 model_class -> {field, name, map, unsupported}
--
-- Takes decoded objects (mtl.config.easyrec.decode) and the shared state st
-- (st.columns and st.features from mtl.config.easyrec.data). Leaves the
-- regularization for the optimizer in st (l2, l2_set, l2_obj, emb_reg,
-- emb_reg_obj). Raises nothing: problems go to the context, each at its
-- file position.
local util = require "mtl.config.util"
local set_of = require("mtl.config.check").set_of
local decode = require "mtl.config.easyrec.decode"
local groups = require "mtl.config.easyrec.groups"
local dnn = require "mtl.config.easyrec.dnn"
local tower_losses = require "mtl.config.easyrec.losses"
local SCHEMA = require("mtl.config.easyrec.schema").SCHEMA

local mark_all = decode.mark_all

local model = {}

-- Model classes (model_config.model_class) -> {field = the oneof field,
-- name = the mtl model, map = ..., unsupported = ...}: the `easyrec` table of
-- each model file (models/<name>.lua) that has one.
function model.model_classes()
  local registry, out = require "mtl.models", {}
  for _, name in ipairs(registry.names()) do
    local ok, cls = pcall(registry.get, name)
    local spec = ok and rawget(cls, "easyrec")
    if spec then
      out[spec.class] = { field = spec.field, name = name, map = spec.map, unsupported = spec.unsupported or {} }
    end
  end
  return out
end

-- ---- helpers the model files use (er) ------------------------------------------------------------
-- DNN messages -> mtl "mlp" options (easyrec/dnn.lua).
local map_dnn = dnn.map

-- EvalMetrics objects (a metrics_set) -> st.metrics.auc, st.metrics.gauc, st.gauc.
function model.map_metrics(st, list)
  for _, m in ipairs(list) do
    if m:has("auc") then m:get("auc"); st.metrics.auc = true
    elseif m:has("max_f1") then m:get("max_f1"); st.metrics.max_f1 = true
    elseif m:has("gauc") then
      local g = m:get("gauc")
      local uid = g:get("uid_field")
      local red = g:get("reduction")
      if not g:has("uid_field") then g:err(nil, "'%s' needs uid_field (the user id field)", g.path) end
      if not ({ mean = true, mean_by_sample_num = true, mean_by_positive_num = true })[red] then
        g:unsupported_value("reduction", "the reductions are mean, mean_by_sample_num and mean_by_positive_num")
      end
      if uid then
        if st.gauc and (st.gauc.group ~= uid or st.gauc.reduction ~= red) then
          g:err("uid_field", "a second gauc (uid_field '%s', reduction %s) differs from the first (uid_field '%s', reduction %s); mtl computes one gauc",
            uid, red, st.gauc.group, st.gauc.reduction)
        elseif not st.columns[uid] then
          g:verr("uid_field", nil, "uid_field '%s' is not in data_config.input_fields%s", uid, util.did_you_mean(uid, st.columns))
        else
          if not st.gauc then
            table.insert(st.columns[uid].roles, { type = "key", why = "the gauc uid_field", obj = g, field = "uid_field" })
          end
          st.gauc = { group = uid, reduction = red }
        end
      end
      st.metrics.gauc = true
    end
    -- other metrics are left unhandled: UNSUPPORTED reports them
  end
end

-- ---- task towers ----------------------------------------------------------------------------------
-- The tower's label: label_name, else the i-th label field.
local function task_label(tower, i, label_fields)
  if tower:has("label_name") then
    local label = tower:get("label_name")
    if not set_of(label_fields)[label] then
      tower:verr("label_name", nil, "label_name '%s' is not in data_config.label_fields%s", label, util.did_you_mean(label, label_fields))
    end
    return label
  end
  if not label_fields[i] then
    tower:err(nil, "'%s' has no label_name and data_config.label_fields has no field %d", tower.path, i)
  end
  return label_fields[i]
end

-- The task-space fields: t.mask, and the weight w scaled; returns the weight.
local function task_space(tower, t, w, label_fields)
  local indicator = tower.values.task_space_indicator_label
  local win, wout = tower:get("in_task_space_weight"), tower:get("out_task_space_weight")
  tower.used.task_space_indicator_label = true
  if indicator then
    if not set_of(label_fields)[indicator] then
      tower:verr("task_space_indicator_label", nil, "task_space_indicator_label '%s' is not in data_config.label_fields%s",
        indicator, util.did_you_mean(indicator, label_fields))
    end
    if win == wout then
      w = w * win -- every row has the same weight: the indicator changes nothing
    elseif wout == 0 and win > 0 then
      t.mask = indicator -- the loss covers the task space, averaged over it
      w = w * win
    else
      tower:unsupported(tower:has("out_task_space_weight") and "out_task_space_weight" or "in_task_space_weight",
        string.format("mtl restricts a loss to its task space (out_task_space_weight: 0) or not at all; got in %s, out %s",
          util.show(win), util.show(wout)))
    end
  elseif tower:has("in_task_space_weight") or tower:has("out_task_space_weight") then
    tower:err(tower:has("in_task_space_weight") and "in_task_space_weight" or "out_task_space_weight",
      "'%s' sets task-space weights without task_space_indicator_label", tower.path)
  end
  return w
end

-- A task (tower) of any multi-task model -> an mtl task (t.obj: the tower).
local function map_task(st, tower, i, label_fields, bayes)
  local t = {}
  if not tower:has("tower_name") then tower:err(nil, "'%s' needs a tower_name", tower.path) end
  t.name = tower:get("tower_name") or ("task" .. i)
  t.label = task_label(tower, i, label_fields)
  local has_losses = #tower:get("losses") > 0
  if not has_losses and tower:get("loss_type") ~= "CLASSIFICATION" then
    tower:unsupported_value("loss_type", "mtl's tasks are binary classification (CLASSIFICATION, or losses)")
  end
  tower.used.loss_type = true -- with losses, EasyRec reads losses alone
  local classes = tower:get("num_class")
  if classes == 2 then t.classes = 2
  elseif classes ~= 1 then tower:unsupported_value("num_class", "mtl's tasks are binary (num_class 1, or 2 as two-class logits)") end
  t.tower = map_dnn(tower.values.dnn)
  tower.used.dnn = true
  local w = tower:get("weight")
  if w < 0 then tower:verr("weight", nil, "'%s' must be >= 0, got %s", tower:field_path("weight"), util.show(w)) end
  t.weight = task_space(tower, t, w, label_fields)
  if st.sample_weight and tower:get("use_sample_weight") then t.sample_weight = st.sample_weight end
  tower.used.use_sample_weight = true
  model.map_metrics(st, tower:get("metrics_set"))
  if bayes then
    local rel = tower:get("relation_tower_names")
    if #rel > 0 then t.relations = util.deep_copy(rel) end
    if tower.values.relation_dnn then t.relation = map_dnn(tower.values.relation_dnn) end
    tower.used.relation_dnn = true
  end
  tower_losses.tower(tower, t, st)
  t.obj = tower
  return t
end

local function check_task_names(tasks)
  local seen = {}
  for _, t in ipairs(tasks) do
    if seen[t.name] then t.obj:verr("tower_name", nil, "tower_name '%s' is used twice", t.name) end
    seen[t.name] = true
  end
  for _, t in ipairs(tasks) do
    for j, r in ipairs(t.relations or {}) do
      if r == t.name then t.obj:verr("relation_tower_names", j, "task '%s' cannot depend on itself", r)
      elseif not seen[r] then
        local names = {}
        for _, x in ipairs(tasks) do names[#names + 1] = x.name end
        t.obj:verr("relation_tower_names", j, "relation_tower_names names an unknown tower '%s'%s", r, util.did_you_mean(r, names))
      end
    end
  end
end

local function strip(tasks)
  for _, t in ipairs(tasks) do t.obj = nil end
  return tasks
end

-- What a model file's easyrec.map gets besides its model_config object and
-- cfg.model: the reader's shared helpers and state.
local function helpers(ctx, cfg, st)
  local labels = cfg.data.labels or {}
  local er = { cfg = cfg, st = st, ctx = ctx, dnn = map_dnn, same_dnn = dnn.same, model_config = st.model_config }
  -- the model reads these feature groups (not only the main one)
  function er.read_groups(names) groups.read(st, names); st.reads_groups = true end
  -- one tower -> an mtl task (t.obj: the tower, for messages)
  function er.map_task(tower, i, opts) return map_task(st, tower, i, labels, opts and opts.bayes) end
  -- m.task_towers -> the model's task list (opts.bayes: DBMTL's relation fields)
  function er.task_towers(m, opts)
    local towers, tasks = m:get("task_towers"), {}
    if #towers == 0 then m:err(nil, "'%s' has no task_towers", m.path) end
    for i, tower in ipairs(towers) do tasks[i] = er.map_task(tower, i, opts) end
    check_task_names(tasks)
    return strip(tasks)
  end
  return er
end

-- ---- model_config ---------------------------------------------------------------------------------
-- The model file's easyrec table for model_config's class, or nil (reported;
-- then nothing inside model_config is reported again).
local function model_spec(mc)
  local class = mc:get("model_class")
  local classes = model.model_classes()
  local known = util.sorted_keys(classes)
  local spec = class and classes[class]
  if not class then
    mc:err(nil, "model_config.model_class is required (%s)", table.concat(known, ", "))
    mark_all(mc)
    return nil
  end
  if not spec then
    mc:verr("model_class", nil, "unsupported model_class %q: mtl reads the multi-task models %s%s", class,
      table.concat(known, ", "), util.did_you_mean(class, known))
    mark_all(mc)
    return nil
  end
  return spec, class
end

function model.map_model(ctx, root, cfg, st)
  local mc = root.values.model_config
  root.used.model_config = true
  if not mc then ctx:add(1, 1, "model_config is missing") return end
  local spec, class = model_spec(mc)
  if not spec then return end
  cfg.model.name = spec.name
  st.model_spec = spec
  local m = mc.values[spec.field]
  for _, other in ipairs(SCHEMA.EasyRecModel.oneofs.model) do
    if other ~= spec.field and mc:has(other) then
      mc:err(other, "model_class is %s, but the model options are given as '%s' (expected '%s')", class, other, spec.field)
      mc:mark(other)
    end
  end
  mc.used[spec.field] = true
  if not m then
    mc:err(nil, "model_class is %s but model_config has no '%s { ... }'", class, spec.field)
    mark_all(mc)
    return
  end
  if mc:get("loss_type") ~= "CLASSIFICATION" then mc:unsupported_value("loss_type", "mtl's tasks are binary classification") end
  if mc:get("num_class") ~= 1 then mc:unsupported_value("num_class", "mtl's tasks are binary (num_class: 1)") end
  if mc:get("loss_weight_strategy") ~= "Fixed" then
    mc:unsupported_value("loss_weight_strategy", "the EasyRec reader gives tasks fixed weights (Fixed)")
  end
  st.l2 = m:get("l2_regularization")
  st.l2_set = m:has("l2_regularization")
  st.l2_obj = m
  st.emb_reg = mc:get("embedding_regularization")
  st.emb_reg_obj = mc
  st.model_config, st.ctx = mc, ctx
  groups.map(mc, st, map_dnn)
  local vd = mc.values.variational_dropout -- on every feature group the model reads
  if vd then
    mc.used.variational_dropout = true
    st.variational_dropout = { lambda = vd:get("regularization_lambda"), per_dim = vd:get("embedding_wise_variational_dropout") }
  end
  spec.map(m, cfg.model, helpers(ctx, cfg, st))
  tower_losses.finish(cfg)
end

return model
