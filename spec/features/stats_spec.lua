-- mtl.stats: windowed counts, smoothed rates and ranks as of each sample's
-- time, checked against hand-computed values and a brute-force reference.
local mtl = require "mtl"
local stats = require "mtl.stats"
local check = require "helpers.check"
local shell = require "helpers.shell"

local TYPES = { "impression", "click", "favorite", "cart", "purchase" }
local CODE = {}
for i, e in ipairs(TYPES) do CODE[e] = i end

-- the item and user tables of the hand-made logs
local ITEMS = { id = { 1, 2, 3, 4, 5 }, category = { 7, 7, 7, 8, 8 }, brand = { 1, 1, 2, 3, 3 }, shop = { 5, 6, 5, 6, 5 } }
local USERS = { id = { 100, 200, 300 }, age = { 2, 2, 3 } }

-- events as rows {time, user, item, trigger | false, event name}; unknown names get code 99
local function events_of(rows)
  local e = { time = {}, user = {}, item = {}, trigger = {}, event = {} }
  for i, r in ipairs(rows) do
    e.time[i], e.user[i], e.item[i], e.trigger[i], e.event[i] = r[1], r[2], r[3], r[4], CODE[r[5]] or 99
  end
  return e
end

-- samples as rows {time, user, item, trigger | false}
local function samples_of(rows)
  local s = { time = {}, user = {}, item = {}, trigger = {} }
  for i, r in ipairs(rows) do s.time[i], s.user[i], s.item[i], s.trigger[i] = r[1], r[2], r[3], r[4] end
  return s
end

