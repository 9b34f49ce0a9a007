-- The architectures in models/: shapes, gradients, learning, and each
-- model's defining property (ESMM's product, PLE(1) == CGC, DBMTL's DAG,
-- task-space masks, fused == unfused experts).
local mtl = require "mtl"
local nn = require "mtl.nn"
local models = require "mtl.models"
local losses = require "mtl.losses"
local check = require "helpers.check"

local B, D = 64, 12

-- A small fixed data set: click and pay depend on a few input directions.
local function dataset(seed)
  mtl.seed(seed or 7)
  local x = mtl.randn(B, D)
  local click, pay = {}, {}
  for i = 1, B do
    local a, b, c = x:get(i, 1), x:get(i, 2), x:get(i, 3)
    click[i] = (a + 0.5 * b > 0) and 1 or 0
    pay[i] = (click[i] == 1 and c > 0) and 1 or 0
  end
  return x, { is_click = mtl.tensor(click), is_pay = mtl.tensor(pay) }
end

local small = {
  shared_bottom = { bottom = { 16, 8 }, tower = { 8 } },
  shared_bottom_soft = { name = "shared_bottom", sharing = "soft", soft_weight = 1e-2, bottom = { 16, 8 }, tower = { 8 } },
  esmm = { tower = { 16, 8 } },
  mmoe = { experts = 3, expert = { 16, 8 }, tower = { 8 } },
  omoe = { name = "mmoe", one_gate = true, experts = 3, expert = { 16, 8 }, tower = { 8 } },
  cgc = { specific = 2, shared = 2, expert = { 8 }, tower = { 8 } },
  ple = { levels = 2, specific = 2, shared = 2, expert = { 8 }, tower = { 8 } },
  dbmtl = { bottom = { 16 }, tower = { 8 },
            tasks = { { name = "click", label = "is_click", relation = { 4 } },
                      { name = "pay", label = "is_pay", relations = { "click" } } } },
  backbone = { blocks = { { name = "bottom", inputs = { "x" }, block = "MLP", options = { hidden = { 16 } } },
                          { name = "moe", inputs = { "bottom" }, block = "MMoELayer",
                            options = { tasks = 2, experts = 2, expert = { 8 } } } }, tower = { 8 } },
  dbmtl_mmoe = { name = "dbmtl", bottom = { 16 }, mmoe = { experts = 2, expert = { 8 } }, tower = { 8 },
                 tasks = { { name = "click", label = "is_click", relation = { 4 } },
                           { name = "pay", label = "is_pay", relations = { "click" } } } },
}

local function build(key, seed)
  mtl.seed(seed or 1)
  local opts = {}
  for k, v in pairs(small[key] or {}) do opts[k] = v end
  local name = opts.name or key
  opts.name = nil
  opts.input = D
  return models.build(name, opts)
end

local function total_loss(model, x, labels)
  local out = model(x)
  local loss = losses.compute(out, labels, losses.default_spec(model))
  local aux = model.aux_loss and model:aux_loss()
  if aux then loss = loss + aux end
  return loss, out
end

-- Adam written here with tensor ops, so the spec does not depend on mtl.optim
local function adam(model, lr)
  local state, t = {}, 0
  return function()
    t = t + 1
    mtl.no_grad(function()
      for i, p in ipairs(model:parameters()) do
        local g = p.grad
        if g then
          local s = state[i] or { m = mtl.zeros(p:shape()), v = mtl.zeros(p:shape()) }
          state[i] = s
          s.m = s.m * 0.9 + g * 0.1
          s.v = s.v * 0.999 + g * g * 0.001
          local mhat, vhat = s.m / (1 - 0.9 ^ t), s.v / (1 - 0.999 ^ t)
          p:copy(p - mhat / (mtl.sqrt(vhat) + 1e-8) * lr)
        end
        p:zero_grad()
      end
    end)
  end
end

