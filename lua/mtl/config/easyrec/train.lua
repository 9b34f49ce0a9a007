-- mtl.config.easyrec.train: EasyRec's train_config and eval_config mapped
-- onto mtl's train, optimizer (with its schedule) and eval sections.
--
--   train.map_train(ctx, root, cfg, st)   train_config -> cfg.train, cfg.optimizer
--   train.map_eval(root, cfg, st)         eval_config -> cfg.eval
--
-- Takes decoded objects (mtl.config.easyrec.decode) and the shared state st:
-- data_config's num_epochs (st.num_epochs, st.epochs_obj, from
-- mtl.config.easyrec.data), the model's regularization (st.l2, st.l2_set,
-- st.l2_obj, st.emb_reg, st.emb_reg_obj, from mtl.config.easyrec.model) and
-- the metrics the task towers asked for (st.metrics, st.gauc). Raises
-- nothing: problems go to the context, each at its file position.
local util = require "mtl.config.util"
local mark_all = require("mtl.config.easyrec.decode").mark_all
local SCHEMA = require("mtl.config.easyrec.schema").SCHEMA
local map_metrics = require("mtl.config.easyrec.model").map_metrics

local train = {}

-- ---- learning rate schedules ----------------------------------------------------------------------
-- Each takes its message and cfg.optimizer.schedule (which it fills) and
-- returns the learning rate.

-- sched.name = name, then sched[key] = m:get(field) for each {key, field}.
local function fill(sched, name, m, fields)
  sched.name = name
  for _, kf in ipairs(fields) do sched[kf[1]] = m:get(kf[2]) end
end

local function exponential_decay(e, sched)
  if e:get("burnin_steps") > 0 then e:unsupported("burnin_steps", "mtl's exponential decay has no burn-in") end
  fill(sched, "exponential_decay", e, { { "decay_steps", "decay_steps" }, { "decay_factor", "decay_factor" },
    { "staircase", "staircase" }, { "min_lr", "min_learning_rate" } })
  if sched.decay_steps < 1 then e:verr("decay_steps", nil, "'%s' must be >= 1", e:field_path("decay_steps")) end
  return e:get("initial_learning_rate")
end

local function manual_step(ms, sched)
  local init = ms:get("initial_learning_rate")
  local steps = ms:get("schedule")
  if #steps == 0 then
    ms:err(nil, "'%s' has no schedule entries (use constant_learning_rate for a fixed rate)", ms.path)
    return init
  end
  local boundaries, values = {}, { init }
  for i, s in ipairs(steps) do
    if not s:has("step") then s:err(nil, "'%s' needs a step", s.path) end
    boundaries[i] = s:get("step") or 0
    values[i + 1] = s:get("learning_rate")
    if boundaries[i] < 1 or (i > 1 and boundaries[i] <= boundaries[i - 1]) then
      s:verr("step", nil, "'%s' steps must be positive and increasing, got %s", ms:field_path("schedule"), util.show(boundaries[i]))
    end
  end
  if ms:get("warmup") then
    if #steps > 1 then
      ms:unsupported("warmup", "mtl warms up linearly into a constant rate; a warmup with more than one schedule step is not supported")
    end
    sched.name = "linear_warmup"
    sched.warmup_steps = boundaries[1]
    sched.start_lr = init
    return values[2]
  end
  sched.name = "manual"
  sched.boundaries, sched.values = boundaries, values
  return init
end

local function cosine_decay(c, sched)
  if c:get("hold_base_rate_steps") > 0 then c:unsupported("hold_base_rate_steps", "mtl's cosine schedule does not hold the base rate") end
  fill(sched, "cosine", c, { { "total_steps", "total_steps" }, { "warmup_steps", "warmup_steps" },
    { "start_lr", "warmup_learning_rate" } })
  sched.min_lr = 0
  if sched.total_steps <= sched.warmup_steps then
    c:err(c:has("total_steps") and "total_steps" or nil, "'%s': total_steps (%d) must be greater than warmup_steps (%d)",
      c.path, sched.total_steps, sched.warmup_steps)
  end
  return c:get("learning_rate_base")
end

