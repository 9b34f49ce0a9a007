-- The ordered allreduce (mtl.dist's default) is deterministic: at 3 ranks,
-- two runs give the same bits, every rank gets the same bits, and they are
-- the float32 sum in rank order ((x0 + x1) + x2) computed here in one
-- process from the same seeded values; bucketing does not change them.
local mtl = require "mtl"
local mpirun = require "dist.mpirun"

describe("mtl.dist ordered allreduce", function()
  local size, n = 3, 257
  local runs = {}
  for i = 1, 2 do
    local status, stdout, stderr = mpirun.run(size, "spec/scripts/dist/ordered.lua " .. n)
    assert(status == 0, string.format("mpirun exited %s\n%s\n%s", tostring(status), stdout, stderr))
    runs[i] = mpirun.by_rank(stdout)
  end

  -- the rank-order float32 sum, from the values each rank makes
  local expected = mtl.zeros(n)
  for rank = 0, size - 1 do
    mtl.seed(100 + rank)
    local x = mtl.randn(n) * 10 ^ rank
    expected = rank == 0 and x or expected + x
  end
  local want = {}
  for i, v in ipairs(expected:totable()) do want[i] = string.format("%.17g", v) end

  it("gives every rank, in two runs, the bits of the sum in rank order", function()
    for i = 1, 2 do
      for rank = 0, size - 1 do
        assert.are.same(want, runs[i][rank].ordered)
        assert.are.same(want, runs[i][rank].many) -- bucketed (several buffers): the same bits
      end
    end
  end)

  it("MPI's own algorithm agrees within float rounding, the same on every rank", function()
    for rank = 0, size - 1 do
      assert.are.same(runs[1][0].mpi, runs[1][rank].mpi)
      for i, v in ipairs(runs[1][rank].mpi) do
        local w = tonumber(want[i])
        assert.is_true(math.abs(tonumber(v) - w) <= 1e-5 * math.max(1, math.abs(w)), v .. " vs " .. want[i])
      end
    end
  end)
end)
