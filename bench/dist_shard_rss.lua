-- Peak memory of a large embedding table, replicated in one process or
-- row-sharded over the ranks (bench/dist_shard_rss.sh, docs/distributed.md).
--   build/mtl bench/dist_shard_rss.lua ROWS STEPS [BATCH=4096]
--   mpirun -np 4 build/mtl bench/dist_shard_rss.lua ROWS STEPS [BATCH]
-- One fixed table of ROWS x 16 (uniform initial rows) with Adam, 4 id fields
-- per example (uniform ids), a linear layer on their 64 values, BCE; STEPS
-- training steps of a global batch of BATCH rows. One process: an
-- mtl.Embedding; N ranks: an mtl.shard table (each rank holds ROWS / N rows
-- and their Adam state). Each rank prints its peak resident memory (VmHWM)
-- and the median step time.
local mtl = require "mtl"
local nn = require "mtl.nn"
local parallel = require "mtl.parallel"
local shard = require "mtl.shard"
local sys = require "mtl.sys"

local dist = mtl.dist
local rank, size = dist.rank(), dist.size()
local ROWS, STEPS, B = tonumber(arg[1] or 1e7), tonumber(arg[2] or 20), tonumber(arg[3] or 4096)
local DIM, FIELDS = 16, 4

local function peak_mib()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

mtl.seed(1)
local t0 = sys.now()
local opts = { num_buckets = ROWS, dim = DIM }
local t = size > 1 and shard.new(opts, "items") or mtl.Embedding(opts)
local looked, owned = size > 1 and t.view or t, size > 1 and t.shard or t
local built = sys.now() - t0
local model = nn.Linear(FIELDS * DIM, 1)
local dense = mtl.optim.adam { params = model:parameters(), lr = 0.01 }
local sparse = mtl.optim.adam { params = { owned }, lr = 0.01 }
local P = parallel.new { model = model, tables = { { name = "items", table = t } }, optimizers = { dense, sparse } }

local n = parallel.local_rows(B)
local times = {}
local state = 12345
local function rand_id() -- a small LCG: every rank draws the global batch alike, takes its rows
  state = (state * 1103515245 + 12345) % 2147483648
  return state % ROWS
end
for s = 1, STEPS do
  local ids, y = {}, {}
  local lo = math.floor(rank * B / size)
  for i = 0, B - 1 do
    for f = 1, FIELDS do
      local id = rand_id()
      if i >= lo and i < lo + n then ids[#ids + 1] = id end
    end
    if i >= lo and i < lo + n then y[#y + 1] = (i % 3 == 0) and 1 or 0 end
  end
  local idt = mtl.tensor(ids, "int64"):reshape(n, FIELDS)
  local a = sys.now()
  local global = P:begin_step(s, { n })
  P:prefetch { items = { idt } }
  local x = looked:lookup(idt):reshape(n, FIELDS * DIM)
  local logits = model(x):reshape(n)
  P:backward(n, function()
    return mtl.binary_cross_entropy_with_logits(logits, mtl.tensor(y)) * P:scales({ n }, global).rows
  end)
  dense:step()
  sparse:step()
  times[s] = sys.now() - a
end
table.sort(times)
io.write(string.format("rank %d of %d: %d rows x %d (%d on this rank), built in %.1f s, median step %.1f ms, peak RSS %.0f MiB\n",
  rank, size, ROWS, DIM, size > 1 and t.local_n or ROWS, built, 1000 * times[math.ceil(#times / 2)], peak_mib()))
