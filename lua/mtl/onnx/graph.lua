-- mtl.onnx.graph: an ONNX graph under construction, and the symbolic values
-- that flow through a traced forward (docs/export.md).
--
--   local g = graph.new("mmoe")
--   local x = g:input("price", "float", {graph.batch})      -- a Sym: [batch]
--   local y = g:node1("Relu", {x}, nil, x.shape)            -- one node, one output Sym
--   g:output(y, "p_click")
--   local bytes = g:encode{opset = 17, ir_version = 8, producer = "mtl"}
--
-- A Sym is a value of the graph: its name, element type ("float", "int64",
-- "bool") and shape. Shapes are lists of numbers and symbolic dims: graph.batch is
-- the batch size, `batch * k` its multiples (what x:size(1) * 2 gives in a
-- forward), so reshapes can keep the batch dimension free. Constants
-- (parameters, embedding tables, shapes, scalars) become initializers, each
-- stored once however often it is used.
local ffi = require "ffi"
local proto = require "mtl.onnx.proto"

local graph = {}

local DTYPE = { float = proto.FLOAT, int64 = proto.INT64, bool = proto.BOOL, double = proto.DOUBLE }
graph.DTYPE = DTYPE
local CTYPE = { float = "float", int64 = "int64_t", double = "double" }
local MTL_DTYPE = { float32 = "float", int64 = "int64" }

-- ---- symbolic dims ----------------------------------------------------------------------
local Dim = {}
Dim.__index = Dim
local function dim(k) return setmetatable({ k = k }, Dim) end
graph.batch = dim(1)
local function is_dim(v) return getmetatable(v) == Dim end
graph.is_dim = is_dim
Dim.__mul = function(a, b)
  if is_dim(a) and type(b) == "number" then return dim(a.k * b) end
  if is_dim(b) and type(a) == "number" then return dim(b.k * a) end
  error("mtl.onnx: a batch-sized dimension can only be multiplied by a number", 2)
end
Dim.__eq = function(a, b) return is_dim(a) and is_dim(b) and a.k == b.k end
Dim.__tostring = function(d) return d.k == 1 and "batch" or ("batch*" .. d.k) end
local function bad_use() error("mtl.onnx: the batch size is symbolic when exporting; a forward may only multiply it "
  .. "by numbers and pass it to reshape", 2) end
Dim.__add, Dim.__sub, Dim.__div, Dim.__lt, Dim.__le, Dim.__unm = bad_use, bad_use, bad_use, bad_use, bad_use, bad_use

function graph.dims_equal(a, b)
  if is_dim(a) or is_dim(b) then return is_dim(a) and is_dim(b) and a.k == b.k end
  return a == b
end

function graph.shape_str(shape)
  local parts = {}
  for i, d in ipairs(shape) do parts[i] = tostring(d) end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- ---- symbolic values ----------------------------------------------------------------------
local Sym = {}
graph.Sym = Sym
local function is_sym(v) return getmetatable(v) == Sym end
graph.is_sym = is_sym

-- ---- the graph --------------------------------------------------------------------------
local Graph = {}
Graph.__index = Graph

function graph.new(name)
  return setmetatable({
    name = name, nodes = {}, initializers = {}, inputs = {}, outputs = {},
    used = {},                              -- value names taken
    consts = setmetatable({}, { __mode = "k" }), -- tensor -> {variant = name}
    scalars = {},                           -- "dtype:value" -> name
    counter = 0,
    tensor_names = setmetatable({}, { __mode = "k" }), -- tensor -> readable name (parameters)
  }, Graph)
end

-- A fresh value name from a hint ("mmoe.gate_click.fc.weight", "Relu").
function Graph:fresh(hint)
  hint = (hint or "v"):gsub("[^%w_.:/-]", "_")
  local name = hint
  while self.used[name] do
    self.counter = self.counter + 1
    name = hint .. "_" .. self.counter
  end
  self.used[name] = true
  return name
end

-- (fields: name, elem = "float" | "int64" | "bool", dims = the shape, g = the graph;
-- not "shape" and "dtype", which are tensor methods a forward may call)
function Graph:sym(name, dtype, shape)
  return setmetatable({ name = name, elem = dtype, dims = shape, g = self }, Sym)
end

