-- bf16 inference in mtl.linear (runtime/src/ops/linear_bf16.c): weights packed
-- by mtl.bf16_pack are multiplied in bf16 with FP32 accumulation when no
-- gradient is recorded. Checked against FP64 references on odd shapes:
--  * exactly, up to FP32 accumulation (relative 1e-5 of sum |x_k w_k|), against
--    the products of the operands rounded to bf16 (round to nearest even):
--    proves the packing, the tiles and the fused bias + activation;
--  * within bf16's rounding against the unrounded operands: each operand is
--    off by at most 2^-9 relative, a product by 2^-8 (+ FP32 accumulation), so
--    |y - y64| <= 2^-7 * sum_k |x_k w_k| + 1e-6 is the stated tolerance.
-- Without AVX512-BF16 (or with MTL_NO_BF16=1) the packed weights are ignored
-- and the results are FP32's, bit for bit (the same specs, the other branch;
-- the forced fallback runs in a child process).
local mtl = require "mtl"
local ffi = require "ffi"
local check = require "helpers.check"
local sh = require "helpers.shell"

local available = mtl.bf16_status()

local cell = ffi.new("union { float f; uint32_t u; }")
local function bf16(v) -- v: a float32 value; its bf16 rounding (round to nearest even)
  cell.f = v
  local b = tonumber(cell.u)
  b = b + 0x7fff + math.floor(b / 65536) % 2
  cell.u = (b - b % 65536) % 2 ^ 32
  return tonumber(cell.f)
end
local function id(v) return v end

