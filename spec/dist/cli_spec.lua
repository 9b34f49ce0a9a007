-- `mtl eval`, `mtl predict` and `mtl export` under mpirun: every rank scores
-- its batches and the result is the single process's, bit for bit (the eval
-- metrics' JSON, the predictions file, the exported weights); only rank 0
-- writes and prints.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"

-- `mtl ARGS` in one process: status, stdout, stderr.
local function single(args)
  local tmp = shell.tmpdir()
  local status = shell.run(string.format("cd %s && %s %s >%s/out 2>%s/err; echo $?", shell.quote(shell.root),
    shell.quote(shell.launcher), args, tmp, tmp))
  local out, err = shell.read(tmp .. "/out"), shell.read(tmp .. "/err")
  shell.run("rm -rf " .. shell.quote(tmp))
  return tonumber(status), out, err
end

describe("mtl eval, predict and export at several ranks", function()
  local dir = shell.tmpdir()
  training.write(dir, { epochs = 1 })
  local cfg = shell.quote(dir .. "/esmm.lua")
  -- a run of 2 ranks gives the checkpoint
  local status, out, err = mpirun.run(2, string.format("train %s --json --model-dir %s", cfg, shell.quote(dir .. "/run")))
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  it("trains at 2 ranks, rank 0 printing", function()
    assert(status == 0, out .. err)
    local _, n = out:gsub('"command":"train"', "")
    assert.are.equal(1, n, "one rank prints the result: " .. out)
    assert.are.equal(49, require("cjson").decode(out).step)
  end)

  it("mtl eval: the metrics of one process, printed once", function()
    local args = string.format("eval %s --checkpoint %s --json --batch-size 16", cfg, shell.quote(dir .. "/run"))
    local s1, want, e1 = single(args)
    assert(s1 == 0, e1)
    local json = require "cjson"
    assert.is_table(json.decode(want).metrics.cvr)
    for _, n in ipairs({ 2, 3 }) do
      local s, got, e = mpirun.run(n, args)
      assert(s == 0, e)
      local _, lines = got:gsub("\n", "")
      assert.are.equal(1, lines, got)
      assert.are.same(json.decode(want), json.decode(got))
    end
  end)

  it("mtl predict: rank 0 writes every row in input order, as one process does", function()
    local function args(path)
      return string.format("predict %s --checkpoint %s --input %s --output %s --pass-through user,item --batch-size 7",
        cfg, shell.quote(dir .. "/run"), shell.quote(dir .. "/test.csv"), shell.quote(path))
    end
    local s1, _, e1 = single(args(dir .. "/p1.csv"))
    assert(s1 == 0, e1)
    local want = shell.read(dir .. "/p1.csv")
    local _, lines = want:gsub("\n", "")
    assert.are.equal(301, lines)
    for _, n in ipairs({ 2, 3 }) do
      local path = string.format("%s/p%d.csv", dir, n)
      local s, out, e = mpirun.run(n, args(path))
      assert(s == 0, e)
      assert.are.equal(want, shell.read(path))
      local _, said = out:gsub("wrote 300 rows", "")
      assert.are.equal(1, said, out)
    end
  end)

  it("mtl export of the distributed run's checkpoint: the same model directory as in one process", function()
    local args = string.format("export %s --checkpoint %s --out %%s", cfg, shell.quote(dir .. "/run"))
    local s1, _, e1 = single(args:format(shell.quote(dir .. "/m1")))
    assert(s1 == 0, e1)
    local s2, _, e2 = mpirun.run(2, args:format(shell.quote(dir .. "/m2")))
    assert(s2 == 0, e2)
    assert.are.equal(shell.read(dir .. "/m1/model.ckpt"), shell.read(dir .. "/m2/model.ckpt"))
    assert.are.equal(shell.read(dir .. "/m1/config.lua"), shell.read(dir .. "/m2/config.lua"))
    -- serving's loader reads it: the same predictions as the checkpoint
    local s3, o3, e3 = single(string.format("eval %s --json", shell.quote(dir .. "/m2")))
    assert(s3 == 0, e3)
    local s4, o4 = single(string.format("eval %s --checkpoint %s --json", cfg, shell.quote(dir .. "/run")))
    assert.are.equal(0, s4)
    local json = require "cjson"
    assert.are.same(json.decode(o4).metrics, json.decode(o3).metrics)
  end)
end)
