-- Embedding benchmark: training steps touching ~5,000 rows of fixed tables of
-- 10^5, 10^6 and 10^7 rows x 16 dims, on one thread (or `threads`). The work of a step does not
-- depend on the table's size; where the rows live does (docs/embedding.md,
-- "Performance").
--
--   build/mtl bench/embedding_bench.lua [rounds] [steps] [max_rows] [settings] [threads]
--
-- settings: a comma-separated list of kind:ids (default
-- "emb:uniform,emb:zipf,full:uniform,full:zipf"):
--   kind "emb"  : the embedding-only step: lookup, backward of a fixed
--                 gradient into the sparse gradient, SparseAdam on the touched
--                 rows. Nothing else runs, so this is the worst case for the
--                 size ratio.
--   kind "full" : a whole training step of a small model: a batch of B rows x 5
--                 id fields (all in the table under test) -> lookup [B, 5, 16]
--                 -> concat [B, 80] -> MLP [256, 128] (ReLU) -> 1 logit -> BCE
--                 with logits against fixed random labels; backward; Adam on
--                 the dense parameters, SparseAdam on the table.
--   ids "uniform" (alias "fresh"): uniform random ids, fresh for every step
--                 (emb: 5,000 ids; full: B = 1024, 5,120 ids);
--   ids "zipf"  : Zipf ids, P(rank k) ~ k^-1.05 over all the table's rows
--                 (exact rejection-inversion sampler), fresh for every step,
--                 ranks scattered over the table by the bijection
--                 row = (4435761 (k-1) + c) mod rows (hot rows land on
--                 different pages). emb: the number of ids per step is
--                 calibrated per table so that ~5,000 distinct rows are
--                 touched; full: B = 2048 (10,240 ids) for every table (~5,000
--                 distinct rows of the 10^7 table, fewer of the smaller ones:
--                 a Zipf over fewer rows repeats more);
--   ids "pool16": (emb only) 16 uniform batches drawn once and cycled (the
--                 earlier protocol: a 10^7 table's 80,000 rows in use then
--                 mostly stay in the last-level cache).
-- "fresh" and "pool16" alone are accepted as "emb:uniform" / "emb:pool16".
--
-- All tables are built first (one SparseAdam per table, shared by all
-- settings; one dense model with its Adam, shared by the tables). Each round
-- then times, for every setting in turn and within it every table in turn
-- (both orders rotating from round to round), a block of steps (emb: `steps`,
-- full: steps / 5) after untimed warm-up steps (emb 40, full 8) on that table,
-- so each table finds the caches as in a training loop of its own. Sizes are
-- measured side by side under the same load, and each round gives a ratio of
-- a table's step time to the 10^5 table's in the same setting and round.
-- Times are the thread's CPU time (CLOCK_THREAD_CPUTIME_ID: stalls on memory
-- included, time other processes ran on the core excluded); wall time is
-- reported too (the step alone). With threads > 1 the phases and steps are
-- wall times (the workers' CPU time is not the calling thread's). Ids are drawn outside the timed part. A step is split into
-- phases: forward lookup (lookups/s), the rest of the forward (full only),
-- backward, the dense Adam (full only) and the table's optimizer step
-- (coalescing the sparse gradient, then the lazy Adam update of the touched
-- rows: SparseAdam rows/s). Prints one table per setting: medians over rounds
-- of the per-block medians, with the spread min..max over rounds.
local mtl = require "mtl"
local nn = require "mtl.nn"
local ffi = require "ffi"

local sys = require "mtl.sys"

ffi.cdef [[
double expm1(double x);
double log1p(double x);
]]
local wall, cpu = sys.now, sys.cpu_time -- CLOCK_MONOTONIC, CLOCK_THREAD_CPUTIME_ID