local function options(ev_rows, sample_rows, features, extra)
  local opts = {
    events = events_of(ev_rows), samples = samples_of(sample_rows), features = features,
    windows = { 10, 30 }, unit = 1, event_codes = { 1, 2, 3, 4, 5 }, items = ITEMS, users = USERS,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

-- stats.compute -> {name = {value per sample}}, result
local function compute(ev_rows, sample_rows, features, extra)
  local out = stats.compute(options(ev_rows, sample_rows, features, extra))
  local cols = {}
  for j, name in ipairs(out.names) do
    cols[name] = {}
    for i = 1, #sample_rows do cols[name][i] = out.values:get(i, j) end
  end
  return cols, out
end

describe("mtl.stats.compute", function()
  describe("windows", function()
    -- a sample at t = 100 with a window of 10 counts events in [90, 100)
    local ev = {
      { 89, 100, 1, false, "click" },  -- one second too early
      { 90, 100, 1, false, "click" },  -- exactly one window length before: counts
      { 95, 100, 1, false, "click" },
      { 99, 100, 1, false, "click" },
      { 100, 100, 1, false, "click" }, -- the sample's own second: does not count
      { 101, 100, 1, false, "click" }, -- the future
    }

    it("count events at e with t - W <= e < t", function()
      local c = compute(ev, { { 100, 100, 1, 2 } }, { { object = "user", counts = { "click" } } })
      assert.are.same({ 3 }, c.user_click_10s)
      assert.are.same({ 4 }, c.user_click_30s) -- [70, 100): 89, 90, 95, 99
    end)

    it("move with each sample's time, in any sample order", function()
      local c = compute(ev, { { 91, 100, 1, 2 }, { 101, 100, 1, 2 }, { 112, 100, 1, 2 }, { 50, 100, 1, 2 }, { 100, 100, 1, 2 } },
        { { object = "user", counts = { "click" }, windows = { 10 } } })
      -- t=91: 89, 90; t=101: 95, 99, 100 (in [91, 101)); t=112: none in [102, 112); t=50: none; t=100: 90, 95, 99
      assert.are.same({ 2, 3, 0, 0, 3 }, c.user_click_10s)
    end)

    it("are named by their length in the unit", function()
      local _, out = compute(ev, { { 100, 100, 1, 2 } }, { { object = "user", counts = { "click" } } },
        { windows = { 1, 7 }, unit = 86400 })
      assert.are.same({ "user_click_1d", "user_click_7d" }, out.names)
      _, out = compute(ev, { { 100, 100, 1, 2 } }, { { object = "item", counts = { "click" } } }, { windows = { 2 }, unit = 3600 })
      assert.are.same({ "item_click_2h" }, out.names)
    end)
  end)

  describe("no leak from the future", function()
    local past = {
      { 10, 100, 1, 2, "impression" }, { 12, 100, 1, 2, "click" }, { 20, 100, 3, 2, "impression" },
      { 25, 200, 1, 3, "impression" }, { 26, 200, 1, 3, "click" }, { 27, 200, 1, 3, "purchase" },
    }
    local future = {
      { 30, 100, 1, 2, "impression" }, { 30, 100, 1, 2, "click" }, -- at the samples' own time
      { 31, 100, 1, 2, "purchase" }, { 40, 200, 1, 2, "click" }, { 45, 100, 3, 2, "click" },
      { 31, 300, 3, 4, "click" }, { 32, 300, 3, 4, "cart" },
    }
    local samples = { { 30, 100, 1, 2 }, { 30, 200, 3, 2 } }
    local features = {
      { object = "user", counts = TYPES, rates = { "ctr", "cvr" } },
      { object = "item", counts = TYPES, rates = { "ctr", "cvr", "ctcvr" } },
      { object = { "user", "item" }, counts = { "impression", "click" } },
      { object = { "trigger", "item" }, counts = { "impression", "click" }, rates = { "ctr" } },
      { object = { "user", "item.category" }, counts = { "click" } },
      { object = { "trigger.category", "item.category" }, rates = { "ctr" } },
      { rank = "item", within = "item.category", by = "click" },
    }

    local function with_future(time_of)
      local all = {}
      for _, r in ipairs(past) do all[#all + 1] = r end
      for _, r in ipairs(future) do all[#all + 1] = { time_of(r[1]), r[2], r[3], r[4], r[5] } end
      return all
    end

    it("events at or after the sample's time change no statistic", function()
      local before, out = compute(past, samples, features)
      local after = compute(with_future(function(t) return t end), samples, features)
      assert.are.same(before, after)
      assert.are.equal(46, #out.names)
    end)

    it("while the same events one second earlier would change them", function()
      local before = compute(past, samples, features)
      local leaked = compute(with_future(function() return 29 end), samples, features)
      -- item 1 clicks before t = 30: at 12 and 26; item 3: none; leaked: two more each
      assert.are.same({ 2, 0 }, before.item_click_30s)
      assert.are.same({ 4, 2 }, leaked.item_click_30s)
      assert.are.same({ 1, 0 }, before.user_x_item_click_30s)
      assert.are.same({ 2, 0 }, leaked.user_x_item_click_30s)
    end)
  end)

  describe("objects", function()
    -- times 1..9 fall in both windows of a sample at t = 10; the purchase at 20
    -- is only in the 30 s window of the sample at t = 25 ... and its 10 s one.
    local ev = {
      { 1, 100, 1, 4, "impression" },
      { 2, 100, 1, 4, "click" },
      { 3, 100, 2, 4, "impression" },
      { 4, 200, 1, 5, "impression" },
      { 5, 200, 1, 5, "click" },
      { 6, 200, 3, 4, "impression" },
      { 7, 200, 3, 4, "click" },
      { 8, 300, 4, 1, "impression" },
      { 9, 300, 2, 1, "click" },      -- a click without an impression in the log
      { 9, 100, 3, false, "click" },  -- off any detail page: no trigger
      { 20, 100, 1, 4, "purchase" },
    }
    -- s1: user 100 sees item 1 (category 7, brand 1, shop 5) on the page of item 4 (category 8, brand 3)
    -- s2: the same, later; s3: user 100, item 3 on item 4's page
    local samples = { { 10, 100, 1, 4 }, { 25, 100, 1, 4 }, { 10, 100, 3, 4 } }
    local c = compute(ev, samples, {
      { object = "user", counts = { "impression", "click", "purchase" }, rates = { "cvr" } },
      { object = "item", counts = { "impression", "click" } },
      { object = "trigger", counts = { "impression" } },
      { object = "item.category", counts = { "impression" } },
      { object = { "user", "item" }, counts = { "impression", "click" } },
      { object = { "trigger", "item" }, counts = { "impression", "click" } },
      { object = { "user", "item.category" }, counts = { "impression", "click" } },
      { object = { "user", "item.brand" }, counts = { "click" } },
      { object = { "user", "item.shop" }, counts = { "click" } },
      { object = { "trigger.category", "item.category" }, counts = { "impression", "click" }, rates = { "ctr" },
        prior = { alpha = 1, beta = 1 } },
      { object = { "trigger.brand", "item.brand" }, counts = { "impression", "click" } },
      { object = { "user.age", "item.category" }, counts = { "impression", "click" } },
    })

    it("user and item", function()
      assert.are.same({ 2, 2, 2 }, c.user_impression_30s)       -- e1, e3
      assert.are.same({ 2, 2, 2 }, c.user_click_30s)            -- e2, e10
      assert.are.same({ 2, 0, 2 }, c.user_click_10s)            -- s2's [15, 25) holds only the purchase
      assert.are.same({ 0, 1, 0 }, c.user_purchase_10s)
      check.assert_close(c.user_cvr_30s, { 1 / 12, 2 / 12, 1 / 12 }) -- (k + 1) / (n + 1 + 9)
      assert.are.same({ 2, 2, 1 }, c.item_impression_30s)       -- item 1: e1, e4; item 3: e6
      assert.are.same({ 2, 2, 2 }, c.item_click_30s)            -- item 1: e2, e5; item 3: e7, e10
      assert.are.same({ 3, 3, 3 }, c.trigger_impression_30s)    -- trigger 4: e1, e3, e6
      assert.are.same({ 4, 4, 4 }, c.item_category_impression_30s)
    end)

    it("<user, item> and <trigger, item>", function()
      assert.are.same({ 1, 1, 0 }, c.user_x_item_impression_30s)
      assert.are.same({ 1, 1, 1 }, c.user_x_item_click_30s)     -- s3: e10 (user 100, item 3)
      assert.are.same({ 1, 1, 1 }, c.trigger_x_item_impression_30s) -- s3: e6 (trigger 4, item 3)
      assert.are.same({ 1, 1, 1 }, c.trigger_x_item_click_30s)  -- s3: e7 counts, e10 has no trigger
    end)

    it("<user, item property>", function()
      assert.are.same({ 2, 2, 2 }, c.user_x_item_category_impression_30s) -- e1, e3
      assert.are.same({ 2, 2, 2 }, c.user_x_item_category_click_30s)      -- e2, e10
      assert.are.same({ 1, 1, 1 }, c.user_x_item_brand_click_30s)         -- brand 1: e2; s3 (brand 2): e10
      assert.are.same({ 2, 2, 2 }, c.user_x_item_shop_click_30s)          -- shop 5: e2, e10
    end)

    it("<trigger property, item property> and <user profile, item property>", function()
      -- trigger category 8 (items 4, 5) x item category 7: impressions e1 e3 e4 e6, clicks e2 e5 e7
      assert.are.same({ 4, 4, 4 }, c.trigger_category_x_item_category_impression_30s)
      assert.are.same({ 3, 3, 3 }, c.trigger_category_x_item_category_click_30s)
      check.assert_close(c.trigger_category_x_item_category_ctr_30s, { 4 / 6, 4 / 6, 4 / 6 })
      -- trigger brand 3 x item brand 1 (items 1, 2): e1 e3 e4 / e2 e5; s3: brand 2 (item 3): e6 / e7
      assert.are.same({ 3, 3, 1 }, c.trigger_brand_x_item_brand_impression_30s)
      assert.are.same({ 2, 2, 1 }, c.trigger_brand_x_item_brand_click_30s)
      -- age 2 (users 100, 200) x category 7: e1 e3 e4 e6 / e2 e5 e7 e10
      assert.are.same({ 4, 4, 4 }, c.user_age_x_item_category_impression_30s)
      assert.are.same({ 4, 4, 4 }, c.user_age_x_item_category_click_30s)
    end)
  end)

  describe("rates", function()
    local ev = {}
    for t = 1, 10 do ev[#ev + 1] = { t, 300, 4, 1, "impression" } end
    for t = 1, 3 do ev[#ev + 1] = { t, 300, 4, 1, "click" } end

    it("are (k + alpha) / (n + alpha + beta)", function()
      local c = compute(ev, { { 20, 300, 4, 1 }, { 20, 100, 4, 1 } },
        { { object = "user", rates = { "ctr" }, prior = { alpha = 2, beta = 8 }, windows = { 30 } } })
      check.assert_close(c.user_ctr_30s, { (3 + 2) / (10 + 10), 2 / 10 }) -- user 100: no events, the prior mean
    end)

    it("default priors; alpha = beta = 0 without events gives 0", function()
      local c = compute(ev, { { 20, 300, 4, 1 }, { 20, 100, 4, 1 } }, {
        { object = "user", rates = { "ctr", "cart_rate" }, windows = { 30 } },
        { object = "item", rates = { { name = "raw_ctr", num = "click", den = "impression", alpha = 0, beta = 0 } },
          windows = { 10 } },
      })
      check.assert_close(c.user_ctr_30s, { (3 + 1) / (10 + 20), 1 / 20 })
      check.assert_close(c.user_cart_rate_30s, { 1 / (3 + 5), 1 / 5 })
      -- window 10 at t = 20: [10, 20) holds the impression at 10 only
      check.assert_close(c.item_raw_ctr_10s, { 0, 0 })
      local c2 = compute(ev, { { 11, 300, 4, 1 }, { 1, 300, 4, 1 } },
        { { object = "item", rates = { { name = "raw_ctr", num = "click", den = "impression", alpha = 0, beta = 0 } } } })
      check.assert_close(c2.item_raw_ctr_10s, { 3 / 10, 0 })
    end)
  end)

  describe("ranks", function()
    -- category 7: items 1, 2, 3; category 8: items 4, 5
    local ev = {
      { 1, 100, 1, 4, "click" }, { 2, 200, 1, 4, "click" }, { 3, 300, 1, 4, "click" },
      { 4, 100, 2, 4, "click" }, { 5, 100, 4, 1, "click" }, { 6, 100, 2, 4, "impression" },
      { 15, 100, 3, 4, "click" }, { 16, 200, 3, 4, "click" }, { 17, 100, 3, 4, "click" },
    }
    local samples = { { 18, 100, 1, 4 }, { 18, 100, 2, 4 }, { 18, 100, 3, 4 }, { 18, 100, 5, 4 }, { 40, 100, 1, 4 },
                      { 18, 100, 9, 4 } }
    local c = compute(ev, samples, { { rank = "item", within = "item.category", by = "click" } })

    it("are 1 + the members of the group with strictly more events", function()
      -- 30 s at t = 18: item 1 has 3, item 2 has 1, item 3 has 3 (a tie ranks both 1); item 5 has 0, item 4 has 1
      -- 30 s at t = 40 ([10, 40)): item 3 has 3, item 1 has 0
      -- item 9 is in no table: its group is missing and it ranks 1
      assert.are.same({ 1, 3, 1, 2, 2, 1 }, c.item_click_rank_in_item_category_30s)
      -- 10 s at t = 18 ([8, 18)): only item 3's clicks
      assert.are.same({ 2, 2, 1, 1, 1, 1 }, c.item_click_rank_in_item_category_10s)
    end)

    it("agree with counts when entities leave the window one event at a time", function()
      local rows, smp = {}, {}
      for t = 1, 40 do
        rows[#rows + 1] = { t, 100, 1 + t % 3, 4, "click" }
        if t % 4 == 0 then rows[#rows + 1] = { t, 100, 1, 4, "click" } end
        smp[#smp + 1] = { t, 100, 1, 4 }
        smp[#smp + 1] = { t, 100, 2, 4 }
        smp[#smp + 1] = { t, 100, 3, 4 }
      end
      local r = compute(rows, smp, { { object = "item", counts = { "click" }, windows = { 10 } },
                                     { rank = "item", within = "item.category", by = "click", windows = { 10 } } })
      for s = 1, #smp, 3 do
        for k = 0, 2 do
          local mine, above = r.item_click_10s[s + k], 0
          for q = 0, 2 do
            if r.item_click_10s[s + q] > mine then above = above + 1 end
          end
          assert.are.equal(above + 1, r.item_click_rank_in_item_category_10s[s + k])
        end
      end
    end)
  end)

  it("skip events of unknown types and report them", function()
    local c, out = compute({ { 1, 100, 1, 4, "click" }, { 2, 100, 1, 4, "share" } }, { { 5, 100, 1, 4 } },
      { { object = "user", counts = { "click" }, windows = { 10 } } })
    assert.are.same({ 1 }, c.user_click_10s)
    assert.are.same({ events_used = 1, events_unknown_type = 1 }, out.report)
  end)

  it("read event names through their string ids by default", function()
    local out = stats.compute {
      events = { time = { 1, 2 }, user = { 1, 1 }, item = { 5, 5 }, event = mtl.data.hash { "click", "impression" } },
      samples = { time = { 3 }, user = { 1 }, item = { 5 } },
      windows = { 7 }, features = { { object = { "user", "item" }, counts = { "click", "impression", "purchase" } } },
    }
    assert.are.same({ "user_x_item_click_7d", "user_x_item_impression_7d", "user_x_item_purchase_7d" }, out.names)
    assert.are.same({ 1, 1, 0 }, out.values:values())
  end)

  -- ---- a brute-force reference on random logs ------------------------------------------
  local function field_value(f, user, item, trigger)
    local item_row, trig_row, user_row
    for r, id in ipairs(ITEMS.id) do
      if id == item then item_row = r end
      if id == trigger then trig_row = r end
    end
    for r, id in ipairs(USERS.id) do
      if id == user then user_row = r end
    end
    if f == "user" then return user end
    if f == "item" then return item end
    if f == "trigger" then return trigger or nil end
    local who, prop = f:match("^(%a+)%.(%a+)$")
    if who == "user" then return user_row and USERS[prop][user_row] end
    if who == "item" then return item_row and ITEMS[prop][item_row] end
    return trigger and trig_row and ITEMS[prop][trig_row]
  end

  local function key(fields, user, item, trigger)
    local parts = {}
    for i, f in ipairs(fields) do
      local v = field_value(f, user, item, trigger)
      if v == nil then return nil end
      parts[i] = tostring(v)
    end
    return table.concat(parts, ",")
  end

  it("match a brute-force count over random logs (ties, boundaries, missing ids)", function()
    local r = require("mtl.scenario").rng(7)
    local ev, smp = {}, {}
    for _ = 1, 400 do
      local trig = r.uniform() < 0.15 and false or r.int(6) -- item 6 is not in the table
      ev[#ev + 1] = { r.int(60), 100 * r.int(4), r.int(6), trig, TYPES[r.int(5)] }
    end
    for _ = 1, 150 do smp[#smp + 1] = { r.int(70), 100 * r.int(4), r.int(6), r.uniform() < 0.1 and false or r.int(6) } end
    local objects = { "user", "item", { "user", "item" }, { "trigger", "item" }, { "user", "item.category" },
                      { "user", "item.brand" }, { "trigger.category", "item.category" }, { "user.age", "item.shop" } }
    local features = {}
    for _, o in ipairs(objects) do
      features[#features + 1] = { object = o, counts = TYPES, rates = { "ctr", "cvr" } }
    end
    features[#features + 1] = { rank = "item", within = "item.category", by = "click" }
    features[#features + 1] = { rank = { "user", "item" }, within = "user", by = "impression" }
    local c = compute(ev, smp, features)
    -- without the per-event slot cache (keys hashed again when events leave): the same values
    assert.are.same(c, (compute(ev, smp, features, { cache_bytes_max = 1 })))
    local windows = { 10, 30 }
    local checked = 0
    for s, sm in ipairs(smp) do
      local t = sm[1]
      for _, w in ipairs(windows) do
        local function counted(e) return e[1] >= t - w and e[1] < t end
        for _, o in ipairs(objects) do
          local fields = type(o) == "table" and o or { o }
          local name = table.concat(fields, "_x_"):gsub("%.", "_")
          local k = key(fields, sm[2], sm[3], sm[4])
          local n = {}
          for _, e in ipairs(TYPES) do n[e] = 0 end
          for _, e in ipairs(ev) do
            if counted(e) and k and key(fields, e[2], e[3], e[4]) == k then n[e[5]] = n[e[5]] + 1 end
          end
          for _, e in ipairs(TYPES) do
            assert.are.equal(n[e], c[string.format("%s_%s_%ds", name, e, w)][s])
            checked = checked + 1
          end
          check.assert_close({ c[string.format("%s_ctr_%ds", name, w)][s] }, { (n.click + 1) / (n.impression + 20) }, 1e-6)
          check.assert_close({ c[string.format("%s_cvr_%ds", name, w)][s] }, { (n.purchase + 1) / (n.click + 10) }, 1e-6)
        end
        -- ranks: entity counts within the sample's group
        for _, rk in ipairs({ { { "item" }, { "item.category" }, "click", "item_click_rank_in_item_category" },
                              { { "user", "item" }, { "user" }, "impression", "user_x_item_impression_rank_in_user" } }) do
          local g = key(rk[2], sm[2], sm[3], sm[4])
          local expected = 1
          if g then
            local counts = {}
            for _, e in ipairs(ev) do
              if counted(e) and e[5] == rk[3] and key(rk[2], e[2], e[3], e[4]) == g then
                local ek = key(rk[1], e[2], e[3], e[4])
                if ek then counts[ek] = (counts[ek] or 0) + 1 end
              end
            end
            local mine = counts[key(rk[1], sm[2], sm[3], sm[4])] or 0
            for _, v in pairs(counts) do
              if v > mine then expected = expected + 1 end
            end
          end
          assert.are.equal(expected, c[string.format("%s_%ds", rk[4], w)][s])
        end
      end
    end
    assert.is_true(checked > 10000)
  end)

  it("give the same values for shuffled events and samples", function()
    local r = require("mtl.scenario").rng(11)
    local ev, smp = {}, {}
    for _ = 1, 300 do ev[#ev + 1] = { r.int(50), 100 * r.int(3), r.int(5), r.int(5), TYPES[r.int(5)] } end
    for _ = 1, 80 do smp[#smp + 1] = { r.int(60), 100 * r.int(3), r.int(5), r.int(5) } end
    local features = { { object = { "user", "item.category" }, counts = TYPES, rates = { "ctr" } },
                       { rank = "item", within = "item.brand", by = "impression" } }
    local a = compute(ev, smp, features)
    local perm_e, perm_s = {}, {}
    for i = #ev, 1, -1 do perm_e[#perm_e + 1] = ev[i] end
    local order = {}
    for i = 1, #smp do order[i] = i end
    for i = #order, 2, -1 do
      local j = r.int(i)
      order[i], order[j] = order[j], order[i]
    end
    for i, j in ipairs(order) do perm_s[i] = smp[j] end
    local b = compute(perm_e, perm_s, features)
    for name, vals in pairs(a) do
      for i, j in ipairs(order) do assert.are.equal(vals[j], b[name][i]) end
    end
  end)

  describe("errors", function()
    local ev = { { 1, 100, 1, 4, "click" } }
    local smp = { { 5, 100, 1, 4 } }
    local function try(features, extra) return function() return compute(ev, smp, features, extra) end end

    it("name what is wrong", function()
      check.assert_error("mtl.stats.compute: features[1]: unknown event type 'clicks'",
        try({ { object = "user", counts = { "clicks" } } }))
      check.assert_error("mtl.stats.compute: unknown field 'shop' (expected user, item, trigger, user.<column>, "
        .. "item.<column> or trigger.<column>)", try({ { object = { "user", "shop" }, counts = { "click" } } }))
      check.assert_error("mtl.stats.compute: field 'item.color': the item table has no column 'color'",
        try({ { object = "item.color", counts = { "click" } } }))
      check.assert_error("mtl.stats.compute: features[2]: window 5 is not in windows",
        try({ { object = "user", counts = { "click" } }, { object = "item", counts = { "click" }, windows = { 5 } } }))
      check.assert_error("mtl.stats.compute: two statistics are named 'user_click_10s'",
        try({ { object = "user", counts = { "click" } }, { object = "user", counts = { "click" } } }))
      check.assert_error("mtl.stats.compute: features[1]: unknown rate 'ctrr'", try({ { object = "user", rates = { "ctrr" } } }))
      check.assert_error("mtl.stats.compute: features[1]: a rank needs 'within' (the group, e.g. item.category)",
        try({ { rank = "item" } }))
      check.assert_error("mtl.stats.compute: window 1 must be a number of units (unit = 1 s), got string",
        try({ { object = "user", counts = { "click" } } }, { windows = { "7" } }))
    end)

    it("name bad tables, columns and values (from the C core)", function()
      check.assert_error("mtl.stats.compute: window 1 has length -3 (expected 1..2^62)",
        try({ { object = "user", counts = { "click" } } }, { windows = { -3 } }))
      check.assert_error("mtl.stats.compute: window 1 must be a whole number of time units",
        try({ { object = "user", counts = { "click" } } }, { windows = { 0.5 } }))
      check.assert_error("mtl.stats.compute: items: id 2 appears twice (rows 2 and 3)",
        try({ { object = "item.brand", counts = { "click" } } }, { items = { id = { 1, 2, 2 }, brand = { 1, 1, 1 } } }))
      check.assert_error("mtl.stats.compute: statistic 1: the prior needs finite alpha >= 0 and beta >= 0, got -1 and 1",
        try({ { object = "user", rates = { "ctr" }, prior = { alpha = -1, beta = 1 } } }))
      check.assert_error("mtl.stats.compute: event 1: time 4611686018427388928 is outside -2^62..2^62", function()
        return compute({ { 2 ^ 62 + 1024, 100, 1, 4, "click" } }, smp, { { object = "user", counts = { "click" } } })
      end)
      local o = options(ev, smp, { { object = "user", counts = { "click" } } })
      o.events.user = { 100, 200 }
      check.assert_error("mtl.stats.compute: events.user has 2 values, expected 1", function() return stats.compute(o) end)
      o = options(ev, smp, { { object = "user", counts = { "click" } } })
      o.events.time = mtl.tensor({ 1 })
      check.assert_error("mtl.stats.compute: events.time must be a contiguous int64 [n] tensor, got float32 [1]",
        function() return stats.compute(o) end)
      o = options(ev, smp, { { object = "item.brand", counts = { "click" } } }, { items = { id = { 1 }, brand = { 1 } } })
      o.items.brand = mtl.tensor({ 1 })
      check.assert_error("mtl.stats.compute: items.props[1] must be a contiguous int64 [n] tensor, got float32 [1]",
        function() return stats.compute(o) end)
    end)
  end)
end)

describe("mtl.stats.compute_files", function()
  it("appends one column per statistic to the samples file", function()
    local dir, write = shell.scratch_dir()
    local events = write("behaviour.csv", "timestamp,user_id,item_id,event,trigger_id\n"
      .. "100,1,10,impression,20\n110,1,10,click,20\n120,2,10,impression,\n86500,1,11,impression,20\n")
    local items = write("items.csv", "item_id,category,brand,shop,price\n10,3,4,5,1.5\n11,3,4,6,2\n20,3,7,5,9\n")
    local samples = write("samples.csv", "is_click,timestamp,user_id,item_id,trigger_id,note\r\n"
      .. "1,110,1,10,20,a\r\n0,86500,1,10,20,b\r\n0,86501,2,11,20,c\r\n")
    local out = stats.compute_files {
      events = events, samples = samples, items = items, output = dir .. "/out.csv", windows = { 1 },
      features = { { object = "item", counts = { "impression", "click" }, rates = { "ctr" } },
                   { object = { "trigger", "item.category" }, counts = { "impression" } } },
    }
    assert.are.same({ "item_impression_1d", "item_click_1d", "item_ctr_1d", "trigger_x_item_category_impression_1d" },
      out.names)
    local f = assert(io.open(dir .. "/out.csv", "rb"))
    local text = f:read("*a")
    f:close()
    -- row 1 (t=110): the impression at 100; row 2 (t=86500): [100, 86500) has 100, 110, 120 (the one
    -- without a trigger does not count for trigger x category); row 3: [101, 86501) for item 11: 86500;
    -- the prior of ctr is 1 / (1 + 19); CRLF line ends stay
    assert.are.equal("is_click,timestamp,user_id,item_id,trigger_id,note,item_impression_1d,item_click_1d,item_ctr_1d,"
      .. "trigger_x_item_category_impression_1d\r\n"
      .. "1,110,1,10,20,a,1,0,0.047619,1\r\n"
      .. "0,86500,1,10,20,b,2,1,0.0909091,1\r\n"
      .. "0,86501,2,11,20,c,1,0,0.047619,1\r\n", text)
    check.assert_error("mtl.stats.append_csv: " .. samples .. " has more data lines than the columns' 2 values (line 4)",
      function() stats.append_csv(samples, dir .. "/bad.csv", { names = { "x" }, values = mtl.zeros(2, 1) }) end)
    check.assert_error("mtl.stats.append_csv: " .. samples .. " has 3 data lines, the columns have 4 values",
      function() stats.append_csv(samples, dir .. "/bad.csv", { names = { "x" }, values = mtl.zeros(4, 1) }) end)
    assert.is_nil(io.open(dir .. "/bad.csv"))
    assert.is_nil(io.open(dir .. "/bad.csv.tmp"))
    os.execute("rm -rf " .. dir)
  end)
end)
