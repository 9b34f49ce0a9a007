-- nn.Graph and the backbone model: a DAG of registered blocks, against the
-- same model built by hand in Lua; the blocks EasyRec's backbones use
-- (SENet, MaskBlock/MaskNet, MMoELayer, AITMTower) against their formulas.
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local check = require "helpers.check"

local function copy(dst, src) mtl.no_grad(function() dst:copy(src) end) end

describe("nn.Graph", function()
  it("wires blocks by name: lists merge into lists, tensors concatenate", function()
    mtl.seed(1)
    local g = nn.Graph { inputs = { a = 4, b = 2 }, lists = { a = { 2, 2 } }, blocks = {
      { name = "mlp", inputs = { "a", "b" }, block = "MLP", options = { hidden = { 3 } } },   -- [a ; b]: 6 wide
      { name = "pair", inputs = { "mlp", "b" }, merge = "list" },                             -- {mlp, b}
      { name = "se", inputs = { "a" }, list = "a" },                                          -- a's list
    }, outputs = { "mlp", "pair", "se" } }
    local a, b = mtl.randn(5, 4), mtl.randn(5, 2)
    local la = { a:narrow(2, 1, 2), a:narrow(2, 3, 2) }
    local out = g({ a = a, b = b }, { a = la })
    check.assert_close(out[1], g.block_mlp(mtl.concat({ a, b }, 2)), 1e-6)
    assert.are.equal(out[1], out[2][1])
    assert.are.equal(b, out[2][2])
    assert.are.equal(la, out[3])
    assert.are.same({ 3, 2 }, g.shapes.pair)
  end)

  it("concatenates its leaves when no outputs are named", function()
    local g = nn.Graph { inputs = { x = 4 }, blocks = {
      { name = "m1", inputs = { "x" }, block = "MLP", options = { hidden = { 3 } } },
      { name = "m2", inputs = { "x" }, block = "MLP", options = { hidden = { 2 } } } } }
    assert.are.equal(5, g.output_shape)
    assert.are.same({ 6, 5 }, g({ x = mtl.randn(6, 4) }):shape())
  end)

  it("names what cannot be wired", function()
    check.assert_error("nn.Graph: the blocks form a cycle: a -> b -> a", nn.Graph, { inputs = { x = 2 }, blocks = {
      { name = "a", inputs = { "b" } }, { name = "b", inputs = { "a" } } } })
    check.assert_error("nn.Graph: block 'a' reads 'y', which is neither a block nor an input", nn.Graph,
      { inputs = { x = 2 }, blocks = { { name = "a", inputs = { "y" } } } })
    check.assert_error("nn.Graph: block 'a': Gate cannot be wired in a graph (it declares no graph_input)", nn.Graph,
      { inputs = { x = 2 }, blocks = { { name = "a", inputs = { "x" }, block = "Gate", options = { n = 2 } } } })
    check.assert_error("nn.Graph: block 'a' (SENet) reads a list of tensors, its inputs give one tensor", nn.Graph,
      { inputs = { x = 2 }, blocks = { { name = "a", inputs = { "x" }, block = "SENet" } } })
  end)
end)

describe("the backbone model", function()
  it("is MMoE when its graph is one MMoELayer (the same weights give the same outputs)", function()
    mtl.seed(2)
    local tasks = { { name = "ctr", label = "ctr" }, { name = "cvr", label = "cvr" } }
    local mmoe = models.build("mmoe", { input = 6, experts = 3, expert = { 8, 4 }, tower = { 5 }, tasks = tasks })
    local bb = models.build("backbone", { inputs = { all = 6 }, input = 6, tasks = tasks, tower = { 5 }, blocks = {
      { name = "moe", inputs = { "all" }, block = "MMoELayer", options = { tasks = 2, experts = 3, expert = { 8, 4 } } } } })
    local moe = bb.graph.block_moe
    for k = 1, 3 do
      for l, h in ipairs({ 8, 4 }) do
        local n_in = l == 1 and 6 or 8
        copy(moe["expert" .. k]["fc" .. l].weight, mmoe.experts["weight" .. l]:narrow(1, k, 1):reshape(h, n_in))
        copy(moe["expert" .. k]["fc" .. l].bias, mmoe.experts["bias" .. l]:narrow(1, k, 1):reshape(h))
      end
    end
    for i, t in ipairs({ "ctr", "cvr" }) do
      bb["tower_" .. t]:load_state_dict(mmoe["tower_" .. t].mlp:state_dict())
      bb["logit_" .. t]:load_state_dict(mmoe["tower_" .. t].out:state_dict())
      moe["gate" .. i]:load_state_dict(mmoe["gate_" .. t]:state_dict())
    end
    local x = mtl.randn(7, 6)
    local a, b = mmoe(x), bb({ all = x })
    for _, t in ipairs({ "ctr", "cvr" }) do check.assert_close(b[t].logits, a[t].logits, 1e-5, t) end
  end)

  it("reads one graph output per task, with DBMTL's relations", function()
    mtl.seed(3)
    local bb = models.build("backbone", { inputs = { all = 6 }, input = 6, tower = { 4 }, relation = { 3 },
      tasks = { { name = "ctr", label = "ctr" }, { name = "cvr", label = "cvr", relations = { "ctr" } } },
      blocks = { { name = "a", inputs = { "all" }, block = "MLP", options = { hidden = { 5 } } },
                 { name = "b", inputs = { "all" }, block = "MLP", options = { hidden = { 2 } } } },
      outputs = { "a", "b" } })
    assert.are.equal(5, bb.tower_ctr.sizes[1])
    assert.are.equal(2, bb.tower_cvr.sizes[1])
    assert.are.equal(4 + 3, bb.relation_cvr.sizes[1])
    assert.are.same({ 7 }, bb({ all = mtl.randn(7, 6) }).cvr.prob:shape())
    check.assert_error("backbone: the graph gives 1 outputs for 2 tasks", models.build, "backbone", { inputs = { all = 6 },
      input = 6, tasks = { "a", "b" }, blocks = { { name = "m", inputs = { "all" }, block = "MLP", options = { hidden = { 2 } } } },
      outputs = { "m" } })
  end)
end)

