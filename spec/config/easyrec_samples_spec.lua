-- EasyRec's own multi-task sample configs (spec/fixtures/easyrec/samples)
-- train end to end: each is mapped unchanged but for its input paths and the
-- run's size, on rows generated in its schema (mtl.synth.rows), and reports
-- an AUC per task; the ones mtl cannot run are refused with a clear message.
local config = require "mtl.config"
local easyrec = require "mtl.config.easyrec"
local synth = require "mtl.synth"
local train = require "mtl.train"
local sys = require "mtl.sys"

local DIR = "spec/fixtures/easyrec/samples/"

-- Samples mtl refuses, and the start of the first line of the message.
local REFUSED = {
  dbmtl_cmbf_on_movielens = "dbmtl_cmbf_on_movielens.config:183:5: unsupported field 'feature_config.features[12].raw_i",
  dbmtl_uniter_on_movielens = "dbmtl_uniter_on_movielens.config:183:5: unsupported field 'feature_config.features[12].raw",
  mmoe_census_income = "mmoe_census_income.config:1:1: unsupported field 'hive_train_input': mtl reads files: expo",
}

local names = {}
for _, f in ipairs(sys.list_dir(DIR)) do
  local name = f:match("^(.*)%.config$")
  if name then names[#names + 1] = name end
end
table.sort(names)

describe("EasyRec's sample configs #slow", function()
  local shell = require "helpers.shell"
  local dir = shell.tmpdir()
  teardown(function() shell.rm_rf(dir) end)   -- each run's checkpoint is ~100 MB

  it("are all here (every multi-task sample of EasyRec's samples/model_config, and census-income)", function()
    assert.are.equal(42, #names)
  end)

  for _, name in ipairs(names) do
    local path = DIR .. name .. ".config"
    if REFUSED[name] then
      it("refuses " .. name .. " with a clear message", function()
        local ok, err = pcall(config.load, path)
        assert.is_false(ok)
        local first = tostring(err):match("^[^\n]*"):gsub("^" .. DIR:gsub("%p", "%%%0"), "")
        assert.are.equal(REFUSED[name], first:sub(1, #REFUSED[name]))
      end)
    else
      it("trains " .. name, function()
        local raw = easyrec.load(path)
        local d = dir .. "/" .. name
        sys.mkdir_p(d)
        synth.rows(raw, { path = d .. "/train.csv", rows = 300, seed = 1 })
        synth.rows(raw, { path = d .. "/test.csv", rows = 200, seed = 2 })
        local cfg = config.load(path, { "data.train=" .. d .. "/train.csv", "data.eval=" .. d .. "/test.csv",
          "data.batch_size=64", "train.steps=4", "train.log_every=1000", "train.checkpoint_every=false",
          "model_dir=" .. d .. "/model" })
        local metrics = train.new(cfg, { quiet = true }):fit()
        local tasks = 0
        for _, t in ipairs(cfg.model.tasks or { cfg.model.ctr, cfg.model.cvr }) do
          local m = metrics[t.name]
          assert.is_truthy(m, t.name)
          assert.are.equal(200, m.count)
          assert.is_true(m.auc >= 0 and m.auc <= 1, t.name)
          tasks = tasks + 1
        end
        assert.is_true(tasks >= 2)
      end)
    end
  end
end)
