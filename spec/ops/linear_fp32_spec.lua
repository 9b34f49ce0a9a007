-- Packed FP32 inference in mtl.linear (runtime/src/ops/linear_fp32.c): every
-- call that records no gradient computes each output as the bias plus
-- x_q * w_q for q = 1..in in order, one fused multiply-add each, then ReLU.
--  * Values against an FP64 loop on odd shapes (every tail of 8 / 6 rows and
--    16 columns, in = 1, out = 1, grouped weights, strided x): a sequential
--    FP32 sum of n terms is within (n + 1) * 2^-24 * sum |terms| of the exact
--    one (Higham's gamma_n), the tolerance here.
--  * Every variant (AVX-512, AVX2, scalar fmaf; forced with MTL_FP32_KERNEL in
--    a child process each) gives the same bits, packed beforehand or per call,
--    on one thread or two: the checksums of all outputs agree.
--  * A call that records a gradient (training) never runs it: its bits are
--    BLAS's (MTL_FP32_KERNEL=blas in a child), and it drops the packing.
local mtl = require "mtl"
local sh = require "helpers.shell"

-- The child: each case's output checked against FP64 and packed = unpacked =
-- two threads; prints the kernel, then one checksum per case.
local CHILD = [[
local mtl = require "mtl"
local function check(name, x, w, b, act, x_at)
  local y = mtl.no_grad(mtl.linear, x, w, b, act)
  mtl.fp32_pack(w)
  local packed = mtl.no_grad(mtl.linear, x, w, b, act)
  mtl.set_num_threads(2)
  local two = mtl.no_grad(mtl.linear, x, w, b, act)
  mtl.set_num_threads(1)
  mtl.fp32_unpack(w)
  assert(y:checksum() == packed:checksum(), name .. ": packed and unpacked differ")
  assert(y:checksum() == two:checksum(), name .. ": two threads differ from one")
  local ws, g = w:shape(), w:dim() == 3 and w:size(1) or 1
  local out, nin, m = ws[#ws - 1], ws[#ws], x:size(1)
  local yv, wv, bv = y:values(), w:values(), b and b:values()
  local n = 0
  for i = 1, m do
    for k = 1, g do
      for o = 1, out do
        local acc = bv and bv[(k - 1) * out + o] or 0
        local mag = math.abs(acc)
        for c = 1, nin do
          local p = x_at(i, k, c) * wv[((k - 1) * out + o - 1) * nin + c]
          acc, mag = acc + p, mag + math.abs(p)
        end
        if act == "relu" and acc < 0 then acc = 0 end
        n = n + 1
        local tol = (nin + 1) * 2 ^ -24 * mag + 1e-30
        if math.abs(yv[n] - acc) > tol then
          error(string.format("%s: output %d: %.9g, FP64 %.9g (tolerance %.3g)", name, n, yv[n], acc, tol))
        end
      end
    end
  end
  print(name .. " " .. y:checksum())
end
print(mtl.fp32_status())
mtl.seed(21)
-- {m, in, out}: row tails of 8 (AVX-512) and 6 (AVX2), column tails of 16 and 32
local shapes = { { 1, 1, 1 }, { 7, 3, 5 }, { 9, 33, 17 }, { 13, 64, 40 }, { 131, 37, 33 }, { 8, 16, 16 },
                 { 3, 2, 49 }, { 65, 100, 1 }, { 6, 5, 32 }, { 200, 7, 4 } }
for n, s in ipairs(shapes) do
  local m, nin, out = s[1], s[2], s[3]
  local x, w = mtl.randn(m, nin), mtl.randn(out, nin)
  local b = n % 2 == 0 and mtl.randn(out) or nil
  local act = n % 3 == 0 and "none" or "relu"
  local xv = x:values()
  check(table.concat(s, "x"), x, w, b, act, function(i, _, c) return xv[(i - 1) * nin + c] end)
end
-- grouped weights: a shared x [m,in] and a per-group x [m,g,in]
local m, g, out, nin = 19, 3, 21, 9
local w, b = mtl.randn(g, out, nin), mtl.randn(g, out)
local x = mtl.randn(m, nin)
local xv = x:values()
check("grouped-shared", x, w, b, "relu", function(i, _, c) return xv[(i - 1) * nin + c] end)
local xg = mtl.randn(m, g, nin)
local xgv = xg:values()
check("grouped", xg, w, nil, nil, function(i, k, c) return xgv[((i - 1) * g + k - 1) * nin + c] end)
-- x through a row stride (narrowed) and a column stride (transposed)
local wide = mtl.randn(21, 40)
local wv = wide:values()
check("narrowed", wide:narrow(2, 4, 31), mtl.randn(18, 31), mtl.randn(18), "relu",
  function(i, _, c) return wv[(i - 1) * 40 + 3 + c] end)
local tall = mtl.randn(10, 150)
local tv = tall:values()
check("transposed", tall:t(), mtl.randn(20, 10), nil, "relu", function(i, _, c) return tv[(c - 1) * 150 + i] end)
]]

-- Runs the child with MTL_FP32_KERNEL=kernel: its first line and the checksums by case.
local function run_child(kernel)
  local script = os.tmpname()
  sh.write(script, CHILD)
  local out = sh.run("MTL_FP32_KERNEL=" .. kernel .. " " .. sh.launcher .. " " .. script .. " 2>&1")
  os.remove(script)
  local lines = {}
  for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
  return table.remove(lines, 1), lines, out
end

-- The variant MTL_FP32_KERNEL=want gives on this CPU (never beyond its best).
local function expected(want)
  local best = mtl.fp32_status()
  local order = { scalar = 1, avx2 = 2, avx512 = 3 }
  return order[want] <= order[best] and want or best
end

describe("packed FP32 inference in mtl.linear", function()
  it("runs the best variant this CPU has", function()
    local cpu = sh.run("grep -m1 '^flags' /proc/cpuinfo")
    local want = cpu:find(" avx512f") and "avx512" or (cpu:find(" avx2") and cpu:find(" fma")) and "avx2" or "scalar"
    assert.are.equal(want, mtl.fp32_status())
  end)

  it("matches FP64 on odd shapes, and every variant gives the same bits", function()
    local sums
    for _, kernel in ipairs { "avx512", "avx2", "scalar" } do
      local status, lines, out = run_child(kernel)
      assert.are.equal(expected(kernel), status, out)
      assert.are.equal(14, #lines, out)
      if sums then assert.are.same(sums, lines, kernel) end
      sums = lines
    end
  end)

  it("is not what a call that records a gradient runs: that one is BLAS's, and drops the packing", function()
    local child = [[
local mtl = require "mtl"
mtl.seed(22)
local x, w, b = mtl.randn(64, 300), mtl.randn(40, 300), mtl.randn(40)
print(mtl.fp32_status() .. " " .. mtl.no_grad(mtl.linear, x, w, b, "relu"):checksum())
]]
    local script = os.tmpname()
    sh.write(script, child)
    local blas = sh.run("MTL_FP32_KERNEL=blas " .. sh.launcher .. " " .. script .. " 2>&1")
    os.remove(script)
    mtl.seed(22)
    local x, w, b = mtl.randn(64, 300), mtl.randn(40, 300), mtl.randn(40)
    local packed = mtl.no_grad(mtl.linear, x, w, b, "relu"):checksum()
    mtl.fp32_pack(w)
    w:requires_grad(true)
    local y = mtl.linear(x, w, b, "relu") -- training's forward
    assert.are.equal(0, mtl.fp32_packed(w))
    assert.are.equal("blas " .. y:checksum() .. "\n", blas)
    assert.are_not.equal(packed, y:checksum()) -- 300 terms: blocked and sequential sums round apart
    y:sum():backward()                           -- and it trains
    assert.are.same({ 40, 300 }, w.grad:shape())
  end)

  it("packs 2-D and 3-D weights; a write or a shape it was not packed from sets it aside", function()
    local w = mtl.randn(20, 10)
    assert.are.equal(0, mtl.fp32_packed(w))
    assert.are.equal(2 * 10 * 16 * 4, mtl.fp32_pack(w)) -- 2 panels of 16 columns x 10 inputs
    local x = mtl.randn(3, 10)
    w:copy(mtl.randn(20, 10))
    assert.are.equal(0, mtl.fp32_packed(w))
    mtl.fp32_pack(w)
    local y = mtl.no_grad(mtl.linear, x, w):checksum()
    local w2 = w:reshape(2, 10, 10) -- the same storage viewed otherwise: packed per call
    local y2 = mtl.no_grad(mtl.linear, x, w2)
    assert.are.same({ 3, 2, 10 }, y2:shape())
    assert.are.equal(y, y2:reshape(3, 20):checksum())
    local ok, err = pcall(mtl.fp32_pack, mtl.randn(5))
    assert.is_false(ok)
    assert.matches("mtl.fp32_pack: expected a float32 weight [out,in] or [g,out,in], got float32 [5]", err, 1, true)
  end)
end)
