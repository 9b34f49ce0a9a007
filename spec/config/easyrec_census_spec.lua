-- EasyRec's census-income MMoE sample as docs/easyrec.md runs it
-- (examples/easyrec/mmoe_census_income.config): the sample with CSV input in
-- place of Hive and a real run's size, nothing else changed; it trains on a
-- slice of the UCI census-income (KDD) file in the sample's schema
-- (tools/census_csv.lua made spec/fixtures/data/census).
local config = require "mtl.config"
local train = require "mtl.train"

local SAMPLE = "spec/fixtures/easyrec/samples/mmoe_census_income.config"
local EXAMPLE = "examples/easyrec/mmoe_census_income.config"

local function lines(path)
  local out = {}
  for l in io.lines(path) do out[#out + 1] = l end
  return out
end

describe("the census-income sample", function()
  it("differs from EasyRec's only in its input and its run's size", function()
    local a, b = lines(SAMPLE), lines(EXAMPLE)
    local removed, added = {}, {}
    local in_b = {}
    for _, l in ipairs(b) do in_b[l] = (in_b[l] or 0) + 1 end
    for _, l in ipairs(a) do
      if (in_b[l] or 0) > 0 then in_b[l] = in_b[l] - 1 else removed[#removed + 1] = l end
    end
    local in_a = {}
    for _, l in ipairs(a) do in_a[l] = (in_a[l] or 0) + 1 end
    for _, l in ipairs(b) do
      if (in_a[l] or 0) > 0 then in_a[l] = in_a[l] - 1 else added[#added + 1] = l end
    end
    table.sort(added)
    assert.are.same({ '  batch_size: 1024', '  input_type: CSVInput', '  num_epochs: 100', '  num_steps: 2000',
                      'eval_input_path: "data/census/test.csv"', 'train_input_path: "data/census/train.csv"' }, added)
    for _, l in ipairs(removed) do
      assert.is_truthy(l:match("^hive_") or l:match("^  host") or l:match("^  username") or l:match("^  table_name")
        or l:match("^  limit_num") or l:match("^  fetch_size") or l == "}" or l:match("num_steps: 25")
        or l:match("batch_size: 10$") or l:match("num_epochs: 1$") or l:match("HiveInput"), l)
    end
  end)

  it("trains on a slice of the census data and reports both tasks' AUCs", function()
    local cfg = config.load(EXAMPLE, { "data.train=spec/fixtures/data/census/train.csv",
      "data.eval=spec/fixtures/data/census/test.csv", "data.batch_size=64", "train.steps=5", "train.log_every=1000",
      "train.checkpoint_every=false" })
    assert.are.equal(42, #cfg.data.columns)
    assert.are.equal(40 * 9, require("mtl.features").new(cfg.features, cfg.data):build().output_dim)
    local m = train.new(cfg, { quiet = true }):fit()
    for _, t in ipairs({ "task1", "task2" }) do
      assert.are.equal(100, m[t].count)
      assert.is_true(m[t].auc >= 0 and m[t].auc <= 1)
    end
  end)
end)
