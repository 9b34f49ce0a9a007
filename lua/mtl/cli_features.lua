-- `mtl features ...`: the feature engineering commands (docs/features_engineering.md).
--   mtl features dataset DIR [--users N ...]      logs, samples with statistics, train/test split, schema
--   mtl features logs DIR [--users N ...]         only the scenario's logs
--   mtl features samples --impressions F --events F [--items F] [--users F] --output F
--   mtl features stats --events F --samples F [--items F] [--users F] --output F [--config SPEC.lua]
-- run(args) takes the words after "features" and returns the exit code:
-- 0 success, 1 a failure while running, 2 a wrong command line.
local argparse = require "argparse"
local sys = require "mtl.sys"

local M = {}

local GENERATOR_OPTIONS = { "users", "items", "categories", "brands", "shops", "locations", "days",
                            "impressions_per_day", "slots", "dim", "max_pages", "seed", "start_time" }

local function whole(s)
  local n = tonumber(s)
  if not n or n ~= math.floor(n) then return nil, string.format("expected a whole number, got '%s'", s) end
  return n
end

local function windows_list(s)
  local out = {}
  for w in tostring(s):gmatch("[^,]+") do
    local n = tonumber(w)
    if not n or n <= 0 then return nil, string.format("expected positive numbers separated by commas, got '%s'", s) end
    out[#out + 1] = n
  end
  if #out == 0 then return nil, "expected at least one window" end
  return out
end

local function generator_options(p)
  for _, k in ipairs(GENERATOR_OPTIONS) do
    p:option("--" .. k:gsub("_", "-"), "the scenario's " .. k:gsub("_", " ")):convert(whole):argname("N")
  end
end

local function parser()
  local p = argparse("mtl features", "Feature engineering for the detail-page scenario: generated logs, samples, "
    .. "statistics features (docs/features_engineering.md).", "Exit codes: 0 success, 1 a failure while running, "
    .. "2 a wrong command line.")
  p:help_max_width(100)
  p:command_target("command")
  local d = p:command("dataset", "generate the default data set: DIR/train.csv, test.csv, oracle_test.csv, schema.lua, logs/")
  d:argument("dir", "the output directory")
  generator_options(d)
  d:option("--windows", "statistics windows in days, comma-separated (default 1,3,7)"):convert(windows_list)
  d:option("--warmup-days", "days that only feed the statistics (default: the largest window)"):convert(whole)
  d:option("--test-days", "last days that form the test set (default 2)"):convert(whole)
  d:flag("--quiet", "no progress lines")
  local l = p:command("logs", "generate the scenario's logs: DIR/items.csv, users.csv, impressions.csv, behaviour.csv, oracle.csv")
  l:argument("dir", "the output directory")
  generator_options(l)
  local s = p:command("samples", "label impressions: <is_pay, is_click, user_id, trigger_id, item_id, context...>")
  s:option("--impressions", "the impression log (CSV)"):args(1):count(1)
  s:option("--events", "the behaviour log (CSV)"):args(1):count(1)
  s:option("--items", "the item table (CSV), joined for the item and the trigger")
  s:option("--users", "the user table (CSV), joined for the user")
  s:option("--output", "the samples CSV to write"):args(1):count(1)
  s:option("--click-window", "seconds from an impression to its click (default 1800)"):convert(whole)
  s:option("--pay-window", "seconds from a click to its purchase (default 86400)"):convert(whole)
  local t = p:command("stats", "append statistics features (counts, rates, ranks as of each sample's time) to a samples CSV")
  t:option("--events", "the behaviour log (CSV)"):args(1):count(1)
  t:option("--samples", "the samples (CSV with timestamp, user_id, item_id, trigger_id)"):args(1):count(1)
  t:option("--items", "the item table (CSV: item_id, category, brand, shop)")
  t:option("--users", "the user table (CSV: user_id and profile columns)")
  t:option("--output", "the CSV to write (the samples plus one column per statistic)"):args(1):count(1)
  t:option("--config", "a Lua file returning {windows =, unit =, features =, rates =} (default: the scenario's statistics)")
  t:option("--windows", "windows in days, comma-separated (default 1,3,7)"):convert(windows_list)
  return p
end

local exists = sys.exists

local Usage = {}
local function usage(fmt, ...) error(setmetatable({ msg = string.format(fmt, ...) }, Usage), 0) end

local function run_command(a)
  local scenario = require "mtl.scenario"
  local gen = {}
  for _, k in ipairs(GENERATOR_OPTIONS) do gen[k] = a[k] end
  if a.command == "dataset" then
    gen.windows, gen.warmup_days, gen.test_days, gen.quiet = a.windows, a.warmup_days, a.test_days, a.quiet
    local r = scenario.default_dataset(a.dir, gen)
    io.stdout:write(string.format("%s: train %d rows, test %d rows, %d statistics\n", a.dir, r.rows.train, r.rows.test,
      #r.stats))
  elseif a.command == "logs" then
    sys.mkdir_p(a.dir)
    local w = scenario.generate(gen)
    scenario.write(w, a.dir)
    io.stdout:write(string.format("%s: %d impressions, %d events\n", a.dir, w.impressions.n, w.events.n))
  elseif a.command == "samples" then
    for _, k in ipairs({ "impressions", "events", "items", "users" }) do
      if a[k] and not exists(a[k]) then usage("--%s: cannot open %s", k, a[k]) end
    end
    local r = require("mtl.samples").build {
      impressions = a.impressions, events = a.events, items = a.items, users = a.users, output = a.output,
      click_window = a.click_window, pay_window = a.pay_window,
    }
    io.stdout:write(string.format("%s: %d rows, %d clicks, %d purchases\n", a.output, r.rows, r.clicks, r.pays))
  elseif a.command == "stats" then
    for _, k in ipairs({ "events", "samples", "items", "users", "config" }) do
      if a[k] and not exists(a[k]) then usage("--%s: cannot open %s", k, a[k]) end
    end
    local spec = {}
    if a.config then
      local chunk, err = require("mtl.config.util").loadfile(a.config)
      if not chunk then error(err, 0) end
      spec = chunk()
      if type(spec) ~= "table" then error(a.config .. ": expected the file to return a table", 0) end
    end
    local r = require("mtl.stats").compute_files {
      events = a.events, samples = a.samples, items = a.items, users = a.users, output = a.output,
      windows = a.windows or spec.windows or { 1, 3, 7 }, unit = spec.unit, rates = spec.rates,
      features = spec.features or scenario.STATS_FEATURES, item_columns = spec.item_columns,
      user_columns = spec.user_columns or (a.users and { "age", "gender", "city" }) or nil,
    }
    io.stdout:write(string.format("%s: %d statistics\n", a.output, #r.names))
  end
  return 0
end

-- run(args): args are the words after `mtl features`; returns the exit code.
function M.run(args)
  local p = parser()
  local ok, a = p:pparse(args or {})
  if not ok then
    io.stderr:write(string.format("mtl features: %s\n%s\n", a, p:get_usage()))
    return 2
  end
  local okr, rc = pcall(run_command, a)
  if okr then return rc end
  if getmetatable(rc) == Usage then
    io.stderr:write(string.format("mtl features: %s\n", rc.msg))
    return 2
  end
  -- the message without the Lua position of the raising call (it names the caller's line)
  local msg = tostring(rc):gsub("^[^:\n]+%.lua:%d+: ", "")
  io.stderr:write(string.format("mtl features: %s\n", msg))
  return 1
end

return M
