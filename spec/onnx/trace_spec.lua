-- Tracing a forward into an ONNX graph (lua/mtl/onnx/trace.lua, ops.lua,
-- graph.lua): shapes with a symbolic batch, constants folded from real
-- tensors, the errors a forward meets, and that everything tracing swaps is
-- put back. The values are checked end to end in ONNX Runtime by
-- spec/onnx/roundtrip_spec.lua.
local mtl = require "mtl"
local nn = require "mtl.nn"
local graph = require "mtl.onnx.graph"
local trace = require "mtl.onnx.trace"

local function input(g, dims) return g:input("x", "float", dims or { graph.batch, 5 }) end

local function ops_of(g)
  local list = {}
  for i, n in ipairs(g.nodes) do list[i] = n.op end
  return table.concat(list, " ")
end

describe("mtl.onnx.trace", function()
  it("traces a block's forward into nodes, with the batch dimension symbolic", function()
    mtl.seed(1)
    local mlp = nn.MLP { input = 5, hidden = { 4, 3 }, activation = "tanh" }
    local g = graph.new("t")
    local y = trace.run(function() return mlp(input(g)) end, mlp)
    assert.equal("Gemm Tanh Gemm Tanh", ops_of(g))
    assert.equal("[batch,3]", graph.shape_str(y.dims))
    assert.equal(2, y:dim())
    assert.truthy(graph.is_dim(y:size(1)))
    assert.equal(3, y:size(-1))
    assert.equal("batch*3", tostring(y:numel()))
    -- each weight stored once, named after the parameter
    assert.equal(4, #g.initializers)
  end)

  it("folds ops on real tensors into constants and keeps shapes through reshapes", function()
    mtl.seed(2)
    local w = mtl.randn(2, 3, 5)
    local g = graph.new("t")
    local out = trace.run(function()
      local x = input(g)
      local B = x:size(1)
      local half = w:narrow(1, 1, 1):reshape(3, 5)          -- real: computed, then a constant
      local h = mtl.linear(x, half)                         -- [B, 3]
      local pair = mtl.stack({ h, h * 2 }, 2)               -- [B, 2, 3]
      return mtl.sum(pair:reshape(B * 2, 3), 2):reshape(B, 2)
    end)
    assert.equal("[batch,2]", graph.shape_str(out.dims))
    assert.equal("Gemm Mul Unsqueeze Unsqueeze Concat Reshape ReduceSum Reshape", ops_of(g))
    -- the reshape targets: -1 where the batch size goes
    local function target(node)
      for _, t in ipairs(g.initializers) do
        if t.name == node.inputs[2] then
          local p = require("ffi").cast("const int64_t *", t.raw)
          local out = {}
          for i = 1, #t.raw / 8 do out[i] = tonumber(p[i - 1]) end
          return out
        end
      end
    end
    assert.same({ -1, 3 }, target(g.nodes[6]))
    assert.same({ -1, 2 }, target(g.nodes[8]))
  end)

  it("names the op a forward calls that has no translation, and restores everything", function()
    local linear, mul = mtl.linear, mtl.core.Tensor_mt.__mul
    local gate = nn.Gate { input = 5, n = 2 }
    local g = graph.new("t")
    local ok, err = pcall(trace.run, function()
      local w = gate(input(g))
      return mtl.where(w:gt(0), w, w)
    end, gate)
    assert.is_false(ok)
    assert.truthy(err:find("mtl.onnx: the tensor method 'gt' has no ONNX translation (traced values support: abs, add,", 1, true), err)
    assert.equal(linear, mtl.linear)
    assert.equal(mul, mtl.core.Tensor_mt.__mul)
    assert.is_nil(rawget(gate, "last")) -- the gate's last weights were a traced value: gone again
    ok, err = pcall(trace.run, function() return mtl.where(input(graph.new("u")), 1, 2) end)
    assert.is_false(ok)
    assert.truthy(err:find("mtl.onnx: mtl.where has no ONNX translation (supported: abs, add,", 1, true), err)
    -- real tensors still compute after tracing
    assert.equal(6, (mtl.ones(2, 3) * 2):sum():item() / 2)
  end)

  it("refuses what ONNX cannot express without a fixed batch", function()
    local g
    local function message(fn)
      g = graph.new("t")
      local ok, err = pcall(trace.run, fn)
      assert.is_false(ok)
      return err
    end
    assert.equal("mtl.onnx: mtl.reshape: at most one dimension may depend on the batch size when exporting, got [batch,batch]",
      message(function() local x = input(g); return x:reshape(x:size(1), x:size(1)) end))
    assert.equal("mtl.onnx: mtl.concat along the batch dimension cannot be exported",
      message(function() local x = input(g); return mtl.concat({ x, x }, 1) end))
    assert.equal("mtl.onnx: mtl.dropout in training mode cannot be exported (the model is exported in eval mode)",
      message(function() return mtl.dropout(input(g), 0.5, true) end))
    assert.truthy(message(function() local x = input(g); return x:size(1) + 1 end)
      :find("mtl.onnx: the batch size is symbolic when exporting", 1, true))
    assert.equal("mtl.onnx: mtl.add: shapes cannot be broadcast together: [batch,5] and [3]",
      message(function() return input(g) + mtl.ones(3) end))
  end)

  it("calls a block's onnx hook instead of its forward, only while tracing", function()
    local Twice = nn.class("Twice")
    function Twice:forward(x) return mtl.where(x:gt(0), x, x) * 2 end
    function Twice:onnx(x) return x * 2 end
    local b = Twice()
    local g = graph.new("t")
    local y = trace.run(function() return b(input(g)) end, b)
    assert.equal("Mul", ops_of(g))
    assert.equal("[batch,5]", graph.shape_str(y.dims))
    assert.is_nil(rawget(b, "forward"))
    assert.equal(4, b(mtl.ones(2)):sum():item())
  end)
end)
