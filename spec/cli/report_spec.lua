-- mtl.report (HTML + inline SVG from metrics records) and mtl.cli.progress
-- (the terminal bar and the plain lines), on hand-made inputs.
local report = require "mtl.report"
local progress = require "mtl.cli.progress"
local tiny = require "cli.tiny"

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

-- The x coordinate of the frame's right edge and of each point of a polyline.
local function frame_right(svg)
  local x, w = svg:match('<rect class="frame" x="(%d+)" y="%d+" width="(%d+)"')
  return tonumber(x) + tonumber(w)
end
local function points_of(html, name)
  local pts = html:match('<polyline class="series" data%-name="' .. name:gsub("%p", "%%%0") .. '"[^>]-points="([^"]+)"')
  local xs = {}
  for x in (pts or ""):gmatch("([%d.]+),[%d.]+") do xs[#xs + 1] = tonumber(x) end
  return xs
end

describe("mtl.report over time", function()
  local function recs()
    return {
      { kind = "train", step = 10, loss = 1.2, lr = 0.01, examples_per_s = 900, task_loss = { click = 0.7 } },
      { kind = "train", step = 20, loss = 1.0, lr = 0.005, lr_sparse = 0.05, examples_per_s = 1000, task_loss = { click = 0.6 } },
      { kind = "eval", step = 20, metrics = { click = { auc = 0.7, logloss = 0.6 } },
        gates = { { task = "click", experts = { "expert 1", "expert 2" }, weights = { 0.6, 0.4 } } } },
      { kind = "eval", step = 30, final = true, metrics = { click = { auc = 0.75, logloss = 0.5 } },
        gates = { { task = "click", experts = { "expert 1", "expert 2" }, weights = { 0.7, 0.3 } } } },
    }
  end

  it("draws learning rate, throughput, eval log loss and gate weights by step, every x axis ending at the last step", function()
    local html = report.html(recs(), {})
    -- the AUC curve ends at step 30, the run's last: on the frame's right edge; the loss
    -- (last logged at step 20) two thirds of the way
    local auc_svg = html:match('<svg[^>]-aria%-label="AUC">.-</svg>')
    local right = frame_right(auc_svg)
    local xs = points_of(html, "click (eval)")
    assert.are.equal(2, #xs)
    assert.is_true(math.abs(xs[2] - right) < 0.01)
    local loss_svg = html:match('<svg[^>]-aria%-label="loss %(mean over each log interval%)">.-</svg>')
    local left = tonumber(loss_svg:match('<rect class="frame" x="(%d+)"'))
    local lx = points_of(loss_svg, "total")
    assert.is_true(math.abs((lx[2] - left) / (frame_right(loss_svg) - left) - 20 / 30) < 0.001)
    -- no tick beyond the last step
    for tick in loss_svg:gmatch('<text class="tick" x="[%d.]+" y="[%d.]+" text%-anchor="middle">(%d+)</text>') do
      assert.is_true(tonumber(tick) <= 30)
    end
    assert.are.equal(2, #points_of(html, "lr"))
    assert.are.equal(1, #points_of(html, "lr (embeddings)"))
    assert.are.equal(2, #points_of(html, "examples/s"))
    assert.are.equal(2, #points_of(html, "click"))        -- the eval log loss, one point per evaluation
    assert.are.equal(2, #points_of(html, "expert 2"))     -- the gate's weights at both evaluations
    assert.is_nil(html:find('http-equiv="refresh"', 1, true))
  end)

  it("reloads itself while the run is live and says when it stopped with an error", function()
    local live = report.html(recs(), { live = true })
    assert.truthy(live:find('<meta http-equiv="refresh" content="10">', 1, true))
    assert.truthy(live:find("live: written at step 30, %d%d:%d%d:%d%d; this page reloads every 10 s until the run ends"))
    local failed = report.html(recs(), { live = true, failed = "data.csv:9:2: expected a number" })
    assert.is_nil(failed:find("refresh", 1, true))
    assert.truthy(failed:find('<p class="failed">stopped with an error at step 30: data.csv:9:2: expected a number</p>', 1, true))
  end)
end)

describe("the report of a training run", function()
  -- a progress object that reads report.html at every evaluation
  local function watcher(dir, seen)
    local p = {}
    for _, m in ipairs { "start", "step", "log", "message", "finish" } do p[m] = function() end end
    function p.eval(_, run, _, final)
      local html = assert(io.open(dir .. "/run/report.html")):read("*a")
      seen[#seen + 1] = { step = run.step, final = final, live = html:find('http-equiv="refresh"', 1, true) ~= nil,
                          html = html }
    end
    return p
  end

  it("is written at every evaluation, reloading itself until the run ends", function()
    local dir = tiny.setup()
    local cfg = dofile(dir .. "/config.lua")
    local seen = {}
    local run = require("mtl.train").new(cfg, { progress = watcher(dir, seen) })
    run:fit()
    assert.are.equal(3, #seen) -- steps 10 and 20, then the final evaluation at 24
    assert.are.same({ 10, 20, 24 }, { seen[1].step, seen[2].step, seen[3].step })
    assert.is_true(seen[1].live and seen[2].live)
    assert.truthy(seen[2].html:find("live: written at step 20,", 1, true))
    -- the final evaluation is shown once the report is written after it: no refresh then
    local html = assert(io.open(dir .. "/run/report.html")):read("*a")
    assert.is_nil(html:find("refresh", 1, true))
    assert.are.equal(dir .. "/run/report.html", run.report_path)
    -- train records carry the learning rate
    local recs = report.read_metrics(dir .. "/run/metrics.jsonl")
    assert.are.equal(0.02, recs[1].lr)
    tiny.rm(dir)
  end)

  it("says so and stops reloading when the run fails", function()
    local dir = tiny.setup()
    local f = assert(io.open(dir .. "/test.csv", "a"))
    f:write("1,0,3,4,abc,0.5,0.5\n") -- a bad price: the first evaluation (step 10) fails
    f:close()
    local run = require("mtl.train").new(dofile(dir .. "/config.lua"), { quiet = true })
    local ok, err = pcall(run.fit, run)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("test.csv:152:5: expected a number for column 'price', got \"abc\"", 1, true), err)
    local html = assert(io.open(dir .. "/run/report.html")):read("*a")
    assert.is_nil(html:find("refresh", 1, true))
    assert.truthy(html:find('<p class="failed">stopped with an error at step 10: ', 1, true), html:sub(1, 2000))
    assert.truthy(html:find("test.csv:152:5: expected a number for column &#39;price&#39;, got &quot;abc&quot;</p>", 1, true))
    tiny.rm(dir)
  end)
end)

describe("mtl.report of several runs", function()
  local tmp
  before_each(function() tmp = tiny.tmpdir() end)
  after_each(function() tiny.rm(tmp) end)

  local function run_dir(path, auc, lr, steps, cfg_src)
    os.execute("mkdir -p '" .. path .. "'")
    local f = assert(io.open(path .. "/metrics.jsonl", "w"))
    for s = 10, steps, 10 do f:write(string.format('{"kind":"train","step":%d,"loss":%g,"lr":%g}\n', s, 1 / s, lr)) end
    f:write(string.format('{"kind":"eval","step":%d,"final":true,"metrics":{"click":{"auc":%g,"logloss":%g}}}\n', steps, auc, 1 - auc))
    f:close()
    if cfg_src then
      local g = assert(io.open(path .. "/config.lua", "w"))
      g:write(cfg_src)
      g:close()
    end
  end

  it("overlays the runs' curves and sets final metrics and differing settings side by side", function()
    run_dir(tmp .. "/a", 0.71, 0.01, 40, 'return { model = { name = "mmoe", experts = 4, expert = {8} }, model_dir = "x/a", train = { seed = 1 } }')
    run_dir(tmp .. "/b", 0.74, 0.03, 60, 'return { model = { name = "mmoe", experts = 8, expert = {8} }, model_dir = "x/b", train = { seed = 1 } }')
    local path, dirs = report.write_compare({ tmp .. "/a", tmp .. "/b" }, { out = tmp .. "/c.html" })
    assert.are.equal(tmp .. "/c.html", path)
    assert.are.same({ tmp .. "/a", tmp .. "/b" }, dirs)
    local html = assert(io.open(path)):read("*a")
    -- one line per run in each chart, in the run's color
    assert.truthy(html:find('<polyline class="series" data-name="a" fill="none" stroke="#1f77b4"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="b" fill="none" stroke="#d62728"', 1, true))
    -- every x axis ends at the longest run's last step: b's AUC point on the right edge, a's at 40/60
    local svg = html:match('<svg[^>]-aria%-label="click: evaluation AUC">.-</svg>')
    local left, right = tonumber(svg:match('<rect class="frame" x="(%d+)"')), frame_right(svg)
    assert.is_true(math.abs(points_of(svg, "b")[1] - right) < 0.01)
    assert.is_true(math.abs((points_of(svg, "a")[1] - left) / (right - left) - 40 / 60) < 0.001)
    -- final metrics side by side, the best of each row in bold
    assert.truthy(html:find("<tr><td>click AUC</td><td>0.7100</td><td class=\"best\">0.7400</td></tr>", 1, true))
    assert.truthy(html:find("<tr><td>click logloss</td><td>0.2900</td><td class=\"best\">0.2600</td></tr>", 1, true), html)
    assert.truthy(html:find("<tr><td>steps</td><td>40</td><td>60</td></tr>", 1, true))
    -- settings: only model.experts differs (model_dir is not a setting)
    local differ = html:match("<h2>Settings that differ</h2>\n(.-)<details>")
    assert.truthy(differ:find("<tr><td>model.experts</td><td>4</td><td>8</td></tr>", 1, true), differ)
    local _, rows = differ:gsub("<tr><td>", "")
    assert.are.equal(1, rows)
    assert.truthy(html:find("<tr><td>model.expert</td><td>{8}</td><td>{8}</td></tr>", 1, true)) -- under all settings
    assert.is_nil(html:find("model_dir", 1, true))
    assert.is_nil(html:find("<script", 1, true))
  end)

  it("takes a sweep's directory for its trials, in trial order", function()
    for _, t in ipairs { 1, 2, 10 } do run_dir(string.format("%s/sweep/trial-%d", tmp, t), 0.6 + t / 100, 0.01, 20) end
    os.execute("mkdir -p '" .. tmp .. "/sweep/other'")
    assert.are.same({ tmp .. "/sweep/trial-1", tmp .. "/sweep/trial-2", tmp .. "/sweep/trial-10" }, report.runs({ tmp .. "/sweep/" }))
    local rc, out = tiny.run(string.format("report %s/sweep --out %s/s.html", tmp, tmp))
    assert.are.equal(0, rc)
    assert.are.equal(string.format("report: %s/s.html (3 runs)\n", tmp), out)
    local html = assert(io.open(tmp .. "/s.html")):read("*a")
    assert.truthy(html:find("3 runs: trial-1, trial-2, trial-10", 1, true))
    assert.truthy(html:find("the runs' configs (config.lua) are the same", 1, true))
    local rc2, _, err = tiny.run(string.format("report %s/sweep/other", tmp))
    assert.are.equal(2, rc2)
    assert.truthy(err:find("other has no metrics.jsonl and no runs in it (is it the model_dir", 1, true), err)
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
    pr:log(run, { step = 20, epoch = 1, loss = 0.4, running_auc = { click = 0.7 }, examples_per_s = 1500, gflops = 2.5 })
    pr:eval(run, { click = { auc = 0.8 } }, true)
    f:close()
    local out = assert(io.open(p)):read("*a")
    os.remove(p)
    assert.are.equal("step 20  epoch 1  loss 0.4000  auc click 0.7000  1.5k ex/s  2.5 GFLOP/s\nfinal eval (step 20): click auc 0.8000\n", out)
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
