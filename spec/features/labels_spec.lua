-- mtl.samples: click and pay labels of impressions (attribution windows) and
-- the samples file.
local mtl = require "mtl"
local samples = require "mtl.samples"
local check = require "helpers.check"
local shell = require "helpers.shell"

local function I(t) return mtl.tensor(t, "int64") end
local MISSING = -2 ^ 63

-- impressions {time, user, item}; events {time, user, item, name}
local IMPRESSIONS = {
  { 100, 1, 10 },  -- i1: clicked at 150
  { 100, 1, 11 },  -- i2: its click came before it (99)
  { 200, 1, 10 },  -- i3: a second impression of item 10 to user 1: the click at 250 is its own
  { 300, 2, 10 },  -- i4: clicked and bought in its own second
  { 1000, 3, 12 }, -- i5: the click comes 1801 s later: too late
  { 5000, 4, 13 }, -- i6: clicked exactly 1800 s later; bought one second too late
}
local EVENTS = {
  { 150, 1, 10, "click" },
  { 160, 1, 10, "click" },          -- a repeat click on i1
  { 250, 1, 10, "click" },
  { 300, 2, 10, "purchase" },       -- listed before its click: equal times put clicks first
  { 300, 2, 10, "click" },
  { 99, 1, 11, "click" },
  { 2801, 3, 12, "click" },
  { 6800, 4, 13, "click" },
  { 250 + 86400, 1, 10, "purchase" }, -- exactly one pay window after i3's click
  { 5000, 3, 12, "purchase" },      -- never clicked
  { 6800 + 86401, 4, 13, "purchase" },
  { 400, 2, 10, "favorite" },       -- other events are not used
}

local function label(imps, evs, opts)
  local im = { time = {}, user = {}, item = {} }
  for i, r in ipairs(imps) do im.time[i], im.user[i], im.item[i] = r[1], r[2], r[3] end
  local ev = { time = {}, user = {}, item = {}, names = {} }
  for i, r in ipairs(evs) do ev.time[i], ev.user[i], ev.item[i], ev.names[i] = r[1], r[2], r[3], r[4] end
  local o = { impressions = { time = I(im.time), user = I(im.user), item = I(im.item) },
              events = { time = I(ev.time), user = I(ev.user), item = I(ev.item), event = mtl.data.hash(ev.names) } }
  for k, v in pairs(opts or {}) do o[k] = v end
  local c, p, t, report = samples.label(o)
  return c:values(), p:values(), t:values(), report
end

describe("mtl.samples.label", function()
  it("attributes clicks to the latest impression and purchases to the latest click", function()
    local c, p, t, report = label(IMPRESSIONS, EVENTS)
    assert.are.same({ 1, 0, 1, 1, 0, 1 }, c)
    assert.are.same({ 0, 0, 1, 1, 0, 0 }, p)
    assert.are.same({ 150, MISSING, 250, 300, MISSING, 6800 }, t)
    assert.are.same({ clicks = 7, clicks_attributed = 4, purchases = 4, purchases_attributed = 2 }, report)
  end)

  it("does not depend on the order of the logs", function()
    local imps, evs = {}, {}
    for i = #IMPRESSIONS, 1, -1 do imps[#imps + 1] = IMPRESSIONS[i] end
    for i = #EVENTS, 1, -1 do evs[#evs + 1] = EVENTS[i] end
    local c, p = label(imps, evs)
    assert.are.same({ 1, 0, 1, 1, 0, 1 }, { c[6], c[5], c[4], c[3], c[2], c[1] })
    assert.are.same({ 0, 0, 1, 1, 0, 0 }, { p[6], p[5], p[4], p[3], p[2], p[1] })
  end)

  it("takes the click and pay windows in seconds", function()
    local c, p = label(IMPRESSIONS, EVENTS, { click_window = 0, pay_window = 0 })
    assert.are.same({ 0, 0, 0, 1, 0, 0 }, c) -- only i4's click is in its impression's second
    assert.are.same({ 0, 0, 0, 1, 0, 0 }, p)
    c, p = label(IMPRESSIONS, EVENTS, { click_window = 1801, pay_window = 86401 })
    assert.are.same({ 1, 0, 1, 1, 1, 1 }, c)
    assert.are.same({ 0, 0, 1, 1, 1, 1 }, p) -- i5's click at 2801 now counts, and the purchase at 5000 follows it
    c = label(IMPRESSIONS, EVENTS, { click = "favorite", pay = "purchase" })
    assert.are.same({ 0, 0, 0, 1, 0, 0 }, c) -- the favorite of user 2, item 10 at 400
  end)

  it("rejects bad options with their names", function()
    check.assert_error("mtl.samples.label: option 'click_window' must be 0..2^62 time units, got -1",
      function() label(IMPRESSIONS, EVENTS, { click_window = -1 }) end)
    check.assert_error("mtl.samples.label: option 'pay_window' must be a whole number of time units",
      function() label(IMPRESSIONS, EVENTS, { pay_window = 0.5 }) end)
    check.assert_error("mtl.samples.label: clicks and purchases have the same event code",
      function() label(IMPRESSIONS, EVENTS, { click = "click", pay = "click" }) end)
    check.assert_error("mtl.samples.label: impressions.user has 1 values, expected 2", function()
      samples.label { impressions = { time = I { 1, 2 }, user = I { 1 }, item = I { 1, 2 } },
                      events = { time = I {}, user = I {}, item = I {}, event = I {} } }
    end)
  end)
end)