-- y [m, g*out] of x (values by x_at(i, k, c)) and w [g,out,in] in FP64, with
-- the operands passed through round; also sum |x w| per output.
local function reference(m, g, out, nin, x_at, wv, bv, relu, round)
  local y, mag = {}, {}
  for i = 1, m do
    for k = 1, g do
      for o = 1, out do
        local acc, s = bv and bv[(k - 1) * out + o] or 0, 0
        for c = 1, nin do
          local p = round(x_at(i, k, c)) * round(wv[((k - 1) * out + o - 1) * nin + c])
          acc, s = acc + p, s + math.abs(p)
        end
        if relu and acc < 0 then acc = 0 end
        y[#y + 1], mag[#mag + 1] = acc, s
      end
    end
  end
  return y, mag
end

-- Asserts y against both references (bf16: available) or FP32 (not).
local function check_linear(x, w, b, act, x_at, m, g, out, nin)
  local wv, bv = w:values(), b and b:values()
  local fp32 = mtl.linear(x, w, b, act):values()
  mtl.bf16_pack(w)
  local y = mtl.no_grad(function() return mtl.linear(x, w, b, act) end):values()
  mtl.bf16_unpack(w)
  assert.are.equal(#fp32, #y)
  if not available then
    assert.are.same(fp32, y)
    return
  end
  local exact, mag = reference(m, g, out, nin, x_at, wv, bv, act == "relu", bf16)
  local plain = reference(m, g, out, nin, x_at, wv, bv, act == "relu", id)
  local differs = false
  for i = 1, #y do
    local tol_exact, tol = 1e-5 * mag[i] + 1e-6, 2 ^ -7 * mag[i] + 1e-6
    if math.abs(y[i] - exact[i]) > tol_exact then
      error(string.format("output %d: %.9g, bf16-rounded FP64 reference %.9g (tolerance %.3g)", i, y[i], exact[i], tol_exact))
    end
    if math.abs(y[i] - plain[i]) > tol then
      error(string.format("output %d: %.9g, FP64 reference %.9g (tolerance %.3g)", i, y[i], plain[i], tol))
    end
    differs = differs or y[i] ~= fp32[i]
  end
  assert.is_true(differs or #y == 0 or nin == 0, "the bf16 kernel gave FP32's results bit for bit")
end

describe("bf16 inference in mtl.linear", function()
  it("reports whether this CPU runs it", function()
    local ok, text = mtl.bf16_status()
    assert.are.equal("boolean", type(ok))
    if ok then
      assert.are.equal("bf16 (AVX512-BF16 products, FP32 accumulation)", text)
    else
      assert.is_truthy(text:find("^fp32 %("))
    end
  end)

  it("matches FP64 references on odd shapes, with and without bias and relu", function()
    mtl.seed(11)
    local shapes = { { 1, 1, 1 }, { 7, 3, 5 }, { 9, 33, 17 }, { 70, 64, 40 }, { 131, 37, 33 }, { 8, 16, 16 },
                     { 3, 2, 49 }, { 65, 100, 1 } }
    for n, s in ipairs(shapes) do
      local m, nin, out = s[1], s[2], s[3]
      local x, w = mtl.randn(m, nin), mtl.randn(out, nin)
      local b = n % 2 == 0 and mtl.randn(out) or nil
      local act = n % 3 == 0 and "none" or "relu"
      local xv = x:values()
      check_linear(x, w, b, act, function(i, _, c) return xv[(i - 1) * nin + c] end, m, 1, out, nin)
    end
  end)

  it("computes grouped weights: a shared x [m,in] and per-group x [m,g,in]", function()
    mtl.seed(12)
    local m, g, out, nin = 19, 3, 7, 9
    local w, b = mtl.randn(g, out, nin), mtl.randn(g, out)
    local x = mtl.randn(m, nin)
    local xv = x:values()
    check_linear(x, w, b, "relu", function(i, _, c) return xv[(i - 1) * nin + c] end, m, g, out, nin)
    local xg = mtl.randn(m, g, nin)
    local xgv = xg:values()
    check_linear(xg, w, b, nil, function(i, k, c) return xgv[((i - 1) * g + k - 1) * nin + c] end, m, g, out, nin)
  end)

  it("reads x through a row stride (a narrowed view)", function()
    mtl.seed(13)
    local wide = mtl.randn(21, 40)
    local x = wide:narrow(2, 4, 31) -- columns 4..34: row stride 40
    local w = mtl.randn(18, 31)
    local wv = wide:values()
    check_linear(x, w, mtl.randn(18), "relu", function(i, _, c) return wv[(i - 1) * 40 + 3 + c] end, 21, 1, 18, 31)
  end)

  it("gives the same rows on two threads as on one", function()
    mtl.seed(14)
    local x, w, b = mtl.randn(300, 45), mtl.randn(50, 45), mtl.randn(50)
    mtl.bf16_pack(w)
    local one = mtl.no_grad(function() return mtl.linear(x, w, b, "relu") end):values()
    mtl.set_num_threads(2)
    local two = mtl.no_grad(function() return mtl.linear(x, w, b, "relu") end):values()
    mtl.set_num_threads(1)
    assert.are.same(one, two)
  end)

  it("runs in FP32 when it records a gradient, x's columns are strided, or the weight is viewed otherwise", function()
    mtl.seed(15)
    local x, w = mtl.randn(6, 10), mtl.randn(4, 10)
    local fp32 = mtl.linear(x, w):values()
    mtl.bf16_pack(w)
    w:requires_grad(true)
    assert.are.same(fp32, mtl.linear(x, w):values()) -- recording: FP32 on the live weights,
    assert.are.equal(0, mtl.bf16_packed(w))            -- and the packing, about to go stale, dropped
    mtl.bf16_pack(w)
    local xt = mtl.randn(10, 6):t()                   -- column stride 6
    assert.are.same(mtl.linear(xt, w:detach()):values(),
      mtl.no_grad(function() mtl.bf16_unpack(w); return mtl.linear(xt, w) end):values())
    mtl.bf16_pack(w)
    local w2 = w:reshape(2, 2, 10)                      -- the same storage as [2,2,10]: not the packed shape
    local y = mtl.no_grad(function() return mtl.linear(x, w2) end)
    assert.are.same(fp32, y:values())
  end)

  it("packs 2-D and 3-D weights only, and a write to the weight drops its packing", function()
    check.assert_error("mtl.bf16_pack: expected a float32 weight [out,in] or [g,out,in], got float32 [5]",
      mtl.bf16_pack, mtl.randn(5))
    local w = mtl.randn(20, 10)
    assert.are.equal(0, mtl.bf16_packed(w))
    -- 2 panels of 16 columns x 5 pairs x 32 bf16 of 2 bytes
    assert.are.equal(2 * 5 * 32 * 2, mtl.bf16_pack(w))
    local x = mtl.randn(3, 10)
    w:copy(mtl.randn(20, 10)) -- the packing would be stale: dropped, inference is FP32's on the new values
    assert.are.equal(0, mtl.bf16_packed(w))
    mtl.bf16_pack(w)
    w:fill(0.5)
    assert.are.equal(0, mtl.bf16_packed(w))
    w:copy(mtl.randn(20, 10))
    mtl.bf16_pack(w)
    local fresh = mtl.no_grad(function() return mtl.linear(x, w) end):values()
    local want = mtl.linear(x, w):values()
    for i = 1, #fresh do assert.is_true(math.abs(fresh[i] - want[i]) < 0.05 * (1 + math.abs(want[i]))) end
    mtl.bf16_unpack(w)
    assert.are.equal(0, mtl.bf16_packed(w))
  end)

  it("packs a module's weights with set_precision and drops them with fp32", function()
    local nn = require "mtl.nn"
    local mlp = nn.MLP { input = 12, hidden = { 8, 4, 1 } }
    local effective, text, bytes = mlp:set_precision("bf16")
    if available then
      assert.are.equal("bf16", effective)
      assert.is_true(bytes > 0)
    else
      assert.are.equal("fp32", effective)
      assert.are.equal(0, bytes)
    end
    if available then assert.are.equal(select(2, mtl.bf16_status()), text) end
    for _, np in ipairs(mlp:named_parameters()) do
      local packed = mtl.bf16_packed(np[2]) > 0
      -- fc3 [1, 4], a single output, stays FP32 (packed for the FP32 kernel)
      local bf16 = available and np[1]:match("weight") ~= nil and np[1] ~= "fc3.weight"
      assert.are.equal(bf16, packed, np[1])
      assert.are.equal(np[1]:match("weight") ~= nil and not bf16, mtl.fp32_packed(np[2]) > 0, np[1])
    end
    -- fp32: the FP32 kernel's panels of 16 columns, 4 bytes a float: fc1 [8,12], fc2 [4,8], fc3 [1,4]
    local fp32_bytes = 16 * 4 * (12 + 8 + 4)
    assert.are.same({ "fp32", "fp32 (" .. mtl.fp32_status() .. ")", fp32_bytes }, { mlp:set_precision("fp32") })
    for _, np in ipairs(mlp:named_parameters()) do assert.are.equal(0, mtl.bf16_packed(np[2])) end
    check.assert_error("set_precision: expected 'bf16' or 'fp32', got fp16", mlp.set_precision, mlp, "fp16")
  end)

  it("falls back to FP32 with MTL_NO_BF16=1", function()
    local script = os.tmpname()
    sh.write(script, [[
local mtl = require "mtl"
local ok, text = mtl.bf16_status()
mtl.seed(5)
local x, w, b = mtl.randn(33, 17), mtl.randn(9, 17), mtl.randn(9)
local fp32 = mtl.linear(x, w, b, "relu"):values()
local nn = require "mtl.nn"
local lin = nn.Linear(17, 9)
local eff = lin:set_precision("bf16")
mtl.bf16_pack(w)
local y = mtl.no_grad(function() return mtl.linear(x, w, b, "relu") end):values()
local same = true
for i = 1, #y do same = same and y[i] == fp32[i] end
print(tostring(ok) .. "|" .. text .. "|" .. eff .. "|" .. tostring(same))
]])
    local out = sh.run("MTL_NO_BF16=1 " .. sh.launcher .. " " .. script .. " 2>&1")
    os.remove(script)
    assert.are.equal("false|fp32 (bf16 turned off by MTL_NO_BF16)|fp32|true\n", out)
  end)
end)
