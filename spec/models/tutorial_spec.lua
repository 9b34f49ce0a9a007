-- docs/new_architecture.md's architecture, examples/aitm.lua (AITM, Xi et
-- al. KDD 2021): the file stays under 60 lines and matches the tutorial, its
-- outputs have the right shapes, every parameter gets a gradient, the AIT
-- unit and the calibrator compute their formulas (checked against values
-- computed here from the weights), information flows only down the chain,
-- and it trains.
local mtl = require "mtl"
local losses = require "mtl.losses"
local check = require "helpers.check"
local AITM = require "examples.aitm"

local function read(path)
  local f = assert(io.open(path))
  local s = f:read("*a")
  f:close()
  return s
end

-- the first ```lua block of the tutorial
local function first_lua_block(text)
  return text:match("\n```lua\n(.-\n)```\n")
end

local chain = { { name = "click", label = "is_click" }, { name = "cart", label = "is_cart" },
                { name = "pay", label = "is_pay" } }

-- The tutorial's data: a click -> pay funnel decided by a few input directions.
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

describe("the tutorial's architecture (examples/aitm.lua)", function()
  it("is under 60 lines and is the file the tutorial shows", function()
    local file = read("examples/aitm.lua")
    local lines = select(2, file:gsub("\n", "\n"))
    assert.is_true(lines < 60, "examples/aitm.lua has " .. lines .. " lines")
    assert.are.equal(file, first_lua_block(read("docs/new_architecture.md")))
  end)

  it("returns per-task logits and probabilities [B] for a chain of three tasks", function()
    mtl.seed(1)
    local model = AITM{ input = 6, tasks = chain, tower = { 8, 4 } }
    local out = model(mtl.randn(5, 6))
    for _, t in ipairs(chain) do
      assert.are.same({ 5 }, out[t.name].logits:shape())
      assert.are.same({ 5 }, out[t.name].prob:shape())
      check.assert_close(out[t.name].prob, mtl.sigmoid(out[t.name].logits), 0)
    end
    -- the first task has no transfer: one AIT unit per later task
    assert.is_nil(model.ait_click)
    assert.is_not_nil(model.ait_cart)
    assert.are.same({ 5, 2 }, model.ait_pay.last:shape())
    check.assert_close(mtl.sum(model.ait_pay.last, 2), mtl.ones(5), 1e-6, "AIT weights sum to 1")
  end)

  it("gives every parameter a nonzero gradient after one backward", function()
    mtl.seed(2)
    local model = AITM{ input = 8, tasks = chain }
    local x, labels = funnel(64, 8)
    labels.is_cart = labels.is_click
    local out = model(x)
    local loss = losses.compute(out, labels, losses.default_spec(model)) + model:aux_loss()
    loss:backward()
    local names = 0
    for _, np in ipairs(model:named_parameters()) do
      names = names + 1
      assert.is_not_nil(np[2].grad, np[1] .. " has no gradient")
      assert.is_true(nonzero(np[2].grad), np[1] .. " has an all-zero gradient")
    end
    -- 3 towers (2 layers each) + 3 logits + 2 transfers + 2 AIT units (3 Linear each), weight and bias
    assert.are.equal(2 * (3 * 2 + 3 + 2 + 2 * 3), names)
  end)

  it("the AIT unit computes softmax(<Wq u, Wk u> / sqrt(h)) over {p, q} and mixes Wv u", function()
    mtl.seed(3)
    local model = AITM{ input = 3, tasks = { "a", "b" }, tower = { 2 } }
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

  it("the calibrator is alpha * mean(relu(prob_t - prob_{t-1})) along the chain", function()
    mtl.seed(4)
    local model = AITM{ input = 4, tasks = chain, tower = { 4 }, alpha = 0.3 }
    local out = model(mtl.randn(16, 4))
    local c, k, p = out.click.prob:values(), out.cart.prob:values(), out.pay.prob:values()
    local want = 0
    for i = 1, 16 do want = want + math.max(k[i] - c[i], 0) / 16 + math.max(p[i] - k[i], 0) / 16 end
    check.assert_close(model:aux_loss(), 0.3 * want, 1e-5)
    check.assert_close(model:aux_loss(out), 0.3 * want, 1e-5)
    assert.are.equal(0, AITM{ input = 4, tasks = { "only" } }:aux_loss({}))
  end)

  it("passes information down the chain only", function()
    mtl.seed(5)
    local model = AITM{ input = 4, tasks = chain, tower = { 4 } }
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

  it("trains: 300 Adam steps cut the loss by more than 10x on the tutorial's funnel", function()
    mtl.seed(1)
    local N, D, B = 4096, 8, 256
    local x, labels = funnel(N, D)
    local model = AITM{ input = D, tasks = { chain[1], chain[3] } }
    local spec = losses.default_spec(model)
    local opt = mtl.optim.adam{ params = model:parameters(), lr = 3e-3 }
    local first, last
    for step = 1, 300 do
      local start = ((step - 1) * B) % N + 1
      local xb = x:narrow(1, start, B)
      local lb = { is_click = labels.is_click:narrow(1, start, B), is_pay = labels.is_pay:narrow(1, start, B) }
      local loss = losses.compute(model(xb), lb, spec) + model:aux_loss()
      opt:zero_grad()
      loss:backward()
      opt:step()
      if step == 1 then first = loss:item() end
      last = loss:item()
    end
    assert.is_true(last < first / 10, string.format("loss %.4f -> %.4f", first, last))
    -- and it ranks held-out rows well on both tasks
    local xt, lt = funnel(2000, D)
    local out = mtl.no_grad(function() return model(xt) end)
    assert.is_true(mtl.metrics.auc(out.click.prob, lt.is_click) > 0.97)
    assert.is_true(mtl.metrics.auc(out.pay.prob, lt.is_pay) > 0.95)
  end)

  it("once under models/, a name builds it; a file that fails to load says why", function()
    local models = require "mtl.models"
    package.preload["models.aitm_tutorial"] = function() return AITM end
    package.preload["models.aitm_broken"] = function() error("aitm_broken.lua:3: '=' expected near 'x'", 0) end
    local ok, err = pcall(function()
      local model = models.build("aitm_tutorial", { input = 4, tasks = { "click", "pay" } })
      assert.are.equal("AITM", model.__name)
      check.assert_error("mtl.models: model 'aitm_broken' failed to load: aitm_broken.lua:3: '=' expected near 'x'",
        models.get, "aitm_broken")
      check.assert_error("mtl.models: unknown model 'aitm_missing'", models.get, "aitm_missing")
    end)
    package.preload["models.aitm_tutorial"], package.preload["models.aitm_broken"] = nil, nil
    package.loaded["models.aitm_tutorial"] = nil
    assert(ok, err)
  end)
end)
