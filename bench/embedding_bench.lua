-- Embedding benchmark: one training step touching ~5,000 rows (lookup of
-- 5,000 uniform random ids, fresh for every step, backward into the sparse
-- gradient, SparseAdam on the touched rows) with fixed tables of 10^5, 10^6
-- and 10^7 rows x 16 dims, one thread. The work of a step does not depend on
-- the table's size; where the rows live does (docs/embedding.md, "Performance").
--
--   build/mtl bench/embedding_bench.lua [rounds] [steps] [max_rows] [ids]
--
-- ids: "fresh" (default) draws new uniform ids for every step; "pool16"
-- cycles through 16 batches drawn once (the earlier protocol: a 10^7 table's
-- 80,000 rows in use then mostly stay in the last-level cache).
--
-- All tables are built first; then each round times a block of `steps` steps
-- on every table in turn (after `WARM` untimed steps on it, so that each table
-- finds the caches as it would in a training loop of its own), rotating which
-- table goes first. Sizes are thus measured side by side under the same load,
-- and each round gives a ratio of the step time to the 10^5 table's step time
-- in the same round. Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID:
-- time the step ran, stalls on memory included, time other processes ran on
-- the core excluded); wall time is reported too. Each step is split into its
-- phases: forward lookup (lookups/s), backward (appending gradient rows) and
-- the optimizer step (coalescing the gradient: sort by id and sum, then the
-- lazy Adam update of the touched rows: SparseAdam rows/s).
-- Prints one line per table (medians over the rounds, with the spread
-- min..max) and the ratios.
local mtl = require "mtl"
local ffi = require "ffi"

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } mtl_embbench_timespec;
int clock_gettime(int clk, mtl_embbench_timespec *ts);
]]
local ts = ffi.new("mtl_embbench_timespec")
local function clock(id)
  ffi.C.clock_gettime(id, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end
local function wall() return clock(1) end -- CLOCK_MONOTONIC
local function cpu() return clock(3) end  -- CLOCK_THREAD_CPUTIME_ID

local ROUNDS = tonumber(arg and arg[1]) or 15
local STEPS = tonumber(arg and arg[2]) or 100
local MAX_ROWS = tonumber(arg and arg[3]) or 1e7
local IDS = arg and arg[4] or "fresh"
assert(IDS == "fresh" or IDS == "pool16", "ids must be fresh or pool16")
local BATCH, DIM, WARM = 5000, 16, 40
mtl.set_num_threads(1)

local function median(xs)
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) / 2] or (s[n / 2] + s[n / 2 + 1]) / 2
end
local function range(xs)
  local lo, hi = math.huge, -math.huge
  for _, x in ipairs(xs) do lo, hi = math.min(lo, x), math.max(hi, x) end
  return lo, hi
end

-- ---- the tables ---------------------------------------------------------------------
local cases = {}
for _, rows in ipairs { 1e5, 1e6, 1e7 } do
  if rows > MAX_ROWS then break end
  mtl.seed(1)
  math.randomseed(1)
  local t0 = wall()
  local c = { rows = rows }
  c.table = mtl.Embedding { num_buckets = rows, dim = DIM, init = "uniform", scale = 0.05 }
  c.opt = mtl.optim.adam { params = { c.table }, lr = 1e-3 }
  c.build_s = wall() - t0
  c.grad = mtl.randn(BATCH, DIM)
  c.touched = {} -- unique rows per step
  c.step_ms, c.wall_ms, c.lookup_ms, c.backward_ms, c.adam_ms, c.ratio = {}, {}, {}, {}, {}, {}
  cases[#cases + 1] = c
end

-- fresh uniform ids for every step (drawn outside the timed part): a table
-- much larger than the caches is then read where it has not been read lately
local id_buf = {}
local function draw(rows)
  for i = 1, BATCH do id_buf[i] = math.random(0, rows - 1) end
  return mtl.tensor(id_buf, "int64")
end
for _, c in ipairs(cases) do
  c.pool, c.i = {}, 0
  if IDS == "pool16" then
    for b = 1, 16 do c.pool[b] = draw(c.rows) end
  end
end

-- one training step; returns the CPU seconds of its three phases
local function step(c)
  c.i = c.i + 1
  local ids = IDS == "pool16" and c.pool[(c.i - 1) % 16 + 1] or draw(c.rows)
  local t0 = cpu()
  c.opt:zero_grad()
  local y = c.table:lookup(ids)
  local t1 = cpu()
  y:backward(c.grad)
  local t2 = cpu()
  c.opt:step()
  local t3 = cpu()
  return t1 - t0, t2 - t1, t3 - t2
end

-- ---- rounds -------------------------------------------------------------------------
for round = 1, ROUNDS do
  for k = 0, #cases - 1 do
    local c = cases[(round + k - 1) % #cases + 1]
    for _ = 1, WARM do step(c) end
    local lk, bw, ad, tot, wl = {}, {}, {}, {}, {}
    for s = 1, STEPS do
      local w0 = wall()
      lk[s], bw[s], ad[s] = step(c)
      wl[s] = wall() - w0
      tot[s] = lk[s] + bw[s] + ad[s]
    end
    c.touched[#c.touched + 1] = c.table:grad():numel()
    local function ms(x) return median(x) * 1e3 end
    local l, b, a = ms(lk), ms(bw), ms(ad)
    c.lookup_ms[round], c.backward_ms[round], c.adam_ms[round] = l, b, a
    c.step_ms[round], c.wall_ms[round] = ms(tot), ms(wl)
  end
  for _, c in ipairs(cases) do c.ratio[round] = c.step_ms[round] / cases[1].step_ms[round] end
end

-- ---- report -------------------------------------------------------------------------
local function cell(xs, fmt)
  local lo, hi = range(xs)
  return string.format(fmt .. " (" .. fmt .. ".." .. fmt .. ")", median(xs), lo, hi)
end
print(string.format("embedding step: batch %d ids (%s), dim %d, SparseAdam, 1 thread; %d rounds of %d steps per table "
  .. "(interleaved); CPU ms per step, median of the per-block medians (min..max over rounds)", BATCH, IDS, DIM, ROUNDS,
  STEPS))
print(string.format("%-6s %6s  %-22s %-22s %-22s %-22s %-22s %10s %11s %8s", "rows", "touched", "step ms",
  "step / 10^5 step", "lookup ms", "backward ms", "optimizer ms", "lookups/s", "adam rows/s", "wall ms"))
for _, c in ipairs(cases) do
  print(string.format("%-6s %6.0f  %-22s %-22s %-22s %-22s %-22s %10.3g %11.3g %8.3f",
    string.format("10^%d", math.floor(math.log10(c.rows) + 0.5)), median(c.touched),
    cell(c.step_ms, "%.3f"), cell(c.ratio, "%.2f"), cell(c.lookup_ms, "%.3f"), cell(c.backward_ms, "%.3f"),
    cell(c.adam_ms, "%.3f"), BATCH / (median(c.lookup_ms) * 1e-3), median(c.touched) / (median(c.adam_ms) * 1e-3),
    median(c.wall_ms)))
end
local builds = {}
for _, c in ipairs(cases) do builds[#builds + 1] = string.format("10^%d %.1f s", math.floor(math.log10(c.rows) + 0.5), c.build_s) end
print("build (table + Adam state): " .. table.concat(builds, ", "))
