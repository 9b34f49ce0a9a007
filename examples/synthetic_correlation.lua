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
-- overfitting; within a seed every model sees the same batches.
-- The paper's finding: MMoE's advantage over shared-bottom grows as p falls.
--
--   mtl examples/synthetic_correlation.lua            full size: 10 seeds x 3 p x 3 models,
--                                                      10000 steps each (~11 CPU minutes; docs/models.md)
--   mtl examples/synthetic_correlation.lua --small    the reduced run CI uses (~1 s)
-- Options (--name value): --steps --lr --batch --test --seeds --d --m
local mtl = require "mtl"
local models = require "mtl.models"

local args = arg or {}
local small = os.getenv("MTL_EXAMPLE_SMALL") == "1"
for _, a in ipairs(args) do if a == "--small" then small = true end end
local cfg = small and { d = 20, m = 10, test = 1000, steps = 300, batch = 128, seeds = 1, lr = 1e-3 }
  or { d = 100, m = 10, test = 5000, steps = 10000, batch = 128, seeds = 10, lr = 1e-3 }
local i = 1
while i <= #args do
  local name = args[i]:match("^%-%-(%w+)$")
  if name and name ~= "small" then
    if not cfg[name] then error("synthetic_correlation: unknown option --" .. name, 0) end
    cfg[name] = tonumber(args[i + 1]) or error("synthetic_correlation: --" .. name .. " needs a number", 0)
    i = i + 1
  end
  i = i + 1
end
local C, NOISE = 1.0, 0.1 -- eps ~ N(0, NOISE^2 = 0.01): the best possible test loss is 2 * 0.01

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

-- The generator of one world at correlation p: sample(n) -> {x [n, d], y1 [n], y2 [n]}.
local function generator(p, seed)
  mtl.seed(1000 + seed)
  local d, m = cfg.d, cfg.m
  local u1, u2 = unit_pair(d)
  local w = {}                                    -- [d, 2]: columns w1, w2
  for k = 1, d do w[k] = { C * u1[k], C * (p * u1[k] + math.sqrt(1 - p * p) * u2[k]) } end
  w = mtl.tensor(w)
  local alpha, beta = mtl.randn(m):values(), mtl.randn(m):values()
  return function(n)
    local x = mtl.randn(n, d)
    local s = mtl.matmul(x, w):values()           -- [n, 2]: w1'x, w2'x
    local noise = mtl.randn(n, 2):values()
    local y1, y2 = {}, {}
    for r = 1, n do
      local s1, s2 = s[2 * r - 1], s[2 * r]
      local t1, t2 = s1, s2
      for k = 1, m do
        t1 = t1 + math.sin(alpha[k] * s1 + beta[k])
        t2 = t2 + math.sin(alpha[k] * s2 + beta[k])
      end
      y1[r], y2[r] = t1 + NOISE * noise[2 * r - 1], t2 + NOISE * noise[2 * r]
    end
    return { x, mtl.tensor(y1), mtl.tensor(y2) }
  end
end

local tasks = { { name = "t1" }, { name = "t2" } }
local builders = {
  ["shared-bottom"] = function(d) return models.build("shared_bottom", { input = d, tasks = tasks, bottom = { 113 }, tower = { 8 } }) end,
  OMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 }, one_gate = true }) end,
  MMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 } }) end,
}
local order = { "shared-bottom", "OMoE", "MMoE" }

local function loss_of(out, batch)
  return mtl.mse(out.t1.logits, batch[2]) + mtl.mse(out.t2.logits, batch[3])
end

-- Trains one model on fresh batches of sample; returns its loss on test.
local function run(name, sample, test, seed)
  mtl.seed(seed)
  local model = builders[name](cfg.d)
  local opt = mtl.optim.adam{ params = model:parameters(), lr = cfg.lr }
  for step = 1, cfg.steps do
    mtl.seed(1e6 * seed + step)                   -- the same batches for every model
    local batch = sample(cfg.batch)
    local loss = loss_of(model(batch[1]), batch)
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  return mtl.no_grad(function() return loss_of(model(test[1]), test):item() end)
end

local function mean_se(xs)
  local n, s = #xs, 0
  for _, v in ipairs(xs) do s = s + v end
  local mean, ss = s / n, 0
  for _, v in ipairs(xs) do ss = ss + (v - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(ss / (n - 1) / n) or 0
end

local ps = { 0.5, 0.9, 1.0 }
print(string.format("d=%d m=%d steps=%d batch=%d lr=%g seeds=%d test=%d; test loss = MSE(t1) + MSE(t2), "
  .. "floor %.2f; mean +- standard error over seeds", cfg.d, cfg.m, cfg.steps, cfg.batch, cfg.lr, cfg.seeds,
  cfg.test, 2 * NOISE ^ 2))
io.write(string.format("%-5s", "p"))
for _, name in ipairs(order) do io.write(string.format("%19s", name)) end
io.write(string.format("%19s%19s\n", "SB - MMoE", "OMoE - MMoE"))
local results = {}
for _, p in ipairs(ps) do
  local loss, gap_sb, gap_omoe = {}, {}, {}
  for _, name in ipairs(order) do loss[name] = {} end
  for seed = 1, cfg.seeds do
    local sample = generator(p, seed)
    local test = sample(cfg.test)
    for _, name in ipairs(order) do loss[name][seed] = run(name, sample, test, seed) end
    gap_sb[seed] = loss["shared-bottom"][seed] - loss.MMoE[seed]
    gap_omoe[seed] = loss.OMoE[seed] - loss.MMoE[seed]
  end
  results[p] = {}
  io.write(string.format("%-5.1f", p))
  for _, name in ipairs(order) do
    local mean, se = mean_se(loss[name])
    results[p][name] = mean
    io.write(string.format("%19s", string.format("%.4f +- %.4f", mean, se)))
  end
  local g1, s1 = mean_se(gap_sb)
  local g2, s2 = mean_se(gap_omoe)
  results[p].gap_sb, results[p].gap_omoe = g1, g2
  io.write(string.format("%19s%19s\n", string.format("%.4f +- %.4f", g1, s1), string.format("%.4f +- %.4f", g2, s2)))
  io.flush()
end
print(string.format("MMoE's advantage over shared-bottom: p=0.5 %.4f, p=0.9 %.4f, p=1.0 %.4f",
  results[0.5].gap_sb, results[0.9].gap_sb, results[1.0].gap_sb))
return results
