-- mtl.metrics: evaluation metrics computed in C (runtime/src/metrics.c).
--   mtl.metrics.auc(pred, label[, mask])     exact ROC AUC, ties averaged
--   mtl.metrics.gauc(pred, label, groups[, reduction]) -> gauc, groups used
--       reduction: "mean" | "mean_by_sample_num" | "mean_by_positive_num"
--   mtl.metrics.logloss(pred, label[, mask]) p clipped to [1e-7, 1-1e-7]
--   mtl.metrics.calibration(pred, label[, mask])  mean prediction / label rate
-- pred and label are float32 vectors; label 0/1; mask 0/1 selects rows
-- (e.g. the CVR AUC over clicked rows: auc(p_cvr, is_pay, is_click)).
--
-- And for the results of an evaluation ({target = {auc =, logloss =, ...}},
-- Ranker:evaluate, docs/training.md):
--   mtl.metrics.summary(m)   "click auc 0.8252  pay auc 0.8643" (targets sorted)
--   mtl.metrics.plain(m)     the numbers only (no pred/label tensors), for logs and JSON
--   mtl.metrics.finite(v)    a copy of v without NaN and infinities (JSON writes null)

local function summary(m)
  local names = {}
  for k in pairs(m) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for _, k in ipairs(names) do parts[#parts + 1] = string.format("%s auc %.4f", k, m[k].auc) end
  return table.concat(parts, "  ")
end

local function plain(m)
  local out = {}
  for k, v in pairs(m) do
    out[k] = { auc = v.auc, logloss = v.logloss, calibration = v.calibration, gauc = v.gauc, count = v.count }
  end
  return out
end

local function finite(v)
  if type(v) == "number" then return (v == v and v ~= math.huge and v ~= -math.huge) and v or nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = finite(x) end
  return out
end

return function(mtl, core)
  mtl.metrics = {
    auc = core.metric_auc,
    gauc = core.metric_gauc,
    logloss = core.metric_logloss,
    calibration = core.metric_calibration,
    summary = summary,
    plain = plain,
    finite = finite,
  }
end
