-- Shape and indexing ops (runtime/src/ops/shape.c, runtime/bind/bind_shape.c).
-- Inputs are built from Lua tables whose entries encode their own position
-- (code(i, j, k) = 100 i + 10 j + k), so every expected value is computed in
-- Lua from positions alone, never through the op under test. Views are also
-- checked to share storage: a write through the view must show in the base.
-- Gradients: finite differences (spec/helpers/check.lua, eps 1e-2, rtol 1e-3);
-- these ops are linear, so the check is exact up to float32 rounding.
local mtl = require "mtl"
local check = require "helpers.check"

local assert_close, assert_error, gradcheck = check.assert_close, check.assert_error, check.gradcheck

-- A nested table of the given shape with entry fn(i, j, ...) (1-based).
local function nested(shape, fn)
  local nd, idx = #shape, {}
  if nd == 0 then return fn() end
  local function build(d)
    local out = {}
    for i = 1, shape[d] do
      idx[d] = i
      if d == nd then out[i] = fn(unpack(idx, 1, nd)) else out[i] = build(d + 1) end
    end
    return out
  end
  return build(1)
end

-- The value stored at a position: its digits are the (1-based) indices.
local function code(...)
  local v = 0
  for _, i in ipairs({ ... }) do v = v * 10 + i end
  return v
end

-- A float tensor of the given shape holding code(position) at each position.
local function coded(shape, dtype)
  return mtl.tensor(nested(shape, code), dtype)
end

-- A 1-based (possibly negative) dim of an n-dim tensor as a positive one.
local function pos_dim(d, n) return d < 0 and d + n + 1 or d end

-- An int64 tensor of positions (index_select, gather).
local function long(t) return mtl.tensor(t, "int64") end

-- Random float input (seeded) for gradient checks.
local function randn(...)
  return mtl.randn(...)
end