describe("backbone blocks", function()
  it("SENet: squeeze (max and mean per group), excite, re-weight, skip and layer norm", function()
    mtl.seed(4)
    local se = nn.SENet { dims = { 4, 2 }, reduction_ratio = 2, num_squeeze_group = 2 }
    local e1, e2 = mtl.randn(3, 4), mtl.randn(3, 2)
    local y = se({ e1, e2 })
    local E1, E2 = e1:totable(), e2:totable()
    local z = {}
    for i = 1, 3 do
      z[i] = { math.max(E1[i][1], E1[i][2]), math.max(E1[i][3], E1[i][4]), (E1[i][1] + E1[i][2]) / 2,
               (E1[i][3] + E1[i][4]) / 2, E2[i][1], E2[i][2], E2[i][1], E2[i][2] }
    end
    local w = se.excite(mtl.relu(se.reduce(mtl.tensor(z))))
    local x = mtl.concat({ e1, e2 }, 2)
    check.assert_close(y, se.layer_norm(x * w + x), 1e-5)
    check.gradcheck(function(a, b) return se({ a, b }) end, { e1, e2 }, { atol = 1e-3, rtol = 1e-2 })
    check.assert_error("nn.SENet: field 2 has 3 dims, which num_squeeze_group 2 does not divide", nn.SENet, { dims = { 4, 3 } })
  end)

  it("MaskBlock and MaskNet: the instance-guided mask, in parallel or in series", function()
    mtl.seed(5)
    local mb = nn.MaskBlock { input = 4, aggregation_size = 6, output_size = 3 }
    local x, m = mtl.randn(5, 4), mtl.randn(5, 4)
    local want = mtl.relu(mb.output_norm(mb.output(x * mb.weights(mtl.relu(mb.aggregation(m))))))
    check.assert_close(mb(x, m), want, 1e-6)
    check.gradcheck(function(a, b) return mb(a, b) end, { x, m }, { atol = 1e-3, rtol = 1e-2 })
    local net = nn.MaskNet { input = 4, mask_blocks = { { aggregation_size = 6, output_size = 3 },
                                                        { aggregation_size = 6, output_size = 2 } }, mlp = { 2 } }
    local xn = net.input_norm(x)
    check.assert_close(net(x), net.mlp(mtl.concat({ net.block1(xn, xn), net.block2(xn, xn) }, 2)), 1e-6)
    local serial = nn.MaskNet { input = 4, use_parallel = false, input_layer_norm = false,
                                mask_blocks = { { aggregation_size = 6, output_size = 3 }, { aggregation_size = 6 } } }
    check.assert_close(serial(x), serial.block2(serial.block1(x, x), x), 1e-6)
  end)

  it("AITMTower: the task's query over itself and what earlier towers pass on", function()
    mtl.seed(6)
    local t = nn.AITMTower { dims = { 4, 3 }, transfer = { 4 }, project_dim = 5 }
    local own, dep = mtl.randn(6, 4), mtl.randn(6, 3)
    local y = t({ own, dep })
    local u = t.transfer(dep)
    local q = t.query1(own)
    local k1, k2, v1, v2 = t.key1(own), t.key2(u), t.value1(own), t.value2(u)
    local s1, s2 = mtl.sum(q * k1, 2) / math.sqrt(5), mtl.sum(q * k2, 2) / math.sqrt(5)
    local w = mtl.softmax(mtl.stack({ s1, s2 }, 2), 2)
    check.assert_close(y, nn.mix(mtl.stack({ v1, v2 }, 2), w), 1e-5)
    local d = dep:clone():requires_grad(true)
    mtl.sum(t({ own, d })):backward()
    assert.is_nil(d.grad)                              -- stop_gradient: the earlier tower learns nothing here
    check.gradcheck(function(a) return t({ a, dep }) end, { own }, { atol = 1e-3, rtol = 1e-2 })
  end)
end)
