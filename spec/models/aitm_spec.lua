-- models/aitm.lua (AITM, Xi et al. KDD 2021): the registry finds it; its
-- options are checked; outputs and AIT weights have the right shapes; the AIT
-- unit and the calibrator compute their formulas (values computed here from
-- the weights, and a finite-difference gradient check); information flows
-- only down the chain; its AIT units are reported as gates; it learns a
-- funnel; and it trains through `mtl train` from a Lua config.
-- (spec/models/models_spec.lua runs the checks every model gets.)
local mtl = require "mtl"
local models = require "mtl.models"
local losses = require "mtl.losses"
local check = require "helpers.check"

local chain = { { name = "click", label = "is_click" }, { name = "cart", label = "is_cart" },
                { name = "pay", label = "is_pay" } }

local function build(opts)
  opts.tasks = opts.tasks or chain
  return models.build("aitm", opts)
end

-- A click -> pay funnel decided by a few input directions.
local function funnel(n, d)
  local x = mtl.randn(n, d)
  local function col(j) return mtl.sum(x:narrow(2, j, 1), 2) end   -- [n]
  local click = (col(1) + col(2) * 0.5):gt(0)
  local pay = click * (col(3) - col(4) * 0.5):gt(0.3)
  return x, { is_click = click, is_pay = pay }
end

local function nonzero(t)
  for _, v in ipairs(t:values()) do if v ~= 0 then return true end end
  return false
end