-- A graph input; dims: numbers, graph.batch, or symbolic names (strings).
function Graph:input(name, dtype, dims, doc)
  if self.used[name] then error(string.format("mtl.onnx: two inputs are named '%s'", name), 2) end
  self.used[name] = true
  local vi_dims = {}
  for i, d in ipairs(dims) do vi_dims[i] = is_dim(d) and "batch" or d end
  self.inputs[#self.inputs + 1] = { name = name, dtype = DTYPE[dtype], dims = vi_dims, doc = doc }
  local shape = {}
  for i, d in ipairs(dims) do shape[i] = type(d) == "string" and dim(0) or d end -- a free dim (bag length) as batch*0
  return self:sym(name, dtype, shape)
end

-- Adds an initializer from raw bytes; returns its name.
function Graph:initializer(hint, dtype, dims, raw)
  local name = self:fresh(hint)
  self.initializers[#self.initializers + 1] = { name = name, dtype = DTYPE[dtype], dims = dims, raw = raw }
  return name
end

-- The bytes of a Lua list as a C array of ctype.
local function list_bytes(list, dtype)
  local n = #list
  local buf = ffi.new(CTYPE[dtype] .. "[?]", math.max(n, 1))
  for i = 1, n do buf[i - 1] = list[i] end
  return ffi.string(buf, n * ffi.sizeof(CTYPE[dtype]))
end
graph.list_bytes = list_bytes

-- The row-major bytes of an mtl tensor (float32 or int64).
function graph.tensor_bytes(t)
  local dtype = MTL_DTYPE[t:dtype()] or error("mtl.onnx: cannot store a " .. t:dtype() .. " tensor", 2)
  local c = t:contiguous()
  return ffi.string(ffi.cast("const char *", c:data_ptr()), c:numel() * ffi.sizeof(CTYPE[dtype])), dtype
end

-- A constant from an mtl tensor, stored once per (tensor, variant); variant
-- names a transformation applied by make(t) -> tensor ("T" for a transpose).
function Graph:const(t, variant, make)
  variant = variant or ""
  local per = self.consts[t]
  if not per then
    per = {}
    self.consts[t] = per
  end
  if per[variant] then return per[variant] end
  local v = make and make(t) or t
  local raw, dtype = graph.tensor_bytes(v)
  local hint = (self.tensor_names[t] or "const") .. (variant ~= "" and ("." .. variant) or "")
  local name = self:initializer(hint, dtype, v:shape(), raw)
  per[variant] = name
  return name
end

-- A constant from a Lua list (1-D, or with dims), stored once per content.
function Graph:list(values, dtype, dims, hint)
  dims = dims or { #values }
  local parts = {}
  for i, v in ipairs(values) do parts[i] = string.format("%.17g", v) end
  local key = dtype .. ":" .. table.concat(dims, "x") .. ":" .. table.concat(parts, ",")
  if not self.scalars[key] then
    self.scalars[key] = self:initializer(hint or (dtype == "int64" and "ints" or "floats"), dtype, dims,
      list_bytes(values, dtype))
  end
  return self.scalars[key]
end

-- A 0-dim constant.
function Graph:scalar(v, dtype) return self:list({ v }, dtype or "float", {}, "scalar") end

-- Adds a node; returns its output names (n of them, default 1).
function Graph:node(op, inputs, attributes, n, hint)
  local names = {}
  for i, v in ipairs(inputs) do
    names[i] = type(v) == "string" and v or v.name
  end
  local outs = {}
  for i = 1, n or 1 do outs[i] = self:fresh(hint or op) end
  self.nodes[#self.nodes + 1] = { op = op, inputs = names, outputs = outs, attributes = attributes, name = outs[1] }
  return outs
end

-- One node with one output Sym of the given dtype (default float) and shape.
function Graph:node1(op, inputs, attributes, shape, dtype, hint)
  return self:sym(self:node(op, inputs, attributes, 1, hint)[1], dtype or "float", shape)
end

-- Marks a value as a graph output under the given name.
function Graph:output(s, name, doc)
  local out = self:node("Identity", { s }, nil, 1, name)[1]
  if out ~= name then error(string.format("mtl.onnx: two outputs are named '%s'", name), 2) end
  local dims = {}
  for i, d in ipairs(s.dims) do dims[i] = is_dim(d) and (d.k == 1 and "batch" or tostring(d)) or d end
  self.outputs[#self.outputs + 1] = { name = name, dtype = DTYPE[s.elem], dims = dims, doc = doc }
end

-- The ModelProto bytes. meta: {ir_version =, opset =, producer =, producer_version =, doc =, metadata =}
function Graph:encode(meta)
  return proto.model {
    ir_version = meta.ir_version, opset = meta.opset, producer = meta.producer,
    producer_version = meta.producer_version, doc = meta.doc, metadata = meta.metadata,
    graph = { name = self.name, nodes = self.nodes, initializers = self.initializers, inputs = self.inputs,
              outputs = self.outputs, doc = meta.graph_doc },
  }
end

return graph
