-- Elementwise ops: unary maps, broadcasting binary arithmetic and pow,
-- scalar forms, where, comparisons. Reference values are computed here in
-- plain Lua (double) arithmetic from the inputs' values; gradients are
-- checked by central finite differences (helpers/check.lua: eps 1e-2,
-- rtol 1e-3, atol 1e-4).
local mtl = require "mtl"
local check = require "helpers.check"

local exp, log, sqrt, abs = math.exp, math.log, math.sqrt, math.abs

-- erf by its Taylor series (converges quickly for the |x| <= 4 used here).
local function erf(x)
  local sum, term, n = x, x, 0
  repeat
    n = n + 1
    term = -term * x * x / n
    local add = term / (2 * n + 1)
    sum = sum + add
  until abs(add) < 1e-17 or n > 200
  return 2 / sqrt(math.pi) * sum
end

local function map(vals, f)
  local out = {}
  for i, v in ipairs(vals) do out[i] = f(v) end
  return out
end

local function tanh(x) return (exp(x) - exp(-x)) / (exp(x) + exp(-x)) end

-- Inputs away from kinks (0 for relu/abs/leaky_relu, the clamp bounds).
local mixed = { -1.7, -0.6, -0.2, 0.3, 0.8, 1.9 }
local positive = { 0.5, 0.8, 1.1, 1.6, 2.2, 3.1 }

local unary_cases = {
  { "neg", {}, mixed, function(x) return -x end },
  { "exp", {}, mixed, exp },
  { "log", {}, positive, log },
  { "log1p", {}, { -0.6, -0.2, 0.1, 0.7, 1.5, 4 }, function(x) return log(1 + x) end },
  { "sqrt", {}, positive, sqrt },
  { "abs", {}, mixed, abs },
  { "relu", {}, mixed, function(x) return x > 0 and x or 0 end },
  { "leaky_relu", {}, mixed, function(x) return x > 0 and x or 0.01 * x end },
  { "leaky_relu", { 0.25 }, mixed, function(x) return x > 0 and x or 0.25 * x end },
  { "sigmoid", {}, { -4, -1.2, -0.3, 0.4, 1.1, 5 }, function(x) return 1 / (1 + exp(-x)) end },
  { "tanh", {}, mixed, tanh },
  { "gelu", {}, { -3, -1.3, -0.4, 0.2, 1.1, 2.7 }, function(x) return 0.5 * x * (1 + erf(x / sqrt(2))) end },
  { "gelu_tanh", {}, { -3, -1.3, -0.4, 0.2, 1.1, 2.7 },
    function(x) return 0.5 * x * (1 + tanh(sqrt(2 / math.pi) * (x + 0.044715 * x ^ 3))) end },
  { "elu", {}, mixed, function(x) return x > 0 and x or exp(x) - 1 end },
  { "selu", {}, mixed, function(x) return 1.0507009873554805 * (x > 0 and x or 1.6732632423543772 * (exp(x) - 1)) end },
  { "swish", {}, mixed, function(x) return x / (1 + exp(-x)) end },
  { "softplus", {}, { -4, -1.2, -0.3, 0.4, 1.1, 5 }, function(x) return log(1 + exp(x)) end },
  { "softsign", {}, mixed, function(x) return x / (1 + abs(x)) end },
  { "clamp", { -1, 0.5 }, mixed, function(x) return math.min(math.max(x, -1), 0.5) end },
  { "clamp", { -0.4, nil, n = 2 }, mixed, function(x) return math.max(x, -0.4) end },
  { "clamp", { nil, 1, n = 2 }, mixed, function(x) return math.min(x, 1) end },
  { "pow", { 2 }, mixed, function(x) return x * x end },
  { "pow", { 3 }, mixed, function(x) return x * x * x end },
  { "pow", { 0.5 }, positive, sqrt },
  { "pow", { -1.5 }, { 0.8, 1, 1.3, 1.7, 2.2, 3.1 }, function(x) return x ^ -1.5 end },
  { "pow", { 0 }, mixed, function() return 1 end },
  -- the scalar forms of arithmetic (mtl.sub(t, s) is t - s); first = true puts
  -- the number first: mtl.sub(s, t) is s - t
  { "add", { 1.5 }, mixed, function(x) return x + 1.5 end },
  { "sub", { 1.5 }, mixed, function(x) return x - 1.5 end },
  { "sub", { 1.5 }, mixed, function(x) return 1.5 - x end, first = true },
  { "mul", { -0.5 }, mixed, function(x) return -0.5 * x end },
  { "div", { 4 }, mixed, function(x) return x / 4 end },
  { "div", { 0.3 }, mixed, function(x) return x / 0.3 end },
  { "div", { 3 }, positive, function(x) return 3 / x end, first = true },
}

