-- Losses: binary cross entropy on logits and on probabilities, mse, softmax
-- cross entropy (runtime/src/ops/loss.c). Reference values come from the
-- textbook formulas in Lua doubles (or by hand for extreme logits, where the
-- textbook formula overflows); gradients from central finite differences.
local mtl = require "mtl"
local check = require "helpers.check"

local exp, log, huge = math.exp, math.log, math.huge

-- ---- references in Lua doubles ------------------------------------------------
local function sigmoid(x) return 1 / (1 + exp(-x)) end

-- textbook BCE on probabilities with PyTorch's clamp of each log at -100
local function clog(v) return v > 0 and math.max(log(v), -100) or -100 end
local function bce_term(p, y) return -(y * clog(p) + (1 - y) * clog(1 - p)) end
local function bce_logit_term(x, y) return bce_term(sigmoid(x), y) end -- fine for moderate |x|

-- Applies weight/mask and the reduction to per-element terms.
local function reduce(terms, weight, mask, reduction)
  local out, total, count = {}, 0, 0
  for i, l in ipairs(terms) do
    if not mask or mask[i] ~= 0 then
      l = l * (weight and weight[i] or 1)
      total, count = total + l, count + 1
    else
      l = 0
    end
    out[i] = l
  end
  if reduction == "none" then return out end
  if reduction == "sum" then return total end
  if count == 0 then return mask and 0 or 0 / 0 end
  return total / count
end

local function map2(f, a, b)
  local out = {}
  for i = 1, #a do out[i] = f(a[i], b[i]) end
  return out
end

local function all_finite(t)
  for _, v in ipairs(check.flat(t)) do
    if v ~= v or v == huge or v == -huge then return false end
  end
  return true
end