describe("mtl.samples.build", function()
  local dir, write
  before_each(function()
    dir, write = shell.scratch_dir()
  end)
  after_each(function() os.execute("rm -rf " .. dir) end)

  it("writes <is_pay, is_click, user_id, trigger_id, item_id, context...> with joined properties", function()
    local imps = write("impressions.csv", "request_id,timestamp,user_id,trigger_id,item_id,position,device\n"
      .. "1,100,7,30,10,1,2\n1,100,7,30,11,2,2\n2,500,8,10,30,1,1\n")
    local evs = write("behaviour.csv", "timestamp,user_id,item_id,event,trigger_id\n"
      .. "100,7,10,impression,30\n100,7,11,impression,30\n130,7,11,click,30\n900,7,11,purchase,30\n"
      .. "500,8,30,impression,10\n")
    local items = write("items.csv", "item_id,category,brand,shop,price\n10,1,2,3,9.5\n11,1,4,3,20\n30,2,5,6,100.25\n")
    local users = write("users.csv", "user_id,age,gender\n7,3,1\n")
    local out = samples.build { impressions = imps, events = evs, items = items, users = users, output = dir .. "/s.csv" }
    assert.are.equal(3, out.rows)
    assert.are.equal(1, out.clicks)
    assert.are.equal(1, out.pays)
    local f = assert(io.open(dir .. "/s.csv"))
    local text = f:read("*a")
    f:close()
    -- user 8 is not in the user table: its profile columns are 0
    assert.are.equal(
      "is_pay,is_click,user_id,trigger_id,item_id,timestamp,request_id,position,device,age,gender,"
      .. "category,brand,shop,price,trigger_category,trigger_brand,trigger_shop,trigger_price\n"
      .. "0,0,7,30,10,100,1,1,2,3,1,1,2,3,9.5,2,5,6,100.25\n"
      .. "1,1,7,30,11,100,1,2,2,3,1,1,4,3,20,2,5,6,100.25\n"
      .. "0,0,8,10,30,500,2,1,1,0,0,2,5,6,100.25,1,2,3,9.5\n", text)
    assert.are.same({ "is_pay", "int" }, out.columns[1])
    assert.are.same({ "price", "float" }, out.columns[15])
  end)

  it("names missing files and columns", function()
    check.assert_error("mtl.samples.build: needs the file names 'impressions' and 'events'",
      function() samples.build { impressions = "x.csv" } end)
    check.assert_error("mtl.samples.build: cannot open " .. dir .. "/none.csv",
      function() samples.build { impressions = dir .. "/none.csv", events = "x" } end)
    local imps = write("impressions.csv", "timestamp,user_id,item_id\n1,2,3\n")
    local evs = write("behaviour.csv", "timestamp,user_id,item_id,event\n1,2,3,click\n")
    local err = check.assert_error("trigger_id", function() samples.build { impressions = imps, events = evs } end)
    assert.is_truthy(err:find("impressions.csv", 1, true))
  end)
end)