describe("models/aitm.lua", function()
  it("is a registered model with its options checked", function()
    local names = table.concat(models.names(), " ")
    assert.is_truthy((" " .. names .. " "):find(" aitm ", 1, true))
    assert.is_truthy(models.summary("aitm"):find("^AITM: "))
    check.assert_error("aitm: 'alpha' must be a number >= 0, got -1", build, { input = 4, alpha = -1 })
    check.assert_error("aitm: 'tower' must not be empty", build, { input = 4, tower = {} })
    check.assert_error("aitm: unknown key 'towers' (did you mean 'tower'?)", build, { input = 4, towers = { 8 } })
    assert.are.equal(models.block("AIT"), models.get("aitm").blocks.AIT)
  end)

  it("returns per-task logits and probabilities [B]; AIT weights [B, 2] sum to 1", function()
    mtl.seed(1)
    local model = build{ input = 6, tower = { 8, 4 } }
    local out = model(mtl.randn(5, 6))
    for _, t in ipairs(chain) do
      assert.are.same({ 5 }, out[t.name].logits:shape())
      check.assert_close(out[t.name].prob, mtl.sigmoid(out[t.name].logits), 0)
    end
    assert.is_nil(model.ait_click) -- the first task has no transfer
    assert.are.same({ 5, 2 }, model.ait_pay.last:shape())
    check.assert_close(mtl.sum(model.ait_pay.last, 2), mtl.ones(5), 1e-6, "AIT weights sum to 1")
  end)

  it("with a bottom, every parameter gets a nonzero gradient; the count is what the architecture implies", function()
    mtl.seed(2)
    local model = build{ input = 8, bottom = { 12 }, tower = { 6, 4 } }
    local x, labels = funnel(64, 8)
    labels.is_cart = labels.is_click
    local loss = losses.compute(model(x), labels, losses.default_spec(model)) + model:aux_loss()
    loss:backward()
    for _, np in ipairs(model:named_parameters()) do
      assert.is_true(np[2].grad ~= nil and nonzero(np[2].grad), np[1] .. " has no or an all-zero gradient")
    end
    -- bottom 8->12; towers 12->6->4 (x3); logits 4->1 (x3); transfers 4->4 (x2); AIT 3 x (4->4) (x2)
    local want = (8 * 12 + 12) + 3 * ((12 * 6 + 6) + (6 * 4 + 4)) + 3 * (4 + 1) + 2 * (16 + 4) + 2 * 3 * (16 + 4)
    assert.are.equal(want, model:num_parameters())
  end)

  it("the AIT unit computes softmax(<Wq u, Wk u> / sqrt(h)) over {p, q} and mixes Wv u", function()
    mtl.seed(3)
    local model = build{ input = 3, tasks = { "a", "b" }, tower = { 2 } }
    local ait, h = model.ait_b, 2
    local p, q = mtl.randn(4, h), mtl.randn(4, h)
    local z = ait(p, q):values()
    local function lin(m, v) -- m: Linear, v: {h values} -> W v + b
      local W, b, r = m.weight:totable(), m.bias:values(), {}
      for i = 1, h do
        r[i] = b[i]
        for j = 1, h do r[i] = r[i] + W[i][j] * v[j] end
      end
      return r
    end
    local P, Q = p:totable(), q:totable()
    for row = 1, 4 do
      local s = {}
      for k, u in ipairs({ P[row], Q[row] }) do
        local a, b = lin(ait.query, u), lin(ait.key, u)
        s[k] = (a[1] * b[1] + a[2] * b[2]) / math.sqrt(h)
      end
      local wp = 1 / (1 + math.exp(s[2] - s[1]))
      local vp, vq = lin(ait.value, P[row]), lin(ait.value, Q[row])
      for i = 1, h do
        check.assert_close(z[(row - 1) * h + i], wp * vp[i] + (1 - wp) * vq[i], 1e-5, "row " .. row)
      end
      check.assert_close(ait.last:get(row, 1), wp, 1e-6)
    end
  end)

  it("the AIT unit's gradients match finite differences", function()
    mtl.seed(6)
    local ait = models.block("AIT"){ dim = 3 }
    check.gradcheck(function(p, q) return ait(p, q) end, { mtl.randn(4, 3), mtl.randn(4, 3) })
  end)

  it("the calibrator is alpha * mean(relu(prob_t - prob_{t-1})) along the chain", function()
    mtl.seed(4)
    local model = build{ input = 4, tower = { 4 }, alpha = 0.3 }
    local out = model(mtl.randn(16, 4))
    local c, k, p = out.click.prob:values(), out.cart.prob:values(), out.pay.prob:values()
    local want = 0
    for i = 1, 16 do want = want + math.max(k[i] - c[i], 0) / 16 + math.max(p[i] - k[i], 0) / 16 end
    check.assert_close(model:aux_loss(), 0.3 * want, 1e-5)
    check.assert_close(model:aux_loss(out), 0.3 * want, 1e-5)
    assert.is_nil(build{ input = 4, tasks = { "only" } }:aux_loss({})) -- one task: no penalty
  end)

  it("passes information down the chain only", function()
    mtl.seed(5)
    local model = build{ input = 4, tower = { 4 } }
    local x = mtl.randn(8, 4)
    mtl.sum(model(x).click.logits):backward()
    assert.is_nil(model.tower_cart.fc1.weight.grad)
    assert.is_nil(model.tower_pay.fc1.weight.grad)
    model:zero_grad()
    mtl.sum(model(x).pay.logits):backward()
    assert.is_true(nonzero(model.tower_click.fc1.weight.grad)) -- click -> cart -> pay
    assert.is_true(nonzero(model.tower_cart.fc1.weight.grad))
    assert.is_nil(model.logit_click.weight.grad)
  end)

  it("reports its AIT units as two-column gates, one per later task", function()
    mtl.seed(7)
    local model = build{ input = 4, tower = { 4 } }
    model(mtl.randn(10, 4))
    local gates = model:gates()
    assert.are.equal(2, #gates)
    assert.are.same({ "cart", "pay" }, { gates[1].task, gates[2].task })
    assert.are.same({ "from cart", "own tower" }, gates[2].experts)
    local w = model:gate_weights()
    check.assert_close(w.pay, mtl.mean(model.ait_pay.last, 1):values(), 1e-7)
  end)

  it("learns a funnel: 300 Adam steps cut the loss by 10x, held-out AUCs pass 0.97 and 0.95", function()
    mtl.seed(1)
    local N, D, B = 4096, 8, 256
    local x, labels = funnel(N, D)
    local model = build{ input = D, tasks = { chain[1], chain[3] }, tower = { 32, 16 } }
    local spec = losses.default_spec(model)
    local opt = mtl.optim.adam{ params = model:parameters(), lr = 3e-3 }
    local first, last
    for step = 1, 300 do
      local start = ((step - 1) * B) % N + 1
      local lb = { is_click = labels.is_click:narrow(1, start, B), is_pay = labels.is_pay:narrow(1, start, B) }
      local loss = losses.compute(model(x:narrow(1, start, B)), lb, spec) + model:aux_loss()
      opt:zero_grad()
      loss:backward()
      opt:step()
      first, last = first or loss:item(), loss:item()
    end
    assert.is_true(last < first / 10, string.format("loss %.4f -> %.4f", first, last))
    local xt, lt = funnel(2000, D)
    local out = mtl.no_grad(function() return model(xt) end)
    assert.is_true(mtl.metrics.auc(out.click.prob, lt.is_click) > 0.97)
    assert.is_true(mtl.metrics.auc(out.pay.prob, lt.is_pay) > 0.95)
  end)

  it("trains through `mtl train` from a Lua config and reports its gates", function()
    local tiny = require "cli.tiny"
    local dir = tiny.setup()
    -- the tiny MMoE config with the model swapped for AITM
    local f = assert(io.open(dir .. "/aitm.lua", "w"))
    f:write([[
local cfg = import("config.lua")
cfg.model = { name = "aitm", tower = { 16, 8 }, alpha = 0.1,
              tasks = { { name = "click", label = "is_click" }, { name = "pay", label = "is_pay" } } }
return cfg
]])
    f:close()
    local rc, out, err = tiny.run("train " .. dir .. "/aitm.lua")
    assert.are.equal(0, rc, err)
    -- the tiny data's click is a + b > 1 with 10 % flipped: a learnable signal
    local click = tonumber(out:match("\nclick%s+(%d%.%d+)")) -- the final table's row
    assert.is_true(click and click > 0.85, out)
    local cjson = require "cjson"
    local last
    for line in io.lines(dir .. "/run/metrics.jsonl") do last = cjson.decode(line) end
    assert.is_true(last.final)
    assert.are.equal("pay", last.gates[1].task)
    assert.are.same({ "from click", "own tower" }, last.gates[1].experts)
    tiny.rm(dir)
  end)
end)