local function poly_decay(p, sched)
  for _, k in ipairs({ "learning_rate_base", "total_steps", "power" }) do
    if not p:has(k) then p:err(nil, "'%s' needs %s (a required field)", p.path, k) end
  end
  sched.name = "polynomial"
  sched.decay_steps = p:get("total_steps") or 1
  sched.power = p:get("power") or 1
  sched.end_lr = p:get("end_learning_rate")
  if sched.decay_steps < 1 then p:verr("total_steps", nil, "'%s' must be >= 1", p:field_path("total_steps")) end
  return p:get("learning_rate_base") or 1e-3
end

-- LearningRate's oneof members, in the schema's order (transformer_learning_rate
-- has no mapping: UNSUPPORTED reports it).
local SCHEDULES = {
  { "constant_learning_rate", function(c, sched) sched.name = "constant"; return c:get("learning_rate") end },
  { "exponential_decay_learning_rate", exponential_decay },
  { "manual_step_learning_rate", manual_step },
  { "cosine_decay_learning_rate", cosine_decay },
  { "poly_decay_learning_rate", poly_decay },
  { "transformer_learning_rate" },
}

-- holder.learning_rate -> cfg.optimizer.schedule; returns the learning rate.
local function map_learning_rate(holder, cfg)
  local lr = holder:get("learning_rate")
  if not lr then
    holder:err(nil, "'%s' needs a learning_rate { ... }", holder.path)
    return 1e-3
  end
  for _, s in ipairs(SCHEDULES) do
    local field, map = s[1], s[2]
    if lr:has(field) then
      if not map then return 1e-3 end -- reported by UNSUPPORTED
      return map(lr:get(field), cfg.optimizer.schedule)
    end
  end
  lr:err(nil, "'%s' is empty (constant_learning_rate, exponential_decay_learning_rate, manual_step_learning_rate, cosine_decay_learning_rate or poly_decay_learning_rate)", lr.path)
  return 1e-3
end

-- ---- the optimizer --------------------------------------------------------------------------------
local OPTIMIZER_KINDS = {
  adam_optimizer = "adam", lazy_adam_optimizer = "adam", adam_async_optimizer = "adam",
  adamw_optimizer = "adamw", adam_asyncw_optimizer = "adamw", momentum_optimizer = "sgd",
  adagrad_optimizer = "adagrad", ftrl_optimizer = "ftrl", rms_prop_optimizer = "rmsprop",
}

-- The one Optimizer object of train_config, or nil (reported or missing).
local function the_optimizer(ctx, tc)
  local list = tc:get("optimizer_config")
  if #list == 0 then
    if not tc.bad.optimizer_config then tc:err(nil, "train_config needs an optimizer_config") end
    return nil
  end
  if #list > 1 then
    local line, col = tc:pos("optimizer_config", 2)
    ctx:add(line, col, "unsupported field 'train_config.optimizer_config' given twice: mtl's EasyRec reader takes one optimizer (embeddings use it too, with embedding_learning_rate_multiplier)")
    for i = 2, #list do mark_all(list[i]) end
  end
  return list[1]
end

-- The settings of the optimizer message k of this kind, into dense.
local function optimizer_settings(k, kind, dense)
  if kind == "adam" or kind == "adamw" then
    dense.beta1, dense.beta2 = k:get("beta1"), k:get("beta2")
  elseif kind == "sgd" then
    dense.momentum = k:get("momentum_optimizer_value")
  elseif kind == "adagrad" then
    dense.initial_accumulator = k:get("initial_accumulator_value")
  elseif kind == "ftrl" then
    dense.lr_power = k:get("learning_rate_power")
    dense.initial_accumulator = k:get("initial_accumulator_value")
    dense.l1, dense.l2 = k:get("l1_reg"), k:get("l2_reg")
    if k:get("l2_shrinkage_reg") ~= 0 then k:unsupported("l2_shrinkage_reg", "mtl's ftrl has no L2 shrinkage") end
  elseif kind == "rmsprop" then
    dense.alpha = k:get("decay")
    dense.momentum = k:get("momentum_optimizer_value")
    dense.eps = k:get("epsilon")
  end
