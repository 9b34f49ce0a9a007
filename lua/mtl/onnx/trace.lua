-- mtl.onnx.trace: runs a module's own forward on symbolic values, so that
-- the ops it calls write an ONNX graph instead of computing (docs/export.md).
--
--   local out = trace.run(g, function() return model.body(x_sym) end, model)
--
-- While the function runs, every function of the `mtl` table and the
-- tensors' arithmetic metamethods are wrapped: a call with a symbolic value
-- (graph.Sym) among its arguments goes to mtl.onnx.ops (an error names the
-- op when it has no translation); a call on real tensors only runs as usual,
-- so constants computed from parameters (a narrow of a weight) fold into
-- initializers. Forwards therefore need nothing for export as long as they
-- call ops through the `mtl` table at run time (`mtl.relu(x)`, not a
-- `local relu = mtl.relu` taken when the file loads). A block whose forward
-- cannot be traced (data-dependent control flow) defines
-- `Block:onnx(x, ...)`, called instead of forward with the same arguments
-- and free to use mtl.onnx.ops. Everything is restored afterwards, also on
-- error, and so are fields a forward stored on its modules (a gate's last
-- weights).
local mtl = require "mtl"
local graph = require "mtl.onnx.graph"
local ops = require "mtl.onnx.ops"

local trace = {}

local is_sym = graph.is_sym

-- ---- methods of symbolic values (those of mtl.Tensor that a forward reads) ----------------
local Sym = graph.Sym
local methods = {}

function methods.size(s, d)
  if d == nil then return methods.shape(s) end
  if d < 0 then d = #s.dims + 1 + d end
  local v = s.dims[d]
  if v == nil then error(string.format("mtl.onnx: size: dimension %d out of range for a %d-D value", d, #s.dims), 2) end
  return v
end
function methods.shape(s)
  local out = {}
  for i, d in ipairs(s.dims) do out[i] = d end
  return out
end
function methods.dim(s) return #s.dims end
function methods.numel(s)
  local n = 1
  for _, d in ipairs(s.dims) do n = d * n end
  return n
end
function methods.dtype(s) return s.elem == "float" and "float32" or s.elem end
function methods.contiguous(s) return s end

Sym.__index = function(s, k)
  local m = methods[k] or ops[k]
  if m then return m end
  error(string.format("mtl.onnx: the tensor method '%s' has no ONNX translation (traced values support: %s)",
    tostring(k), trace.supported()), 2)
end
Sym.__add = function(a, b) return ops.add(a, b) end
Sym.__sub = function(a, b) return ops.sub(a, b) end
Sym.__mul = function(a, b) return ops.mul(a, b) end
Sym.__div = function(a, b) return ops.div(a, b) end
Sym.__pow = function(a, b) return ops.pow(a, b) end
Sym.__unm = function(a) return ops.neg(a) end
Sym.__tostring = function(s) return string.format("onnx value %s %s %s", s.name, s.elem, graph.shape_str(s.dims)) end

-- The ops with a translation, for messages.
function trace.supported()
  local names = {}
  for k in pairs(ops) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function has_sym(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if is_sym(v) then return true end
    if type(v) == "table" then
      for _, x in ipairs(v) do if is_sym(x) then return true end end
    end
  end
  return false
end

-- A function of the mtl table that dispatches symbolic calls to ops.
local function wrap(name, f)
  return function(...)
    if not has_sym(...) then return f(...) end
    local op = ops[name]
    if not op then
      error(string.format("mtl.onnx: mtl.%s has no ONNX translation (supported: %s)", name, trace.supported()), 2)
    end
    return op(...)
  end
end

-- Replaces entries of t by wrapped ones; returns the originals.
local function swap(t, names_fns)
  local saved = {}
  for k, f in pairs(names_fns) do
    saved[k] = rawget(t, k)
    rawset(t, k, f)
  end
  return saved
end

local function restore(t, saved, keys)
  for k in pairs(keys) do rawset(t, k, saved[k]) end
end

-- Module fields a forward may set (Gate.last, AITM.last_out): saved before
-- and put back after, so the model is as it was.
local function snapshot(model)
  local saved = {}
  if not model then return saved end
  for _, m in ipairs(model:modules()) do
    local mod = m[2]
    local fields = {}
    for k, v in pairs(mod) do fields[k] = v end
    saved[mod] = fields
  end
  return saved
end

local function reset(saved)
  for mod, fields in pairs(saved) do
    for k in pairs(mod) do if fields[k] == nil then rawset(mod, k, nil) end end
    for k, v in pairs(fields) do rawset(mod, k, v) end
  end
end

-- Blocks with an onnx hook: their forward is replaced on the instance.
local function install_hooks(model)
  if not model then return end
  for _, m in ipairs(model:modules()) do
    local mod = m[2]
    local hook = getmetatable(mod).onnx
    if hook then
      local forward = getmetatable(mod).forward
      rawset(mod, "forward", function(self, ...)
        if has_sym(...) then return hook(self, ...) end
        return forward(self, ...)
      end)
    end
  end
end

-- Runs fn() with tracing on (model: the module tree whose fields are
-- restored and whose blocks' onnx hooks apply). Returns fn's results.
function trace.run(fn, model)
  local wrapped = {}
  for k, f in pairs(mtl) do
    if type(f) == "function" then wrapped[k] = wrap(k, f) end
  end
  local mt = mtl.core.Tensor_mt
  local arith = {}
  for k, op in pairs { __add = ops.add, __sub = ops.sub, __mul = ops.mul, __div = ops.div, __pow = ops.pow,
                       __unm = ops.neg } do
    local f = mt[k]
    arith[k] = function(a, b)
      if is_sym(a) or is_sym(b) then return op(a, b) end
      return f(a, b)
    end
  end
  local fields = snapshot(model)
  local saved_mtl = swap(mtl, wrapped)
  local saved_mt = swap(mt, arith)
  install_hooks(model)
  local results = { pcall(fn) }
  restore(mtl, saved_mtl, wrapped)
  restore(mt, saved_mt, arith)
  reset(fields)
  if not results[1] then error(results[2], 0) end
  return unpack(results, 2, table.maxn(results))
end

return trace
