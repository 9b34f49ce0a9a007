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
local dir = arg and arg[1] or os.getenv("MTL_DATA")
if not dir then
  if small then
    dir = os.tmpname()
    os.remove(dir)
    dir = dir .. ".d"
  else
    dir = "/tmp/mtl-ecommerce"
  end
end

local f = io.open(dir .. "/schema.lua")
if f then
  f:close()
  print("data: " .. dir .. " (already generated)")
else
  local opts = small and { users = 400, items = 300, categories = 8, brands = 30, shops = 40, days = 14,
                           impressions_per_day = 2000 } or {}
  local r = scenario.default_dataset(dir, opts)
  print(string.format("data: %s: %d training rows, %d test rows", dir, r.rows.train, r.rows.test))
end

-- the config reads the data folder from $MTL_DATA
local ffi = require "ffi"
ffi.cdef "int setenv(const char *name, const char *value, int overwrite);"
ffi.C.setenv("MTL_DATA", dir, 1)
local run_dir = small and (dir .. "/run") or "runs/ecommerce_mmoe"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local rc = cli.main("train", { here .. "configs/ecommerce_mmoe.lua", "--fresh", "--model-dir", run_dir })
if small then os.execute(string.format("rm -rf '%s'", dir)) end
os.exit(rc, true)
