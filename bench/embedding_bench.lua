-- Embedding benchmark: one training step touching ~5,000 rows (lookup,
-- backward into the sparse gradient, SparseAdam on the touched rows) with
-- tables of 10^5, 10^6 and 10^7 rows x 16 dims. The step costs the same for
-- every size because nothing in it is proportional to the table.
--
--   build/mtl bench/embedding_bench.lua [steps] [max_rows]
--
-- Prints ms per step, lookups/s (forward only) and SparseAdam rows/s (the
-- median over 10 blocks of the timed steps).
local mtl = require "mtl"
local ffi = require "ffi"

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mtl_embbench_timespec;
int clock_gettime(int clk, mtl_embbench_timespec *ts);
]]
local ts = ffi.new("mtl_embbench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local STEPS = tonumber(arg and arg[1]) or 200
local MAX_ROWS = tonumber(arg and arg[2]) or 1e7
local BATCH, DIM, NBATCHES = 5000, 16, 16
mtl.set_num_threads(1)

-- Times fn over n calls after `warm` untimed calls, in 10 blocks; returns the
-- median seconds per call of the blocks (robust to other processes on a
-- shared machine).
local function time(n, warm, fn)
  for i = 1, warm do fn(i) end
  local blocks, per, i = {}, math.max(1, math.floor(n / 10)), 0
  for b = 1, 10 do
    local t0 = now()
    for _ = 1, per do
      i = i + 1
      fn(i)
    end
    blocks[b] = (now() - t0) / per
  end
  table.sort(blocks)
  return (blocks[5] + blocks[6]) / 2
end

local rows_out = {}
for _, rows in ipairs { 1e5, 1e6, 1e7 } do
  if rows > MAX_ROWS then break end
  mtl.seed(1)
  math.randomseed(1)
  local t0 = now()
  local table_ = mtl.Embedding { num_buckets = rows, dim = DIM, init = "uniform", scale = 0.05 }
  local opt = mtl.optim.adam { params = { table_ }, lr = 1e-3 }
  local build_s = now() - t0
  -- pre-drawn id batches (uniform over the table) and one upstream gradient
  local batches = {}
  for b = 1, NBATCHES do
    local ids = {}
    for i = 1, BATCH do ids[i] = math.random(0, rows - 1) end
    batches[b] = mtl.tensor(ids, "int64")
  end
  local g = mtl.randn(BATCH, DIM)
  local touched = 0
  local function step(i)
    local ids = batches[(i - 1) % NBATCHES + 1]
    opt:zero_grad()
    table_:lookup(ids):backward(g)
    opt:step()
  end
  local step_s = time(STEPS, 20, step)
  for b = 1, NBATCHES do -- rows touched per step (unique ids)
    opt:zero_grad()
    table_:lookup(batches[b]):backward(g)
    touched = touched + table_:grad():numel()
  end
  touched = touched / NBATCHES
  -- forward only
  local lookup_s = mtl.no_grad(function()
    return time(STEPS, 5, function(i) table_:lookup(batches[(i - 1) % NBATCHES + 1]) end)
  end)
  -- the optimizer alone (the same sparse gradient applied again and again)
  opt:zero_grad()
  table_:lookup(batches[1]):backward(g)
  local nnz = table_:grad():numel()
  local adam_s = time(STEPS, 5, function() opt:step() end)
  rows_out[#rows_out + 1] = string.format("%10d  %8.3f  %9.0f  %8.2f  %12.3g  %14.3g  %8.1f",
    rows, step_s * 1e3, touched, lookup_s * 1e3, BATCH / lookup_s, nnz / adam_s, build_s)
  table_, opt, batches = nil, nil, nil
  collectgarbage()
  collectgarbage()
end

print(string.format("embedding step: batch %d ids, dim %d, SparseAdam, 1 thread, %d timed steps", BATCH, DIM, STEPS))
print("      rows  ms/step  rows/step  lookup ms     lookups/s  adam rows/s  build s")
for _, line in ipairs(rows_out) do print(line) end
