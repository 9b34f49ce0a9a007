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
