-- Autograd from Lua: the tape, accumulation, freeing, no_grad, error texts,
-- deep graphs, and a composite function checked against finite differences.
local mtl = require "mtl"
local check = require "helpers.check"

local assert_close, assert_error = check.assert_close, check.assert_error

describe("autograd", function()
  it("marks leaves and records the ops that use them", function()
    local x = mtl.param(mtl.tensor { 1, 2, 3 })
    assert.is_true(x:requires_grad())
    assert.is_true(x:is_leaf())
    assert.is_nil(x:grad_fn())
    local c = mtl.tensor { 1, 1, 1 }
    assert.is_false(c:requires_grad())
    local y = x * c
    assert.is_true(y:requires_grad())
    assert.is_false(y:is_leaf())
    assert.are.equal("mul", y:grad_fn())
    assert.is_nil((c * c):grad_fn())
    -- t:requires_grad(true) is the method form of mtl.param
    local z = mtl.zeros(2):requires_grad(true)
    assert.is_true(z:requires_grad())
    assert.is_nil(x.grad)
  end)

  it("computes gradients and accumulates them across backward calls", function()
    local x = mtl.param(mtl.tensor { 1, 2, 3 })
    local loss = mtl.sum(x * x) -- d/dx = 2x
    loss:backward()
    assert_close(x.grad, { 2, 4, 6 })
    assert_close(x:get_grad(), { 2, 4, 6 })
    mtl.sum(x * 3):backward() -- adds 3
    assert_close(x.grad, { 5, 7, 9 })
    x:zero_grad()
    assert.is_nil(x.grad)
    mtl.sum(x):backward()
    assert_close(x.grad, { 1, 1, 1 })
  end)

  it("sums the gradients of every path through the graph", function()
    local x = mtl.param(mtl.tensor { { 1, 2 }, { 3, 4 } })
    local a = x * 2
    local loss = mtl.sum(a * x + a + mtl.exp(x) * 0) -- 2x^2 + 2x
    loss:backward()
    assert_close(x.grad, { { 6, 10 }, { 14, 18 } })
  end)

  it("gives no gradient to inputs that need none", function()
    local x = mtl.param(mtl.tensor { 1, 2 })
    local c = mtl.tensor { 5, 7 }
    mtl.sum(x * c + c):backward()
    assert_close(x.grad, { 5, 7 })
    assert.is_nil(c.grad)
    -- int64 tensors never get one and cannot be marked
    assert_error("requires_grad: only float32 tensors can require gradients, got int64",
      mtl.param, mtl.tensor({ 1 }, "int64"))
    -- results of ops cannot be (un)marked
    local y = x * 2
    assert_error("requires_grad: only leaf tensors can be marked (this one is the result of 'mul_scalar')",
      y.requires_grad, y, false)
  end)

  it("frees the graph: a second backward raises a clear error", function()
    local x = mtl.param(mtl.tensor { 1, 2 })
    local loss = mtl.sum(mtl.exp(x))
    loss:backward()
    assert_error("backward: trying to backward through the graph a second time " ..
      "(its buffers were freed by the first backward)", loss.backward, loss)
    -- the leaf's gradient is untouched by the failed call
    assert_close(x.grad, { math.exp(1), math.exp(2) }, 1e-5)
  end)

  it("refuses a backward through part of a freed graph", function()
    local x = mtl.param(mtl.tensor { 1, 2 })
    local h = mtl.exp(x)
    local loss1 = mtl.sum(h * 2)
    loss1:backward()
    -- h's node was spent by loss1's backward; a new graph built on h reaches it
    local loss2 = mtl.sum(h * 3)
    assert_error("backward: trying to backward through part of a graph a second time " ..
      "(its buffers were freed by an earlier backward)", loss2.backward, loss2)
    -- a new graph from the leaf itself works
    x:zero_grad()
    mtl.sum(mtl.exp(x) * 3):backward()
    assert_close(x.grad, { 3 * math.exp(1), 3 * math.exp(2) }, 1e-5)
  end)

  it("mtl.no_grad records nothing and restores the mode, also after an error", function()
    local x = mtl.param(mtl.tensor { 1, 2 })
    assert.is_true(mtl.grad_enabled())
    local y, extra = mtl.no_grad(function(a, b)
      assert.is_false(mtl.grad_enabled())
      return x * a, b
    end, 3, "passed")
    assert.are.equal("passed", extra)
    assert.is_false(y:requires_grad())
    assert.is_nil(y:grad_fn())
    assert_close(y, { 3, 6 })
    assert_error("backward: the tensor does not require a gradient (no input of the computation " ..
      "was marked with requires_grad)", y.backward, y)
    local ok, err = pcall(mtl.no_grad, function() error("inside", 0) end)
    assert.is_false(ok)
    assert.are.equal("inside", err)
    assert.is_true(mtl.grad_enabled())
    -- nested no_grad keeps the outer mode on return
    mtl.no_grad(function()
      mtl.no_grad(function() end)
      assert.is_false(mtl.grad_enabled())
    end)
    assert.is_true(mtl.grad_enabled())
    -- parameters can be updated in place under no_grad (the SGD step)
    mtl.sum(x * x):backward()
    mtl.no_grad(function() x:copy(x - x.grad * 0.5) end)
    assert_close(x, { 0, 0 })
    assert.is_true(x:is_leaf())
  end)

  it("detach shares data and drops the history", function()
    local x = mtl.param(mtl.tensor { 1, 2 })
    local y = x * 2
    local d = y:detach()
    assert.is_false(d:requires_grad())
    assert.is_nil(d:grad_fn())
    assert.are.equal(y:data_ptr(), d:data_ptr())
  end)

  it("needs a gradient argument for a non-scalar backward", function()
    local x = mtl.param(mtl.tensor { { 1, 2, 3 }, { 4, 5, 6 } })
    local y = x * x
    assert_error("backward: a gradient argument is needed for a non-scalar tensor [2,3]", y.backward, y)
    assert_error("backward: gradient must be float32 shaped like the tensor [2,3], got float32 [4]",
      y.backward, y, mtl.zeros(4))
    assert_error("backward: gradient must be float32 shaped like the tensor [2,3], got int64 [2,3]",
      y.backward, y, mtl.zeros(2, 3, "int64"))
    assert_error("backward: expected a tensor for argument 2, got string", y.backward, y, "x")
    y:backward(mtl.tensor { { 1, 0, 1 }, { 0, 1, 0 } })
    assert_close(x.grad, { { 2, 0, 6 }, { 0, 10, 0 } })
    -- a one-element tensor of any shape needs none
    local z = mtl.param(mtl.tensor { { 3 } })
    local s = z * z
    s:backward()
    assert_close(z.grad, { { 6 } })
    -- backward from a leaf seeds its own gradient
    local w = mtl.param(mtl.tensor { 1, 2 })
    w:backward(mtl.tensor { 4, 5 })
    assert_close(w.grad, { 4, 5 })
    -- and checks its gradient argument like any other backward
    assert_error("backward: a gradient argument is needed for a non-scalar tensor [2]", w.backward, w)
    assert_error("backward: gradient must be float32 shaped like the tensor [2], got float32 [3]",
      w.backward, w, mtl.zeros(3))
    assert_error("backward: gradient must be float32 shaped like the tensor [2], got int64 [2]",
      w.backward, w, mtl.tensor({ 1, 2 }, "int64"))
    assert_close(w.grad, { 4, 5 })
  end)

  it("handles chains of 100,000 ops without deep C recursion", function()
    local x = mtl.param(mtl.ones(3))
    local y = x
    for _ = 1, 100000 do y = y + 0.001 end
    assert_close(y, { 101, 101, 101 }, 1e-3)
    mtl.sum(y):backward()
    assert_close(x.grad, { 1, 1, 1 })
    -- a long chain that is never backwarded is released by the GC alone
    local before = mtl.memory().in_use
    local z = x
    for _ = 1, 100000 do z = z * 1 end
    z = nil -- luacheck: ignore
    y = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_true(mtl.memory().in_use <= before)
  end)

  it("frees intermediate tensors once they are no longer reachable", function()
    collectgarbage()
    collectgarbage()
    local base = mtl.memory().in_use
    do
      local w = mtl.param(mtl.randn(256, 256))
      for _ = 1, 20 do
        local h = mtl.relu(mtl.matmul(mtl.randn(64, 256), w))
        mtl.sum(h * h):backward()
      end
    end
    collectgarbage()
    collectgarbage()
    assert.are.equal(base, mtl.memory().in_use)
  end)

  -- The issue's end-to-end check: a function composing matmul, broadcasting
  -- adds, softmax, gather, concat and BCE; every input's gradient matches
  -- central finite differences (eps 1e-2) to 1e-3 relative (1e-4 absolute
  -- for entries near zero).
  it("gets finite-difference gradients through a composite function", function()
    mtl.seed(11)
    local x = mtl.randn(4, 3)
    local w = mtl.randn(3, 5) * 0.5
    local b = mtl.randn(5) * 0.1
    local side = mtl.randn(4, 2)
    local idx = mtl.tensor({ { 1, 3 }, { 5, 2 }, { 4, 4 }, { 2, 1 } }, "int64")
    local target = mtl.tensor { { 1, 0, 1, 0 }, { 0, 1, 1, 0 }, { 1, 1, 0, 0 }, { 0, 0, 0, 1 } }
    local function f(x_, w_, b_, side_)
      local h = mtl.matmul(x_, w_) + b_                         -- [4,5], b broadcast over rows
      local p = mtl.softmax(h, 2)                               -- [4,5]
      local g = mtl.gather(p, 2, idx)                           -- [4,2]
      local c = mtl.concat({ g, mtl.sigmoid(side_) * 0.5 }, 2)  -- [4,4]
      local q = c * 0.9 + 0.05                                  -- keep away from 0 and 1
      return mtl.binary_cross_entropy(q, target)                -- scalar
    end
    local loss = f(x, w, b, side)
    assert.are.equal(0, loss:dim())
    check.gradcheck(f, { x, w, b, side }, { rtol = 1e-3, atol = 1e-4 })
  end)
end)
