-- Dynamic embedding tables at scale: how fast ids are resolved to rows once a
-- table holds millions of ids, and what admitting new ids costs as it grows.
--
--   build/mtl bench/dynamic_bench.lua [ids] [steps] [initial_capacity]
--
-- 1. growth: a dynamic table (dim 16, Adam) receives batches of 5,120 new ids
--    (lookup, backward, optimizer step) until it holds `ids` ids (default
--    4,000,000); prints the time per batch (median), the slowest batch (the
--    table doubles its rows: copy into new memory; none when initial_capacity
--    covers `ids`) and the resident memory, now and at its peak.
-- 2. resolution: `steps` (default 400) lookups of 5,120 ids drawn uniformly
--    from the admitted ones, in training mode (id -> row through the id map,
--    the row's clock updated) and in eval mode (no clock), each with fresh ids;
--    prints the median lookup time and lookups/s.
-- Times are the thread's CPU time, one thread. Nothing is asserted.
local mtl = require "mtl"
local cpu = require("mtl.sys").cpu_time -- CLOCK_THREAD_CPUTIME_ID
local function median(xs)
  local s = { unpack(xs) }
  table.sort(s)
  return s[math.floor(#s / 2) + 1]
end
local function rss_mib(field) -- VmRSS (now) or VmHWM (peak)
  local f = io.open("/proc/self/status")
  if not f then return 0 end
  local kb = f:read("*a"):match(field .. ":%s*(%d+)")
  f:close()
  return (tonumber(kb) or 0) / 1024
end

local N = math.floor(tonumber(arg and arg[1]) or 4e6)
local STEPS = math.floor(tonumber(arg and arg[2]) or 400)
local CAP = tonumber(arg and arg[3]) -- default: the table's (1,024 rows)
local B, DIM = 5120, 16
mtl.set_num_threads(1)
mtl.seed(1)
math.randomseed(1)

local t = mtl.Embedding { kind = "dynamic", dim = DIM, initial_capacity = CAP and math.floor(CAP) or nil }
local opt = mtl.optim.adam { params = { t }, lr = 1e-3 }
local grad = mtl.ones(B, DIM)
local per, worst, next_id = {}, 0, 1
local t_all = cpu()
while t:rows() < N do
  local ids = {}
  for i = 1, B do ids[i], next_id = next_id, next_id + 1 end
  local x = mtl.tensor(ids, "int64")
  local a = cpu()
  opt:zero_grad()
  t:lookup(x):backward(grad)
  opt:step()
  local d = cpu() - a
  per[#per + 1] = d
  worst = math.max(worst, d)
end
t_all = cpu() - t_all
print(string.format("growth: %d ids admitted in %d batches of %d new ids, %.1f s CPU; batch median %.2f ms, "
  .. "slowest %.0f ms; RSS %.0f MiB, peak %.0f MiB", t:rows(), #per, B, t_all, median(per) * 1e3, worst * 1e3,
  rss_mib("VmRSS"), rss_mib("VmHWM")))

local admitted = t:rows()
local function draw()
  local ids = {}
  for i = 1, B do ids[i] = math.random(1, admitted) end
  return mtl.tensor(ids, "int64")
end
local train_s, eval_s = {}, {}
for s = 1, STEPS do
  local x = draw()
  local a = cpu()
  t:lookup(x)
  train_s[s] = cpu() - a
  x = draw()
  t:eval()
  a = cpu()
  t:lookup(x)
  eval_s[s] = cpu() - a
  t:train()
end
local mt, me = median(train_s), median(eval_s)
print(string.format("resolution (%d ids held): lookup of %d ids, training %.3f ms (%.2e lookups/s), eval %.3f ms "
  .. "(%.2e lookups/s); medians of %d", admitted, B, mt * 1e3, B / mt, me * 1e3, B / me, STEPS))
