-- mtl.scenario: the seeded generator of the detail-page recommender's logs,
-- its ground truth (oracle), and the default data set.
local mtl = require "mtl"
local scenario = require "mtl.scenario"
local samples = require "mtl.samples"
local check = require "helpers.check"
local shell = require "helpers.shell"

local SMALL = { users = 300, items = 200, categories = 6, brands = 20, shops = 20, days = 4, impressions_per_day = 3000 }

local tmpdir, slurp = shell.tmpdir, shell.read

local function with(opts, extra)
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

describe("mtl.scenario.rng (MRG32k3a)", function()
  it("gives L'Ecuyer's stream from a raw state", function()
    -- all six seeds 12345: the generator's first output (L'Ecuyer 1999, RngStreams)
    local r = scenario.rng { state = { 12345, 12345, 12345, 12345, 12345, 12345 } }
    check.assert_close({ r.uniform() }, { 0.1270111220 }, 1e-9)
    -- the Rosetta Code task "Combined recursive generator MRG32k3a", seed 1234567:
    -- its integers are (x1 - x2) mod m1 + 1, our uniforms that over m1 + 1
    r = scenario.rng { state = { 0, 0, 1234567, 0, 0, 1234567 } }
    local ints = {}
    for i = 1, 5 do ints[i] = math.floor(r.uniform() * 4294967088 + 0.5) + 1 end
    assert.are.same({ 1459213977, 2827710106, 4245671317, 3877608661, 2595287583 }, ints)
  end)

  it("is the same for a seed and different across seeds", function()
    local a, b, c = scenario.rng(3), scenario.rng(3), scenario.rng(4)
    local same, differ = true, false
    for _ = 1, 100 do
      local x, y, z = a.uniform(), b.uniform(), c.uniform()
      same = same and x == y
      differ = differ or x ~= z
      assert.is_true(x > 0 and x < 1)
    end
    assert.is_true(same)
    assert.is_true(differ)
    check.assert_error("mtl.scenario: seed must be a whole number in 0..2^31-1, got 1.5", function() scenario.rng(1.5) end)
  end)

  it("draws normals with mean 0 and variance 1", function()
    local r = scenario.rng(9)
    local s, s2, n = 0, 0, 20000
    for _ = 1, n do
      local x = r.normal()
      s, s2 = s + x, s2 + x * x
    end
    assert.is_true(math.abs(s / n) < 4 / math.sqrt(n))
    assert.is_true(math.abs(s2 / n - 1) < 4 * math.sqrt(2 / n))
  end)
end)

