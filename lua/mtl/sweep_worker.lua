-- One sweep trial, run as its own process by mtl.sweep:
--   mtl lua/mtl/sweep_worker.lua STORE SWEEP TRIAL_ID STEPS THREADS
-- Loads the sweep's base config and the trial's overrides from the store,
-- trains (continuing from the trial's checkpoint when successive halving
-- promoted it to more steps), and writes status, metric and timings back.
local json = require "cjson"
local sweep = require "mtl.sweep"
local train = require "mtl.train"
local sys = require "mtl.sys"

local store, name, id, steps, threads = arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
local db = sweep.connect(store)
local function q(s) return "'" .. db.con:escape(tostring(s)) .. "'" end
local function one(sql)
  local cur = assert(db.con:execute(sql))
  local r = cur:fetch({}, "a")
  cur:close()
  return r
end
local function update(sets)
  for _ = 1, 200 do
    if db.con:execute(string.format("UPDATE trials SET %s WHERE sweep = %s AND id = %d", sets, q(name), id)) then return end
    os.execute("sleep 0.05")
  end
end

local spec = json.decode(one("SELECT spec FROM sweeps WHERE name = " .. q(name)).spec)
local trial = one(string.format("SELECT overrides, seed, runs FROM trials WHERE sweep = %s AND id = %d", q(name), id))
local cfg = spec.base
for k, v in pairs(json.decode(trial.overrides)) do sweep.set_path(cfg, k, v) end
cfg.train = cfg.train or {}
cfg.train.threads = threads
cfg.train.seed = tonumber(trial.seed)
if steps and steps > 0 then cfg.train.steps = steps end
local dir = store:match("^(.*)/[^/]*$") or "."
cfg.model_dir = string.format("%s/trial-%d", dir, id)
-- the trial's config beside its metrics, for `mtl report` (settings side by side)
local ok_lua, src = pcall(require("mtl.export").to_lua, cfg, "-- The config of this sweep trial.\n")
if ok_lua then pcall(function() sys.mkdir_p(cfg.model_dir); sys.write_atomic(cfg.model_dir .. "/config.lua", src) end) end

local t0 = sys.now()
local ok, err = pcall(function()
  local run = train.new(cfg, { quiet = true, resume = steps and steps > 0 })
  local final = run:fit()
  local metric = run:metric_value(final, spec.metric)
  update(string.format("status = 'done', metric = %.17g, metrics = %s, steps = %d, finished = %f, seconds = %f, runs = runs + 1",
    metric, q(json.encode(run:plain(final))), run.step, sys.time(), sys.now() - t0))
end)
if not ok then
  update(string.format("status = 'failed', error = %s, finished = %f", q(tostring(err)), sys.time()))
  io.stderr:write("trial ", id, " failed: ", tostring(err), "\n")
  os.exit(1, true)
end
