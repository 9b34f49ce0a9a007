-- mtl.samples: training samples of a detail-page recommender from its logs
-- (docs/features_engineering.md).
--
-- One row per impression (a recommended item shown on the page of a trigger
-- item): <is_pay, is_click, user_id, trigger_id, item_id, context features>.
--   is_click = 1 when a click on the same user and item follows the
--              impression within click_window seconds (0 <= t_click - t_imp),
--              and no later impression of that item to that user came first;
--   is_pay   = 1 when a purchase of the same user and item follows that click
--              within pay_window seconds (0 <= t_pay - t_click).
-- The attribution runs in C (mtl_samples_label): one sweep over the logs in
-- time order with hash maps keyed by (user, item).
--
--   local samples = require "mtl.samples"
--   local out = samples.build{impressions = "impressions.csv", events = "behaviour.csv",
--                             items = "items.csv", users = "users.csv", output = "samples.csv"}
local core = require "mtl.core"
local data = require "mtl.data"
local sys = require "mtl.sys"

local samples = {}

samples.CLICK_WINDOW = 1800 -- 30 minutes
samples.PAY_WINDOW = 86400  -- one day

-- The header fields of a CSV file.
local function header_of(path, fname)
  local f = io.open(path, "rb")
  if not f then error(string.format("%s: cannot open %s", fname, path), 3) end
  local line = f:read("*l") or ""
  f:close()
  line = line:gsub("\r$", "")
  local fields = {}
  for name in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = name end
  return fields
end

local function read(path, specs)
  local cols = {}
  for i, s in ipairs(specs) do cols[i] = { name = s[1], type = s[2] } end
  return data.read_all { files = path, header = true, unknown_columns = "skip", columns = cols }
end

-- samples.label{impressions = {time =, user =, item =}, events = {time =, user =, item =, event =},
--               click_window =, pay_window =, click = "click", pay = "purchase"}
-- -> is_click, is_pay, click_time (int64 tensors, one value per impression), report.
-- The event column holds the reader's ids of the event names (data.hash).
function samples.label(opts)
  local im, ev = opts.impressions, opts.events
  return core.samples_label {
    impressions = { time = im.time, user = im.user, item = im.item },
    events = { time = ev.time, user = ev.user, item = ev.item, type = ev.event },
    click_code = data.hash(opts.click or "click"), pay_code = data.hash(opts.pay or "purchase"),
    click_window = opts.click_window or samples.CLICK_WINDOW, pay_window = opts.pay_window or samples.PAY_WINDOW,
  }
end

-- Property columns of a table keyed by `key`, looked up for ids: returns a
-- list of {name, tensor} (0 for ids not in the table).
local function join(tbl, key, props, ids, prefix)
  local keys = tbl.columns[key]:values()
  local row = {}
  for r, id in ipairs(keys) do row[id] = r end
  local idv = ids:values()
  local out = {}
  for _, p in ipairs(props) do
    local src = tbl.columns[p[1]]:values()
    local dst = {}
    for j, id in ipairs(idv) do
      local r = row[id]
      dst[j] = r and src[r] or 0
    end
    out[#out + 1] = { (prefix or "") .. p[1], core.tensor(dst, p[2] == "float" and "float32" or "int64"), p[2] }
  end
  return out
end

-- samples.build(opts): reads the logs, labels every impression and writes the
-- samples file. opts:
--   impressions  CSV with timestamp, user_id, trigger_id, item_id and context
--                columns (every other header field, read as integers; by
--                default request_id, position, hour, device, location)
--   events       behaviour CSV: timestamp, user_id, item_id, event (names)
--   items        optional CSV: item_id plus item_columns (default category,
--                brand, shop as integers and price as a number), joined for the
--                item and, prefixed trigger_, for the trigger
--   users        optional CSV: user_id plus user_columns (default every other
--                header field, integers: age, gender, city)
--   output       the samples CSV to write (optional)
--   click_window, pay_window  seconds (defaults 1800 and 86400)
-- Returns {rows =, clicks =, pays =, columns = {{name, type}, ...}, timestamp =,
--          is_click =, is_pay =, report =}.
function samples.build(opts)
  local fname = "mtl.samples.build"
  if type(opts) ~= "table" or type(opts.impressions) ~= "string" or type(opts.events) ~= "string" then
    error(fname .. ": needs the file names 'impressions' and 'events'", 2)
  end
  local core_cols = { timestamp = true, user_id = true, trigger_id = true, item_id = true }
  local context = {}
  for _, name in ipairs(header_of(opts.impressions, fname)) do
    if not core_cols[name] and name ~= "" then context[#context + 1] = name end
  end
  local specs = { { "timestamp", "int64" }, { "user_id", "int64" }, { "trigger_id", "int64" }, { "item_id", "int64" } }
  for _, name in ipairs(context) do specs[#specs + 1] = { name, "int64" } end
  local imp = read(opts.impressions, specs).columns
  local ev = read(opts.events, { { "timestamp", "int64" }, { "user_id", "int64" }, { "item_id", "int64" },
                                 { "event", "string" } }).columns
  local is_click, is_pay, _, report = samples.label {
    impressions = { time = imp.timestamp, user = imp.user_id, item = imp.item_id },
    events = { time = ev.timestamp, user = ev.user_id, item = ev.item_id, event = ev.event },
    click_window = opts.click_window, pay_window = opts.pay_window,
  }
  local cols = {
    { "is_pay", is_pay, "int" }, { "is_click", is_click, "int" }, { "user_id", imp.user_id, "int" },
    { "trigger_id", imp.trigger_id, "int" }, { "item_id", imp.item_id, "int" }, { "timestamp", imp.timestamp, "int" },
  }
  for _, name in ipairs(context) do cols[#cols + 1] = { name, imp[name], "int" } end
  if opts.users then
    local props = {}
    for _, name in ipairs(opts.user_columns or header_of(opts.users, fname)) do
      if name ~= "user_id" and name ~= "" then props[#props + 1] = { name, "int64" } end
    end
    local spec = { { "user_id", "int64" } }
    for _, p in ipairs(props) do spec[#spec + 1] = p end
    for _, c in ipairs(join(read(opts.users, spec), "user_id", props, imp.user_id)) do
      cols[#cols + 1] = { c[1], c[2], "int" }
    end
  end
  if opts.items then
    local props = opts.item_columns or { { "category", "int64" }, { "brand", "int64" }, { "shop", "int64" }, { "price", "float" } }
    local spec = { { "item_id", "int64" } }
    for _, p in ipairs(props) do spec[#spec + 1] = p end
    local items = read(opts.items, spec)
    for _, who in ipairs({ { imp.item_id, "" }, { imp.trigger_id, "trigger_" } }) do
      for _, c in ipairs(join(items, "item_id", props, who[1], who[2])) do
        cols[#cols + 1] = { c[1], c[2], c[3] == "float" and "float" or "int" }
      end
    end
  end
  if opts.output then
    local w = {}
    for i, c in ipairs(cols) do w[i] = { c[1], c[2] } end
    sys.replace(opts.output, function(tmp) core.stats_write_csv(tmp, w, 7) end)
  end
  local columns = {}
  for i, c in ipairs(cols) do columns[i] = { c[1], c[3] } end
  local n = imp.timestamp:size(1)
  local clicks, pays = 0, 0
  if n > 0 then
    clicks = is_click:float():sum():item()
    pays = is_pay:float():sum():item()
  end
  return { rows = n, clicks = clicks, pays = pays, columns = columns, timestamp = imp.timestamp,
           is_click = is_click, is_pay = is_pay, report = report }
end

return samples
