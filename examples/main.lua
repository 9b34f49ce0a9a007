-- The README's main job: generate the default e-commerce data set (a seeded
-- detail-page recommender scenario with statistics features; docs/
-- features_engineering.md), train an MMoE on it with `mtl train`, and print
-- per-task AUCs and the path of the training report.
--   mtl examples/main.lua [DATA_DIR]      (default /tmp/mtl-ecommerce)
-- With MTL_EXAMPLE_SMALL=1 (CI) the scenario is small and lives in a
-- temporary folder.
local scenario = require "mtl.scenario"
local cli = require "mtl.cli"

local small = os.getenv("MTL_EXAMPLE_SMALL") == "1"
local dir, temporary = scenario.example_data(arg and arg[1], small)

-- the config reads the data folder from $MTL_DATA
require("mtl.sys").setenv("MTL_DATA", dir)
local run_dir = small and (dir .. "/run") or "runs/ecommerce_mmoe"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rc = cli.main("train", { here .. "configs/ecommerce_mmoe.lua", "--fresh", "--model-dir", run_dir })
if temporary then os.execute(string.format("rm -rf '%s'", dir)) end
os.exit(rc, true)