describe("mtl.binary_cross_entropy_with_logits", function()
  mtl.seed(31)
  local x = mtl.randn(3, 4) * 2
  local y = mtl.rand(3, 4)                        -- soft targets in [0,1)
  local w = mtl.rand(3, 4) + 0.5
  local m = mtl.tensor { { 1, 0, 1, 1 }, { 0, 0, 1, 1 }, { 1, 1, 1, 0 } }
  local terms = map2(bce_logit_term, x:values(), y:values())

  local cases = {
    { opts = nil, weight = nil, mask = nil, reduction = "mean" },
    { opts = "sum", reduction = "sum" },
    { opts = { reduction = "none" }, reduction = "none" },
    { opts = { weight = w }, weight = w, reduction = "mean" },
    { opts = { mask = m }, mask = m, reduction = "mean" },
    { opts = { mask = m, reduction = "sum" }, mask = m, reduction = "sum" },
    { opts = { weight = w, mask = m, reduction = "none" }, weight = w, mask = m, reduction = "none" },
    { opts = { weight = w, mask = m }, weight = w, mask = m, reduction = "mean" },
  }
  for k, c in ipairs(cases) do
    local label = string.format("case %d (%s%s%s)", k, c.reduction, c.weight and ", weight" or "", c.mask and ", mask" or "")
    it("matches the textbook formula: " .. label, function()
      local expected = reduce(terms, c.weight and c.weight:values(), c.mask and c.mask:values(), c.reduction)
      local got = mtl.binary_cross_entropy_with_logits(x, y, c.opts)
      if c.reduction == "none" then assert.same({ 3, 4 }, got:shape()) else assert.same({}, got:shape()) end
      check.assert_close(got, expected, 1e-5)
      check.assert_close(mtl.bce_with_logits(x, y, c.opts), expected, 1e-5) -- the alias
    end)

    it("has finite-difference gradients for logits, target and weight: " .. label, function()
      local opts = c.opts
      if c.weight then
        check.gradcheck(function(xx, yy, ww)
          return mtl.bce_with_logits(xx, yy, { weight = ww, mask = c.mask, reduction = c.reduction })
        end, { x, y, w })
      else
        check.gradcheck(function(xx, yy) return mtl.bce_with_logits(xx, yy, opts) end, { x, y })
      end
    end)
  end

  it("is finite and exact at large |logit| (values and gradients by hand)", function()
    -- loss = max(x,0) - x*y + log1p(exp(-|x|)); the last term is < 1e-43 here
    local cases = {
      { x = 100, y = 0, loss = 100, grad = 1 },
      { x = -100, y = 1, loss = 100, grad = -1 },
      { x = 100, y = 1, loss = 0, grad = 0 },
      { x = -100, y = 0, loss = 0, grad = 0 },
      { x = 1e4, y = 0, loss = 1e4, grad = 1 },
      { x = -1e4, y = 1, loss = 1e4, grad = -1 },
      { x = 1e4, y = 1, loss = 0, grad = 0 },
      { x = -1e4, y = 0, loss = 0, grad = 0 },
      { x = 100, y = 0.25, loss = 75, grad = 0.75 },
      { x = -1e4, y = 0.5, loss = 5000, grad = -0.5 },
    }
    local xs, ys = {}, {}
    for i, c in ipairs(cases) do xs[i], ys[i] = c.x, c.y end
    local xp = mtl.tensor(xs):requires_grad(true)
    local l = mtl.bce_with_logits(xp, mtl.tensor(ys), "none")
    mtl.sum(l):backward()
    for i, c in ipairs(cases) do
      check.assert_close(l:get(i), c.loss, 1e-6, "loss " .. i)
      check.assert_close(xp.grad:get(i), c.grad, 1e-6, "gradient " .. i)
    end
  end)

  it("gives masked elements exactly zero gradient, even with NaN logits or targets", function()
    local xp = mtl.tensor { 0.5, 0 / 0, -2, 1e4 }:requires_grad(true)
    local yp = mtl.tensor { 1, 0.5, 0 / 0, 0 }:requires_grad(true)
    local wp = mtl.tensor { 2, 3, 4, 5 }:requires_grad(true)
    local mask = mtl.tensor { 1, 0, 0, 0 }
    local l = mtl.bce_with_logits(xp, yp, { weight = wp, mask = mask })
    -- mean over the one unmasked element
    check.assert_close(l, 2 * bce_logit_term(0.5, 1), 1e-6)
    l:backward()
    check.assert_close(xp.grad, { 2 * (sigmoid(0.5) - 1), 0, 0, 0 }, 1e-6)
    check.assert_close(yp.grad, { 2 * -0.5, 0, 0, 0 }, 1e-6)
    check.assert_close(wp.grad, { bce_logit_term(0.5, 1), 0, 0, 0 }, 1e-6)
    for i = 2, 4 do
      assert.are.equal(0, xp.grad:get(i))
      assert.are.equal(0, yp.grad:get(i))
    end
  end)

  it("accepts an int64 mask, and with every element masked gives 0 and zero gradients", function()
    local x = mtl.tensor { 1, -1, 3 }
    local y = mtl.tensor { 1, 0, 0 }
    check.assert_close(mtl.bce_with_logits(x, y, { mask = mtl.tensor({ 0, 1, 1 }, "int64"), reduction = "sum" }),
      bce_logit_term(-1, 0) + bce_logit_term(3, 0), 1e-6)
    local xp = x:clone():requires_grad(true)
    local l = mtl.bce_with_logits(xp, y, { mask = mtl.zeros(3) })
    check.assert_close(l, 0, 0)
    l:backward()
    check.assert_close(xp.grad, { 0, 0, 0 }, 0)
  end)

  it("accepts non-contiguous inputs", function()
    mtl.seed(32)
    local xb, yb = mtl.randn(4, 3), mtl.rand(4, 3)
    local xt, yt = xb:transpose(1, 2), yb:transpose(1, 2)
    local expected = reduce(map2(bce_logit_term, xt:contiguous():values(), yt:contiguous():values()), nil, nil, "none")
    check.assert_close(mtl.bce_with_logits(xt, yt, "none"), expected, 1e-5)
    check.gradcheck(function(a) return mtl.bce_with_logits(a:transpose(1, 2), yt, "none") end, { xb })
  end)

  it("handles empty inputs like PyTorch (mean is nan, sum is 0)", function()
    local e = mtl.zeros(0)
    assert.is_true(mtl.bce_with_logits(e, e):item() ~= mtl.bce_with_logits(e, e):item())
    check.assert_close(mtl.bce_with_logits(e, e, "sum"), 0, 0)
    assert.same({ 0 }, mtl.bce_with_logits(e, e, "none"):shape())
  end)

  it("rejects bad shapes, options and masks with clear messages", function()
    local x, y = mtl.zeros(2, 3), mtl.zeros(2, 3)
    local f = mtl.binary_cross_entropy_with_logits
    local n = "mtl.binary_cross_entropy_with_logits: "
    check.assert_error(n .. "target must be shaped like the logits [2,3], got [3,2]", f, x, mtl.zeros(3, 2))
    check.assert_error(n .. "weight must be shaped like the logits [2,3], got [3]", f, x, y, { weight = mtl.ones(3) })
    check.assert_error(n .. "mask must be shaped like the logits [2,3], got [2]", f, x, y, { mask = mtl.ones(2) })
    check.assert_error(n .. "mask must hold 0 or 1, got 0.5 at element 2", f, x, y,
      { mask = mtl.tensor { { 1, 0.5, 1 }, { 1, 1, 1 } } })
    check.assert_error(n .. "mask must hold 0 or 1, got 2 at element 1", f, x, y,
      { mask = mtl.tensor({ { 2, 1, 1 }, { 1, 1, 1 } }, "int64") })
    check.assert_error(n .. "unknown option 'weights' (expected weight, mask or reduction)", f, x, y, { weights = y })
    check.assert_error(n .. "reduction must be 'mean', 'sum' or 'none', got 'avg'", f, x, y, "avg")
    check.assert_error(n .. "reduction must be 'mean', 'sum' or 'none', got 'max'", f, x, y, { reduction = "max" })
    check.assert_error(n .. "option weight must be a tensor, got number", f, x, y, { weight = 2 })
    check.assert_error(n .. "expected an options table {weight=, mask=, reduction=} for argument 3, got boolean", f, x, y, true)
    check.assert_error(n .. "expected a float32 tensor for target, got int64", f, x, mtl.zeros(2, 3, "int64"))
    check.assert_error(n .. "expected a tensor for argument 2, got nil", f, x, nil)
  end)
end)

