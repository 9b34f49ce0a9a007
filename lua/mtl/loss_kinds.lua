-- The loss kinds of a loss spec entry (lua/mtl/losses.lua, `type =`), as
-- EasyRec defines them (easy_rec/python/loss, builders/loss_builder.py):
--
--   bce              BCE on logits (or on prob with on = "prob"); mean over the rows
--                    (over the task space with a mask), sample weights averaged
--   softmax          cross-entropy of 2-class logits [B, 2] against the 0/1 label
--   pairwise         pairs (i, j) with y_i > y_j (in one session when `session`
--                    names a column): mean over them of
--                    log(1 + exp(-((l_i - l_j) / temperature - margin)))
--   f1_reweighted    BCE with negatives weighted tp / (beta_square n_pos + n_neg - tn),
--                    tp = sum p, tn = B - tp (Li et al., "Adaptive Scaling for
--                    Sparse Detection in Information Extraction", ACL 2018)
--   jrc              alpha CE(2-class logits) + (1 - alpha) GE: per session, a
--                    softmax over its rows of each class's logit, the log-likelihood
--                    of the rows of that class, per row averaged over the session size
--                    (Sheng et al., "Joint Optimization of Ranking and Calibration
--                    with Contextualized Hybrid Model", KDD 2023)
--   order_calibrate  sum over `relations` r of mean(relu(p_t - p_r)): a task
--                    should not be likelier than a task it depends on
-- Each takes (o = the model's output for the task, y = the label [B], t =
-- the spec entry, c = {labels =, out =, mask =, weight =}) and returns a
-- scalar tensor. Row weights (sample weights, task-space masks) weigh a
-- pairwise loss by its first row (EasyRec's), the others per row.
local mtl = require "mtl"

local kinds = {}

local function fail(fmt, ...) error("losses: " .. string.format(fmt, ...), 4) end

-- Weighted mean of per-row losses l [B] (weights w [B] or nil): sum(w l) / #(w ~= 0).
local function weighted_mean(l, w)
  if not w then return mtl.mean(l) end
  local n = mtl.sum(w:ne(0)):item()
  return mtl.sum(l * w) / math.max(n, 1)
end

-- The row weights of an entry: its sample weights times its mask.
local function row_weights(c)
  if c.mask and c.weight then return c.mask * c.weight end
  return c.mask or c.weight
end

function kinds.bce(o, y, t, c)
  local opts = { mask = c.mask, weight = c.weight }
  if (t.on or "logits") == "logits" then return mtl.binary_cross_entropy_with_logits(o.logits, y, opts) end
  return mtl.binary_cross_entropy(o.prob, y, opts)
end

local function two_class(o, t)
  local l = o.logits
  if l:dim() ~= 2 or l:size(2) ~= 2 then
    fail("loss '%s' (%s) needs 2-class logits [B, 2] (a task with classes = 2), got [%s]", tostring(t.name), t.type,
      table.concat(l:shape(), ","))
  end
  return l
end

-- Cross-entropy of each row's 2-class logits against its 0/1 label: [B].
local function row_ce(logits, y)
  return -(mtl.log_softmax(logits, 2):narrow(2, 2, 1):reshape(y:numel()) * y
         + mtl.log_softmax(logits, 2):narrow(2, 1, 1):reshape(y:numel()) * (1 - y))
end

function kinds.softmax(o, y, t, c)
  return weighted_mean(row_ce(two_class(o, t), y), row_weights(c))
end

-- [B, B] of v_i (rows) and of v_j (columns).
local function rows_cols(v)
  local B = v:numel()
  return v:reshape(B, 1):expand(B, B), v:reshape(1, B):expand(B, B)
end

-- 1 where rows i and j share a session (column t.session of the labels), all 1 without one.
local function same_session(t, c, B)
  if not t.session then return nil end
  local s = c.labels[t.session] or fail("loss '%s': session column '%s' is not in the batch", tostring(t.name), t.session)
  return mtl.eq(s:reshape(B, 1), s:reshape(1, B))
end

function kinds.pairwise(o, y, t, c)
  local l = o.logits
  local B = l:numel()
  if (t.temperature or 1) ~= 1 then l = l / t.temperature end
  local li, lj = rows_cols(l)
  local yi, yj = rows_cols(y)
  local pairs = mtl.gt(yi, yj)                                    -- [B, B]: y_i > y_j
  local session = same_session(t, c, B)
  if session then pairs = pairs * session end
  local w = row_weights(c)
  if w then pairs = pairs * w:reshape(B, 1):expand(B, B) end
  local n = mtl.sum(pairs:ne(0)):item()
  if n == 0 then return mtl.sum(l * 0) end                        -- no pair: 0, as TF's weighted loss
  return mtl.sum(mtl.softplus(-(li - lj - (t.margin or 0))) * pairs) / n
end

function kinds.f1_reweighted(o, y, t, c)
  local B = y:numel()
  local p = mtl.sigmoid(o.logits)
  local n_pos = mtl.sum(y)
  local tp = mtl.sum(p)
  local neg_weight = tp / ((t.beta_square or 1) * n_pos + (B - n_pos) - (B - tp) + 1e-8)
  local w = y + (1 - y) * neg_weight                               -- 1 for positives
  local target = y
  if (t.label_smoothing or 0) > 0 then target = y * (1 - t.label_smoothing) + 0.5 * t.label_smoothing end
  local l = mtl.binary_cross_entropy_with_logits(o.logits, target, "none")
  local rw = row_weights(c)
  if rw then w = w * rw end
  return weighted_mean(l, w)
end

function kinds.jrc(o, y, t, c)
  local logits = two_class(o, t)
  local B = y:numel()
  local alpha = t.alpha or 0.5
  local ce = weighted_mean(row_ce(logits, y), row_weights(c))
  local session = same_session(t, c, B) or mtl.ones(B, B)
  local away = (session - 1) * 1e9                                 -- -1e9 outside the session
  local ge
  for k, yk in ipairs({ 1 - y, y }) do                             -- negatives, then positives
    local lk = logits:narrow(2, k, 1):reshape(B, 1):expand(B, B) + away   -- [i, j]: row i's logit, session of j
    local ls = mtl.log_softmax(lk, 1)                              -- over the rows i of j's session
    local yk_ij = yk:reshape(B, 1):expand(B, B) * session
    local term = -mtl.sum(yk_ij * ls, 1)                           -- [B] per column j
    ge = ge and ge + term or term
  end
  ge = mtl.mean(ge / mtl.sum(session, 1))
  return ce * alpha + ge * (1 - alpha)
end

function kinds.order_calibrate(o, y, t, c)
  local total
  for _, r in ipairs(t.relations or {}) do
    local pr = c.out[r] or fail("loss '%s': the model has no output '%s'", tostring(t.name), r)
    local term = mtl.mean(mtl.relu(o.prob - pr.prob))
    total = total and total + term or term
  end
  return total or mtl.sum(o.prob * 0)
end

-- The kinds' config keys and their checks (mtl.config.validate, with its
-- checking context c and column_ref for a session column).
kinds.TYPES = { "bce", "softmax", "pairwise", "f1_reweighted", "jrc", "order_calibrate" }
kinds.KEYS = { "type", "margin", "temperature", "session", "beta_square", "label_smoothing", "alpha", "relations" }
function kinds.check(c, l, p, column_ref)
  if l.type ~= nil then c:enum(l.type, p .. ".type", kinds.TYPES) end
  for _, k in ipairs({ "margin", "label_smoothing" }) do if l[k] ~= nil then c:number(l[k], p .. "." .. k, { min = 0 }) end end
  for _, k in ipairs({ "temperature", "beta_square" }) do if l[k] ~= nil then c:number(l[k], p .. "." .. k, { gt = 0 }) end end
  if l.alpha ~= nil then c:number(l.alpha, p .. ".alpha", { min = 0, max = 1 }) end
  if l.session ~= nil then column_ref(c, l.session, p .. ".session", { "int", "int64", "string" }, "a session") end
  if l.relations ~= nil and c:list(l.relations, p .. ".relations", "a list of model output names", true) then
    for j, r in ipairs(l.relations) do c:string(r, p .. ".relations." .. j, "a model output name") end
  end
end

return kinds
