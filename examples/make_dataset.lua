-- Generates the default e-commerce data set (docs/features_engineering.md):
--   mtl examples/make_dataset.lua [DIR]          (default DIR: /tmp/mtl-ecommerce)
-- writes DIR/train.csv, DIR/test.csv, DIR/oracle_test.csv, DIR/schema.lua and
-- DIR/logs/*, then prints what the best possible model (the generator's own
-- probabilities) and single statistics features score on the test set.
-- With MTL_EXAMPLE_SMALL=1 (CI) the scenario is small.
local mtl = require "mtl"
local scenario = require "mtl.scenario"

local dir = arg and arg[1] or "/tmp/mtl-ecommerce"
local opts = {}
if os.getenv("MTL_EXAMPLE_SMALL") then
  if not (arg and arg[1]) then
    local tmp = os.tmpname() -- a fresh name; the directory goes beside it
    os.remove(tmp)
    dir = tmp .. ".d"
  end
  opts = { users = 400, items = 300, categories = 8, brands = 30, shops = 40, days = 14, impressions_per_day = 2000 }
end

local t0 = os.time()
local r = scenario.default_dataset(dir, opts)
print(string.format("%s: train %d rows, test %d rows, %d statistics columns (%d s)", dir, r.rows.train, r.rows.test,
  #r.stats, os.time() - t0))

-- the test labels, the oracle and a few statistics columns
local schema = dofile(dir .. "/schema.lua")
local wanted = { is_click = true, is_pay = true, item_ctr_7d = true, user_x_item_category_ctr_7d = true,
                 trigger_x_item_ctr_7d = true, item_click_rank_in_item_category_7d = true }
local columns = {}
for _, c in ipairs(schema.data.columns) do
  if wanted[c.name] then columns[#columns + 1] = { name = c.name, type = "float" } end
end
local test = mtl.data.read_all { files = dir .. "/test.csv", header = true, unknown_columns = "skip", columns = columns }.columns
local oracle = mtl.data.read_all { files = dir .. "/oracle_test.csv", header = true, unknown_columns = "skip",
  columns = { { name = "p_click", type = "float" }, { name = "p_pay", type = "float" } } }.columns

local auc = mtl.metrics.auc
local clicks = test.is_click:sum():item()
print(string.format("test click rate %.4f (oracle mean %.4f), pay rate %.4f (oracle mean %.4f)",
  clicks / r.rows.test, oracle.p_click:mean():item(), test.is_pay:sum():item() / r.rows.test, oracle.p_pay:mean():item()))
print(string.format("oracle AUC: click %.4f, pay %.4f (no model can do better on average)",
  auc(oracle.p_click, test.is_click), auc(oracle.p_pay, test.is_pay)))
for _, name in ipairs({ "item_ctr_7d", "user_x_item_category_ctr_7d", "trigger_x_item_ctr_7d" }) do
  print(string.format("click AUC of %s alone: %.4f", name, auc(test[name], test.is_click)))
end
-- rank 1 is the most clicked item of its category: a smaller rank, a likelier click
print(string.format("click AUC of -item_click_rank_in_item_category_7d: %.4f",
  auc(-test.item_click_rank_in_item_category_7d, test.is_click)))
print("train with: the config in " .. dir .. "/schema.lua (data.columns, features) plus a model")

if os.getenv("MTL_EXAMPLE_SMALL") and not (arg and arg[1]) then os.execute("rm -rf '" .. dir .. "'") end
