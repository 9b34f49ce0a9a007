-- mtl.ranker (docs/training.md, "The ranker"): a model rebuilt from a saved
-- state without the training loop scores exactly as the trained one; what it
-- reads (labels), writes (outputs) and lists (gates); its errors.
local mtl = require "mtl"
local ranker = require "mtl.ranker"
local train = require "mtl.train"
local losses = require "mtl.losses"
local tiny = require "cli.tiny"
local check = require "helpers.check"

local function config(dir, model)
  local cfg = dofile(tiny.write_config(dir))
  cfg.model_dir = nil
  cfg.train = { epochs = 1, seed = 5, log_every = 1000 }
  if model then cfg.model = model end
  return cfg
end

local TASKS = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } }

-- Each output's probabilities on the first batch of file, in eval mode, as hex floats.
local function scores(model, file)
  local r = model:reader(file, 60)
  local batch = r:next()
  r:close()
  model:eval()
  local out = mtl.no_grad(function() return model(batch) end)
  model:train()
  local res = {}
  for _, name in ipairs(model:outputs()) do
    local parts = {}
    for i, v in ipairs(out[name].prob:values()) do parts[i] = string.format("%a", v) end
    res[name] = table.concat(parts, " ")
  end
  return res
end

describe("mtl.ranker", function()
  local dir
  setup(function()
    dir = tiny.data_dir(300, 7, 120, 99)
  end)
  teardown(function() tiny.rm(dir) end)

  it("load rebuilds a trained model from a run checkpoint or an export: the same scores, bit for bit", function()
    local cfg = config(dir)
    local run = train.new(cfg, { quiet = true })
    run:fit()
    local want = scores(run.model, dir .. "/test.csv")
    local from_run = ranker.load(cfg, run:checkpoint_state())
    assert.are.same(want, scores(from_run, dir .. "/test.csv"))
    require("mtl.export").write(run.model, cfg, dir .. "/model")
    local from_export = ranker.load(cfg, mtl.load(dir .. "/model/model.ckpt"))
    assert.are.same(want, scores(from_export, dir .. "/test.csv"))
    -- and evaluates as the run does
    assert.are.same(run:plain(run:evaluate(dir .. "/test.csv")), mtl.metrics.plain(from_export:evaluate(dir .. "/test.csv")))
  end)

  it("load reads no data; build fits the transforms on data.train", function()
    local cfg = config(dir)
    local state = train.new(cfg, { quiet = true }):checkpoint_state()
    cfg.data.train = dir .. "/moved-away.csv"
    local model = ranker.load(cfg, state)
    assert.are.equal(4 + 4 + 2, model.features.output_dim)
    check.assert_error("mtl.data: cannot open '" .. cfg.data.train .. "': No such file or directory", ranker.build, cfg)
  end)

  it("load names the state's file in its errors when told it", function()
    local cfg = config(dir)
    local state = train.new(cfg, { quiet = true }):checkpoint_state()
    local name
    for k in pairs(state.model) do if k:match("tower_click.*weight$") then name = k end end
    local shape = table.concat(state.model[name]:shape(), ",")
    state.model[name] = mtl.zeros(3, 3)
    local msg = string.format("load_state_dict: entry '%s' has shape [3,3], the module expects [%s]", name, shape)
    check.assert_error("x/model.ckpt: " .. msg, ranker.load, cfg, state, "x/model.ckpt")
    check.assert_error(msg, ranker.load, cfg, state)
  end)

  it("lists its labels once each, loss spec first; computes the spec's loss", function()
    local cfg = config(dir)
    cfg.losses = { { name = "click", output = "click", label = "is_click", sample_weight = "price" },
                   { name = "pay", output = "pay", label = "is_pay", mask = "is_click" } }
    local model = ranker.build(cfg)
    assert.are.same({ "is_click", "price", "is_pay" }, model:label_names())
    local r = model:reader(dir .. "/train.csv", 50)
    local batch = r:next()
    r:close()
    local out = model(batch)
    local labels = ranker.labels(batch, model:label_names())
    local total, per = model:loss(out, labels, 0)
    local want, want_per = losses.compute(out, labels, cfg.losses, { step = 0 })
    assert.are.equal(want:item(), total:item())
    assert.are.equal(want_per.pay:item(), per.pay:item())
    check.assert_error("ranker: label column 'weight' is not in the data", ranker.labels, batch, { "weight" })
  end)

  it("adds the model's auxiliary loss (soft sharing)", function()
    local cfg = config(dir, { name = "shared_bottom", sharing = "soft", soft_weight = 0.5, bottom = { 8 }, tower = { 4 }, tasks = TASKS })
    local model = ranker.build(cfg)
    local r = model:reader(dir .. "/train.csv", 50)
    local batch = r:next()
    r:close()
    local out = model(batch)
    local labels = ranker.labels(batch, model:label_names())
    local base = losses.compute(out, labels, model.loss_spec, { step = 0 })
    local aux = model.body:aux_loss()
    assert.is_true(aux:item() > 0)
    assert.are.equal((base + aux):item(), model:loss(out, labels, 0):item())
  end)

  it("names its outputs: the tasks', then what evaluation adds (ESMM's ctcvr)", function()
    local esmm = ranker.build(config(dir, { name = "esmm", tower = { 4 } }))
    assert.are.same({ "ctr", "cvr", "ctcvr" }, esmm:outputs())
    assert.are.same({ "is_click", "is_pay" }, esmm:label_names())
    assert.are.same({ "click", "pay" }, ranker.build(config(dir)):outputs())
  end)

  it("lists the gates of MMoE, PLE and none of shared-bottom", function()
    local mmoe = ranker.build(config(dir))
    local g = ranker.gates(mmoe.body)
    assert.are.equal(2, #g)
    assert.are.same({ "click", "pay" }, { g[1].task, g[2].task })
    assert.are.same({ "expert 1", "expert 2", "expert 3" }, g[1].experts)
    assert.is_nil(g[1].level)
    local ple = ranker.build(config(dir, { name = "ple", levels = 2, specific = 1, shared = 2, expert = { 4 }, tower = { 4 },
                                           tasks = TASKS }))
    g = ranker.gates(ple.body)
    assert.are.equal(4, #g)
    assert.are.same({ "click", 2 }, { g[3].task, g[3].level })
    assert.are.same({ "click 1", "shared 1", "shared 2" }, g[3].experts)
    local sb = ranker.build(config(dir, { name = "shared_bottom", bottom = { 8 }, tower = { 4 }, tasks = TASKS }))
    assert.are.same({}, ranker.gates(sb.body))
  end)

  it("of: a Ranker, or a training run's", function()
    local run = train.new(config(dir), { quiet = true })
    assert.are.equal(run.model, ranker.of(run))
    assert.are.equal(run.model, ranker.of(run.model))
    check.assert_error("ranker: expected a Ranker (mtl.ranker.load) or a training run, got table",
      require("mtl.predict").file, {}, {}, {})
  end)
end)
