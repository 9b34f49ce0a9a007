-- `mtl eval`: a checkpoint reproduces the metrics the run logged for it.
local tiny = require "cli.tiny"
local json = require "cjson"

describe("mtl eval", function()
  local dir, final
  setup(function()
    dir = tiny.setup()
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet", dir))
    assert(rc == 0, err)
    local recs = require("mtl.report").read_metrics(dir .. "/run/metrics.jsonl")
    final = recs[#recs]
  end)
  teardown(function() tiny.rm(dir) end)

  it("on the run directory (its latest checkpoint) gives exactly the final metrics", function()
    local rc, out, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run --json", dir, dir))
    assert.are.equal(0, rc, err)
    local res = json.decode(out)
    assert.are.equal("eval", res.command)
    assert.are.equal(24, res.step)
    assert.are.equal(dir .. "/run/checkpoints/step-24.ckpt", res.checkpoint)
    for _, task in ipairs({ "click", "pay" }) do
      for _, m in ipairs({ "auc", "logloss", "calibration", "count" }) do
        assert.are.equal(final.metrics[task][m], res.metrics[task][m], task .. " " .. m)
      end
    end
    -- and the gate utilization logged at that evaluation
    for i, g in ipairs(final.gates) do
      assert.are.same(g.weights, res.gates[i].weights)
    end
  end)

  it("on an earlier checkpoint file gives the metrics of the evaluation at that step", function()
    local recs = require("mtl.report").read_metrics(dir .. "/run/metrics.jsonl")
    local at20
    for _, r in ipairs(recs) do if r.kind == "eval" and r.step == 20 then at20 = r end end
    local rc, out, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run/checkpoints/step-20.ckpt --json", dir, dir))
    assert.are.equal(0, rc, err)
    local res = json.decode(out)
    assert.are.equal(20, res.step)
    assert.are.equal(at20.metrics.click.auc, res.metrics.click.auc)
    assert.are.equal(at20.metrics.pay.auc, res.metrics.pay.auc)
  end)

  it("prints a metrics table without --json, and evaluates --data files", function()
    local rc, out, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run --data %s/train.csv", dir, dir, dir))
    assert.are.equal(0, rc, err)
    assert.truthy(out:find("checkpoint " .. dir .. "/run/checkpoints/step-24.ckpt (step 24)", 1, true), out)
    assert.truthy(out:find("click%s+0%.%d+%s+%-%s+0%.%d+%s+%d%.%d+%s+400\n"), out) -- 400 training rows
  end)

  it("names a missing checkpoint (exit 2) and a file that is not a checkpoint (exit 1)", function()
    local rc, _, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/nope", dir, dir))
    assert.are.equal(2, rc)
    assert.truthy(err:find("mtl eval: checkpoint '" .. dir .. "/nope' does not exist", 1, true), err)
    rc, _, err = tiny.run(string.format("eval %s/config.lua", dir))
    assert.are.equal(2, rc)
    assert.truthy(err:find("--checkpoint is required", 1, true), err)
    rc, _, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/train.csv", dir, dir))
    assert.are.equal(1, rc)
    assert.truthy(err:find("^mtl eval: mtl.load: "), err)
  end)
end)
