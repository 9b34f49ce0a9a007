-- mtl.config: Lua config files (import, merge, errors with file:line), load
-- with overrides, and validation (key paths, suggestions, types, defaults).
local config = require "mtl.config"

local check = require "helpers.check"
local shell = require "helpers.shell"

local err_of, tmpdir, write = check.error_of, shell.tmpdir, shell.write

-- A complete, valid config.
local function base()
  return {
    data = {
      train = "train.csv", eval = "test.csv",
      columns = { { name = "clk", type = "float" }, { name = "buy", type = "float" }, { name = "user_id", type = "int" },
                  { name = "tags", type = "ids", separator = "|" }, { name = "price", type = "float", default = 0 },
                  { name = "cate", type = "string" }, { name = "stats", type = "kv" } },
      labels = { "clk", "buy" },
    },
    features = {
      { name = "user_id", type = "id", column = "user_id", hash_bucket_size = 1000, dim = 8 },
      { name = "tags", type = "tag", column = "tags", num_buckets = 100 },
      { name = "price", type = "raw", column = "price", normalize = "zscore" },
      { name = "price_bin", type = "raw", column = "price", bins = { method = "equal_freq" }, dim = 4 },
      { name = "user_x_cate", type = "combo", columns = { "user_id", "cate" }, hash_bucket_size = 100 },
      { name = "cate_ctr", type = "lookup", column = "stats", key = "cate" },
      { name = "user_again", type = "id", column = "user_id", shared = "user_id" },
    },
    model = { name = "mmoe", experts = 4, expert = { 32 }, tasks = { { name = "ctr", label = "clk" }, { name = "cvr", label = "buy" } } },
  }
end

