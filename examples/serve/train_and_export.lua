-- The setup step of the serving example (docs/serving.md): generates a small
-- e-commerce data set, trains an MMoE on it for two epochs and exports the
-- model directory (as `mtl export` does) that examples/serve/score_request.c
-- loads.
--
--   build/mtl examples/serve/train_and_export.lua [OUT_DIR]     (default /tmp/mtl-serve-example)
--
-- OUT_DIR/train.csv, OUT_DIR/test.csv   generated rows (header, 15 columns)
-- OUT_DIR/request.csv                   300 candidates for one user (no header)
-- OUT_DIR/model/                        the exported model
local mtl = require "mtl"
local train = require "mtl.train"
local export = require "mtl.export"
local sys = require "mtl.sys"

local out = arg and arg[1] or "/tmp/mtl-serve-example"
sys.mkdir_p(out)

-- ---- data: a hidden model makes clicks and purchases learnable --------------
local N_USERS, N_ITEMS, N_CATS, N_BRANDS, N_TAGS = 2000, 5000, 50, 300, 200
local DEVICES = { "ios", "android", "web", "tablet" }
math.randomseed(7)
local function normal() return math.sqrt(-2 * math.log(1 - math.random())) * math.cos(2 * math.pi * math.random()) end
local function factors() return { normal(), normal(), normal(), normal() } end
local users, items = {}, {}
for u = 1, N_USERS do users[u] = { f = factors(), tag = math.random(0, N_TAGS - 1), device = DEVICES[math.random(#DEVICES)] } end
for i = 1, N_ITEMS do
  items[i] = { f = factors(), cat = math.random(0, N_CATS - 1), brand = math.random(0, N_BRANDS - 1),
               price = math.exp(1 + 3 * math.random()), bias = 0.5 * normal() }
end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

local HEADER = "is_click,is_pay,user_id,item_id,category,brand,hour,device,tags,price,d1,d2,d3,d4"

local function row(u, i, labels)
  local U, I = users[u], items[i]
  local dot = 0
  for k = 1, 4 do dot = dot + U.f[k] * I.f[k] end
  local hour = math.random(0, 23)
  local tags = { U.tag, math.random(0, N_TAGS - 1) }
  local d = { normal(), normal(), dot + 0.5 * normal(), math.random() }
  local click = math.random() < sigmoid(0.8 * dot + I.bias - 1.5 + (hour >= 18 and 0.4 or 0))
  local pay = click and math.random() < sigmoid(1.0 - 0.5 * math.log(I.price) + 0.5 * dot)
  local fields = {}
  if labels then fields = { click and 1 or 0, pay and 1 or 0 } else fields = { "", "" } end
  local rest = { u - 1, i - 1, I.cat, I.brand, hour, U.device, table.concat(tags, "|"),
                 string.format("%.2f", I.price), string.format("%.4f", d[1]), string.format("%.4f", d[2]),
                 string.format("%.4f", d[3]), string.format("%.4f", d[4]) }
  for _, v in ipairs(rest) do fields[#fields + 1] = v end
  return table.concat(fields, ",")
end

local function write(path, n)
  local f = assert(io.open(path, "w"))
  f:write(HEADER, "\n")
  for _ = 1, n do f:write(row(math.random(N_USERS), math.random(N_ITEMS), true), "\n") end
  f:close()
end
local small = os.getenv("MTL_EXAMPLE_SMALL") -- CI: a smaller run
write(out .. "/train.csv", small and 4000 or 40000)
write(out .. "/test.csv", small and 1000 or 10000)
-- one request: 300 candidate items for user 17, labels left empty
local f = assert(io.open(out .. "/request.csv", "w"))
for _ = 1, 300 do f:write(row(17, math.random(N_ITEMS), false), "\n") end
f:close()

-- ---- the config: 7 embedded features (dim 16), log price, 4 z-scored numbers
local cfg = {
  data = {
    train = out .. "/train.csv", eval = out .. "/test.csv", labels = { "is_click", "is_pay" }, batch_size = 256,
    columns = {
      { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
      { name = "user_id", type = "int" }, { name = "item_id", type = "int" }, { name = "category", type = "int" },
      { name = "brand", type = "int" }, { name = "hour", type = "int" }, { name = "device", type = "string" },
      { name = "tags", type = "ids", separator = "|" }, { name = "price", type = "float" },
      { name = "d1", type = "float" }, { name = "d2", type = "float" }, { name = "d3", type = "float" },
      { name = "d4", type = "float" },
    },
  },
  features = {
    { name = "user_id", type = "id", column = "user_id", num_buckets = N_USERS, dim = 16 },
    { name = "item_id", type = "id", column = "item_id", num_buckets = N_ITEMS, dim = 16 },
    { name = "category", type = "id", column = "category", num_buckets = N_CATS, dim = 16 },
    { name = "brand", type = "id", column = "brand", num_buckets = N_BRANDS, dim = 16 },
    { name = "hour", type = "id", column = "hour", num_buckets = 24, dim = 16 },
    { name = "device", type = "id", column = "device", hash_bucket_size = 16, dim = 16 },
    { name = "tags", type = "tag", column = "tags", num_buckets = N_TAGS, dim = 16, combiner = "mean" },
    { name = "price", type = "raw", column = "price", normalize = "log1p" },
    { name = "d1", type = "raw", column = "d1", normalize = "zscore" },
    { name = "d2", type = "raw", column = "d2", normalize = "zscore" },
    { name = "d3", type = "raw", column = "d3", normalize = "zscore" },
    { name = "d4", type = "raw", column = "d4", normalize = "zscore" },
  },
  model = { name = "mmoe", experts = 4, expert = { 128, 64 }, tower = { 32 },
            tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } } },
  -- rank_score = pCTR * pCVR * log(price) (lua/mtl/rank.lua); pay is "click and pay"
  -- over all impressions, so pCVR = p_pay / p_click
  rank = { ctr = "click", cvr = "pay", price = "price", alpha = 1 },
  optimizer = { dense = { name = "adam", lr = 2e-3 } },
  train = { epochs = small and 1 or 2, log_every = 1000, seed = 1, threads = 1 },
}

local run = train.new(cfg, { quiet = true })
local metrics = run:fit()
print(string.format("trained %d steps: click auc %.4f, pay auc %.4f", run.step, metrics.click.auc, metrics.pay.auc))
export.write(run, cfg, out .. "/model", { step = run.step })
print("exported " .. out .. "/model")
