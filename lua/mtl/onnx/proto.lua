-- mtl.onnx.proto: the ONNX messages mtl writes, in protobuf's binary wire
-- format (docs/export.md). Only encoding, only the fields used; field
-- numbers are those of onnx/onnx.proto (IR version 8).
--
-- Protobuf in brief: a message is a sequence of fields; each field is a key
-- varint(field_number * 8 + wire_type) followed by its value: a varint
-- (wire type 0: int32, int64, enums, bool), 8 bytes (1), or a length varint
-- and that many bytes (2: strings, bytes, nested messages, packed arrays),
-- or 4 bytes (5: float). Varints hold 7 bits a byte, low bits first, the high
-- bit set on every byte but the last; a negative int64 is written as its
-- 64-bit two's complement (ten bytes).
--
--   local proto = require "mtl.onnx.proto"
--   local bytes = proto.model{ir_version = 8, opset = 17, producer = "mtl", graph = {...}}
local ffi = require "ffi"

local proto = {}

local byte, char, concat = string.byte, string.char, table.concat

-- ---- wire format --------------------------------------------------------------------------
local function varint(n)
  local out = {}
  if n < 0 then
    local u = ffi.cast("uint64_t", ffi.cast("int64_t", n)) -- two's complement
    while u >= 128 do
      out[#out + 1] = char(tonumber(u % 128) + 128)
      u = u / 128
    end
    out[#out + 1] = char(tonumber(u))
  else
    assert(n % 1 == 0 and n < 2 ^ 53, "mtl.onnx.proto: varint out of range")
    while n >= 128 do
      out[#out + 1] = char(n % 128 + 128)
      n = math.floor(n / 128)
    end
    out[#out + 1] = char(n)
  end
  return concat(out)
end
proto.varint = varint

local VARINT, FIXED32, BYTES = 0, 5, 2
local function key(field, wire) return varint(field * 8 + wire) end

-- A message under construction: fields appended in order, bytes at the end.
local Msg = {}
Msg.__index = Msg
local function msg() return setmetatable({ parts = {} }, Msg) end

function Msg:int(field, v)
  if v ~= nil then self.parts[#self.parts + 1] = key(field, VARINT) .. varint(v) end
  return self
end
function Msg:ints(field, list) -- repeated int64, unpacked (as proto2 declares them)
  for _, v in ipairs(list or {}) do self:int(field, v) end
  return self
end
function Msg:bytes(field, s)
  if s ~= nil then self.parts[#self.parts + 1] = key(field, BYTES) .. varint(#s) .. s end
  return self
end
function Msg:message(field, m) -- an encoded message (a string) or nil
  return self:bytes(field, m)
end
function Msg:messages(field, list)
  for _, m in ipairs(list or {}) do self:bytes(field, m) end
  return self
end
local f32 = ffi.new("float[1]")
local function float_bytes(v)
  f32[0] = v
  return ffi.string(f32, 4) -- little-endian on the hosts mtl runs on (x86-64, aarch64)
end
function Msg:float(field, v)
  if v ~= nil then self.parts[#self.parts + 1] = key(field, FIXED32) .. float_bytes(v) end
  return self
end
function Msg:floats(field, list)
  for _, v in ipairs(list or {}) do self:float(field, v) end
  return self
end
function Msg:done() return concat(self.parts) end

-- ---- ONNX messages ---------------------------------------------------------------------
proto.FLOAT, proto.INT64, proto.BOOL, proto.DOUBLE = 1, 7, 9, 11 -- TensorProto.DataType
local ATTR = { float = 1, int = 2, string = 3, tensor = 4, floats = 6, ints = 7 } -- AttributeProto.AttributeType

-- TensorProto {name=, dtype=, dims={...}, raw=bytes (little-endian, row-major)}
function proto.tensor(t)
  return msg():ints(1, t.dims):int(2, t.dtype):bytes(8, t.name):bytes(9, t.raw):done()
end

-- AttributeProto from a name and a Lua value: an integer, a float
-- ({float = x}), a string, a list of integers ({ints = {...}}), a list of
-- floats ({floats = {...}}) or a tensor ({tensor = {...}} as proto.tensor).
function proto.attribute(name, v)
  local m = msg():bytes(1, name)
  if type(v) == "number" then
    m:int(20, ATTR.int):int(3, v)
  elseif type(v) == "string" then
    m:int(20, ATTR.string):bytes(4, v)
  elseif v.float then
    m:int(20, ATTR.float):float(2, v.float)
  elseif v.ints then
    m:int(20, ATTR.ints):ints(8, v.ints)
  elseif v.floats then
    m:int(20, ATTR.floats):floats(7, v.floats)
  elseif v.tensor then
    m:int(20, ATTR.tensor):message(5, proto.tensor(v.tensor))
  else
    error("mtl.onnx.proto: attribute '" .. name .. "' has a value of no known kind", 2)
  end
  return m:done()
end

-- NodeProto {op=, inputs=, outputs=, name=, attributes = {name = value}}
-- (attributes written in name order, so files are byte-stable).
function proto.node(n)
  local m = msg()
  for _, s in ipairs(n.inputs) do m:bytes(1, s) end
  for _, s in ipairs(n.outputs) do m:bytes(2, s) end
  m:bytes(3, n.name):bytes(4, n.op)
  local names = {}
  for k in pairs(n.attributes or {}) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do m:message(5, proto.attribute(k, n.attributes[k])) end
  return m:done()
end

-- ValueInfoProto {name=, dtype=, dims = {number or "symbolic name", ...}, doc=}
function proto.value_info(v)
  local shape = msg()
  for _, d in ipairs(v.dims) do
    local dim = type(d) == "number" and msg():int(1, d) or msg():bytes(2, d)
    shape:message(1, dim:done())
  end
  local tensor_type = msg():int(1, v.dtype):message(2, shape:done()):done()
  local type_proto = msg():message(1, tensor_type):done()
  return msg():bytes(1, v.name):message(2, type_proto):bytes(3, v.doc):done()
end

-- GraphProto {name=, nodes=, initializers=, inputs=, outputs=, doc=}
function proto.graph(g)
  local m = msg()
  for _, n in ipairs(g.nodes) do m:message(1, proto.node(n)) end
  m:bytes(2, g.name)
  for _, t in ipairs(g.initializers) do m:message(5, proto.tensor(t)) end
  m:bytes(10, g.doc)
  for _, v in ipairs(g.inputs) do m:message(11, proto.value_info(v)) end
  for _, v in ipairs(g.outputs) do m:message(12, proto.value_info(v)) end
  return m:done()
end

-- ModelProto {ir_version=, opset=, producer=, producer_version=, doc=, graph=, metadata = {{k, v}, ...}}
function proto.model(t)
  local opset = msg():bytes(1, ""):int(2, t.opset):done() -- the default domain ai.onnx
  local m = msg():int(1, t.ir_version):bytes(2, t.producer):bytes(3, t.producer_version)
  m:bytes(6, t.doc):message(7, proto.graph(t.graph)):message(8, opset)
  for _, kv in ipairs(t.metadata or {}) do m:message(14, msg():bytes(1, kv[1]):bytes(2, kv[2]):done()) end
  return m:done()
end

-- For specs: the varint at position i of s -> value, next position.
function proto.read_varint(s, i)
  local n, scale = 0, 1
  while true do
    local b = byte(s, i)
    n = n + (b % 128) * scale
    i = i + 1
    if b < 128 then return n, i end
    scale = scale * 128
  end
end

return proto
