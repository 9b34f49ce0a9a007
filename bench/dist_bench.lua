-- mtl.dist micro-benchmark: latency and bandwidth of the collectives at the
-- sizes a training step moves (docs/distributed.md, "Measured").
--
--   mpirun --oversubscribe -np 2 build/mtl bench/dist_bench.lua [--quick]
--   (as root add --allow-run-as-root)
--
-- The sizes: the dense parameters of the SPEC MMoE (counted from the model
-- that `mtl bench --model mmoe` builds: 16 tensors, 388,682 values) for the
-- gradient allreduce, and one batch's embedding rows (1024 rows x 13 id
-- fields x dim 16) for the all-to-all of ids and vectors. Every time is the
-- slowest rank's, the best of 5 repeats of the mean over a loop; rank 0
-- prints. --quick runs short loops (spec/dist/bench_spec.lua); --step only
-- what a training step uses (the latency of a small allreduce, the MMoE's
-- gradients in 4 MiB ordered buckets, the all-to-all step: bench/dist_netns.sh).
local mtl = require "mtl"
local bench = require "mtl.bench"
local dist = mtl.dist

local quick = arg[1] == "--quick"
local step_only = arg[1] == "--step"
local rank, size = dist.rank(), dist.size()
local now = bench.now -- monotonic seconds

local function say(fmt, ...)
  if rank == 0 then io.write(string.format(fmt, ...), "\n") io.stdout:flush() end
end

-- Seconds per call of fn: the slowest rank's mean over `loops` calls, best of 5.
local function time(fn, loops)
  loops = quick and math.min(loops, 3) or loops
  for _ = 1, quick and 1 or 3 do fn() end
  local best = math.huge
  for _ = 1, quick and 1 or 5 do
    dist.barrier()
    local t0 = now()
    for _ = 1, loops do fn() end
    local slowest = dist.allreduce(mtl.tensor({ (now() - t0) / loops }), "max", "mpi"):totable()[1]
    best = math.min(best, slowest)
  end
  return best
end

local function us(s) return s * 1e6 end
local function mb(bytes) return bytes / 2 ^ 20 end

