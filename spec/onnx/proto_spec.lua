-- The protobuf encoding of ONNX messages (lua/mtl/onnx/proto.lua): bytes
-- against hand-encoded ones (field numbers of onnx/onnx.proto), and a model
-- decoded by python3-onnx.
local proto = require "mtl.onnx.proto"
local shell = require "helpers.shell"

local function hex(s) return (s:gsub(".", function(c) return string.format("%02x ", c:byte()) end)) end

describe("mtl.onnx.proto", function()
  it("writes varints low 7 bits first, negative numbers as ten-byte two's complement", function()
    local cases = {
      { 0, "00 " }, { 1, "01 " }, { 127, "7f " }, { 128, "80 01 " }, { 300, "ac 02 " },
      { 2 ^ 31, "80 80 80 80 08 " }, { 2 ^ 53 - 1, "ff ff ff ff ff ff ff 0f " },
      { -1, "ff ff ff ff ff ff ff ff ff 01 " }, { -2, "fe ff ff ff ff ff ff ff ff 01 " },
    }
    for _, c in ipairs(cases) do
      assert.equal(c[2], hex(proto.varint(c[1])), "varint of " .. c[1])
      if c[1] >= 0 then assert.equal(c[1], (proto.read_varint(proto.varint(c[1]), 1))) end
    end
  end)

  it("encodes a TensorProto: dims (1), data_type (2), name (8), raw_data (9)", function()
    local bytes = proto.tensor { name = "w", dtype = proto.FLOAT, dims = { 2, 3 }, raw = "abcd" }
    -- 08 02 08 03: dims 2, 3 (unpacked, as proto2 declares them); 10 01: FLOAT;
    -- 42 01 'w': name; 4a 04 'abcd': raw_data
    assert.equal("08 02 08 03 10 01 42 01 77 4a 04 61 62 63 64 ", hex(bytes))
  end)

  it("encodes attributes with their type discriminator (field 20)", function()
    -- name (1) "axis", type INT (a0 01 02), i (3) = -1
    assert.equal("0a 04 61 78 69 73 a0 01 02 18 ff ff ff ff ff ff ff ff ff 01 ", hex(proto.attribute("axis", -1)))
    -- type FLOAT (a0 01 01), f (2, fixed32) = 0.5
    assert.equal("0a 01 61 a0 01 01 15 00 00 00 3f ", hex(proto.attribute("a", { float = 0.5 })))
    -- type INTS (a0 01 07), ints (8) 1, 0, 2
    assert.equal("0a 01 70 a0 01 07 40 01 40 00 40 02 ", hex(proto.attribute("p", { ints = { 1, 0, 2 } })))
    assert.has_error(function() proto.attribute("x", {}) end, "mtl.onnx.proto: attribute 'x' has a value of no known kind")
  end)

  it("encodes a NodeProto: inputs (1), outputs (2), name (3), op_type (4), attributes (5) in name order", function()
    local bytes = proto.node { op = "Relu", inputs = { "x" }, outputs = { "y" }, name = "n" }
    assert.equal("0a 01 78 12 01 79 1a 01 6e 22 04 52 65 6c 75 ", hex(bytes))
  end)

  it("writes a model that python3-onnx reads back and checks", function()
    local function vi(name) return { name = name, dtype = proto.FLOAT, dims = { "batch", 2 } } end
    local raw = string.char(0, 0, 128, 63, 0, 0, 0, 64) -- float32 1, 2
    local bytes = proto.model {
      ir_version = 8, opset = 17, producer = "mtl", producer_version = "0.1", doc = "spec",
      metadata = { { "k", "v" } },
      graph = {
        name = "g", inputs = { vi("x") }, outputs = { vi("y") },
        initializers = { { name = "b", dtype = proto.FLOAT, dims = { 2 }, raw = raw } },
        nodes = { { op = "Add", inputs = { "x", "b" }, outputs = { "s" }, name = "add" },
                  { op = "Softmax", inputs = { "s" }, outputs = { "y" }, name = "sm", attributes = { axis = -1 } } },
      },
    }
    local tmp = shell.tmpdir()
    local f = assert(io.open(tmp .. "/m.onnx", "wb"))
    f:write(bytes)
    f:close()
    local out = shell.run(string.format([[/usr/bin/python3 -c '
import onnx, onnx.numpy_helper, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
g = m.graph
print(m.ir_version, m.opset_import[0].version, m.producer_name, m.metadata_props[0].key, g.name)
print([n.op_type for n in g.node], g.node[1].attribute[0].name, g.node[1].attribute[0].i)
print(list(onnx.numpy_helper.to_array(g.initializer[0])), g.input[0].type.tensor_type.shape.dim[0].dim_param)
' %s 2>&1]], tmp .. "/m.onnx"))
    os.execute("rm -rf '" .. tmp .. "'")
    assert.equal("8 17 mtl k g\n['Add', 'Softmax'] axis -1\n[1.0, 2.0] batch\n", out)
  end)
end)
