-- mtl.stats: statistics features of behaviour logs (docs/features_engineering.md).
--
-- For each sample (time, user, item, trigger) and each statistic: counts of an
-- event type, smoothed rates and ranks for an object (user, item, <user,item>,
-- <trigger,item>, <user, item.category>, <trigger.brand, item.brand>, ...) over
-- windows before the sample. An event at time e counts for a sample at time t
-- when t - W <= e < t: never the sample's own second, never anything later.
-- The counting is C (runtime/src/stats.c): one sorted sweep, O(events + samples)
-- hash operations per object and window.
--
--   local out = stats.compute{
--     events  = {time =, user =, item =, trigger =, event =},   -- int64 tensors
--     items   = {id =, category =, brand =, shop =},            -- int64 tensors
--     samples = {time =, user =, item =, trigger =},
--     windows = {1, 7}, unit = 86400,                           -- days
--     features = {
--       {object = "user", counts = {"click"}, rates = {"ctr"}},
--       {object = {"trigger.category", "item.category"}, rates = {"ctr"}},
--       {rank = "item", within = "item.category", by = "click"},
--     },
--   }
--   -- out.names = {"user_click_1d", ...}; out.values: float [samples, #names]
local core = require "mtl.core"
local data = require "mtl.data"
local sys = require "mtl.sys"

local stats = {}

-- The event types of the scenario, in this order (types are strings in the
-- logs; their ids are the reader's string hashes).
stats.EVENT_TYPES = { "impression", "click", "favorite", "cart", "purchase" }

-- Rates: numerator / denominator event types and the default prior, so a rate
-- is (k + alpha) / (n + alpha + beta); with no events it is the prior mean
-- alpha / (alpha + beta).
stats.RATES = {
  ctr = { num = "click", den = "impression", alpha = 1, beta = 19 },            -- prior mean 5 %
  cart_rate = { num = "cart", den = "click", alpha = 1, beta = 4 },             -- 20 %
  favorite_rate = { num = "favorite", den = "click", alpha = 1, beta = 9 },     -- 10 %
  cvr = { num = "purchase", den = "click", alpha = 1, beta = 9 },               -- 10 %
  ctcvr = { num = "purchase", den = "impression", alpha = 1, beta = 199 },      -- 0.5 %
}

stats.WINDOWS = { 1, 3, 7, 14, 30 }
-- The id that marks a missing value in int64 columns (INT64_MIN; in Lua
-- lists write false instead).
stats.MISSING = -2 ^ 63
stats.DAY = 86400

local function fail(fmt, ...) error("mtl.stats.compute: " .. string.format(fmt, ...), 3) end

local function as_list(x)
  if type(x) == "table" then return x end
  return { x }
end

local function window_label(w, unit)
  local suffix = unit == 86400 and "d" or unit == 3600 and "h" or unit == 60 and "m" or unit == 1 and "s" or "u"
  return string.format("%g%s", w, suffix)
end

-- "user" / "item" / "trigger" / "item.category" / "trigger.brand" / "user.age"
-- -> the C field ({"item_prop", k}) given the property lists.
local function parse_field(f, user_props, item_props)
  if f == "user" or f == "item" or f == "trigger" then return f end
  local who, prop = tostring(f):match("^(%a+)%.([%w_]+)$")
  if who == "user" then
    local k = user_props[prop]
    if not k then fail("field '%s': the user table has no column '%s'", f, prop) end
    return { "user_prop", k }
  elseif who == "item" or who == "trigger" then
    local k = item_props[prop]
    if not k then fail("field '%s': the item table has no column '%s'", f, prop) end
    return { who .. "_prop", k }
  end
  fail("unknown field '%s' (expected user, item, trigger, user.<column>, item.<column> or trigger.<column>)", tostring(f))
end

local function object_name(fields)
  local parts = {}
  for i, f in ipairs(fields) do parts[i] = f:gsub("%.", "_") end
  return table.concat(parts, "_x_")
end

-- A table {id =, <prop> =, ...} -> {id =, props = {...}}, {prop = index}, {names}
local function entity_table(t, what)
  if t == nil then return nil, {}, {} end
  if type(t) ~= "table" or t.id == nil then fail("%s must be a table of int64 tensors with an 'id' column", what) end
  local names = {}
  for k in pairs(t) do
    if k ~= "id" then names[#names + 1] = k end
  end
  table.sort(names)
  local props, index = {}, {}
  for i, k in ipairs(names) do
    props[i] = t[k]
    index[k] = i
  end
  return { id = t.id, props = props }, index, names
end

-- A column as a contiguous tensor (the C binding checks it is int64); in a
-- Lua list, false marks a missing id (an event off any detail page has no
-- trigger).
local function int64(x)
  if type(x) == "table" then
    local vals, missing = {}, {}
    for i = 1, #x do
      if x[i] == false then
        vals[i] = 0
        missing[#missing + 1] = i
      else
        vals[i] = x[i]
      end
    end
    local t = core.tensor(vals, "int64")
    for _, i in ipairs(missing) do t:set_flat(i, stats.MISSING) end
    return t
  end
  if getmetatable(x) == core.Tensor_mt then return x:contiguous() end
  return x
end

-- The C option tables for a list of feature specs; returns opts, names.
function stats.plan(opts)
  local unit = opts.unit or stats.DAY
  local windows = opts.windows or stats.WINDOWS
  local event_types = opts.event_types or stats.EVENT_TYPES
  local type_index = {}
  for i, e in ipairs(event_types) do type_index[e] = i end
  local rates = {}
  for k, v in pairs(stats.RATES) do rates[k] = v end
  for k, v in pairs(opts.rates or {}) do rates[k] = v end
  local window_index = {}
  for i, w in ipairs(windows) do
    -- a number of units; the C core checks the length in seconds
    if type(w) ~= "number" then fail("window %d must be a number of units (unit = %g s), got %s", i, unit, type(w)) end
    window_index[w] = i
  end
  local users, user_props = entity_table(opts.users, "users")
  local items, item_props = entity_table(opts.items, "items")

  local objects, object_index, specs, names = {}, {}, {}, {}
  local function object(fields)
    fields = as_list(fields)
    local key = table.concat(fields, ",")
    if not object_index[key] then
      local c = {}
      for i, f in ipairs(fields) do c[i] = parse_field(f, user_props, item_props) end
      objects[#objects + 1] = c
      object_index[key] = #objects
    end
    return object_index[key], object_name(fields)
  end
  local function event(e, where)
    local k = type_index[e]
    if not k then fail("%s: unknown event type '%s'", where, tostring(e)) end
    return k
  end
  local seen = {}
  local function add(name, spec)
    if seen[name] then fail("two statistics are named '%s'", name) end
    seen[name] = true
    names[#names + 1] = name
    specs[#specs + 1] = spec
  end
  for fi, f in ipairs(opts.features or {}) do
    local where = "features[" .. fi .. "]"
    local ws = f.windows or windows
    for _, w in ipairs(ws) do
      if not window_index[w] then fail("%s: window %s is not in windows", where, tostring(w)) end
    end
    if f.rank then
      local e, g = object(f.rank)
      local gi, gname = object(f.within or fail("%s: a rank needs 'within' (the group, e.g. item.category)", where))
      local by = f.by or "click"
      local k = event(by, where)
      for _, w in ipairs(ws) do
        add(string.format("%s%s_%s_rank_in_%s_%s", f.prefix or "", g, by, gname, window_label(w, unit)),
          { kind = "rank", object = e, group = gi, window = window_index[w], event = k })
      end
    else
      if f.object == nil then fail("%s: needs 'object' (or 'rank')", where) end
      local oi, oname = object(f.object)
      oname = f.name or oname
      for _, w in ipairs(ws) do
        local wl = window_label(w, unit)
        for _, e in ipairs(f.counts or {}) do
          add(string.format("%s_%s_%s", oname, e, wl), { kind = "count", object = oi, window = window_index[w], event = event(e, where) })
        end
        for _, r in ipairs(f.rates or {}) do
          local def = type(r) == "table" and r or rates[r]
          if not def then fail("%s: unknown rate '%s'", where, tostring(r)) end
          local rname = type(r) == "table" and (r.name or fail("%s: a rate table needs a name", where)) or r
          local prior = f.prior or {}
          add(string.format("%s_%s_%s", oname, rname, wl), {
            kind = "rate", object = oi, window = window_index[w], event = event(def.num, where),
            denominator = event(def.den, where), alpha = prior.alpha or def.alpha or 0, beta = prior.beta or def.beta or 0,
          })
        end
      end
    end
  end
  local seconds = {}
  for i, w in ipairs(windows) do seconds[i] = w * unit end
  local codes = opts.event_codes
  if codes == nil then
    codes = data.hash(event_types)
  else
    codes = int64(codes)
  end
  return {
    type_codes = codes, windows = seconds, objects = objects, specs = specs, users = users, items = items,
  }, names
end

-- stats.compute(opts) -> {names =, values = float [samples, #names], report =}
-- opts: events, samples (tables of int64 tensors or Lua lists), items, users
-- (id plus property columns), windows (default 1/3/7/14/30), unit (seconds
-- per window unit, default a day), features, rates (more rate definitions),
-- event_types (default stats.EVENT_TYPES), event_codes (the values of the
-- events' `event` column; default the string hashes of event_types).
function stats.compute(opts)
  if type(opts) ~= "table" then fail("expected a table of options, got %s", type(opts)) end
  if type(opts.events) ~= "table" then fail("option 'events' must be a table of columns") end
  if type(opts.samples) ~= "table" then fail("option 'samples' must be a table of columns") end
  local c, names = stats.plan(opts)
  local ev, sm = opts.events, opts.samples
  c.events = { time = int64(ev.time), user = int64(ev.user), item = int64(ev.item), trigger = int64(ev.trigger),
               type = int64(ev.event) }
  c.samples = { time = int64(sm.time), user = int64(sm.user), item = int64(sm.item), trigger = int64(sm.trigger) }
  for _, t in ipairs({ c.users or false, c.items or false }) do
    if t then
      t.id = int64(t.id)
      for i, p in ipairs(t.props) do t.props[i] = int64(p) end
    end
  end
  c.cache_bytes_max = opts.cache_bytes_max
  local values, report = core.stats_compute(c)
  return { names = names, values = values, report = report }
end

-- ---- files -------------------------------------------------------------------------
-- Default column names of the logs (docs/features_engineering.md).
stats.COLUMNS = { time = "timestamp", user = "user_id", item = "item_id", trigger = "trigger_id", event = "event" }
local NONE = "-9223372036854775808" -- a missing trigger (MTL_STATS_NONE)

local function read_columns(file, specs)
  local cols = {}
  for i, s in ipairs(specs) do cols[i] = { name = s[1], type = s[2], default = s[3] } end
  return data.read_all { files = file, header = true, unknown_columns = "skip", columns = cols }.columns
end

-- Reads the logs a stats run needs from CSV files (with headers).
-- opts: events, samples, items, users (paths), item_columns / user_columns
-- (property columns to read; strings and numbers both work: values are
-- compared, read as strings), id_type ("int64" or "string"), columns (names
-- of the time/user/item/trigger/event columns).
function stats.read_logs(opts)
  local names = {}
  for k, v in pairs(stats.COLUMNS) do names[k] = v end
  for k, v in pairs(opts.columns or {}) do names[k] = v end
  local id = opts.id_type or "int64"
  local ev = read_columns(opts.events, {
    { names.time, "int64" }, { names.user, id }, { names.item, id }, { names.trigger, id, id == "int64" and NONE or "" },
    { names.event, "string" } })
  local events = { time = ev[names.time], user = ev[names.user], item = ev[names.item], trigger = ev[names.trigger],
                   event = ev[names.event] }
  if id == "string" then -- an empty trigger field is missing, not the id of ""
    local empty, t = data.hash(""):item(), events.trigger
    local v = t:values()
    for i = 1, #v do
      if v[i] == empty then t:set_flat(i, stats.MISSING) end
    end
  end
  local sm = read_columns(opts.samples, { { names.time, "int64" }, { names.user, id }, { names.item, id },
    { names.trigger, id, id == "int64" and NONE or "" } })
  local samples = { time = sm[names.time], user = sm[names.user], item = sm[names.item], trigger = sm[names.trigger] }
  local function table_of(file, id_column, props)
    if not file then return nil end
    local specs = { { id_column, id } }
    for _, p in ipairs(props) do specs[#specs + 1] = { p, "string" } end
    local t = read_columns(file, specs)
    local out = { id = t[id_column] }
    for _, p in ipairs(props) do out[p] = t[p] end
    return out
  end
  local items = table_of(opts.items, names.item, opts.item_columns or { "category", "brand", "shop" })
  local users = table_of(opts.users, names.user, opts.user_columns or {})
  return { events = events, samples = samples, items = items, users = users }
end

-- stats.compute_files{events =, samples =, items =, users =, output =, features =, ...}:
-- reads the CSV logs, computes the statistics and writes `output`: the samples
-- file with one column per statistic appended (output may be the samples file).
-- Returns the result of stats.compute.
function stats.compute_files(opts)
  if type(opts) ~= "table" or type(opts.events) ~= "string" or type(opts.samples) ~= "string" then
    error("mtl.stats.compute_files: needs the file names 'events' and 'samples'", 2)
  end
  local logs = stats.read_logs(opts)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.events, o.samples, o.items, o.users = logs.events, logs.samples, logs.items, logs.users
  local out = stats.compute(o)
  if opts.output then stats.append_csv(opts.samples, opts.output, out, opts.digits) end
  return out
end

-- Appends the columns of a stats.compute result to a CSV file, row by row,
-- into output (which may be the input: a temporary file replaces it at the end).
function stats.append_csv(input, output, result, digits)
  local cols = {}
  for j, name in ipairs(result.names) do cols[j] = { name, result.values, j } end
  sys.replace(output, function(tmp) core.stats_append_csv(input, tmp, cols, digits or 6) end)
end

return stats