describe("shape ops", function()
  before_each(function() mtl.seed(7) end)

  describe("reshape / view", function()
    local cases = {
      { from = { 2, 3, 4 }, to = { 4, 6 }, shape = { 4, 6 } },
      { from = { 2, 3, 4 }, to = { -1, 4 }, shape = { 6, 4 } },
      { from = { 2, 3, 4 }, to = { 24 }, shape = { 24 } },
      { from = { 2, 3, 4 }, to = { 2, 1, 12, 1 }, shape = { 2, 1, 12, 1 } },
      { from = { 6 }, to = { 3, -1 }, shape = { 3, 2 } },
      { from = { 1 }, to = {}, shape = {} },
    }
    for _, c in ipairs(cases) do
      it(string.format("reshapes [%s] to [%s] as a view in row-major order", table.concat(c.from, ","),
        table.concat(c.to, ",")), function()
        local a = coded(c.from)
        local b = a:reshape(c.to)
        assert.same(c.shape, b:shape())
        assert_close(b, check.flat(nested(c.from, code)))
        -- a view: same first element address, and writes show through
        assert.equal(a:data_ptr(), b:data_ptr())
        if #c.to > 0 then
          b:set_flat(b:numel(), -5)
          assert.equal(-5, a:get_flat(a:numel()))
        end
        gradcheck(function(x) return x:reshape(c.to) end, { randn(c.from) })
      end)
    end

    it("takes sizes as numbers or a table, and view is the same op", function()
      local a = coded({ 2, 3 })
      assert.same({ 3, 2 }, a:reshape(3, 2):shape())
      assert.same({ 3, 2 }, a:view(3, 2):shape())
      assert.same({ 3, 2 }, mtl.view(a, { 3, -1 }):shape())
      assert.equal("reshape", a:clone():requires_grad(true):view(6):grad_fn())
    end)

    it("is a view of a narrowed tensor whose rows stay contiguous", function()
      local a = coded({ 4, 6 })
      local b = a:narrow(1, 2, 2):reshape(12) -- rows 2..3: one contiguous block
      assert_close(b, check.flat(nested({ 2, 6 }, function(i, j) return code(i + 1, j) end)))
      b:set(1, -1)
      assert.equal(-1, a:get(2, 1))
    end)

    it("is a view when a transposed dim is only split", function()
      local a = coded({ 4, 6 })
      local b = a:t():reshape(2, 3, 4) -- [6,4] with strides {1,6}: dim 1 splits into 2x3
      assert.same({ 3, 1, 6 }, b:stride())
      assert_close(b, check.flat(nested({ 2, 3, 4 }, function(p, q, r) return code(r, (p - 1) * 3 + q) end)))
      b:set(2, 3, 4, -1)
      assert.equal(-1, a:get(4, 6))
    end)

    it("copies when the strides do not allow a view (transpose, narrow, reshape)", function()
      local a = coded({ 3, 4, 5 })
      local v = a:transpose(1, 3):narrow(2, 2, 2) -- [5,2,3]: v[i][j][k] = a[k][j+1][i]
      assert.is_false(v:is_contiguous())
      local b = v:reshape(5, 6)
      assert.is_true(b:is_contiguous())
      assert_close(b, check.flat(nested({ 5, 2, 3 }, function(i, j, k) return code(k, j + 1, i) end)))
      b:set(1, 1, -1) -- a copy: the base is untouched
      assert.equal(code(1, 2, 1), a:get(1, 2, 1))
      gradcheck(function(x) return x:transpose(1, 3):narrow(2, 2, 2):reshape(-1) end, { randn(3, 4, 5) })
    end)

    it("copies an expanded tensor", function()
      local b = coded({ 3, 1 }):expand(3, 4):reshape(12)
      assert_close(b, check.flat(nested({ 3, 4 }, function(i) return code(i, 1) end)))
      gradcheck(function(x) return x:expand(3, 4):reshape(2, 6) end, { randn(3, 1) })
    end)

    it("is right on random strided inputs: values in row-major order, views that alias", function()
      -- the expected values: t's elements read one by one with :get, row-major
      local function rowmajor(t)
        local shape, out, idx = t:shape(), {}, {}
        local function walk(d)
          if d > #shape then out[#out + 1] = t:get(unpack(idx, 1, #shape)) return end
          for i = 1, shape[d] do idx[d] = i; walk(d + 1) end
        end
        walk(1)
        return out
      end
      -- a random shape with n elements (prime factors grouped at random, maybe a 1)
      local function random_shape(n)
        local s = {}
        while n > 1 do
          local f = 2
          while n % f ~= 0 do f = f + 1 end
          if math.random() < 0.5 and #s > 0 then s[#s] = s[#s] * f else s[#s + 1] = f end
          n = n / f
        end
        if math.random() < 0.3 then table.insert(s, math.random(1, #s + 1), 1) end
        return s
      end
      math.randomseed(11)
      local views = 0
      for _ = 1, 300 do
        local t = coded({ 5, 4, 6 })
        for _ = 1, math.random(0, 3) do
          local c, d = math.random(1, 3), math.random(1, t:dim())
          if c == 1 then
            t = t:transpose(d, math.random(1, t:dim()))
          elseif c == 2 then
            local start = math.random(1, t:size(d))
            t = t:narrow(d, start, math.random(1, t:size(d) - start + 1))
          else
            t = t:unsqueeze(d)
          end
        end
        local r = t:reshape(random_shape(t:numel()))
        assert_close(r, rowmajor(t))
        if r:data_ptr() == t:data_ptr() then
          views = views + 1
          local k = math.random(1, r:numel())
          r:set_flat(k, -1)
          assert.equal(-1, rowmajor(t)[k])
        end
      end
      assert.is_true(views > 100) -- most of these can be views
    end)

    it("handles zero-sized tensors", function()
      assert.same({ 3, 0 }, mtl.zeros(0, 3):reshape(3, -1):shape())
      assert.same({ 0 }, mtl.zeros(2, 0, 5):reshape(-1):shape())
      assert.same({ 0, 4 }, mtl.zeros(4, 0):t():reshape(0, 4):shape())
    end)

    it("reports bad shapes", function()
      local a = mtl.zeros(2, 3, 4)
      assert_error("mtl.reshape: cannot reshape [2,3,4] (24 elements) into [5,5] (25 elements)",
        function() return a:reshape(5, 5) end)
      assert_error("mtl.reshape: cannot reshape [2,3,4] (24 elements) into [5,-1]", function() return a:reshape(5, -1) end)
      assert_error("mtl.reshape: only one size can be -1 (inferred), got -1 at 1 and 2",
        function() return a:reshape(-1, -1) end)
      assert_error("mtl.reshape: cannot reshape [0,3] (0 elements) into [0,-1]",
        function() return mtl.zeros(0, 3):reshape(0, -1) end)
      assert_error("mtl.reshape: expected sizes (numbers or a table), got string", function() return a:reshape("x") end)
      assert_error("mtl.reshape: expected sizes (numbers or a table), got no value", function() return a:reshape() end)
      assert_error("mtl.reshape: expected sizes (numbers or a table), got string after them",
        function() return a:reshape(4, "x") end)
      assert_error("mtl.reshape: size 2 must be a non-negative integer, got 2.5", function() return a:reshape(4, 2.5) end)
      assert_error("mtl.reshape: expected a tensor for argument 1, got nil", function() return mtl.reshape(nil, 3) end)
      assert_error("mtl.reshape: cannot reshape [2,3,4] (24 elements) into [1000000000000000,1000000000000000]",
        function() return a:reshape(1e15, 1e15) end)
      -- empty, but its strides would overflow
      assert_error("mtl.reshape: out of memory: tensor of that shape is too large",
        function() return mtl.zeros(0):reshape(0, 2 ^ 53, 2 ^ 53) end)
    end)
  end)

  describe("transpose / t / permute", function()
    it("swaps two dims as a view", function()
      local a = coded({ 2, 3, 4 })
      for _, c in ipairs({ { 1, 3 }, { -1, 1 }, { 2, 2 } }) do
        local b = a:transpose(c[1], c[2])
        local d0, d1 = pos_dim(c[1], 3), pos_dim(c[2], 3)
        local shape = { 2, 3, 4 }
        shape[d0], shape[d1] = shape[d1], shape[d0]
        assert.same(shape, b:shape())
        assert_close(b, check.flat(nested(shape, function(...)
          local p = { ... }
          p[d0], p[d1] = p[d1], p[d0]
          return code(unpack(p))
        end)))
        assert.equal(a:data_ptr(), b:data_ptr())
        gradcheck(function(x) return x:transpose(c[1], c[2]) end, { randn(2, 3, 4) })
      end
      local b = a:transpose(1, 3)
      b:set(4, 3, 2, -1)
      assert.equal(-1, a:get(2, 3, 4))
    end)

    it("t() transposes a matrix", function()
      local a = coded({ 2, 3 })
      assert_close(a:t(), nested({ 3, 2 }, function(i, j) return code(j, i) end))
      gradcheck(function(x) return mtl.t(x) end, { randn(2, 3) })
      assert_error("mtl.t: expected a 2-D tensor, got [2,3,4]", function() return mtl.zeros(2, 3, 4):t() end)
    end)

    it("permutes dims as a view", function()
      local a = coded({ 2, 3, 4 })
      local b = a:permute(3, 1, 2) -- b[i][j][k] = a[j][k][i]
      assert.same({ 4, 2, 3 }, b:shape())
      assert_close(b, check.flat(nested({ 4, 2, 3 }, function(i, j, k) return code(j, k, i) end)))
      assert.same({ 4, 2, 3 }, a:permute({ -1, 1, 2 }):shape())
      b:set(4, 2, 3, -1)
      assert.equal(-1, a:get(2, 3, 4))
      gradcheck(function(x) return x:permute(3, 1, 2) end, { randn(2, 3, 4) })
      gradcheck(function(x) return x:permute(2, 3, 1):reshape(12, 2) end, { randn(2, 3, 4) })
    end)

    it("reports bad dims", function()
      local a = mtl.zeros(2, 3, 4)
      assert_error("mtl.transpose: dimension 4 out of range (expected 1..3 or -3..-1)", function() return a:transpose(1, 4) end)
      assert_error("mtl.transpose: dimension 0 out of range (expected 1..3 or -3..-1)", function() return a:transpose(0, 1) end)
      assert_error("mtl.permute: expected a permutation of 1..3 for a tensor of shape [2,3,4], got 1 at position 2",
        function() return a:permute(1, 1, 2) end)
      assert_error("mtl.permute: expected 3 dimensions for a tensor of shape [2,3,4], got 2", function() return a:permute(1, 2) end)
      assert_error("mtl.permute: dimension 7 out of range (expected 1..3 or -3..-1)", function() return a:permute(1, 2, 7) end)
      assert_error("mtl.permute: expected an integer for a dimension, got string",
        function() return a:permute(1, 2, "x") end)
    end)
  end)

  describe("squeeze / unsqueeze", function()
    it("drops size-1 dims as a view", function()
      local a = coded({ 1, 3, 1, 2 })
      assert.same({ 3, 2 }, a:squeeze():shape())
      assert.same({ 3, 1, 2 }, a:squeeze(1):shape())
      assert.same({ 1, 3, 2 }, a:squeeze(-2):shape())
      assert.same({ 1, 3, 1, 2 }, a:squeeze(2):shape()) -- size 3: unchanged
      assert.same({}, mtl.zeros(1, 1):squeeze():shape())
      local b = a:squeeze()
      assert_close(b, nested({ 3, 2 }, function(i, j) return code(1, i, 1, j) end))
      b:set(3, 2, -1)
      assert.equal(-1, a:get(1, 3, 1, 2))
      gradcheck(function(x) return x:squeeze() end, { randn(1, 3, 1, 2) })
      gradcheck(function(x) return x:squeeze(3) end, { randn(1, 3, 1, 2) })
    end)

    it("inserts a size-1 dim as a view", function()
      local a = coded({ 2, 3 })
      for _, c in ipairs({ { 1, { 1, 2, 3 } }, { 2, { 2, 1, 3 } }, { 3, { 2, 3, 1 } }, { -1, { 2, 3, 1 } },
        { -3, { 1, 2, 3 } } }) do
        local b = a:unsqueeze(c[1])
        assert.same(c[2], b:shape())
        assert_close(b, nested({ 2, 3 }, code))
        assert.equal(a:data_ptr(), b:data_ptr())
        gradcheck(function(x) return x:unsqueeze(c[1]) end, { randn(2, 3) })
      end
      assert.is_true(a:unsqueeze(2):is_contiguous())
      local b = a:t():unsqueeze(2) -- strided input
      assert.same({ 3, 1, 2 }, b:shape())
      assert_close(b, nested({ 3, 1, 2 }, function(i, _, k) return code(k, i) end))
      gradcheck(function(x) return x:t():unsqueeze(2) end, { randn(2, 3) })
      assert.same({ 1 }, mtl.tensor(5):unsqueeze(1):shape())
    end)

    it("reports bad dims", function()
      assert_error("mtl.unsqueeze: dimension 4 out of range (expected 1..3 or -3..-1)",
        function() return mtl.zeros(2, 3):unsqueeze(4) end)
      assert_error("mtl.squeeze: dimension 3 out of range (expected 1..2 or -2..-1)",
        function() return mtl.zeros(2, 3):squeeze(3) end)
      assert_error("mtl.unsqueeze: tensors have at most 8 dimensions",
        function() return mtl.zeros(1, 1, 1, 1, 1, 1, 1, 1):unsqueeze(1) end)
    end)
  end)

  describe("narrow", function()
    local cases = {
      { dim = 1, start = 2, len = 2 },
      { dim = 2, start = 1, len = 3 },
      { dim = 3, start = 4, len = 1 },
      { dim = -1, start = -2, len = 2 }, -- the last two of dim 3
      { dim = 2, start = 4, len = 0 },   -- empty, at the end
    }
    for _, c in ipairs(cases) do
      it(string.format("narrow(%d, %d, %d) is a view", c.dim, c.start, c.len), function()
        local a = coded({ 3, 3, 4 })
        local b = a:narrow(c.dim, c.start, c.len)
        local d = pos_dim(c.dim, 3)
        local first = c.start > 0 and c.start or a:size(d) + c.start + 1
        local shape = { 3, 3, 4 }
        shape[d] = c.len
        assert.same(shape, b:shape())
        assert_close(b, check.flat(nested(shape, function(...)
          local p = { ... }
          p[d] = p[d] + first - 1
          return code(unpack(p))
        end)))
        if c.len > 0 then
          local p = { 1, 1, 1 }
          b:set(1, 1, 1, -1)
          p[d] = first
          assert.equal(-1, a:get(unpack(p)))
        end
        gradcheck(function(x) return x:narrow(c.dim, c.start, c.len) end, { randn(3, 3, 4) })
      end)
    end

    it("adds up gradients of overlapping slices", function()
      gradcheck(function(x) return x:narrow(1, 1, 3) * x:narrow(1, 2, 3) end, { randn(4, 2) })
    end)

    it("reports bad ranges", function()
      local a = mtl.zeros(2, 3)
      assert_error("mtl.narrow: length 2 out of range for dimension 2 of size 3 starting at 3 (expected 0..1)",
        function() return a:narrow(2, 3, 2) end)
      assert_error("mtl.narrow: start 5 out of range for dimension 2 of size 3 (expected 1..4 or -3..-1)",
        function() return a:narrow(2, 5, 0) end)
      assert_error("mtl.narrow: start 0 out of range for dimension 2 of size 3 (expected 1..4 or -3..-1)",
        function() return a:narrow(2, 0, 1) end)
      assert_error("mtl.narrow: start -4 out of range for dimension 2 of size 3 (expected 1..4 or -3..-1)",
        function() return a:narrow(2, -4, 1) end)
      assert_error("mtl.narrow: length -1 out of range for dimension 1 of size 2 starting at 1 (expected 0..2)",
        function() return a:narrow(1, 1, -1) end)
      assert_error("mtl.narrow: expected an integer for length, got no value", function() return a:narrow(1, 1) end)
      assert_error("mtl.narrow: expected an integer for start, got 1.5", function() return a:narrow(1, 1.5, 1) end)
      assert_error("mtl.narrow: dimension 3 out of range (expected 1..2 or -2..-1)", function() return a:narrow(3, 1, 1) end)
    end)
  end)

  describe("expand", function()
    it("broadcasts size-1 and new leading dims with stride 0", function()
      local a = coded({ 3, 1 })
      local b = a:expand(2, 3, 4)
      assert.same({ 2, 3, 4 }, b:shape())
      assert.same({ 0, 1, 0 }, b:stride())
      assert_close(b, check.flat(nested({ 2, 3, 4 }, function(_, i) return code(i, 1) end)))
      assert.same({ 3, 5 }, a:expand(-1, 5):shape())
      assert.same({ 3, 0 }, a:expand(3, 0):shape())
      assert.same({ 2, 3, 1 }, a:expand({ 2, -1, -1 }):shape())
      assert.same({ 4, 3, 1 }, a:expand_as(mtl.zeros(4, 3, 1)):shape())
      b:set(1, 2, 1, -1) -- every expanded copy is the same element
      assert.equal(-1, a:get(2, 1))
      assert.equal(-1, b:get(2, 2, 4))
    end)

    it("sums the gradient over the expanded dims", function()
      gradcheck(function(x) return x:expand(2, 3, 4) end, { randn(3, 1) })
      gradcheck(function(x) return x:expand(4, 3) end, { randn(3) })
      gradcheck(function(x) return x:t():expand(2, 2, 3) end, { randn(3, 2) })
    end)

    it("reports shapes that do not broadcast", function()
      local a = mtl.zeros(2, 3, 1)
      assert_error("mtl.expand: cannot expand [2,3,1] to [2,5,4] (dimension 2: 3 vs 5; only size-1 dimensions expand)",
        function() return a:expand(2, 5, 4) end)
      assert_error("mtl.expand: cannot expand [2,3,1] to [3,4] (fewer dimensions)", function() return a:expand(3, 4) end)
      assert_error("mtl.expand: size -1 not allowed for the new leading dimension 1 of [-1,2,3,1]",
        function() return a:expand(-1, 2, 3, 1) end)
      assert_error("mtl.expand: out of memory: tensor of that shape is too large",
        function() return mtl.zeros(1, 1):expand(1e12, 1e12) end)
    end)
  end)

  describe("contiguous", function()
    it("returns the same data for a contiguous tensor", function()
      local a = coded({ 2, 3 })
      local b = a:contiguous()
      assert.equal(a:data_ptr(), b:data_ptr())
      local x = randn(2, 3):requires_grad(true)
      local y = x * 2
      assert.equal("mul_scalar", y:contiguous():grad_fn())
      gradcheck(function(x) return x:contiguous() end, { randn(2, 3) })
    end)

    it("copies a strided tensor, differentiably", function()
      local a = coded({ 2, 3, 4 })
      local b = a:permute(3, 1, 2):contiguous()
      assert.is_true(b:is_contiguous())
      assert.are_not.equal(a:data_ptr(), b:data_ptr())
      assert_close(b, check.flat(nested({ 4, 2, 3 }, function(i, j, k) return code(j, k, i) end)))
      assert.same({ 0, 2 }, mtl.zeros(2, 0):t():contiguous():shape())
      gradcheck(function(x) return x:permute(3, 1, 2):contiguous() end, { randn(2, 3, 4) })
    end)
  end)

  describe("concat", function()
    it("joins along a dim (values, both forms, negative dims)", function()
      local a, b = coded({ 2, 3 }), coded({ 2, 2 }) + 1000
      local c = mtl.concat({ a, b }, 2)
      assert.same({ 2, 5 }, c:shape())
      assert_close(c, nested({ 2, 5 }, function(i, j) return j <= 3 and code(i, j) or code(i, j - 3) + 1000 end))
      assert_close(a:concat(b, -1), c)
      local d = mtl.concat({ a, a, a }) -- default dim 1
      assert.same({ 6, 3 }, d:shape())
      assert_close(d, nested({ 6, 3 }, function(i, j) return code((i - 1) % 2 + 1, j) end))
      assert_close(a:concat({ a, a }, 1), d)
    end)

    it("joins int64, strided and zero-sized inputs", function()
      local ids = mtl.concat({ mtl.tensor({ 1, 2 }, "int64"), mtl.tensor({ 9007199254740991 }, "int64") })
      assert.equal("int64", ids:dtype())
      assert.same({ 1, 2, 9007199254740991 }, ids:totable())
      local a = coded({ 3, 2 })
      local c = mtl.concat({ a:t(), mtl.zeros(2, 0), coded({ 2, 4 }):narrow(2, 2, 2) }, 2)
      assert_close(c, nested({ 2, 5 }, function(i, j) return j <= 3 and code(j, i) or code(i, j - 2) end))
      assert.same({ 0, 3 }, mtl.concat({ mtl.zeros(0, 3), mtl.zeros(0, 3) }):shape())
    end)

    it("passes each input its part of the gradient", function()
      gradcheck(function(x, y, z) return mtl.concat({ x, y, z }, 2) end, { randn(2, 3), randn(2, 1), randn(2, 2) })
      gradcheck(function(x, y) return mtl.concat({ x:t(), y, x:t() }, 1) end, { randn(3, 2), randn(1, 3) })
      gradcheck(function(x, y) return mtl.concat({ x, y }, 2) end, { randn(2, 2, 3), randn(2, 1, 3) })
      -- more inputs than a node keeps inline (4)
      gradcheck(function(...) return mtl.concat({ ... }, 1) end, { randn(1, 2), randn(2, 2), randn(1, 2), randn(3, 2),
        randn(1, 2), randn(2, 2) })
      gradcheck(function(...) return mtl.stack({ ... }, 2) end, { randn(2), randn(2), randn(2), randn(2), randn(2) })
      -- only the input that needs a gradient gets one
      local x, y = randn(2, 2):requires_grad(true), randn(2, 2)
      mtl.sum(mtl.concat({ x, y })):backward()
      assert_close(x.grad, { 1, 1, 1, 1 })
      assert.is_nil(y.grad)
    end)

    it("reports bad lists", function()
      local a = mtl.zeros(2, 3)
      assert_error("mtl.concat: expected a non-empty list of tensors", function() return mtl.concat({}, 1) end)
      assert_error("mtl.concat: tensor 2 has shape [2,4,4] but tensor 1 has [2,3,4] (sizes must match except in dimension 3)",
        function() return mtl.concat({ mtl.zeros(2, 3, 4), mtl.zeros(2, 4, 4) }, 3) end)
      assert_error("mtl.concat: tensor 2 has shape [6] but tensor 1 has [2,3] (sizes must match except in dimension 1)",
        function() return mtl.concat({ a, mtl.zeros(6) }) end)
      assert_error("mtl.concat: expected a tensor at position 2 of the list, got number", function() return mtl.concat({ a, 3 }) end)
      assert_error("mtl.concat: tensor 2 is int64 but tensor 1 is float32 (all must have the same dtype)",
        function() return mtl.concat({ a, a:long() }) end)
      assert_error("mtl.concat: expected a table of tensors for argument 1, got no value", function() return mtl.concat() end)
      assert_error("mtl.concat: dimension 3 out of range (expected 1..2 or -2..-1)", function() return mtl.concat({ a, a }, 3) end)
    end)
  end)

  describe("stack", function()
    for _, dim in ipairs({ 1, 2, 3, -1 }) do
      it("stacks along a new dim " .. dim, function()
        local a, b = coded({ 2, 3 }), coded({ 2, 3 }) + 1000
        local s = mtl.stack({ a, b }, dim)
        local d = pos_dim(dim, 3)
        local shape = { 2, 3 }
        table.insert(shape, d, 2)
        assert.same(shape, s:shape())
        assert_close(s, check.flat(nested(shape, function(...)
          local p = { ... }
          local which = table.remove(p, d)
          return code(unpack(p)) + (which == 2 and 1000 or 0)
        end)))
        gradcheck(function(x, y) return mtl.stack({ x, y:t() }, dim) end, { randn(2, 3), randn(3, 2) })
      end)
    end

    it("stacks int64 and zero-sized tensors, method form too", function()
      local s = mtl.tensor({ 1, 2 }, "int64"):stack(mtl.tensor({ 3, 4 }, "int64"))
      assert.same({ { 1, 2 }, { 3, 4 } }, s:totable())
      assert.same({ 3, 0 }, mtl.stack({ mtl.zeros(0), mtl.zeros(0), mtl.zeros(0) }):shape())
    end)

    it("reports mismatched shapes and bad dims", function()
      assert_error("mtl.stack: tensor 2 has shape [2,4,4] but tensor 1 has [2,3,4] (all must have the same shape)",
        function() return mtl.stack({ mtl.zeros(2, 3, 4), mtl.zeros(2, 4, 4) }) end)
      assert_error("mtl.stack: dimension 5 out of range (expected 1..4 or -4..-1)",
        function() return mtl.stack({ mtl.zeros(2, 3, 4) }, 5) end)
      assert_error("mtl.stack: expected a non-empty list of tensors", function() return mtl.stack({}) end)
    end)
  end)

  describe("split / chunk", function()
    local function sizes_of(parts, dim)
      local s = {}
      for i, p in ipairs(parts) do s[i] = p:size(dim) end
      return s
    end

    it("splits into pieces of a size (last shorter), as views", function()
      local a = coded({ 5, 2 })
      local parts = a:split(2)
      assert.same({ 2, 2, 1 }, sizes_of(parts, 1))
      assert_close(parts[2], nested({ 2, 2 }, function(i, j) return code(i + 2, j) end))
      assert_close(parts[3], { code(5, 1), code(5, 2) })
      parts[3]:set(1, 2, -1)
      assert.equal(-1, a:get(5, 2))
      local cols = mtl.split(coded({ 2, 5 }), 3, 2)
      assert.same({ 3, 2 }, sizes_of(cols, 2))
      assert_close(cols[2], nested({ 2, 2 }, function(i, j) return code(i, j + 3) end))
      assert.equal(2, select("#", unpack(cols)))
    end)

    it("splits into given sizes", function()
      local parts = coded({ 2, 6 }):split({ 1, 0, 5 }, -1)
      assert.same({ 1, 0, 5 }, sizes_of(parts, 2))
      assert_close(parts[3], nested({ 2, 5 }, function(i, j) return code(i, j + 1) end))
    end)

    it("chunks like PyTorch: ceil(n / chunks) each, possibly fewer chunks", function()
      for _, c in ipairs({ { 6, 3, { 2, 2, 2 } }, { 5, 3, { 2, 2, 1 } }, { 4, 3, { 2, 2 } }, { 2, 4, { 1, 1 } },
        { 0, 3, { 0, 0, 0 } } }) do
        assert.same(c[3], sizes_of(mtl.zeros(c[1], 2):chunk(c[2]), 1))
      end
      assert.same({ 0 }, sizes_of(mtl.zeros(0, 2):split(2), 1))
      local parts = coded({ 2, 4 }):chunk(2, 2)
      assert_close(parts[2], nested({ 2, 2 }, function(i, j) return code(i, j + 2) end))
    end)

    it("passes gradients back to the right slices", function()
      gradcheck(function(x)
        local p = x:split(2, 2)
        return mtl.concat({ p[3], p[1] * p[2] }, 2)
      end, { randn(3, 5) })
      gradcheck(function(x)
        local p = x:chunk(3)
        return p[1] + p[3]
      end, { randn(6, 2) })
      gradcheck(function(x) return x:split({ 2, 1 }, 1)[2] end, { randn(3, 2) })
    end)

    it("reports bad sizes", function()
      local a = mtl.zeros(2, 3)
      assert_error("mtl.split: the split size must be >= 1, got 0", function() return a:split(0) end)
      assert_error("mtl.split: piece sizes add up to 2 but dimension 2 has size 3", function() return a:split({ 1, 1 }, 2) end)
      assert_error("mtl.split: piece sizes must be >= 0 and add up to 3 (the size of dimension 2), got 4 for piece 2 after 1",
        function() return a:split({ 1, 4 }, 2) end)
      assert_error("mtl.split: expected 1..1000000 piece sizes, got 0", function() return a:split({}, 2) end)
      assert_error("mtl.split: that makes 2000000 pieces (at most 1000000)", function() return mtl.zeros(2000000):split(1) end)
      assert_error("mtl.split: expected an integer for the split size, got no value", function() return a:split() end)
      assert_error("mtl.chunk: the number of chunks must be in 1..1000000, got 0", function() return a:chunk(0) end)
      assert_error("mtl.chunk: dimension 3 out of range (expected 1..2 or -2..-1)", function() return a:chunk(2, 3) end)
    end)
  end)

  describe("index_select", function()
    it("picks entries of a dim at 1-based positions (repeats allowed)", function()
      local a = coded({ 4, 3 })
      local rows = { 4, 1, 4 }
      local b = a:index_select(1, long(rows))
      assert_close(b, nested({ 3, 3 }, function(i, j) return code(rows[i], j) end))
      local cols = { 3, 3, 2, 1 }
      assert_close(mtl.index_select(a, -1, long(cols)), nested({ 4, 4 }, function(i, j) return code(i, cols[j]) end))
      assert_close(a:index_select(2, { 2 }), nested({ 4, 1 }, function(i) return code(i, 2) end)) -- a table works
      local idx = long(rows)
      a:index_select(1, idx)
      assert.same(rows, idx:totable()) -- the caller's index is not changed
    end)

    it("reads strided and int64 inputs, and empty indices", function()
      local a = coded({ 3, 4 })
      local b = a:t():index_select(2, long({ 3, 1 })) -- [4,2]: b[i][j] = a[{3,1}[j]][i]
      assert_close(b, nested({ 4, 2 }, function(i, j) return code(({ 3, 1 })[j], i) end))
      local ids = coded({ 3, 2 }, "int64"):index_select(1, long({ 2 }))
      assert.equal("int64", ids:dtype())
      assert.same({ { 21, 22 } }, ids:totable())
      assert.same({ 7, 5, 7 }, mtl.tensor({ 5, 6, 7 }, "int64"):index_select(1, { 3, 1, 3 }):totable())
      assert.same({ 3, 0 }, a:index_select(2, mtl.zeros(0, "int64")):shape())
      assert.same({ 0, 2 }, mtl.zeros(0, 4):index_select(2, long({ 4, 1 })):shape())
    end)

    it("scatter-adds the gradient (duplicate indices accumulate)", function()
      gradcheck(function(x) return x:index_select(1, long({ 2, 1, 2, 2 })) end, { randn(3, 2) })
      gradcheck(function(x) return x:index_select(2, long({ 3, 3 })) end, { randn(2, 3, 2) })
      gradcheck(function(x) return x:t():index_select(1, long({ 1, 3 })) end, { randn(2, 3) })
      local x = mtl.zeros(3):requires_grad(true)
      mtl.sum(x:index_select(1, long({ 2, 2, 3 }))):backward()
      assert_close(x.grad, { 0, 2, 1 })
    end)

    it("reports bad indices with the valid range", function()
      local a = mtl.zeros(5)
      assert_error("mtl.index_select: index 7 out of range for dimension 1 of size 5 (expected 1..5)",
        function() return a:index_select(1, long({ 2, 7 })) end)
      assert_error("mtl.index_select: index 0 out of range for dimension 1 of size 5 (expected 1..5)",
        function() return a:index_select(1, { 0 }) end)
      assert_error("mtl.index_select: index -3 out of range for dimension 1 of size 5 (expected 1..5)",
        function() return a:index_select(1, long({ -3 })) end)
      assert_error("mtl.index_select: index 1 out of range for dimension 2 of size 0 (the dimension is empty)",
        function() return mtl.zeros(2, 0):index_select(2, { 1 }) end)
      assert_error("mtl.index_select: expected an int64 index tensor, got float32",
        function() return a:index_select(1, mtl.tensor({ 1 })) end)
      assert_error("mtl.index_select: expected a 1-D index tensor, got [1,1]",
        function() return a:index_select(1, long({ { 1 } })) end)
      assert_error("mtl.index_select: expected an int64 index tensor or a table of integers for argument 3, got no value",
        function() return a:index_select(1) end)
      assert_error("mtl.index_select: expected an integer for an index, got 1.5", function() return a:index_select(1, { 1.5 }) end)
      assert_error("mtl.index_select: dimension 2 out of range (expected 1..1 or -1..-1)",
        function() return a:index_select(2, { 1 }) end)
    end)
  end)

  describe("gather", function()
    it("picks out[i][j] = a[i][index[i][j]] along dim 2", function()
      local a = coded({ 2, 3 })
      local ix = { { 3, 1, 3, 3 }, { 2, 2, 1, 1 } }
      local b = a:gather(2, long(ix))
      assert.same({ 2, 4 }, b:shape())
      assert_close(b, nested({ 2, 4 }, function(i, j) return code(i, ix[i][j]) end))
    end)

    it("picks out[i][j] = a[index[i][j]][j] along dim 1, with a smaller index", function()
      local a = coded({ 3, 4 })
      local ix = { { 3, 1 } } -- [1,2]: fits inside [3,4]
      assert_close(mtl.gather(a, 1, long(ix)), { code(3, 1), code(1, 2) })
      local c = coded({ 2, 3, 2 })
      local ix3 = { { { 2 }, { 1 } }, { { 1 }, { 2 } } } -- [2,2,1] along dim 3
      assert_close(c:gather(3, long(ix3)), nested({ 2, 2, 1 }, function(i, j, k) return code(i, j, ix3[i][j][k]) end))
    end)

    it("reads strided and int64 inputs and zero-sized indices", function()
      local a = coded({ 3, 2 })
      local ix = { { 2, 3 }, { 1, 1 } }
      local b = a:t():gather(2, long(ix)) -- a:t()[i][k] = a[k][i]
      assert_close(b, nested({ 2, 2 }, function(i, j) return code(ix[i][j], i) end))
      assert.same({ { 21, 12 } }, coded({ 2, 2 }, "int64"):gather(1, long({ { 2, 1 } })):totable())
      assert.same({ 2, 0 }, a:gather(2, mtl.zeros(2, 0, "int64")):shape())
    end)

    it("scatter-adds the gradient (duplicate indices accumulate)", function()
      gradcheck(function(x) return x:gather(2, long({ { 3, 1, 3 }, { 2, 2, 2 } })) end, { randn(2, 3) })
      gradcheck(function(x) return x:gather(1, long({ { 2, 1 }, { 2, 2 } })) end, { randn(2, 3) })
      gradcheck(function(x) return x:t():gather(2, long({ { 1, 2, 1 } })) end, { randn(2, 3) })
      local x = mtl.zeros(2, 2):requires_grad(true)
      mtl.sum(x:gather(2, long({ { 2, 2, 2 }, { 1, 2, 1 } }))):backward()
      assert_close(x.grad, { 0, 3, 2, 1 })
    end)

    it("reports bad indices with the valid range", function()
      local a = mtl.zeros(2, 3)
      assert_error("mtl.gather: index 4 out of range for dimension 2 of size 3 (expected 1..3)",
        function() return a:gather(2, long({ { 1 }, { 4 } })) end)
      assert_error("mtl.gather: the index needs as many dimensions as the input [2,3], got [1]",
        function() return a:gather(2, long({ 1 })) end)
      assert_error("mtl.gather: index of shape [3,1] does not fit the input [2,3] (dimension 1: 3 > 2)",
        function() return a:gather(2, long({ { 1 }, { 1 }, { 1 } })) end)
      assert_error("mtl.gather: expected an int64 index tensor, got float32", function() return a:gather(2, mtl.zeros(2, 1)) end)
      assert_error("mtl.gather: expected an int64 index tensor for argument 3, got table",
        function() return a:gather(2, { { 1 }, { 1 } }) end)
    end)
  end)

  describe("composition", function()
    it("chains views, copies and gathers with correct gradients", function()
      gradcheck(function(x, y)
        local h = mtl.concat({ x:t(), y:expand(3, 2) }, 2)            -- [3,4]
        local g = h:reshape(2, 6):narrow(2, 2, 4):unsqueeze(1)         -- [1,2,4]
        local s = mtl.stack({ g:squeeze(1), g:squeeze(1):index_select(2, { 4, 1, 1, 2 }) }, 1) -- [2,2,4]
        return s:permute(2, 3, 1):gather(3, mtl.tensor(nested({ 2, 4, 1 }, function(i, j) return (i + j) % 2 + 1 end),
          "int64"))
      end, { randn(2, 3), randn(3, 1) })
    end)
  end)

  describe("printing", function()
    it("abbreviates a 100x100 tensor", function()
      local s = tostring(mtl.ones(100, 100))
      assert.truthy(s:find("...", 1, true))
      assert.truthy(s:find("[mtl.Tensor float32 of size 100x100]", 1, true))
      local t = tostring(mtl.zeros(3, 50, 20):transpose(2, 3)) -- strided: sampled through reshape (a copy)
      assert.truthy(t:find("...", 1, true))
      assert.truthy(t:find("[mtl.Tensor float32 of size 3x20x50]", 1, true))
    end)
  end)
end)
