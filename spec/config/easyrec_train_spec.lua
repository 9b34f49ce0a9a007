-- The two shared EasyRec configs, mapped by mtl.config, train and evaluate with
-- mtl's trainer on generated rows of their 20-column schema (no header, as
-- CSVInput files are).
local config = require "mtl.config"
local train = require "mtl.train"

local shell = require "helpers.shell"

-- Rows of clk, buy, pid, adgroup_id, cate_id, campaign_id, customer, brand,
-- user_id, cms_segid, cms_group_id, final_gender_code, age_level, pvalue_level,
-- shopping_level, occupation, new_user_class_level, tag_category_list,
-- tag_brand_list, price. Clicks depend on the user and the category.
local function write_rows(path, n, seed)
  local s = seed
  local function rnd(k)
    s = (s * 1103515245 + 12345) % 2147483648
    return math.floor(s / 2147483648 * k)
  end
  local f = assert(io.open(path, "w"))
  for _ = 1, n do
    local user, cate = rnd(200), rnd(50)
    local clk = ((user + cate) % 3 == 0 or rnd(10) == 0) and 1 or 0
    local buy = (clk == 1 and rnd(3) == 0) and 1 or 0
    local tags = {}
    for k = 1, rnd(4) do tags[k] = "t" .. rnd(30) end
    f:write(table.concat({ clk, buy, rnd(3), "ad" .. rnd(500), "c" .. cate, rnd(300), rnd(100), "b" .. rnd(80),
      "u" .. user, rnd(10), rnd(10), rnd(2), rnd(7), rnd(4), rnd(4), rnd(2), rnd(5), table.concat(tags, "|"),
      "b" .. rnd(80) .. "|b" .. rnd(80), rnd(50) }, ","), "\n")
  end
  f:close()
end

describe("EasyRec configs train end to end #slow", function()
  local dir = shell.tmpdir()
  teardown(function() shell.rm_rf(dir) end)
  write_rows(dir .. "/train.csv", 600, 11)
  write_rows(dir .. "/test.csv", 200, 12)

  for _, name in ipairs({ "mmoe_on_taobao", "dbmtl_on_taobao" }) do
    it("trains and evaluates " .. name, function()
      local cfg = config.load("spec/fixtures/easyrec/" .. name .. ".config", {
        "data.train=" .. dir .. "/train.csv", "data.eval=" .. dir .. "/test.csv", "data.batch_size=100",
        "train.steps=12", "train.log_every=1000", "train.checkpoint_every=false", "model_dir=" .. dir .. "/" .. name,
      })
      local run = train.new(cfg, { quiet = true })
      assert.are.equal(17 * 16, run.features.output_dim) -- 17 embedded features of dim 16
      local metrics = run:fit()
      assert.are.equal(12, run.step)
      for _, task in ipairs({ "ctr", "cvr" }) do
        local m = metrics[task]
        assert.are.equal(200, m.count)
        assert.is_true(m.auc >= 0 and m.auc <= 1, task)
        assert.is_true(m.logloss > 0 and m.logloss < 10, task)
      end
    end)
  end
end)
