-- Every real sample file (spec/fixtures/data, from ../shared/data) read
-- through a feature config and trained for a few steps: the mtl config's data
-- and features sections work on each format.
local mtl = require "mtl"
local train = require "mtl.train"

local FIX = "spec/fixtures/data/"

local function ali_ccp()
  local columns = { { name = "click", type = "float" }, { name = "purchase", type = "float" } }
  local features = {}
  for _, f in ipairs { "101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210",
    "216", "508", "509", "702", "853", "301", "109_14", "110_14", "127_14", "150_14" } do
    columns[#columns + 1] = { name = f, type = "int" }
    features[#features + 1] = { name = "f" .. f, type = "id", column = f, hash_bucket_size = 1000, dim = 4 }
  end
  for _, f in ipairs { "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853" } do
    columns[#columns + 1] = { name = f, type = "float" }
    features[#features + 1] = { name = f, type = "raw", column = f, normalize = "zscore" }
  end
  return {
    data = { train = FIX .. "ali_ccp_train_sample.csv", eval = FIX .. "ali_ccp_val_sample.csv", columns = columns,
             labels = { "click", "purchase" }, batch_size = 32 },
    features = features,
    model = { name = "esmm", tower = { 16, 8 }, ctr = { name = "ctr", label = "click" }, cvr = { name = "cvr", label = "purchase" } },
  }
end

local function aliexpress(train_file, test_file)
  local columns = { { name = "search_id", type = "int" } }
  local features = {}
  for k = 1, 16 do
    columns[#columns + 1] = { name = "categorical_" .. k, type = "int" }
    features[#features + 1] = { name = "cat" .. k, type = "id", column = "categorical_" .. k, hash_bucket_size = 500, dim = 4 }
  end
  for k = 1, 63 do
    columns[#columns + 1] = { name = "numerical_" .. k, type = "float" }
    features[#features + 1] = { name = "num" .. k, type = "raw", column = "numerical_" .. k,
                                normalize = (k % 2 == 0) and "zscore" or "minmax" }
  end
  columns[#columns + 1] = { name = "click", type = "float" }
  columns[#columns + 1] = { name = "conversion", type = "float" }
  return {
    data = { train = FIX .. train_file, eval = FIX .. test_file, columns = columns, labels = { "click", "conversion" },
             batch_size = 25 },
    features = features,
    model = { name = "ple", levels = 2, specific = 1, shared = 1, expert = { 8 }, tower = { 8 },
              tasks = { { name = "ctr", label = "click" }, { name = "cvr", label = "conversion" } } },
  }
end

local function fieldfeat()
  local fields = { "101", "121", "122", "124", "125", "126", "127", "128", "129", "205", "206", "207", "210", "216",
                   "301", "508", "509", "702", "853", "109_14", "110_14", "127_14", "150_14" }
  local features = {}
  for _, f in ipairs(fields) do
    features[#features + 1] = { name = "f" .. f, type = "tag", column = f, hash_bucket_size = 2000, dim = 4, combiner = "mean" }
  end
  return {
    data = { train = FIX .. "ali-ccp-fieldfeat/train.txt", eval = FIX .. "ali-ccp-fieldfeat/test.txt",
             columns = { { name = "sample_id", type = "int" }, { name = "click", type = "float" }, { name = "purchase", type = "float" } },
             fields = fields, labels = { "click", "purchase" }, batch_size = 4 },
    features = features,
    model = { name = "mmoe", experts = 2, expert = { 8 }, tower = { 4 },
              tasks = { { name = "ctr", label = "click" }, { name = "ctcvr", label = "purchase" } } },
  }
end

local cases = {
  { "ali-ccp CSV (ESMM)", ali_ccp },
  { "aliexpress CSV (PLE)", function() return aliexpress("aliexpress_train_sample.csv", "aliexpress_test_sample.csv") end },
  { "tiny_mtl CSV (PLE)", function() return aliexpress("tiny_train.csv", "tiny_test.csv") end },
  { "ali-ccp field:feature_id rows (MMoE)", fieldfeat },
}

describe("sample data with feature configs", function()
  for _, case in ipairs(cases) do
    it("trains and evaluates on " .. case[1], function()
      local cfg = case[2]()
      cfg.train = { steps = 6, seed = 1, log_every = 1000 }
      cfg.optimizer = { dense = { name = "adam", lr = 0.01 } }
      local run = train.new(cfg, { quiet = true })
      local losses = {}
      for batch in run:reader(cfg.data.train, nil, false):batches() do
        losses[#losses + 1] = run:train_step(batch)
      end
      for _, l in ipairs(losses) do assert.is_true(l == l and l > 0, "finite positive loss") end
      local m = run:evaluate()
      for _, t in ipairs(run.model:eval_targets()) do
        local r = m[t.name]
        assert.is_true(r.count > 0)
        assert.is_true(r.logloss > 0 and r.logloss < 5, t.name .. " logloss " .. r.logloss)
      end
      -- every eval file has clicks and non-clicks: the click AUC is defined
      local ctr = m[run.model:eval_targets()[1].name].auc
      assert.is_true(ctr >= 0 and ctr <= 1, "click auc " .. tostring(ctr))
    end)
  end
end)
