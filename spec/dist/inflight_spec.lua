-- Ordered allreduces in flight together, progressed with h:test() by ranks
-- out of step (spec/scripts/dist/inflight.lua): the second operation of each
-- bucket (its gather) is posted in the order the buckets were started on
-- every rank, however the tests fall, so MPI matches them and every sum is
-- right (before, a test could post one bucket's gather before an earlier
-- one's on one rank only, and MPI mixed them up: truncated messages, a crash).
local mpirun = require "dist.mpirun"

for _, size in ipairs({ 2, 3 }) do
  describe("ordered allreduces in flight at " .. size .. " ranks", function()
    it("complete through h:test() in any order, with the right sums", function()
      local status, stdout, stderr = mpirun.run(size, "spec/scripts/dist/inflight.lua", { limit = 120 })
      assert(status == 0, string.format("status %s\n%s\n%s", tostring(status), stdout, stderr))
      local S = size * (size + 1) / 2 -- sum of rank + 1
      local R = size * (size - 1) / 2 -- sum of the ranks
      local results = mpirun.by_rank(stdout)
      for r = 0, size - 1 do
        local sums = assert(results[r] and results[r].sums, stdout)
        assert.are.equal(60, #sums)
        for _, v in ipairs(sums) do assert.are.equal(S + 10 * S + R, tonumber(v)) end
      end
    end)
  end)
end
