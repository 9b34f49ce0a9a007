-- mtl.report (HTML + inline SVG from metrics records) and mtl.cli.progress
-- (the terminal bar and the plain lines), on hand-made inputs.
local report = require "mtl.report"
local progress = require "mtl.cli.progress"

local function tmpfile()
  return os.tmpname()
end

local function records()
  return {
    { kind = "train", step = 10, epoch = 1, loss = 1.2, task_loss = { click = 0.7, pay = 0.5 }, running_auc = { click = 0.6, pay = 0.55 } },
    { kind = "train", step = 20, epoch = 1, loss = 1.0, task_loss = { click = 0.6, pay = 0.4 }, running_auc = { click = 0.7 } },
    { kind = "eval", step = 20, epoch = 1, metrics = { click = { auc = 0.71, logloss = 0.6, calibration = 1.02, count = 50 },
                                                     pay = { auc = 0.8, logloss = 0.3, calibration = 0.9, count = 50 } } },
    { kind = "eval", step = 30, epoch = 2, final = true,
      metrics = { click = { auc = 0.75, logloss = 0.55, calibration = 1.01, count = 50, gauc = 0.7 },
                  pay = { auc = 0.82, logloss = 0.28, calibration = 0.95, count = 50 } },
      gates = { { task = "click", level = 1, experts = { "click 1", "shared 1" }, weights = { 0.8, 0.2 } },
                { task = "pay", level = 1, experts = { "pay 1", "shared 1" }, weights = { 0.3, 0.7 } } } },
  }
end

describe("mtl.report", function()
  it("draws the loss curve, AUC curves and gate bars in one HTML file", function()
    local html = report.html(records(), { title = "t<1>" })
    assert.truthy(html:find("<title>t&lt;1&gt;</title>", 1, true))
    -- the loss polyline has one point per train record, x increasing
    local pts = html:match('<polyline class="series" data%-name="total"[^>]-points="([^"]+)"')
    local xs = {}
    for x in pts:gmatch("([%d.]+),[%d.]+") do xs[#xs + 1] = tonumber(x) end
    assert.are.equal(2, #xs)
    assert.is_true(xs[2] > xs[1])
    -- loss 1.2 is drawn above (smaller y) loss 1.0
    local ys = {}
    for y in pts:gmatch("[%d.]+,([%d.]+)") do ys[#ys + 1] = tonumber(y) end
    assert.is_true(ys[1] < ys[2])
    assert.truthy(html:find('data-name="click (eval)"', 1, true))
    assert.truthy(html:find('data-name="click (train window)" fill="none" stroke="#1f77b4" stroke-width="2" stroke-dasharray', 1, true))
    -- gate bars: heights proportional to weights
    local h = {}
    for expert, height in html:gmatch('<rect class="bar" data%-expert="([^"]+)" x="%d+" y="[%d.]+" width="%d+" height="([%d.]+)"') do
      h[#h + 1] = { expert, tonumber(height) }
    end
    assert.are.equal(4, #h)
    assert.are.equal("click 1", h[1][1])
    assert.are.equal("shared 1", h[2][1])
    assert.is_true(math.abs(h[1][2] / h[2][2] - 4) < 0.05)
    assert.truthy(html:find("task click · level 1", 1, true))
    -- the final metrics table
    assert.truthy(html:find("<tr><td>click</td><td>0.7500</td><td>0.7000</td><td>0.5500</td><td>1.010</td><td>50</td></tr>", 1, true))
    assert.is_nil(html:find("<script", 1, true))
  end)

  it("says so when there is nothing to draw", function()
    local html = report.html({}, {})
    assert.truthy(html:find("no evaluation records", 1, true))
    assert.truthy(html:find(">no data</text>", 1, true))
    assert.is_nil(html:find("Expert utilization", 1, true))
  end)

  it("chooses readable ticks", function()
    assert.are.same({ 0.4, 0.5, 0.6, 0.7, 0.8, 0.9 }, (function()
      local t = report.ticks(0.42, 0.88, 5)
      for i, v in ipairs(t) do t[i] = math.floor(v * 10 + 0.5) / 10 end
      return t
    end)())
    assert.are.same({ 0, 50, 100, 150, 200, 250 }, (report.ticks(3, 240, 6)))
  end)

  it("skips lines of metrics.jsonl that are not JSON objects", function()
    local p = tmpfile()
    local f = assert(io.open(p, "w"))
    f:write('{"kind":"train","step":1,"loss":0.5}\n', "garbage\n", '{"kind":"eval","step":1,"metrics":{}}\n')
    f:close()
    local recs = report.read_metrics(p)
    os.remove(p)
    assert.are.equal(2, #recs)
  end)
end)

describe("mtl.cli.progress", function()
  -- a stand-in Run: what the progress object reads
  local run = { step = 0, epoch = 1, running_auc = function() return { click = 0.75, pay = 0 / 0 } end }

  it("draws a bar with rate, ETA, loss and running AUC on a terminal", function()
    local p = tmpfile()
    local f = assert(io.open(p, "w"))
    local pr = progress.new({ out = f, tty = true })
    pr:start(run, { steps = 40 })
    for s = 1, 10 do
      run.step = s
      pr.last_draw = -1 -- draw every step here
      pr:step(run, { loss = 0.5, rows = 100 })
    end
    pr:message("resumed from x")
    pr:finish(run)
    f:close()
    local out = assert(io.open(p)):read("*a")
    os.remove(p)
    assert.truthy(out:find("\r\27[K[====>               ]  25% 10/40  ", 1, true), out)
    assert.truthy(out:find("ex/s  ETA %d+:%d%d  loss 0%.5000  auc click 0%.750 pay %-"), out)
    assert.truthy(out:find("\r\27[Kresumed from x\n", 1, true))
    assert.are.equal("\n", out:sub(-1))
  end)

  it("writes plain lines when not a terminal, and nothing when quiet", function()
    local p = tmpfile()
    local f = assert(io.open(p, "w"))
    local pr = progress.new({ out = f, tty = false })
    pr:start(run, { steps = 40 })
    run.step = 20
    pr:step(run, { loss = 0.4, rows = 100 })
    pr:log(run, { step = 20, epoch = 1, loss = 0.4, running_auc = { click = 0.7 }, examples_per_s = 1500 })
    pr:eval(run, { click = { auc = 0.8 } }, true)
    f:close()
    local out = assert(io.open(p)):read("*a")
    os.remove(p)
    assert.are.equal("step 20  epoch 1  loss 0.4000  auc click 0.7000  1.5k ex/s\nfinal eval (step 20): click auc 0.8000\n", out)
    local q = progress.new({ out = io.stdout, quiet = true })
    q:start(run, {})
    q:message("x")
    q:log(run, { step = 1, epoch = 1, loss = 1 })
    q:finish(run)
  end)

  it("formats times and counts rows of plain files", function()
    assert.are.equal("0:05", progress.format_time(5))
    assert.are.equal("2:05", progress.format_time(125))
    assert.are.equal("1:00:01", progress.format_time(3601))
    assert.are.equal("?", progress.format_time(nil))
    local p = tmpfile()
    local f = assert(io.open(p, "w"))
    f:write("h\n1\n2\n3\n")
    f:close()
    assert.are.equal(3, progress.count_rows({ p }, true))
    assert.is_nil(progress.count_rows({ p .. ".gz" }, true))
    os.remove(p)
  end)
end)
