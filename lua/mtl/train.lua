-- mtl.train: the training workflow (docs/training.md).
--
--   local run = train.new(cfg)      -- features (fitted), model, optimizers
--   local metrics = run:fit()       -- epochs/steps, eval, checkpoints, logs
--   local m = run:evaluate(files)   -- {task = {auc =, logloss =, ...}}
--
-- cfg is the mtl config table (docs/config.md): data, features, model,
-- losses, optimizer, train, eval, rank, model_dir.
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local losses = require "mtl.losses"
local features = require "mtl.features"
local json = require "cjson"

local train = {}

-- ---- the model: feature columns, then an architecture from models/ ---------------
local Ranker = nn.class("Ranker")
train.Ranker = Ranker

function Ranker:__init(cfg, F)
  self.features = F
  local opts = {}
  for k, v in pairs(cfg.model) do if k ~= "name" then opts[k] = v end end
  opts.input = F.output_dim
  self.body = models.build(cfg.model.name, opts)
  self.tasks = self.body.tasks
end

function Ranker:forward(batch) return self.body(self.features(batch)) end

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

-- ---- helpers ----------------------------------------------------------------------------
local function files_of(x)
  if type(x) == "table" then return x end
  return { x }
end

local function label_columns(batch, names)
  local labels = {}
  for _, name in ipairs(names) do
    labels[name] = batch.columns[name] or error(string.format("train: label column '%s' is not in the data", name), 0)
  end
  return labels
end

-- Other modules may have declared clock_gettime with their own struct type
-- (mtl.bench does): the type and the function are declared separately, and
-- the call passes a void * (which converts to any pointer parameter).
local function now()
  local ffi = require "ffi"
  if not pcall(ffi.typeof, "mtl_timespec") then
    ffi.cdef "typedef struct { long tv_sec; long tv_nsec; } mtl_timespec;"
  end
  if not pcall(function() return ffi.C.clock_gettime end) then
    ffi.cdef "int clock_gettime(int clk, mtl_timespec *ts);"
  end
  local ts = ffi.new("mtl_timespec[1]")
  ffi.C.clock_gettime(1, ffi.cast("void *", ts))
  return tonumber(ts[0].tv_sec) + tonumber(ts[0].tv_nsec) * 1e-9
end
train.now = now

local function isatty(fd)
  local ffi = require "ffi"
  if not pcall(function() return ffi.C.isatty end) then ffi.cdef "int isatty(int fd);" end
  return ffi.C.isatty(fd) == 1
end
train.isatty = isatty

local function mkdir_p(path)
  os.execute(string.format("mkdir -p '%s'", path:gsub("'", "'\\''")))
end
train.mkdir_p = mkdir_p

-- ---- a run ------------------------------------------------------------------------------
local Run = {}
Run.__index = Run
train.Run = Run

