-- Layer options EasyRec's DNNs have: activations (Dice, PReLU and the
-- elementwise ones by name), batch normalization, dropout, bias; in MLPs,
-- experts (per expert) and the models' "mlp" options.
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local check = require "helpers.check"

describe("activations", function()
  local x = mtl.tensor { { -1.5, 0.4, 2 }, { 0.7, -0.3, -2.2 }, { 1.1, 0.9, -0.8 }, { -0.2, 1.6, 0.5 } }

  it("Dice: p x + alpha (1 - p) x with p the sigmoid of the batch-normalized input", function()
    local d = nn.Dice { n = 3 }
    mtl.no_grad(function() d.alpha:copy(mtl.tensor { 0.5, -0.25, 1 }) end)
    local y, X, a = d(x):totable(), x:totable(), { 0.5, -0.25, 1 }
    for j = 1, 3 do
      local mean, var = 0, 0
      for i = 1, 4 do mean = mean + X[i][j] / 4 end
      for i = 1, 4 do var = var + (X[i][j] - mean) ^ 2 / 4 end
      for i = 1, 4 do
        local p = 1 / (1 + math.exp(-(X[i][j] - mean) / math.sqrt(var + 1e-9)))
        check.assert_close(y[i][j], p * X[i][j] + a[j] * (1 - p) * X[i][j], 1e-5)
      end
    end
    check.gradcheck(function(t) return d(t) end, { x }, { atol = 1e-3, rtol = 1e-2 })
    check.gradcheck(function(alpha) rawset(d, "alpha", alpha); return d(x) end, { d.alpha })
  end)

  it("PReLU: max(0, x) + alpha min(0, x), alpha learned per feature", function()
    local p = nn.PReLU { n = 3 }
    mtl.no_grad(function() p.alpha:copy(mtl.tensor { 0.1, 0.2, 0.3 }) end)
    check.assert_close(p(x):totable()[2], { 0.7, -0.3 * 0.2, -2.2 * 0.3 }, 1e-6)
    check.gradcheck(function(t) return p(t) end, { x })
    check.gradcheck(function(alpha) rawset(p, "alpha", alpha); return p(x) end, { p.alpha })
  end)

  it("has every name of mtl.config.check.ACTIVATIONS, and leaky_relu with a slope", function()
    for _, name in ipairs(require("mtl.config.check").ACTIVATIONS) do
      local m = nn.activation_module(name, 3)
      assert.are.same({ 4, 3 }, m(x):shape(), name)
    end
    check.assert_close(nn.activation("leaky_relu:0.2")(x):totable()[1], { -0.3, 0.4, 2 }, 1e-6)
    check.assert_close(nn.activation("relu6")(mtl.tensor { -1, 3, 7 }), { 0, 3, 6 }, 0)
    check.assert_error("nn: unknown activation 'dice' (it has parameters: nn.activation_module)", nn.activation, "dice")
  end)
end)

