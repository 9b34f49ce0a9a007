-- mtl.onnx.ops: each mtl op a forward may call, as standard ONNX operators
-- (opset 17, the default domain only; docs/export.md has the table). An op
-- takes what mtl's op takes: symbolic values (graph.Sym), mtl tensors
-- (parameters, stored as initializers) and numbers (float32 constants), and
-- returns a Sym with its shape. Arguments and shapes are checked here with
-- the same messages a forward would see in mtl, prefixed "mtl.onnx".
local graph = require "mtl.onnx.graph"

local is_sym, is_dim, dims_equal, shape_str = graph.is_sym, graph.is_dim, graph.dims_equal, graph.shape_str

local ops = {}

local function fail(fmt, ...) error("mtl.onnx: " .. string.format(fmt, ...), 0) end

local function is_tensor(v) return type(v) == "userdata" and type(v.shape) == "function" end

-- The graph of the first symbolic value among the arguments (tables searched too).
local function graph_of(...)
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if is_sym(v) then return v.g end
    if type(v) == "table" and not is_sym(v) then
      for _, x in ipairs(v) do if is_sym(x) then return x.g end end
    end
  end
end

-- The value name of a Sym, an mtl tensor or a number (float32), and its shape.
local function value(g, v)
  if is_sym(v) then return v.name, v.dims end
  if type(v) == "number" then return g:scalar(v), {} end
  if is_tensor(v) then
    if v:dtype() ~= "float32" then fail("a %s tensor in float arithmetic", v:dtype()) end
    return g:const(v), v:shape()
  end
  fail("expected a tensor or a number, got %s", type(v))
end

