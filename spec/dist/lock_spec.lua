-- model_dir/train.lock under mpirun (docs/training.md, "Before the first
-- step"): rank 0 takes it and the ranks agree, so a model_dir in use is
-- refused by every rank at once (none waits for another) and a free one is
-- locked once and released at the end.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"
local sys = require "mtl.sys"

describe("mtl train at 2 ranks and the model_dir lock", function()
  local dir = shell.tmpdir()
  training.write(dir, { epochs = 1 })
  local cfg = dir .. "/mmoe.lua"
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  it("a model_dir in use is refused by every rank, with rank 0's message", function()
    local run = dir .. "/held"
    sys.mkdir_p(run)
    -- held by this (live) process
    shell.write(run .. "/train.lock", string.format("pid %d host %s started x\n", sys.pid(), sys.hostname()))
    local status, _, err = mpirun.run(2, string.format("train %s --quiet --model-dir %s", cfg, run), { limit = 60 })
    assert.are_not.equal(0, status)
    assert.are_not.equal(124, status, "no rank hangs (timeout)")
    assert.truthy(err:find(string.format("mtl train: %s is in use by another `mtl train` (process %d on %s,", run, sys.pid(),
      sys.hostname()), 1, true), err)
    assert.truthy(err:find("mtl train: rank 0 failed (lock): see its message", 1, true), err)
    assert.is_nil(require("mtl").checkpoint.list(run .. "/checkpoints")[1])
  end)

  it("a free one is locked by rank 0 and released at the end", function()
    local run = dir .. "/free"
    local status, _, err = mpirun.run(2, string.format("train %s --quiet --model-dir %s --set train.steps=4", cfg, run))
    assert(status == 0, err)
    assert.is_false(sys.exists(run .. "/train.lock"))
    local all = require("mtl").checkpoint.list(run .. "/checkpoints")
    assert.are.equal(4, all[#all].step)
  end)
end)
