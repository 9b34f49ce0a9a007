-- mtl.scenario: a seeded generator of an e-commerce detail-page recommender's
-- logs with a known ground truth (docs/features_engineering.md).
--
--   local scenario = require "mtl.scenario"
--   local world = scenario.generate{users = 500, items = 300, days = 7, impressions_per_day = 2000, seed = 1}
--   scenario.write(world, "logs")     -- items.csv users.csv impressions.csv behaviour.csv oracle.csv
--   scenario.default_dataset("data")  -- logs, samples with statistics, train/test split, schema
--
-- The hidden model. Users have a profile (age group, gender), a home city, a
-- main device, a taste vector (profile part + own part), a bias, a price
-- sensitivity and an activity level. Categories have a taste vector and a
-- price level; brands belong to one category (taste = category's + noise, a
-- quality); items have a brand (so a category), a shop, a price, a taste
-- vector (brand's + noise), a bias and a popularity. A user's session starts
-- on the detail page of an item (the trigger) and shows `slots` recommended
-- items (same category or brand as the trigger, or popular items). Each
-- shown item is clicked with
--   p_click = sigmoid(c0 + user bias + item bias + 0.7 <user, item>
--                     + 1.0 [same category as trigger] + 0.5 [same brand]
--                     + 0.6 <trigger, item> - 0.15 (position - 1)
--                     + hour effect + device effect)
-- and a click ends in a purchase with
--   p_cvr = sigmoid(d0 + 0.5 <user, item> + brand quality
--                   - price sensitivity * (log price - category's log price level)
--                   + 0.3 [same category] + device effect)
-- (<a, b> are scaled dot products of taste vectors). The oracle file holds
-- p_click and p_pay = p_click * p_cvr of every impression: the best any model
-- can predict. A click opens the clicked item's page: the session goes on
-- with it as the next trigger.
local core = require "mtl.core"
local sys = require "mtl.sys"

local scenario = {}

scenario.DEFAULTS = {
  users = 2000, items = 1000, categories = 20, brands = 100, shops = 200, locations = 20,
  days = 14, impressions_per_day = 5000, slots = 5, dim = 4, max_pages = 8, seed = 1,
  start_time = 1699920000, -- 2023-11-14 00:00:00 UTC; hours are counted from it
}
scenario.DEVICES = { "ios", "android", "web" } -- device codes 1, 2, 3
scenario.EVENTS = { "impression", "click", "favorite", "cart", "purchase" }
local IMPRESSION, CLICK, FAVORITE, CART, PURCHASE = 1, 2, 3, 4, 5
-- Delays in seconds: a click 2 s to 10 min after the impression, a purchase
-- 1 min to 12 h after the click (inside the default windows of samples.build).
scenario.MAX_CLICK_DELAY = 600
scenario.MAX_PAY_DELAY = 43200

-- scenario.rng(seed) -> {uniform =, normal =, int =}: MRG32k3a, the same
-- stream on every machine (lua/mtl/scenario_rng.lua).
scenario.rng = require "mtl.scenario_rng"

local function sigmoid(z) return 1 / (1 + math.exp(-z)) end

-- Cumulative weights; pick(cum, lo, hi, u) finds the index j in lo..hi whose
-- bucket holds u (u in [cum[lo-1], cum[hi])).
local function pick(cum, lo, hi, u)
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cum[mid] > u then hi = mid else lo = mid + 1 end
  end
  return lo
end

local function check_opts(opts)
  local o = {}
  for k, v in pairs(scenario.DEFAULTS) do o[k] = v end
  for k, v in pairs(opts or {}) do
    if scenario.DEFAULTS[k] == nil then error("mtl.scenario.generate: unknown option '" .. tostring(k) .. "'", 3) end
    o[k] = v
  end
  for k, v in pairs(o) do
    if type(v) ~= "number" or v ~= math.floor(v) or (v < 1 and k ~= "seed" and k ~= "start_time") then
      error(string.format("mtl.scenario.generate: option '%s' must be a whole number >= 1, got %s", k, tostring(v)), 3)
    end
  end
  if o.brands < o.categories then
    error(string.format("mtl.scenario.generate: brands (%d) must be >= categories (%d)", o.brands, o.categories), 3)
  end
  if o.slots >= o.items then
    error(string.format("mtl.scenario.generate: slots (%d) must be < items (%d)", o.slots, o.items), 3)
  end
  return o
end

local function dot(a, ai, b, bi, k)
  local s = 0
  for d = 0, k - 1 do s = s + a[ai + d] * b[bi + d] end
  return s
end

-- The hidden world: entity tables and parameters.
local function make_world(o, r)
  local k = o.dim
  local w = { opts = o, k = k }
  -- categories: taste, log-price level
  local cat_taste, cat_lp = {}, {}
  for g = 1, o.categories do
    for d = 0, k - 1 do cat_taste[(g - 1) * k + d + 1] = r.normal() end
    cat_lp[g] = 2.5 + 4 * r.uniform()
  end
  -- brands: a category each (every category has one), taste near it, a quality
  local brand_cat, brand_taste, brand_q = {}, {}, {}
  for b = 1, o.brands do
    local g = b <= o.categories and b or r.int(o.categories)
    brand_cat[b] = g
    for d = 0, k - 1 do brand_taste[(b - 1) * k + d + 1] = cat_taste[(g - 1) * k + d + 1] + 0.5 * r.normal() end
    brand_q[b] = 0.3 * r.normal()
  end
  -- items
  local n = o.items
  local item_brand, item_cat, item_shop, item_price, item_lp, item_taste, item_bias, item_pop = {}, {}, {}, {}, {}, {}, {}, {}
  for i = 1, n do
    local b = i <= o.brands and i or r.int(o.brands)
    local g = brand_cat[b]
    item_brand[i], item_cat[i], item_shop[i] = b, g, r.int(o.shops)
    local price = math.floor(math.exp(cat_lp[g] + 0.4 * r.normal()) * 100 + 0.5) / 100
    if price < 0.01 then price = 0.01 end
    item_price[i] = price
    item_lp[i] = math.log(price)
    for d = 0, k - 1 do item_taste[(i - 1) * k + d + 1] = brand_taste[(b - 1) * k + d + 1] + 0.7 * r.normal() end
    item_bias[i] = 0.5 * r.normal()
    item_pop[i] = math.exp(0.8 * r.normal() + item_bias[i])
  end
  -- users: profile, taste (profile part + own part), bias, price sensitivity, activity
  local profile_taste = {}
  for p = 1, 12 * k do profile_taste[p] = 0.7 * r.normal() end
  local u_age, u_gender, u_city, u_device, u_taste, u_bias, u_ps, u_act = {}, {}, {}, {}, {}, {}, {}, {}
  for u = 1, o.users do
    local age, gender = r.int(6), r.int(2)
    u_age[u], u_gender[u] = age, gender
    u_city[u] = r.int(o.locations)
    u_device[u] = r.int(3)
    local prof = ((age - 1) * 2 + gender - 1) * k
    for d = 0, k - 1 do u_taste[(u - 1) * k + d + 1] = profile_taste[prof + d + 1] + 0.7 * r.normal() end
    u_bias[u] = 0.4 * r.normal()
    u_ps[u] = 0.2 + r.uniform()
    u_act[u] = math.exp(0.8 * r.normal())
  end
  -- context effects
  local hour_weight, hour_effect = {}, {}
  for h = 0, 23 do
    hour_weight[h] = 0.3 + math.max(0, math.sin((h - 6) / 24 * 2 * math.pi)) + (h >= 19 and h <= 22 and 0.6 or 0)
    hour_effect[h] = 0.25 * math.sin((h - 9) / 24 * 2 * math.pi)
  end
  w.device_click = { 0.1, 0.0, -0.25 }
  w.device_pay = { 0.2, 0.0, -0.1 }
  w.hour_weight, w.hour_effect = hour_weight, hour_effect
  w.cat_lp, w.brand_q = cat_lp, brand_q
  w.item_brand, w.item_cat, w.item_shop, w.item_price, w.item_lp = item_brand, item_cat, item_shop, item_price, item_lp
  w.item_taste, w.item_bias, w.item_pop = item_taste, item_bias, item_pop
  w.u_age, w.u_gender, w.u_city, w.u_device = u_age, u_gender, u_city, u_device
  w.u_taste, w.u_bias, w.u_ps, w.u_act = u_taste, u_bias, u_ps, u_act
  return w
end

-- Sampling tables: items by popularity overall, within a category, within a brand.
local function make_samplers(w)
  local o = w.opts
  local function grouped(group_of, ngroups)
    local members = {}
    for g = 1, ngroups do members[g] = {} end
    for i = 1, o.items do
      local m = members[group_of[i]]
      m[#m + 1] = i
    end
    local order, cum, first, last = {}, {}, {}, {}
    local total = 0
    for g = 1, ngroups do
      first[g] = #order + 1
      local base = total
      for _, i in ipairs(members[g]) do
        order[#order + 1] = i
        base = base + w.item_pop[i]
        cum[#order] = base
      end
      last[g] = #order
      total = base
    end
    return { order = order, cum = cum, first = first, last = last }
  end
  local all = {}
  for i = 1, o.items do all[i] = 1 end
  w.by_all = grouped(all, 1)
  w.by_cat = grouped(w.item_cat, o.categories)
  w.by_brand = grouped(w.item_brand, o.brands)
  local ucum, total = {}, 0
  for u = 1, o.users do
    total = total + w.u_act[u]
    ucum[u] = total
  end
  w.user_cum = ucum
  local hcum = {}
  total = 0
  for h = 0, 23 do
    total = total + w.hour_weight[h]
    hcum[h + 1] = total
  end
  w.hour_cum = hcum
end

-- An item from group g of sampler s by popularity (nil if the group is empty).
local function draw_item(s, g, r)
  local lo, hi = s.first[g], s.last[g]
  if lo > hi then return nil end
  local base = lo > 1 and s.cum[lo - 1] or 0
  local u = base + r.uniform() * (s.cum[hi] - base)
  return s.order[pick(s.cum, lo, hi, u)]
end

-- scenario.generate(opts) -> world: the hidden parameters and the logs as
-- Lua arrays (world.impressions, world.events, world.items, world.users).
function scenario.generate(opts)
  local o = check_opts(opts)
  local r = scenario.rng(o.seed)
  local w = make_world(o, r)
  make_samplers(w)
  local k = o.dim
  local sk = 1 / math.sqrt(k)
  local u_taste, item_taste = w.u_taste, w.item_taste
  local item_cat, item_brand, item_lp, item_bias = w.item_cat, w.item_brand, w.item_lp, w.item_bias
  local uniform = r.uniform
  local log = math.log

  -- impressions (in generation order; sorted by time when written)
  local I = { page = {}, time = {}, user = {}, trigger = {}, item = {}, position = {}, hour = {}, device = {},
              location = {}, p_click = {}, p_pay = {}, clicked = {}, paid = {} }
  local E = { time = {}, user = {}, item = {}, trigger = {}, event = {} }
  local ni, ne, npages = 0, 0, 0
  local function event(t, u, i, trig, kind)
    ne = ne + 1
    E.time[ne], E.user[ne], E.item[ne], E.trigger[ne], E.event[ne] = t, u, i, trig, kind
  end

  local shown, busy = {}, {}
  for day = 0, o.days - 1 do
    local day_start = o.start_time + day * 86400
    local count = 0
    while count < o.impressions_per_day do
      local u = pick(w.user_cum, 1, o.users, uniform() * w.user_cum[o.users])
      local hour = pick(w.hour_cum, 1, 24, uniform() * w.hour_cum[24]) - 1
      local t = day_start + hour * 3600 + math.floor(uniform() * 3600)
      -- one session of a user at a time (so each click and purchase follows
      -- exactly the impression it belongs to)
      if busy[u] and t <= busy[u] then t = busy[u] + 60 + math.floor(uniform() * 600) end
      local device = uniform() < 0.75 and w.u_device[u] or r.int(3)
      local location = uniform() < 0.9 and w.u_city[u] or r.int(o.locations)
      local ub = (u - 1) * k
      -- the entry page: the best of three popular items for this user's taste
      local trigger, best = nil, -math.huge
      for _ = 1, 3 do
        local i = draw_item(w.by_all, 1, r)
        local a = dot(u_taste, ub + 1, item_taste, (i - 1) * k + 1, k)
        if a > best then trigger, best = i, a end
      end
      for _ = 1, o.max_pages do
        npages = npages + 1
        local tb = (trigger - 1) * k
        local tcat, tbrand = item_cat[trigger], item_brand[trigger]
        local hour_now = math.floor((t - o.start_time) % 86400 / 3600)
        local next_trigger, next_time = nil, nil
        for p = 1, o.slots do shown[p] = nil end
        for p = 1, o.slots do
          local i
          for _ = 1, 20 do
            local x = uniform()
            if x < 0.45 then
              i = draw_item(w.by_cat, tcat, r)
            elseif x < 0.6 then
              i = draw_item(w.by_brand, tbrand, r)
            else
              i = draw_item(w.by_all, 1, r)
            end
            local dup = i == nil or i == trigger
            for q = 1, p - 1 do
              if shown[q] == i then dup = true end
            end
            if not dup then break end
            i = nil
          end
          if i == nil then break end -- a tiny catalogue: fewer items on this page
          shown[p] = i
          local ib = (i - 1) * k
          local aff = dot(u_taste, ub + 1, item_taste, ib + 1, k) * sk
          local tri = dot(item_taste, tb + 1, item_taste, ib + 1, k) * sk * 0.5
          local same_cat = item_cat[i] == tcat and 1 or 0
          local same_brand = item_brand[i] == tbrand and 1 or 0
          local z = -5.2 + w.u_bias[u] + item_bias[i] + 0.7 * aff + 1.0 * same_cat + 0.5 * same_brand + 0.6 * tri
                    - 0.15 * (p - 1) + w.hour_effect[hour_now] + w.device_click[device]
          local pc = 1 / (1 + math.exp(-z))
          local y = -3.0 + 0.5 * aff + w.brand_q[item_brand[i]] - w.u_ps[u] * (item_lp[i] - w.cat_lp[item_cat[i]]) * 1.5
                    + 0.3 * same_cat + w.device_pay[device]
          local pv = 1 / (1 + math.exp(-y))
          ni = ni + 1
          I.page[ni], I.time[ni], I.user[ni], I.trigger[ni], I.item[ni] = npages, t, u, trigger, i
          I.position[ni], I.hour[ni], I.device[ni], I.location[ni] = p, hour_now, device, location
          I.p_click[ni], I.p_pay[ni] = pc, pc * pv
          event(t, u, i, trigger, IMPRESSION)
          local clicked, paid = uniform() < pc, false
          if clicked then
            paid = uniform() < pv
            local tc = t + 2 + math.min(scenario.MAX_CLICK_DELAY - 2, math.floor(-log(uniform()) * 30))
            event(tc, u, i, trigger, CLICK)
            if uniform() < (paid and 0.25 or 0.06) then event(tc + 5 + math.floor(uniform() * 120), u, i, trigger, FAVORITE) end
            if paid then
              local tp = tc + 60 + math.min(scenario.MAX_PAY_DELAY - 60, math.floor(-log(uniform()) * 3600))
              if uniform() < 0.7 then event(tc + 10 + math.floor(uniform() * (tp - tc - 10)), u, i, trigger, CART) end
              event(tp, u, i, trigger, PURCHASE)
            elseif uniform() < 0.12 then
              event(tc + 10 + math.floor(uniform() * 600), u, i, trigger, CART)
            end
            if not next_trigger then next_trigger = i end
            if not next_time or tc > next_time then next_time = tc end
          end
          I.clicked[ni], I.paid[ni] = clicked and 1 or 0, paid and 1 or 0
        end
        count = count + o.slots
        busy[u] = math.max(t, next_time or t)
        if not next_trigger or uniform() >= 0.8 then break end
        -- the next page: the first clicked item, after the page's last click
        trigger = next_trigger
        t = next_time + 1 + math.floor(uniform() * 5)
      end
    end
  end
  I.n, E.n = ni, ne
  w.impressions, w.events = I, E
  return w
end

-- ---- writing the logs ----------------------------------------------------------------
local function i64(t) return core.tensor(t, "int64") end
local function f32(t) return core.tensor(t) end

local function write(path, cols)
  sys.replace(path, function(tmp) core.stats_write_csv(tmp, cols, 6) end)
end

-- scenario.write(world, dir): dir/items.csv, users.csv, impressions.csv,
-- behaviour.csv (both sorted by time) and oracle.csv (row i: impression i's
-- p_click and p_pay). dir must exist. Returns the file names.
function scenario.write(w, dir)
  local o = w.opts
  local files = {
    items = dir .. "/items.csv", users = dir .. "/users.csv", impressions = dir .. "/impressions.csv",
    behaviour = dir .. "/behaviour.csv", oracle = dir .. "/oracle.csv",
  }
  local ids = {}
  for i = 1, o.items do ids[i] = i end
  write(files.items, { { "item_id", i64(ids) }, { "category", i64(w.item_cat) }, { "brand", i64(w.item_brand) },
    { "shop", i64(w.item_shop) }, { "price", f32(w.item_price) } })
  local uids = {}
  for u = 1, o.users do uids[u] = u end
  write(files.users, { { "user_id", i64(uids) }, { "age", i64(w.u_age) }, { "gender", i64(w.u_gender) },
    { "city", i64(w.u_city) } })

  -- impressions in time order; request ids numbered in that order
  local I = w.impressions
  local order = core.stats_order(i64(I.time))
  local function sorted(t) return t:index_select(1, order) end
  local page = sorted(i64(I.page)):values()
  local request, last, id = {}, nil, 0
  for j = 1, #page do
    if page[j] ~= last then id, last = id + 1, page[j] end
    request[j] = id
  end
  local req = i64(request)
  write(files.impressions, {
    { "request_id", req }, { "timestamp", sorted(i64(I.time)) }, { "user_id", sorted(i64(I.user)) },
    { "trigger_id", sorted(i64(I.trigger)) }, { "item_id", sorted(i64(I.item)) },
    { "position", sorted(i64(I.position)) }, { "hour", sorted(i64(I.hour)) },
    { "device", sorted(i64(I.device)) }, { "location", sorted(i64(I.location)) } })
  write(files.oracle, { { "request_id", req }, { "position", sorted(i64(I.position)) },
    { "p_click", sorted(f32(I.p_click)) }, { "p_pay", sorted(f32(I.p_pay)) } })

  local E = w.events
  local eorder = core.stats_order(i64(E.time))
  local function esorted(t) return i64(t):index_select(1, eorder) end
  write(files.behaviour, {
    { "timestamp", esorted(E.time) }, { "user_id", esorted(E.user) }, { "item_id", esorted(E.item) },
    { "event", esorted(E.event), labels = scenario.EVENTS }, { "trigger_id", esorted(E.trigger) } })
  return files
end

-- The default statistics of the dataset (docs/features_engineering.md).
scenario.STATS_FEATURES = {
  { object = "user", counts = { "impression", "click", "purchase" }, rates = { "ctr", "cvr" } },
  { object = "item", counts = { "impression", "click", "cart", "purchase" }, rates = { "ctr", "cvr" } },
  { object = { "user", "item" }, counts = { "impression", "click" } },
  { object = { "trigger", "item" }, counts = { "impression", "click" }, rates = { "ctr" } },
  { object = { "user", "item.category" }, counts = { "click", "purchase" }, rates = { "ctr" } },
  { object = { "user", "item.brand" }, counts = { "click" }, rates = { "ctr" } },
  { object = { "user", "item.shop" }, counts = { "click" } },
  { object = { "trigger.category", "item.category" }, rates = { "ctr" } },
  { object = { "trigger.brand", "item.brand" }, rates = { "ctr" } },
  { object = { "user.age", "item.category" }, rates = { "ctr" } },
  { rank = "item", within = "item.category", by = "click" },
}

local function lua_string(s) return string.format("%q", s) end

-- The schema file: columns, labels and a suggested feature config.
local function schema_source(columns, stat_names, opts)
  local lines = { "-- Generated by mtl.scenario.default_dataset: the columns of train.csv / test.csv and a",
                  "-- suggested feature config in the mtl config format (docs/features_engineering.md).",
                  "local columns = {" }
  for _, c in ipairs(columns) do
    lines[#lines + 1] = string.format("  { name = %s, type = %s },", lua_string(c[1]), lua_string((c[1] == "is_click" or c[1] == "is_pay") and "float" or c[2]))
  end
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "local features = {"
  local function id(name, column, buckets, extra)
    lines[#lines + 1] = string.format("  { name = %s, type = \"id\", column = %s, num_buckets = %d, dim = 16%s },",
      lua_string(name), lua_string(column), buckets, extra or "")
  end
  local o = opts
  id("user_id", "user_id", o.users + 1)
  id("item_id", "item_id", o.items + 1)
  id("trigger_id", "trigger_id", o.items + 1, ", shared = \"item_id\"")
  id("category", "category", o.categories + 1)
  id("trigger_category", "trigger_category", o.categories + 1, ", shared = \"category\"")
  id("brand", "brand", o.brands + 1)
  id("trigger_brand", "trigger_brand", o.brands + 1, ", shared = \"brand\"")
  id("shop", "shop", o.shops + 1)
  id("age", "age", 7)
  id("gender", "gender", 3)
  id("device", "device", 4)
  id("location", "location", o.locations + 1)
  id("hour", "hour", 24)
  id("position", "position", o.slots + 1)
  lines[#lines + 1] = "  { name = \"user_x_category\", type = \"combo\", columns = { \"user_id\", \"category\" }, hash_bucket_size = 100000, dim = 16 },"
  lines[#lines + 1] = "  { name = \"trigger_x_item\", type = \"combo\", columns = { \"trigger_id\", \"item_id\" }, hash_bucket_size = 200000, dim = 16 },"
  lines[#lines + 1] = "  { name = \"price\", type = \"raw\", column = \"price\", normalize = \"log1p\" },"
  lines[#lines + 1] = "  { name = \"trigger_price\", type = \"raw\", column = \"trigger_price\", normalize = \"log1p\" },"
  for _, name in ipairs(stat_names) do
    local rate = name:match("_ctr_") or name:match("_cvr_") or name:match("_rate_") or name:match("_ctcvr_")
    lines[#lines + 1] = string.format("  { name = %s, type = \"raw\", column = %s, normalize = %s },", lua_string(name),
      lua_string(name), rate and "\"zscore\"" or "\"log1p\"")
  end
  lines[#lines + 1] = "}"
  lines[#lines + 1] = "return {"
  lines[#lines + 1] = "  data = { columns = columns, labels = { \"is_click\", \"is_pay\" } },"
  lines[#lines + 1] = "  features = features,"
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

-- Copies lines [from, to] (1-based data lines) of a headed CSV to out.
local function split_lines(input, outputs)
  for _, o in ipairs(outputs) do
    sys.replace(o.path, function(tmp)
      local fin = assert(io.open(input, "rb"))
      local out = assert(io.open(tmp, "wb"))
      out:write(fin:read("*l"), "\n")
      local n = 0
      for line in fin:lines() do
        n = n + 1
        if n > o.to then break end
        if n >= o.from then out:write(line, "\n") end
      end
      fin:close()
      assert(out:close())
    end)
  end
end

-- scenario.default_dataset(dir, opts): the e-commerce data set mtl's main job
-- trains on. Writes dir/logs/* (scenario.write), dir/logs/samples.csv (all
-- samples with statistics), dir/train.csv, dir/test.csv (split by time: the
-- first warmup_days only feed the statistics; the last test_days are the test
-- set), dir/oracle_test.csv (p_click, p_pay of each test row) and
-- dir/schema.lua. opts: the generator's options (defaults below) plus
-- windows (days, default {1, 3, 7}), warmup_days (default the largest window),
-- test_days (default 2), click_window / pay_window (seconds), features
-- (statistics, default scenario.STATS_FEATURES), quiet.
-- Returns {files =, rows = {train =, test =}, world =}.
scenario.DATASET_DEFAULTS = {
  users = 5000, items = 2000, categories = 30, brands = 150, shops = 300, days = 21, impressions_per_day = 15000,
}
function scenario.default_dataset(dir, opts)
  if type(dir) ~= "string" then error("mtl.scenario.default_dataset: expected a directory name", 2) end
  opts = opts or {}
  local gen = {}
  for k, v in pairs(scenario.DATASET_DEFAULTS) do gen[k] = v end
  local extra = { windows = true, warmup_days = true, test_days = true, click_window = true, pay_window = true,
                  features = true, quiet = true }
  for k, v in pairs(opts) do
    if not extra[k] then gen[k] = v end
  end
  local windows = opts.windows or { 1, 3, 7 }
  local warmup = opts.warmup_days
  if warmup == nil then
    warmup = 0
    for _, x in ipairs(windows) do warmup = math.max(warmup, math.ceil(x)) end
  end
  local test_days = opts.test_days or 2
  local o = check_opts(gen)
  if warmup + test_days >= o.days then
    error(string.format("mtl.scenario.default_dataset: %d days leave no training days after %d warm-up and %d test days",
      o.days, warmup, test_days), 2)
  end
  local say = opts.quiet and function() end or function(...) io.stderr:write(string.format(...), "\n") end
  local clock = os.clock
  local t0 = clock()
  sys.mkdir_p(dir .. "/logs")
  local world = scenario.generate(gen)
  local files = scenario.write(world, dir .. "/logs")
  say("scenario: %d impressions, %d events (%.1f s)", world.impressions.n, world.events.n, clock() - t0)

  local samples = require "mtl.samples"
  local stats = require "mtl.stats"
  files.samples = dir .. "/logs/samples.csv"
  local built = samples.build {
    impressions = files.impressions, events = files.behaviour, items = files.items, users = files.users,
    output = files.samples, click_window = opts.click_window, pay_window = opts.pay_window,
  }
  say("samples: %d rows, %d clicks, %d purchases (%.1f s)", built.rows, built.clicks, built.pays, clock() - t0)
  local result = stats.compute_files {
    events = files.behaviour, samples = files.samples, items = files.items, users = files.users,
    item_columns = { "category", "brand", "shop" }, user_columns = { "age", "gender", "city" },
    output = files.samples, windows = windows, features = opts.features or scenario.STATS_FEATURES,
  }
  say("statistics: %d columns (%.1f s)", #result.names, clock() - t0)

  -- split by time: samples are in time order
  local times = built.timestamp:values()
  local train_from, test_from = #times + 1, #times + 1
  local train_start = o.start_time + warmup * 86400
  local test_start = o.start_time + (o.days - test_days) * 86400
  for j = #times, 1, -1 do
    if times[j] >= train_start then train_from = j end
    if times[j] >= test_start then test_from = j end
  end
  files.train, files.test = dir .. "/train.csv", dir .. "/test.csv"
  files.oracle_test, files.schema = dir .. "/oracle_test.csv", dir .. "/schema.lua"
  split_lines(files.samples, { { path = files.train, from = train_from, to = test_from - 1 },
                               { path = files.test, from = test_from, to = #times } })
  split_lines(files.oracle, { { path = files.oracle_test, from = test_from, to = #times } })
  local columns = {}
  for _, c in ipairs(built.columns) do columns[#columns + 1] = c end
  for _, name in ipairs(result.names) do columns[#columns + 1] = { name, "float" } end
  sys.write_atomic(files.schema, schema_source(columns, result.names, o))
  local rows = { train = test_from - train_from, test = #times - test_from + 1 }
  say("train %d rows, test %d rows -> %s (%.1f s)", rows.train, rows.test, dir, clock() - t0)
  return { files = files, rows = rows, world = world, stats = result.names }
end

-- The data folder of the examples: dir (or $MTL_DATA, or /tmp/mtl-ecommerce),
-- generated when it has no schema.lua yet. small (CI) makes a small scenario
-- in a fresh temporary folder. Returns the folder and whether it is temporary.
function scenario.example_data(dir, small)
  dir = dir or os.getenv("MTL_DATA")
  local temporary = false
  if not dir then
    if small then
      dir = os.tmpname()
      os.remove(dir)
      dir, temporary = dir .. ".d", true
    else
      dir = "/tmp/mtl-ecommerce"
    end
  end
  local f = io.open(dir .. "/schema.lua")
  if f then
    f:close()
    return dir, temporary
  end
  local r = scenario.default_dataset(dir, small and { users = 400, items = 300, categories = 8, brands = 30, shops = 40,
    days = 14, impressions_per_day = 2000 } or {})
  print(string.format("data: %s: %d training rows, %d test rows", dir, r.rows.train, r.rows.test))
  return dir, temporary
end

return scenario
