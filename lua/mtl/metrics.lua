-- mtl.metrics: evaluation metrics computed in C (runtime/src/metrics.c).
--   mtl.metrics.auc(pred, label[, mask])     exact ROC AUC, ties averaged
--   mtl.metrics.gauc(pred, label, groups[, reduction]) -> gauc, groups used
--       reduction: "mean" | "mean_by_sample_num" | "mean_by_positive_num"
--   mtl.metrics.logloss(pred, label[, mask]) p clipped to [1e-7, 1-1e-7]
--   mtl.metrics.calibration(pred, label[, mask])  mean prediction / label rate
--   mtl.metrics.max_f1(pred, label[, mask])  the best F1 over EasyRec's 200
--       thresholds (-1e-7, k/199 for k = 1..198, 1 + 1e-7), pred > threshold
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
    out[k] = { auc = v.auc, logloss = v.logloss, calibration = v.calibration, gauc = v.gauc, max_f1 = v.max_f1,
               count = v.count }
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

-- EasyRec's max_f1 (core/metrics.py): precision and recall of pred > th at each
-- threshold th, F1 = 2 P R / (P + R + 1e-12), the largest. A prediction p is
-- above the first n(p) thresholds, n(p) = 1 + clamp(ceil(199 p) - 1, 0, 198)
-- (p in [0, 1]); the positives and negatives above threshold m are counted
-- from the top down.
local N_THRESHOLDS = 200
local function max_f1(check, pred, label, mask)
  -- the arguments as the C metrics check them (tensors, same length, 0/1 labels and mask)
  local ok, err = pcall(check, pred, label, mask)
  if not ok then error((tostring(err):gsub("mtl%.metrics%.calibration", "mtl.metrics.max_f1")), 3) end
  local p, y = pred:values(), label:values()
  local m = mask and mask:values()
  local pos, neg = {}, {}
  for k = 0, N_THRESHOLDS do pos[k], neg[k] = 0, 0 end
  local total_pos = 0
  for i = 1, #p do
    if not m or m[i] ~= 0 then
      local v, above = p[i], 0
      if v > -1e-7 then above = 1 + math.min(math.max(math.ceil(v * (N_THRESHOLDS - 1)) - 1, 0), N_THRESHOLDS - 2) end
      if v > 1 + 1e-7 then above = N_THRESHOLDS end
      if y[i] > 0.5 then pos[above] = pos[above] + 1; total_pos = total_pos + 1 else neg[above] = neg[above] + 1 end
    end
  end
  local best, tp, fp = 0, 0, 0
  for t = N_THRESHOLDS, 1, -1 do -- predicted positive at threshold t: above >= t
    tp, fp = tp + pos[t], fp + neg[t]
    local precision = tp + fp > 0 and tp / (tp + fp) or 0
    local recall = total_pos > 0 and tp / total_pos or 0
    local f1 = 2 * precision * recall / (precision + recall + 1e-12)
    if f1 > best then best = f1 end
  end
  return best
end

return function(mtl, core)
  mtl.metrics = {
    auc = core.metric_auc,
    gauc = core.metric_gauc,
    logloss = core.metric_logloss,
    calibration = core.metric_calibration,
    max_f1 = function(pred, label, mask) return max_f1(core.metric_calibration, pred, label, mask) end,
    summary = summary,
    plain = plain,
    finite = finite,
  }
end
