-- The benchmark's workload (bench/SPEC.md sections 1-3) as an mtl config:
-- 14 sparse fields embedded with dim 16 (ids used directly as rows, tags
-- mean-pooled), 8 z-scored dense columns, two tasks (click, pay).
-- This file returns a function of the model name; bench_<model>.lua are the
-- configs (mtl train examples/configs/bench_ple.lua).
-- Data: bench/gen_synth.py writes /tmp/mtlbench/{train,test}.csv
-- ($MTL_BENCH_DATA overrides the folder).
local dir = os.getenv("MTL_BENCH_DATA") or "/tmp/mtlbench"
local cards = { 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000 }

local columns = {
  { name = "is_click", type = "float" }, { name = "is_pay", type = "float" },
  { name = "user_id", type = "int" }, { name = "item_id", type = "int" }, { name = "trigger_id", type = "int" },
}
local features = {
  { name = "user_id", type = "id", column = "user_id", num_buckets = 100000, dim = 16 },
  { name = "item_id", type = "id", column = "item_id", num_buckets = 200000, dim = 16 },
  { name = "trigger_id", type = "id", column = "trigger_id", num_buckets = 200000, dim = 16 },
}
for i, card in ipairs(cards) do
  columns[#columns + 1] = { name = "c" .. i, type = "int" }
  features[#features + 1] = { name = "c" .. i, type = "id", column = "c" .. i, num_buckets = card, dim = 16 }
end
columns[#columns + 1] = { name = "tags", type = "ids", separator = "|" }
features[#features + 1] = { name = "tags", type = "tag", column = "tags", num_buckets = 10000, dim = 16, combiner = "mean" }
for i = 1, 8 do
  columns[#columns + 1] = { name = "d" .. i, type = "float" }
  features[#features + 1] = { name = "d" .. i, type = "raw", column = "d" .. i, normalize = "zscore" }
end

-- SPEC.md section 3: each model's sizes are its file's `bench.spec` (models/<name>.lua)
return function(name)
  local cls = require("mtl.models").get(name)
  if not (cls.bench and cls.bench.spec) then error("bench config: model '" .. tostring(name) .. "' has no benchmark settings") end
  local model = require("mtl.config.util").deep_copy(cls.bench.spec)
  model.name = name
  model.tasks = model.tasks or { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } }

  return {
    data = { train = dir .. "/train.csv", eval = dir .. "/test.csv", columns = columns,
             labels = { "is_click", "is_pay" }, batch_size = 1024 },
    features = features,
    model = model,
    optimizer = { dense = { name = "adam", lr = 1e-3 }, sparse = { name = "adam", lr = 1e-3 } },
    train = { epochs = 1, log_every = 50, seed = 0, threads = 1 },
    eval = { metrics = { "auc" } },
    model_dir = os.getenv("MTL_RUN_DIR") or ("/tmp/mtl-runs/bench-" .. name),
  }
end
