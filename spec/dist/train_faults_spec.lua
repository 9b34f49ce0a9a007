-- Faults in distributed training: a rank that hangs is named with the step
-- by the rank that stops the run (the step is mtl.dist's context); a bad
-- input row is reported by the rank that reads it, with its file:line, and
-- stops every rank (MTL_DIST_TIMEOUT = 3 s here).
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"

describe("faults in distributed training", function()
  local dir = shell.tmpdir()
  training.write(dir, { rows = 400, epochs = 1, raw = true }) -- raw: no fitting pass over every rank's rows
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  it("a rank that hangs after step 3: rank 0 stops the run at step 4, naming it", function()
    local status, stdout, stderr, seconds = mpirun.run(2, string.format("spec/scripts/dist/train_hang.lua %s 1 3",
      shell.quote(dir .. "/mmoe.lua")), { env = "MTL_DIST_TIMEOUT=3", limit = 60 })
    assert(status ~= 0 and status ~= 124, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    assert.is_nil(stdout:find("finished"))
    assert.truthy(stderr:find("mtl.dist: rank 0 of 2 (step 4) stops the run: allreduce #", 1, true), stderr)
    assert.truthy(stderr:find("did not complete within 3 s (MTL_DIST_TIMEOUT); no answer from rank 1\n", 1, true), stderr)
    assert.is_true(seconds < 20, string.format("took %.1f s", seconds))
  end)

  it("a bad row is reported with its file:line by the rank that reads it, and stops the run", function()
    -- row 62 (0-based; line 64 of the file) is rank 1's first row of step 3 (rows 50..74: rank 1 has 62..74)
    local lines = {}
    for line in io.lines(dir .. "/train.csv") do lines[#lines + 1] = line end
    lines[64] = lines[64]:gsub("^(%d+,%d+,%d+,%d+,)[^,]*", "%1oops")
    local f = assert(io.open(dir .. "/train.csv", "w"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
    local status, stdout, stderr = mpirun.run(2, string.format("train %s --quiet --model-dir %s",
      shell.quote(dir .. "/mmoe.lua"), shell.quote(dir .. "/bad")), { env = "MTL_DIST_TIMEOUT=3", limit = 60 })
    assert(status ~= 0 and status ~= 124, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
    assert.truthy(stderr:find(dir .. "/train.csv:64:5: expected a number for column 'price', got \"oops\"", 1, true),
      stderr)
    assert.truthy(stderr:find("mtl.dist: rank 1 of 2 (step 3) exits with status 1: stopping all ranks\n", 1, true), stderr)
  end)
end)