describe("config.validate", function()
  it("gives a model that reads feature groups only (backbone) one group of every feature when there are none", function()
    local raw = base()
    raw.model = { name = "backbone", tasks = raw.model.tasks,
                  blocks = { { name = "all", group = "all" }, { name = "m", inputs = { "all" }, block = "MLP", options = { hidden = { 4 } } } } }
    assert.are.same({ { name = "all", features = { "user_id", "tags", "price", "price_bin", "user_x_cate", "cate_ctr", "user_again" } } },
      config.validate(raw).groups)
    assert.is_nil(config.validate(base()).groups)
  end)

  it("fills in defaults and leaves its input alone", function()
    local raw = base()
    local cfg = config.validate(raw)
    assert.are.same({ "csv", ",", true, 1024, 0, 1 },
      { cfg.data.format, cfg.data.separator, cfg.data.header, cfg.data.batch_size, cfg.data.shuffle_buffer, cfg.data.epochs })
    assert.are.equal(16, cfg.features[2].dim)
    assert.are.equal(10, cfg.features[4].bins.n)
    assert.is_nil(cfg.features[3].dim)
    assert.are.same({ name = "ctr", label = "clk", weight = 1 }, cfg.model.tasks[1])
    assert.are.same({ dense = { name = "adam", lr = 1e-3 }, schedule = { name = "constant" } }, cfg.optimizer)
    assert.are.same({ epochs = 1, checkpoint_every = 100, keep_checkpoints = 5, log_every = 100, seed = 0, threads = 1,
      resume = false, nan_loss = "error" }, cfg.train)
    assert.are.equal("error", cfg.data.bad_rows)
    assert.are.same({ metrics = { "auc" } }, cfg.eval)
    assert.are.same({ alpha = 1 }, cfg.rank)
    assert.is_nil(raw.train)
    assert.is_nil(raw.features[2].dim)
    assert.are.same(cfg, config.validate(cfg)) -- validating twice changes nothing
  end)

  it("fills each optimizer's own default learning rate and checks its options", function()
    local cfg = base()
    cfg.optimizer = { dense = { name = "sgd", momentum = 0.9 }, sparse = { name = "adagrad" },
                      schedule = { name = "cosine", total_steps = 100, warmup_steps = 10 }, clip_norm = 5 }
    local v = config.validate(cfg)
    assert.are.same({ name = "sgd", lr = 0.01, momentum = 0.9 }, v.optimizer.dense)
    assert.are.same({ name = "adagrad", lr = 0.01 }, v.optimizer.sparse)
  end)

  it("takes train.epochs over data.epochs, and math.huge epochs with a step budget", function()
    local cfg = base()
    cfg.data.epochs = 3
    assert.are.equal(3, config.validate(cfg).train.epochs)
    cfg.train = { epochs = 2 }
    local v = config.validate(cfg)
    assert.are.same({ 2, 2 }, { v.train.epochs, v.data.epochs })
    cfg.train = { epochs = math.huge, steps = 50 }
    assert.are.equal(math.huge, config.validate(cfg).train.epochs)
    cfg.train = { epochs = math.huge }
    assert.are.equal("config: 'train.epochs' is math.huge (no end) but train.steps is not set", err_of(config.validate, cfg))
  end)

  it("takes the data-parallel keys train.check_every and train.table_placement", function()
    local cfg = base()
    cfg.train = { check_every = 0, table_placement = "replicated" }
    local v = config.validate(cfg)
    assert.are.same({ 0, "replicated" }, { v.train.check_every, v.train.table_placement })
    cfg.train = { check_every = -1, table_placement = "sharded" }
    assert.are.equal(table.concat({
      "config: 'train.check_every' must be an integer >= 0, got -1",
      "config: 'train.table_placement' must be 'auto' or 'replicated', got \"sharded\"",
    }, "\n"), err_of(config.validate, cfg))
  end)

  it("turns esmm's tasks into its ctr and cvr tasks", function()
    local cfg = base()
    cfg.model = { name = "esmm", tower = { 16 }, tasks = { { name = "click", label = "clk" }, { name = "pay", label = "buy" } } }
    local v = config.validate(cfg)
    assert.are.same({ name = "click", label = "clk" }, v.model.ctr)
    assert.are.same({ name = "pay", label = "buy" }, v.model.cvr)
    assert.is_nil(v.model.tasks)
    cfg.model = { name = "esmm", tasks = { { name = "click", label = "clk", weight = 2 }, { name = "pay", label = "buy" } } }
    assert.are.equal("config: unknown key 'model.ctr.weight' (ESMM's losses are fixed; give 'losses' to weight them, " ..
      "'model.tower' for the towers)", err_of(config.validate, cfg))
  end)

  it("names unknown keys with their path and a suggestion", function()
    local function e(mutate)
      local cfg = base()
      mutate(cfg)
      return err_of(config.validate, cfg)
    end
    assert.are.equal("config: unknown key 'model.exprets' (did you mean 'experts'?)", e(function(c) c.model.exprets = 8 end))
    assert.are.equal("config: unknown section 'optimiser' (did you mean 'optimizer'?)", e(function(c) c.optimiser = {} end))
    assert.are.equal("config: unknown key 'data.batchsize' (did you mean 'batch_size'?)", e(function(c) c.data.batchsize = 1 end))
    assert.are.equal("config: unknown key 'features.1.hash_bucket' (did you mean 'hash_bucket_size'?)",
      e(function(c) c.features[1].hash_bucket = 10 end))
    assert.are.equal("config: unknown key 'model.tasks.2.relations' ('relations' is only for backbone and dbmtl)",
      e(function(c) c.model.tasks[2].relations = { "ctr" } end))
    assert.are.equal("config: unknown key 'optimizer.dense.momentum' (adam takes lr, beta1, beta2, eps, weight_decay)",
      e(function(c) c.optimizer = { dense = { momentum = 0.9 } } end))
    assert.are.equal("config: unknown key 'model.levels'", e(function(c) c.model.levels = 2 end))
  end)

  it("checks types, ranges, references and required keys, reporting every problem", function()
    local cfg = base()
    cfg.data.batch_size = 0
    cfg.data.train = nil
    cfg.features[1].column = "uid"
    cfg.features[2].combiner = "max"
    cfg.model.experts = 2.5
    cfg.model.tasks[2].label = "pay"
    cfg.train = { steps = -5, early_stopping = { metric = "eval.ctr.acc" } }
    cfg.eval = { metrics = { "auc", "gauc" } }
    cfg.optimizer = { schedule = { name = "exponential", decay_steps = 10 } }
    assert.are.equal(table.concat({
      "config: missing required key 'data.train'",
      "config: 'data.batch_size' must be a positive integer, got 0",
      "config: 'features.1.column': column 'uid' is not in data.columns",
      "config: 'features.2.combiner' must be 'sum', 'mean' or 'sqrtn', got \"max\"",
      "config: 'model.tasks.2.label': 'pay' is not in data.labels",
      "config: 'model.experts' must be a positive integer, got 2.5",
      "config: missing required key 'optimizer.schedule.decay_factor' (for the exponential schedule)",
      "config: 'train.steps' must be a positive integer, got -5",
      "config: 'train.early_stopping.metric': unknown metric 'acc' (expected 'auc', 'gauc', 'logloss', 'calibration' or 'max_f1') (did you mean 'auc'?)",
      "config: 'train.early_stopping' needs train.eval_every (it compares evaluations)",
      "config: 'eval.metrics' lists gauc but eval.gauc is not set (eval.gauc = {group = 'user_id'})",
    }, "\n"), err_of(config.validate, cfg))
  end)

  it("checks the placement of tables (a feature's placement, train.shard_min_mib)", function()
    local cfg = base()
    cfg.features[1].placement = "sharded"
    cfg.features[2].placement = "replicated"
    cfg.train = { shard_min_mib = 64 }
    local v = config.validate(cfg)
    assert.are.equal("sharded", v.features[1].placement)
    assert.are.equal(64, v.train.shard_min_mib)
    cfg = base()
    cfg.features[1].placement = "split"
    cfg.features[3].placement = "sharded"
    cfg.features[7].placement = "sharded"
    cfg.train = { shard_min_mib = -1 }
    assert.are.equal(table.concat({
      "config: 'features.1.placement' must be 'sharded' or 'replicated', got \"split\"",
      "config: 'features.3.placement': a raw feature without an embedding takes no placement",
      "config: 'features.7.placement': a feature sharing another's table takes that table's placement",
      "config: 'train.shard_min_mib' must be a number >= 0, got -1",
    }, "\n"), err_of(config.validate, cfg))
  end)

  it("checks what each feature type reads", function()
    local function e(f)
      local cfg = base()
      cfg.features = { f }
      return err_of(config.validate, cfg)
    end
    assert.are.equal("config: 'features.1.column': column 'tags' has type 'ids'; a raw feature needs 'float'",
      e({ name = "x", type = "raw", column = "tags" }))
    assert.are.equal("config: 'features.1' (x) needs one of num_buckets, hash_bucket_size, vocab or vocab_file",
      e({ name = "x", type = "id", column = "user_id" }))
    assert.are.equal("config: 'features.1' (x) has num_buckets and hash_bucket_size; give only one",
      e({ name = "x", type = "id", column = "user_id", num_buckets = 5, hash_bucket_size = 5 }))
    assert.are.equal("config: 'features.1.columns' must name two or more columns",
      e({ name = "x", type = "combo", columns = { "user_id" }, hash_bucket_size = 5 }))
    assert.are.equal("config: 'features.1.boundaries' must increase, got 1 after 2",
      e({ name = "x", type = "raw", column = "price", boundaries = { 2, 1 } }))
    assert.are.equal("config: 'features.1.type' must be 'id', 'raw', 'tag', 'combo', 'lookup' or 'sequence', got \"ids\" (did you mean 'id'?)",
      e({ name = "x", type = "ids", column = "user_id" }))
    assert.are.equal("config: 'features.1.shared': no feature is named 'users'",
      e({ name = "x", type = "id", column = "user_id", shared = "users" }))
    assert.are.equal("config: missing required key 'features.1.key' (the column holding the key to look up)",
      e({ name = "x", type = "lookup", column = "stats" }))
  end)

  it("checks the model's own options and the dbmtl relations", function()
    local cfg = base()
    cfg.model = { name = "dbmtl", bottom = false, mmoe = { experts = 2 },
                  tasks = { { name = "ctr", label = "clk", relation = { 8 } }, { name = "cvr", label = "buy", relations = { "ctr" } } } }
    local v = config.validate(cfg)
    assert.is_false(v.model.bottom)
    cfg.model.tasks[2].relations = { "ctx" }
    assert.are.equal("config: 'model.tasks.2.relations.1': no task is named 'ctx' (did you mean 'ctr'?)", err_of(config.validate, cfg))
    cfg.model = { name = "mmoee", tasks = {} }
    local names = require("mtl.models").names()
    local quoted = {}
    for i, n in ipairs(names) do quoted[i] = "'" .. n .. "'" end
    assert.are.equal("config: 'model.name' must be " .. table.concat(quoted, ", ", 1, #quoted - 1) .. " or " .. quoted[#quoted] ..
      ", got \"mmoee\" " ..
      "(did you mean 'mmoe'?)", err_of(config.validate, cfg))
    cfg.model = { name = "ple", levels = 2, expert = { { 16 }, { 8 }, { 4 } }, tasks = { "ctr" } }
    assert.are.equal("config: 'model.tasks.1.label': 'ctr' is not in data.labels\n" ..
      "config: 'model.expert' gives 3 levels of expert sizes, model.levels is 2", err_of(config.validate, cfg))
  end)
end)

describe("Lua config files", function()
  local dir = tmpdir()
  write(dir .. "/base.lua", [[
return {
  data = { train = config_dir .. "/train.csv",
           columns = { {name = "clk", type = "float"}, {name = "buy", type = "float"}, {name = "user_id", type = "int"} },
           labels = { "clk", "buy" } },
  features = { { name = "user_id", type = "id", column = "user_id", num_buckets = 100, dim = 8 } },
  model = { name = "mmoe", experts = 4, tasks = { {name = "ctr", label = "clk"}, {name = "cvr", label = "buy"} } },
  train = { steps = 10 },
}
]])
  os.execute("mkdir -p " .. dir .. "/exp")
  write(dir .. "/exp/wide.lua", [[
local base = import("../base.lua")
local sizes = {}
for i = 1, 3 do sizes[i] = 512 / 2 ^ i end      -- configs compute values
return merge(base, { model = { experts = 8, expert = sizes }, train = { seed = 7 } })
]])
  write(dir .. "/syntax.lua", "return { model = { name = 'mmoe' }\n")
  write(dir .. "/runtime.lua", "local x = nil\nreturn { model = x.name }\n")
  write(dir .. "/raise.lua", "error('no data here')\n")
  write(dir .. "/number.lua", "return 42\n")
  write(dir .. "/imports_bad.lua", "\nreturn import('runtime.lua')\n")
  write(dir .. "/imports_missing.lua", "return import('nope.lua')\n")
  write(dir .. "/cycle_a.lua", "return import('cycle_b.lua')\n")
  write(dir .. "/cycle_b.lua", "return import('cycle_a.lua')\n")
  write(dir .. "/easy.lua", "local c = import('" .. os.getenv("PWD") .. "/spec/fixtures/easyrec/mmoe_on_taobao.config')\n" ..
    "return merge(c, { data = { batch_size = 128 } })\n")

  it("imports relative to the file, merges, computes, and validates", function()
    local cfg = config.load(dir .. "/exp/wide.lua")
    assert.are.equal(8, cfg.model.experts)
    assert.are.same({ 256, 128, 64 }, cfg.model.expert)
    assert.are.equal(7, cfg.train.seed)
    assert.are.equal(10, cfg.train.steps)
    assert.are.equal(dir .. "/exp/../train.csv", cfg.data.train)
    assert.are.equal(2, #cfg.model.tasks)
  end)

  it("applies --set overrides after loading", function()
    local cfg = config.load(dir .. "/exp/wide.lua", { "train.steps=100", "model.experts=2", "model.tasks.1.weight=2",
      "data.train=x.csv", "optimizer.dense.lr=0.01" })
    assert.are.same({ 100, 2, 2, "x.csv", 0.01 },
      { cfg.train.steps, cfg.model.experts, cfg.model.tasks[1].weight, cfg.data.train, cfg.optimizer.dense.lr })
    assert.are.equal("config: unknown key 'model.exprets' (did you mean 'experts'?)",
      err_of(config.load, dir .. "/exp/wide.lua", { "model.exprets=8" }))
  end)

  it("imports EasyRec configs too", function()
    local cfg = config.load(dir .. "/easy.lua")
    assert.are.equal(128, cfg.data.batch_size)
    assert.are.equal("mmoe", cfg.model.name)
  end)

  it("reports syntax and runtime errors with file and line", function()
    assert.are.equal(dir .. "/syntax.lua:2: '}' expected (to close '{' at line 1) near '<eof>'",
      err_of(config.load, dir .. "/syntax.lua"))
    assert.are.equal(dir .. "/runtime.lua:2: attempt to index local 'x' (a nil value)", err_of(config.load, dir .. "/runtime.lua"))
    assert.are.equal(dir .. "/raise.lua:1: no data here", err_of(config.load, dir .. "/raise.lua"))
    assert.are.equal(dir .. "/number.lua: a config file must return a table, got 42", err_of(config.load, dir .. "/number.lua"))
    assert.are.equal(dir .. "/runtime.lua:2: attempt to index local 'x' (a nil value)\n  imported from " ..
      dir .. "/imports_bad.lua:2", err_of(config.load, dir .. "/imports_bad.lua"))
    assert.are.equal(dir .. "/imports_missing.lua:1: import: cannot open 'nope.lua' (resolved to " .. dir .. "/nope.lua)",
      err_of(config.load, dir .. "/imports_missing.lua"))
    assert.are.equal(dir .. "/cycle_a.lua: import cycle: " .. dir .. "/cycle_a.lua -> " .. dir .. "/cycle_b.lua -> " ..
      dir .. "/cycle_a.lua\n  imported from " .. dir .. "/cycle_b.lua:1\n  imported from " .. dir .. "/cycle_a.lua:1",
      err_of(config.load, dir .. "/cycle_a.lua"))
    assert.are.equal(dir .. "/nothing.lua: cannot open the config file", err_of(config.load, dir .. "/nothing.lua"))
    assert.are.equal(dir .. "/x.yaml: unknown config file type (expected .lua, .config, .pbtxt or .prototxt)",
      err_of(config.load, dir .. "/x.yaml"))
  end)

  it("stops a config that never finishes, naming the file and line it was running", function()
    local lua_config = require "mtl.config.lua_config"
    write(dir .. "/endless.lua", "local n = 0\nfor i = 1, 1e308 do n = n + i end\nreturn {}\n")
    write(dir .. "/imports_endless.lua", "local e = import('endless.lua')\nreturn e\n")
    write(dir .. "/busy.lua", "local s = 0\nfor i = 1, 100000 do s = s + i end\nreturn { n = s }\n")
    local budget = lua_config.instruction_budget
    lua_config.instruction_budget = 2e6 -- the default (1e8) takes a third of a second to run out
    local e1 = select(2, pcall(config.read, dir .. "/endless.lua"))
    local e2 = select(2, pcall(config.read, dir .. "/imports_endless.lua"))
    local ok, busy = pcall(config.read, dir .. "/busy.lua") -- ~400,000 instructions: within the budget
    local hook = debug.gethook()
    lua_config.instruction_budget = budget
    local msg = dir .. "/endless.lua:2: the config did not finish within 2000000 Lua instructions (an endless loop?)"
    assert.are.equal(msg, e1)
    assert.are.equal(msg .. "\n  imported from " .. dir .. "/imports_endless.lua:1", e2)
    assert(ok, busy)
    assert.are.equal(5000050000, busy.n)
    assert.is_nil(hook) -- the budget's hook is gone after the config ran
  end)

  it("merges deeply into a new table; lists are replaced whole", function()
    local a = { model = { name = "mmoe", expert = { 64, 32 }, tasks = { { name = "a" } } }, train = { steps = 1 } }
    local m = config.merge(a, { model = { expert = { 8 } }, train = { seed = 3 }, eval = { metrics = { "auc" } } })
    assert.are.same({ model = { name = "mmoe", expert = { 8 }, tasks = { { name = "a" } } }, train = { steps = 1, seed = 3 },
      eval = { metrics = { "auc" } } }, m)
    assert.are.same({ 64, 32 }, a.model.expert)
    assert.are.same({ x = { 1 } }, config.merge({ x = { 1 } }, { x = {} }) and config.merge({ x = { y = 1 } }, {}) and { x = { 1 } })
    assert.are.same({}, config.merge({ x = { 1, 2 } }, { x = {} }).x)
    assert.are.same({ y = 1 }, config.merge({ x = { y = 1 } }, { x = {} }).x)
  end)

  it("writes a config back as Lua that loads to the same table", function()
    local cfg = config.load(dir .. "/exp/wide.lua", { "optimizer.dense.lr=0.1", "train.epochs=inf" })
    write(dir .. "/written.lua", config.to_lua(cfg))
    assert.are.same(cfg, config.load(dir .. "/written.lua"))
    assert.is_truthy(config.to_lua({ x = 0.1 }):find("x = 0.1,", 1, true))
  end)
end)