end

-- Regularization: l2_regularization on dense weights, embedding_regularization on embeddings.
local function regularization(k, kind, st, dense, sparse)
  local l2, emb, lr = st.l2 or 0, st.emb_reg or 0, dense.lr
  if kind == "adamw" then
    -- TF's decoupled decay subtracts wd * w per step; mtl's adamw subtracts lr * wd * w
    local wd = k:get("weight_decay")
    dense.weight_decay = wd / lr
    sparse.weight_decay = wd / lr
    if st.l2_set and l2 > 0 then
      st.l2_obj:unsupported("l2_regularization", "mtl's adamw has only its decoupled weight_decay; set l2_regularization: 0 or use adam_optimizer")
    end
    if emb > 0 then
      st.emb_reg_obj:unsupported("embedding_regularization", "mtl's adamw has only its decoupled weight_decay")
    end
  elseif kind == "ftrl" then
    if l2 > 0 and st.l2_set then st.l2_obj:unsupported("l2_regularization", "mtl's ftrl takes l1_reg and l2_reg") end
    if emb > 0 then st.emb_reg_obj:unsupported("embedding_regularization", "mtl's ftrl takes l1_reg and l2_reg") end
  else
    if l2 > 0 then dense.weight_decay = l2 end
    sparse.weight_decay = emb > 0 and emb or nil
  end
  if st.l2_obj then st.l2_obj.used.l2_regularization = true end
  if st.emb_reg_obj then st.emb_reg_obj.used.embedding_regularization = true end
end

-- train_config.optimizer_config -> cfg.optimizer.dense and .sparse (the same
-- optimizer with its own weight decay and, with embedding_learning_rate_multiplier, lr).
local function map_optimizer(ctx, tc, cfg, st)
  local o = the_optimizer(ctx, tc)
  if not o then return end
  local which
  for _, k in ipairs(SCHEMA.Optimizer.oneofs.optimizer) do if o:has(k) then which = k end end
  if not which then
    o:err(nil, "'%s' names no optimizer (adam_optimizer, adamw_optimizer, momentum_optimizer, adagrad_optimizer, ftrl_optimizer or rms_prop_optimizer)", o.path)
    return
  end
  local kind = OPTIMIZER_KINDS[which]
  if not kind then return end -- momentumw: reported by UNSUPPORTED
  local k = o:get(which)
  local dense = { name = kind }
  local lr = map_learning_rate(k, cfg)
  dense.lr = lr
  if lr <= 0 then k:err("learning_rate", "the learning rate must be > 0, got %s", util.show(lr)) end
  optimizer_settings(k, kind, dense)
  local sparse = {}
  for key, v in pairs(dense) do sparse[key] = v end
  regularization(k, kind, st, dense, sparse)
  if o:has("embedding_learning_rate_multiplier") then
    local mult = o:get("embedding_learning_rate_multiplier")
    if mult <= 0 then o:verr("embedding_learning_rate_multiplier", nil, "'%s' must be > 0", o:field_path("embedding_learning_rate_multiplier"))
    elseif cfg.optimizer.schedule.name == "manual" then
      o:unsupported("embedding_learning_rate_multiplier", "a manual_step schedule gives absolute rates to every parameter")
    else
      sparse.lr = lr * mult
    end
  end
  cfg.optimizer.dense, cfg.optimizer.sparse = dense, sparse
end

-- ---- train_config and eval_config -----------------------------------------------------------------
-- Steps, checkpoints, logging, threads, clipping.
local function map_loop(tc, cfg)
  local t = cfg.train
  local steps = tc:get("num_steps")
  if steps > 0 then t.steps = steps end
  t.checkpoint_every = tc:get("save_checkpoints_steps")
  if t.checkpoint_every < 1 then t.checkpoint_every = false end
  t.keep_checkpoints = tc:get("keep_checkpoint_max")
  if t.keep_checkpoints < 1 then
    tc:unsupported_value("keep_checkpoint_max", "mtl keeps the last N >= 1 checkpoints")
    t.keep_checkpoints = 1
  end
  t.log_every = math.max(tc:get("log_step_count_steps"), 1)
  local threads = tc:get("intra_op_parallelism_threads")
  if threads > 0 then t.threads = threads end
  local clip = tc:get("gradient_clipping_by_norm")
  if clip > 0 then cfg.optimizer.clip_norm = clip end
  for _, k in ipairs({ "fine_tune_checkpoint", "fine_tune_ckpt_var_map" }) do
    if tc:has(k) and tc.values[k] == "" then tc.used[k] = true end -- the default: no checkpoint
  end
