-- The MMoE paper's synthetic experiment (Ma et al., KDD 2018, section 3.2):
-- two regression tasks whose correlation is set exactly by p.
--   u1, u2 orthogonal unit vectors in R^d;  w1 = c u1,  w2 = c (p u1 + sqrt(1-p^2) u2)
--   x ~ N(0, I);  y_t = w_t'x + sum_{i=1..m} sin(alpha_i w_t'x + beta_i) + eps,  eps ~ N(0, 0.01)
-- with c = 1, m = 10 and alpha_i, beta_i ~ N(0, 1), drawn once per seed (one
-- "world" per seed, shared by every p and every model). Shared-bottom, OMoE
-- and MMoE with the paper's sizes (d = 100; 8 experts of 16 units; towers of
-- 8; a shared bottom of 113 units, about as many parameters as MMoE) are
-- trained with Adam at p in {0.5, 0.9, 1.0}. Each training batch is a fresh
-- sample of the generator, so the models see unlimited data and the test loss
-- (MSE summed over the two tasks, on a fixed test set) measures the fit, not
-- overfitting. A seed fixes the world, the test set, the initialization and the
-- batches, the same for every model and p (the nine runs of a seed train side
-- by side on one stream of batches), so differences within a seed are paired.
-- The paper's finding: MMoE's advantage over shared-bottom grows as p falls.
-- Besides the table the run prints the paired trend: per seed,
-- gap(0.5) - gap(1.0) with gap = loss(shared-bottom) - loss(MMoE), and its
-- mean +- standard error over the seeds (> 0 is the paper's finding).
--
--   mtl examples/synthetic_correlation.lua            full size: 30 seeds x 3 p x 3 models,
--                                                      10000 steps each, lr 1e-3 (~15 CPU minutes; docs/models.md)
--   ... --first 31 --seeds 85 & ... --first 116 --seeds 85   the paper's 200 seeds with those 30
--                                                      (~100 CPU minutes; the result is in docs/models.md)
--   mtl examples/synthetic_correlation.lua --small    the reduced run CI uses (~1 s)
--   mtl examples/synthetic_correlation.lua --pilot 1 --first 101 --seeds 3 --every 1000
--        the learning-rate pilot: every model at lr 1e-4, 1e-3 and 1e-2 (the
--        paper's grid) on seeds kept apart from the experiment's, with learning curves
--        (~4 CPU minutes; it picked 1e-3 for all three models, the default)
-- Options (--name value): --steps --batch --test --seeds --first (first seed) --d --m
--   --lr (every model) or --lrsb --lromoe --lrmmoe (one model each), --every (curve interval), --pilot
local mtl = require "mtl"
local models = require "mtl.models"

local args = arg or {}
local small = os.getenv("MTL_EXAMPLE_SMALL") == "1"
for _, a in ipairs(args) do if a == "--small" then small = true end end
local cfg = small and { d = 20, m = 10, test = 1000, steps = 300, batch = 128, seeds = 1, first = 1,
                        lrsb = 1e-3, lromoe = 1e-3, lrmmoe = 1e-3, every = 0, pilot = 0 }
  or { d = 100, m = 10, test = 5000, steps = 10000, batch = 128, seeds = 30, first = 1,
       lrsb = 1e-3, lromoe = 1e-3, lrmmoe = 1e-3, every = 0, pilot = 0 }
local i = 1
while i <= #args do
  local name = args[i]:match("^%-%-(%w+)$")
  if name and name ~= "small" then
    local v = tonumber(args[i + 1]) or error("synthetic_correlation: --" .. name .. " needs a number", 0)
    if name == "lr" then cfg.lrsb, cfg.lromoe, cfg.lrmmoe = v, v, v
    elseif cfg[name] then cfg[name] = v
    else error("synthetic_correlation: unknown option --" .. name, 0) end
    i = i + 1
  end
  i = i + 1
end
local C, NOISE = 1.0, 0.1 -- eps ~ N(0, NOISE^2 = 0.01): the best possible test loss is 2 * 0.01
local ps = { 0.5, 0.9, 1.0 }

-- Gram-Schmidt on two Gaussian vectors gives orthogonal unit u1, u2.
local function unit_pair(d)
  local a, b = mtl.randn(d):values(), mtl.randn(d):values()
  local function dot(x, y) local s = 0 for k = 1, d do s = s + x[k] * y[k] end return s end
  local na = math.sqrt(dot(a, a))
  for k = 1, d do a[k] = a[k] / na end
  local p = dot(a, b)
  for k = 1, d do b[k] = b[k] - p * a[k] end
  local nb = math.sqrt(dot(b, b))
  for k = 1, d do b[k] = b[k] / nb end
  return a, b
end

-- The generator of one world at every p at once: sample(n) -> x [n, d], ys with
-- ys[j] = {y1 [n], y2 [n]} at p = ps[j]. One x and one noise draw serve all p,
-- which is exactly the per-p generator run three times from the same seed.
local function world(seed)
  mtl.seed(1000 + seed)
  local d, m = cfg.d, cfg.m
  local u1, u2 = unit_pair(d)
  local w = {}                                    -- [d, 2 #ps]: columns w1, w2 at each p
  for k = 1, d do
    w[k] = {}
    for j, p in ipairs(ps) do
      w[k][2 * j - 1], w[k][2 * j] = C * u1[k], C * (p * u1[k] + math.sqrt(1 - p * p) * u2[k])
    end
  end
  w = mtl.tensor(w)
  local alpha, beta = mtl.randn(m):values(), mtl.randn(m):values()
  local np = 2 * #ps
  return function(n)
    local x = mtl.randn(n, d)
    local s = mtl.matmul(x, w):values()           -- [n, 2 #ps]: w1'x, w2'x at each p
    local noise = mtl.randn(n, 2):values()
    local ys = {}
    for j = 1, #ps do
      local y1, y2 = {}, {}
      for r = 1, n do
        local s1, s2 = s[np * (r - 1) + 2 * j - 1], s[np * (r - 1) + 2 * j]
        local t1, t2 = s1, s2
        for k = 1, m do
          t1 = t1 + math.sin(alpha[k] * s1 + beta[k])
          t2 = t2 + math.sin(alpha[k] * s2 + beta[k])
        end
        y1[r], y2[r] = t1 + NOISE * noise[2 * r - 1], t2 + NOISE * noise[2 * r]
      end
      ys[j] = { mtl.tensor(y1), mtl.tensor(y2) }
    end
    return x, ys
  end
end

local tasks = { { name = "t1" }, { name = "t2" } }
local builders = {
  ["shared-bottom"] = function(d) return models.build("shared_bottom", { input = d, tasks = tasks, bottom = { 113 }, tower = { 8 } }) end,
  OMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 }, one_gate = true }) end,
  MMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 } }) end,
}
local order = { "shared-bottom", "OMoE", "MMoE" }
local lr_of = { ["shared-bottom"] = cfg.lrsb, OMoE = cfg.lromoe, MMoE = cfg.lrmmoe }

