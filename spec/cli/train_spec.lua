-- `mtl train` end to end on a tiny generated data set (spec/cli/tiny.lua):
-- checkpoints, metrics.jsonl, report.html with SVG curves and gate bars,
-- plain progress lines off a terminal, the --json line, run.json/config.lua.
local tiny = require "cli.tiny"
local json = require "cjson"

describe("mtl train", function()
  local dir, rc, out, err
  setup(function()
    dir = tiny.setup()
    rc, out, err = tiny.run(string.format("train %s/config.lua", dir))
  end)
  teardown(function() tiny.rm(dir) end)

  it("exits 0 and prints progress lines, eval lines, the metrics table and the report path", function()
    assert.are.equal(0, rc, err)
    -- not a terminal: plain lines every log_every (5) steps with the running AUC per task
    assert.truthy(out:find("step 5  epoch 1  loss %d+%.%d+  auc click [%d.-]+ pay [%d.-]+  [%d.k]+ ex/s  [%d.]+ GFLOP/s\n"), out)
    assert.truthy(out:find("step 20  epoch 3  loss", 1, true), out)
    assert.is_nil(out:find("\r", 1, true)) -- no bar redraws in a pipe
    assert.truthy(out:find("eval at step 10: click auc 0%.%d+  pay auc 0%.%d+"), out)
    assert.truthy(out:find("final eval (step 24): click auc", 1, true), out)
    assert.truthy(out:find("task%s+auc%s+gauc%s+logloss%s+calibration%s+rows\nclick%s+0%.%d%d%d%d"), out)
    assert.truthy(out:find("report: " .. dir .. "/run/report.html", 1, true), out)
  end)

  it("logs each record's GFLOP/s: the step's matrix-product FLOPs per example times examples/s", function()
    -- the tiny MMoE, input 4 + 4 + 1 + 1 = 10: experts 3 x [10 -> 8], gates 2 x [10 -> 3],
    -- towers 2 x ([8 -> 4] + [4 -> 1]); 2 FLOPs per multiply-add, 3 products per layer in training
    local forward = 2 * (3 * 10 * 8 + 2 * 10 * 3 + 2 * (8 * 4 + 4 * 1))
    local n = 0
    for line in io.lines(dir .. "/run/metrics.jsonl") do
      local r = json.decode(line)
      if r.kind == "train" then
        n = n + 1
        local want = 3 * forward * r.examples_per_s / 1e9
        assert.is_true(math.abs(r.gflops - want) <= 1e-9 * want, string.format("%.12g vs %.12g", r.gflops, want))
      end
    end
    assert.is_true(n >= 4)
    local logged = out:match("step 5  epoch 1 .-  ([%d.]+) GFLOP/s\n")
    local r1 = json.decode(io.lines(dir .. "/run/metrics.jsonl")())
    assert.are.equal(string.format("%.1f", r1.gflops), logged)
  end)

  it("writes checkpoints every checkpoint_every steps and at the end", function()
    local steps = {}
    for _, c in ipairs(require("mtl").checkpoint.list(dir .. "/run/checkpoints")) do steps[#steps + 1] = c.step end
    assert.are.same({ 4, 8, 12, 16, 20, 24 }, steps)
    local st = require("mtl").load(dir .. "/run/checkpoints/step-24.ckpt")
    assert.are.equal("mtl-run-1", st.format)
    assert.are.equal(24, st.step)
  end)

  it("logs train and eval records to metrics.jsonl, with gate weights that sum to 1", function()
    local recs = require("mtl.report").read_metrics(dir .. "/run/metrics.jsonl")
    local train_steps, evals = {}, {}
    for _, r in ipairs(recs) do
      if r.kind == "train" then
        train_steps[#train_steps + 1] = r.step
        assert.is_number(r.loss)
        assert.is_number(r.task_loss.click)
        assert.is_number(r.task_loss.pay)
      elseif r.kind == "eval" then
        evals[#evals + 1] = r
      end
    end
    assert.are.same({ 5, 10, 15, 20 }, train_steps)
    assert.are.equal(3, #evals) -- steps 10, 20 and the final one
    local final = evals[3]
    assert.is_true(final.final)
    assert.are.equal(24, final.step)
    assert.is_true(final.metrics.click.auc > 0.75, "the click pattern (a + b > 1) is learned")
    assert.are.equal(150, final.metrics.click.count)
    assert.are.equal(2, #final.gates)
    for _, g in ipairs(final.gates) do
      assert.are.equal(3, #g.weights)
      local s = 0
      for _, w in ipairs(g.weights) do s = s + w end
      assert.is_true(math.abs(s - 1) < 1e-4)
    end
  end)

  it("writes a self-contained report.html: SVG curves, expert bars, no scripts or network", function()
    local f = assert(io.open(dir .. "/run/report.html"))
    local html = f:read("*a")
    f:close()
    assert.truthy(html:find("^<!DOCTYPE html>"))
    local _, n_svg = html:gsub("<svg ", "")
    -- loss, learning rate, throughput, AUC, eval log loss; per task its gate over time and its last bars
    assert.are.equal(5 + 2 + 2, n_svg)
    assert.truthy(html:find('<polyline class="series" data-name="lr"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="examples/s"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="expert 3"', 1, true))
    assert.is_nil(html:find('http-equiv="refresh"', 1, true)) -- the run has ended: no more reloading
    assert.truthy(html:find('<polyline class="series" data-name="total"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="click (eval)"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="pay (eval)"', 1, true))
    assert.truthy(html:find('<polyline class="series" data-name="pay (train window)"', 1, true))
    local _, bars = html:gsub('<rect class="bar"', "")
    assert.are.equal(6, bars) -- 2 tasks x 3 experts
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("http", 1, true))
    assert.truthy(html:find("model <b>mmoe</b>", 1, true))
  end)

  it("keeps the resolved config and run.json in model_dir", function()
    local cfg = dofile(dir .. "/run/config.lua")
    assert.are.equal("mmoe", cfg.model.name)
    assert.are.equal(3, cfg.model.experts)
    local f = assert(io.open(dir .. "/run/run.json"))
    local run = json.decode(f:read("*a"))
    f:close()
    assert.are.equal("mmoe", run.model)
  end)

  it("refuses to mix runs: existing checkpoints need --resume or --fresh", function()
    local rc2, _, err2 = tiny.run(string.format("train %s/config.lua", dir))
    assert.are.equal(2, rc2)
    assert.truthy(err2:find("already has checkpoints (the latest: step 24): pass --resume", 1, true), err2)
  end)

  it("--json prints one JSON line of final metrics on stdout; --set overrides the config", function()
    local d = tiny.setup()
    local rc2, out2, err2 = tiny.run(string.format("train %s/config.lua --json --set train.epochs=1 --set model.experts=2", d))
    assert.are.equal(0, rc2, err2)
    local lines = {}
    for l in out2:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(1, #lines, out2) -- progress went to stderr
    local res = json.decode(lines[1])
    assert.are.equal("train", res.command)
    assert.are.equal(8, res.step) -- one epoch of 400 rows at batch 50
    assert.is_number(res.metrics.click.auc)
    assert.is_number(res.metrics.pay.logloss)
    assert.are.equal(d .. "/run/checkpoints/step-8.ckpt", res.checkpoint)
    assert.truthy(err2:find("final eval (step 8)", 1, true))
    local recs = require("mtl.report").read_metrics(d .. "/run/metrics.jsonl")
    assert.are.equal(2, #recs[#recs].gates[1].weights)
    tiny.rm(d)
  end)

  it("--fresh starts over", function()
    local rc2, out2, err2 = tiny.run(string.format("train %s/config.lua --fresh --json --set train.epochs=1", dir))
    assert.are.equal(0, rc2, err2)
    assert.are.equal(8, json.decode(out2).step)
    local steps = {}
    for _, c in ipairs(require("mtl").checkpoint.list(dir .. "/run/checkpoints")) do steps[#steps + 1] = c.step end
    assert.are.same({ 4, 8 }, steps)
  end)
end)
