-- mtl.ranker: a ranking model as one object — feature columns, then an
-- architecture from models/, with what it is trained against (its losses and
-- label columns) and what evaluation scores (docs/training.md, "The ranker").
-- Training (mtl.train), `mtl eval`, `mtl predict`, `mtl export`, serving and
-- the benchmark all use it; only training needs the loop around it.
--
--   local r = ranker.build(cfg)           -- features fitted on data.train, a new model
--   local r = ranker.load(cfg, state)     -- features and weights from a checkpoint or an export
--   local out = r(batch)                  -- {task = {logits =, prob =}, ...}
--   local m, gates = r:evaluate(files)    -- {target = {auc =, ...}}, gate utilization
--   ranker.Ranker(cfg, F)                 -- the model over features F that are built already
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local losses = require "mtl.losses"
local features = require "mtl.features"
local parallel = require "mtl.parallel"

local ranker = {}

local Ranker = nn.class("Ranker")
ranker.Ranker = Ranker

-- cfg: the mtl config (docs/config.md); its model table names the architecture
-- and its options, its losses the loss spec (default: the model's own).
function Ranker:__init(cfg, F)
  self.features = F
  local opts = {}
  for k, v in pairs(cfg.model) do if k ~= "name" then opts[k] = v end end
  opts.input = F.output_dim
  if F.group_dims and rawget(models.get(cfg.model.name), "reads_groups") then
    opts.inputs, opts.input_lists = F.group_dims, F.group_widths
  end
  self.body = models.build(cfg.model.name, opts)
  self.tasks = self.body.tasks
  self.cfg = cfg
  self.loss_spec = cfg.losses or losses.default_spec(self.body)
end

-- A model that reads feature groups (reads_groups) gets {group = x} and the
-- groups' feature lists; the others the main group's x.
function Ranker:forward(batch)
  if self.body.inputs then return self.body(self.features:groups(batch)) end
  return self.body(self.features(batch))
end

function Ranker:train(mode)
  nn.Module.train(self, mode)
  for _, e in ipairs(self.features:embedding_tables()) do
    if mode == false then e.table:eval() else e.table:train() end
  end
  return self
end

-- What evaluation scores: each task's probability against its label (over
-- its task space when masked); models may define more (ESMM: cvr on clicked
-- rows and ctcvr).
function Ranker:eval_targets()
  if self.body.eval_targets then return self.body:eval_targets() end
  local out = {}
  for _, t in ipairs(self.tasks) do out[#out + 1] = { name = t.name, output = t.name, label = t.label, mask = t.mask } end
  return out
end

-- The model's output names: the tasks', then further ones its evaluation
-- reads (ESMM's ctcvr). `mtl predict` writes p_<name> for each.
function Ranker:outputs()
  local names, seen = {}, {}
  for _, t in ipairs(self.tasks) do
    if not seen[t.name] then names[#names + 1], seen[t.name] = t.name, true end
  end
  for _, t in ipairs(self:eval_targets()) do
    if not seen[t.output] then names[#names + 1], seen[t.output] = t.output, true end
  end
  return names
end

-- {output name = true} for the outputs that are already a conditional
-- probability (a pCVR over clicked rows): the model's own (ESMM's towers)
-- and those evaluated under a mask. Ranking uses them as they are
-- (rank.cvr_mode "auto", lua/mtl/rank.lua).
function Ranker:direct_outputs()
  local direct = {}
  for name in pairs(self.body.direct_outputs and self.body:direct_outputs() or {}) do direct[name] = true end
  for _, t in ipairs(self:eval_targets()) do if t.mask then direct[t.output] = true end end
  return direct
end

-- The data columns the losses and the evaluation read (labels, masks,
-- sample weights), each once, in the order the loss spec and then the eval
-- targets name them.
function Ranker:label_names()
  local names, seen = {}, {}
  local function want(l)
    if type(l) == "table" then for _, x in ipairs(l) do want(x) end
    elseif l and not seen[l] then seen[l] = true; names[#names + 1] = l end
  end
  for _, t in ipairs(self.loss_spec) do want(t.label); want(t.mask); want(t.sample_weight); want(t.session) end
  for _, t in ipairs(self:eval_targets()) do want(t.label); want(t.mask) end
  return names
end

-- {name = column tensor} of a batch for the given column names.
function ranker.labels(batch, names)
  local labels = {}
  for _, name in ipairs(names) do
    labels[name] = batch.columns[name] or error(string.format("ranker: label column '%s' is not in the data", name), 0)
  end
  return labels
end

-- The training loss of an output against its labels: the loss spec's
-- weighted total plus the model's auxiliary loss, and each task's loss.
-- step: the training step (for PLE's dynamic weights). scale: a distributed
-- run's shares of the global means (parallel.DataParallel:scales: [i] per loss
-- term, rows for the auxiliary loss, taken as a mean over rows), or nil.
function Ranker:loss(out, labels, step, scale)
  local total, per_task = losses.compute(out, labels, self.loss_spec, { step = step, scale = scale })
  local aux = self.body.aux_loss and self.body:aux_loss()
  if aux and scale and scale.rows ~= 1 then aux = aux * scale.rows end
  if aux then total = total + aux end
  local input_aux = self.features:aux_loss() -- variational dropout's penalty
  if input_aux then total = total + input_aux end
  return total, per_task
end

local function files_of(x)
  if type(x) == "table" then return x end
  return { x }
end
ranker.files_of = files_of

-- A reader of files in the config's format with this model's feature
-- columns. extra: more reader options (shuffling; docs/data.md).
function Ranker:reader(files, batch_size, extra)
  local dc = self.cfg.data
  local o = { separator = dc.separator, header = dc.header, shuffle_buffer = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return mtl.data.csv(self.features:reader_options(files_of(files), batch_size or dc.batch_size or 1024, o))
end

-- ---- gates ---------------------------------------------------------------------------
-- The softmax gates of a model body, one entry per (task, level):
-- {task =, level = nil | n, gate = nn.Gate, experts = {labels}} (the model's
-- own gates(): models/<name>.lua; none for a model without gates).
function ranker.gates(body)
  return body.gates and body:gates() or {}
end

-- ---- evaluation -----------------------------------------------------------------------
-- Scoring is split over the ranks of a distributed run: each rank scores its
-- batches (parallel.score_partition: the single process's batches k N + r),
-- and every rank gets every batch's results back in file order
-- (parallel.map_batches), so the arrays the metrics read are the single
-- process's, bit for bit. One process: every batch, in order.

-- What a batch gives: one float32 [n, C] of each target's probability,
-- label (and mask) in columns; int64 [n] groups (with eval.gauc); float32
-- [1, G] of the gates' weight sums (for models with gates). Returns the
-- function of a batch, the empty results, and how to read them back.
local function scorer(model, targets, gauc)
  local names = model:label_names()
  local gates = ranker.gates(model.body)
  local cols, ncols = {}, 0
  for _, t in ipairs(targets) do
    cols[t.name] = { p = ncols + 1, y = ncols + 2, m = t.mask and ncols + 3 or nil }
    ncols = ncols + (t.mask and 3 or 2)
  end
  local function fn(batch)
    local out = model(batch)
    local labels = ranker.labels(batch, names)
    local parts = {}
    for _, t in ipairs(targets) do
      local o = out[t.output] or error("ranker: the model has no output '" .. t.output .. "'", 0)
      local n = o.prob:numel()
      parts[#parts + 1] = o.prob:reshape(n, 1)
      parts[#parts + 1] = losses.label_of(labels, t.label):reshape(n, 1)
      if t.mask then parts[#parts + 1] = labels[t.mask]:reshape(n, 1) end
    end
    local res = { mtl.concat(parts, 2) }
    if gauc then res[#res + 1] = batch.columns[gauc.group] end
    if #gates > 0 then
      local sums = {}
      for i, g in ipairs(gates) do
        sums[i] = g.gate.last and mtl.sum(g.gate.last, 1) or error("ranker: gate " .. i .. " kept no weights", 0)
      end
      res[#res + 1] = mtl.concat(sums, 1):reshape(1, -1)
    end
    return res
  end
  return fn, cols, ncols, gates
end

-- Per target: the probabilities, labels and masks of every batch; per gate:
-- the sums of its weights over the rows. (Every rank gets all of them.)
local function collect(model, r, targets)
  local gauc = (model.cfg.eval or {}).gauc
  local fn, cols, ncols, gates = scorer(model, targets, gauc)
  local c = { preds = {}, labs = {}, masks = {}, groups = {}, gate_sums = {}, rows = 0 }
  for _, t in ipairs(targets) do c.preds[t.name], c.labs[t.name], c.masks[t.name] = {}, {}, {} end
  local empty = { mtl.zeros(0, ncols) }
  if gauc then empty[#empty + 1] = mtl.zeros({ 0 }, "int64") end
  local widths = {}
  for i, g in ipairs(gates) do widths[i] = #g.experts end
  if #gates > 0 then
    local w = 0
    for _, n in ipairs(widths) do w = w + n end
    empty[#empty + 1] = mtl.zeros(0, w)
  end
  local prefetch = model.parallel and next(model.features.sharded) and function(batch)
    model.parallel:prefetch(model.features:sharded_ids(batch))
  end
  parallel.map_batches(r:batches(), fn, empty, function(parts)
    local rows = parts[1]
    c.rows = c.rows + rows:size(1)
    for _, t in ipairs(targets) do
      local k = cols[t.name]
      table.insert(c.preds[t.name], rows:narrow(2, k.p, 1))
      table.insert(c.labs[t.name], rows:narrow(2, k.y, 1))
      if k.m then table.insert(c.masks[t.name], rows:narrow(2, k.m, 1)) end
    end
    local i = 2
    if gauc then table.insert(c.groups, parts[i]); i = i + 1 end
    if #gates > 0 then
      local s, at = parts[i]:values(), 0
      for gi, w in ipairs(widths) do
        local acc = c.gate_sums[gi] or {}
        for k = 1, w do acc[k] = (acc[k] or 0) + s[at + k] end
        at = at + w
        c.gate_sums[gi] = acc
      end
    end
  end, prefetch)
  return c, gates
end

-- A column of batches' [n, 1] slices as one [rows] tensor.
local function column_of(list)
  local t = mtl.concat(list, 1)
  return t:reshape(t:numel())
end

-- Each gate's mean weights over the evaluated rows (nil for a model without gates).
local function utilization(gates, c)
  local util = {}
  for i, g in ipairs(gates) do
    if c.gate_sums[i] and c.rows > 0 then
      local w = {}
      for k, v in ipairs(c.gate_sums[i]) do w[k] = v / c.rows end
      util[#util + 1] = { task = g.task, level = g.level, experts = g.experts, weights = w }
    end
  end
  return #util > 0 and util or nil
end

-- Scores files (default: data.eval) in eval mode, then puts the model back
-- in training mode. Returns {target = {auc =, logloss =, calibration =,
-- gauc = (with eval.gauc), count =}} (with the predictions as pred and label
-- tensors when opts.keep) and the gates' utilization (docs/training.md).
-- opts.batch_size: rows per batch (per rank in a distributed run). Every
-- rank of a distributed run calls it and gets the same metrics.
function Ranker:evaluate(files, opts)
  opts = opts or {}
  local targets = self:eval_targets()
  local gauc = (self.cfg.eval or {}).gauc
  local B = opts.batch_size or self.cfg.data.batch_size or 1024
  local wants_max_f1 = false
  for _, name in ipairs((self.cfg.eval or {}).metrics or {}) do wants_max_f1 = wants_max_f1 or name == "max_f1" end
  self:eval()
  local r = self:reader(files or self.cfg.data.eval, B, { partition = parallel.score_partition(B) })
  local c, gates
  mtl.no_grad(function() c, gates = collect(self, r, targets) end)
  r:close()
  self:train()
  local result = {}
  for _, t in ipairs(targets) do
    local p, y = column_of(c.preds[t.name]), column_of(c.labs[t.name])
    local m = t.mask and column_of(c.masks[t.name]) or nil
    local res = {
      auc = mtl.metrics.auc(p, y, m),
      logloss = mtl.metrics.logloss(p, y, m),
      calibration = mtl.metrics.calibration(p, y, m),
      count = p:numel(),
    }
    if gauc and not m then
      res.gauc = mtl.metrics.gauc(p, y, mtl.concat(c.groups, 1), gauc.reduction or "mean")
    end
    if wants_max_f1 then res.max_f1 = mtl.metrics.max_f1(p, y, m) end
    if opts.keep then res.pred, res.label = p, y end
    result[t.name] = res
  end
  return result, utilization(gates, c)
end

-- ---- construction -------------------------------------------------------------------
-- The features of a config, their readers checking labels against the
-- losses' domains (losses.label_ranges).
function ranker.new_features(cfg)
  local F = features.new(cfg.features, cfg.data, cfg.groups)
  F.label_ranges = losses.label_ranges(cfg)
  return F
end

-- A new model: the feature transforms fitted on data.train (one pass, when
-- any needs fitting), the tables built, the model initialized from mtl's
-- random stream (seed it first). opts.plan: the tables are placed by
-- mtl.parallel's planner (a training run: train.shard_min_mib and
-- train.table_placement, each feature's placement; docs/distributed.md).
function ranker.build(cfg, opts)
  local F = ranker.new_features(cfg)
  if F:needs_fit() then F:fit(files_of(cfg.data.train)) end
  if opts and opts.plan then
    local oc = cfg.optimizer or {}
    local sparse = oc.sparse or oc.dense or {}
    local tc = cfg.train or {}
    F.plan = { shard_min_mib = tc.shard_min_mib, optimizer = sparse.name or "adam", tables = tc.table_placement }
  end
  F:build()
  return Ranker(cfg, F)
end

-- A trained model from a saved state (a run checkpoint, format mtl-run-1, or
-- an export's model.ckpt, mtl-export-1: both hold {model =, features =}),
-- reading no data. where: the state's file; when given, errors loading the
-- state start with it ("<where>: ...").
function ranker.load(cfg, state, where)
  local F = ranker.new_features(cfg)
  local function load(f, ...)
    local ok, err = pcall(f, ...)
    if ok then return end
    if not where then error(err, 0) end
    -- the message without a leading source position of mtl's own files
    error(string.format("%s: %s", where, (tostring(err):gsub("^[^%s:]+%.lua:%d+: ", ""))), 0)
  end
  load(F.load_state, F, state.features)
  local model = Ranker(cfg, F)
  load(model.load_state_dict, model, state.model)
  return model
end

-- Matrix-product FLOPs per example of one forward pass: 2*in*out per weight
-- parameter (weight, weight1, ...: a Linear's [out, in]; experts' [n, out, in]
-- count n times). A training step does three times this (forward, dX, dW).
-- Products without a weight parameter (attention scores) are not counted.
function ranker.forward_flops_per_row(model)
  local total = 0
  for _, np in ipairs(model:named_parameters()) do
    local s = np[1]:match("weight%d*$") and np[2]:shape() or {}
    if #s == 2 then total = total + 2 * s[1] * s[2]
    elseif #s == 3 then total = total + 2 * s[1] * s[2] * s[3] end
  end
  return total
end

-- Sets the model's inference precision (nn.Module:set_precision: "fp32" or
-- "bf16") and, when bf16 was asked for, says on stderr which one runs, e.g.
-- "mtl: inference precision bf16 (AVX512-BF16 products, FP32 accumulation),
-- 1.2 MiB of packed weights", or "fp32 (this CPU lacks AVX512-BF16)".
-- Returns the precision in effect.
function ranker.set_precision(model, p, quiet)
  local effective, status, bytes = model:set_precision(p)
  if p == "bf16" and not quiet then
    io.stderr:write(string.format("mtl: inference precision %s%s\n", status,
      effective == "bf16" and string.format(", %.1f MiB of packed weights", bytes / 2 ^ 20) or ""))
  end
  return effective
end

-- The Ranker of x: x itself, or a training run's model (train.new(...).model).
function ranker.of(x)
  if type(x) == "table" and getmetatable(x) == Ranker then return x end
  if type(x) == "table" and type(x.model) == "table" and getmetatable(x.model) == Ranker then return x.model end
  error(string.format("ranker: expected a Ranker (mtl.ranker.load) or a training run, got %s", type(x)), 3)
end

return ranker
