-- The MMoE paper's synthetic experiment (Ma et al., KDD 2018, section 3.2):
-- two regression tasks whose correlation is set exactly by p.
--   u1, u2 orthogonal unit vectors in R^d;  w1 = c u1,  w2 = c (p u1 + sqrt(1-p^2) u2)
--   x ~ N(0, I);  y_t = w_t'x + sum_{i=1..m} sin(alpha_i w_t'x + beta_i) + eps,  eps ~ N(0, 0.01)
-- Shared-bottom, OMoE and MMoE (the paper's sizes: d = 100, 8 experts of 16
-- units, towers of 8, a shared bottom of 113 so that it has as many
-- parameters as MMoE) are trained at p in {0.5, 0.9, 1.0} over a few seeds;
-- the table shows the mean test loss (MSE summed over the two tasks).
-- The paper's finding: MMoE's advantage over shared-bottom grows as p falls.
--
--   mtl examples/synthetic_correlation.lua            full size (docs/models.md)
--   mtl examples/synthetic_correlation.lua --small    the reduced run CI uses
-- Options (each --name value): --steps, --lr, --batch, --train, --test,
-- --seeds (a count), --d, --m, --alpha (std of alpha_i and beta_i).
local mtl = require "mtl"
local models = require "mtl.models"

local args = arg or {}
local small = os.getenv("MTL_EXAMPLE_SMALL") == "1"
for _, a in ipairs(args) do if a == "--small" then small = true end end
local cfg = small and { d = 20, m = 10, train = 2000, test = 1000, steps = 400, batch = 128, seeds = 1, lr = 1e-3, alpha = 1 }
  or { d = 100, m = 10, train = 10000, test = 2000, steps = 4000, batch = 128, seeds = 3, lr = 1e-3, alpha = 1 }
local i = 1
while i <= #args do
  local name = args[i]:match("^%-%-(%w+)$")
  if name and name ~= "small" then
    assert(cfg[name], "synthetic_correlation: unknown option --" .. name)
    cfg[name] = assert(tonumber(args[i + 1]), "synthetic_correlation: --" .. name .. " needs a number")
    i = i + 1
  end
  i = i + 1
end
local C = 1.0

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

-- One data set (train and test share the world: w1, w2, alpha, beta).
local function make_data(p, seed)
  mtl.seed(1000 + seed)
  local d, m = cfg.d, cfg.m
  local u1, u2 = unit_pair(d)
  local w = {}                                    -- [d, 2]: columns w1, w2
  for k = 1, d do
    w[k] = { C * u1[k], C * (p * u1[k] + math.sqrt(1 - p * p) * u2[k]) }
  end
  w = mtl.tensor(w)
  local alpha, beta = (mtl.randn(m) * cfg.alpha):values(), (mtl.randn(m) * cfg.alpha):values()
  local function sample(n)
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
      y1[r] = t1 + 0.1 * noise[2 * r - 1]
      y2[r] = t2 + 0.1 * noise[2 * r]
    end
    return { x, mtl.tensor(y1), mtl.tensor(y2) }
  end
  return sample(cfg.train), sample(cfg.test)
end

local tasks = { { name = "t1" }, { name = "t2" } }
local builders = {
  ["shared-bottom"] = function(d) return models.build("shared_bottom", { input = d, tasks = tasks, bottom = { 113 }, tower = { 8 } }) end,
  OMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 }, one_gate = true }) end,
  MMoE = function(d) return models.build("mmoe", { input = d, tasks = tasks, experts = 8, expert = { 16 }, tower = { 8 } }) end,
}
local order = { "shared-bottom", "OMoE", "MMoE" }

local function loss_of(out, y1, y2)
  return mtl.mse(out.t1.logits, y1) + mtl.mse(out.t2.logits, y2)
end

local function run(name, train, test, seed)
  mtl.seed(seed)
  local model = builders[name](cfg.d)
  local opt = mtl.optim.adam{ params = model:parameters(), lr = cfg.lr }
  local n, B = cfg.train, cfg.batch
  for step = 1, cfg.steps do
    local start = ((step - 1) * B) % (n - B + 1) + 1
    local x = train[1]:narrow(1, start, B)
    local loss = loss_of(model(x), train[2]:narrow(1, start, B), train[3]:narrow(1, start, B))
    opt:zero_grad()
    loss:backward()
    opt:step()
  end
  return mtl.no_grad(function() return loss_of(model(test[1]), test[2], test[3]):item() end)
end

local ps = { 0.5, 0.9, 1.0 }
print(string.format("d=%d m=%d train=%d test=%d steps=%d batch=%d lr=%g seeds=%d alpha=%g", cfg.d, cfg.m,
  cfg.train, cfg.test, cfg.steps, cfg.batch, cfg.lr, cfg.seeds, cfg.alpha))
local results = {}
io.write(string.format("%-14s", "p"))
for _, name in ipairs(order) do io.write(string.format("%14s", name)) end
io.write("\n")
for _, p in ipairs(ps) do
  results[p] = {}
  local sums = {}
  for seed = 1, cfg.seeds do
    local train, test = make_data(p, seed)
    for _, name in ipairs(order) do sums[name] = (sums[name] or 0) + run(name, train, test, seed) end
  end
  io.write(string.format("%-14s", string.format("%.1f", p)))
  for _, name in ipairs(order) do
    results[p][name] = sums[name] / cfg.seeds
    io.write(string.format("%14.4f", results[p][name]))
  end
  io.write("\n")
  io.flush()
end
local gap = {}
for _, p in ipairs(ps) do gap[p] = results[p]["shared-bottom"] - results[p].MMoE end
print(string.format("MMoE advantage over shared-bottom (test loss difference): p=0.5 %.4f, p=0.9 %.4f, p=1.0 %.4f",
  gap[0.5], gap[0.9], gap[1.0]))
return results
