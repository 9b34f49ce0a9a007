-- Matrix products: mtl.matmul (2-D, batched 3-D) and mtl.linear. Values are
-- checked against triple loops in plain Lua (double) arithmetic; operands
-- include transposed, narrowed and expanded views, which reach sgemm as
-- transpose flags / leading dimensions or (expanded) as a copy. Gradients by
-- central finite differences (helpers/check.lua: eps 1e-2, rtol 1e-3, atol 1e-4).
local mtl = require "mtl"
local check = require "helpers.check"

-- C = A B for row-major flat values; 2-D or batched 3-D shapes.
local function matmul_ref(av, ashape, bv, bshape)
  local batched = #ashape == 3
  local nb = batched and ashape[1] or 1
  local m, k = ashape[#ashape - 1], ashape[#ashape]
  local n = bshape[#bshape]
  local out = {}
  for p = 0, nb - 1 do
    for i = 0, m - 1 do
      for j = 0, n - 1 do
        local acc = 0
        for l = 0, k - 1 do
          acc = acc + av[p * m * k + i * k + l + 1] * bv[p * k * n + l * n + j + 1]
        end
        out[#out + 1] = acc
      end
    end
  end
  return out, batched and { nb, m, n } or { m, n }
end

-- y = x W^T + bias
local function linear_ref(xv, xshape, wv, wshape, bv)
  local m, k, nout = xshape[1], xshape[2], wshape[1]
  local out = {}
  for i = 0, m - 1 do
    for j = 0, nout - 1 do
      local acc = bv and bv[j + 1] or 0
      for l = 0, k - 1 do acc = acc + xv[i * k + l + 1] * wv[j * k + l + 1] end
      out[#out + 1] = acc
    end
  end
  return out
end

describe("matmul", function()
  local shape_cases = {
    { { 2, 3 }, { 3, 4 } },
    { { 1, 1 }, { 1, 1 } },
    { { 4, 1 }, { 1, 3 } },
    { { 1, 5 }, { 5, 1 } },
    { { 17, 33 }, { 33, 9 } },
    { { 3, 2, 4 }, { 3, 4, 5 } },
    { { 1, 3, 3 }, { 1, 3, 2 } },
  }
  for _, c in ipairs(shape_cases) do
    local as, bs = c[1], c[2]
    local label = string.format("[%s] x [%s]", table.concat(as, ","), table.concat(bs, ","))
    it(label .. ": values against a triple loop, gradients of both inputs", function()
      mtl.seed(21)
      local a, b = mtl.randn(as), mtl.randn(bs)
      local expected, oshape = matmul_ref(a:values(), as, b:values(), bs)
      local y = mtl.matmul(a, b)
      assert.same(oshape, y:shape())
      check.assert_close(y, expected, 1e-5, label)
      check.assert_close(a:matmul(b), expected, 1e-5, label .. " method")
      if #expected <= 64 then check.gradcheck(mtl.matmul, { a, b }) end
    end)
  end

  -- Views: each case builds (a, b) from fresh random sources; `make` applies
  -- the same view ops so gradients flow back through them.
  local view_cases = {
    { "transposed a", { { 3, 2 }, { 3, 4 } }, function(x, y) return x:t(), y end },
    { "transposed b", { { 2, 3 }, { 4, 3 } }, function(x, y) return x, y:t() end },
    { "both transposed", { { 3, 2 }, { 4, 3 } }, function(x, y) return x:t(), y:t() end },
    { "narrowed columns (leading dim > cols)", { { 2, 6 }, { 5, 4 } },
      function(x, y) return x:narrow(2, 2, 3), y:narrow(1, 2, 3):narrow(2, 1, 2) end },
    { "narrowed transposed", { { 5, 2 }, { 3, 6 } },
      function(x, y) return x:narrow(1, 2, 3):t(), y:narrow(2, 3, 4) end },
    { "expanded (stride 0, copied)", { { 1, 3 }, { 3, 1 } },
      function(x, y) return x:expand(4, 3), y:expand(3, 2) end },
    { "batched, transposed matrices", { { 2, 4, 3 }, { 2, 5, 4 } },
      function(x, y) return x:transpose(2, 3), y:transpose(2, 3) end },
    { "batched, batch dim not outermost", { { 3, 2, 4 }, { 2, 4, 3 } },
      function(x, y) return x:transpose(1, 2), y end },
    { "batched, expanded batch", { { 1, 2, 3 }, { 4, 3, 2 } },
      function(x, y) return x:expand(4, 2, 3), y end },
  }
  for _, c in ipairs(view_cases) do
    local name, shapes, make = c[1], c[2], c[3]
    it("reads " .. name .. " operands correctly, with gradients", function()
      mtl.seed(22)
      local sa, sb = mtl.randn(shapes[1]), mtl.randn(shapes[2])
      local a, b = make(sa, sb)
      local expected, oshape = matmul_ref(a:values(), a:shape(), b:values(), b:shape())
      local y = mtl.matmul(a, b)
      assert.same(oshape, y:shape())
      check.assert_close(y, expected, 1e-5, name)
      check.gradcheck(function(x, z) return mtl.matmul(make(x, z)) end, { sa, sb })
    end)
  end

  it("handles zero-sized dimensions", function()
    assert.same({ 0, 2 }, mtl.matmul(mtl.zeros(0, 3), mtl.ones(3, 2)):shape())
    assert.same({ 2, 0 }, mtl.matmul(mtl.ones(2, 3), mtl.zeros(3, 0)):shape())
    assert.same({ 0, 2, 4 }, mtl.matmul(mtl.zeros(0, 2, 3), mtl.zeros(0, 3, 4)):shape())
    -- an empty inner dimension: the product is all zeros
    local z = mtl.matmul(mtl.ones(2, 0), mtl.ones(0, 3))
    assert.same({ 2, 3 }, z:shape())
    assert.same({ 0, 0, 0, 0, 0, 0 }, z:values())
    check.assert_close(mtl.matmul(mtl.ones(2, 2, 0), mtl.ones(2, 0, 1)), { 0, 0, 0, 0 }, 0)
    -- and the gradients have the inputs' (empty or zero) shapes
    local a = mtl.zeros(2, 0):requires_grad(true)
    local b = mtl.zeros(0, 3):requires_grad(true)
    mtl.sum(mtl.matmul(a, b)):backward()
    assert.same({ 2, 0 }, a.grad:shape())
    assert.same({ 0, 3 }, b.grad:shape())
    local c = mtl.ones(3, 2):requires_grad(true)
    mtl.sum(mtl.matmul(mtl.zeros(0, 3), c)):backward()
    assert.same({ 0, 0, 0, 0, 0, 0 }, c.grad:values())
  end)

  it("raises clear errors for bad arguments", function()
    check.assert_error("mtl.matmul: inner dimensions differ: [4,3] x [5,2]", mtl.matmul, mtl.zeros(4, 3), mtl.zeros(5, 2))
    check.assert_error("mtl.matmul: inner dimensions differ: [2,4,3] x [2,5,2]",
      mtl.matmul, mtl.zeros(2, 4, 3), mtl.zeros(2, 5, 2))
    check.assert_error("mtl.matmul: expected two 2-D or two 3-D tensors, got [3] x [3,2]",
      mtl.matmul, mtl.zeros(3), mtl.zeros(3, 2))
    check.assert_error("mtl.matmul: expected two 2-D or two 3-D tensors, got [2,2,3] x [3,2]",
      mtl.matmul, mtl.zeros(2, 2, 3), mtl.zeros(3, 2))
    check.assert_error("mtl.matmul: batch sizes differ: [2,3,4] x [3,4,5]", mtl.matmul, mtl.zeros(2, 3, 4), mtl.zeros(3, 4, 5))
    check.assert_error("mtl.matmul: expected float32 tensors, got int64 and float32",
      mtl.matmul, mtl.zeros(2, 2, "int64"), mtl.zeros(2, 2))
    check.assert_error("mtl.matmul: expected a tensor for argument 2, got nil", mtl.matmul, mtl.zeros(2, 2), nil)
    check.assert_error("mtl.matmul: expected a tensor for argument 1, got number", mtl.matmul, 1, mtl.zeros(2, 2))
    -- sizes beyond BLAS's int (empty tensors, so nothing is allocated)
    check.assert_error("mtl.matmul: dimensions too large for BLAS (at most 2147483647): [0,2147483648] x [2147483648,0]",
      mtl.matmul, mtl.zeros(0, 2 ^ 31), mtl.zeros(2 ^ 31, 0))
  end)
end)

describe("linear", function()
  it("computes x W^T + bias, with gradients of x, W and bias", function()
    mtl.seed(31)
    local x, w, b = mtl.randn(4, 3), mtl.randn(5, 3), mtl.randn(5)
    check.assert_close(mtl.linear(x, w, b), linear_ref(x:values(), { 4, 3 }, w:values(), { 5, 3 }, b:values()), 1e-5)
    check.assert_close(x:linear(w), linear_ref(x:values(), { 4, 3 }, w:values(), { 5, 3 }), 1e-5)
    check.gradcheck(mtl.linear, { x, w, b })
    check.gradcheck(mtl.linear, { x, w })
  end)

  -- (x, W, bias) built from [3,4], [6,7] and [8] sources by view ops
  local linear_views = {
    { "transposed x, narrowed W and bias", function(x, w, b) return x:t(), w:narrow(1, 2, 4):narrow(2, 1, 3), b:narrow(1, 3, 4) end },
    { "W stored [in,out] and transposed", function(x, w, b) return x:t(), w:narrow(1, 1, 3):narrow(2, 2, 5):t(), b:narrow(1, 1, 5) end },
  }
  for _, c in ipairs(linear_views) do
    it("reads views: " .. c[1], function()
      mtl.seed(32)
      local sx, sw, sb = mtl.randn(3, 4), mtl.randn(6, 7), mtl.randn(8)
      local make = c[2]
      local x, w, b = make(sx, sw, sb)
      assert.is_false(x:is_contiguous() and w:is_contiguous())
      local expected = linear_ref(x:values(), x:shape(), w:values(), w:shape(), b:values())
      check.assert_close(mtl.linear(x, w, b), expected, 1e-5)
      check.gradcheck(function(a, v, d) return mtl.linear(make(a, v, d)) end, { sx, sw, sb })
    end)
  end

  it("handles an empty batch and an empty input dimension", function()
    local w, b = mtl.randn(3, 2), mtl.tensor({ 1, 2, 3 })
    assert.same({ 0, 3 }, mtl.linear(mtl.zeros(0, 2), w, b):shape())
    -- no input features: the output is the bias
    check.assert_close(mtl.linear(mtl.zeros(2, 0), mtl.zeros(3, 0), b), { 1, 2, 3, 1, 2, 3 }, 0)
    local wg = w:clone():requires_grad(true)
    local bg = b:clone():requires_grad(true)
    mtl.sum(mtl.linear(mtl.zeros(0, 2), wg, bg)):backward()
    assert.same({ 0, 0, 0, 0, 0, 0 }, wg.grad:values())
    assert.same({ 0, 0, 0 }, bg.grad:values())
  end)

  -- the gradients of f's leaves after backward of sum(f(...) * r)
  local function grads_of(f, inputs, r)
    local leaves = {}
    for i, t in ipairs(inputs) do leaves[i] = t:clone():requires_grad(true) end
    local y = f(unpack(leaves))
    mtl.sum(y * r):backward()
    local out = { y:values() }
    for i, t in ipairs(leaves) do out[i + 1] = t.grad:values() end
    return out
  end

  it("fuses relu: the values and gradients of relu(linear(x, W, b))", function()
    mtl.seed(33)
    local x, w, b = mtl.randn(6, 5), mtl.randn(4, 5), mtl.randn(4)
    local r = mtl.randn(6, 4)
    local fused = grads_of(function(a, v, d) return mtl.linear(a, v, d, "relu") end, { x, w, b }, r)
    local composed = grads_of(function(a, v, d) return mtl.relu(mtl.linear(a, v, d)) end, { x, w, b }, r)
    for i = 1, 4 do check.assert_close(fused[i], composed[i], 1e-5) end
    check.assert_close(mtl.linear(x, w, b, "none"), mtl.linear(x, w, b), 0)
    -- a gradient that other nodes still read is not overwritten in place
    local xl = x:clone():requires_grad(true)
    local y = mtl.linear(xl, w, b, "relu")
    local z = y:reshape(24)
    mtl.sum(mtl.concat({ z, z }, 1) * mtl.concat({ r:reshape(24), r:reshape(24) }, 1)):backward()
    local xl2 = x:clone():requires_grad(true)
    mtl.sum(mtl.relu(mtl.linear(xl2, w, b)) * r * 2):backward()
    check.assert_close(xl.grad, xl2.grad, 1e-5)
  end)

  -- grouped reference: group k of W [g,out,in] applied to x (shared) or x[:,k,:]
  local function grouped_ref(x, w, b)
    local g, nout, nin = w:size(1), w:size(2), w:size(3)
    local m = x:size(1)
    local out = {}
    for i = 1, m do
      for k = 1, g do
        for j = 1, nout do
          local acc = b and b:get(k, j) or 0
          for l = 1, nin do
            local xv = x:dim() == 2 and x:get(i, l) or x:get(i, k, l)
            acc = acc + xv * w:get(k, j, l)
          end
          out[#out + 1] = acc
        end
      end
    end
    return out
  end

  it("applies grouped weights [g,out,in] to a shared x [n,in] and to x [n,g,in]", function()
    mtl.seed(34)
    local w, b = mtl.randn(3, 4, 5), mtl.randn(3, 4)
    local shared, per_group = mtl.randn(6, 5), mtl.randn(6, 3, 5)
    for _, x in ipairs { shared, per_group } do
      local y = mtl.linear(x, w, b)
      assert.same({ 6, 3, 4 }, y:shape())
      check.assert_close(y, grouped_ref(x, w, b), 1e-5)
      check.gradcheck(mtl.linear, { x, w, b })
      check.gradcheck(mtl.linear, { x, w })
      local r = mtl.randn(6, 3, 4)
      local fused = grads_of(function(a, v, d) return mtl.linear(a, v, d, "relu") end, { x, w, b }, r)
      local composed = grads_of(function(a, v, d) return mtl.relu(mtl.linear(a, v, d)) end, { x, w, b }, r)
      for i = 1, 4 do check.assert_close(fused[i], composed[i], 1e-5) end
    end
  end)

  it("reads grouped views: x [g,n,in] transposed, W with groups apart (one GEMM per group)", function()
    mtl.seed(35)
    local sx, sw, sb = mtl.randn(3, 6, 5), mtl.randn(3, 8, 5), mtl.randn(3, 7)
    local function make(a, v, d) return a:transpose(1, 2), v:narrow(2, 2, 4), d:narrow(2, 3, 4) end
    local x, w, b = make(sx, sw, sb)
    check.assert_close(mtl.linear(x, w, b), grouped_ref(x, w, b), 1e-5)
    local x1 = x:narrow(2, 1, 1):reshape(6, 5)
    check.assert_close(mtl.linear(x1, w, b), grouped_ref(x1, w, b), 1e-5)
    check.gradcheck(function(a, v, d) return mtl.linear(make(a, v, d)) end, { sx, sw, sb })
    check.gradcheck(function(a, v, d) local xx, ww, bb = make(a, v, d)
      return mtl.linear(xx:narrow(2, 2, 1):reshape(6, 5), ww, bb) end, { sx, sw, sb })
  end)

  it("adds the gradients of an input and a weight used several times", function()
    mtl.seed(36)
    local x, w, v = mtl.randn(5, 4), mtl.randn(3, 4), mtl.randn(3, 4)
    -- x reaches the loss through three linears, w through two and a product
    local function f(a, b, c)
      return mtl.linear(a, b, nil, "relu") + mtl.linear(a, c) * 2 + mtl.linear(a * 0.5, b) + mtl.linear(a, b):t():t()
    end
    check.gradcheck(f, { x, w, v })
    -- a second backward adds into the leaf's gradient
    local xl = x:clone():requires_grad(true)
    mtl.sum(mtl.linear(xl, w, nil, "relu")):backward()
    local first_values = xl.grad:values()
    mtl.sum(mtl.linear(xl, w, nil, "relu")):backward()
    check.assert_close(xl.grad, (mtl.tensor(first_values) * 2):values(), 1e-6)
  end)

  it("raises clear errors for bad arguments", function()
    local x, w = mtl.zeros(2, 3), mtl.zeros(4, 3)
    check.assert_error("mtl.linear: groups differ: x [2,2,3], weight [3,4,3]", mtl.linear, mtl.zeros(2, 2, 3), mtl.zeros(3, 4, 3))
    check.assert_error("mtl.linear: bias must be [3,4], got [4]", mtl.linear, x, mtl.zeros(3, 4, 3), mtl.zeros(4))
    check.assert_error("mtl.linear: expected x [n,in] and weight [out,in], or x [n,in] or [n,g,in] and grouped weight [g,out,in], got [3] and [2,4,3]",
      mtl.linear, mtl.zeros(3), mtl.zeros(2, 4, 3))
    check.assert_error("mtl.linear: unknown activation 'tanh' (expected 'relu' or 'none')", mtl.linear, x, w, nil, "tanh")
    check.assert_error("mtl.linear: expected an activation name for argument 4, got number", mtl.linear, x, w, nil, 1)
    check.assert_error("mtl.linear: input features differ: x [2,3], weight [4,5]", mtl.linear, x, mtl.zeros(4, 5))
    check.assert_error("mtl.linear: bias must be [4], got [3]", mtl.linear, x, w, mtl.zeros(3))
    check.assert_error("mtl.linear: bias must be [4], got [1,4]", mtl.linear, x, w, mtl.zeros(1, 4))
    check.assert_error("mtl.linear: expected x [n,in] and weight [out,in], got [3] and [4,3]", mtl.linear, mtl.zeros(3), w)
    check.assert_error("mtl.linear: expected float32 tensors, got x int64, weight float32",
      mtl.linear, mtl.zeros(2, 3, "int64"), w)
    check.assert_error("mtl.linear: expected float32 tensors, got x float32, weight float32, bias int64",
      mtl.linear, x, w, mtl.zeros(4, "int64"))
    check.assert_error("mtl.linear: expected a tensor for argument 2, got no value", mtl.linear, x)
    check.assert_error("mtl.linear: expected a tensor for argument 3, got number", mtl.linear, x, w, 1)
  end)
end)

describe("threads", function()
  -- values and gradients of a step of fused linears and a mix with n threads
  local function run(n)
    mtl.set_num_threads(n)
    mtl.seed(51)
    local x = mtl.randn(600, 300):requires_grad(true)
    local w1, b1 = mtl.randn(3, 160, 300):requires_grad(true), mtl.randn(3, 160):requires_grad(true)
    local w2, b2 = mtl.randn(3, 96, 160):requires_grad(true), mtl.randn(3, 96):requires_grad(true)
    local wg = mtl.randn(3, 300):requires_grad(true)
    local h = mtl.linear(mtl.linear(x, w1, b1, "relu"), w2, b2, "relu")   -- [600, 3, 96]
    local y = mtl.mix(h, mtl.softmax(mtl.linear(x, wg), 2))                -- [600, 96]
    mtl.sum(y * y):backward()
    local out = { y:values() }
    for _, t in ipairs { x, w1, b1, w2, b2, wg } do out[#out + 1] = t.grad:values() end
    mtl.set_num_threads(1)
    return out
  end

  -- OpenBLAS's threads may sum a product in another order than one thread:
  -- close, not always bit-identical, to 1 thread.
  it("gives the values and gradients of 1 thread with 2 (pool and OpenBLAS threads)", function()
    local one, two = run(1), run(2)
    for i = 1, #one do
      -- error relative to the largest value: sums that cancel make single elements noisier
      local worst, scale = 0, 0
      for k = 1, #one[i] do
        worst = math.max(worst, math.abs(two[i][k] - one[i][k]))
        scale = math.max(scale, math.abs(one[i][k]))
      end
      assert(worst <= 1e-5 * scale, string.format("output %d: max difference %g for values up to %g", i, worst, scale))
    end
  end)
end)

describe("mtl.gemm_stats", function()
  after_each(function() mtl.gemm_stats(false) end)

  it("counts and times each product by shape and transpose flags while on", function()
    local a, b = mtl.randn(3, 4), mtl.randn(4, 5)
    mtl.matmul(a, b)                                   -- off: not counted
    mtl.gemm_stats(true)
    mtl.matmul(a, b); mtl.matmul(a, b)
    mtl.matmul(mtl.randn(4, 3):t(), b)                 -- a transposed view: flag T
    local x = mtl.randn(6, 4):requires_grad(true)
    local w = mtl.randn(2, 4):requires_grad(true)
    mtl.sum(mtl.linear(x, w)):backward()               -- x W^T, then dx = g W, dW = g^T x
    mtl.no_grad(mtl.linear, x, mtl.randn(3, 2, 4))      -- inference: the packed FP32 kernel, groups' outputs as n
    mtl.gemm_stats(false)
    mtl.matmul(a, b)                                   -- off again: not counted
    local got = {}
    for _, g in ipairs(mtl.gemm_stats()) do
      assert.is_true(g.seconds >= 0)
      got[string.format("%dx%dx%d %s%s", g.m, g.n, g.k, g.ta, g.tb)] = g.calls
    end
    assert.same({ ["3x5x4 NN"] = 2, ["3x5x4 TN"] = 1, ["6x2x4 NT"] = 1, ["6x4x2 NN"] = 1, ["2x4x6 TN"] = 1, ["6x6x4 NP"] = 1 }, got)
    mtl.gemm_stats(true)                               -- on again: cleared
    assert.same({}, mtl.gemm_stats())
  end)

  it("rejects what is not a boolean", function()
    assert.has_error(function() mtl.gemm_stats("yes") end)
  end)
end)
