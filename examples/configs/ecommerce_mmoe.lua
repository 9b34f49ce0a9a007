-- The default e-commerce data set (mtl.scenario.default_dataset; generate it
-- with `mtl examples/make_dataset.lua`) and an MMoE over its suggested
-- features: user, item, trigger and context ids, crosses, and the
-- statistics features (windowed counts, rates, ranks).
--   mtl train examples/configs/ecommerce_mmoe.lua
-- $MTL_DATA names the data folder (default /tmp/mtl-ecommerce).
local dir = os.getenv("MTL_DATA") or "/tmp/mtl-ecommerce"
local schema = dofile(dir .. "/schema.lua")

local data = schema.data
data.train, data.eval = dir .. "/train.csv", dir .. "/test.csv"
data.batch_size = 512
data.shuffle_buffer = 20000

return {
  data = data,
  features = schema.features,
  model = {
    name = "mmoe", experts = 4, expert = { 128, 64 }, tower = { 32 },
    tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } },
  },
  optimizer = { dense = { name = "adam", lr = 1e-3 }, sparse = { name = "adam", lr = 3e-3 } },
  train = { epochs = 1, eval_every = 200, log_every = 50, seed = 0, threads = 1 },
  eval = { gauc = { group = "user_id", reduction = "mean" } },
  model_dir = os.getenv("MTL_RUN_DIR") or "runs/ecommerce_mmoe",
}
