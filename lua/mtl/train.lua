-- mtl.train: the training workflow (docs/training.md).
--
--   local run = train.new(cfg)      -- features (fitted), model (a Ranker), optimizers
--   local metrics = run:fit()       -- epochs/steps, eval, checkpoints, logs
--   local m = run:evaluate(files)   -- {task = {auc =, logloss =, ...}}
--
-- cfg is the mtl config table (docs/config.md): data, features, model,
-- losses, optimizer, train, eval, rank, model_dir. The model, its losses and
-- its evaluation are mtl.ranker's; this file is the loop around them.
local mtl = require "mtl"
local json = require "cjson"
local losses = require "mtl.losses"
local parallel = require "mtl.parallel"
local shard_state = require "mtl.shard_state"
local ranker = require "mtl.ranker"
local sys = require "mtl.sys"
local cli_progress = require "mtl.cli.progress"
local checks = require "mtl.train_checks"

local train = {}

local files_of = ranker.files_of
local SIGINT, SIGTERM = 2, 15
train.SIGNAL_NAMES = { [SIGINT] = "SIGINT", [SIGTERM] = "SIGTERM" }

-- ---- a run ------------------------------------------------------------------------------
local Run = {}
Run.__index = Run
train.Run = Run

-- Seeds mtl and sets its threads (cfg.train), then builds the model
-- (ranker.build: features fitted on the training files) and the optimizers.
-- opts.state: a saved run or export to start from instead (its fitted
-- transforms, tables and weights; a run checkpoint also its optimizers,
-- step and random stream). opts.quiet silences progress output.
function train.new(cfg, opts)
  opts = opts or {}
  local self = setmetatable({ cfg = cfg, opts = opts, step = 0, epoch = 1, batch_in_epoch = 0, history = {} }, Run)
  local tc = cfg.train or {}
  mtl.set_num_threads(tc.threads or 1)
  mtl.seed(tc.seed or 0)
  self.model = opts.state and ranker.load(cfg, opts.state) or ranker.build(cfg, { plan = true })
  self.features = self.model.features
  self.label_names = self.model:label_names()
  self:make_optimizers()
  -- the data-parallel layer (docs/distributed.md): identity collectives in one process
  self.parallel = parallel.new { model = self.model, tables = self.features:embedding_tables(),
                                 optimizers = self.optimizers, check_every = tc.check_every }
  self.model.parallel = self.parallel -- evaluation's prefetch of sharded tables
  self.model_dir = cfg.model_dir
  if opts.state and opts.state.format == "mtl-run-1" then self:restore(opts.state) end
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
  for _, e in ipairs(self.features:embedding_tables()) do -- a sharded table: its rows on this rank
    tables[#tables + 1] = parallel.is_sharded(e.table) and e.table.shard or e.table
  end
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

-- One training step on this rank's rows of a global batch (in one process:
-- the batch). Every rank runs it, one with no rows on an empty batch: the
-- counts are summed first (the losses' denominators are the global batch's,
-- so the summed gradients are the global batch's gradient), the forward runs
-- (a dynamic table's lookups are collectives), the gradients are summed over
-- the ranks (mtl.parallel), then every rank takes the same optimizer step.
-- A stop asked for by a signal (opts.signals: mtl.catch_stop_signals) is
-- agreed on with the same sum: when any rank caught one, every rank returns
-- nil before the step, with run.stop_signal set (SIGTERM when some rank had
-- one, else SIGINT; a rank's own signal first).
-- Returns the global batch's loss, its per-task losses and its rows; nil
-- when no rank has rows left (the epoch is over) or a signal stops the run;
-- false when the loss was NaN or infinite and train.nan_loss = "skip" (no
-- update: the batch is skipped).
function Run:train_step(batch)
  local P = self.parallel
  local labels = ranker.labels(batch, self.label_names)
  local spec = self.model.loss_spec
  local counts = losses.denominators(labels, spec, batch.size)
  table.insert(counts, 1, batch.size)
  local n, sig = #counts, self.opts.signals and mtl.stop_signal() or 0
  counts[n + 1], counts[n + 2] = sig == SIGINT and 1 or 0, sig == SIGTERM and 1 or 0
  local global = P:begin_step(self.step + 1, counts)
  counts[n + 1], counts[n + 2] = nil, nil
  if global[n + 1] + global[n + 2] > 0 then
    self.stop_signal = sig ~= 0 and sig or (global[n + 2] > 0 and SIGTERM or SIGINT)
    return nil
  end
  global[n + 1], global[n + 2] = nil, nil
  if global[1] == 0 then return nil end
  local scale = P:scales(counts, global)
  P:prefetch(self.features:sharded_ids(batch))
  local out = self.model(batch)
  local names = {}
  for i, t in ipairs(spec) do names[i] = t.name or t.output end
  local sums = P:backward(batch.size, function()
    local total, per_task = self.model:loss(out, labels, self.step, scale)
    local shares = {} -- each task's loss as its share of the global batch's
    for i, name in ipairs(names) do
      local share = scale[i] or 1
      shares[i] = share == 1 and per_task[name]:item() or per_task[name]:item() * share
    end
    return total, shares
  end, #names)
  if not self:loss_finite(sums, names) then return false end
  if self.clip_norm then
    for _, o in ipairs(self.optimizers) do mtl.optim.clip_grad_norm(o, self.clip_norm) end
  end
  for _, o in ipairs(self.optimizers) do o:step() end
  self.step = self.step + 1
  if P:check_due(self.step) then P:check(self.step, false) end
  local per = {}
  for i, name in ipairs(names) do per[name] = sums[i + 1] end
  if batch.size > 0 then self:remember(out, labels) end
  return sums[1], per, global[1]
end

Run.loss_finite, Run.skipped_rows, Run.keep_skipped = checks.loss_finite, checks.skipped_rows, checks.keep_skipped

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

-- The training reader: this rank's rows of every global batch of
-- data.batch_size rows (parallel.train_partition; one process: every row).
-- Shuffled readers use the reader's own stream, seeded per epoch and rank:
-- the order depends on the seed, the epoch and the rank only, so a resumed
-- run reads exactly the same batches.
function Run:reader(files, shuffle)
  local dc = self.cfg.data
  local B = dc.batch_size or 1024
  local extra = { shuffle_buffer = shuffle and dc.shuffle_buffer or 0, partition = parallel.train_partition(B) }
  if shuffle and (dc.shuffle_buffer or 0) > 0 then
    extra.shuffle_seed = parallel.shuffle_seed((self.cfg.train or {}).seed or 0, self.epoch)
  end
  return self.model:reader(files, parallel.local_rows(B), extra)
end

-- Scores files (default data.eval) in eval mode (Ranker:evaluate: every
-- rank scores its part, the metrics are over all ranks' predictions) and
-- keeps the gates' utilization in run.gate_utilization.
function Run:evaluate(files, opts)
  mtl.dist.set_context(string.format("evaluation at step %d", self.step))
  local m, util = self.model:evaluate(files, opts)
  self.gate_utilization = util
  return m
end

-- ---- logging ---------------------------------------------------------------------------------
-- Adds a record to the history and metrics.jsonl (NaN and infinities, e.g.
-- the AUC of a one-class window, become JSON null).
function Run:log(record)
  record = mtl.metrics.finite(record)
  record.step = self.step
  record.epoch = self.epoch
  self.history[#self.history + 1] = record
  if self.metrics_file then
    self.metrics_file:write(json.encode(record), "\n")
    self.metrics_file:flush()
  end
  return record
end

-- The rows and loss sums since the last train record, and the rate since fit began.
function Run:count_step(loss, per, rows) -- the global batch's
  local s = self.since_log
  s.seen = s.seen + rows
  s.loss_sum, s.loss_n = s.loss_sum + loss * rows, s.loss_n + rows
  for k, v in pairs(per) do s.task_sum[k] = (s.task_sum[k] or 0) + v * rows end
end

function Run:log_train(progress)
  local s = self.since_log
  local rate = s.seen / math.max(sys.now() - s.t0, 1e-9)
  local task_loss = {}
  for k, v in pairs(s.task_sum) do task_loss[k] = v / s.loss_n end
  local record = { kind = "train", loss = s.loss_sum / s.loss_n, task_loss = task_loss,
                   running_auc = self:running_auc(), examples_per_s = rate,
                   gflops = self.flops_per_example * rate / 1e9 }
  record.lr, record.lr_sparse = self:learning_rates()
  record.skipped_nan = self.skipped_nan -- batches skipped for a non-finite loss (train.nan_loss = "skip")
  record.skipped_rows = self:skipped_rows() -- training rows skipped (data.bad_rows = "skip"), by reason
  progress:log(self, self:log(record))
  s.loss_sum, s.loss_n, s.task_sum = 0, 0, {}
end

-- The lr the dense parameters take at the next step, and the embedding
-- tables' when it differs (their own optimizer or group).
function Run:learning_rates()
  local dense = self.optimizers[1]:get_lr(1)
  local o = self.optimizers[2] or self.optimizers[1]
  local g = self.optimizers[2] and 1 or 2
  local sparse = #o.groups >= g and o:get_lr(g) or nil
  if sparse == dense then sparse = nil end
  return dense, sparse
end

-- Writes model_dir/report.html from the records so far (mtl.report): live
-- (the page reloads itself) while training goes on, or after it ended
-- (opts.failed: the error that stopped it; opts.stopped: the signal, "SIGINT
-- at step N"). Rank 0 writes it.
function Run:write_report(opts)
  if not self.model_dir or self.parallel.rank ~= 0 then return nil end
  opts = opts or {}
  self.report_path = require("mtl.report").write(self.model_dir,
    { records = self.history, live = opts.live, failed = opts.failed, stopped = opts.stopped })
  return self.report_path
end

-- Metrics without tensors (for logs and JSON).
function Run:plain(m) return mtl.metrics.plain(m) end

-- "eval.pay.auc" or "pay.auc" -> number
function Run:metric_value(m, path)
  local task, name = path:match("^eval%.([^.]+)%.([^.]+)$")
  if not task then task, name = path:match("^([^.]+)%.([^.]+)$") end
  local v = task and m[task] and m[task][name]
  if type(v) ~= "number" then
    error(string.format("train: no metric '%s' (tasks: %s)", path, mtl.metrics.summary(m)), 0)
  end
  return v
end

-- ---- checkpoints ---------------------------------------------------------------------------------
function Run:checkpoint_state()
  local s = self.since_log
  local opt = {} -- a sharded table's state is in the ranks' shards
  for i, o in ipairs(self.optimizers) do opt[i] = shard_state.replicated_optim_state(o, self.parallel.sharded) end
  return {
    format = "mtl-run-1", step = self.step, epoch = self.epoch, batch_in_epoch = self.batch_in_epoch,
    rng = mtl.rand_state(), model = self.model:state_dict(), features = self.features:state(),
    optimizers = opt, history = self.history, best = self.best, bad_evals = self.bad_evals,
    -- what the next train record and the running AUC are made of, so that a
    -- resumed run logs what an uninterrupted one does
    since_log = s and { loss_sum = s.loss_sum, loss_n = s.loss_n, task_sum = s.task_sum } or nil,
    window = self.window, skipped_nan = self.skipped_nan, skipped_before = self.skipped_before,
  }
end

-- Loads a run checkpoint into this run. The embedding tables are loaded in
-- place (the optimizers hold them); the random stream continues from the
-- saved state (the data order has its own stream, see Run:reader).
function Run:restore(st)
  if st.format ~= "mtl-run-1" then error("train: not an mtl run checkpoint", 0) end
  self.model:load_state_dict(st.model)
  local F = self.features
  F.fitted = st.features.fitted or {}
  local tables = {}
  for name, sd in pairs(st.features.tables or {}) do
    tables[name] = sd
    if not F.tables[name] then error(string.format("train: the checkpoint has a table '%s' that the features do not define", name), 0) end
  end
  -- a table this run shards but the checkpoint holds whole: each rank keeps its rows
  shard_state.split_replicated(self.parallel.sharded, self.optimizers, tables, st.optimizers)
  for name, sd in pairs(tables) do F.tables[name]:load_state_dict(sd) end
  for i, o in ipairs(self.optimizers) do shard_state.load_replicated_optim_state(o, self.parallel.sharded, st.optimizers[i]) end
  self.step, self.epoch, self.batch_in_epoch = st.step, st.epoch, st.batch_in_epoch
  self.history = st.history or {}
  self.best = st.best
  self.bad_evals = st.bad_evals or 0
  self.restored_log, self.window, self.skipped_nan = st.since_log, st.window, st.skipped_nan
  self.skipped_before = st.skipped_before
  mtl.rand_state(st.rng)
end

-- Writes a checkpoint of step N (every rank calls it): first the ranks'
-- replicated state is checked to be the same (tables included), then rank 0
-- writes model_dir/checkpoints/step-N.ckpt (the replicated state: everything
-- today), every rank writes its shard step-N.rank-R.ckpt when it has one
-- (the rows of the sharded tables), and after a barrier rank 0 writes
-- step-N.manifest last (mtl.checkpoint.write_manifest): a checkpoint without
-- its manifest is incomplete and never resumed from. Keeps the last
-- train.keep_checkpoints. With a tag: rank 0 writes <tag>.ckpt alone.
-- Returns the path of step-N.ckpt (or <tag>.ckpt).
function Run:save_checkpoint(tag)
  local P = self.parallel
  local dir = self.model_dir .. "/checkpoints"
  local path = tag and (dir .. "/" .. tag .. ".ckpt") or string.format("%s/step-%d.ckpt", dir, self.step)
  mtl.dist.set_context(string.format("checkpoint at step %d", self.step))
  P:check(self.step, true)
  if P.rank == 0 then
    sys.mkdir_p(dir)
    mtl.save(path, self:checkpoint_state())
  end
  if tag then return path end
  local files, shard = { (path:match("[^/]+$")) }, P:shard_state()
  if shard ~= nil then
    sys.mkdir_p(dir)
    mtl.save(string.format("%s/step-%d.rank-%d.ckpt", dir, self.step, P.rank), shard)
  end
  mtl.dist.barrier() -- every rank's files are written
  if P.rank == 0 then
    if shard ~= nil then
      for r = 0, P.size - 1 do files[#files + 1] = string.format("step-%d.rank-%d.ckpt", self.step, r) end
    end
    mtl.checkpoint.write_manifest(dir, self.step, { ranks = P.size, files = files,
      tables = self:table_placements() })
    local keep = (self.cfg.train or {}).keep_checkpoints or 5
    local all = mtl.checkpoint.list(dir)
    for i = 1, #all - keep do mtl.checkpoint.remove(all[i]) end
  end
  return path
end

-- {table name = placement} of the parallel plan, for the manifest.
function Run:table_placements()
  local out = {}
  for _, p in ipairs(self.parallel.plan) do out[p.name] = p.placement end
  return out
end

-- Loads the latest complete checkpoint of model_dir (rank 0 chooses it and
-- tells the others, so every rank loads the same one); returns its path, or
-- nil when there is none. opts.resume_from = N: the checkpoint of step N
-- instead (train_checks.resume_list). One that does not load is an error
-- naming the newest older one that does (train_checks.load_resumable). A
-- checkpoint of another number of ranks loads too: its sharded tables' rows
-- go to their owners at this run's number of ranks (or are assembled whole
-- for a table this run replicates), and the training stream goes on at the
-- next global batch (docs/distributed.md, "Resharding").
function Run:resume()
  local P = self.parallel
  local dir = self.model_dir .. "/checkpoints"
  local all = P.rank == 0 and checks.resume_list(dir, self.opts.resume_from) or {}
  local step = mtl.dist.broadcast(mtl.tensor({ #all > 0 and all[#all].step or -1 }, "int64"), 0):get(1)
  if step < 0 then return nil end
  local path = string.format("%s/step-%d.ckpt", dir, step)
  local manifest, state = checks.load_resumable(dir, step, path, self.opts.command)
  local ranks = manifest and manifest.ranks or 1
  if ranks ~= P.size and P.rank == 0 and not self.opts.quiet then
    io.stderr:write(string.format("train: resuming %s, written by %d rank%s, at %d: sharded tables are redistributed; "
      .. "the epoch goes on at its next global batch\n", path, ranks, ranks == 1 and "" or "s", P.size))
  end
  self:restore(state)
  local placed = manifest and manifest.tables or {}
  local shards = shard_state.files(ranks, function(r) return string.format("%s/step-%d.rank-%d.ckpt", dir, step, r) end)
  local list = {}
  for _, st in ipairs(P.sharded) do
    if placed[st.name] == "sharded" then list[#list + 1] = st end
  end
  if #list > 0 then
    P:load_shard_state(ranks == P.size and mtl.load(string.format("%s/step-%d.rank-%d.ckpt", dir, step, P.rank)) or shards, list)
  end
  for _, p in ipairs(P.plan) do -- sharded in the checkpoint, replicated here: the whole table
    if placed[p.name] == "sharded" and p.placement == "replicated" then
      local tstate, ostate = shard_state.assemble(p.name, shards)
      p.table:load_state_dict(tstate)
      shard_state.load_optim_entries(self.optimizers, p.table, ostate)
    end
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

-- Starts metrics.jsonl with the records of the run so far (a resumed
-- checkpoint's history: a killed run may have logged past its last
-- checkpoint), written whole, then opens it to append.
local function open_metrics(path, history)
  local lines = {}
  for i, rec in ipairs(history) do lines[i] = json.encode(rec) .. "\n" end
  sys.write_atomic(path, table.concat(lines))
  return assert(io.open(path, "a"))
end

-- What fit does, from cfg.train: {epochs, steps, log_every, eval_every, checkpoint_every, early_stopping}.
function Run:plan()
  local tc = self.cfg.train or {}
  return { epochs = tc.epochs or self.cfg.data.epochs or 1, steps = tc.steps, log_every = tc.log_every or 100,
           eval_every = tc.eval_every, checkpoint_every = tc.checkpoint_every, early_stopping = tc.early_stopping }
end

-- Before the first step: the model_dir, the latest checkpoint when resuming,
-- metrics.jsonl, the progress display. Returns the progress object.
function Run:start(plan)
  local cfg, tc = self.cfg, self.cfg.train or {}
  local progress = self.opts.progress or cli_progress.new({ out = self.opts.out or io.stdout,
                                                            quiet = self.opts.quiet or self.parallel.rank ~= 0 })
  local resumed_from
  if self.model_dir then
    sys.mkdir_p(self.model_dir)
    if self.opts.resume or tc.resume then
      resumed_from = self:resume()
    end
    if self.parallel.rank == 0 then self.metrics_file = open_metrics(self.model_dir .. "/metrics.jsonl", self.history) end
  end
  progress:start(self, { steps = plan.steps, epochs = plan.epochs, files = files_of(cfg.data.train),
                         batch_size = cfg.data.batch_size or 1024 })
  if resumed_from then progress:message(string.format("resumed from %s (step %d)", resumed_from, self.step)) end
  local P = self.parallel
  if P.size > 1 then
    local B = cfg.data.batch_size or 1024
    progress:message(string.format("data-parallel on %d ranks: global batch %d (%d to %d rows per rank)", P.size, B,
      parallel.local_rows(B, 0), parallel.local_rows(B, P.size - 1)))
    for _, p in ipairs(P.plan) do progress:message(string.format("table %s: %s", p.name, p.reason)) end
  end
  P:check(self.step, true) -- the ranks start from the same state
  local r = self.restored_log or {}
  self.since_log = { t0 = sys.now(), seen = 0, loss_sum = r.loss_sum or 0, loss_n = r.loss_n or 0, task_sum = r.task_sum or {} }
  self.restored_log = nil
  -- a training step's matrix-product FLOPs per example: forward, dX and dW
  self.flops_per_example = 3 * ranker.forward_flops_per_row(self.model)
  self.bad_evals = self.bad_evals or 0
  self.resumed_at = resumed_from and self.step or nil
  if self.opts.signals then mtl.catch_stop_signals(true) end
  return progress
end

-- Early stopping after an evaluation m: keeps checkpoints/best.ckpt of the
-- best value of the metric; true when `patience` evaluations in a row did
-- not improve on it.
function Run:early_stop(m, stopper)
  local v = self:metric_value(m, stopper.metric)
  local mode = stopper.mode or "max"
  local better = self.best == nil or (mode == "max" and v > self.best or (mode == "min" and v < self.best))
  if better then
    self.best, self.bad_evals = v, 0
    if self.model_dir then self:save_checkpoint("best") end
    return false
  end
  self.bad_evals = self.bad_evals + 1
  return self.bad_evals >= (stopper.patience or 3)
end

-- An evaluation during training: logged, shown, and checked for early
-- stopping. Returns true when training should stop.
function Run:periodic_eval(plan, progress)
  local m = self:evaluate(self.cfg.data.eval)
  self:log({ kind = "eval", metrics = self:plain(m), gates = self.gate_utilization })
  self:write_report({ live = true })
  progress:eval(self, m, false)
  return plan.early_stopping and self:early_stop(m, plan.early_stopping) or false
end

-- One step of fit on batch number b of the epoch, then the train record,
-- evaluation and checkpoint when they are due. Returns true when training
-- should stop (the step budget is spent or early stopping says so), and
-- second true when no rank had rows left (the epoch is over; no step taken).
function Run:fit_step(batch, b, plan, progress)
  local loss, per, rows = self:train_step(batch)
  if loss == nil then return self.stop_signal ~= nil, self.stop_signal == nil end
  self.batch_in_epoch = b
  if loss == false then return false end -- a skipped batch (train.nan_loss)
  self:count_step(loss, per, rows)
  progress:step(self, { loss = loss, rows = rows })
  if self.step % plan.log_every == 0 then self:log_train(progress) end
  local stop = false
  if plan.eval_every and self.cfg.data.eval and self.step % plan.eval_every == 0 then
    stop = self:periodic_eval(plan, progress)
  end
  if plan.checkpoint_every and self.model_dir and self.step % plan.checkpoint_every == 0 then self:save_checkpoint() end
  return stop or (plan.steps ~= nil and self.step >= plan.steps)
end

-- One pass over the training files from the batch after batch_in_epoch
-- (this rank's rows of each global batch; a rank whose rows ran out takes
-- part in the remaining steps with an empty batch until no rank has rows).
-- Returns true when training should stop before the epoch's end.
function Run:fit_epoch(plan, progress)
  local reader = self:reader(self.cfg.data.train, true)
  self.epoch_reader = reader
  local next_batch = reader:batches()
  local b, stop, done = self.batch_in_epoch, false, false
  for _ = 1, b do next_batch() end -- the batches a resumed checkpoint had seen
  while not (stop or done) do
    b = b + 1
    mtl.dist.set_context(string.format("step %d", self.step + 1)) -- reading its rows is part of the step
    stop, done = self:fit_step(next_batch() or reader:empty_batch(), b, plan, progress)
  end
  if done then self:keep_skipped(reader) end
  self.epoch_reader = nil
  reader:close()
  return stop
end

-- After a stop by a signal: the checkpoint of the last step taken and the
-- report (no final evaluation: the user asked to stop).
function Run:finish_stopped(progress)
  if self.model_dir then
    self.last_checkpoint = self:save_checkpoint()
    if self.metrics_file then self.metrics_file:close() end
    self.metrics_file = nil
    self:write_report({ stopped = string.format("%s at step %d", train.SIGNAL_NAMES[self.stop_signal], self.step) })
  end
  progress:finish(self)
  return nil
end

-- A resumed run that was over already (its checkpoint has the final
-- evaluation at its step): that evaluation, not a second one.
function Run:finished_before()
  local last = self.history[#self.history]
  if self.resumed_at == self.step and last and last.final and last.step == self.step then return last.metrics end
end

-- After the last step: the final evaluation, the last checkpoint. Returns the final metrics.
function Run:finish(progress)
  if self.stop_signal then return self:finish_stopped(progress) end
  local done = self:finished_before()
  if done then
    if self.metrics_file then self.metrics_file:close() end
    self.metrics_file = nil
    self.last_checkpoint = string.format("%s/checkpoints/step-%d.ckpt", self.model_dir, self.step)
    self:write_report()
    progress:finish(self)
    return done
  end
  local final
  if self.cfg.data.eval then
    final = self:evaluate(self.cfg.data.eval)
    self:log({ kind = "eval", final = true, metrics = self:plain(final), gates = self.gate_utilization })
    progress:eval(self, final, true)
  end
  if self.model_dir then
    self.last_checkpoint = self:save_checkpoint()
    if self.metrics_file then self.metrics_file:close() end
    self.metrics_file = nil
    self:write_report()
  end
  progress:finish(self)
  return final
end

-- Trains as the config says; resumes from model_dir/checkpoints when
-- opts.resume (or cfg.train.resume) and a checkpoint exists. Returns the
-- final evaluation metrics (nil without eval data) and the run.
-- opts.progress: an object with start/step/log/eval/message/finish methods
-- (mtl.cli.progress; the default: a bar on a terminal, lines otherwise).
-- An error stops the run with a last report that says so (no longer live).
function Run:fit()
  local plan = self:plan()
  local progress = self:start(plan)
  local ok, err = pcall(function()
    local stop = plan.steps ~= nil and self.step >= plan.steps -- resumed at (or past) the budget
    while self.epoch <= plan.epochs and not stop do
      stop = self:fit_epoch(plan, progress)
      if not stop then
        self.epoch = self.epoch + 1
        self.batch_in_epoch = 0
      end
    end
  end)
  if not ok then
    if self.opts.signals then mtl.catch_stop_signals(false) end
    pcall(self.write_report, self, { failed = tostring(err):match("^[^\n]*") })
    error(err, 0)
  end
  local final = self:finish(progress)
  -- (a signal during the final evaluation and save: the run ends as it would have)
  if self.opts.signals then mtl.catch_stop_signals(false) end
  return final, self
end

return train
