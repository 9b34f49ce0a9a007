-- mtl.losses: multi-task losses (docs/models.md, "Losses").
--
-- A loss spec is a list of task losses:
--   { name = "click", output = "click", label = "is_click",
--     type = "bce",                -- or softmax, pairwise, f1_reweighted, jrc,
--                                  -- order_calibrate (lua/mtl/loss_kinds.lua, with
--                                  -- their options: margin, temperature, session,
--                                  -- beta_square, label_smoothing, alpha, relations)
--     on = "logits" | "prob",      -- BCE on logits (stable) or on probabilities
--     weight = 1,                  -- fixed task weight w_k
--     gamma = nil,                 -- PLE's dynamic weight w_k(t) = w_k * gamma^t
--     mask = "col",                -- task-space indicator column (0/1): the loss
--                                  -- covers only rows in the task's space,
--                                  -- normalized by their count (PLE paper)
--     sample_weight = "col" }      -- per-sample weights
-- label may be a list of columns: their product (ESMM's CTCVR = click AND pay).
local mtl = require "mtl"
local kinds = require "mtl.loss_kinds"

local losses = {}
losses.kinds = kinds

-- The default spec of a model: its own (default_losses) or one BCE-on-logits per task.
function losses.default_spec(model)
  if model.default_losses then return model:default_losses() end
  local spec = {}
  for i, t in ipairs(model.tasks) do
    spec[i] = { name = t.name, output = t.name, label = t.label, on = "logits", weight = t.weight,
                gamma = t.gamma, mask = t.mask, sample_weight = t.sample_weight,
                type = t.classes == 2 and "softmax" or nil }
  end
  return spec
end

local function column(labels, name, what)
  local v = labels[name]
  if v == nil then error(string.format("losses: %s column '%s' is not in the batch", what, tostring(name)), 3) end
  return v
end

function losses.label_of(labels, label)
  if type(label) == "table" then
    local y = column(labels, label[1], "label")
    for i = 2, #label do y = y * column(labels, label[i], "label") end
    return y
  end
  return column(labels, label, "label")
end

-- The count each task loss of a spec divides by on a batch of `rows` rows:
-- its rows, or its in-space rows (the mask's ones). A list, one per term.
-- (A distributed run sums them over the ranks before the loss: docs/distributed.md.)
function losses.denominators(labels, spec, rows)
  local out = {}
  for i, t in ipairs(spec) do
    out[i] = t.mask and mtl.sum(column(labels, t.mask, "mask")):item() or rows -- a mask holds 0 or 1
  end
  return out
end

-- Computes the weighted total and each task's loss.
-- out: model output; labels: {column = float tensor [B]}; opts.step for gamma;
-- opts.uncertainty: an Uncertainty module (learned task weights);
-- opts.scale: a factor per term (a distributed run's share of the global
-- mean, parallel.DataParallel:scales; terms whose factor is 1 are unchanged).
-- Returns total (scalar tensor), {task name = scalar tensor}: each task's own
-- mean, unscaled.
function losses.compute(out, labels, spec, opts)
  opts = opts or {}
  local total, per_task = nil, {}
  for i, t in ipairs(spec) do
    local o = out[t.output or t.name]
    if not o then error(string.format("losses: the model has no output '%s'", tostring(t.output or t.name)), 2) end
    local y = losses.label_of(labels, t.label)
    local kind = kinds[t.type or "bce"] or error(string.format("losses: unknown loss type '%s'", tostring(t.type)), 2)
    local l = kind(o, y, t, {
      mask = t.mask and column(labels, t.mask, "mask"),
      weight = t.sample_weight and column(labels, t.sample_weight, "sample weight"),
      labels = labels, out = out,
    })
    per_task[t.name or t.output] = l
    local w = t.weight or 1
    if t.gamma then w = w * t.gamma ^ (opts.step or 0) end
    local term
    if opts.uncertainty then
      term = opts.uncertainty:weigh(i, l)
    else
      term = w ~= 1 and l * w or l
    end
    local share = opts.scale and opts.scale[i] or 1
    if share ~= 1 then term = term * share end
    total = total and total + term or term
  end
  return total, per_task
end

-- Uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018): one learned
-- log-variance s_k per task; total = sum_k exp(-s_k) * L_k + s_k / 2.
function losses.Uncertainty(n_tasks)
  local nn = require "mtl.nn"
  local U = nn.class("Uncertainty")
  function U:__init(n) self:param("log_var", mtl.zeros(n)) end
  function U:weigh(k, l)
    local s = mtl.sum(self.log_var:narrow(1, k, 1))   -- scalar s_k
    return mtl.exp(-s) * l + s * 0.5
  end
  return U(n_tasks)
end

return losses
