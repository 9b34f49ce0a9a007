-- mtl.dist: ranks and collectives on tensors (docs/distributed.md).
--
--   mpirun --oversubscribe -np 2 build/mtl script.lua
--   local dist = require("mtl").dist
--   dist.rank(), dist.size()               0..size-1 as in MPI; 0 and 1 without mpirun
--   dist.allreduce(t, "mean")              in place, every rank the same bits
--   local rows, counts = dist.alltoallv(ids, send_counts)
--
-- Every collective is called by every rank in the same order with the same
-- kind of arguments (checked: the ranks' calls are compared first). One
-- process is the N = 1 case of the same calls. The C side is
-- runtime/bind/bind_dist.c over runtime/dist/ (MPI only in mpi.c).
local format = string.format

return function(mtl, core)
  local C = core._dist
  mtl._dist = nil -- copied from core by init.lua; reached through mtl.dist only
  C.start()       -- initializes MPI when mpirun started this process

  local dist = {
    rank = C.rank,               -- this process's rank, 0..size()-1
    size = C.size,               -- the number of ranks
    info = C.info,               -- {rank, size, with_mpi, library, timeout, collectives}
    barrier = C.barrier,         -- returns once every rank called it
    broadcast = C.broadcast,     -- (t[, root = 0]) -> t: root's values everywhere
    allreduce = C.allreduce,     -- (t[, op = "sum"[, algorithm = "ordered"]]) -> t, in place
    allgather = C.allgather,     -- (t) -> every rank's rows in rank order, counts
    alltoallv = C.alltoallv,     -- (t, send_counts) -> rows received, recv_counts
    set_context = C.set_context, -- (label): named in fault and timeout messages ("step 1200")
    context = C.context,
    set_timeout = C.set_timeout, -- (seconds): how long a collective waits (MTL_DIST_TIMEOUT)
    -- (t[, on = true]): a dynamic table's training lookups count, admit and stamp
    -- the same lookup's ids of every rank (replicas stay alike; a collective per lookup)
    share_sightings = C.share_sightings,
  }

  -- Calls a C function of core._dist; its error is raised at the caller of
  -- the function `level` levels up (the user's line, not this file's).
  local function call(level, fn, ...)
    local ok, result = pcall(fn, ...)
    if not ok then error(result, level + 1) end
    return result
  end

  -- A running allreduce: h:wait() completes it and returns what was given;
  -- h:test() makes progress and says whether it is complete.
  local Handle = {}
  Handle.__index = Handle
  function Handle:wait()
    call(2, self._request.wait, self._request)
    return self.result
  end
  function Handle:test() return call(2, self._request.test, self._request) end
  function Handle:buffers() return self._request:buffers() end -- flat buffers (MPI operations) used

  -- Starts an allreduce of one tensor (in place); returns a handle.
  function dist.iallreduce(t, op, algorithm)
    local request = call(2, C.iallreduce, t, op, algorithm, nil, "mtl.dist.iallreduce")
    return setmetatable({ _request = request, result = t }, Handle)
  end

  local OPTIONS = { op = true, algorithm = true, bucket_bytes = true }

  local function start_many(fname, list, opts)
    if type(list) ~= "table" then
      local what = getmetatable(list) == core.Tensor_mt and "one tensor (use mtl.dist.allreduce)" or type(list)
      error(format("%s: expected a list of tensors, got %s", fname, what), 3)
    end
    opts = opts or {}
    if type(opts) ~= "table" then error(format("%s: expected an options table, got %s", fname, type(opts)), 3) end
    for k in pairs(opts) do
      if not OPTIONS[k] then
        error(format("%s: unknown option '%s' (expected op, algorithm or bucket_bytes)", fname, tostring(k)), 3)
      end
    end
    local request = call(3, C.iallreduce, list, opts.op, opts.algorithm, opts.bucket_bytes, fname)
    return setmetatable({ _request = request, result = list }, Handle)
  end

  -- Allreduce of many tensors (gradients) packed into a few flat buffers:
  -- opts = {op = "sum", algorithm = "ordered", bucket_bytes = 4 MiB}.
  -- iallreduce_many starts every buffer and returns a handle.
  function dist.iallreduce_many(list, opts)
    local handle = start_many("mtl.dist.iallreduce_many", list, opts) -- (not a tail call: error levels)
    return handle
  end
  function dist.allreduce_many(list, opts) return start_many("mtl.dist.allreduce_many", list, opts):wait() end

  mtl.dist = dist
end
