-- Trains a 2-layer MLP (2 -> hidden -> 2) on two interleaved spirals with
-- plain full-batch SGD written in Lua, and prints the loss falling and the
-- training accuracy.
--
--   mtl examples/train_mlp.lua [--points N] [--hidden H] [--steps S] [--lr LR] [--seed K]
--
-- The last line is "accuracy <percent> %". MTL_EXAMPLE_SMALL=1 (used by the
-- specs) shrinks the run; the defaults still reach >= 98 % in a few seconds.
local mtl = require "mtl"

local opts = { points = 200, hidden = 64, steps = 3000, lr = 0.3, seed = 1, every = 250 }
if os.getenv("MTL_EXAMPLE_SMALL") == "1" then
  opts.points, opts.steps, opts.every = 100, 2000, 500
end
local argv = arg or {}
local i = 1
while i <= #argv do
  local key = argv[i]:match("^%-%-(%w+)$")
  if not key or opts[key] == nil or argv[i + 1] == nil then
    error("usage: mtl examples/train_mlp.lua [--points N] [--hidden H] [--steps S] [--lr LR] [--seed K]", 0)
  end
  opts[key] = assert(tonumber(argv[i + 1]), "--" .. key .. " needs a number")
  i = i + 2
end

mtl.seed(opts.seed)

-- Two spirals: class c in {1, 2}, point k at radius r = k/n and angle
-- 3 r pi + (c - 1) pi (one and a half turns each), with a little Gaussian noise.
local n = opts.points
local xs, labels = {}, {}
for c = 1, 2 do
  local noise = mtl.randn(n, 2) * 0.1
  for k = 1, n do
    local r = k / n
    local angle = 3 * math.pi * r + (c - 1) * math.pi
    xs[#xs + 1] = { r * math.cos(angle) + noise:get(k, 1) * r, r * math.sin(angle) + noise:get(k, 2) * r }
    labels[#labels + 1] = c
  end
end
local x = mtl.tensor(xs)                  -- [2n, 2] float32
local y = mtl.tensor(labels, "int64")     -- [2n] classes 1..2

-- Parameters: W1 [hidden, 2], b1 [hidden], W2 [2, hidden], b2 [2] (Linear's
-- [out, in] layout). W1 starts with a large scale (std 4) so the tanh units
-- begin with features that vary fast enough to follow the turns.
local h = opts.hidden
local w1 = mtl.param(mtl.randn(h, 2) * 4)
local b1 = mtl.param(mtl.zeros(h))
local w2 = mtl.param(mtl.randn(2, h) * math.sqrt(1 / h))
local b2 = mtl.param(mtl.zeros(2))
local params = { w1, b1, w2, b2 }

local function forward(input)
  local hidden = mtl.tanh(mtl.linear(input, w1, b1)) -- [2n, hidden]
  return mtl.linear(hidden, w2, b2)                  -- [2n, 2] logits
end

local function accuracy()
  return mtl.no_grad(function()
    local _, predicted = mtl.max(forward(x), 2) -- predicted class per row (1-based)
    local correct = 0
    for k = 1, 2 * n do
      if predicted:get(k) == labels[k] then correct = correct + 1 end
    end
    return 100 * correct / (2 * n)
  end)
end

local first_loss, last_loss
for step = 1, opts.steps do
  local loss = mtl.cross_entropy(forward(x), y)
  for _, p in ipairs(params) do p:zero_grad() end
  loss:backward()
  -- plain SGD: p = p - lr * p.grad, in place and without recording a tape
  mtl.no_grad(function()
    for _, p in ipairs(params) do p:copy(p - p.grad * opts.lr) end
  end)
  last_loss = loss:item()
  first_loss = first_loss or last_loss
  if step == 1 or step % opts.every == 0 then
    print(string.format("step %5d  loss %.4f", step, last_loss))
  end
end
print(string.format("loss %.4f -> %.4f", first_loss, last_loss))
print(string.format("accuracy %.2f %%", accuracy()))