local function copy(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = v end
  return out
end

-- The shape two operands broadcast to (numpy rules, as mtl's).
local function broadcast(a, b, op)
  local n = math.max(#a, #b)
  local out = {}
  for i = 1, n do
    local x, y = a[#a - n + i] or 1, b[#b - n + i] or 1
    if x == 1 then out[i] = y
    elseif y == 1 or dims_equal(x, y) then out[i] = x
    else fail("mtl.%s: shapes cannot be broadcast together: %s and %s", op, shape_str(a), shape_str(b)) end
  end
  return out
end

-- A 1-based (or negative) mtl dimension as a 0-based ONNX axis.
local function axis(d, ndim, op)
  d = d or -1
  if d < 0 then d = ndim + 1 + d end
  if d < 1 or d > ndim then fail("mtl.%s: dimension out of range for a %d-D value", op, ndim) end
  return d - 1
end

local function ints(g, list) return g:list(list, "int64") end

-- ---- elementwise ----------------------------------------------------------------------------
local function binary(op, name)
  return function(a, b)
    local g = graph_of(a, b)
    local an, as = value(g, a)
    local bn, bs = value(g, b)
    return g:node1(op, { an, bn }, nil, broadcast(as, bs, name))
  end
end
ops.add, ops.sub, ops.mul, ops.div = binary("Add", "add"), binary("Sub", "sub"), binary("Mul", "mul"), binary("Div", "div")
ops.pow = binary("Pow", "pow")

local function unary(op)
  return function(x) return x.g:node1(op, { x }, nil, copy(x.dims)) end
end
for name, op in pairs { relu = "Relu", sigmoid = "Sigmoid", tanh = "Tanh", exp = "Exp", log = "Log", sqrt = "Sqrt",
                        abs = "Abs", neg = "Neg" } do ops[name] = unary(op) end

-- gelu(x) = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), the exact form mtl computes
function ops.gelu(x)
  local g = x.g
  local e = g:node1("Erf", { g:node1("Mul", { x, g:scalar(math.sqrt(0.5)) }, nil, x.dims) }, nil, x.dims)
  local one_plus = g:node1("Add", { e, g:scalar(1) }, nil, x.dims)
  return g:node1("Mul", { g:node1("Mul", { x, g:scalar(0.5) }, nil, x.dims), one_plus }, nil, copy(x.dims))
end

-- EasyRec's activations: Elu (alpha 1), Selu (Klambauer et al.'s constants,
-- ONNX's defaults), Softplus, Softsign; swish x sigmoid(x); gelu_tanh
-- 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
for name, op in pairs { elu = "Elu", selu = "Selu", softplus = "Softplus", softsign = "Softsign" } do
  ops[name] = unary(op)
end
function ops.swish(x)
  return x.g:node1("Mul", { x, x.g:node1("Sigmoid", { x }, nil, x.dims) }, nil, copy(x.dims))
end
function ops.gelu_tanh(x)
  local g = x.g
  local cube = g:node1("Mul", { g:node1("Mul", { x, x }, nil, x.dims), x }, nil, x.dims)
  local inner = g:node1("Add", { x, g:node1("Mul", { cube, g:scalar(0.044715) }, nil, x.dims) }, nil, x.dims)
  local t = g:node1("Tanh", { g:node1("Mul", { inner, g:scalar(math.sqrt(2 / math.pi)) }, nil, x.dims) }, nil, x.dims)
  local one_plus = g:node1("Add", { t, g:scalar(1) }, nil, x.dims)
  return g:node1("Mul", { g:node1("Mul", { x, g:scalar(0.5) }, nil, x.dims), one_plus }, nil, copy(x.dims))
end

function ops.leaky_relu(x, slope)
  return x.g:node1("LeakyRelu", { x }, { alpha = { float = slope or 0.01 } }, copy(x.dims))
end

function ops.log1p(x)
  return x.g:node1("Log", { x.g:node1("Add", { x, x.g:scalar(1) }, nil, x.dims) }, nil, copy(x.dims))
end

function ops.clamp(x, lo, hi)
  local g = x.g
  return g:node1("Clip", { x, lo and g:scalar(lo) or "", hi and g:scalar(hi) or "" }, nil, copy(x.dims))
end

-- ---- normalized, reductions ---------------------------------------------------------------------
function ops.softmax(x, d)
  return x.g:node1("Softmax", { x }, { axis = axis(d, #x.dims, "softmax") }, copy(x.dims))
end
function ops.log_softmax(x, d)
  return x.g:node1("LogSoftmax", { x }, { axis = axis(d, #x.dims, "log_softmax") }, copy(x.dims))
end

local function reduced_shape(x, a, keepdim)
  local shape = {}
  for i, s in ipairs(x.dims) do
    if i - 1 ~= a then shape[#shape + 1] = s elseif keepdim then shape[#shape + 1] = 1 end
  end
  return shape
end

-- sum(x) over everything, sum(x, d[, keepdim]) over one dim
function ops.sum(x, d, keepdim)
  local g = x.g
  if d == nil then return g:node1("ReduceSum", { x }, { keepdims = 0 }, {}) end
  local a = axis(d, #x.dims, "sum")
  return g:node1("ReduceSum", { x, ints(g, { a }) }, { keepdims = keepdim and 1 or 0 }, reduced_shape(x, a, keepdim))
end
function ops.mean(x, d, keepdim)
  local g = x.g
  if d == nil then return g:node1("ReduceMean", { x }, { keepdims = 0 }, {}) end
  local a = axis(d, #x.dims, "mean")
  return g:node1("ReduceMean", { x }, { axes = { ints = { a } }, keepdims = keepdim and 1 or 0 },
    reduced_shape(x, a, keepdim))
end

-- max(x, d[, keepdim]), min: the values (ReduceMax, ReduceMin); positions have no translation
for name, onnx_op in pairs({ max = "ReduceMax", min = "ReduceMin" }) do
  ops[name] = function(x, d, keepdim)
    local g = x.g
    if d == nil then return g:node1(onnx_op, { x }, { keepdims = 0 }, {}) end
    local a = axis(d, #x.dims, name)
    return g:node1(onnx_op, { x }, { axes = { ints = { a } }, keepdims = keepdim and 1 or 0 }, reduced_shape(x, a, keepdim))
  end
end

-- ---- matrix products --------------------------------------------------------------------------
-- linear(x, W[, bias[, activation]]): x [B, in] with W [out, in] -> [B, out] (Gemm);
-- grouped W [n, out, in] with x [B, in] -> [B, n, out] (one Gemm over W seen as
-- [n*out, in], then Reshape) or x [B, n, in] -> [B, n, out] (MatMul of
-- x transposed to [n, B, in] with W^T [n, in, out], then back).
function ops.linear(x, w, b, act)
  local g = x.g
  if not is_tensor(w) then fail("mtl.linear: the weight must be a parameter tensor when exporting, got %s", tostring(w)) end
  local ws = w:shape()
  local xs = x.dims
  local y
  if #ws == 2 then
    if #xs ~= 2 or not dims_equal(xs[2], ws[2]) then
      fail("mtl.linear: expected x [n,%d] for weight %s, got %s", ws[2], shape_str(ws), shape_str(xs))
    end
    local inputs = { x, g:const(w) }
    if b then inputs[3] = g:const(b) end
    y = g:node1("Gemm", inputs, { transB = 1 }, { xs[1], ws[1] })
  elseif #ws == 3 and #xs == 2 then
    local n, out, inp = ws[1], ws[2], ws[3]
    if not dims_equal(xs[2], inp) then fail("mtl.linear: input features differ: x %s, weight %s", shape_str(xs), shape_str(ws)) end
    local wm = g:const(w, "rows", function(t) return t:reshape(n * out, inp) end)
    local inputs = { x, wm }
    if b then inputs[3] = g:const(b, "flat", function(t) return t:reshape(n * out) end) end
    local flat = g:node1("Gemm", inputs, { transB = 1 }, { xs[1], n * out })
    y = g:node1("Reshape", { flat, ints(g, { -1, n, out }) }, nil, { xs[1], n, out })
  elseif #ws == 3 and #xs == 3 then
    local n, out, inp = ws[1], ws[2], ws[3]
    if not dims_equal(xs[2], n) or not dims_equal(xs[3], inp) then
      fail("mtl.linear: groups differ: x %s, weight %s", shape_str(xs), shape_str(ws))
    end
    local xt = g:node1("Transpose", { x }, { perm = { ints = { 1, 0, 2 } } }, { n, xs[1], inp })
    local wt = g:const(w, "T", function(t) return t:transpose(2, 3):contiguous() end)
    local prod = g:node1("MatMul", { xt, wt }, nil, { n, xs[1], out })
    y = g:node1("Transpose", { prod }, { perm = { ints = { 1, 0, 2 } } }, { xs[1], n, out })
    if b then y = g:node1("Add", { y, g:const(b) }, nil, y.dims) end
  else
    fail("mtl.linear: expected x [n,in] and weight [out,in], or x [n,in] or [n,g,in] and weight [g,out,in], got %s and %s",
      shape_str(xs), shape_str(ws))
  end
  if act == "relu" then y = g:node1("Relu", { y }, nil, y.dims)
  elseif act ~= nil and act ~= "none" then fail("mtl.linear: unknown activation '%s'", tostring(act)) end
  return y
end

function ops.matmul(a, b)
  local g = graph_of(a, b)
  local an, as = value(g, a)
  local bn, bs = value(g, b)
  local shape = copy(as)
  shape[#shape] = bs[#bs]
  return g:node1("MatMul", { an, bn }, nil, shape)
end

-- mix(experts [B, n, d] or a list of [B, n_i, d], gate [B, n]) -> [B, d]
function ops.mix(experts, gate)
  local g = gate.g
  if is_sym(experts) then experts = { experts } end
  local e = experts[1]
  if #experts > 1 then e = ops.concat(experts, 2) end
  local w = g:node1("Unsqueeze", { gate, ints(g, { 2 }) }, nil, { gate.dims[1], gate.dims[2], 1 })
  local weighted = g:node1("Mul", { e, w }, nil, copy(e.dims))
  return g:node1("ReduceSum", { weighted, ints(g, { 1 }) }, { keepdims = 0 }, { e.dims[1], e.dims[3] })
end

-- ---- shapes -------------------------------------------------------------------------------------
function ops.concat(list, d)
  local g = graph_of(list)
  local names, shape, total = {}, nil, 0
  for i, v in ipairs(list) do
    local n, s = value(g, v)
    names[i] = n
    shape = shape or copy(s)
    local size = s[axis(d or 1, #s, "concat") + 1]
    if is_dim(size) then fail("mtl.concat along the batch dimension cannot be exported") end
    total = total + size
  end
  local a = axis(d or 1, #shape, "concat")
  shape[a + 1] = total
  return g:node1("Concat", names, { axis = a }, shape)
end

function ops.stack(list, d)
  local g = graph_of(list)
  local parts = {}
  local a = axis(d or 1, #list[1].dims + 1, "stack")
  for i, v in ipairs(list) do
    local s = copy(v.dims)
    table.insert(s, a + 1, 1)
    parts[i] = g:node1("Unsqueeze", { v, ints(g, { a }) }, nil, s)
  end
  local out = ops.concat(parts, a + 1)
  out.dims[a + 1] = #list
  return out
end

-- reshape(x, d1, d2, ...) or reshape(x, {d1, ...}): at most one dimension may
-- be symbolic (a multiple of the batch size); ONNX gets -1 for it.
function ops.reshape(x, ...)
  local dims = { ... }
  if type(dims[1]) == "table" and not is_dim(dims[1]) then dims = dims[1] end
  local target, shape, symbolic = {}, {}, 0
  for i, d in ipairs(dims) do
    if is_dim(d) then
      symbolic = symbolic + 1
      target[i] = -1
    elseif d == -1 then
      symbolic = symbolic + 1
      target[i] = -1
    else
      target[i] = d
    end
    shape[i] = d
  end
  if symbolic > 1 then
    fail("mtl.reshape: at most one dimension may depend on the batch size when exporting, got %s", shape_str(dims))
  end
  return x.g:node1("Reshape", { x, ints(x.g, target) }, nil, shape)
end
ops.view = ops.reshape

function ops.transpose(x, d1, d2)
  local n = #x.dims
  local a, b = axis(d1, n, "transpose"), axis(d2, n, "transpose")
  local perm, shape = {}, {}
  for i = 0, n - 1 do perm[i + 1] = i end
  perm[a + 1], perm[b + 1] = b, a
  for i = 1, n do shape[i] = x.dims[perm[i] + 1] end
  return x.g:node1("Transpose", { x }, { perm = { ints = perm } }, shape)
end

function ops.unsqueeze(x, d)
  local a = axis(d, #x.dims + 1, "unsqueeze")
  local shape = copy(x.dims)
  table.insert(shape, a + 1, 1)
  return x.g:node1("Unsqueeze", { x, ints(x.g, { a }) }, nil, shape)
end

function ops.squeeze(x, d)
  if d == nil then fail("mtl.squeeze: give the dimension to squeeze when exporting") end
  local a = axis(d, #x.dims, "squeeze")
  if x.dims[a + 1] ~= 1 then return x end -- as mtl: a dim of size other than 1 stays
  local shape = copy(x.dims)
  table.remove(shape, a + 1)
  return x.g:node1("Squeeze", { x, ints(x.g, { a }) }, nil, shape)
end

-- narrow(x, d, start, length): 1-based start
function ops.narrow(x, d, start, length)
  local a = axis(d, #x.dims, "narrow")
  local shape = copy(x.dims)
  shape[a + 1] = length
  local g = x.g
  return g:node1("Slice", { x, ints(g, { start - 1 }), ints(g, { start - 1 + length }), ints(g, { a }) }, nil, shape)
end

-- ---- layers -------------------------------------------------------------------------------------
function ops.batch_norm(x, w, b, rm, rv, training, _, eps, act)
  if training then fail("mtl.batch_norm in training mode cannot be exported (the model is exported in eval mode)") end
  local g = x.g
  local c = x.dims[2]
  local function vec(t, fill)
    if t then return g:const(t) end
    local list = {}
    for i = 1, c do list[i] = fill end
    return g:list(list, "float")
  end
  local y = g:node1("BatchNormalization", { x, vec(w, 1), vec(b, 0), vec(rm, 0), vec(rv, 1) },
    { epsilon = { float = eps or 1e-5 } }, copy(x.dims))
  if act == "relu" then y = g:node1("Relu", { y }, nil, y.dims) end
  return y
end

function ops.layer_norm(x, w, b, eps)
  local g = x.g
  local n = x.dims[#x.dims]
  local ones, zeros = {}, {}
  for i = 1, n do ones[i], zeros[i] = 1, 0 end
  return g:node1("LayerNormalization", { x, w and g:const(w) or g:list(ones, "float"), b and g:const(b) or g:list(zeros, "float") },
    { axis = -1, epsilon = { float = eps or 1e-5 } }, copy(x.dims))
end

function ops.dropout(x, _, training)
  if training ~= false then fail("mtl.dropout in training mode cannot be exported (the model is exported in eval mode)") end
  return x
end

return ops