-- ---- the sizes of a training step ---------------------------------------------------
-- The SPEC MMoE's dense parameter shapes (printed by the count below when
-- mtl.bench can build the model; these are the shapes it built).
local MMOE_SHAPES = {
  { 4, 256, 232 }, { 4, 256 }, { 4, 128, 256 }, { 4, 128 }, { 4, 232 }, { 4 }, { 64, 128 }, { 64 }, { 1, 64 }, { 1 },
  { 4, 232 }, { 4 }, { 64, 128 }, { 64 }, { 1, 64 }, { 1 },
}
local shapes, source = MMOE_SHAPES, "recorded shapes"
local ok, built = pcall(bench.build, { preset = "spec", model = "mmoe" })
if ok and built then
  shapes, source = {}, "counted from mtl.bench's SPEC MMoE"
  for _, p in ipairs(built:parameters()) do
    if getmetatable(p) == mtl.core.Tensor_mt then shapes[#shapes + 1] = p:shape() end
  end
end
local dense = 0
for _, s in ipairs(shapes) do
  local n = 1
  for _, d in ipairs(s) do n = n * d end
  dense = dense + n
end
local BATCH, FIELDS, DIM = 1024, 13, 16
local rows = BATCH * FIELDS

say("mtl.dist benchmark: %d ranks, %s, MTL_NUM_THREADS=%d", size, dist.info().library, mtl.get_num_threads())
say("dense gradients: %d tensors, %d values (%.2f MiB float32; %s)", #shapes, dense, mb(4 * dense), source)
say("embedding rows per step: %d x %d fields = %d ids (%.2f MiB int64), vectors %d x %d (%.2f MiB float32)",
  BATCH, FIELDS, rows, mb(8 * rows), rows, DIM, mb(4 * rows * DIM))
say("")

-- ---- latency ------------------------------------------------------------------------
say("%-44s %12s", "latency", "us per call")
if not step_only then say("%-44s %12.1f", "barrier", us(time(dist.barrier, 2000))) end
local one = mtl.ones(1)
for _, alg in ipairs(step_only and { "ordered" } or { "ordered", "mpi" }) do
  say("%-44s %12.1f", "allreduce 1 float32 (" .. alg .. ")",
    us(time(function() dist.allreduce(one, "sum", alg) end, step_only and 200 or 2000)))
end
say("")

-- ---- allreduce bandwidth ------------------------------------------------------------
if not step_only then say("%-44s %12s %12s", "allreduce (sum)", "ms per call", "MiB/s") end
for _, n in ipairs(step_only and {} or { 1024, 16384, 262144, 1048576, 4194304 }) do
  local t = mtl.ones(n)
  for _, alg in ipairs({ "ordered", "mpi" }) do
    local s = time(function() dist.allreduce(t, "sum", alg) end, n >= 1048576 and 10 or 100)
    say("%-44s %12.3f %12.0f", string.format("%.2f MiB float32 (%s)", mb(4 * n), alg), s * 1e3, mb(4 * n) / s)
  end
end
if not step_only then say("") end

-- ---- the MMoE's gradients -------------------------------------------------------------
local grads = {}
for i, s in ipairs(shapes) do grads[i] = mtl.ones(unpack(s)) end
say("%-44s %12s %12s %8s", "MMoE dense gradients (mean)", "ms per step", "MiB/s", "buffers")
for _, alg in ipairs(step_only and { "ordered" } or { "ordered", "mpi" }) do
  for _, bucket in ipairs(step_only and { 4 * 2 ^ 20 } or { 4 * 2 ^ 20, 256 * 2 ^ 10 }) do
    local buffers = dist.iallreduce_many(grads, { op = "mean", algorithm = alg, bucket_bytes = bucket })
    local n = buffers:buffers()
    buffers:wait()
    local s = time(function() dist.allreduce_many(grads, { op = "mean", algorithm = alg, bucket_bytes = bucket }) end, 50)
    say("%-44s %12.3f %12.0f %8d", string.format("allreduce_many, buckets %d KiB (%s)", bucket / 1024, alg), s * 1e3,
      mb(4 * dense) / s, n)
  end
  if not step_only then
    local s = time(function() for _, g in ipairs(grads) do dist.allreduce(g, "mean", alg) end end, 50)
    say("%-44s %12.3f %12.0f %8d", "one allreduce per tensor (" .. alg .. ")", s * 1e3, mb(4 * dense) / s, #grads)
  end
end
say("")

-- ---- the embedding all-to-all ---------------------------------------------------------
-- ids go to their owner (id % size), the vectors come back the same way
local ids = mtl.zeros(rows):long()
local counts = {}
for r = 1, size do counts[r] = math.floor(rows / size) + (r <= rows % size and 1 or 0) end
local vectors = mtl.ones(rows, DIM)
say("%-44s %12s %12s", "alltoallv (rows split evenly over the ranks)", "ms per call", "MiB/s")
if not step_only then
  local s_ids = time(function() dist.alltoallv(ids, counts) end, 100)
  say("%-44s %12.3f %12.0f", string.format("%d ids int64", rows), s_ids * 1e3, mb(8 * rows) / s_ids)
  local s_vec = time(function() dist.alltoallv(vectors, counts) end, 100)
  say("%-44s %12.3f %12.0f", string.format("%d x %d vectors float32", rows, DIM), s_vec * 1e3, mb(4 * rows * DIM) / s_vec)
end
local s_step = time(function()
  local got, recv = dist.alltoallv(ids, counts)       -- ids to their owners
  local back = mtl.ones(got:size(1), DIM)               -- (the owners' lookups)
  dist.alltoallv(back, recv)                            -- vectors back
  dist.alltoallv(vectors, counts)                       -- gradients to the owners
end, 50)
say("%-44s %12.3f", "one step: ids out, vectors back, gradients out", s_step * 1e3)