describe("mtl.scenario.generate", function()
  local dir1, dir2, dir3, world, files
  setup(function()
    dir1, dir2, dir3 = tmpdir(), tmpdir(), tmpdir()
    world = scenario.generate(SMALL)
    files = scenario.write(world, dir1)
    scenario.write(scenario.generate(SMALL), dir2)
    scenario.write(scenario.generate(with(SMALL, { seed = 2 })), dir3)
  end)
  teardown(function() os.execute("rm -rf " .. dir1 .. " " .. dir2 .. " " .. dir3) end)

  it("writes the same bytes for the same seed and different ones for another", function()
    for _, name in ipairs({ "items.csv", "users.csv", "impressions.csv", "behaviour.csv", "oracle.csv" }) do
      local a, b, c = slurp(dir1 .. "/" .. name), slurp(dir2 .. "/" .. name), slurp(dir3 .. "/" .. name)
      assert.is_true(#a > 100, name)
      assert.is_true(a == b, name .. " differs between two runs with one seed")
      assert.is_true(a ~= c, name .. " is the same for seeds 1 and 2")
    end
  end)

  it("writes the logs' columns, in time order", function()
    assert.are.equal("item_id,category,brand,shop,price", slurp(files.items):match("^[^\n]*"))
    assert.are.equal("user_id,age,gender,city", slurp(files.users):match("^[^\n]*"))
    assert.are.equal("request_id,timestamp,user_id,trigger_id,item_id,position,hour,device,location",
      slurp(files.impressions):match("^[^\n]*"))
    assert.are.equal("timestamp,user_id,item_id,event,trigger_id", slurp(files.behaviour):match("^[^\n]*"))
    assert.are.equal("request_id,position,p_click,p_pay", slurp(files.oracle):match("^[^\n]*"))
    local imp = mtl.data.read_all { files = files.impressions, header = true, columns = {
      { name = "request_id", type = "int64" }, { name = "timestamp", type = "int64" }, { name = "user_id", type = "int64" },
      { name = "trigger_id", type = "int64" }, { name = "item_id", type = "int64" }, { name = "position", type = "int64" },
      { name = "hour", type = "int64" }, { name = "device", type = "int64" }, { name = "location", type = "int64" } } }.columns
    local t, req, trig, item, hour = imp.timestamp:values(), imp.request_id:values(), imp.trigger_id:values(),
      imp.item_id:values(), imp.hour:values()
    assert.are.equal(world.impressions.n, #t)
    for i = 2, #t do
      assert.is_true(t[i] >= t[i - 1])
      assert.is_true(req[i] == req[i - 1] or req[i] == req[i - 1] + 1)
    end
    for i = 1, #t do
      assert.are_not.equal(trig[i], item[i]) -- the page's own item is never recommended on it
      assert.are.equal(math.floor((t[i] - scenario.DEFAULTS.start_time) % 86400 / 3600), hour[i])
    end
    local ev = mtl.data.read_all { files = files.behaviour, header = true, columns = {
      { name = "timestamp", type = "int64" }, { name = "user_id", type = "int64" }, { name = "item_id", type = "int64" },
      { name = "event", type = "string" }, { name = "trigger_id", type = "int64" } } }.columns
    local et = ev.timestamp:values()
    for i = 2, #et do assert.is_true(et[i] >= et[i - 1]) end
    -- every impression is in the behaviour log too
    local codes = mtl.data.hash(scenario.EVENTS):values()
    local per = {}
    for _, e in ipairs(ev.event:values()) do per[e] = (per[e] or 0) + 1 end
    assert.are.equal(#t, per[codes[1]])
    assert.are.equal(#et, world.events.n)
  end)

  it("makes labels that follow the oracle", function()
    local built = samples.build { impressions = files.impressions, events = files.behaviour }
    local o = mtl.data.read_all { files = files.oracle, header = true, unknown_columns = "skip",
      columns = { { name = "p_click", type = "float" }, { name = "p_pay", type = "float" } } }.columns
    local pc, pp = o.p_click:values(), o.p_pay:values()
    local c, p = built.is_click:values(), built.is_pay:values()
    -- the generator's own draws (in time order) are exactly the labels sample building recovers for clicks
    local order = mtl.core.stats_order(mtl.tensor(world.impressions.time, "int64")):values()
    for j, i in ipairs(order) do assert.are.equal(world.impressions.clicked[i], c[j]) end
    -- rates within 4 standard deviations of the oracle's mean, overall and in five bins of p_click
    local function agree(labels, probs, lo, hi)
      local n, k, s, v = 0, 0, 0, 0
      for j = 1, #probs do
        if probs[j] >= lo and probs[j] < hi then
          n, k, s, v = n + 1, k + labels[j], s + probs[j], v + probs[j] * (1 - probs[j])
        end
      end
      assert.is_true(n > 200)
      assert.is_true(math.abs(k - s) <= 4 * math.sqrt(v),
        string.format("%d labels in [%g, %g): %d positive, oracle expects %.1f +- %.1f", n, lo, hi, k, s, math.sqrt(v)))
    end
    agree(c, pc, 0, 1)
    agree(p, pp, 0, 1)
    local sorted = {}
    for j = 1, #pc do sorted[j] = pc[j] end
    table.sort(sorted)
    local edges = { 0 }
    for q = 1, 4 do edges[#edges + 1] = sorted[math.floor(#sorted * q / 5)] end
    edges[#edges + 1] = 1
    for q = 1, 5 do agree(c, pc, edges[q], edges[q + 1]) end
    -- the oracle ranks far better than chance; a click rate of a few percent
    assert.is_true(mtl.metrics.auc(o.p_click, built.is_click:float()) > 0.8)
    assert.is_true(mtl.metrics.auc(o.p_pay, built.is_pay:float()) > 0.8)
    local rate = built.clicks / built.rows
    assert.is_true(rate > 0.03 and rate < 0.2, "click rate " .. rate)
  end)

  it("rejects unknown and bad options", function()
    check.assert_error("mtl.scenario.generate: unknown option 'user'", function() scenario.generate { user = 5 } end)
    check.assert_error("mtl.scenario.generate: option 'days' must be a whole number >= 1, got 0",
      function() scenario.generate { days = 0 } end)
    check.assert_error("mtl.scenario.generate: brands (3) must be >= categories (20)",
      function() scenario.generate { brands = 3 } end)
    check.assert_error("mtl.scenario.generate: slots (5) must be < items (5)",
      function() scenario.generate { items = 5, brands = 5, categories = 5 } end)
  end)
end)

describe("mtl.scenario.default_dataset", function()
  local dir, r
  setup(function()
    dir = tmpdir()
    r = scenario.default_dataset(dir, with(SMALL, { days = 8, windows = { 1, 3 }, quiet = true }))
  end)
  teardown(function() os.execute("rm -rf " .. dir) end)

  local function lines(path)
    local out = {}
    for l in io.lines(path) do out[#out + 1] = l end
    return out
  end

  it("splits by time: warm-up days feed statistics only, the last days are the test set", function()
    local train, test, oracle = lines(dir .. "/train.csv"), lines(dir .. "/test.csv"), lines(dir .. "/oracle_test.csv")
    assert.are.equal(r.rows.train + 1, #train)
    assert.are.equal(r.rows.test + 1, #test)
    assert.are.equal(#test, #oracle)
    assert.are.equal("request_id,position,p_click,p_pay", oracle[1])
    local header = {}
    for name in (train[1] .. ","):gmatch("([^,]*),") do header[#header + 1] = name end
    local ts
    for i, h in ipairs(header) do if h == "timestamp" then ts = i end end
    local function time_of(line)
      local k = 0
      for v in (line .. ","):gmatch("([^,]*),") do
        k = k + 1
        if k == ts then return tonumber(v) end
      end
    end
    local start = scenario.DEFAULTS.start_time
    local last_train = 0
    for i = 2, #train do
      local t = time_of(train[i])
      assert.is_true(t >= start + 3 * 86400 and t < start + 6 * 86400)
      last_train = math.max(last_train, t)
    end
    for i = 2, #test do
      assert.is_true(time_of(test[i]) >= start + 6 * 86400)
      assert.is_true(time_of(test[i]) > last_train)
      -- the oracle row belongs to the test row: same request and position
      local req, pos = oracle[i]:match("^(%d+),(%d+),")
      assert.is_truthy(test[i]:find("," .. req .. "," .. pos .. ",", 1, true))
    end
  end)

  it("writes a schema whose columns are the files' and whose feature config builds", function()
    local schema = dofile(dir .. "/schema.lua")
    local header = lines(dir .. "/train.csv")[1]
    local names = {}
    for i, c in ipairs(schema.data.columns) do names[i] = c.name end
    assert.are.equal(header, table.concat(names, ","))
    assert.are.same({ "is_click", "is_pay" }, schema.data.labels)
    assert.are.equal(#r.stats + 22, #schema.data.columns)
    local F = require("mtl.features").new(schema.features, schema.data)
    F:fit({ dir .. "/train.csv" })
    F:build()
    local reader = mtl.data.csv(F:reader_options({ dir .. "/test.csv" }, 64))
    local batch = reader:next()
    local x = F(batch)
    assert.are.same({ 64, F.output_dim }, x:shape())
    assert.is_true(F.output_dim > 16 * 14)
  end)

  it("computes each statistic from the events strictly before the row", function()
    local logs = dir .. "/logs"
    local ev = mtl.data.read_all { files = logs .. "/behaviour.csv", header = true, columns = {
      { name = "timestamp", type = "int64" }, { name = "user_id", type = "int64" }, { name = "item_id", type = "int64" },
      { name = "event", type = "string" }, { name = "trigger_id", type = "int64" } } }.columns
    local et, eu, ei, ee, etr = ev.timestamp:values(), ev.user_id:values(), ev.item_id:values(), ev.event:values(),
      ev.trigger_id:values()
    local click, imp = mtl.data.hash("click"):item(), mtl.data.hash("impression"):item()
    local cols = { "timestamp", "user_id", "item_id", "trigger_id", "user_click_1d", "item_ctr_3d",
                   "trigger_x_item_impression_3d", "user_x_item_impression_1d" }
    local spec = {}
    for i, c in ipairs(cols) do spec[i] = { name = c, type = i <= 4 and "int64" or "float" } end
    local test = mtl.data.read_all { files = dir .. "/test.csv", header = true, unknown_columns = "skip", columns = spec }.columns
    local v = {}
    for _, c in ipairs(cols) do v[c] = test[c]:values() end
    for row = 1, #v.timestamp, math.max(1, math.floor(#v.timestamp / 40)) do
      local t, u, it, tr = v.timestamp[row], v.user_id[row], v.item_id[row], v.trigger_id[row]
      local uc, ii, ic, ti, ui = 0, 0, 0, 0, 0
      for j = 1, #et do
        local e = et[j]
        if e < t then
          if e >= t - 86400 and eu[j] == u and ee[j] == click then uc = uc + 1 end
          if e >= t - 3 * 86400 and ei[j] == it then
            if ee[j] == imp then ii = ii + 1 end
            if ee[j] == click then ic = ic + 1 end
            if ee[j] == imp and etr[j] == tr then ti = ti + 1 end
          end
          if e >= t - 86400 and eu[j] == u and ei[j] == it and ee[j] == imp then ui = ui + 1 end
        end
      end
      assert.are.equal(uc, v.user_click_1d[row])
      check.assert_close({ v.item_ctr_3d[row] }, { (ic + 1) / (ii + 20) }, 2e-6)
      assert.are.equal(ti, v.trigger_x_item_impression_3d[row])
      assert.are.equal(ui, v.user_x_item_impression_1d[row])
    end
  end)

  it("needs training days", function()
    check.assert_error("mtl.scenario.default_dataset: 4 days leave no training days after 3 warm-up and 2 test days",
      function() scenario.default_dataset(dir .. "/x", with(SMALL, { windows = { 3 } })) end)
  end)
end)