-- A 3x2 table transposed, so that the view t:t() holds `vals` in row-major order.
local function transposed_view(vals)
  local src = mtl.tensor({ { vals[1], vals[4] }, { vals[2], vals[5] }, { vals[3], vals[6] } })
  return src:t()
end

describe("unary elementwise ops", function()
  for _, case in ipairs(unary_cases) do
    local name, args, input, ref = case[1], case[2], case[3], case[4]
    local nargs = args.n or #args
    local label = name .. "(" .. table.concat(map({ unpack(args, 1, nargs) }, tostring), ", ") .. ")"
    local function op(x)
      if case.first then return mtl[name](args[1], x) end
      return mtl[name](x, unpack(args, 1, nargs))
    end
    if case.first then label = name .. "(" .. args[1] .. ", t)" end

    it(label .. " matches the Lua reference, as function and as method", function()
      local t = mtl.tensor({ { input[1], input[2], input[3] }, { input[4], input[5], input[6] } })
      -- float32 inputs: the reference starts from the values the tensor holds
      local expected = map(t:values(), ref)
      check.assert_close(op(t), expected, 1e-6, label)
      if not case.first then
        check.assert_close(t[name](t, unpack(args, 1, nargs)), expected, 1e-6, label .. " method")
      end
      assert.same({ 2, 3 }, op(t):shape())
    end)

    it(label .. " reads a transposed (non-contiguous) view", function()
      local v = transposed_view(input)
      assert.is_false(v:is_contiguous())
      check.assert_close(op(v), map(v:values(), ref), 1e-6, label)
    end)

    it(label .. " has finite-difference gradients, also through a view", function()
      local t = mtl.tensor({ { input[1], input[2], input[3] }, { input[4], input[5], input[6] } })
      check.gradcheck(op, { t })
      local src = mtl.tensor({ { input[1], input[4] }, { input[2], input[5] }, { input[3], input[6] } })
      check.gradcheck(function(x) return op(x:t()) end, { src })
    end)
  end

  it("keeps working on zero-sized and 0-dim tensors", function()
    local e = mtl.zeros(0, 3)
    for _, name in ipairs({ "exp", "log", "sqrt", "tanh", "gelu", "abs" }) do
      assert.same({ 0, 3 }, mtl[name](e):shape())
    end
    check.assert_close(mtl.exp(mtl.tensor(1)), { exp(1) }, 1e-6)
    assert.same({}, mtl.exp(mtl.tensor(1)):shape())
  end)

  it("follows IEEE at the edges: log(0) = -inf, log(-1) and sqrt(-1) are nan", function()
    local l = mtl.log(mtl.tensor({ 0, -1, 1 })):values()
    assert.equal(-math.huge, l[1])
    assert.is_true(l[2] ~= l[2])
    assert.equal(0, l[3])
    local s = mtl.sqrt(mtl.tensor({ -1, 0, 4 })):values()
    assert.is_true(s[1] ~= s[1])
    assert.same({ 0, 2 }, { s[2], s[3] })
    assert.equal(math.huge, mtl.exp(mtl.tensor({ 100 })):item())
    assert.equal(-math.huge, mtl.log1p(mtl.tensor({ -1 })):item())
  end)

  it("sigmoid and tanh stay finite and exact for large |x|, with finite gradients", function()
    local x = mtl.tensor({ -200, -100, -30, 30, 100, 200 }):requires_grad(true)
    local y = mtl.sigmoid(x)
    local v = y:values()
    assert.same({ 0, 1, 1, 1 }, { v[1], v[4], v[5], v[6] })
    check.assert_close(v[3], 1 / (1 + exp(30)), 1e-6)
    check.assert_close(v[2], exp(-100), 1e-3) -- a float32 denormal
    mtl.sum(y):backward()
    for _, g in ipairs(x.grad:values()) do assert.is_true(g == g and g >= 0 and g < 1e-12) end
    check.assert_close(mtl.tanh(mtl.tensor({ -50, 50 })), { -1, 1 }, 0)
    check.assert_close(mtl.gelu(mtl.tensor({ -10, 10 })), { 0, 10 }, 1e-6)
  end)

  it("clamp keeps nan and passes the gradient on the bounds themselves", function()
    local c = mtl.clamp(mtl.tensor({ 0 / 0, -5, 5 }), -1, 1):values()
    assert.is_true(c[1] ~= c[1])
    assert.same({ -1, 1 }, { c[2], c[3] })
    local x = mtl.tensor({ -1, 0, 1, 2 }):requires_grad(true)
    mtl.sum(mtl.clamp(x, -1, 1)):backward()
    assert.same({ 1, 1, 1, 0 }, x.grad:values())
  end)

  it("pow has slope 0 (not nan) for exponent 0, and 0 at x = 0 for exponent 2", function()
    local x = mtl.tensor({ 0, 2 }):requires_grad(true)
    mtl.sum(mtl.pow(x, 0)):backward()
    assert.same({ 0, 0 }, x.grad:values())
    local z = mtl.tensor({ 0, 3 }):requires_grad(true)
    mtl.sum(z ^ 2):backward()
    assert.same({ 0, 6 }, z.grad:values())
  end)

  it("raises clear errors for bad arguments", function()
    local t = mtl.tensor({ 1, 2 })
    local ids = mtl.tensor({ 1, 2 }, "int64")
    check.assert_error("mtl.log: expected a tensor for argument 1, got nil", mtl.log, nil)
    check.assert_error("mtl.exp: expected a tensor for argument 1, got table", mtl.exp, { 1 })
    check.assert_error("mtl.log: expected a float32 tensor for the argument, got int64", mtl.log, ids)
    check.assert_error("mtl.gelu: expected a float32 tensor for the argument, got int64", mtl.gelu, ids)
    check.assert_error("mtl.clamp: expected at least one bound (lo or hi), got nil and nil", mtl.clamp, t)
    check.assert_error("mtl.clamp: lower bound 2 is greater than upper bound 1", mtl.clamp, t, 2, 1)
    check.assert_error("mtl.clamp: expected a number or nil for lo, got string", mtl.clamp, t, "0", 1)
    check.assert_error("mtl.clamp: expected a number or nil for hi, got table", mtl.clamp, t, 0, {})
    check.assert_error("mtl.clamp: bounds must not be nan", mtl.clamp, t, 0 / 0)
    check.assert_error("mtl.leaky_relu: slope must be a finite number, got inf", mtl.leaky_relu, t, math.huge)
    check.assert_error("mtl.leaky_relu: expected a number or nil for slope, got string", mtl.leaky_relu, t, "x")
    check.assert_error("mtl.pow: expected tensors or numbers, got userdata and string", mtl.pow, t, "2")
    check.assert_error("mtl.pow: expected tensors or numbers, got number and number", mtl.pow, 2, 3)
    check.assert_error("mtl.pow: expected tensors or numbers, got nil and userdata", mtl.pow, nil, t)
    check.assert_error("mtl.pow: expected a float32 tensor for the argument, got int64", mtl.pow, ids, 2)
  end)
end)