end

-- Epochs: data_config.num_epochs (0: until num_steps).
local function map_epochs(tc, cfg, st)
  local epochs = st.num_epochs or 0
  if epochs > 0 then
    cfg.train.epochs = epochs
    cfg.data.epochs = epochs
  elseif cfg.train.steps then
    cfg.train.epochs = math.huge
    cfg.data.epochs = math.huge
  elseif st.epochs_obj and not st.epochs_obj.bad.num_epochs and not tc.bad.num_steps then
    st.epochs_obj:err(st.epochs_obj:has("num_epochs") and "num_epochs" or nil,
      "data_config.num_epochs is 0 and train_config.num_steps is 0: EasyRec would train forever; set one of them")
  end
end

-- The number of ranks this process is one of: mtl.dist's size (mpirun);
-- without the core loaded, the launcher's environment.
local function ranks()
  local mtl = package.loaded.mtl
  if type(mtl) == "table" and mtl.dist then return mtl.dist.size() end
  return tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMI_SIZE") or "1") or 1
end

-- train_distribute: TF's distribution strategies -> mtl's data-parallel
-- training over the ranks of mpirun (docs/distributed.md), with the tables'
-- placement (train.table_placement): the strategies that mirror every
-- variable replicate the tables; the parameter-server and embedding-parallel
-- ones leave each table to the planner ("auto": sharded when large), as does
-- NoStrategy (mtl's default). In one process a strategy other than NoStrategy
-- is one process, with a note.
local PLACEMENTS = {
  MirroredStrategy = "replicated", MultiWorkerMirroredStrategy = "replicated",
  CollectiveAllReduceStrategy = "replicated", HorovodStrategy = "replicated", ExascaleStrategy = "replicated",
  PSStrategy = "auto", EmbeddingParallelStrategy = "auto", SokStrategy = "auto",
}

local function map_distribute(ctx, tc, cfg)
  local strategy = tc:get("train_distribute")
  if strategy == "NoStrategy" then return end
  cfg.train.table_placement = PLACEMENTS[strategy]
  local ranks = ranks()
  if ranks > 1 then
    ctx:note("train_distribute %s: data-parallel training on %d ranks, train.table_placement = %q", strategy, ranks,
      PLACEMENTS[strategy])
  else
    ctx:note("train_distribute %s runs as one process (under mpirun: data-parallel over the ranks)", strategy)
  end
end

function train.map_train(ctx, root, cfg, st)
  local tc = root.values.train_config
  root.used.train_config = true
  if not tc then ctx:add(1, 1, "train_config is missing (mtl needs the optimizer and num_steps or num_epochs)") return end
  map_loop(tc, cfg)
  map_distribute(ctx, tc, cfg)
  map_epochs(tc, cfg, st)
  map_optimizer(ctx, tc, cfg, st)
end

-- eval_config's metrics, with the task towers' (st.metrics) -> cfg.eval.
function train.map_eval(root, cfg, st)
  local ec = root.values.eval_config
  root.used.eval_config = true
  if ec then
    if ec:get("num_examples") > 0 then ec:unsupported_value("num_examples", "mtl evaluates every row of eval_input_path") end
    map_metrics(st, ec:get("metrics_set"))
  end
  local metrics = {}
  if st.metrics.auc or not st.metrics.gauc then metrics[#metrics + 1] = "auc" end
  if st.metrics.gauc then metrics[#metrics + 1] = "gauc" end
  if st.metrics.max_f1 then metrics[#metrics + 1] = "max_f1" end
  cfg.eval.metrics = metrics
  cfg.eval.gauc = st.gauc
end

return train
