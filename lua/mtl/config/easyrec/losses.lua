-- mtl.config.easyrec.losses: a task tower's `losses` (loss.proto) mapped onto
-- mtl loss spec entries (lua/mtl/loss_kinds.lua), and the towers' losses onto
-- cfg.losses.
--
--   losses.tower(tower, t, st)    tower.losses -> t.losses (entries without output or label)
--   losses.finish(cfg)            cfg.model.tasks[i].losses -> cfg.losses (when a tower has them)
--
-- As EasyRec's MultiTaskModel.build_loss_graph computes them: each loss is
-- weighted by its weight times the tower's, over the tower's task space and
-- sample weights. CLASSIFICATION is BCE (a 2-class softmax with num_class 2),
-- PAIR_WISE_LOSS pairwise, F1_REWEIGHTED_LOSS f1_reweighted, JRC_LOSS jrc
-- (num_class 2), ORDER_CALIBRATE_LOSS order_calibrate over the tower's
-- relation_tower_names (none: it adds nothing, as in EasyRec).
local util = require "mtl.config.util"

local losses = {}

local TYPE = { CLASSIFICATION = "bce", BINARY_CROSS_ENTROPY_LOSS = "bce", PAIR_WISE_LOSS = "pairwise",
               F1_REWEIGHTED_LOSS = "f1_reweighted", JRC_LOSS = "jrc", ORDER_CALIBRATE_LOSS = "order_calibrate" }
losses.TYPE = TYPE

-- The session column of a loss parameter message (session_name), checked.
local function session(p, st, required)
  local name = p:get("session_name")
  if not name then
    if required then p:err(nil, "'%s' needs a session_name (the column that groups rows, e.g. user_id)", p.path) end
    return nil
  end
  if not st.columns[name] then
    p:verr("session_name", nil, "session_name '%s' is not in data_config.input_fields%s", name, util.did_you_mean(name, st.columns))
  end
  return name
end

-- The parameters of loss l of type kind into entry e.
local function params(l, kind, e, st)
  if kind == "pairwise" and l.values.pairwise_loss then
    local p = l:get("pairwise_loss")
    e.margin, e.temperature, e.session = p:get("margin"), p:get("temperature"), session(p, st)
  elseif kind == "f1_reweighted" and l.values.f1_reweighted_loss then
    local p = l:get("f1_reweighted_loss")
    e.beta_square, e.label_smoothing = p:get("f1_beta_square"), p:get("label_smoothing")
  elseif kind == "jrc" then
    local p = l.values.jrc_loss
    l.used.jrc_loss = true
    if not p then l:err(nil, "JRC_LOSS needs jrc_loss { session_name: ... }") return end
    e.session, e.alpha = session(p, st, true), p:get("alpha")
    if not p:get("same_label_loss") then p:unsupported_value("same_label_loss", "mtl's JRC loss counts same-label rows (true)") end
    if p:get("loss_weight_strategy") ~= "fixed" then p:unsupported_value("loss_weight_strategy", "mtl's JRC loss weighs CE and GE by alpha (fixed)") end
  end
end

-- One Loss message -> an entry; classes: the tower's num_class.
local function entry(l, tower, t, st, i)
  local lt = l:get("loss_type")
  local kind = TYPE[lt]
  if not kind then
    l:unsupported_value("loss_type", "mtl's tower losses are " .. table.concat(util.sorted_keys(TYPE), ", "))
    return nil
  end
  if kind == "bce" and t.classes == 2 then kind = "softmax" end
  if (kind == "jrc") ~= (t.classes == 2) and kind ~= "softmax" then
    tower:verr("num_class", nil, "%s needs num_class %d", lt, kind == "jrc" and 2 or 1)
  end
  local e = { type = kind, weight = l:get("weight") * t.weight }
  e.name = l:has("loss_name") and l:get("loss_name") or (i == 1 and t.name or (t.name .. "_" .. kind))
  if kind == "order_calibrate" then
    e.relations = util.deep_copy(t.relations or {})
    if #e.relations == 0 and st.ctx then
      st.ctx:note("ORDER_CALIBRATE_LOSS of tower '%s' adds nothing: the tower has no relation_tower_names (so in EasyRec too)", t.name)
    end
  end
  params(l, kind, e, st)
  if l:get("learn_loss_weight") then l:unsupported("learn_loss_weight", "the EasyRec reader gives losses fixed weights (Fixed)") end
  return e
end

function losses.tower(tower, t, st)
  local list = tower:get("losses")
  if #list == 0 then return end
  t.losses = {}
  for i, l in ipairs(list) do t.losses[#t.losses + 1] = entry(l, tower, t, st, i) end
  if tower:has("loss_type") then tower:err("loss_type", "'%s' gives loss_type and losses; EasyRec reads only losses", tower.path) end
end

-- cfg.losses: each task's losses, or its default (BCE, a 2-class softmax),
-- over its label, mask and sample weights; nothing when no tower has losses.
function losses.finish(cfg)
  local any = false
  for _, t in ipairs(cfg.model.tasks or {}) do any = any or t.losses ~= nil end
  if not any then return end
  local out = {}
  for _, t in ipairs(cfg.model.tasks) do
    for _, e in ipairs(t.losses or { { name = t.name, type = t.classes == 2 and "softmax" or nil, weight = t.weight } }) do
      e.output, e.label, e.mask, e.sample_weight = t.name, t.label, t.mask, t.sample_weight
      out[#out + 1] = e
    end
    t.losses = nil
  end
  cfg.losses = out
end

return losses
