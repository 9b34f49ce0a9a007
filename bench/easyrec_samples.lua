-- Trains every EasyRec multi-task sample config (spec/fixtures/easyrec/samples)
-- on rows generated in its own schema (mtl.synth.rows) and prints the table of
-- docs/easyrec.md: each config's model, its tasks' test AUCs, or why mtl
-- refuses it. Each run changes only the input paths and the run's size.
--
--   build/mtl bench/easyrec_samples.lua [OUT_DIR [rows [steps [batch]]]]
--
-- Defaults: 10,000 training and 4,000 test rows, 300 steps of 512 rows, one
-- thread, seed 0 (the runs are deterministic).
local config = require "mtl.config"
local easyrec = require "mtl.config.easyrec"
local synth = require "mtl.synth"
local train = require "mtl.train"
local sys = require "mtl.sys"

local DIR = (os.getenv("MTL_HOME") or ".") .. "/spec/fixtures/easyrec/samples/"
local out = arg[1] or "/tmp/mtl_easyrec_samples"
local rows, steps, batch = tonumber(arg[2] or 10000), tonumber(arg[3] or 300), tonumber(arg[4] or 512)

local names = {}
for _, f in ipairs(sys.list_dir(DIR)) do
  local n = f:match("^(.*)%.config$")
  if n then names[#names + 1] = n end
end
table.sort(names)

-- "ctr 0.7123, cvr 0.6540" in the order of the config's tasks (ESMM: ctr, cvr, ctcvr).
local function aucs(cfg, m)
  local order = {}
  for _, t in ipairs(cfg.model.tasks or {}) do order[#order + 1] = t.name end
  if cfg.model.name == "esmm" then order = { cfg.model.ctr.name, cfg.model.cvr.name, "ctcvr" } end
  local parts = {}
  for _, n in ipairs(order) do
    if m[n] then parts[#parts + 1] = string.format("%s %.4f", n, m[n].auc) end
  end
  return table.concat(parts, ", ")
end

print("| config | model | test AUCs |")
print("|---|---|---|")
for _, name in ipairs(names) do
  local path = DIR .. name .. ".config"
  local ok, raw = pcall(easyrec.load, path)
  if not ok then
    local first = tostring(raw):match("^[^\n]*"):gsub("^.-%.config:%d+:%d+: ", "")
    print(string.format("| `%s` | refused | %s |", name, first))
  else
    local d = out .. "/" .. name
    sys.mkdir_p(d)
    synth.rows(raw, { path = d .. "/train.csv", rows = rows, seed = 1 })
    synth.rows(raw, { path = d .. "/test.csv", rows = math.floor(rows * 0.4), seed = 2 })
    local cfg = config.load(path, { "data.train=" .. d .. "/train.csv", "data.eval=" .. d .. "/test.csv",
      "data.batch_size=" .. batch, "train.steps=" .. steps, "train.log_every=100000", "train.checkpoint_every=false",
      "model_dir=" .. d .. "/run" })
    local t0 = sys.now()
    local m = train.new(cfg, { quiet = true }):fit()
    print(string.format("| `%s` | %s | %s |", name, cfg.model.name, aucs(cfg, m)))
    io.stderr:write(string.format("%s: %.1f s\n", name, sys.now() - t0))
    os.execute("rm -rf '" .. d .. "'")   -- the run's checkpoint is ~100 MB
  end
  io.stdout:flush()
end
