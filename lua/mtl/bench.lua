-- mtl.bench: the multi-task ranking benchmark (bench/SPEC.md), run the way
-- bench/torch_ref.py runs it, so the two print comparable JSON lines.
--
--   require("mtl.bench").run(arg)     -- arg: CLI strings, or an options table
--   build/mtl bench/bench.lua --model mmoe --batch 1024 --threads 1 \
--       --train /tmp/mtlbench/train.csv --test /tmp/mtlbench/test.csv
--
-- Options (the flags of torch_ref.py): --model, --preset spec|paper, --batch,
-- --threads, --epochs, --train, --test, --train-rows N, --test-rows N (first N
-- rows; 0 = all), --warmup 20, --infer-warmup 5, --seed 0; and
-- --phase-split (mean ms per step of each phase in "phase_ms", SPEC.md 6.4).
--
-- The workload (SPEC.md):
--   data      read_all of the CSV (parse, tags as ids + offsets, z-score of
--             d1..d8 with the training statistics, in C) -- timed as "load"
--   features  14 tables (dim 16, or 4 in preset paper), U(-0.05, 0.05); tags
--             mean-pooled; x = [embeddings, 8 standardized numbers]
--   models    models/*.lua at SPEC.md's sizes (section 3, or 6.2 for paper);
--             Linear W and b ~ U(+-1/sqrt(fan_in))
--   loss      BCE with logits per task, summed (esmm: BCE on pCTR and pCTCVR)
--   optim     Adam (dense) and lazy SparseAdam (tables), lr 1e-3
--   protocol  20 warm-up steps, then parameters restored and optimizers made
--             anew; one timed epoch in file order (last partial batch kept);
--             5 untimed inference batches, then a timed pass over the test
--             file; AUCs, log losses, peak RSS.
-- The last line printed is one JSON object with torch_ref.py's keys plus
-- step_gflops (matrix-product FLOPs of the training epoch / train seconds),
-- infer_gflops, flops_per_step, and train_cpu_seconds / infer_cpu_seconds
-- (process CPU time of the timed phases).
local mtl = require "mtl"
local ffi = require "ffi"
local json = require "cjson"
local sys = require "mtl.sys"

local bench = {}

-- The models with the benchmark's settings (a `bench` table in their file,
-- models/<name>.lua: `spec` for bench/SPEC.md section 3, `paper` for 6.2).
function bench.models(preset)
  local registry, out = require "mtl.models", {}
  for _, name in ipairs(registry.names()) do
    local cls = registry.get(name)
    if cls.bench and cls.bench[preset or "spec"] then out[#out + 1] = name end
  end
  return out
end

local ID_FIELDS = { "user_id", "item_id", "trigger_id", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9", "c10" }
local ID_CARDS = { 100000, 200000, 200000, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000 }
local TAG_CARD = 10000
local N_DENSE = 8

-- Feature dims of the presets (SPEC.md section 3 and 6.2); the model sizes
-- are each model's own `bench` table.
local TWO_TASKS = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } }
local PRESET_DIMS = { spec = 16, paper = 4 }

-- ---- small helpers ------------------------------------------------------------------
-- getrusage's struct, declared once (pcall: a second load of this file finds it declared).
for _, decl in ipairs {
  "typedef struct { long tv_sec; long tv_usec; } mtl_bench_timeval;",
  [[typedef struct {
    mtl_bench_timeval ru_utime, ru_stime;
    long ru_maxrss, ru_ixrss, ru_idrss, ru_isrss, ru_minflt, ru_majflt, ru_nswap,
         ru_inblock, ru_oublock, ru_msgsnd, ru_msgrcv, ru_nsignals, ru_nvcsw, ru_nivcsw;
  } mtl_bench_rusage;]],
  "int getrusage(int who, mtl_bench_rusage *usage);",
} do pcall(ffi.cdef, decl) end
local now = sys.now
bench.now = now

local function peak_rss_mib()
  local ru = ffi.new("mtl_bench_rusage")
  if ffi.C.getrusage(0, ru) ~= 0 then return nil end
  return tonumber(ru.ru_maxrss) / 1024 -- Linux: KiB
end

-- CPU seconds of the process (user + system, all threads): on a shared
-- machine a steadier A/B figure than wall time for 1-thread runs.
local function cpu_seconds()
  local ru = ffi.new("mtl_bench_rusage")
  ffi.C.getrusage(0, ru)
  return tonumber(ru.ru_utime.tv_sec) + tonumber(ru.ru_utime.tv_usec) * 1e-6
    + tonumber(ru.ru_stime.tv_sec) + tonumber(ru.ru_stime.tv_usec) * 1e-6
end
bench.cpu_seconds = cpu_seconds

local function round(x, digits)
  local m = 10 ^ digits
  return math.floor(x * m + 0.5) / m
end

-- Errors carry no prefix: `mtl bench` (lua/mtl/cli) and bench/bench.lua add "mtl bench: ".
local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

-- ---- options ------------------------------------------------------------------------
local DEFAULTS = {
  model = nil, preset = "spec", batch = 1024, threads = 1, epochs = 1,
  train = "/tmp/mtlbench/train.csv", test = "/tmp/mtlbench/test.csv",
  train_rows = 0, test_rows = 0, warmup = 20, infer_warmup = 5, seed = 0,
  phase_split = false, quiet = false, precision = "fp32",
}
local NUMERIC = { batch = true, threads = true, epochs = true, train_rows = true, test_rows = true,
                  warmup = true, infer_warmup = true, seed = true }

local USAGE = [[
usage: mtl bench --model M [--batch 1024] [--threads 1] [--preset spec|paper]
                 [--train FILE] [--test FILE] [--train-rows N] [--test-rows N]
                 [--warmup 20] [--infer-warmup 5] [--seed 0] [--epochs 1]
                 [--phase-split] [--quiet] [--precision fp32|bf16]
  M: %s (preset paper: %s)
  --precision bf16: inference in bf16 (training stays FP32); the JSON's
  "precision" is the one that ran (fp32 where the CPU lacks AVX512-BF16)]]

-- The usage text, with the models that have benchmark settings.
function bench.usage()
  return string.format(USAGE, table.concat(bench.models("spec"), ", "), table.concat(bench.models("paper"), ", "))
end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- args: a list of CLI strings ({"--model", "mmoe", ...}) or a table of options.
function bench.parse(args)
  local o = {}
  for k, v in pairs(DEFAULTS) do o[k] = v end
  args = args or {}
  if args[1] == nil and next(args) ~= nil then -- an options table
    for k, v in pairs(args) do
      local key = tostring(k):gsub("-", "_")
      if DEFAULTS[key] == nil and key ~= "model" then fail("unknown option '%s'", tostring(k)) end
      o[key] = v
    end
  else
    local i = 1
    while i <= #args do
      local a = args[i]
      local name, value = a:match("^%-%-([%w%-_]+)=(.*)$")
      name = name or a:match("^%-%-([%w%-_]+)$")
      if not name then fail("unexpected argument '%s'\n%s", a, bench.usage()) end
      local key = name:gsub("-", "_")
      if DEFAULTS[key] == nil and key ~= "model" then fail("unknown option '--%s'\n%s", name, bench.usage()) end
      if key == "phase_split" or key == "quiet" then
        o[key] = true
      else
        if value == nil then
          i = i + 1
          value = args[i]
          if value == nil then fail("option '--%s' needs a value", name) end
        end
        o[key] = value
      end
      i = i + 1
    end
  end
  for k in pairs(NUMERIC) do
    local n = tonumber(o[k])
    if not n or n ~= math.floor(n) or n < 0 then fail("--%s must be a non-negative integer, got '%s'", k:gsub("_", "-"), tostring(o[k])) end
    o[k] = n
  end
  if o.batch < 1 then fail("--batch must be at least 1") end
  if o.threads < 1 then fail("--threads must be at least 1") end
  if not o.model then fail("--model is required\n%s", bench.usage()) end
  if o.precision ~= "fp32" and o.precision ~= "bf16" then
    fail("--precision must be fp32 or bf16, got '%s'", tostring(o.precision))
  end
  if not PRESET_DIMS[o.preset] then fail("unknown preset '%s' (expected spec or paper)", tostring(o.preset)) end
  local in_preset, in_spec = bench.models(o.preset), bench.models("spec")
  if not set_of(in_preset)[o.model] then
    if set_of(in_spec)[o.model] then fail("model %s is not defined for preset %s", o.model, o.preset) end
    fail("unknown model '%s' (expected %s)", tostring(o.model), table.concat(in_spec, ", "))
  end
  return o
end

-- ---- data ---------------------------------------------------------------------------
-- Reader columns: labels as floats, ids as int64, tags as a bag, d1..d8 in one
-- float group "__numbers" standardized in C (fit on train, given on test).
local function reader_columns(stats)
  local cols = { { name = "is_click", type = "float" }, { name = "is_pay", type = "float" } }
  for _, f in ipairs(ID_FIELDS) do
    cols[#cols + 1] = { name = f, type = "int64" }
  end
  -- the file's column order: is_click,is_pay,user_id,item_id,trigger_id,c1..c10,tags,d1..d8
  cols[#cols + 1] = { name = "tags", type = "multi", separator = "|" }
  for i = 1, N_DENSE do
    local name = "d" .. i
    cols[#cols + 1] = { name = name, type = "float", group = "__numbers",
                        standardize = stats and stats[name] or true }
  end
  return cols
end

-- -> {size, columns, stats}, seconds. partition: this rank's part of the
-- rows (mtl.parallel; nil: every row).
local function load(path, rows, stats, partition)
  local t0 = now()
  local d = mtl.data.read_all { files = path, columns = reader_columns(stats), header = true,
                                max_rows = rows > 0 and rows or nil, partition = partition }
  return d, now() - t0
end
bench.load = load

-- The training data's z-score statistics over every rank's rows: each rank
-- fitted them on its own part, so they are merged (count, mean, M2, in rank
-- order; Chan et al.) and the rank's numbers are standardized again with
-- them. One rank: its own statistics, untouched.
local function merge_stats(d)
  local parallel = require "mtl.parallel"
  local mine = {}
  for i = 1, N_DENSE do
    local st = d.stats["d" .. i]
    mine[#mine + 1], mine[#mine + 2], mine[#mine + 3] = d.size, st.mean, st.std
  end
  local all = parallel.gather_numbers(mine)
  for i = 1, N_DENSE do
    local k = 3 * (i - 1)
    local n, mean, m2 = all[1][k + 1], all[1][k + 2], all[1][k + 3] ^ 2 * all[1][k + 1]
    for r = 2, #all do
      local nr, mr, sr = all[r][k + 1], all[r][k + 2], all[r][k + 3]
      local total = n + nr
      if total > 0 then
        local delta = mr - mean
        mean = mean + delta * nr / total
        m2 = m2 + sr * sr * nr + delta * delta * n * nr / total
      end
      n = total
    end
    local std = #all > 1 and (n > 0 and math.sqrt(m2 / n) or 1) or all[1][k + 3]
    if std == 0 or std ~= std then std = 1 end
    local own = d.stats["d" .. i]
    if mean ~= own.mean or std ~= own.std then -- z = (x - own.mean) / own.std -> (x - mean) / std
      local col = d.columns.__numbers:narrow(2, i, 1)
      mtl.no_grad(function() col:copy(col * (own.std / std) + (own.mean - mean) / std) end)
      d.stats["d" .. i] = { mean = mean, std = std }
    end
  end
end

-- Rows s+1..s+n of a read_all result as a batch (narrow views, no copies).
local function slice(d, s, n)
  local c = d.columns
  local cols = {}
  for _, f in ipairs(ID_FIELDS) do cols[f] = c[f]:narrow(1, s + 1, n) end
  local offs = c.tags.offsets:narrow(1, s + 1, n + 1)
  local o0, o1 = offs:get(1), offs:get(n + 1)
  cols.tags = { ids = c.tags.ids:narrow(1, o0 + 1, o1 - o0), offsets = offs }
  cols.__numbers = c.__numbers:narrow(1, s + 1, n)
  cols.is_click = c.is_click:narrow(1, s + 1, n)
  cols.is_pay = c.is_pay:narrow(1, s + 1, n)
  return { size = n, columns = cols }
end
bench.slice = slice

-- ---- model --------------------------------------------------------------------------
local function feature_specs(dim)
  local specs = {}
  for i, f in ipairs(ID_FIELDS) do
    specs[i] = { name = f, type = "id", column = f, num_buckets = ID_CARDS[i], dim = dim }
  end
  specs[#specs + 1] = { name = "tags", type = "tag", column = "tags", num_buckets = TAG_CARD, dim = dim,
                        combiner = "mean" }
  for i = 1, N_DENSE do
    specs[#specs + 1] = { name = "d" .. i, type = "raw", column = "d" .. i, normalize = "zscore" }
  end
  return specs
end

local function data_columns()
  local cols = {}
  for _, c in ipairs(reader_columns(nil)) do cols[#cols + 1] = { name = c.name, type = c.type == "multi" and "ids" or (c.type == "int64" and "int" or c.type), separator = c.separator } end
  return cols
end

-- Builds features + model (mtl.ranker.Ranker) with the preset's sizes.
function bench.build(o)
  local features = require "mtl.features"
  local deep_copy = require("mtl.config.util").deep_copy
  local F = features.new(feature_specs(PRESET_DIMS[o.preset]), { columns = data_columns(), labels = { "is_click", "is_pay" } })
  F:build()
  local model_cfg = deep_copy(require("mtl.models").get(o.model).bench[o.preset])
  model_cfg.name = o.model
  model_cfg.tasks = model_cfg.tasks or deep_copy(TWO_TASKS)
  local model = require("mtl.ranker").Ranker({ model = model_cfg }, F)
  return model, F
end

-- Matrix-product FLOPs per example of one forward pass (mtl.ranker's count).
local forward_flops_per_row = require("mtl.ranker").forward_flops_per_row
bench.forward_flops_per_row = forward_flops_per_row

local function count_params(list)
  local n = 0
  for _, p in ipairs(list) do n = n + p:numel() end
  return n
end

-- Predictions of one output table: p_click, p_ctcvr, p_cvr. The first task
-- is the click, the second the purchase; a model with a ctcvr output (ESMM)
-- gives pCTCVR and a conditional pCVR, the others pCTCVR and pCVR = ratio.
local function predict(out, tasks)
  local pc, pp = out[tasks[1].name].prob, out[tasks[2].name].prob
  if out.ctcvr then return pc, out.ctcvr.prob, pp end
  return pc, pp, mtl.clamp(pp / pc, 0, 1)
end

-- ---- the run ------------------------------------------------------------------------
function bench.run(args)
  if type(args) == "table" and (args[1] == "--help" or args[1] == "-h") then
    io.stdout:write(bench.usage(), "\n")
    return 0
  end
  -- a wrong command line (an option, a missing --model, a data file named that
  -- does not exist) is exit 2, as for every mtl command
  local okp, o = pcall(bench.parse, args)
  if okp then
    for _, k in ipairs({ "train", "test" }) do
      if o[k] ~= DEFAULTS[k] and not require("mtl.sys").exists(o[k]) then
        okp, o = false, string.format("--%s: data file '%s' does not exist", k, o[k])
        break
      end
    end
  end
  if not okp then
    io.stderr:write("mtl bench: ", tostring(o), "\n(mtl bench --help for usage)\n")
    return 2
  end
  local say = o.quiet and function() end or function(...) io.stdout:write(string.format(...), "\n") end
  local losses = require "mtl.losses"
  mtl.set_num_threads(o.threads)
  local info = { model = o.model, preset = o.preset, batch = o.batch, threads = o.threads, epochs = o.epochs,
                 seed = o.seed, mtl = "mtl (LuaJIT + C, OpenBLAS sgemm)", mtl_threads = mtl.get_num_threads() }
  local env = {}
  for _, k in ipairs { "OMP_WAIT_POLICY", "LD_LIBRARY_PATH", "OPENBLAS_NUM_THREADS", "LD_PRELOAD", "OMP_NUM_THREADS" } do
    env[k] = os.getenv(k)
  end
  info.env = env -- cjson writes an empty table as {}

  -- 1. load: each rank its rows (mtl.parallel): of training, its piece of
  -- every global batch; of the test file, batches k N + r of B rows
  local parallel = require "mtl.parallel"
  local dist = mtl.dist
  local rank, size = dist.rank(), dist.size()
  if rank ~= 0 then say = function() end end
  info.ranks = size
  local B = o.batch
  local tr, t_train = load(o.train, o.train_rows, nil, parallel.train_partition(B))
  merge_stats(tr)
  local te, t_test = load(o.test, o.test_rows, tr.stats, parallel.score_partition(B))
  local rows = parallel.sum_numbers({ tr.size, te.size }) -- every rank's
  local train_rows, test_rows = rows[1], rows[2]
  info.train_rows, info.test_rows = train_rows, test_rows
  info.load_train_seconds, info.load_test_seconds = round(t_train, 3), round(t_test, 3)
  info.read_csv_train_seconds = round(t_train, 3) -- one pass in C: parse, bags and z-score together
  say("loaded %d train rows in %.2fs, %d test rows in %.2fs%s", train_rows, t_train, test_rows, t_test,
    size > 1 and string.format(" (rank 0: %d and %d)", tr.size, te.size) or "")
  if train_rows == 0 then fail("no training rows in %s", o.train) end

  -- 2. model
  mtl.seed(o.seed)
  local model, F = bench.build(o)
  local tables = {}
  for _, e in ipairs(F:embedding_tables()) do tables[#tables + 1] = e.table end
  local dense = model:parameters()
  info.dense_params = count_params(dense)
  local n_emb = 0
  for _, t in ipairs(tables) do n_emb = n_emb + t:rows() * t:dim() end
  info.embedding_params = n_emb
  local spec = losses.default_spec(model.body)
  local nb = math.ceil(train_rows / B) -- global batches
  local per_rank = parallel.local_rows(B)
  -- this rank's rows of global batch b (0-based): its piece of the block
  local function local_batch(b)
    local s = math.min(b * per_rank, tr.size)
    return slice(tr, s, math.min(per_rank, tr.size - s))
  end

  local opts
  local P = parallel.new { model = model, tables = F:embedding_tables(), check_every = 0 }
  local function make_optimizers()
    opts = { mtl.optim.adam { params = dense, lr = 1e-3 }, mtl.optim.adam { params = tables, lr = 1e-3 } }
    P.optimizers = opts
  end
  local dense_opt, sparse_opt
  local steps_taken = 0
  -- one data-parallel step (mtl.train's train_step, without its bookkeeping):
  -- the global batch's loss and rows
  local function step(batch)
    local counts = losses.denominators(batch.columns, spec, batch.size)
    table.insert(counts, 1, batch.size)
    steps_taken = steps_taken + 1
    local global = P:begin_step(steps_taken, counts)
    local out = model(batch)
    local loss = P:backward(batch.size, function()
      return losses.compute(out, batch.columns, spec, { scale = P:scales(counts, global) })
    end)[1]
    dense_opt:step()
    sparse_opt:step()
    return loss, global[1]
  end

  -- 3. warm-up, then the initial model and fresh optimizers. Warm-up steps
  -- change only the table rows their batches look up, so only those rows are
  -- kept for the restore (a copy of whole tables would add 34 MB to the peak).
  local warm_rows = math.min(o.warmup * per_rank, tr.size)
  local init_dense, init_tables = {}, {}
  for i, p in ipairs(dense) do init_dense[i] = p:clone() end
  for i, e in ipairs(F:embedding_tables()) do
    local col = tr.columns[e.name]
    local ids = type(col) == "table" and col.ids:narrow(1, 1, col.offsets:get(warm_rows + 1)) or col:narrow(1, 1, warm_rows)
    -- 0-based rows, every rank's (their updates reach every replica)
    local list = mtl.core.sort_unique(mtl.dist.allgather(mtl.core.sort_unique(ids))):values()
    local pos = {}
    for k, id in ipairs(list) do pos[k] = id + 1 end
    init_tables[i] = { ids = list, rows = e.table:weight():index_select(1, mtl.tensor(pos, "int64")) }
  end
  model:train()
  make_optimizers()
  dense_opt, sparse_opt = opts[1], opts[2]
  local tw = now()
  for b = 0, math.min(o.warmup, nb) - 1 do step(local_batch(b)) end
  info.warmup_seconds = round(now() - tw, 3)
  mtl.no_grad(function()
    for i, p in ipairs(dense) do p:copy(init_dense[i]) end
    for i, t in ipairs(tables) do
      local w, saved = t:weight(), init_tables[i]
      for k, id in ipairs(saved.ids) do w:narrow(1, id + 1, 1):copy(saved.rows:narrow(1, k, 1)) end
    end
  end)
  init_dense, init_tables = nil, nil
  opts = nil
  dense_opt, sparse_opt = nil, nil
  collectgarbage()
  make_optimizers()
  dense_opt, sparse_opt = opts[1], opts[2]

  -- 4. the timed epoch(s)
  local train_s, last_loss = 0, nil
  P:check(0, true) -- every rank starts the timed epoch from the same state
  local comm0 = { seconds = P.stats.seconds, dense = P.stats.dense_bytes, sparse = P.stats.sparse_bytes }
  local cpu0 = cpu_seconds()
  local phase = o.phase_split and { slice = 0, forward = 0, zero_grad = 0, backward = 0, sync = 0, reduce = 0, adam = 0,
                                    sparse_adam = 0 }
  for ep = 1, o.epochs do
    model:train()
    local loss_sum = 0
    local ts0 = now()
    if phase then
      for b = 0, nb - 1 do
        local t0 = now()
        local batch = local_batch(b)
        local counts = losses.denominators(batch.columns, spec, batch.size)
        table.insert(counts, 1, batch.size)
        steps_taken = steps_taken + 1
        local global = P:begin_step(steps_taken, counts)
        local t1 = now()
        local total = losses.compute(model(batch), batch.columns, spec, { scale = P:scales(counts, global) })
        local t2 = now()
        dense_opt:zero_grad(); sparse_opt:zero_grad()
        local t3 = now()
        if batch.size > 0 then total:backward() end
        local t4 = now()
        if size > 1 then dist.barrier() end -- waiting for the slower rank, apart from the communication
        local t4b = now()
        local loss = P:reduce({ batch.size > 0 and total:item() or 0 })[1]
        local t5 = now()
        dense_opt:step()
        local t6 = now()
        sparse_opt:step()
        local t7 = now()
        phase.slice, phase.forward, phase.zero_grad = phase.slice + t1 - t0, phase.forward + t2 - t1, phase.zero_grad + t3 - t2
        phase.backward, phase.sync, phase.reduce = phase.backward + t4 - t3, phase.sync + t4b - t4, phase.reduce + t5 - t4b
        phase.adam, phase.sparse_adam = phase.adam + t6 - t5, phase.sparse_adam + t7 - t6
        loss_sum = loss_sum + loss * global[1]
      end
    else
      for b = 0, nb - 1 do
        local loss, n = step(local_batch(b))
        loss_sum = loss_sum + loss * n
      end
    end
    local dt = now() - ts0
    train_s = train_s + dt
    last_loss = loss_sum / train_rows
    say("epoch %d: %.2fs, %.0f ex/s, mean train loss %.5f", ep, dt, train_rows / dt, last_loss)
  end
  info.train_seconds = round(train_s, 3)
  info.train_cpu_seconds = round(cpu_seconds() - cpu0, 3)
  info.train_examples_per_s = round(train_rows * o.epochs / train_s, 1)
  info.train_loss_last_epoch = round(last_loss, 5)
  if size > 1 then -- per step, this rank: time in P:reduce (allreduce, allgathers, unpacking) and payload bytes
    local steps = nb * o.epochs
    local st = P:communication()
    info.comm_ms_per_step = round(1e3 * (st.seconds - comm0.seconds) / steps, 3)
    info.comm_percent_of_step = round(100 * (st.seconds - comm0.seconds) / train_s, 2)
    info.dense_bytes_per_step = math.floor((st.dense_bytes - comm0.dense) / steps + 0.5)
    info.sparse_bytes_per_step = math.floor((st.sparse_bytes - comm0.sparse) / steps + 0.5)
  end
  local fpr = forward_flops_per_row(model)
  info.step_gflops = round(3 * fpr * train_rows * o.epochs / train_s / 1e9, 2)
  info.flops_per_step = 3 * fpr * B
  if phase then
    local steps = nb * o.epochs
    local ms, sum = {}, 0
    for k, v in pairs(phase) do ms[k] = round(1e3 * v / steps, 4); sum = sum + v end
    ms.step = round(1e3 * train_s / steps, 4)
    ms.rest = round(1e3 * (train_s - sum) / steps, 4)
    info.phase_split, info.phase_steps, info.phase_ms = true, steps, ms
    say("phase ms/step: slice %.3f forward %.3f zero_grad %.3f backward %.3f sync %.3f reduce %.3f adam %.3f sparse_adam %.3f rest %.3f step %.3f",
      ms.slice, ms.forward, ms.zero_grad, ms.backward, ms.sync, ms.reduce, ms.adam, ms.sparse_adam, ms.rest, ms.step)
  end
  opts, dense_opt, sparse_opt = nil, nil, nil

  -- 5. inference: each rank scores its batches; every rank gets them all in
  -- file order (parallel.map_batches), with the labels
  model:eval()
  info.precision = require("mtl.ranker").set_precision(model, o.precision)
  local p_click, p_ctcvr, p_cvr = mtl.zeros(test_rows), mtl.zeros(test_rows), mtl.zeros(test_rows)
  local yc, yp = mtl.zeros(test_rows), mtl.zeros(test_rows)
  mtl.no_grad(function()
    for s = 0, math.min(o.infer_warmup * B, te.size) - 1, B do
      predict(model(slice(te, s, math.min(B, te.size - s))), model.tasks)
    end
  end)
  collectgarbage()
  local ti, cpu_i = now(), cpu_seconds()
  local next_s = 0
  local function next_batch()
    if next_s >= te.size then return nil end
    local s, n = next_s, math.min(B, te.size - next_s)
    next_s = next_s + n
    return slice(te, s, n)
  end
  local function score(batch)
    local c, p, v = predict(model(batch), model.tasks)
    local n = batch.size
    return { mtl.concat({ c:reshape(n, 1), p:reshape(n, 1), v:reshape(n, 1),
                          batch.columns.is_click:reshape(n, 1), batch.columns.is_pay:reshape(n, 1) }, 2) }
  end
  local at = 0
  mtl.no_grad(function()
    parallel.map_batches(next_batch, score, { mtl.zeros(0, 5) }, function(parts)
      local r = parts[1]
      local n = r:size(1)
      for j, dst in ipairs { p_click, p_ctcvr, p_cvr, yc, yp } do dst:narrow(1, at + 1, n):copy(r:narrow(2, j, 1)) end
      at = at + n
    end)
  end)
  local di = now() - ti
  info.infer_cpu_seconds = round(cpu_seconds() - cpu_i, 3)
  info.infer_seconds = round(di, 3)
  info.infer_examples_per_s = round(test_rows / di, 1)
  info.infer_gflops = round(fpr * test_rows / di / 1e9, 2)

  -- 6. quality
  info.auc_click = round(mtl.metrics.auc(p_click, yc), 5)
  info.auc_cvr = round(mtl.metrics.auc(p_cvr, yp, yc), 5)
  info.auc_ctcvr = round(mtl.metrics.auc(p_ctcvr, yp), 5)
  info.logloss_click = round(mtl.metrics.logloss(p_click, yc), 5)
  info.logloss_ctcvr = round(mtl.metrics.logloss(p_ctcvr, yp), 5)
  -- 7. memory
  info.peak_rss_mib = round(peak_rss_mib() or -1, 1)
  say("infer: %.0f ex/s; AUC click %.4f cvr %.4f ctcvr %.4f; peak RSS %.0f MiB",
    info.infer_examples_per_s, info.auc_click, info.auc_cvr, info.auc_ctcvr, info.peak_rss_mib)
  if rank == 0 then
    io.stdout:write(json.encode(info), "\n")
    io.stdout:flush()
  end
  bench.last = info
  return 0
end

return bench
