-- The parts of a data-parallel training step of mtl bench's SPEC model
-- (docs/distributed.md, "Measured (training)"), each timed on its own with
-- the ranks in step (a barrier before each part), so that a shared machine's
-- noise shows as spread rather than in the minimum:
--   mpirun -np 2 build/mtl bench/dist_step.lua [model=mmoe] [batch=1024] [repeats=40] [bucket_bytes]
--   build/mtl bench/dist_step.lua                 (one process: the same step at batch B)
-- Prints, per part, the minimum and the median ms over the repeats: forward
-- and backward of this rank's B/N rows, the gradients' reduction (dense
-- allreduce and sparse allgathers: mtl.parallel's reduce; its dense part on
-- its own) and the optimizer steps; the bytes reduce moves; and the step they
-- add up to. bucket_bytes: the dense allreduce's buckets (default
-- mtl.parallel's).
local mtl = require "mtl"
local bench = require "mtl.bench"
local losses = require "mtl.losses"
local parallel = require "mtl.parallel"
local sys = require "mtl.sys"

local model_name, B, repeats = arg[1] or "mmoe", tonumber(arg[2] or 1024), tonumber(arg[3] or 40)
local bucket_bytes = tonumber(arg[4] or parallel.BUCKET_BYTES)
local dist = mtl.dist
local rank, size = dist.rank(), dist.size()
mtl.set_num_threads(1)

local o = bench.parse({ "--model", model_name, "--batch", tostring(B) })
local data = bench.load(o.train, 8 * B, nil, parallel.train_partition(B))
mtl.seed(0)
local model, F = bench.build(o)
local tables = {}
for _, e in ipairs(F:embedding_tables()) do tables[#tables + 1] = e.table end
local dense = mtl.optim.adam { params = model:parameters(), lr = 1e-3 }
local sparse = mtl.optim.adam { params = tables, lr = 1e-3 }
local P = parallel.new { model = model, tables = F:embedding_tables(), optimizers = { dense, sparse }, check_every = 0,
                      bucket_bytes = bucket_bytes }
local spec = losses.default_spec(model.body)
local per_rank = parallel.local_rows(B)

local parts = { "forward", "backward", "reduce", "  dense", "optimizers", "step" }
local times = {}
for _, p in ipairs(parts) do times[p] = {} end
local bytes0
for i = 0, repeats + 4 do
  local batch = bench.slice(data, (i % 8) * per_rank, per_rank)
  local counts = losses.denominators(batch.columns, spec, batch.size)
  table.insert(counts, 1, batch.size)
  local global = P:begin_step(i + 1, counts)
  dist.barrier()
  local t0 = sys.now()
  local total = losses.compute(model(batch), batch.columns, spec, { scale = P:scales(counts, global) })
  local t1 = sys.now()
  dense:zero_grad()
  sparse:zero_grad()
  local tb = sys.now()
  total:backward()
  local t2 = sys.now()
  dist.barrier()
  local t3 = sys.now()
  local d0 = P.stats.dense_seconds
  P:reduce({ total:item() })
  local t4 = sys.now()
  dense:step()
  sparse:step()
  local t5 = sys.now()
  if i == 4 then bytes0 = { P.stats.dense_bytes, P.stats.sparse_bytes, P.stats.steps } end
  if i > 4 then -- after 5 warm-up steps
    local t = times
    t.forward[#t.forward + 1], t.backward[#t.backward + 1] = t1 - t0, t2 - tb
    t.reduce[#t.reduce + 1], t.optimizers[#t.optimizers + 1] = t4 - t3, t5 - t4
    t["  dense"][#t["  dense"] + 1] = P.stats.dense_seconds - d0
    t.step[#t.step + 1] = (t1 - t0) + (t2 - tb) + (t5 - t3)
  end
end

local function stats(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  return s[1] * 1e3, s[math.floor((#s + 1) / 2)] * 1e3
end

if rank == 0 then
  print(string.format("%s, global batch %d, %d rank%s x 1 thread (%d rows each), %d repeats, buckets of %d KiB; "
    .. "ms: minimum / median", model_name, B, size, size == 1 and "" or "s", per_rank, repeats, bucket_bytes / 1024))
  for _, p in ipairs(parts) do
    local lo, mid = stats(times[p])
    print(string.format("%-11s %8.3f %8.3f", p, lo, mid))
  end
  local st = P:communication()
  print(string.format("bytes per step: dense allreduce %d (payload), sparse allgathers %d (every rank's ids and rows)",
    (st.dense_bytes - bytes0[1]) / (st.steps - bytes0[3]), (st.sparse_bytes - bytes0[2]) / (st.steps - bytes0[3])))
end