-- Every model of the registry (with its defaults unless `small` sizes it
-- down) and the variants above.
local keys = {}
for _, name in ipairs(models.names()) do if not small[name] then keys[#keys + 1] = name end end
for key in pairs(small) do keys[#keys + 1] = key end
table.sort(keys)

describe("models", function()
  for _, key in ipairs(keys) do
    describe(key, function()
      it("returns per-task logits and probabilities of shape [B]", function()
        local model = build(key)
        local x = dataset()
        local out = model(x)
        for _, t in ipairs(model.tasks) do
          local o = out[t.name]
          assert.is_not_nil(o, "output for task " .. t.name)
          assert.are.same({ B }, o.prob:shape())
          if o.logits then assert.are.same({ B }, o.logits:shape()) end
          for _, v in ipairs(o.prob:values()) do assert.is_true(v > 0 and v < 1) end
        end
      end)

      it("gives every parameter a nonzero gradient after one backward", function()
        local model = build(key)
        local x, labels = dataset()
        local loss = total_loss(model, x, labels)
        loss:backward()
        for _, np in ipairs(model:named_parameters()) do
          local g = np[2].grad
          assert.is_not_nil(g, np[1] .. " has no gradient")
          local s = 0
          for _, v in ipairs(g:values()) do s = s + math.abs(v) end
          assert.is_true(s > 0, np[1] .. " has an all-zero gradient")
        end
      end)

      it("lowers the loss over 50 Adam steps on a fixed data set", function()
        local model = build(key)
        local x, labels = dataset()
        local step_fn = adam(model, 0.01)
        local first, last
        for step = 1, 50 do
          local loss = total_loss(model, x, labels)
          if step == 1 then first = loss:item() end
          last = loss:item()
          loss:backward()
          step_fn()
        end
        assert.is_true(last < 0.5 * first, string.format("loss %.4f -> %.4f", first, last))
      end)
    end)
  end

  it("ESMM: pCTCVR equals pCTR * pCVR and the losses are on ctr and ctcvr", function()
    local model = build("esmm")
    local out = model(dataset())
    local ctr, cvr, ctcvr = out.ctr.prob:values(), out.cvr.prob:values(), out.ctcvr.prob:values()
    for i = 1, B do check.assert_close(ctcvr[i], ctr[i] * cvr[i], 1e-6) end
    local spec = losses.default_spec(model)
    assert.are.same({ "ctr", "ctcvr" }, { spec[1].name, spec[2].name })
    assert.are.same({ "is_click", "is_pay" }, spec[2].label)
  end)

  it("PLE with one level computes exactly what CGC computes with the same weights", function()
    local cgc = build("cgc")
    mtl.seed(99)
    local ple = models.build("ple", { input = D, levels = 1, specific = 2, shared = 2, expert = { 8 }, tower = { 8 } })
    ple:load_state_dict(cgc:state_dict()) -- same parameter names: level1.*, tower_*
    local x = dataset()
    local a, b = cgc(x), ple(x)
    for _, t in ipairs({ "click", "pay" }) do
      check.assert_close(b[t].logits, a[t].logits, 0, t)
    end
  end)

  it("DBMTL wires relations along the configured DAG", function()
    mtl.seed(3)
    local model = models.build("dbmtl", { input = D, bottom = { 8 }, tower = { 6 },
      tasks = { { name = "pay", label = "is_pay", relations = { "cart" } },
                { name = "click", label = "is_click", relation = { 4 } },
                { name = "cart", label = "is_click", relations = { "click" }, relation = { 5 } } } })
    assert.are.same({ "click", "cart", "pay" }, { model.order[1].name, model.order[2].name, model.order[3].name })
    -- pay's logit reads concat(pay tower [6], cart relation [5])
    assert.are.same({ 1, 11 }, model.logit_pay.weight:shape())
    -- cart's relation MLP reads concat(cart tower [6], click relation [4])
    assert.are.same({ 5, 10 }, model.relation_cart.fc1.weight:shape())
    -- the click loss alone sends no gradient into cart's or pay's own layers
    local x = dataset()
    local out = model(x)
    mtl.sum(out.click.logits):backward()
    assert.is_nil(model.tower_pay.fc1.weight.grad)
    assert.is_nil(model.relation_cart.fc1.weight.grad)
    assert.is_not_nil(model.relation_click.fc1.weight.grad) -- click's logit reads its relation output
    -- pay's loss reaches click's tower through the relation chain
    model:zero_grad()
    out = model(x)
    mtl.sum(out.pay.logits):backward()
    assert.is_not_nil(model.tower_click.fc1.weight.grad)
    check.assert_error("dbmtl: the task relations form a cycle: a -> b -> a", function()
      models.build("dbmtl", { input = D, tasks = { { name = "a", relations = { "b" } }, { name = "b", relations = { "a" } } } })
    end)
    check.assert_error("dbmtl: 'tasks.1.relations.1': no task is named 'zz'", function()
      models.build("dbmtl", { input = D, tasks = { { name = "a", relations = { "zz" } } } })
    end)
  end)

  it("a task-space mask removes out-of-space samples from the loss and its gradient", function()
    local x, labels = dataset()
    local in_space = {}
    for i = 1, B do in_space[i] = (i % 2 == 0) and 1 or 0 end
    labels.space = mtl.tensor(in_space)
    local function run(flip)
      local l = {}
      for k, v in pairs(labels) do l[k] = v end
      if flip then -- change labels outside the space only
        local y = l.is_pay:values()
        for i = 1, B do if in_space[i] == 0 then y[i] = 1 - y[i] end end
        l.is_pay = mtl.tensor(y)
      end
      local model = build("mmoe")
      local spec = losses.default_spec(model)
      spec[2].mask = "space"
      local total = losses.compute(model(x), l, spec)
      total:backward()
      return total:item(), model.experts.weight1.grad:values()
    end
    local l1, g1 = run(false)
    local l2, g2 = run(true)
    assert.are.equal(l1, l2)
    check.assert_close(g2, g1, 0)
  end)

  it("fused and unfused experts agree to float tolerance, in values and gradients", function()
    mtl.seed(5)
    local ex = nn.Experts{ n = 3, input = D, hidden = { 16, 8 } }
    local x = dataset()
    ex.fused = true
    local a = ex(x)
    mtl.sum(a * a):backward()
    local ga = ex.weight2.grad:values()
    ex:zero_grad()
    ex.fused = false
    local b = ex(x)
    mtl.sum(b * b):backward()
    check.assert_close(b, a, 1e-5)
    check.assert_close(ex.weight2.grad:values(), ga, 1e-4)
  end)

  it("soft sharing adds an L2 penalty between the tasks' bottoms", function()
    local model = build("shared_bottom_soft")
    local p = model:aux_loss():item()
    local e = 0
    for l = 1, 2 do
      local a, b = model.bottom_click["fc" .. l].weight:values(), model.bottom_pay["fc" .. l].weight:values()
      for i = 1, #a do e = e + (a[i] - b[i]) ^ 2 end
    end
    check.assert_close(p, 1e-2 * e, 1e-5)
    assert.is_nil(build("shared_bottom"):aux_loss())
  end)

  it("rejects an unknown model name", function()
    check.assert_error("mtl.models: unknown model 'mmoee'", models.build, "mmoee", {})
  end)
end)
