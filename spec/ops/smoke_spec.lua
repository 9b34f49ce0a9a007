local mtl = require "mtl"
local check = require "helpers.check"

describe("core smoke", function()
  it("multiplies and divides with broadcasting, with finite-difference gradients", function()
    mtl.seed(1)
    local a, b = mtl.randn(3, 4), mtl.rand(4) + 1
    check.assert_close(mtl.add(a, b):get(2, 3), a:get(2, 3) + b:get(3))
    check.gradcheck(function(x, y) return mtl.mul(x, y) end, { a, b })
    check.gradcheck(function(x, y) return mtl.div(x, y) end, { a, b })
    check.gradcheck(function(x, w) return mtl.sigmoid(mtl.linear(x, w)) end, { a, mtl.randn(2, 4) })
  end)
end)

-- Misuse sweep over the elementwise, reduction and matmul ops: every call
-- with arguments drawn from a grid of wrong types, odd shapes and special
-- values either returns or raises an error naming the op ("mtl.<op>: ...").
-- It never crashes (the suite also runs under ASan/UBSan).
describe("misuse of elementwise, reduction and matmul ops", function()
  local ops = {
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "log1p", "sqrt", "abs", "clamp", "relu",
    "leaky_relu", "sigmoid", "tanh", "gelu", "where", "eq", "ne", "lt", "le", "gt", "ge",
    "sum", "mean", "max", "min", "softmax", "log_softmax", "matmul", "linear",
  }
  local function grid()
    return {
      nil, 1, -1, 0, 2.5, 0 / 0, math.huge, -math.huge, 2 ^ 40, "x", {}, true, print,
      mtl.randn(2, 3), mtl.randn(3, 2):t(), mtl.tensor({ 1, 2 }, "int64"), mtl.tensor(3), mtl.zeros(0, 3),
      mtl.zeros(1, 1, 1, 1, 1, 1, 1, 2), mtl.randn(2, 3, 3), mtl.tensor({ 0 / 0, math.huge, -math.huge }),
      n = 21,
    }
  end
  local small = function()
    return { nil, 2, -1, 0 / 0, "x", mtl.randn(3), mtl.zeros(0), mtl.tensor({ 1 }, "int64"), n = 8 }
  end

  for _, name in ipairs(ops) do
    it(name, function()
      local first, rest = grid(), small()
      local calls = 0
      for i = 1, first.n do
        for j = 1, first.n do
          for k = 1, rest.n do
            local ok, err = pcall(mtl[name], first[i], first[j], rest[k])
            calls = calls + 1
            if not ok then
              err = tostring(err)
              assert(err:find("mtl." .. name .. ": ", 1, true) == 1,
                string.format("mtl.%s(%d, %d, %d): unexpected error text: %s", name, i, j, k, err))
            end
          end
        end
      end
      assert.equal(first.n * first.n * rest.n, calls)
    end)
  end
end)

describe("composed elementwise, reduction and matmul ops", function()
  it("get finite-difference gradients through a small two-layer model with a softmax head", function()
    mtl.seed(41)
    local x, w1, b1, w2 = mtl.randn(4, 3), mtl.randn(5, 3) * 0.5, mtl.randn(5) * 0.1, mtl.randn(3, 5) * 0.5
    local mask = mtl.tensor({ { 1, 0, 1 }, { 1, 1, 0 }, { 0, 1, 1 }, { 1, 1, 1 } })
    local function model(a, p, q, r)
      local h = mtl.gelu(mtl.linear(a, p, q))                   -- [4,5]
      local z = mtl.matmul(h, r:t()) + mtl.tanh(a) * 0.5        -- [4,3], broadcast-free add
      local logp = mtl.log_softmax(mtl.where(mask, z, -1e4), 2) -- masked classes get ~0 mass
      local conf = mtl.max(mtl.softmax(z, 1), 2)                -- [4]
      local per_row = mtl.mean(mtl.where(mask, logp, 0), 2) + mtl.sqrt(conf + 1) -- [4]
      return per_row:reshape(4, 1) + mtl.sigmoid(mtl.sum(z, 1, true))            -- [4,1] + [1,3]
    end
    check.gradcheck(model, { x, w1, b1, w2 })
  end)
end)