local ROUNDS = tonumber(arg and arg[1]) or 15
local STEPS = tonumber(arg and arg[2]) or 100
local MAX_ROWS = tonumber(arg and arg[3]) or 1e7
local SETTINGS = arg and arg[4] or "emb:uniform,emb:zipf,full:uniform,full:zipf"
local EMB_BATCH, DIM, FIELDS, WARM_EMB, WARM_FULL = 5000, 16, 5, 40, 8
local FULL_B = { uniform = 1024, zipf = 2048 }
local ZIPF_S, TARGET_DISTINCT = 1.05, 5000
local THREADS = tonumber(arg and arg[5]) or 1
local FULL_STEPS = math.max(3, math.floor(STEPS / 5))
mtl.set_num_threads(THREADS)
-- one thread: the thread's CPU time; several: wall time (the workers' time is
-- not the calling thread's)
local ptime = THREADS > 1 and wall or cpu

local settings = {}
for s in SETTINGS:gmatch "[^,]+" do
  if s == "fresh" then s = "emb:uniform" elseif s == "pool16" then s = "emb:pool16" end
  s = s:gsub(":fresh$", ":uniform")
  local kind, ids = s:match "^(%a+):(%w+)$"
  assert((kind == "emb" and (ids == "uniform" or ids == "zipf" or ids == "pool16"))
    or (kind == "full" and (ids == "uniform" or ids == "zipf")), "unknown setting " .. s)
  settings[#settings + 1] = { name = s, kind = kind, ids = ids, per = {} }
end

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

-- ---- Zipf sampler (Hoermann & Derflinger's rejection-inversion, as in Apache
-- Commons' RejectionInversionZipfSampler): ranks 1..n with P(k) ~ k^-s -----------
local expm1, log1p, exp, log, floor, random = ffi.C.expm1, ffi.C.log1p, math.exp, math.log, math.floor, math.random
local function zipf_sampler(n, s)
  local function helper1(x) return math.abs(x) > 1e-8 and log1p(x) / x or 1 - x * (0.5 - x * (1 / 3 - 0.25 * x)) end
  local function helper2(x) return math.abs(x) > 1e-8 and expm1(x) / x or 1 + x * 0.5 * (1 + x * (1 / 3) * (1 + 0.25 * x)) end
  local function H(x) local lx = log(x) return helper2((1 - s) * lx) * lx end
  local function h(x) return exp(-s * log(x)) end
  local function Hinv(x)
    local t = x * (1 - s)
    if t < -1 then t = -1 end
    return exp(helper1(t) * x)
  end
  local hx1 = H(1.5) - 1
  local hn = H(n + 0.5)
  local sc = 2 - Hinv(H(2.5) - h(2))
  return function()
    while true do
      local u = hn + random() * (hx1 - hn)
      local x = Hinv(u)
      local k = floor(x + 0.5)
      if k < 1 then k = 1 elseif k > n then k = n end
      if k - x <= sc or u >= H(k + 0.5) - h(k) then return k end
    end
  end
end

-- ---- the tables ---------------------------------------------------------------------
local cases = {}
for _, rows in ipairs { 1e5, 1e6, 1e7 } do
  if rows > MAX_ROWS then break end
  mtl.seed(1)
  math.randomseed(1)
  local t0 = wall()
  local c = { rows = rows, name = string.format("10^%d", math.floor(math.log10(rows) + 0.5)) }
  c.table = mtl.Embedding { num_buckets = rows, dim = DIM, init = "uniform", scale = 0.05 }
  c.opt = mtl.optim.adam { params = { c.table }, lr = 1e-3 }
  c.build_s = wall() - t0
  c.zipf = zipf_sampler(rows, ZIPF_S)
  c.mul, c.off = 2654435761 % rows, math.random(0, rows - 1) -- odd, not a multiple of 5: a bijection
  cases[#cases + 1] = c
end

-- the dense model of the full step (shared by the tables: same work for all)
mtl.seed(2)
local dense = { mlp = nn.MLP { input = FIELDS * DIM, hidden = { 256, 128 } }, out = nn.Linear(128, 1) }
local dense_params = {}
for _, p in ipairs(dense.mlp:parameters()) do dense_params[#dense_params + 1] = p end
for _, p in ipairs(dense.out:parameters()) do dense_params[#dense_params + 1] = p end
local dense_opt = mtl.optim.adam { params = dense_params, lr = 1e-3 }
local labels = {}
for ids, b in pairs(FULL_B) do labels[ids] = mtl.lt(mtl.rand(b), mtl.full({ b }, 0.2)):float() end

local id_buf = {}
local function draw(c, ids, n)
  if ids == "zipf" then
    local z, mul, off, rows = c.zipf, c.mul, c.off, c.rows
    for i = 1, n do id_buf[i] = ((z() - 1) * mul + off) % rows end
  else
    local rows = c.rows - 1
    for i = 1, n do id_buf[i] = random(0, rows) end
  end
  for i = n + 1, #id_buf do id_buf[i] = nil end
  return mtl.tensor(id_buf, "int64")
end
local function distinct(t)
  local seen, d = {}, 0
  for i = 1, t:numel() do
    local v = tonumber(t:get(i))
    if not seen[v] then seen[v], d = true, d + 1 end
  end
  return d
end

-- per setting and table: the ids per step (zipf emb: calibrated to ~5,000 distinct)
for _, st in ipairs(settings) do
  for _, c in ipairs(cases) do
    local p = { n = st.kind == "full" and FULL_B[st.ids] * FIELDS or EMB_BATCH, i = 0, pool = {} }
    if st.kind == "emb" and st.ids == "zipf" then
      for _ = 1, 8 do
        local d = 0
        for _ = 1, 4 do d = d + distinct(draw(c, "zipf", p.n)) / 4 end
        p.n = math.floor(p.n * (TARGET_DISTINCT / d) ^ 1.3 + 0.5)
      end
    end
    if st.ids == "pool16" then
      for b = 1, 16 do p.pool[b] = draw(c, "uniform", p.n) end
    end
    if st.kind == "emb" then p.grad = mtl.randn(p.n, DIM) end
    p.touched, p.step_ms, p.wall_ms, p.ratio = {}, {}, {}, {}
    p.lookup_ms, p.fwd_ms, p.backward_ms, p.dense_ms, p.adam_ms = {}, {}, {}, {}, {}
    st.per[c] = p
  end
end

-- one step; returns the CPU seconds of its phases: lookup, rest of the
-- forward, backward, dense Adam, table optimizer
local function next_ids(st, c)
  local p = st.per[c]
  p.i = p.i + 1
  return st.ids == "pool16" and p.pool[(p.i - 1) % 16 + 1] or draw(c, st.ids, p.n)
end
local function step(st, c, ids)
  local p = st.per[c]
  if st.kind == "emb" then
    local t0 = ptime()
    c.opt:zero_grad()
    local y = c.table:lookup(ids)
    local t1 = ptime()
    y:backward(p.grad)
    local t2 = ptime()
    c.opt:step()
    local t3 = ptime()
    return t1 - t0, 0, t2 - t1, 0, t3 - t2
  end
  local B = FULL_B[st.ids]
  ids = ids:reshape(B, FIELDS)
  local t0 = ptime()
  c.opt:zero_grad()
  dense_opt:zero_grad()
  local x = c.table:lookup(ids):reshape(B, FIELDS * DIM)
  local t1 = ptime()
  local logit = dense.out(dense.mlp(x)):reshape(B)
  local loss = mtl.bce_with_logits(logit, labels[st.ids])
  local t2 = ptime()
  loss:backward()
  local t3 = ptime()
  dense_opt:step()
  local t4 = ptime()
  c.opt:step()
  local t5 = ptime()
  return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4
end

-- ---- rounds -------------------------------------------------------------------------
local t_start = wall()
for round = 1, ROUNDS do
  for j = 0, #settings - 1 do
    local st = settings[(round + j - 1) % #settings + 1]
    local warm, steps = st.kind == "full" and WARM_FULL or WARM_EMB, st.kind == "full" and FULL_STEPS or STEPS
    for k = 0, #cases - 1 do
      local c = cases[(round + k - 1) % #cases + 1]
      local p = st.per[c]
      for _ = 1, warm do step(st, c, next_ids(st, c)) end
      local ph = { {}, {}, {}, {}, {} }
      local tot, wl = {}, {}
      for s = 1, steps do
        local ids = next_ids(st, c)
        local w0 = wall()
        local a, b, d, e, f = step(st, c, ids)
        wl[s] = wall() - w0
        ph[1][s], ph[2][s], ph[3][s], ph[4][s], ph[5][s] = a, b, d, e, f
        tot[s] = a + b + d + e + f
      end
      p.touched[#p.touched + 1] = c.table:grad():numel()
      local function ms(x) return median(x) * 1e3 end
      p.lookup_ms[round], p.fwd_ms[round], p.backward_ms[round] = ms(ph[1]), ms(ph[2]), ms(ph[3])
      p.dense_ms[round], p.adam_ms[round] = ms(ph[4]), ms(ph[5])
      p.step_ms[round], p.wall_ms[round] = ms(tot), ms(wl)
    end
  end
  for _, st in ipairs(settings) do
    for _, c in ipairs(cases) do st.per[c].ratio[round] = st.per[c].step_ms[round] / st.per[cases[1]].step_ms[round] end
  end
end

-- ---- report -------------------------------------------------------------------------
local function cell(xs, fmt)
  local lo, hi = range(xs)
  return string.format(fmt .. " (" .. fmt .. ".." .. fmt .. ")", median(xs), lo, hi)
end
print(string.format("dim %d, %d thread%s, %d interleaved rounds; per table and round a block of %d (emb) / %d (full) "
  .. "steps; %s ms per step: median over rounds of the per-block medians (min..max over rounds); Zipf exponent %.2f",
  DIM, THREADS, THREADS > 1 and "s" or "", ROUNDS, STEPS, FULL_STEPS, THREADS > 1 and "wall" or "CPU", ZIPF_S))
for _, st in ipairs(settings) do
  local full = st.kind == "full"
  print()
  print(st.name .. (full and string.format(" (batch %d x %d fields, MLP [256,128] -> 1, BCE, Adam + SparseAdam)",
    FULL_B[st.ids], FIELDS) or " (lookup, backward, SparseAdam)"))
  print(string.format("%-5s %6s %6s  %-22s %-19s %-22s %-22s %-22s %-22s %-22s %10s %11s %8s", "rows", "ids",
    "touched", "step ms", "step / 10^5 step", "lookup ms", "dense fwd+loss ms", "backward ms", "dense Adam ms",
    "table opt ms", "lookups/s", "adam rows/s", "wall ms"))
  for _, c in ipairs(cases) do
    local p = st.per[c]
    local dash = "-"
    print(string.format("%-5s %6d %6.0f  %-22s %-19s %-22s %-22s %-22s %-22s %-22s %10.3g %11.3g %8.3f",
      c.name, p.n, median(p.touched), cell(p.step_ms, "%.3f"), cell(p.ratio, "%.2f"), cell(p.lookup_ms, "%.3f"),
      full and cell(p.fwd_ms, "%.3f") or dash, cell(p.backward_ms, "%.3f"), full and cell(p.dense_ms, "%.3f") or dash,
      cell(p.adam_ms, "%.3f"), p.n / (median(p.lookup_ms) * 1e-3), median(p.touched) / (median(p.adam_ms) * 1e-3),
      median(p.wall_ms)))
  end
end
local builds = {}
for _, c in ipairs(cases) do builds[#builds + 1] = string.format("%s %.1f s", c.name, c.build_s) end
print()
print("build (table + Adam state): " .. table.concat(builds, ", ") .. string.format("; rounds took %.0f s", wall() - t_start))
