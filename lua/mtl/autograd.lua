-- Autograd helpers on top of the core tape (docs/autograd.md).
local function pack(...) return { n = select("#", ...), ... } end

return function(mtl, core)
  -- mtl.param(t): marks t (a float tensor) as a leaf that needs a gradient.
  function mtl.param(t)
    if getmetatable(t) ~= core.Tensor_mt then
      error("mtl.param: expected a tensor, got " .. type(t), 2)
    end
    return t:requires_grad(true)
  end

  -- mtl.no_grad(fn, ...): runs fn with gradient recording off; returns its results.
  function mtl.no_grad(fn, ...)
    local was = core.set_grad_enabled(false)
    local res = pack(pcall(fn, ...))
    core.set_grad_enabled(was)
    if not res[1] then error(res[2], 0) end
    return unpack(res, 2, res.n)
  end

  function mtl.grad_enabled()
    local was = core.set_grad_enabled(true)
    core.set_grad_enabled(was)
    return was
  end
end
