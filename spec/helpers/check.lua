-- Shared spec helpers: closeness of values, finite-difference gradient
-- checks, and error-message checks.
--
-- gradcheck(f, inputs, opts) compares the gradients that backward computes
-- with central finite differences. The scalar compared is L = sum(f(...) * R)
-- for a fixed random R, accumulated in double precision in Lua, so float32
-- rounding of the op stays well below the tolerance. Defaults: eps = 1e-2
-- (central differences: truncation error O(eps^2)), and an entry passes when
-- |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) with
-- rtol = 1e-3, atol = 1e-4 (opts override).
local mtl = require "mtl"

local M = {}

local function flat(x)
  if type(x) == "number" then return { x } end
  if type(x) == "table" then
    local out = {}
    local function walk(t)
      for _, v in ipairs(t) do
        if type(v) == "table" then walk(v) else out[#out + 1] = v end
      end
    end
    walk(x)
    return out
  end
  return x:values()
end
M.flat = flat

-- Asserts two tensors/tables/numbers hold the same values within tol.
function M.assert_close(actual, expected, tol, what)
  tol = tol or 1e-5
  local a, e = flat(actual), flat(expected)
  assert(#a == #e, string.format("%s: %d values, expected %d", what or "values", #a, #e))
  for i = 1, #a do
    local x, y = a[i], e[i]
    local ok = (x ~= x and y ~= y) or x == y or math.abs(x - y) <= tol * math.max(1, math.abs(y))
    if not ok then
      error(string.format("%s: element %d is %.9g, expected %.9g (tol %g)", what or "values", i, x, y, tol), 2)
    end
  end
end

-- Asserts fn(...) raises an error whose message contains `text` (plain).
function M.assert_error(text, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error containing: " .. text, 2) end
  err = tostring(err)
  if not err:find(text, 1, true) then
    error(string.format("error message\n  %s\ndoes not contain\n  %s", err, text), 2)
  end
  return err
end

-- The error fn(...) raises (as it was raised); fails when fn returns.
function M.error_of(fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error", 2) end
  return err
end

-- sum of a[i] * b[i] over two lists of numbers, in double precision.
function M.dot(a, b)
  local s = 0
  for i = 1, #a do s = s + a[i] * b[i] end
  return s
end

-- f: function of the inputs returning one tensor. inputs: list of tensors;
-- opts.wrt: list of indices of inputs to check (default: every float input).
function M.gradcheck(f, inputs, opts)
  opts = opts or {}
  local eps, rtol, atol = opts.eps or 1e-2, opts.rtol or 1e-3, opts.atol or 1e-4
  local wrt = opts.wrt
  if not wrt then
    wrt = {}
    for i, t in ipairs(inputs) do
      if type(t) ~= "number" and t:dtype() == "float32" then wrt[#wrt + 1] = i end
    end
  end
  -- leaves that need gradients (fresh copies, so callers' tensors stay clean)
  local leaves = {}
  for i, t in ipairs(inputs) do leaves[i] = t end
  for _, i in ipairs(wrt) do leaves[i] = inputs[i]:clone():requires_grad(true) end
  local out = f(unpack(leaves, 1, #inputs))
  mtl.seed(opts.seed or 1234)
  local r = mtl.randn(out:shape())
  local loss = mtl.sum(out * r)
  loss:backward()
  local rv = r:values()
  for _, i in ipairs(wrt) do
    local x = leaves[i]
    local g = x.grad
    assert(g, string.format("input %d received no gradient", i))
    local gv = g:values()
    local base = inputs[i]:clone()
    local n = base:numel()
    for k = 1, n do
      local v = base:get_flat(k)
      local function at(val)
        local pert = base:clone()
        pert:set_flat(k, val)
        local args = {}
        for j = 1, #inputs do args[j] = leaves[j] end
        args[i] = pert
        return mtl.no_grad(function() return M.dot(f(unpack(args, 1, #inputs)):values(), rv) end)
      end
      local num = (at(v + eps) - at(v - eps)) / (2 * eps)
      local ana = gv[k]
      if math.abs(ana - num) > atol + rtol * math.max(math.abs(ana), math.abs(num)) then
        error(string.format("gradient of input %d, element %d: analytic %.7g, numeric %.7g", i, k, ana, num), 2)
      end
    end
  end
  return true
end

return M