local function loss_of(out, y)
  return mtl.mse(out.t1.logits, y[1]) + mtl.mse(out.t2.logits, y[2])
end

-- Trains runs = {{name, j (index of p), lr}, ...} side by side on one seed's
-- world: every run sees the same fresh batches, and runs of one model start
-- from the same initialization. Returns each run's test loss (at the end, and
-- every cfg.every steps in run.curve).
local function train(seed, runs)
  local sample = world(seed)
  local xt, yts = sample(cfg.test)
  local function test_loss(r)
    return mtl.no_grad(function() return loss_of(r.model(xt), yts[r.j]):item() end)
  end
  for _, r in ipairs(runs) do
    mtl.seed(seed)
    r.model = builders[r.name](cfg.d)
    r.opt = mtl.optim.adam{ params = r.model:parameters(), lr = r.lr }
    r.curve = {}
  end
  for step = 1, cfg.steps do
    mtl.seed(1e6 * seed + step)                   -- the same batches for every model and p
    local x, ys = sample(cfg.batch)
    for _, r in ipairs(runs) do
      local loss = loss_of(r.model(x), ys[r.j])
      r.opt:zero_grad()
      loss:backward()
      r.opt:step()
      if cfg.every > 0 and step % cfg.every == 0 then r.curve[#r.curve + 1] = test_loss(r) end
    end
  end
  for _, r in ipairs(runs) do r.loss = test_loss(r); r.model, r.opt = nil, nil end
  return runs
end

local function mean_se(xs)
  local n, s = #xs, 0
  for _, v in ipairs(xs) do s = s + v end
  local mean, ss = s / n, 0
  for _, v in ipairs(xs) do ss = ss + (v - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(ss / (n - 1) / n) or 0
end
local function pm(xs) return string.format("%.4f +- %.4f", mean_se(xs)) end
local seeds = {}
for s = cfg.first, cfg.first + cfg.seeds - 1 do seeds[#seeds + 1] = s end

if cfg.pilot ~= 0 then
  -- The learning-rate pilot: every model at lr 1e-4, 1e-3 and 1e-2 (the paper's
  -- grid); prints the learning curves (every --every steps) and each model's
  -- lr with the lowest mean final test loss over p and seeds.
  local lrs = { 1e-4, 1e-3, 1e-2 }
  local all = {}
  for _, seed in ipairs(seeds) do
    local runs = {}
    for _, name in ipairs(order) do
      for _, lr in ipairs(lrs) do
        for j = 1, #ps do runs[#runs + 1] = { name = name, j = j, lr = lr } end
      end
    end
    all[seed] = train(seed, runs)
    io.write("seed ", seed, " done\n") io.flush()
  end
  print(string.format("pilot: d=%d m=%d steps=%d batch=%d seeds=%d..%d test=%d; mean test loss over seeds and p",
    cfg.d, cfg.m, cfg.steps, cfg.batch, seeds[1], seeds[#seeds], cfg.test))
  for _, name in ipairs(order) do
    local best, best_lr = math.huge
    for _, lr in ipairs(lrs) do
      local curve, final, perp = {}, {}, {}
      for _, seed in ipairs(seeds) do
        for _, r in ipairs(all[seed]) do
          if r.name == name and r.lr == lr then
            for c, v in ipairs(r.curve) do curve[c] = (curve[c] or 0) + v / (#seeds * #ps) end
            final[#final + 1] = r.loss
            perp[r.j] = perp[r.j] or {}
            table.insert(perp[r.j], r.loss)
          end
        end
      end
      local m = mean_se(final)
      if m < best then best, best_lr = m, lr end
      io.write(string.format("%-14s lr %-7g final %.4f  p=0.5 %s  p=0.9 %s  p=1.0 %s\n", name, lr, m,
        pm(perp[1]), pm(perp[2]), pm(perp[3])))
      if #curve > 0 then
        io.write("    curve:")
        for c, v in ipairs(curve) do io.write(string.format(" %d:%.4f", c * cfg.every, v)) end
        io.write("\n")
      end
    end
    print(string.format("%-14s best lr %g", name, best_lr))
  end
  return all
end

-- The experiment: per seed, every model at every p, each at its own lr.
local loss, gap_sb, gap_omoe = {}, {}, {}            -- [j][name] -> per-seed losses; [j] -> per-seed gaps
for j = 1, #ps do
  loss[j], gap_sb[j], gap_omoe[j] = {}, {}, {}
  for _, name in ipairs(order) do loss[j][name] = {} end
end
local trend, trend9 = {}, {}                          -- per seed: gap(0.5) - gap(1.0), gap(0.9) - gap(1.0)
print(string.format("d=%d m=%d steps=%d batch=%d lr: shared-bottom %g, OMoE %g, MMoE %g; seeds=%d..%d test=%d",
  cfg.d, cfg.m, cfg.steps, cfg.batch, cfg.lrsb, cfg.lromoe, cfg.lrmmoe, seeds[1], seeds[#seeds], cfg.test))
for k, seed in ipairs(seeds) do
  local runs = {}
  for _, name in ipairs(order) do
    for j = 1, #ps do runs[#runs + 1] = { name = name, j = j, lr = lr_of[name] } end
  end
  train(seed, runs)
  io.write(string.format("seed %3d  SB - MMoE:", seed))
  for _, r in ipairs(runs) do loss[r.j][r.name][k] = r.loss end
  for j = 1, #ps do
    gap_sb[j][k] = loss[j]["shared-bottom"][k] - loss[j].MMoE[k]
    gap_omoe[j][k] = loss[j].OMoE[k] - loss[j].MMoE[k]
    io.write(string.format("  p=%.1f %7.4f", ps[j], gap_sb[j][k]))
  end
  trend[k], trend9[k] = gap_sb[1][k] - gap_sb[3][k], gap_sb[2][k] - gap_sb[3][k]
  io.write(string.format("   trend %7.4f\n", trend[k]))
  io.flush()
end

print(string.format("test loss = MSE(t1) + MSE(t2), floor %.2f; mean +- standard error over %d seeds",
  2 * NOISE ^ 2, #seeds))
io.write(string.format("%-5s", "p"))
for _, name in ipairs(order) do io.write(string.format("%19s", name)) end
io.write(string.format("%19s%19s\n", "SB - MMoE", "OMoE - MMoE"))
local results = {}
for j, p in ipairs(ps) do
  results[p] = {}
  io.write(string.format("%-5.1f", p))
  for _, name in ipairs(order) do
    results[p][name] = mean_se(loss[j][name])
    io.write(string.format("%19s", pm(loss[j][name])))
  end
  results[p].gap_sb, results[p].gap_omoe = mean_se(gap_sb[j]), mean_se(gap_omoe[j])
  io.write(string.format("%19s%19s\n", pm(gap_sb[j]), pm(gap_omoe[j])))
end
-- The paired trend: within a seed, how much larger MMoE's advantage over
-- shared-bottom is at p = 0.5 (0.9) than at p = 1.0; > 0 is the paper's finding.
local function trend_line(label, xs)
  local mean, se = mean_se(xs)
  local pos = 0
  for _, v in ipairs(xs) do if v > 0 then pos = pos + 1 end end
  print(string.format("trend %s: %.4f +- %.4f (%.1f standard errors; > 0 in %d of %d seeds)",
    label, mean, se, se > 0 and mean / se or 0, pos, #xs))
  return mean, se
end
results.trend, results.trend_se = trend_line("gap(0.5) - gap(1.0)", trend)
results.trend9, results.trend9_se = trend_line("gap(0.9) - gap(1.0)", trend9)
return results