-- ---- binary ops with broadcasting ------------------------------------------------
-- Reference broadcasting in Lua: shapes right-aligned, size-1 dims repeat.
local function broadcast_ref(av, ashape, bv, bshape, f)
  local nd = math.max(#ashape, #bshape)
  local function dims(shape)
    local d = {}
    for i = 1, nd do d[i] = shape[#shape - nd + i] or 1 end
    return d
  end
  local da, db, out = dims(ashape), dims(bshape), {}
  for i = 1, nd do out[i] = math.max(da[i], db[i]) end
  local res, idx = {}, {}
  local total = 1
  for i = 1, nd do total = total * out[i] end
  for i = 1, nd do idx[i] = 0 end
  local function flat(d, shape)
    local k = 0
    for i = 1, nd do k = k * d[i] + (d[i] == 1 and 0 or idx[i]) end
    return k + 1
  end
  for n = 1, total do
    res[n] = f(av[flat(da)], bv[flat(db)])
    for i = nd, 1, -1 do
      idx[i] = idx[i] + 1
      if idx[i] < out[i] then break end
      idx[i] = 0
    end
  end
  return res, out
end

local binary_ops = {
  { "add", function(x, y) return x + y end },
  { "sub", function(x, y) return x - y end },
  { "mul", function(x, y) return x * y end },
  { "div", function(x, y) return x / y end },
  { "pow", function(x, y) return x ^ y end },
}

-- Shapes that broadcast; inputs are drawn in (0.5, 2) so div and pow (whose
-- gradient in the exponent needs log(base)) stay smooth.
local shape_cases = {
  { { 2, 3 }, { 2, 3 } },
  { { 2, 3 }, { 3 } },
  { { 2, 1 }, { 1, 3 } },
  { { 3 }, { 2, 3 } },
  { { 2, 3, 4 }, { 3, 1 } },
  { { 2, 3 }, {} },
  { {}, { 4 } },
}

local function rand_in(shape, lo, hi)
  return mtl.rand(shape) * (hi - lo) + lo
end

describe("binary elementwise ops", function()
  for _, op in ipairs(binary_ops) do
    local name, f = op[1], op[2]
    for _, sc in ipairs(shape_cases) do
      local label = string.format("%s [%s] and [%s]", name, table.concat(sc[1], ","), table.concat(sc[2], ","))
      it(label .. ": values and gradients of both inputs", function()
        mtl.seed(7)
        local a, b = rand_in(sc[1], 0.5, 2), rand_in(sc[2], 0.5, 2)
        local expected, out_shape = broadcast_ref(a:values(), sc[1], b:values(), sc[2], f)
        local y = mtl[name](a, b)
        assert.same(out_shape, y:shape())
        check.assert_close(y, expected, 1e-6, label)
        check.assert_close(a[name](a, b), expected, 1e-6, label .. " method")
        check.gradcheck(mtl[name], { a, b })
      end)
    end

    it(name .. " on non-contiguous views (transposed and narrowed)", function()
      mtl.seed(8)
      local a = rand_in({ 3, 2 }, 0.5, 2):t()              -- [2,3], strides {1,2}
      local b = rand_in({ 2, 5 }, 0.5, 2):narrow(2, 2, 3)  -- [2,3], strides {5,1}
      assert.is_false(a:is_contiguous())
      local expected = broadcast_ref(a:values(), { 2, 3 }, b:values(), { 2, 3 }, f)
      check.assert_close(mtl[name](a, b), expected, 1e-6)
      local c = rand_in({ 3, 1 }, 0.5, 2):t() -- [1,3] broadcast against [2,3]
      check.assert_close(mtl[name](b, c), broadcast_ref(b:values(), { 2, 3 }, c:values(), { 1, 3 }, f), 1e-6)
      check.gradcheck(function(x, y) return mtl[name](x:t(), y:narrow(2, 2, 3)) end,
        { rand_in({ 3, 2 }, 0.5, 2), rand_in({ 2, 5 }, 0.5, 2) })
    end)
  end

  it("pow of tensors: zero base and zero exponent give finite gradients", function()
    local a = mtl.tensor({ 0, 0, 2 }):requires_grad(true)
    local b = mtl.tensor({ 2, 0, 0 }):requires_grad(true)
    local y = mtl.pow(a, b)
    assert.same({ 0, 1, 1 }, y:values())
    mtl.sum(y):backward()
    assert.same({ 0, 0, 0 }, a.grad:values())
    check.assert_close(b.grad, { 0, 0, log(2) }, 1e-6)
  end)

  it("scalar forms and Lua operators match Lua arithmetic, with gradients", function()
    mtl.seed(9)
    local t = rand_in({ 2, 3 }, 0.5, 2)
    local v = t:values()
    local cases = {
      { function(x) return x + 2 end, function(x) return x + 2 end },
      { function(x) return 2 + x end, function(x) return 2 + x end },
      { function(x) return x - 1.5 end, function(x) return x - 1.5 end },
      { function(x) return 1.5 - x end, function(x) return 1.5 - x end },
      { function(x) return x * 3 end, function(x) return x * 3 end },
      { function(x) return -0.5 * x end, function(x) return -0.5 * x end },
      { function(x) return x / 4 end, function(x) return x / 4 end },
      { function(x) return 3 / x end, function(x) return 3 / x end },
      { function(x) return -x end, function(x) return -x end },
      { function(x) return x ^ 2 end, function(x) return x * x end },
      { function(x) return 2 ^ x end, function(x) return 2 ^ x end },
      { function(x) return x ^ x end, function(x) return x ^ x end },
      { function(x) return mtl.pow(x, mtl.tensor(2)) end, function(x) return x * x end },
    }
    for i, c in ipairs(cases) do
      check.assert_close(c[1](t), map(v, c[2]), 1e-6, "case " .. i)
      check.gradcheck(c[1], { t })
    end
  end)

  it("t / s divides: each quotient is the float32 nearest x / float32(s), not x * (1/s)", function()
    local xs = {}
    for i = 1, 1000 do xs[i] = i * 0.37 end
    local t = mtl.tensor(xs)
    local v = t:values()
    for _, s in ipairs({ 3, 0.3, 7, -11 }) do
      local s32 = mtl.tensor(s):item() -- the scalar rounded to float32, as the op takes it
      local nearest = mtl.tensor(map(v, function(x) return x / s32 end)):values() -- double, then rounded once
      assert.same(nearest, (t / s):values())
      assert.same(nearest, mtl.div(t, s):values())
      assert.equal("div_scalar", mtl.div(mtl.param(t), s):grad_fn())
    end
    -- the reciprocal form rounds twice and misses some of them
    local by_reciprocal, nearest = (t * (1 / 3)):values(), mtl.tensor(map(v, function(x) return x / 3 end)):values()
    local misses = 0
    for i = 1, #v do
      if by_reciprocal[i] ~= nearest[i] then misses = misses + 1 end
    end
    assert.is_true(misses > 0)
    assert.equal("sub_scalar", (mtl.param(t) - 1):grad_fn())
    assert.equal("rsub_scalar", (1 - mtl.param(t)):grad_fn())
    assert.equal("rdiv_scalar", (1 / mtl.param(t)):grad_fn())
  end)

  it("raises clear errors for bad arguments", function()
    local a, b = mtl.zeros(2, 3), mtl.zeros(4)
    check.assert_error("mtl.add: shapes cannot be broadcast together: [2,3] and [4] (dimension 2: 3 vs 4)",
      mtl.add, a, b)
    check.assert_error("mtl.mul: shapes cannot be broadcast together: [2,3] and [3,3] (dimension 1: 2 vs 3)",
      function() return a * mtl.zeros(3, 3) end)
    check.assert_error("mtl.pow: shapes cannot be broadcast together: [2,3] and [4]", mtl.pow, a, b)
    check.assert_error("mtl.sub: expected tensors or numbers, got userdata and string", mtl.sub, a, "1")
    check.assert_error("mtl.div: expected tensors or numbers, got no value and no value", mtl.div)
    check.assert_error("mtl.mul: expected a float32 tensor for the first argument, got int64",
      mtl.mul, mtl.tensor({ 1 }, "int64"), a)
    check.assert_error("mtl.add: expected a float32 tensor for the second argument, got int64",
      mtl.add, a, mtl.tensor({ 1 }, "int64"))
    check.assert_error("mtl.add: expected a float32 tensor for the first argument, got int64",
      mtl.add, mtl.tensor({ 1 }, "int64"), 1)
    check.assert_error("mtl.div: expected a float32 tensor for the second argument, got int64",
      mtl.div, 1, mtl.tensor({ 1 }, "int64"))
  end)
end)

-- ---- where -------------------------------------------------------------------------
describe("where", function()
  it("picks from a where the mask is nonzero, with broadcasting (table-driven)", function()
    mtl.seed(11)
    local cases = {
      -- mask, a, b
      { mtl.tensor({ { 1, 0, 1 }, { 0, 0, 1 } }), mtl.randn(2, 3), mtl.randn(2, 3) },
      { mtl.tensor({ { 1 }, { 0 } }), mtl.randn(2, 3), mtl.randn(3) },
      { mtl.tensor({ 1, 0, 2 }, "int64"), mtl.randn(2, 1), mtl.randn(2, 3) },
      { mtl.tensor({ { 0.5, 0, -1 } }), mtl.randn(3, 1), mtl.randn(1) },
    }
    for i, c in ipairs(cases) do
      local m, a, b = c[1], c[2], c[3]
      -- reference: broadcast (mask, a) pairs, then pick against b
      local picked, shape1 = broadcast_ref(m:values(), m:shape(), a:values(), a:shape(),
        function(mv, av) return { mv, av } end)
      local expected = broadcast_ref(picked, shape1, b:values(), b:shape(),
        function(p, bv) return p[1] ~= 0 and p[2] or bv end)
      check.assert_close(mtl.where(m, a, b), expected, 0, "case " .. i)
      check.gradcheck(function(x, y) return mtl.where(m, x, y) end, { a, b })
    end
  end)

  it("takes numbers for a or b, and views for every argument", function()
    local x = mtl.tensor({ { -1, 2 }, { 3, -4 } })
    check.assert_close(mtl.where(mtl.gt(x, 0), x, 0), { 0, 2, 3, 0 }, 0)
    check.assert_close(mtl.where(mtl.gt(x, 0), 1, -1), { -1, 1, 1, -1 }, 0)
    check.assert_close(mtl.where(mtl.gt(x, 0), -1, x), { -1, -1, -1, -4 }, 0)
    local xt = x:t() -- {{-1,3},{2,-4}}
    check.assert_close(mtl.where(xt:gt(0), xt, mtl.zeros(2, 2)), { 0, 3, 2, 0 }, 0)
    local m = mtl.tensor({ { 1, 1 }, { 0, 0 } }):t() -- {{1,0},{1,0}}
    check.assert_close(mtl.where(m, x, 10), { -1, 10, 3, 10 }, 0)
  end)

  it("sends the gradient to a where the mask is set and to b elsewhere", function()
    local a = mtl.tensor({ 1, 2, 3 }):requires_grad(true)
    local b = mtl.tensor({ { 10 }, { 20 } }):requires_grad(true)
    local m = mtl.tensor({ { 1, 0, 1 }, { 0, 0, 0 } })
    mtl.sum(mtl.where(m, a, b)):backward()
    assert.same({ 1, 0, 1 }, a.grad:values())
    assert.same({ 1, 3 }, b.grad:values())
  end)

  it("raises clear errors for bad arguments", function()
    local m, a = mtl.ones(2, 3), mtl.zeros(2, 3)
    check.assert_error("mtl.where: shapes cannot be broadcast together: mask [2,3], a [2,3], b [4]",
      mtl.where, m, a, mtl.zeros(4))
    check.assert_error("mtl.where: shapes cannot be broadcast together: mask [3,3], a [2,3], b []",
      mtl.where, mtl.ones(3, 3), a, 0)
    check.assert_error("mtl.where: expected a float32 tensor for a, got int64",
      mtl.where, m, mtl.zeros(2, 3, "int64"), a)
    check.assert_error("mtl.where: expected a tensor for argument 1, got nil", mtl.where, nil, a, a)
    check.assert_error("mtl.where: expected a tensor or a number for argument 2, got string", mtl.where, m, "a", a)
    check.assert_error("mtl.where: expected a tensor or a number for argument 3, got no value", mtl.where, m, a)
  end)
end)

-- ---- comparisons -------------------------------------------------------------------
local comparisons = {
  { "eq", function(x, y) return x == y end },
  { "ne", function(x, y) return x ~= y end },
  { "lt", function(x, y) return x < y end },
  { "le", function(x, y) return x <= y end },
  { "gt", function(x, y) return x > y end },
  { "ge", function(x, y) return x >= y end },
}

describe("comparisons", function()
  local a = mtl.tensor({ { 1, 2, 3 }, { 4, 0 / 0, -1 } })
  local b = mtl.tensor({ 2, 2, 0 / 0 })
  local function bool01(f) return function(x, y) return f(x, y) and 1 or 0 end end

  for _, c in ipairs(comparisons) do
    local name, f = c[1], c[2]
    it(name .. ": tensor-tensor with broadcasting, tensor-number, number-tensor", function()
      check.assert_close(mtl[name](a, b), broadcast_ref(a:values(), { 2, 3 }, b:values(), { 3 }, bool01(f)), 0)
      check.assert_close(a[name](a, b), broadcast_ref(a:values(), { 2, 3 }, b:values(), { 3 }, bool01(f)), 0)
      check.assert_close(mtl[name](a, 2), map(a:values(), function(x) return f(x, 2) and 1 or 0 end), 0)
      check.assert_close(mtl[name](2, a), map(a:values(), function(x) return f(2, x) and 1 or 0 end), 0)
      -- int64 against int64, against a whole number and a fraction, and against float
      local ids = mtl.tensor({ 0, 1, 2, 3 }, "int64")
      local iv = ids:values()
      check.assert_close(mtl[name](ids, mtl.tensor({ 1 }, "int64")), map(iv, function(x) return f(x, 1) and 1 or 0 end), 0)
      check.assert_close(mtl[name](ids, 2), map(iv, function(x) return f(x, 2) and 1 or 0 end), 0)
      check.assert_close(mtl[name](ids, 1.5), map(iv, function(x) return f(x, 1.5) and 1 or 0 end), 0)
      check.assert_close(mtl[name](ids, mtl.tensor({ 1.5 })), map(iv, function(x) return f(x, 1.5) and 1 or 0 end), 0)
      -- a transposed view
      local t = mtl.tensor({ { 1, 5 }, { 3, 3 } }):t() -- {{1,3},{5,3}}
      check.assert_close(mtl[name](t, 3), map({ 1, 3, 5, 3 }, function(x) return f(x, 3) and 1 or 0 end), 0)
    end)
  end

  it("returns float32 0/1 with no gradient, and compares a float tensor with the float of a number", function()
    local x = mtl.tensor({ 0.1, 0.2 }):requires_grad(true)
    local r = mtl.eq(x, 0.1)
    assert.equal("float32", r:dtype())
    assert.same({ 1, 0 }, r:values())
    assert.is_false(r:requires_grad())
    assert.is_nil(r:grad_fn())
    assert.same({ 0, 3 }, mtl.lt(mtl.zeros(0, 3), 1):shape())
  end)

  it("raises clear errors for bad arguments", function()
    check.assert_error("mtl.lt: shapes cannot be broadcast together: [2,3] and [2] (dimension 2: 3 vs 2)",
      mtl.lt, mtl.zeros(2, 3), mtl.zeros(2))
    check.assert_error("mtl.eq: expected tensors or numbers, got nil and number", mtl.eq, nil, 1)
    check.assert_error("mtl.ge: expected tensors or numbers, got userdata and string", mtl.ge, mtl.zeros(1), "1")
  end)
end)
