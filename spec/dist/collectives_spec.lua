-- mtl.dist's collectives at 2 and 3 ranks under mpirun: every rank's values
-- against closed forms computed here (spec/scripts/dist/collectives.lua
-- makes rank-dependent tensors and prints what each collective returned).
local mpirun = require "dist.mpirun"

local function numbers(values)
  local out = {}
  for i, v in ipairs(values) do out[i] = tonumber(v) end
  return out
end

for _, size in ipairs({ 2, 3 }) do
  describe("mtl.dist collectives at " .. size .. " ranks", function()
    local status, stdout, stderr = mpirun.run(size, "spec/scripts/dist/collectives.lua")
    local results = mpirun.by_rank(stdout)
    local S = size * (size + 1) / 2 -- sum of rank + 1 over the ranks
    local R = size * (size - 1) / 2 -- sum of the ranks

    -- value of the key on every rank, as numbers
    local function each_rank(key, fn)
      for rank = 0, size - 1 do
        local got = results[rank] and results[rank][key]
        assert(got, string.format("rank %d printed no %s\nstdout:\n%s\nstderr:\n%s", rank, key, stdout, stderr))
        fn(rank, got)
      end
    end

    local function ramp(scale)
      local out = {}
      for i = 1, 3 do
        for j = 1, 4 do out[#out + 1] = scale * (10 * i + j) end
      end
      return out
    end

    it("runs to the end on every rank", function()
      assert(status == 0, string.format("mpirun exited %s\nstdout:\n%s\nstderr:\n%s", tostring(status), stdout, stderr))
      each_rank("size", function(_, v) assert.are.same({ size }, numbers(v)) end)
    end)

    it("allreduces sum, mean, max and min with both algorithms, float32 and int64", function()
      for _, alg in ipairs({ "ordered", "mpi" }) do
        each_rank("allreduce_" .. alg .. "_sum", function(_, v) assert.are.same(ramp(S), numbers(v)) end)
        each_rank("allreduce_" .. alg .. "_mean", function(_, v) assert.are.same(ramp(S / size), numbers(v)) end)
        each_rank("allreduce_" .. alg .. "_max", function(_, v) assert.are.same(ramp(size), numbers(v)) end)
        each_rank("allreduce_" .. alg .. "_min", function(_, v) assert.are.same(ramp(1), numbers(v)) end)
        each_rank("allreduce_" .. alg .. "_int64_sum", function(_, v)
          assert.are.same({ 1000 * R + size, 1000 * R + 2 * size, -R }, numbers(v))
        end)
        each_rank("allreduce_" .. alg .. "_int64_max", function(_, v) assert.are.same({ size - 1, 0 }, numbers(v)) end)
      end
      each_rank("allreduce_view", function(_, v) assert.are.same(ramp(S), numbers(v)) end)
      each_rank("allreduce_short", function(_, v) assert.are.same({ S }, numbers(v)) end)
    end)

    it("broadcasts from a root", function()
      each_rank("broadcast", function(_, v) assert.are.same({ size - 1, size - 0.5 }, numbers(v)) end)
      each_rank("broadcast_int64", function(_, v) assert.are.same({ 0 }, numbers(v)) end)
    end)

    it("allgathers rows of different counts in rank order", function()
      local counts, rows = {}, {}
      for r = 0, size - 1 do
        counts[r + 1] = r + 1
        for k = 1, r + 1 do
          rows[#rows + 1] = r
          rows[#rows + 1] = k
        end
      end
      local ints = {}
      for r = 0, size - 1 do ints[r + 1] = 10 + r end
      each_rank("allgather_counts", function(_, v) assert.are.same(counts, numbers(v)) end)
      each_rank("allgather_shape", function(_, v) assert.are.same({ S, 2 }, numbers(v)) end)
      each_rank("allgather", function(_, v) assert.are.same(rows, numbers(v)) end)
      each_rank("allgather_int64", function(_, v) assert.are.same(ints, numbers(v)) end)
    end)

    it("routes int64 ids and float rows with alltoallv, uneven and zero counts", function()
      local zero_seen = false
      each_rank("alltoallv_ids", function(d, v)
        local counts, ids, vecs = {}, {}, {}
        for s = 0, size - 1 do
          counts[s + 1] = (s + d) % 3
          zero_seen = zero_seen or counts[s + 1] == 0
          for k = 0, counts[s + 1] - 1 do
            local code = 10000 * s + 100 * d + k
            ids[#ids + 1] = code
            vecs[#vecs + 1] = code
            vecs[#vecs + 1] = code + 0.25
            vecs[#vecs + 1] = -code
          end
        end
        assert.are.same(ids, numbers(v))
        assert.are.same(counts, numbers(results[d].alltoallv_counts))
        assert.are.same(counts, numbers(results[d].alltoallv_vec_counts))
        assert.are.same({ #ids, 3 }, numbers(results[d].alltoallv_vec_shape))
        assert.are.same(vecs, numbers(results[d].alltoallv_vecs))
      end)
      assert.is_true(zero_seen) -- some rank sends no rows to some rank
    end)

    it("bucketed allreduce of tensors of different shapes equals per-tensor allreduce", function()
      each_rank("many_ordered_buffers", function(_, v) assert.are.same({ 2 }, numbers(v)) end)
      each_rank("many_ordered_identical", function(_, v) assert.are.same({ "true" }, v) end)
      each_rank("many_mpi_buffers", function(_, v) assert.are.same({ 2 }, numbers(v)) end)
      -- MPI's own summation order may depend on the message size
      each_rank("many_mpi_maxdiff", function(_, v) assert.is_true(numbers(v)[1] <= 1e-6) end)
      each_rank("mixed_buffers", function(_, v) assert.are.same({ 2 }, numbers(v)) end)
      each_rank("mixed", function(_, v) assert.are.same({ R, size, R, 2 * size }, numbers(v)) end)
      each_rank("iallreduce", function(_, v) assert.are.same({ tostring(S), tostring(S), "same" }, v) end)
    end)

    it("gives every rank the same error when the ranks' calls differ, and goes on", function()
      each_rank("mismatch", function(_, v)
        local n = v[1]:match("collective #(%d+):")
        assert.are.equal(string.format("false mtl.dist.allreduce: the ranks' calls differ at collective #%s: rank 0 "
          .. "calls allreduce(float32 [2,1], sum, ordered), rank 1 calls allreduce(float32 [2,2], sum, ordered)", n), v[1])
      end)
      each_rank("mismatch_root", function(_, v)
        local n = v[1]:match("collective #(%d+):")
        assert.are.equal(string.format("false mtl.dist.broadcast: the ranks' calls differ at collective #%s: rank 0 "
          .. "calls broadcast(float32 [2], root 0), rank 1 calls broadcast(float32 [2], root %d)", n, size - 1), v[1])
      end)
      local count = results[0].info[1]
      each_rank("info", function(_, v)
        assert.are.equal(count, v[1]) -- every rank entered the same collectives
        assert.are.equal("Open", v[2])
      end)
    end)
  end)
end
