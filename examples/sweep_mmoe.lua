-- A sweep over MMoE's number of experts, learning rate and the pay task's
-- loss weight on the default e-commerce data set (docs/sweeps.md), two
-- worker processes, successive halving on training steps.
--   mtl examples/sweep_mmoe.lua [DATA_DIR]     (default /tmp/mtl-ecommerce)
-- With MTL_EXAMPLE_SMALL=1 (CI): a small data set, a 2 x 2 x 2 grid, few steps.
local mtl = require "mtl"
local scenario = require "mtl.scenario"

local small = os.getenv("MTL_EXAMPLE_SMALL") == "1"
local dir, temporary = scenario.example_data(arg and arg[1], small)

-- workers inherit the environment: the config finds the data through MTL_DATA
require("mtl.sys").setenv("MTL_DATA", dir)
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

local result = mtl.sweep{
  base = here .. "configs/ecommerce_mmoe.lua",
  name = "mmoe", dir = small and (dir .. "/sweep") or "runs/sweep_mmoe", workers = 2,
  metric = "eval.pay.auc", mode = "max",
  grid = {
    ["model.experts"] = small and { 2, 4 } or { 2, 4, 8 },
    ["optimizer.dense.lr"] = { 1e-3, 3e-3 },
    ["model.tasks.2.weight"] = small and { 1, 3 } or { 1, 2, 4 },
    ["train.eval_every"] = { 100000 }, -- evaluate once, at the end
  },
  halving = small and { min_steps = 10, eta = 2, max_steps = 20 } or { min_steps = 60, eta = 3, max_steps = 540 },
}
print(string.format("%d trials; best: %s = %.4f (trial %d); %s; %s", #result.trials, "eval.pay.auc",
  result.best.metric, result.best.id, result.best_config, result.plot))
if temporary then os.execute(string.format("rm -rf '%s'", dir)) end