describe("mtl.binary_cross_entropy", function()
  mtl.seed(41)
  local p = mtl.rand(2, 5) * 0.5 + 0.25           -- probabilities in [0.25, 0.75)
  local y = mtl.rand(2, 5)
  local w = mtl.rand(2, 5) + 0.5
  local m = mtl.tensor { { 1, 1, 0, 1, 0 }, { 0, 1, 1, 1, 1 } }
  local terms = map2(bce_term, p:values(), y:values())

  local cases = {
    { reduction = "mean" }, { reduction = "sum" }, { reduction = "none" },
    { reduction = "mean", weight = w }, { reduction = "mean", mask = m },
    { reduction = "none", weight = w, mask = m }, { reduction = "sum", weight = w, mask = m },
  }
  for k, c in ipairs(cases) do
    local label = string.format("case %d (%s%s%s)", k, c.reduction, c.weight and ", weight" or "", c.mask and ", mask" or "")
    local opts = { weight = c.weight, mask = c.mask, reduction = c.reduction }
    it("matches the textbook formula: " .. label, function()
      local expected = reduce(terms, c.weight and c.weight:values(), c.mask and c.mask:values(), c.reduction)
      check.assert_close(mtl.binary_cross_entropy(p, y, opts), expected, 1e-5)
      check.assert_close(mtl.bce(p, y, opts), expected, 1e-5)
    end)

    it("has finite-difference gradients for input, target and weight: " .. label, function()
      check.gradcheck(function(pp, yy, ww)
        return mtl.bce(pp, yy, { weight = ww, mask = c.mask, reduction = c.reduction })
      end, { p, y, w }, { eps = 5e-3, rtol = 2e-3, atol = 2e-4 })
    end)
  end

  it("clamps each log at -100 like PyTorch, staying finite at 0 and 1", function()
    local pp = mtl.tensor { 0, 1, 0, 1, 1e-30, 0.5 }:requires_grad(true)
    local yy = mtl.tensor { 1, 0, 0, 1, 1, 0.5 }
    local l = mtl.bce(pp, yy, "none")
    -- by hand: -log(0) and -log(1-1) clamp to 100; -log(1e-30) = 69.0776
    check.assert_close(l, { 100, 100, 0, 0, 30 * log(10), log(2) }, 1e-5)
    assert.are.equal(0, l:get(3)) -- exactly 0 (not -0 or nan) where p equals y
    mtl.sum(l):backward()
    assert.is_true(all_finite(pp.grad))
    -- d/dp = (p - y) / max(p (1 - p), 1e-12): -1e12 at p = 0, y = 1
    check.assert_close(pp.grad:get(1), -1e12, 1e-5)
    check.assert_close(pp.grad:get(2), 1e12, 1e-5)
    check.assert_close(pp.grad:get(6), 0, 0)
  end)

  it("accepts a non-contiguous input", function()
    local pt, yt = p:transpose(1, 2), y:transpose(1, 2)
    local expected = map2(bce_term, pt:contiguous():values(), yt:contiguous():values())
    check.assert_close(mtl.bce(pt, yt, "none"), expected, 1e-5)
  end)

  it("rejects values outside [0, 1] unless masked", function()
    local n = "mtl.binary_cross_entropy: "
    check.assert_error(n .. "the input must hold probabilities in [0, 1], got 1.5 at element 2", mtl.bce,
      mtl.tensor { 0.5, 1.5 }, mtl.tensor { 1, 1 })
    check.assert_error(n .. "the input must hold probabilities in [0, 1], got -0.25 at element 1", mtl.bce,
      mtl.tensor { -0.25, 0.5 }, mtl.tensor { 1, 1 })
    check.assert_error(n .. "the input must hold probabilities in [0, 1], got ", mtl.bce,
      mtl.tensor { 0 / 0 }, mtl.tensor { 1 })
    -- a masked element is ignored entirely
    check.assert_close(mtl.bce(mtl.tensor { 0.5, 1.5 }, mtl.tensor { 1, 1 }, { mask = mtl.tensor { 1, 0 } }), log(2), 1e-6)
    check.assert_error(n .. "target must be shaped like the input [2], got [1,2]", mtl.bce,
      mtl.tensor { 0.5, 0.5 }, mtl.tensor { { 1, 1 } })
  end)
end)

