-- EasyRec's train_distribute under mpirun: the sample that sets it
-- (mmoe_mirrored_strategy_on_taobao: MultiWorkerMirroredStrategy, a backbone
-- of SENet and MMoE) trains with `mpirun -np 2 mtl train` as mtl's
-- data-parallel training and reaches the single process's weights and
-- metrics; with PSStrategy it trains too, the tables left to the planner.
-- The sample as it is but for its input paths and size (300 generated rows,
-- batch 64, 8 steps, no shuffling: a shuffle buffer is drawn per rank, so
-- the ranks' global batches would not be the single process's) and its DNNs'
-- batch normalization off for the comparison (each rank normalizes with its
-- own rows' statistics, as DDP without SyncBatchNorm, so with it on N ranks
-- do not take the single process's step). Measured: at most 4.9e-6 (max |a -
-- b| / max |a| of a tensor), the AUCs equal, loglosses 1e-9 apart.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"
local easyrec = require "mtl.config.easyrec"
local synth = require "mtl.synth"
local json = require "cjson"

local SAMPLE = "spec/fixtures/easyrec/samples/mmoe_mirrored_strategy_on_taobao.config"

describe("EasyRec's train_distribute under mpirun #slow", function()
  local dir = shell.tmpdir()
  local raw = easyrec.load(SAMPLE)
  synth.rows(raw, { path = dir .. "/train.csv", rows = 300, seed = 1 })
  synth.rows(raw, { path = dir .. "/test.csv", rows = 200, seed = 2 })
  local text = shell.read(SAMPLE)
  local no_bn = text:gsub("(hidden_units: %[[^\n]*%]\n)", "%1        use_bn: false\n")
  shell.write(dir .. "/mirrored.config", no_bn)
  shell.write(dir .. "/ps.config", (text:gsub("train_distribute: MultiWorkerMirroredStrategy", "train_distribute: PSStrategy")))
  local function args(config, run)
    return string.format("train %s/%s --set data.train=%s/train.csv --set data.eval=%s/test.csv --set data.batch_size=64 " ..
      "--set data.shuffle_buffer=0 --set train.steps=8 --set train.checkpoint_every=false --model-dir %s/%s --json --quiet",
      dir, config, dir, dir, dir, run)
  end
  local one = shell.run(string.format("cd %s && %s %s 2>&1; echo status $?", shell.quote(shell.root),
    shell.quote(shell.launcher), args("mirrored.config", "one")))
  local status, out, err = mpirun.run(2, args("mirrored.config", "two"), { limit = 300 })
  teardown(function() shell.rm_rf(dir) end)

  it("maps MultiWorkerMirroredStrategy to data-parallel training with the tables replicated", function()
    assert.truthy(one:find("status 0\n", 1, true), one)
    assert(status == 0, out .. err)
    assert.are.equal(3, select(2, no_bn:gsub("use_bn: false", "")))
    local cfg = require("mtl.config").read_data(dir .. "/two/config.lua")
    assert.are.equal("replicated", cfg.train.table_placement)
    assert.are.equal(2, require("mtl").checkpoint.read_manifest(dir .. "/two/checkpoints", 8).ranks)
  end)

  it("reaches the single process's weights and optimizer state (max |a - b| / max |a| <= 1e-5)", function()
    local d, which, count = training.max_relative_difference(dir .. "/one/checkpoints/step-8.ckpt",
      dir .. "/two/checkpoints/step-8.ckpt")
    assert.is_true(count > 100)
    assert(d <= 1e-5, string.format("%s differs by %.3g", tostring(which), d))
  end)

  it("evaluates to the single process's metrics, printed once", function()
    local want = json.decode(one:match("^[^\n]*")).metrics
    local _, lines = out:gsub("\n", "")
    assert.are.equal(1, lines, out)
    local got = json.decode(out).metrics
    for _, task in ipairs({ "ctr", "cvr" }) do
      assert.are.equal(200, got[task].count)
      for _, k in ipairs({ "auc", "logloss", "calibration" }) do
        assert(math.abs(got[task][k] - want[task][k]) <= 1e-6 * math.max(1, math.abs(want[task][k])),
          string.format("%s %s: %.17g at 2 ranks, %.17g in one process", task, k, got[task][k], want[task][k]))
      end
    end
  end)

  it("trains PSStrategy (batch normalization on) at 2 ranks, the planner placing the tables", function()
    local s, o, e = mpirun.run(2, args("ps.config", "ps"), { limit = 300 })
    assert(s == 0, o .. e)
    local m = json.decode(o).metrics
    for _, task in ipairs({ "ctr", "cvr" }) do
      assert.are.equal(200, m[task].count)
      assert.is_true(m[task].auc > 0 and m[task].auc < 1)
    end
    local cfg = require("mtl.config").read_data(dir .. "/ps/config.lua")
    assert.are.equal("auto", cfg.train.table_placement)
  end)
end)
