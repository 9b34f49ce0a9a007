-- Data-parallel training is the single-process training of the global batch:
-- the five models trained by 2 and 3 ranks (each rank B/N rows of every
-- global batch of B = 25; 3 ranks read 8, 8 and 9 rows, and the last global
-- batch of the epoch, 10 rows, leaves rank 2 with none) reach the parameters,
-- tables and optimizer state of one process with batch 25, up to float
-- summation order: after 98 steps, for every tensor, max |a - b| / max |a|
-- <= 1e-5 (measured: at most 4.2e-6, DBMTL's Adam moments). pay is masked by
-- click (a task space), so the ranks' loss denominators differ.
-- Evaluation by 1, 2 and 3 ranks of the same checkpoint gives the same
-- metrics, bit for bit, on every rank.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"

local TOLERANCE = 1e-5
local SCRIPT = "spec/scripts/dist/train_models.lua"

describe("data-parallel training of the five models", function()
  local dir = shell.tmpdir()
  training.write(dir)
  local models = table.concat(training.NAMES, " ")
  local runs = {}
  -- one process, then 2 and 3 ranks
  local one = shell.run(string.format("cd %s && timeout 300 %s %s %s train %s 2>&1; echo status $?",
    shell.quote(shell.root), shell.quote(shell.launcher), SCRIPT, shell.quote(dir), models))
  for _, n in ipairs({ 2, 3 }) do
    local status, stdout, stderr = mpirun.run(n, string.format("%s %s train %s", SCRIPT, shell.quote(dir), models),
      { limit = 300 })
    runs[n] = { status = status, out = stdout .. stderr }
  end

  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  it("trains in one process and at 2 and 3 ranks", function()
    assert.truthy(one:find("status 0\n", 1, true), one)
    for n, r in pairs(runs) do assert(r.status == 0, n .. " ranks: " .. r.out) end
  end)

  for _, name in ipairs(training.NAMES) do
    it(name .. ": N ranks with B/N rows each reach one process's state with batch B", function()
      local ref = training.last_checkpoint(dir .. "/" .. name .. "-n1")
      assert.are.equal(98, ref.step)
      for _, n in ipairs({ 2, 3 }) do
        local got = training.last_checkpoint(string.format("%s/%s-n%d", dir, name, n))
        assert.are.equal(98, got.step)
        local d, which, count = training.max_relative_difference(ref.path, got.path)
        assert.is_true(count > 20)
        assert(d <= TOLERANCE, string.format("%s at %d ranks: %s differs by %.3g (max |a-b| / max |a|)", name, n,
          tostring(which), d))
        assert.are.equal(n, require("mtl").checkpoint.read_manifest(dir .. "/" .. name .. "-n" .. n .. "/checkpoints", 98).ranks)
      end
    end)
  end

  it("evaluates a checkpoint at 1, 2 and 3 ranks to the same metrics, bit for bit", function()
    local function metrics(out)
      local by = mpirun.by_rank(out)
      return by
    end
    local single = shell.run(string.format("cd %s && %s %s %s eval %s 2>&1", shell.quote(shell.root),
      shell.quote(shell.launcher), SCRIPT, shell.quote(dir), models))
    local want = metrics(single)[0]
    assert(want and want["mmoe.click.auc"], single)
    local keys = 0
    for _ in pairs(want) do keys = keys + 1 end
    assert.is_true(keys >= 5 * 2 * 4)
    assert.is_not_nil(want["mmoe.click.gauc"]) -- eval.gauc: the groups are gathered too
    for _, n in ipairs({ 2, 3 }) do
      local status, stdout, stderr = mpirun.run(n, string.format("%s %s eval %s", SCRIPT, shell.quote(dir), models))
      assert(status == 0, stderr)
      local got = metrics(stdout)
      for r = 0, n - 1 do assert.are.same(want, got[r], string.format("rank %d of %d", r, n)) end
    end
  end)
end)