describe("nn.MLP and nn.Experts options", function()
  it("drops out in training only, with rates per layer, scaling what it keeps", function()
    mtl.seed(4)
    local mlp = nn.MLP { input = 50, hidden = { 40, 30 }, activation = "linear", dropout = { 0, 0.5 } }
    local x = mtl.randn(64, 50)
    local plain = nn.MLP { input = 50, hidden = { 40, 30 }, activation = "linear" }
    plain:load_state_dict(mlp:state_dict())
    local want = plain(x)
    mlp:eval()
    check.assert_close(mlp(x), want, 1e-6)
    mlp:train()
    local y, w = mlp(x):values(), want:values()
    local zeros, kept = 0, 0
    for i = 1, #y do
      if y[i] == 0 then zeros = zeros + 1 else kept = kept + 1; check.assert_close(y[i], 2 * w[i], 1e-4) end
    end
    assert.is_true(zeros > 0.4 * #y and zeros < 0.6 * #y, "about half dropped: " .. zeros)
  end)

  it("builds a module per layer for a parametric activation, BN per layer, and no bias when asked", function()
    local mlp = nn.MLP { input = 4, hidden = { 5, 3 }, activation = "dice", batch_norm = true, bias = false,
                         last_activation = false }
    assert.are.equal("Dice", mlp.act1.__name)
    assert.is_nil(mlp.act2)          -- no activation after the last layer
    assert.is_nil(mlp.bn2)           -- nor batch normalization (it follows last_activation)
    assert.is_nil(mlp.fc1.bias)
    assert.are.same({ 6, 3 }, mlp(mtl.randn(6, 4)):shape())
    local with_bn = nn.MLP { input = 4, hidden = { 5 }, batch_norm = true, last_activation = false, last_batch_norm = true }
    assert.is_truthy(with_bn.bn1)
  end)

  it("gives each expert its own batch normalization and parametric activation", function()
    mtl.seed(6)
    local e = nn.Experts { n = 2, input = 4, hidden = { 3 }, batch_norm = true, activation = "prelu" }
    mtl.no_grad(function() e.act1.alpha:copy(mtl.tensor { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6 }) end)
    local x = mtl.randn(8, 4)
    local y = e(x)                                               -- [8, 2, 3]
    for k = 1, 2 do                                              -- expert k as an MLP of its own
      local mlp = nn.MLP { input = 4, hidden = { 3 }, batch_norm = true, activation = "prelu" }
      mtl.no_grad(function()
        mlp.fc1.weight:copy(e.weight1:narrow(1, k, 1):reshape(3, 4))
        mlp.fc1.bias:copy(e.bias1:narrow(1, k, 1):reshape(3))
        mlp.act1.alpha:copy(e.act1.alpha:narrow(1, 3 * k - 2, 3))
      end)
      check.assert_close(y:narrow(2, k, 1):reshape(8, 3), mlp(x), 1e-5, "expert " .. k)
    end
    check.gradcheck(function(t) return e(t) end, { x }, { atol = 1e-3, rtol = 1e-2 })
  end)

  it("lets every model take its layers as an mlp option", function()
    mtl.seed(7)
    local x = mtl.randn(5, 6)
    local d = { hidden = { 8 }, activation = "dice", batch_norm = true, dropout = 0.1 }
    local tasks = { { name = "a", label = "a" }, { name = "b", label = "b", tower = { hidden = { 3 }, activation = "tanh" } } }
    for name, opts in pairs {
      mmoe = { expert = d, tower = d },
      dbmtl = { bottom = d, tower = d, relation = d, mmoe = { experts = 2, expert = d } },
      ple = { expert = { d, { 4 } }, tower = d },
      cgc = { expert = d, tower = d },
      shared_bottom = { bottom = d, tower = d },
      aitm = { bottom = d, tower = d },
      esmm = { tower = d, cvr_tower = { 4 } },
    } do
      opts.input = 6
      if name ~= "esmm" then opts.tasks = tasks end
      local m = models.build(name, opts)
      for _, t in ipairs(m.tasks) do assert.are.same({ 5 }, m(x)[t.name].prob:shape(), name) end
    end
    assert.are.equal("tanh", models.build("mmoe", { input = 6, tasks = tasks }).tower_b.mlp.act_name)
  end)

  it("builds MMoE experts of their own shapes from a list (EasyRec's deprecated form)", function()
    mtl.seed(8)
    local m = models.build("mmoe", { input = 6, experts = { { 8, 4 }, { hidden = { 4 }, dropout = 0.2 }, { 16, 8, 4 } },
                                     tower = { 3 } })
    m:eval()                                                    -- no dropout: the same expert outputs twice
    local x = mtl.randn(5, 6)
    local out = m(x)
    local e = { m.expert1(x), m.expert2(x), m.expert3(x) }      -- [5, 1, 4] each
    local g = m.gate_click(x)
    local mixed = mtl.concat(e, 2)                              -- [5, 3, 4]
    check.assert_close(out.click.logits, m.tower_click(nn.mix(mixed, g)), 1e-6)
    check.assert_error("mmoe: 'experts.2' ends with 5 units, expert 1 with 4: the gates mix experts of one size",
      models.build, "mmoe", { input = 6, experts = { { 4 }, { 5 } } })
  end)
end)