describe("mtl.mse", function()
  mtl.seed(51)
  local a, t = mtl.randn(3, 4), mtl.randn(3, 4)
  local sq = map2(function(u, v) return (u - v) ^ 2 end, a:values(), t:values())
  for _, red in ipairs({ "mean", "sum", "none" }) do
    it("matches (a - target)^2 and has gradients for both arguments, reduction " .. red, function()
      check.assert_close(mtl.mse(a, t, red), reduce(sq, nil, nil, red), 1e-5)
      check.gradcheck(function(u, v) return mtl.mse(u, v, red) end, { a, t })
    end)
  end

  it("defaults to mean and gives exact gradients 2 (a - t) / n", function()
    local ap = a:clone():requires_grad(true)
    local l = mtl.mse(ap, t)
    check.assert_close(l, reduce(sq, nil, nil, "mean"), 1e-5)
    l:backward()
    check.assert_close(ap.grad, map2(function(u, v) return 2 * (u - v) / 12 end, a:values(), t:values()), 1e-5)
  end)

  it("accepts non-contiguous inputs", function()
    local at, tt = a:transpose(1, 2), t:transpose(1, 2)
    local expected = map2(function(u, v) return (u - v) ^ 2 end, at:contiguous():values(), tt:contiguous():values())
    check.assert_close(mtl.mse(at, tt, "none"), expected, 1e-5)
    check.gradcheck(function(u) return mtl.mse(u:transpose(1, 2), tt, "none") end, { a })
  end)

  it("rejects mismatched shapes and bad reductions", function()
    check.assert_error("mtl.mse: target must be shaped like the input [3,4], got [4,3]", mtl.mse, a, mtl.zeros(4, 3))
    check.assert_error("mtl.mse: reduction must be 'mean', 'sum' or 'none', got 'avg'", mtl.mse, a, t, "avg")
    check.assert_error("mtl.mse: reduction must be 'mean', 'sum' or 'none', got number", mtl.mse, a, t, 1)
    check.assert_error("mtl.mse: expected a float32 tensor for target, got int64", mtl.mse, a, mtl.zeros(3, 4, "int64"))
  end)
end)

