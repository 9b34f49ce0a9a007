-- Faults: when a rank hangs, exits early or fails, the other ranks stop
-- within the timeout (MTL_DIST_TIMEOUT = 3 s here, above a slow start under
-- the sanitizers; the report waits up to min(timeout, 2 s) more for the
-- ranks' answers) with a message naming the
-- rank and the caller's context ("step 3"), never hang (spec/scripts/dist/fault.lua).
local mpirun = require "dist.mpirun"

local function run(np, mode, culprit)
  return mpirun.run(np, string.format("spec/scripts/dist/fault.lua %s %d", mode, culprit),
    { env = "MTL_DIST_TIMEOUT=3", limit = 60 })
end

-- "finished" lines would mean a rank went past the fault
local function check_stopped(status, stdout, stderr, seconds)
  assert(status ~= 0 and status ~= 124, string.format("status %s after %.1f s\n%s\n%s", tostring(status), seconds,
    stdout, stderr))
  assert.is_nil(stdout:find("finished"))
  -- timeout + grace + MPI_Abort; far below the 60 s limit (no hang)
  assert.is_true(seconds < 20, string.format("took %.1f s", seconds))
end

describe("mtl.dist faults", function()
  it("a rank that hangs: rank 0 stops the run within the timeout and names it", function()
    local status, stdout, stderr, seconds = run(2, "hang", 1)
    check_stopped(status, stdout, stderr, seconds)
    assert.truthy(stderr:find("mtl.dist: rank 0 of 2 (step 3) stops the run: allreduce #2 did not complete within "
      .. "3 s (MTL_DIST_TIMEOUT); no answer from rank 1\n", 1, true), stderr)
    assert.truthy(stderr:find("mtl.dist:   rank 1: no answer within 2 s (dead, hung, or busy outside mtl.dist)\n", 1,
      true), stderr)
  end)

  it("at 3 ranks the lowest waiting rank reports, naming the hung rank and what the others do", function()
    local status, stdout, stderr, seconds = run(3, "hang", 2)
    check_stopped(status, stdout, stderr, seconds)
    assert.truthy(stderr:find("mtl.dist: rank 0 of 3 (step 3) stops the run: allreduce #2 did not complete within "
      .. "3 s (MTL_DIST_TIMEOUT); no answer from rank 2\n", 1, true), stderr)
    assert.truthy(stderr:find("mtl.dist:   rank 1 ", 1, true), stderr)
    assert.truthy(stderr:find("in allreduce #2 (step 3)", 1, true), stderr)
  end)

  it("a rank that exits early (status 0): the others stop and say it exited", function()
    local status, stdout, stderr, seconds = run(2, "exit", 1)
    check_stopped(status, stdout, stderr, seconds)
    assert.truthy(stderr:find("mtl.dist: rank 0 of 2 (step 3) stops the run: allreduce #2 did not complete within "
      .. "3 s (MTL_DIST_TIMEOUT); rank 1 exited\n", 1, true), stderr)
    assert.truthy(stderr:find("mtl.dist:   rank 1 has exited (status 0) after 1 collective (step 3)\n", 1, true),
      stderr)
  end)

  it("a Lua error on one rank stops every rank at once", function()
    local status, stdout, stderr, seconds = run(2, "error", 0)
    check_stopped(status, stdout, stderr, seconds)
    assert.truthy(stderr:find("bad input on rank 0", 1, true), stderr)
    assert.truthy(stderr:find("mtl.dist: rank 0 of 2 (step 3) exits with status 1: stopping all ranks\n", 1, true),
      stderr)
  end)
end)
