-- mtl.config.validate: checks an mtl config table and fills in defaults.
--
--   local cfg = validate(raw)   -- a new table; raw is not modified
--
-- Every problem is reported, one per line, each naming its key path the way
-- --set spells it ("config: unknown key 'model.exprets' (did you mean
-- 'experts'?)", "config: 'train.steps' must be a positive integer, got -5").
-- The keys, types and defaults are documented in docs/config.md; a new key the
-- trainer reads must be added here too (unknown keys are errors).
local util = require "mtl.config.util"
local check = require "mtl.config.check"
local groups_check = require "mtl.config.validate_groups"
local optimizer_check = require "mtl.config.validate_optimizer"

local show = util.show

-- ---- the schema ------------------------------------------------------------------------------
local SECTIONS = { "data", "features", "groups", "model", "losses", "optimizer", "train", "eval", "rank", "model_dir" }

local DATA_KEYS = { "train", "eval", "format", "separator", "header", "columns", "labels", "batch_size",
                    "shuffle_buffer", "epochs", "fields", "unknown_fields", "bad_rows" }
local COLUMN_KEYS = { "name", "type", "default", "separator", "kv_separator", "values", "step_separator" }
local FEATURE_KEYS = { "name", "type", "column", "columns", "dim", "num_buckets", "hash_bucket_size", "vocab",
                       "vocab_file", "shared", "combiner", "separator", "kv_separator", "normalize", "boundaries",
                       "bins", "key", "weighted", "init_scale", "missing", "max_len", "length", "raw_dim", "placement" }
local FEATURE_TYPES = { "id", "raw", "tag", "combo", "lookup", "sequence" }

