-- mtl.dist in one process (no mpirun): rank 0 of 1, the same calls as with
-- N ranks and the same argument checks, every collective returning its
-- input; and the errors' exact text.
local mtl = require "mtl"
local shell = require "helpers.shell"
local dist = mtl.dist

local hint = dist.info().with_mpi and " (this process runs as the only rank: start several with mpirun -np N)"
  or " (this mtl is built without MPI, so it runs as one rank: apt-get install openmpi-bin libopenmpi-dev and "
  .. "rebuild with bash tools/setup.sh)"

local function err(fn, ...)
  local ok, e = pcall(fn, ...)
  assert(not ok, "expected an error")
  return e
end

describe("mtl.dist with one process", function()
  it("is rank 0 of 1", function()
    assert.are.equal(0, dist.rank())
    assert.are.equal(1, dist.size())
    local info = dist.info()
    assert.are.equal(0, info.rank)
    assert.are.equal(1, info.size)
    assert.are.equal("none (one rank)", info.library)
    assert.are.equal("boolean", type(info.with_mpi))
  end)

  it("allreduce leaves the values (every op, both algorithms) and returns the tensor", function()
    for _, alg in ipairs({ "ordered", "mpi" }) do
      for _, op in ipairs({ "sum", "mean", "max", "min" }) do
        local t = mtl.tensor({ { 1.5, -2 }, { 3, 4 } })
        assert.are.equal(t, dist.allreduce(t, op, alg))
        assert.are.same({ { 1.5, -2 }, { 3, 4 } }, t:totable())
      end
    end
    assert.are.same({ 7, -1 }, dist.allreduce(mtl.tensor({ 7, -1 }, "int64")):totable())
  end)

  it("allgather and alltoallv return copies of the rows and the per-rank counts", function()
    local t = mtl.tensor({ { 1, 2 }, { 3, 4 }, { 5, 6 } })
    local g, counts = dist.allgather(t)
    assert.are.same({ { 1, 2 }, { 3, 4 }, { 5, 6 } }, g:totable())
    assert.are.same({ 3 }, counts)
    g:fill(0)
    assert.are.same({ 1, 2 }, t:totable()[1]) -- a copy
    local r, recv = dist.alltoallv(mtl.tensor({ 5, 7 }, "int64"), { 2 })
    assert.are.same({ 5, 7 }, r:totable())
    assert.are.equal("int64", r:dtype())
    assert.are.same({ 2 }, recv)
    local e, c = dist.alltoallv(mtl.zeros(0, 4), mtl.tensor({ 0 }, "int64"))
    assert.are.same({ 0, 4 }, { e:size(1), e:size(2) })
    assert.are.same({ 0 }, c)
    local s = dist.allgather(mtl.sum(mtl.ones(3))) -- a 0-dimensional tensor is one row
    assert.are.same({ 3 }, s:totable())
  end)

  it("broadcast, barrier and the bucketed allreduce run as the N = 1 case", function()
    local t = mtl.tensor({ 1, 2 })
    assert.are.equal(t, dist.broadcast(t, 0))
    assert.are.equal(t, dist.broadcast(t))
    dist.barrier()
    local list = { mtl.ones(2, 3), mtl.tensor({ 4 }, "int64"), mtl.ones(3, 2):t() }
    assert.are.equal(list, dist.allreduce_many(list, { op = "sum", bucket_bytes = 8 }))
    assert.are.same({ 4 }, list[2]:totable())
    local h = dist.iallreduce_many(list, { op = "max" })
    assert.is_true(h:test())
    assert.are.equal(0, h:buffers()) -- nothing to move with one rank
    assert.are.equal(list, h:wait())
    local x = mtl.ones(3)
    local hx = dist.iallreduce(x, "mean")
    assert.are.equal(x, hx:wait())
    assert.are.same({ 1, 1, 1 }, x:totable())
  end)

  it("counts the collectives and keeps the context and the timeout", function()
    local before = dist.info().collectives
    dist.barrier()
    dist.allreduce(mtl.ones(1))
    assert.are.equal(before + 2, dist.info().collectives)
    dist.set_context("step 12")
    assert.are.equal("step 12", dist.context())
    dist.set_context()
    assert.are.equal("", dist.context())
    local timeout = dist.info().timeout
    dist.set_timeout(2.5)
    assert.are.equal(2.5, dist.info().timeout)
    dist.set_timeout(timeout)
  end)

  it("names calls that expect more ranks, and how to get them", function()
    assert.are.equal("mtl.dist.broadcast: root 1 out of range (the ranks are 0..0)" .. hint,
      err(dist.broadcast, mtl.ones(2), 1))
    assert.are.equal("mtl.dist.alltoallv: expected 1 send counts (one per rank), got 2" .. hint,
      err(dist.alltoallv, mtl.ones(2), { 1, 1 }))
  end)

  it("checks its arguments with exact messages", function()
    assert.are.equal("mtl.dist.allreduce: unknown op 'avg' (expected sum, mean, max or min)",
      err(dist.allreduce, mtl.ones(2), "avg"))
    assert.are.equal("mtl.dist.allreduce: unknown algorithm 'ring' (expected ordered or mpi)",
      err(dist.allreduce, mtl.ones(2), "sum", "ring"))
    assert.are.equal("mtl.dist.allreduce: mean needs float32 tensors, got int64",
      err(dist.allreduce, mtl.tensor({ 1 }, "int64"), "mean"))
    assert.are.equal("mtl.dist.allreduce: expected a tensor for argument 1, got table", err(dist.allreduce, {}))
    assert.are.equal("mtl.dist.alltoallv: the send counts add up to 1 rows but the tensor has 2 ([2,3])",
      err(dist.alltoallv, mtl.ones(2, 3), { 1 }))
    assert.are.equal("mtl.dist.alltoallv: send counts entry 1 must be a non-negative integer, got -1",
      err(dist.alltoallv, mtl.ones(2), { -1 }))
    assert.are.equal("mtl.dist.alltoallv: send counts must be an int64 tensor, got float32",
      err(dist.alltoallv, mtl.ones(2), mtl.ones(1)))
    assert.are.equal("mtl.dist.alltoallv: expected a tensor of rows (1 or more dimensions), got a 0-dimensional "
      .. "tensor", err(dist.alltoallv, mtl.sum(mtl.ones(2)), { 1 }))
    assert.are.equal("mtl.dist.allreduce_many: expected a list of tensors, got one tensor (use mtl.dist.allreduce)",
      err(dist.allreduce_many, mtl.ones(2)))
    assert.are.equal("mtl.dist.allreduce_many: unknown option 'bucket' (expected op, algorithm or bucket_bytes)",
      err(dist.allreduce_many, { mtl.ones(2) }, { bucket = 10 }))
    assert.are.equal("mtl.dist.iallreduce_many: entry 2 of the list is not a tensor (got number)",
      err(dist.iallreduce_many, { mtl.ones(2), 3 }))
    assert.are.equal("mtl.dist.allreduce_many: mean needs float32 tensors, got int64 (in the list)",
      err(dist.allreduce_many, { mtl.ones(2), mtl.tensor({ 1 }, "int64") }, { op = "mean" }))
    assert.are.equal("mtl.dist.allreduce_many: bucket_bytes must be >= 1, got 0",
      err(dist.allreduce_many, { mtl.ones(2) }, { bucket_bytes = 0 }))
    assert.are.equal("mtl.dist.set_timeout: expected a number of seconds > 0, got -1", err(dist.set_timeout, -1))
  end)

  it("shares a dynamic table's sightings as the N = 1 case: the table admits as without it", function()
    local function run(shared)
      mtl.seed(3)
      local t = mtl.Embedding { kind = "dynamic", dim = 2, min_count = 2 }
      if shared then dist.share_sightings(t) end
      local rows = {}
      for _, ids in ipairs { { 1, 2, 1 }, { 2, 3 }, { 3, 3, 4 } } do
        rows[#rows + 1] = t:lookup(ids):checksum()
      end
      local ids, vectors = t:export()
      return rows, ids:totable(), vectors:checksum()
    end
    local a, b = { run(false) }, { run(true) }
    assert.are.same(a, b)
    assert.are.same({ 1, 2, 3 }, b[2])
    local fixed = mtl.Embedding { num_buckets = 3, dim = 2 }
    assert.are.equal("mtl.dist.share_sightings: a fixed table has no sightings (only a dynamic table counts and admits ids)",
      err(dist.share_sightings, fixed))
    assert.are.equal("mtl.dist.share_sightings: expected an mtl.Embedding for argument 1, got no value",
      err(dist.share_sightings))
  end)

  it("refuses a bad MTL_DIST_TIMEOUT when mtl loads", function()
    local out = shell.run("MTL_DIST_TIMEOUT=soon " .. shell.quote(shell.launcher)
      .. " -e 'require \"mtl\"' 2>&1; echo status $?")
    assert.truthy(out:find("mtl.dist: MTL_DIST_TIMEOUT must be a number of seconds > 0, got 'soon'", 1, true), out)
    assert.truthy(out:find("status 1\n", 1, true), out)
  end)
end)