describe("mtl.cross_entropy", function()
  -- textbook: -log(softmax(x)[t]) with logsumexp taken around the row max
  local function ref_ce(rows, target)
    local out = {}
    for i, row in ipairs(rows) do
      local mx = -huge
      for _, v in ipairs(row) do mx = math.max(mx, v) end
      local s = 0
      for _, v in ipairs(row) do s = s + exp(v - mx) end
      out[i] = mx + log(s) - row[target[i]]
    end
    return out
  end

  mtl.seed(61)
  local x = mtl.randn(4, 3) * 2
  local target = { 2, 1, 3, 3 }                    -- 1-based classes
  local tt = mtl.tensor(target, "int64")
  local per_row = ref_ce(x:totable(), target)

  for _, red in ipairs({ "mean", "sum", "none" }) do
    it("matches -log softmax[target] with 1-based targets and has gradients, reduction " .. red, function()
      check.assert_close(mtl.cross_entropy(x, tt, red), reduce(per_row, nil, nil, red), 1e-5)
      check.gradcheck(function(z) return mtl.cross_entropy(z, tt, red) end, { x })
    end)
  end

  it("gives the exact gradient (softmax - onehot) / n for the mean", function()
    local xp = x:clone():requires_grad(true)
    mtl.cross_entropy(xp, tt):backward()
    local rows, expected = x:totable(), {}
    for i, row in ipairs(rows) do
      local s = 0
      for _, v in ipairs(row) do s = s + exp(v) end
      expected[i] = {}
      for j, v in ipairs(row) do expected[i][j] = (exp(v) / s - (j == target[i] and 1 or 0)) / 4 end
    end
    check.assert_close(xp.grad, expected, 1e-5)
  end)

  it("is stable for large logits", function()
    local xp = mtl.tensor { { 1000, 0 }, { 1000, 0 }, { -1e4, 1e4 }, { 500, 500 } }:requires_grad(true)
    local l = mtl.cross_entropy(xp, mtl.tensor({ 1, 2, 1, 2 }, "int64"), "none")
    check.assert_close(l, { 0, 1000, 2e4, log(2) }, 1e-6)
    mtl.sum(l):backward()
    check.assert_close(xp.grad, { { 0, 0 }, { 1, -1 }, { -1, 1 }, { 0.5, -0.5 } }, 1e-6)
  end)

  it("accepts transposed logits and handles an empty batch", function()
    local xb = mtl.randn(3, 4)
    local xt = xb:transpose(1, 2) -- [4,3]
    check.assert_close(mtl.cross_entropy(xt, tt, "none"), ref_ce(xt:totable(), target), 1e-5)
    check.gradcheck(function(z) return mtl.cross_entropy(z:transpose(1, 2), tt) end, { xb })
    assert.same({ 0 }, mtl.cross_entropy(mtl.zeros(0, 3), mtl.zeros(0, "int64"), "none"):shape())
  end)

  it("rejects bad targets and shapes with clear messages", function()
    local n = "mtl.cross_entropy: "
    check.assert_error(n .. "target class 4 at position 2 is out of range (expected 1..3)", mtl.cross_entropy,
      x, mtl.tensor({ 1, 4, 1, 1 }, "int64"))
    check.assert_error(n .. "target class 0 at position 1 is out of range (expected 1..3)", mtl.cross_entropy,
      x, mtl.tensor({ 0, 1, 1, 1 }, "int64"))
    check.assert_error(n .. "expected an int64 target of class indices, got float32", mtl.cross_entropy,
      x, mtl.tensor { 1, 2, 1, 1 })
    check.assert_error(n .. "target must be [4] to match logits [4,3], got [3]", mtl.cross_entropy,
      x, mtl.tensor({ 1, 2, 1 }, "int64"))
    check.assert_error(n .. "expected logits [n,c], got [4]", mtl.cross_entropy,
      mtl.zeros(4), mtl.tensor({ 1, 2, 1, 1 }, "int64"))
    check.assert_error(n .. "reduction must be 'mean', 'sum' or 'none', got 'total'", mtl.cross_entropy, x, tt, "total")
  end)
end)

describe("losses in a composed graph", function()
  it("backpropagates through linear -> layer_norm -> dropout -> linear -> bce_with_logits", function()
    mtl.seed(71)
    local x, w1, w2 = mtl.randn(6, 4), mtl.randn(5, 4) * 0.5, mtl.randn(1, 5) * 0.5
    local g, b = mtl.rand(5) + 0.5, mtl.randn(5) * 0.1
    local y = mtl.tensor { { 1 }, { 0 }, { 1 }, { 1 }, { 0 }, { 0 } }
    local mask = mtl.tensor { { 1 }, { 1 }, { 0 }, { 1 }, { 1 }, { 1 } }
    check.gradcheck(function(xx, a, bb, gg, be)
      mtl.seed(5) -- the same dropout mask on every call
      local h = mtl.dropout(mtl.layer_norm(mtl.linear(xx, a), gg, be), 0.2)
      return mtl.bce_with_logits(mtl.linear(h, bb), y, { mask = mask })
    end, { x, w1, w2, g, b }, { atol = 2e-4, rtol = 2e-3 })
  end)
end)
