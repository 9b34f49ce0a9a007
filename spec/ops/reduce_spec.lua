-- Reductions: sum, mean, max, min (over one dim or all elements) and
-- softmax / log_softmax over a dim. References are computed here in plain
-- Lua (double) arithmetic from the inputs' values; gradients by central
-- finite differences (helpers/check.lua: eps 1e-2, rtol 1e-3, atol 1e-4).
local mtl = require "mtl"
local check = require "helpers.check"

local exp, log = math.exp, math.log

-- ---- a reference reduction in Lua ----------------------------------------------
-- Calls visit(slice, at) for each list of values along dim d of the row-major
-- flat values `v` of shape `shape`, in order; at(r) is the flat index of the
-- slice's r-th value.
local function each_slice(v, shape, d, visit)
  local outer, n, inner = 1, shape[d], 1
  for i = 1, d - 1 do outer = outer * shape[i] end
  for i = d + 1, #shape do inner = inner * shape[i] end
  for o = 0, outer - 1 do
    for j = 0, inner - 1 do
      local function at(r) return (o * n + r - 1) * inner + j + 1 end
      local slice = {}
      for r = 1, n do slice[r] = v[at(r)] end
      visit(slice, at)
    end
  end
end

-- Reduces dim d (1-based; nil = all) with f(list of values along the dim) ->
-- value. Returns flat results and shape.
local function reduce_ref(v, shape, d, f, keepdim)
  if not d then
    local ones = {}
    for i = 1, keepdim and #shape or 0 do ones[i] = 1 end
    return { (f(v)) }, ones
  end
  local out = {}
  each_slice(v, shape, d, function(slice) out[#out + 1] = f(slice) end)
  local oshape = {}
  for i = 1, #shape do
    if i ~= d then oshape[#oshape + 1] = shape[i] elseif keepdim then oshape[#oshape + 1] = 1 end
  end
  return out, oshape
end

-- Applies f(slice) -> slice along dim d (for softmax), keeping the shape.
local function along_ref(v, shape, d, f)
  local out = {}
  each_slice(v, shape, d, function(slice, at)
    local res = f(slice)
    for r = 1, #slice do out[at(r)] = res[r] end
  end)
  return out
end

local function lsum(s) local acc = 0 for _, x in ipairs(s) do acc = acc + x end return acc end
local function lmean(s) return lsum(s) / #s end
-- value and 1-based position of the extreme (beats(x, b): x takes b's
-- place); first occurrence on ties, nan wins
local function extreme(s, beats)
  local b, k = s[1], 1
  for i = 2, #s do
    local x = s[i]
    if (beats(x, b) or (x ~= x and b == b)) then b, k = x, i end
  end
  return b, k
end
local function lmax(s) return extreme(s, function(x, b) return x > b end) end
local function lmin(s) return extreme(s, function(x, b) return x < b end) end
local function lsoftmax(s)
  local m = -math.huge
  for _, x in ipairs(s) do if x > m then m = x end end
  local z, out = 0, {}
  for i, x in ipairs(s) do out[i] = exp(x - m) z = z + out[i] end
  for i = 1, #s do out[i] = out[i] / z end
  return out
end
local function llog_softmax(s)
  local m = -math.huge
  for _, x in ipairs(s) do if x > m then m = x end end
  local z, out = 0, {}
  for _, x in ipairs(s) do z = z + exp(x - m) end
  for i, x in ipairs(s) do out[i] = x - m - log(z) end
  return out
end

local shapes = { { 5 }, { 3, 4 }, { 2, 3, 4 } }

-- every {name, reference, shape, dim, keepdim} of the ops {name, reference},
-- dim nil meaning all elements
local function dim_cases(ops)
  local out = {}
  for _, op in ipairs(ops) do
    for _, shape in ipairs(shapes) do
      for d = 0, #shape do
        for _, keep in ipairs({ false, true }) do out[#out + 1] = { op[1], op[2], shape, d > 0 and d or nil, keep } end
      end
    end
  end
  return out
end

local function label(shape, d, keep)
  return string.format("[%s] dim %s%s", table.concat(shape, ","), tostring(d), keep and " keepdim" or "")
end

local SUMS = { { "sum", lsum }, { "mean", lmean } }

describe("sum and mean", function()
  for _, c in ipairs(dim_cases(SUMS)) do
    local name, ref, shape, d, keep = unpack(c, 1, 5)
    it(name .. " " .. label(shape, d, keep) .. ": values, shape, gradient", function()
      mtl.seed(3)
      local t = mtl.randn(shape)
      local expected, oshape = reduce_ref(t:values(), shape, d, ref, keep)
      local y = mtl[name](t, d, keep)
      assert.same(oshape, y:shape())
      check.assert_close(y, expected, 1e-5, name)
      check.assert_close(t[name](t, d, keep), expected, 1e-5, name .. " method")
      check.gradcheck(function(x) return mtl[name](x, d, keep) end, { t })
    end)
  end

  for _, op in ipairs(SUMS) do
    local name, ref = op[1], op[2]
    it(name .. " over negative dims and a transposed view", function()
      mtl.seed(4)
      local src = mtl.randn(4, 3)
      local v = src:t() -- [3,4], not contiguous
      local vals = v:values()
      check.assert_close(mtl[name](v, -1), reduce_ref(vals, { 3, 4 }, 2, ref), 1e-5)
      check.assert_close(mtl[name](v, 1), reduce_ref(vals, { 3, 4 }, 1, ref), 1e-5)
      check.assert_close(mtl[name](v), reduce_ref(vals, { 3, 4 }, nil, ref), 1e-5)
      check.gradcheck(function(x) return mtl[name](x:t(), 2) end, { src })
    end)
  end

  it("sum of an empty tensor is 0, mean is nan; zero-sized other dims give empty results", function()
    assert.equal(0, mtl.sum(mtl.zeros(0, 3)):item())
    local m = mtl.mean(mtl.zeros(0)):item()
    assert.is_true(m ~= m)
    assert.same({ 0, 0, 0 }, mtl.sum(mtl.zeros(0, 3), 1):values())
    assert.same({ 0 }, mtl.sum(mtl.zeros(0, 3), 2):shape())
  end)
end)

local EXTREMES = { { "max", lmax }, { "min", lmin } }

describe("max and min", function()
  for _, c in ipairs(dim_cases(EXTREMES)) do
    local name, ref, shape, d, keep = unpack(c, 1, 5)
    it(name .. " " .. label(shape, d, keep) .. ": values, 1-based indices, gradient", function()
      -- distinct values spaced well beyond the finite-difference step
      local n = 1
      for _, s in ipairs(shape) do n = n * s end
      mtl.seed(5)
      local perm = mtl.randn(n):values()
      local order = {}
      for i = 1, n do order[i] = i end
      table.sort(order, function(i, j) return perm[i] < perm[j] end)
      local vals = {}
      for i = 1, n do vals[order[i]] = (i - n / 2) * 0.25 end
      local t = mtl.tensor(vals):reshape(shape)
      local expected, oshape = reduce_ref(vals, shape, d, ref, keep)
      local expected_idx = reduce_ref(vals, shape, d, function(s) return select(2, ref(s)) end, keep)
      local v, i = mtl[name](t, d, keep)
      assert.same(oshape, v:shape())
      assert.same(oshape, i:shape())
      assert.equal("int64", i:dtype())
      check.assert_close(v, expected, 0, name)
      assert.same(expected_idx, i:values())
      local v2, i2 = t[name](t, d, keep)
      check.assert_close(v2, expected, 0)
      assert.same(expected_idx, i2:values())
      check.gradcheck(function(x) return (mtl[name](x, d, keep)) end, { t })
    end)
  end

  for _, op in ipairs(EXTREMES) do
    local name, ref = op[1], op[2]
    it(name .. " on a transposed view", function()
      local src = mtl.tensor({ { 3, -1, 4 }, { 1, 5, -9 } })
      local v = src:t() -- {{3,1},{-1,5},{4,-9}}
      local vals, i = mtl[name](v, 2)
      check.assert_close(vals, reduce_ref(v:values(), { 3, 2 }, 2, ref), 0)
      assert.same(reduce_ref(v:values(), { 3, 2 }, 2, function(s) return select(2, ref(s)) end), i:values())
      check.gradcheck(function(x) return (mtl[name](x:t(), 1)) end, { src })
    end)
  end

  it("ties pick the first occurrence, and only it gets the gradient", function()
    local x = mtl.tensor({ { 1, 3, 3 }, { 2, 2, 0 } }):requires_grad(true)
    local v, i = mtl.max(x, 2)
    assert.same({ 3, 2 }, v:values())
    assert.same({ 2, 1 }, i:values())
    mtl.sum(v):backward()
    assert.same({ 0, 1, 0, 1, 0, 0 }, x.grad:values())
    local mv, mi = mtl.min(mtl.tensor({ 4, 1, 1, 7 }))
    assert.same({ 1, 2 }, { mv:item(), mi:item() })
  end)

  it("over all elements returns the value and its 1-based flat position", function()
    local x = mtl.tensor({ { 1, 9, 3 }, { 9, 2, -4 } })
    local v, i = mtl.max(x)
    assert.same({}, v:shape())
    assert.same({ 9, 2 }, { v:item(), i:item() })
    local w, j = x:min()
    assert.same({ -4, 6 }, { w:item(), j:item() })
  end)

  it("propagates nan (the first one wins) and handles inf", function()
    local v, i = mtl.max(mtl.tensor({ 1, 0 / 0, 5, 0 / 0 }))
    assert.is_true(v:item() ~= v:item())
    assert.equal(2, i:item())
    local w, j = mtl.min(mtl.tensor({ 1, -math.huge, 5 }))
    assert.same({ -math.huge, 2 }, { w:item(), j:item() })
  end)

  it("works on int64 tensors (no gradient)", function()
    local ids = mtl.tensor({ { 5, 12, 7 }, { 3, 3, 1 } }, "int64")
    local v, i = mtl.max(ids, 2)
    assert.equal("int64", v:dtype())
    assert.same({ 12, 3 }, v:values())
    assert.same({ 2, 1 }, i:values())
    local w, j = ids:min()
    assert.same({ 1, 6 }, { w:item(), j:item() })
  end)

  it("keeps its own copy of the positions for backward", function()
    local x = mtl.tensor({ 1, 5, 2 }):requires_grad(true)
    local v, i = mtl.max(x, 1)
    mtl.no_grad(function() i:fill(1000) end) -- the caller may scribble on the indices
    v:backward()
    assert.same({ 0, 1, 0 }, x.grad:values())
  end)
end)

describe("softmax and log_softmax", function()
  local cases = {
    { { 5 }, 1 }, { { 3, 4 }, 2 }, { { 3, 4 }, 1 }, { { 2, 3, 4 }, 2 }, { { 2, 3, 4 }, 3 }, { { 2, 3, 4 }, 1 },
  }
  for _, op in ipairs({ { "softmax", lsoftmax }, { "log_softmax", llog_softmax } }) do
    local name, ref = op[1], op[2]
    for _, c in ipairs(cases) do
      local shape, d = c[1], c[2]
      it(name .. " " .. label(shape, d) .. ": values and gradient", function()
        mtl.seed(6)
        local t = mtl.randn(shape) * 2
        local expected = along_ref(t:values(), shape, d, ref)
        check.assert_close(mtl[name](t, d), expected, 1e-5, name)
        check.assert_close(t[name](t, d), expected, 1e-5, name .. " method")
        check.assert_close(mtl[name](t, d - #shape - 1), expected, 1e-5, name .. " negative dim")
        check.gradcheck(function(x) return mtl[name](x, d) end, { t })
      end)
    end

    it(name .. " defaults to the last dim and reads transposed views", function()
      mtl.seed(7)
      local src = mtl.randn(4, 3)
      local v = src:t() -- [3,4]
      check.assert_close(mtl[name](v), along_ref(v:values(), { 3, 4 }, 2, ref), 1e-5)
      check.assert_close(mtl[name](v, 1), along_ref(v:values(), { 3, 4 }, 1, ref), 1e-5)
      check.gradcheck(function(x) return mtl[name](x:t(), 2) end, { src })
      check.gradcheck(function(x) return mtl[name](x:t(), 1) end, { src })
    end)

    it(name .. " is stable for large values and gives -inf entries no mass", function()
      local big = mtl.tensor({ { 1000, 1001, 1002 }, { -1000, -1001, -1002 } })
      check.assert_close(mtl[name](big, 2), along_ref({ 0, 1, 2, 0, -1, -2 }, { 2, 3 }, 2, ref), 1e-5)
      local m = mtl.tensor({ { 0, -math.huge, 1 }, { -math.huge, 2, -math.huge } })
      local y = mtl[name](m, 2):values()
      local p = lsoftmax({ 0, 1 })
      if name == "softmax" then
        check.assert_close(y, { p[1], 0, p[2], 0, 1, 0 }, 1e-6)
      else
        check.assert_close(y, { log(p[1]), -math.huge, log(p[2]), -math.huge, 0, -math.huge }, 1e-6)
      end
      -- the gradient stays finite next to -inf entries
      local x = m:clone():requires_grad(true)
      mtl.sum(mtl[name](x, 2) * mtl.tensor({ { 1, 0, 2 }, { 0, 3, 0 } })):backward()
      for _, g in ipairs(x.grad:values()) do assert.is_true(g == g and math.abs(g) < math.huge) end
      -- a slice with no finite entry has no distribution: nan, as in PyTorch
      local all = mtl[name](mtl.tensor({ -math.huge, -math.huge }), 1):values()
      assert.is_true(all[1] ~= all[1] and all[2] ~= all[2])
    end)
  end

  it("softmax rows sum to 1 and exp(log_softmax) equals softmax", function()
    mtl.seed(8)
    local t = mtl.randn(4, 6) * 3
    check.assert_close(mtl.sum(mtl.softmax(t, 2), 2), { 1, 1, 1, 1 }, 1e-6)
    check.assert_close(mtl.exp(mtl.log_softmax(t, 2)), mtl.softmax(t, 2):values(), 1e-5)
    assert.same({ 0, 3 }, mtl.softmax(mtl.zeros(0, 3)):shape())
    assert.same({ 2, 0 }, mtl.log_softmax(mtl.zeros(2, 0)):shape())
  end)
end)

describe("reduction errors", function()
  local t = mtl.zeros(2, 3)
  local ids = mtl.zeros(2, 3, "int64")
  it("name the op, what was expected and what came", function()
    for _, name in ipairs({ "sum", "mean", "max", "min", "softmax", "log_softmax" }) do
      local fn = "mtl." .. name
      check.assert_error(fn .. ": dimension 3 out of range (expected 1..2 or -2..-1)", mtl[name], t, 3)
      check.assert_error(fn .. ": dimension -3 out of range (expected 1..2 or -2..-1)", mtl[name], t, -3)
      check.assert_error(fn .. ": dimension 0 out of range (expected 1..2 or -2..-1)", mtl[name], t, 0)
      check.assert_error(fn .. ": expected an integer dimension for argument 2, got 1.5", mtl[name], t, 1.5)
      check.assert_error(fn .. ": expected a dimension (a number) for argument 2, got string", mtl[name], t, "1")
      check.assert_error(fn .. ": expected a tensor for argument 1, got nil", mtl[name], nil)
      check.assert_error(fn .. ": dimension 1 out of range (the tensor has no dimensions)", mtl[name], mtl.tensor(1), 1)
    end
    check.assert_error("mtl.sum: expected a float32 tensor, got int64", mtl.sum, ids)
    check.assert_error("mtl.mean: expected a float32 tensor, got int64", mtl.mean, ids, 1)
    check.assert_error("mtl.softmax: expected a float32 tensor, got int64", mtl.softmax, ids)
    check.assert_error("mtl.log_softmax: expected a tensor with at least 1 dimension, got []",
      mtl.log_softmax, mtl.tensor(1))
    check.assert_error("mtl.max: cannot reduce an empty tensor [0,3]", mtl.max, mtl.zeros(0, 3))
    check.assert_error("mtl.min: cannot reduce over dimension 1 of size 0 (tensor [0,3])", mtl.min, mtl.zeros(0, 3), 1)
  end)
end)