-- Model options live with each model (models/<name>.lua, mtl.models);
-- every task of every model takes these keys (and the model's task_options).
local TASK_KEYS = { "name", "label", "weight", "tower", "mask", "gamma", "sample_weight", "classes" }
local loss_kinds = require "mtl.loss_kinds"
local LOSS_KEYS = { "name", "output", "label", "on", "weight", "gamma", "mask", "sample_weight" }
for _, k in ipairs(loss_kinds.KEYS) do LOSS_KEYS[#LOSS_KEYS + 1] = k end

local TRAIN_KEYS = { "steps", "epochs", "eval_every", "checkpoint_every", "keep_checkpoints", "log_every", "seed",
                     "threads", "early_stopping", "resume", "auc_window", "shard_min_mib", "nan_loss", "check_every",
                     "table_placement" }
local TABLE_PLACEMENTS = { "auto", "replicated" }
local EVAL_KEYS = { "metrics", "gauc" }
local METRICS = { "auc", "gauc", "logloss", "calibration", "max_f1" }
local GAUC_REDUCTIONS = { "mean", "mean_by_sample_num", "mean_by_positive_num" }
local RANK_KEYS = { "alpha", "price", "expression", "ctr", "cvr", "cvr_mode", "price_floor" }

local validate = {}
validate.SECTIONS, validate.TASK_KEYS = SECTIONS, TASK_KEYS
validate.OPTIMIZERS, validate.SCHEDULES, validate.METRICS = optimizer_check.OPTIMIZERS, optimizer_check.SCHEDULES, METRICS

-- The checking context (mtl.config.check) and what the sections below use of it.
local join, set_of, one_of = check.join, check.set_of, check.one_of

-- ---- sections --------------------------------------------------------------------------------------
-- Entry i of a list of named entries at list_path (a column, a feature): a
-- table (`expected` says what it holds) with known keys and a string name
-- not seen before in `seen`, where it is recorded. Returns the entry's path
-- when it is a table.
local function named_entry(c, e, list_path, i, what, expected, keys, seen)
  local p = list_path .. "." .. i
  if not c:table(e, p, expected) then return nil end
  c:keys(e, p, keys)
  if c:string(e.name, p .. ".name", "a " .. what .. " name") then
    if seen[e.name] then c:err("'%s': %s '%s' is listed twice", p, what, e.name) end
    seen[e.name] = e
  end
  return p
end

local function check_data(c, d)
  if not c:table(d, "data") then return end
  c:keys(d, "data", DATA_KEYS)
  if d.train == nil then c:err("missing required key 'data.train'") else c:files(d.train, "data.train") end
  if d.eval ~= nil then c:files(d.eval, "data.eval") end
  if d.format == nil then d.format = "csv" else c:enum(d.format, "data.format", { "csv" }) end
  if d.separator == nil then d.separator = "," else
    if type(d.separator) ~= "string" or #d.separator ~= 1 then
      c:err("'data.separator' must be one character, got %s", show(d.separator))
    end
  end
  if d.header == nil then d.header = true else c:boolean(d.header, "data.header") end
  if d.bad_rows == nil then d.bad_rows = "error" else c:enum(d.bad_rows, "data.bad_rows", { "error", "skip" }) end
  if d.batch_size == nil then d.batch_size = 1024 else c:number(d.batch_size, "data.batch_size", { int = true, min = 1 }) end
  if d.shuffle_buffer == nil then d.shuffle_buffer = 0 else
    c:number(d.shuffle_buffer, "data.shuffle_buffer", { int = true, min = 0 })
  end
  if d.epochs ~= nil then
    c:number(d.epochs, "data.epochs", { int = true, min = 1, inf = true }, "a positive integer or math.huge")
  end
  if d.fields ~= nil and c:list(d.fields, "data.fields", "a list of field names") then
    for i, f in ipairs(d.fields) do c:string(f, "data.fields." .. i) end
  end
  if d.unknown_fields ~= nil then c:enum(d.unknown_fields, "data.unknown_fields", { "error", "skip" }) end
  c.columns = {}
  if d.columns == nil then
    c:err("missing required key 'data.columns' (the file's columns: {name =, type =} in order)")
  elseif c:list(d.columns, "data.columns", "a list of columns {name =, type =}") then
    for i, col in ipairs(d.columns) do
      local p = named_entry(c, col, "data.columns", i, "column", "a column {name =, type =}", COLUMN_KEYS, c.columns)
      if p then
        if col.type == nil then col.type = "string" else
          c:enum(col.type, p .. ".type", { "int", "float", "string", "ids", "kv", "seq", "skip", "int64", "multi" })
        end
        if col.default ~= nil and type(col.default) ~= "number" and type(col.default) ~= "string" then
          c:err("'%s.default' must be a number or a string, got %s", p, show(col.default))
        end
        if col.separator ~= nil then c:string(col.separator, p .. ".separator") end
        if col.kv_separator ~= nil then c:string(col.kv_separator, p .. ".kv_separator") end
        if col.values ~= nil then
          c:enum(col.values, p .. ".values", col.type == "seq" and { "int64", "string", "float" } or { "int64", "string" })
        end
        if col.step_separator ~= nil then
          if col.type ~= "seq" then c:err("'%s.step_separator' is only for seq columns", p)
          else c:string(col.step_separator, p .. ".step_separator") end
        end
      end
    end
  end
  for _, f in ipairs(type(d.fields) == "table" and d.fields or {}) do
    if type(f) == "string" and not c.columns[f] then c.columns[f] = { name = f, type = "ids" } end
  end
  c.labels = {}
  if d.labels == nil then
    c:err("missing required key 'data.labels' (the label columns, e.g. {\"is_click\", \"is_pay\"})")
  elseif c:list(d.labels, "data.labels", "a list of label column names") then
    for i, l in ipairs(d.labels) do
      if c:string(l, "data.labels." .. i, "a column name") then
        if next(c.columns) and not c.columns[l] then
          c:err("'data.labels.%d': column '%s' is not in data.columns%s", i, l, util.did_you_mean(l, c.columns))
        end
        c.labels[l] = true
      end
    end
  end
end

-- A column name that must exist (types: allowed column types or nil for any).
local function column_ref(c, v, path, types, what)
  if not c:string(v, path, "a column name") then return false end
  local col = c.columns[v]
  if not col then
    if next(c.columns) then
      c:err("'%s': column '%s' is not in data.columns%s", path, v, util.did_you_mean(v, c.columns))
    end
    return false
  end
  if types and not set_of(types)[col.type or "string"] then
    c:err("'%s': column '%s' has type '%s'; %s needs %s", path, v, tostring(col.type), what, one_of(types))
    return false
  end
  return true
end

local ID_COLUMNS = { "int", "int64", "string", "ids", "multi" }

local function check_features(c, fs)
  c.features = {}
  if fs == nil then c:err("missing required key 'features' (a list of feature columns)") return end
  if not c:list(fs, "features", "a list of feature columns {name =, type =, ...}") then return end
  for i, f in ipairs(fs) do
    local p = named_entry(c, f, "features", i, "feature", "a feature {name =, type =, ...}", FEATURE_KEYS, c.features)
    if p then
      local ok_type = c:enum(f.type, p .. ".type", FEATURE_TYPES)
      local t = ok_type and f.type
      if t == "combo" then
        if c:list(f.columns, p .. ".columns", "a list of two or more column names") then
          if #f.columns < 2 then c:err("'%s.columns' must name two or more columns", p) end
          for j, col in ipairs(f.columns) do column_ref(c, col, p .. ".columns." .. j, { "int", "int64", "string" }, "a combo feature") end
        end
        if f.column ~= nil then c:err("'%s.column': a combo feature reads 'columns' (a list)", p) end
      elseif t then
        if f.column == nil then c:err("missing required key '%s.column'", p)
        elseif t == "id" then column_ref(c, f.column, p .. ".column", ID_COLUMNS, "an id feature")
        elseif t == "tag" then column_ref(c, f.column, p .. ".column", { "ids", "multi", "kv" }, "a tag feature")
        elseif t == "raw" then column_ref(c, f.column, p .. ".column", { "float" }, "a raw feature")
        elseif t == "sequence" then column_ref(c, f.column, p .. ".column", { "seq" }, "a sequence feature")
        elseif t == "lookup" then column_ref(c, f.column, p .. ".column", { "kv" }, "a lookup feature") end
        if f.columns ~= nil then c:err("'%s.columns' is only for combo features (use 'column')", p) end
      end
      if t == "lookup" then
        if f.key == nil then c:err("missing required key '%s.key' (the column holding the key to look up)", p)
        else column_ref(c, f.key, p .. ".key", { "int", "int64", "string" }, "a lookup key") end
        if f.missing ~= nil then c:number(f.missing, p .. ".missing") end
      elseif f.key ~= nil then c:err("'%s.key' is only for lookup features", p) end
      -- a raw feature with dim and no buckets: the value times a learned vector
      local embedded = t == "id" or t == "tag" or t == "combo" or t == "sequence"
        or (t == "raw" and (f.boundaries ~= nil or f.bins ~= nil or f.dim ~= nil))
      if t then
        local sizes = {}
        for _, k in ipairs({ "num_buckets", "hash_bucket_size", "vocab", "vocab_file" }) do
          if f[k] ~= nil then sizes[#sizes + 1] = k end
        end
        if t == "sequence" then
          groups_check.sequence_feature(c, f, p, sizes)
        elseif embedded and t ~= "raw" then
          if f.shared == nil and #sizes == 0 then
            c:err("'%s' (%s) needs one of num_buckets, hash_bucket_size, vocab or vocab_file", p, tostring(f.name))
          elseif #sizes > 1 then
            c:err("'%s' (%s) has %s; give only one", p, tostring(f.name), table.concat(sizes, " and "))
          end
        elseif #sizes > 0 then
          c:err("'%s.%s': a %s feature has no embedding table of its own", p, sizes[1], t)
        end
        if f.num_buckets ~= nil then c:number(f.num_buckets, p .. ".num_buckets", { int = true, min = 1 }) end
        if f.hash_bucket_size ~= nil then c:number(f.hash_bucket_size, p .. ".hash_bucket_size", { int = true, min = 1 }) end
        if f.vocab ~= nil and c:list(f.vocab, p .. ".vocab", "a list of values") then
          for j, v in ipairs(f.vocab) do
            if type(v) ~= "string" and type(v) ~= "number" then
              c:err("'%s.vocab.%d' must be a string or a number, got %s", p, j, show(v))
            end
          end
        end
        if f.vocab_file ~= nil then c:string(f.vocab_file, p .. ".vocab_file", "a path") end
        if embedded then
          if f.dim == nil then f.dim = 16 else c:number(f.dim, p .. ".dim", { int = true, min = 1 }) end
          if f.init_scale ~= nil then c:number(f.init_scale, p .. ".init_scale", { gt = 0 }) end
          if f.placement ~= nil then
            if f.shared ~= nil then c:err("'%s.placement': a feature sharing another's table takes that table's placement", p)
            else c:enum(f.placement, p .. ".placement", { "sharded", "replicated" }) end
          end
        else
          for _, k in ipairs({ "dim", "shared", "init_scale", "placement" }) do
            if f[k] ~= nil then c:err("'%s.%s': a %s feature without an embedding takes no %s", p, k, t, k) end
          end
        end
        if f.combiner ~= nil then
          if t == "tag" or t == "id" or t == "sequence" then c:enum(f.combiner, p .. ".combiner", { "sum", "mean", "sqrtn" })
          else c:err("'%s.combiner' is only for tag (and multi-valued id) features", p) end
        end
        if f.weighted ~= nil then
          if t == "tag" then c:boolean(f.weighted, p .. ".weighted") else c:err("'%s.weighted' is only for tag features", p) end
        end
        for _, k in ipairs({ "separator", "kv_separator" }) do
          if f[k] ~= nil then c:string(f[k], p .. "." .. k) end
        end
        if t == "raw" or t == "sequence" then
          local modes = {}
          for _, k in ipairs({ "normalize", "boundaries", "bins" }) do if f[k] ~= nil then modes[#modes + 1] = k end end
          if #modes > 1 then c:err("'%s' (%s) has %s; give only one", p, tostring(f.name), table.concat(modes, " and ")) end
          if f.normalize ~= nil then c:enum(f.normalize, p .. ".normalize", { "zscore", "minmax", "log1p" }) end
          if f.boundaries ~= nil and c:list(f.boundaries, p .. ".boundaries", "a list of increasing numbers") then
            for j, b in ipairs(f.boundaries) do
              if c:number(b, p .. ".boundaries." .. j) and j > 1 and type(f.boundaries[j - 1]) == "number"
                and not (b > f.boundaries[j - 1]) then
                c:err("'%s.boundaries' must increase, got %s after %s", p, show(b), show(f.boundaries[j - 1]))
              end
            end
          end
          if f.bins ~= nil and c:table(f.bins, p .. ".bins", "{method = 'equal_width'|'equal_freq'|'adaptive', n = count}") then
            c:keys(f.bins, p .. ".bins", { "method", "n", "min_fraction" })
            c:enum(f.bins.method, p .. ".bins.method", { "equal_width", "equal_freq", "adaptive" })
            if f.bins.n == nil then f.bins.n = 10 else c:number(f.bins.n, p .. ".bins.n", { int = true, min = 2 }, "an integer >= 2") end
            if f.bins.min_fraction ~= nil then c:number(f.bins.min_fraction, p .. ".bins.min_fraction", { min = 0, lt = 1 }) end
          end
          if t == "sequence" and (f.normalize ~= nil or f.bins ~= nil) then
            c:err("'%s.%s': a sequence of numbers is bucketized by boundaries or projected (raw_dim)", p,
              f.normalize ~= nil and "normalize" or "bins")
          end
        else
          for _, k in ipairs({ "normalize", "boundaries", "bins" }) do
            if f[k] ~= nil then c:err("'%s.%s' is only for raw features", p, k) end
          end
        end
        if f.missing ~= nil and t ~= "lookup" then c:err("'%s.missing' is only for lookup features", p) end
        groups_check.sequence_keys(c, f, p, t)
      end
    end
  end
  for i, f in ipairs(fs) do
    if type(f) == "table" and f.shared ~= nil then
      local p = "features." .. i .. ".shared"
      if c:string(f.shared, p, "the name of another feature") then
        local target = c.features[f.shared]
        if f.shared == f.name then c:err("'%s': a feature cannot share its own table", p)
        elseif not target then c:err("'%s': no feature is named '%s'%s", p, f.shared, util.did_you_mean(f.shared, c.features))
        elseif target.shared ~= nil then
          c:err("'%s': '%s' shares a table itself; name the feature that owns it ('%s')", p, f.shared, tostring(target.shared))
        end
      end
    end
  end
end

-- A column a loss reads as a float: a label, or a float column.
local function float_column(c, v, path, what)
  if not c:string(v, path, "a column name") then return end
  if c.labels[v] then return end
  local col = c.columns[v]
  if not col then
    if next(c.columns) then c:err("'%s': column '%s' is not in data.columns%s", path, v, util.did_you_mean(v, c.columns)) end
  elseif col.type ~= "float" then
    c:err("'%s': the %s column '%s' must be in data.labels or have type 'float'", path, what, v)
  end
end

local function label_ref(c, v, path)
  if type(v) == "table" then
    if c:list(v, path, "a label column or a list of them") then
      for i, l in ipairs(v) do label_ref(c, l, path .. "." .. i) end
    end
    return
  end
  if not c:string(v, path, "a label column") then return end
  if next(c.labels) and not c.labels[v] then
    c:err("'%s': '%s' is not in data.labels%s", path, v, util.did_you_mean(v, c.labels))
  end
end

-- Another model's task option named k, for a hint: " ('relations' is only for dbmtl)".
local function task_option_hint(models, k)
  local owners = {}
  for _, name in ipairs(models.names()) do
    local ok, cls = pcall(models.get, name)
    if ok and cls.task_options and cls.task_options[k] then owners[#owners + 1] = name end
  end
  if #owners > 0 then return string.format(" ('%s' is only for %s)", k, table.concat(owners, " and ")) end
end

local function check_tasks(c, m, cls, models)
  local tasks = m.tasks
  c.tasks = {}
  if tasks == nil then c:err("missing required key 'model.tasks' (e.g. {{name = \"ctr\", label = \"is_click\"}})") return end
  if not c:list(tasks, "model.tasks", "a list of tasks {name =, label =}") then return end
  local keys = {}
  for _, k in ipairs(TASK_KEYS) do keys[#keys + 1] = k end
  for _, k in ipairs(check.names(cls.task_options or {})) do keys[#keys + 1] = k end
  for i, t in ipairs(tasks) do
    local p = "model.tasks." .. i
    if type(t) == "string" then t = { name = t }; tasks[i] = t end
    if c:table(t, p, "a task {name =, label =}") then
      c:keys(t, p, keys, function(k) return task_option_hint(models, k) end)
      if c:string(t.name, p .. ".name", "a task name") then
        if c.tasks[t.name] then c:err("'%s': task '%s' is listed twice", p, t.name) end
        c.tasks[t.name] = t
      end
      if t.label == nil then t.label = t.name end
      c:label_ref(t.label, p .. ".label")
      if t.weight == nil then t.weight = 1 else c:number(t.weight, p .. ".weight", { min = 0 }) end
      if t.tower ~= nil then c:mlp(t.tower, p .. ".tower", true) end
      if t.mask ~= nil then float_column(c, t.mask, p .. ".mask", "mask") end
      if t.sample_weight ~= nil then float_column(c, t.sample_weight, p .. ".sample_weight", "sample weight") end
      if t.gamma ~= nil then c:number(t.gamma, p .. ".gamma", { gt = 0 }) end
      if t.classes ~= nil and t.classes ~= 1 and t.classes ~= 2 then
        c:err("'%s.classes' must be 1 (one logit) or 2 (two-class logits), got %s", p, show(t.classes))
      end
    end
  end
end

-- The model section: its name picks the model file (mtl.models), whose
-- option schema and checks do the rest.
local function check_model(c, m)
  if m == nil then c:err("missing required key 'model' (e.g. {name = \"mmoe\", tasks = {...}})") return end
  if not c:table(m, "model") then return end
  local models = require "mtl.models"
  local names = models.names()
  if m.name == nil then c:err("missing required key 'model.name' (one of %s)", table.concat(names, ", ")) return end
  if not c:enum(m.name, "model.name", names) then return end
  local ok, cls = pcall(models.get, m.name)
  if not ok then c:err("'model.name': %s", tostring(cls):gsub("^.-mtl%.models: ", "")) return end
  if not cls.check_tasks then check_tasks(c, m, cls, models) end
  check.options_of(c, cls, m, "model", { "name" })
  if rawget(cls, "needs_groups") then groups_check.default(c.cfg) end
end

local function check_losses(c, ls)
  if ls == nil then return end
  if not c:list(ls, "losses", "a list of task losses {name =, label =, ...}") then return end
  for i, l in ipairs(ls) do
    local p = "losses." .. i
    if c:table(l, p, "a task loss {name =, label =, ...}") then
      c:keys(l, p, LOSS_KEYS)
      if l.name == nil and l.output == nil then c:err("missing required key '%s.name' (or '%s.output')", p, p) end
      if l.name ~= nil then c:string(l.name, p .. ".name", "a loss name") end
      if l.output ~= nil then c:string(l.output, p .. ".output", "a model output name") end
      if l.label == nil then c:err("missing required key '%s.label'", p) else label_ref(c, l.label, p .. ".label") end
      if l.on == nil then l.on = "logits" else c:enum(l.on, p .. ".on", { "logits", "prob" }) end
      if l.weight == nil then l.weight = 1 else c:number(l.weight, p .. ".weight", { min = 0 }) end
      if l.gamma ~= nil then c:number(l.gamma, p .. ".gamma", { gt = 0 }) end
      if l.mask ~= nil then float_column(c, l.mask, p .. ".mask", "mask") end
      if l.sample_weight ~= nil then float_column(c, l.sample_weight, p .. ".sample_weight", "sample weight") end
      loss_kinds.check(c, l, p, column_ref)
    end
  end
end

-- The config's optional section `name` (an empty table when missing), when
-- it is a table; its keys are checked against `keys`.
local function optional_section(c, name, keys)
  local s = c.cfg[name]
  if s == nil then s = {}; c.cfg[name] = s end
  if not c:table(s, name) then return nil end
  c:keys(s, name, keys)
  return s
end

local function check_optimizer(c)
  local o = optional_section(c, "optimizer", { "dense", "sparse", "schedule", "clip_norm" })
  if not o then return end
  if o.dense == nil then o.dense = { name = "adam" } end
  optimizer_check.optimizer(c, o.dense, "optimizer.dense")
  if o.sparse ~= nil then optimizer_check.optimizer(c, o.sparse, "optimizer.sparse") end
  if o.schedule == nil then o.schedule = { name = "constant" } end
  optimizer_check.schedule(c, o.schedule)
  if o.clip_norm ~= nil then c:number(o.clip_norm, "optimizer.clip_norm", { gt = 0 }) end
end

local function check_train(c, data)
  local t = optional_section(c, "train", TRAIN_KEYS)
  if not t then return end
  if t.steps ~= nil then c:number(t.steps, "train.steps", { int = true, min = 1 }) end
  if t.shard_min_mib ~= nil then c:number(t.shard_min_mib, "train.shard_min_mib", { min = 0 }) end
  -- epochs: train.epochs, else data.epochs, else 1; both end up equal
  local data_epochs = type(data) == "table" and data.epochs or nil
  if t.epochs == nil then t.epochs = data_epochs or 1
  else c:number(t.epochs, "train.epochs", { int = true, min = 1, inf = true }, "a positive integer or math.huge") end
  if type(data) == "table" then data.epochs = t.epochs end
  if t.epochs == math.huge and t.steps == nil then
    c:err("'train.epochs' is math.huge (no end) but train.steps is not set")
  end
  if t.eval_every ~= nil then c:number(t.eval_every, "train.eval_every", { int = true, min = 1 }) end
  if t.checkpoint_every == nil then t.checkpoint_every = 100
  elseif t.checkpoint_every ~= false then
    c:number(t.checkpoint_every, "train.checkpoint_every", { int = true, min = 1 }, "a positive integer or false")
  end
  if t.keep_checkpoints == nil then t.keep_checkpoints = 5 else c:number(t.keep_checkpoints, "train.keep_checkpoints", { int = true, min = 1 }) end
  if t.log_every == nil then t.log_every = 100 else c:number(t.log_every, "train.log_every", { int = true, min = 1 }) end
  if t.seed == nil then t.seed = 0 else c:number(t.seed, "train.seed", { int = true }) end
  if t.threads == nil then t.threads = 1 else c:number(t.threads, "train.threads", { int = true, min = 1 }) end
  if t.resume == nil then t.resume = false else c:boolean(t.resume, "train.resume") end
  if t.auc_window ~= nil then c:number(t.auc_window, "train.auc_window", { int = true, min = 1 }) end
  if t.nan_loss == nil then t.nan_loss = "error" else c:enum(t.nan_loss, "train.nan_loss", { "error", "skip" }) end
  if t.check_every ~= nil then c:number(t.check_every, "train.check_every", { int = true, min = 0 }) end
  if t.table_placement ~= nil then c:enum(t.table_placement, "train.table_placement", TABLE_PLACEMENTS) end
  local es = t.early_stopping
  if es ~= nil and c:table(es, "train.early_stopping", "{metric = 'eval.<task>.auc', mode = 'max', patience = 3}") then
    c:keys(es, "train.early_stopping", { "metric", "mode", "patience" })
    if es.metric == nil then c:err("missing required key 'train.early_stopping.metric' (e.g. \"eval.ctr.auc\")")
    elseif c:string(es.metric, "train.early_stopping.metric") then
      local task, name = es.metric:match("^eval%.([^.]+)%.([^.]+)$")
      if not task then task, name = es.metric:match("^([^.]+)%.([^.]+)$") end
      if not task then
        c:err("'train.early_stopping.metric' must look like \"eval.<task>.<metric>\", got %s", show(es.metric))
      elseif not set_of(METRICS)[name] then
        c:err("'train.early_stopping.metric': unknown metric '%s' (expected %s)%s", name, one_of(METRICS),
          util.did_you_mean(name, METRICS))
      end
    end
    if es.mode == nil then es.mode = "max" else c:enum(es.mode, "train.early_stopping.mode", { "max", "min" }) end
    if es.patience == nil then es.patience = 3 else c:number(es.patience, "train.early_stopping.patience", { int = true, min = 1 }) end
    if t.eval_every == nil then c:err("'train.early_stopping' needs train.eval_every (it compares evaluations)") end
  end
end

local function check_eval(c)
  local e = optional_section(c, "eval", EVAL_KEYS)
  if not e then return end
  if e.metrics == nil then e.metrics = { "auc" }
  elseif c:list(e.metrics, "eval.metrics", "a list of metric names", true) then
    for i, name in ipairs(e.metrics) do c:enum(name, "eval.metrics." .. i, METRICS) end
  end
  local has_gauc = false
  for _, name in ipairs(type(e.metrics) == "table" and e.metrics or {}) do if name == "gauc" then has_gauc = true end end
  if e.gauc ~= nil then
    if c:table(e.gauc, "eval.gauc", "{group = 'user_id', reduction = 'mean'}") then
      c:keys(e.gauc, "eval.gauc", { "group", "reduction" })
      if e.gauc.group == nil then c:err("missing required key 'eval.gauc.group' (the user id column)")
      else column_ref(c, e.gauc.group, "eval.gauc.group", { "int", "int64", "string" }, "gauc grouping") end
      if e.gauc.reduction == nil then e.gauc.reduction = "mean"
      else c:enum(e.gauc.reduction, "eval.gauc.reduction", GAUC_REDUCTIONS) end
    end
    if not has_gauc and type(e.metrics) == "table" then e.metrics[#e.metrics + 1] = "gauc" end
  elseif has_gauc then
    c:err("'eval.metrics' lists gauc but eval.gauc is not set (eval.gauc = {group = 'user_id'})")
  end
end

local function check_rank(c)
  local r = optional_section(c, "rank", RANK_KEYS)
  if not r then return end
  if r.alpha == nil then r.alpha = 1 else c:number(r.alpha, "rank.alpha") end
  if r.price ~= nil then column_ref(c, r.price, "rank.price", { "float", "int", "int64" }, "the price") end
  if r.expression ~= nil then c:string(r.expression, "rank.expression", "an expression string") end
end

-- Returns a validated copy of cfg with defaults filled in; raises one error
-- listing every problem.
return function(cfg)
  if type(cfg) ~= "table" then error("config: expected a config table, got " .. show(cfg), 2) end
  cfg = util.deep_copy(cfg)
  local c = check.new("config")
  c.cfg, c.columns, c.labels = cfg, {}, {}
  c.label_ref = label_ref
  c:keys(cfg, "", SECTIONS, nil)
  for i, e in ipairs(c.errs) do
    c.errs[i] = e:gsub("^config: unknown key", "config: unknown section")
  end
  check_data(c, cfg.data)
  check_features(c, cfg.features)
  groups_check.groups(c, cfg.groups)
  check_model(c, cfg.model)
  check_losses(c, cfg.losses)
  check_optimizer(c)
  check_train(c, cfg.data)
  check_eval(c)
  check_rank(c)
  if cfg.model_dir ~= nil then c:string(cfg.model_dir, "model_dir", "a directory path") end
  if #c.errs > 0 then error(table.concat(c.errs, "\n"), 0) end
  return cfg
end