-- Builds features (fitting them on the training files), the model and the
-- optimizers. opts.quiet silences progress output.
function train.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({ cfg = cfg, opts = opts, step = 0, epoch = 1, batch_in_epoch = 0, history = {} }, Run)
  local tc = cfg.train or {}
  mtl.set_num_threads(tc.threads or 1)
  mtl.seed(tc.seed or 0)
  self.features = features.new(cfg.features, cfg.data)
  if opts.state then -- a saved run or export: its fitted transforms and tables, no pass over data
    self.features:load_state(opts.state.features)
  else
    if self.features:needs_fit() then self.features:fit(files_of(cfg.data.train)) end
    self.features:build()
  end
  self.model = Ranker(cfg, self.features)
  self.loss_spec = cfg.losses or losses.default_spec(self.model.body)
  self.label_names = {}
  local seen = {}
  local function want(l)
    if type(l) == "table" then for _, x in ipairs(l) do want(x) end
    elseif l and not seen[l] then seen[l] = true; self.label_names[#self.label_names + 1] = l end
  end
  for _, t in ipairs(self.loss_spec) do want(t.label); want(t.mask); want(t.sample_weight) end
  for _, t in ipairs(self.model:eval_targets()) do want(t.label); want(t.mask) end
  self:make_optimizers()
  self.model_dir = cfg.model_dir
  if opts.state then
    if opts.state.format == "mtl-run-1" then self:restore(opts.state) else self.model:load_state_dict(opts.state.model) end
  end
  return self
end

-- Config schedule names (docs/config.md) -> mtl.schedule constructors.
local SCHEDULES = { exponential_decay = "exponential", exponential = "exponential", cosine = "cosine",
                    cosine_decay = "cosine", linear_warmup = "linear_warmup", polynomial = "polynomial",
                    polynomial_decay = "polynomial", manual = "manual", manual_step = "manual", step = "step" }

local function schedule_of(s, base_lr)
  if not s or s.name == "constant" or s.name == nil then return nil end
  local name = SCHEDULES[s.name] or error(string.format("train: unknown lr schedule '%s'", tostring(s.name)), 0)
  local opts = {}
  for k, v in pairs(s) do if k ~= "name" then opts[k] = v end end
  if opts.decay_factor then opts.decay_rate, opts.decay_factor = opts.decay_factor, nil end
  -- manual schedules list their own values; the others scale from the base lr
  if name ~= "manual" then opts.lr = opts.lr or base_lr end
  return mtl.schedule[name](opts)
end

-- Dense parameters and embedding tables get their own optimizer settings
-- (EasyRec lets embeddings have their own lr/optimizer); one optimizer per
-- distinct kind.
function Run:make_optimizers()
  local oc = self.cfg.optimizer or {}
  local dense = oc.dense or { name = "adam", lr = 1e-3 }
  local sparse = oc.sparse or dense
  local function settings(o)
    local s = {}
    for k, v in pairs(o) do if k ~= "name" then s[k] = v end end
    s.lr = schedule_of(oc.schedule, o.lr or 1e-3) or o.lr or 1e-3
    return s
  end
  local tables = {}
  for _, e in ipairs(self.features:embedding_tables()) do tables[#tables + 1] = e.table end
  local dense_group = settings(dense)
  dense_group.params = self.model:parameters()
  local sparse_group = settings(sparse)
  sparse_group.params = tables
  self.optimizers = {}
  if (dense.name or "adam") == (sparse.name or "adam") then
    local groups = { dense_group }
    if #tables > 0 then groups[2] = sparse_group end
    self.optimizers[1] = mtl.optim[dense.name or "adam"] { params = groups }
  else
    self.optimizers[1] = mtl.optim[dense.name or "adam"] { params = { dense_group } }
    if #tables > 0 then self.optimizers[2] = mtl.optim[sparse.name] { params = { sparse_group } } end
  end
  self.clip_norm = oc.clip_norm
end

-- One training step on a batch; returns the loss value and per-task losses.
function Run:train_step(batch)
  local out = self.model(batch)
  local labels = label_columns(batch, self.label_names)
  local total, per_task = losses.compute(out, labels, self.loss_spec, { step = self.step })
  local aux = self.model.body.aux_loss and self.model.body:aux_loss()
  if aux then total = total + aux end
  for _, o in ipairs(self.optimizers) do o:zero_grad() end
  total:backward()
  if self.clip_norm then
    for _, o in ipairs(self.optimizers) do mtl.optim.clip_grad_norm(o, self.clip_norm) end
  end
  for _, o in ipairs(self.optimizers) do o:step() end
  self.step = self.step + 1
  local per = {}
  for k, v in pairs(per_task) do per[k] = v:item() end
  self:remember(out, labels)
  return total:item(), per
end

-- The running AUC: each eval target's predictions and labels over the last
-- cfg.train.auc_window batches (default 20), for the progress bar and logs.
function Run:remember(out, labels)
  local window = (self.cfg.train or {}).auc_window or 20
  if window <= 0 then return end
  self.window = self.window or {}
  local w = self.window
  local entry = {}
  for _, t in ipairs(self.model:eval_targets()) do
    local o = out[t.output]
    if o and o.prob then
      entry[t.name] = { p = o.prob:detach():clone(), y = losses.label_of(labels, t.label):clone(),
                        m = t.mask and labels[t.mask]:clone() or nil }
    end
  end
  w[#w + 1] = entry
  if #w > window then table.remove(w, 1) end
end

-- {target = auc over the window} (NaN when the window has one class only).
function Run:running_auc()
  local res = {}
  local w = self.window
  if not w or #w == 0 then return res end
  for name in pairs(w[#w]) do
    local p, y, m = {}, {}, {}
    for _, e in ipairs(w) do
      local x = e[name]
      if x then p[#p + 1], y[#y + 1], m[#m + 1] = x.p, x.y, x.m end
    end
    res[name] = mtl.metrics.auc(mtl.concat(p, 1), mtl.concat(y, 1), #m == #p and mtl.concat(m, 1) or nil)
  end
  return res
end

function Run:reader(files, batch_size, shuffle)
  local dc = self.cfg.data
  local extra = { separator = dc.separator, header = dc.header, shuffle_buffer = shuffle and dc.shuffle_buffer or 0 }
  if shuffle and (dc.shuffle_buffer or 0) > 0 then
    -- the reader's own stream, seeded per epoch: the order depends on the seed
    -- and the epoch only, so a resumed run reads exactly the same batches
    extra.shuffle_seed = ((self.cfg.train or {}).seed or 0) * 1000003 + self.epoch
  end
  return mtl.data.csv(self.features:reader_options(files_of(files), batch_size or dc.batch_size or 1024, extra))
end

-- Scores files in eval mode: {target = {auc =, logloss =, calibration =, gauc =, count =}}
-- plus the raw predictions when keep is true.
function Run:evaluate(files, opts)
  opts = opts or {}
  local model = self.model
  model:eval()
  local targets = model:eval_targets()
  local preds, labs, masks, groups = {}, {}, {}, {}
  for _, t in ipairs(targets) do preds[t.name], labs[t.name], masks[t.name] = {}, {}, {} end
  local ec = self.cfg.eval or {}
  local gauc = ec.gauc
  local r = self:reader(files or self.cfg.data.eval, opts.batch_size)
  local gates = train.gates(model.body)
  local gate_sums, rows = {}, 0
  mtl.no_grad(function()
    for batch in r:batches() do
      local out = model(batch)
      rows = rows + batch.size
      for i, g in ipairs(gates) do
        if g.gate.last then
          local s = mtl.sum(g.gate.last, 1):values()
          local acc = gate_sums[i] or {}
          for k, v in ipairs(s) do acc[k] = (acc[k] or 0) + v end
          gate_sums[i] = acc
        end
      end
      local labels = label_columns(batch, self.label_names)
      for _, t in ipairs(targets) do
        local o = out[t.output] or error("train: the model has no output '" .. t.output .. "'", 0)
        table.insert(preds[t.name], o.prob)
        table.insert(labs[t.name], losses.label_of(labels, t.label))
        if t.mask then table.insert(masks[t.name], labels[t.mask]) end
      end
      if gauc then table.insert(groups, batch.columns[gauc.group]) end
    end
  end)
  r:close()
  model:train()
  local result = {}
  for _, t in ipairs(targets) do
    local p, y = mtl.concat(preds[t.name], 1), mtl.concat(labs[t.name], 1)
    local m = t.mask and mtl.concat(masks[t.name], 1) or nil
    local res = {
      auc = mtl.metrics.auc(p, y, m),
      logloss = mtl.metrics.logloss(p, y, m),
      calibration = mtl.metrics.calibration(p, y, m),
      count = p:numel(),
    }
    if gauc and not m then
      res.gauc = mtl.metrics.gauc(p, y, mtl.concat(groups, 1), gauc.reduction or "mean")
    end
    if opts.keep then res.pred, res.label = p, y end
    result[t.name] = res
  end
  -- expert utilization: each gate's mean weights over the evaluated rows
  local util = {}
  for i, g in ipairs(gates) do
    if gate_sums[i] and rows > 0 then
      local w = {}
      for k, v in ipairs(gate_sums[i]) do w[k] = v / rows end
      util[#util + 1] = { task = g.task, level = g.level, experts = g.experts, weights = w }
    end
  end
  self.gate_utilization = #util > 0 and util or nil
  return result
end

-- The softmax gates of a model body, one entry per (task, level):
-- {task =, level = nil | n, gate = nn.Gate, experts = {labels}} (the model's
-- own gates(): models/<name>.lua; none for a model without gates).
function train.gates(body)
  return body.gates and body:gates() or {}
end

-- ---- logging ---------------------------------------------------------------------------------
-- NaN and infinities (e.g. the AUC of a one-class window) become JSON null.
local function finite(v)
  if type(v) == "number" then return (v == v and v ~= math.huge and v ~= -math.huge) and v or nil end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = finite(x) end
  return out
end
train.finite = finite

function Run:log(record)
  record = finite(record)
  record.step = self.step
  record.epoch = self.epoch
  self.history[#self.history + 1] = record
  if self.metrics_file then
    self.metrics_file:write(json.encode(record), "\n")
    self.metrics_file:flush()
  end
  return record
end

local function fmt_metrics(m)
  local parts = {}
  local names = {}
  for k in pairs(m) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do parts[#parts + 1] = string.format("%s auc %.4f", k, m[k].auc) end
  return table.concat(parts, "  ")
end
train.format_metrics = fmt_metrics

-- ---- checkpoints ---------------------------------------------------------------------------------
function Run:checkpoint_state()
  local opt = {}
  for i, o in ipairs(self.optimizers) do opt[i] = o:state_dict() end
  return {
    format = "mtl-run-1", step = self.step, epoch = self.epoch, batch_in_epoch = self.batch_in_epoch,
    rng = mtl.rand_state(), model = self.model:state_dict(), features = self.features:state(),
    optimizers = opt, history = self.history, best = self.best, bad_evals = self.bad_evals,
  }
end

-- Loads a run checkpoint into this run. The embedding tables are loaded in
-- place (the optimizers hold them); the random stream continues from the
-- saved state (the data order has its own stream, see Run:fit).
function Run:restore(st)
  if st.format ~= "mtl-run-1" then error("train: not an mtl run checkpoint", 0) end
  self.model:load_state_dict(st.model)
  local F = self.features
  F.fitted = st.features.fitted or {}
  for name, sd in pairs(st.features.tables or {}) do
    local t = F.tables[name] or error(string.format("train: the checkpoint has a table '%s' that the features do not define", name), 0)
    t:load_state_dict(sd)
  end
  for i, o in ipairs(self.optimizers) do o:load_state_dict(st.optimizers[i]) end
  self.step, self.epoch, self.batch_in_epoch = st.step, st.epoch, st.batch_in_epoch
  self.history = st.history or {}
  self.best = st.best
  self.bad_evals = st.bad_evals or 0
  mtl.rand_state(st.rng)
end

local function list_checkpoints(dir)
  local out = {}
  local p = io.popen(string.format("ls '%s' 2>/dev/null", dir))
  for name in p:lines() do
    local n = name:match("^step%-(%d+)%.ckpt$")
    if n then out[#out + 1] = { step = tonumber(n), path = dir .. "/" .. name } end
  end
  p:close()
  table.sort(out, function(a, b) return a.step < b.step end)
  return out
end
train.list_checkpoints = list_checkpoints

function Run:save_checkpoint(tag)
  local dir = self.model_dir .. "/checkpoints"
  mkdir_p(dir)
  local path = tag and (dir .. "/" .. tag .. ".ckpt") or string.format("%s/step-%d.ckpt", dir, self.step)
  mtl.save(path, self:checkpoint_state())
  if not tag then
    local keep = (self.cfg.train or {}).keep_checkpoints or 5
    local all = list_checkpoints(dir)
    for i = 1, #all - keep do os.remove(all[i].path) end
  end
  return path
end

-- ---- the loop --------------------------------------------------------------------------------------
-- Exact resume: the data order of an epoch comes from the reader's own
-- shuffle stream, seeded from (train.seed, epoch) (Run:reader), so a resumed
-- run replays its epoch's order up to where the checkpoint was taken; the
-- model's stream (initialization, dropout) continues from the saved state.
-- At each step boundary the stream is reset to its own 4-word state (which
-- drops a pending second normal of Box-Muller), so that state, which
-- checkpoints save, describes it completely.

-- Keeps the records of metrics.jsonl up to the resumed step (a killed run may
-- have logged past its last checkpoint), then appends.
local function open_metrics(path, step)
  if step == 0 then return io.open(path, "w") end
  local keep = {}
  local f = io.open(path)
  if f then
    for line in f:lines() do
      local ok, rec = pcall(json.decode, line)
      if ok and type(rec) == "table" and (rec.step or 0) <= step and not rec.final then keep[#keep + 1] = line end
    end
    f:close()
  end
  local out = io.open(path, "w")
  for _, line in ipairs(keep) do out:write(line, "\n") end
  return out
end

-- Trains as the config says; resumes from model_dir/checkpoints when
-- opts.resume (or cfg.train.resume) and a checkpoint exists. Returns the
-- final evaluation metrics (or the last training loss when no eval data).
-- opts.progress: an object with start/step/log/eval/message/finish methods
-- (mtl.cli.progress; the default: a bar on a terminal, lines otherwise).
function Run:fit()
  local cfg, tc = self.cfg, self.cfg.train or {}
  local quiet = self.opts.quiet
  local out = self.opts.out or io.stdout
  local progress = self.opts.progress or require("mtl.cli.progress").new({ out = out, quiet = quiet })
  local resumed_from
  if self.model_dir then
    mkdir_p(self.model_dir)
    if self.opts.resume or tc.resume then
      local all = list_checkpoints(self.model_dir .. "/checkpoints")
      if #all > 0 then
        self:restore(mtl.load(all[#all].path))
        resumed_from = all[#all].path
      end
    end
    self.metrics_file = open_metrics(self.model_dir .. "/metrics.jsonl", self.step)
  end
  local epochs = tc.epochs or cfg.data.epochs or 1
  local max_steps = tc.steps
  local log_every, eval_every, ckpt_every = tc.log_every or 100, tc.eval_every, tc.checkpoint_every
  progress:start(self, { steps = max_steps, epochs = epochs, files = files_of(cfg.data.train),
                         batch_size = cfg.data.batch_size or 1024 })
  if resumed_from then progress:message(string.format("resumed from %s (step %d)", resumed_from, self.step)) end
  local t0, seen, loss_sum, loss_n, task_sum = now(), 0, 0, 0, {}
  local stop = false
  local stopper = tc.early_stopping
  self.bad_evals = self.bad_evals or 0
  if max_steps and self.step >= max_steps then stop = true end -- resumed at (or past) the budget
  while self.epoch <= epochs and not stop do
    local reader = self:reader(cfg.data.train, nil, true)
    local skip = self.batch_in_epoch
    local b = 0
    for batch in reader:batches() do
      b = b + 1
      if b > skip then
        mtl.rand_state(mtl.rand_state())
        local loss, per = self:train_step(batch)
        self.batch_in_epoch = b
        seen = seen + batch.size
        loss_sum, loss_n = loss_sum + loss * batch.size, loss_n + batch.size
        for k, v in pairs(per) do task_sum[k] = (task_sum[k] or 0) + v * batch.size end
        progress:step(self, { loss = loss, rows = batch.size })
        if self.step % log_every == 0 then
          local rate = seen / math.max(now() - t0, 1e-9)
          local task_loss = {}
          for k, v in pairs(task_sum) do task_loss[k] = v / loss_n end
          local record = { kind = "train", loss = loss_sum / loss_n, task_loss = task_loss,
                           running_auc = self:running_auc(), examples_per_s = rate }
          progress:log(self, self:log(record))
          loss_sum, loss_n, task_sum = 0, 0, {}
        end
        if eval_every and cfg.data.eval and self.step % eval_every == 0 then
          local m = self:evaluate(cfg.data.eval)
          self:log({ kind = "eval", metrics = self:plain(m), gates = self.gate_utilization })
          progress:eval(self, m, false)
          if stopper then
            local v = self:metric_value(m, stopper.metric)
            local better = self.best == nil or ((stopper.mode or "max") == "max" and v > self.best or (stopper.mode == "min" and v < self.best))
            if better then
              self.best, self.bad_evals = v, 0
              if self.model_dir then self:save_checkpoint("best") end
            else
              self.bad_evals = self.bad_evals + 1
              if self.bad_evals >= (stopper.patience or 3) then stop = true end
            end
          end
        end
        if ckpt_every and self.model_dir and self.step % ckpt_every == 0 then self:save_checkpoint() end
        if (max_steps and self.step >= max_steps) or stop then
          stop = true
          break
        end
      end
    end
    reader:close()
    if not stop then
      self.epoch = self.epoch + 1
      self.batch_in_epoch = 0
    end
  end
  local final
  if cfg.data.eval then
    final = self:evaluate(cfg.data.eval)
    self:log({ kind = "eval", final = true, metrics = self:plain(final), gates = self.gate_utilization })
    progress:eval(self, final, true)
  end
  if self.model_dir then
    self.last_checkpoint = self:save_checkpoint()
    if self.metrics_file then self.metrics_file:close() end
    self.metrics_file = nil
  end
  progress:finish(self)
  return final, self
end

-- Metrics without tensors (for logs and JSON).
function Run:plain(m)
  local out = {}
  for k, v in pairs(m) do
    out[k] = { auc = v.auc, logloss = v.logloss, calibration = v.calibration, gauc = v.gauc, count = v.count }
  end
  return out
end

-- "eval.pay.auc" or "pay.auc" -> number
function Run:metric_value(m, path)
  local task, name = path:match("^eval%.([^.]+)%.([^.]+)$")
  if not task then task, name = path:match("^([^.]+)%.([^.]+)$") end
  local v = task and m[task] and m[task][name]
  if type(v) ~= "number" then error(string.format("train: no metric '%s' (tasks: %s)", path, fmt_metrics(m)), 0) end
  return v
end

return train
