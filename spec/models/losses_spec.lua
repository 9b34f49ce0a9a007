-- mtl.losses against values computed here by hand, in double precision, from
-- the logits and labels: per-task BCE with sample weights, task-space masks
-- normalized by their count (PLE paper), fixed and dynamic (PLE) task
-- weights, uncertainty weighting (value and finite-difference gradient), and
-- ESMM's CTCVR label as a product of columns.
local mtl = require "mtl"
local losses = require "mtl.losses"
local models = require "mtl.models"
local check = require "helpers.check"

local function sigmoid(x) return 1 / (1 + math.exp(-x)) end
-- -(y log p + (1 - y) log(1 - p)) with p = sigmoid(x)
local function bce(x, y)
  local p = sigmoid(x)
  return -(y * math.log(p) + (1 - y) * math.log(1 - p))
end

-- Six rows, two tasks. Logits are fixed numbers, so every loss below is a
-- short sum written out in the test.
local click_logits = { 0.5, -1.0, 2.0, 0.0, -0.3, 1.2 }
local pay_logits = { -2.0, 0.7, 1.5, -0.4, 0.1, -1.1 }
local is_click = { 1, 0, 1, 0, 1, 1 }
local is_pay = { 0, 0, 1, 0, 0, 1 }
local sample_w = { 1.0, 2.0, 0.5, 1.0, 3.0, 0.25 }

-- A model output as models return it: {task = {logits, prob}}; the logits
-- are leaves so gradients can be read.
local function outputs()
  local c = mtl.tensor(click_logits):requires_grad(true)
  local p = mtl.tensor(pay_logits):requires_grad(true)
  return { click = { logits = c, prob = mtl.sigmoid(c) }, pay = { logits = p, prob = mtl.sigmoid(p) } }, c, p
end

local function labels()
  return { is_click = mtl.tensor(is_click), is_pay = mtl.tensor(is_pay), w = mtl.tensor(sample_w) }
end

-- mean over rows of bce(logits, y) * (weight or 1), over the rows where mask is 1
local function expected_bce(logits, y, weight, mask)
  local total, count = 0, 0
  for i = 1, #logits do
    if not mask or mask[i] == 1 then
      total = total + bce(logits[i], y[i]) * (weight and weight[i] or 1)
      count = count + 1
    end
  end
  return count == 0 and 0 or total / count
end

local function spec2(extra_click, extra_pay)
  local a = { name = "click", label = "is_click" }
  local b = { name = "pay", label = "is_pay" }
  for k, v in pairs(extra_click or {}) do a[k] = v end
  for k, v in pairs(extra_pay or {}) do b[k] = v end
  return { a, b }
end

describe("losses", function()
  it("sums per-task BCE on logits, each a mean over the batch", function()
    local out = outputs()
    local total, per = losses.compute(out, labels(), spec2())
    local lc, lp = expected_bce(click_logits, is_click), expected_bce(pay_logits, is_pay)
    check.assert_close(per.click, lc, 1e-6, "click")
    check.assert_close(per.pay, lp, 1e-6, "pay")
    check.assert_close(total, lc + lp, 1e-6, "total")
    -- first row by hand: x = 0.5, y = 1: -log(sigmoid(0.5)) = log(1 + e^-0.5)
    check.assert_close(bce(0.5, 1), math.log(1 + math.exp(-0.5)), 1e-12)
  end)

  it("BCE on probabilities (on = 'prob') gives the same loss as on logits", function()
    local out = outputs()
    local total = losses.compute(out, labels(), spec2({ on = "prob" }, { on = "prob" }))
    check.assert_close(total, expected_bce(click_logits, is_click) + expected_bce(pay_logits, is_pay), 1e-5)
  end)

  it("sample weights scale each row's loss; the mean still divides by the row count", function()
    local out = outputs()
    local _, per = losses.compute(out, labels(), spec2({ sample_weight = "w" }))
    local by_hand = 0
    for i = 1, 6 do by_hand = by_hand + sample_w[i] * bce(click_logits[i], is_click[i]) end
    check.assert_close(per.click, by_hand / 6, 1e-6)
    check.assert_close(per.pay, expected_bce(pay_logits, is_pay), 1e-6) -- unweighted task untouched
  end)

  it("a task-space mask averages over the rows in the space only (1/sum delta)", function()
    -- the PLE paper: L_k = sum_i delta_k^i loss(y_i) / sum_i delta_k^i; here the
    -- pay task's space is the clicked rows (delta = is_click, 4 of 6 rows)
    local out, _, p = outputs()
    local total, per = losses.compute(out, labels(), spec2(nil, { mask = "is_click" }))
    local in_space = { 1, 3, 5, 6 }
    local by_hand = 0
    for _, i in ipairs(in_space) do by_hand = by_hand + bce(pay_logits[i], is_pay[i]) end
    check.assert_close(per.pay, by_hand / 4, 1e-6)
    check.assert_close(per.pay, expected_bce(pay_logits, is_pay, nil, is_click), 1e-6)
    -- gradient: (sigmoid(x_i) - y_i) / 4 inside the space, exactly 0 outside
    total:backward()
    local g = p.grad:values()
    for i = 1, 6 do
      local want = is_click[i] == 1 and (sigmoid(pay_logits[i]) - is_pay[i]) / 4 or 0
      check.assert_close(g[i], want, 1e-6, "d loss / d pay logit " .. i)
    end
    assert.are.equal(0, g[2])
    assert.are.equal(0, g[4])
  end)

  it("a mask with sample weights: sum delta w loss / sum delta; an empty space gives 0", function()
    local out = outputs()
    local l = labels()
    local _, per = losses.compute(out, l, spec2(nil, { mask = "is_click", sample_weight = "w" }))
    local by_hand = 0
    for _, i in ipairs({ 1, 3, 5, 6 }) do by_hand = by_hand + sample_w[i] * bce(pay_logits[i], is_pay[i]) end
    check.assert_close(per.pay, by_hand / 4, 1e-6)
    l.none = mtl.zeros(6)
    local _, per2 = losses.compute(outputs(), l, spec2(nil, { mask = "none" }))
    assert.are.equal(0, per2.pay:item())
  end)

  it("fixed task weights: total = sum_k w_k L_k", function()
    local out = outputs()
    local total = losses.compute(out, labels(), spec2({ weight = 2 }, { weight = 0.25 }))
    local want = 2 * expected_bce(click_logits, is_click) + 0.25 * expected_bce(pay_logits, is_pay)
    check.assert_close(total, want, 1e-6)
  end)

  it("dynamic weights: w_k(t) = w_k0 * gamma_k^t at step t (step 0 when not given)", function()
    local spec = spec2({ weight = 1, gamma = 0.9 }, { weight = 0.5, gamma = 1.1 })
    local lc, lp = expected_bce(click_logits, is_click), expected_bce(pay_logits, is_pay)
    for _, t in ipairs({ 0, 1, 10, 100 }) do
      local total, per = losses.compute(outputs(), labels(), spec, { step = t })
      check.assert_close(total, 0.9 ^ t * lc + 0.5 * 1.1 ^ t * lp, 1e-5, "step " .. t)
      check.assert_close(per.click, lc, 1e-6) -- per-task losses are unweighted
    end
    local total = losses.compute(outputs(), labels(), spec)
    check.assert_close(total, lc + 0.5 * lp, 1e-6, "no step given")
    -- the weight scales the gradient too: d total / d click logit_i = 0.9^10 (s_i - y_i) / 6
    local out, c = outputs()
    losses.compute(out, labels(), spec, { step = 10 }):backward()
    local g = c.grad:values()
    for i = 1, 6 do
      check.assert_close(g[i], 0.9 ^ 10 * (sigmoid(click_logits[i]) - is_click[i]) / 6, 1e-5)
    end
  end)

  describe("uncertainty weighting", function()
    -- Kendall, Gal & Cipolla (CVPR 2018): total = sum_k exp(-s_k) L_k + s_k / 2
    local s = { 0.3, -0.7 }
    local function weighted(u)
      mtl.no_grad(function() u.log_var:copy(mtl.tensor(s)) end)
      return losses.compute(outputs(), labels(), spec2(), { uncertainty = u })
    end

    it("computes sum_k exp(-s_k) L_k + s_k / 2", function()
      local u = losses.Uncertainty(2)
      assert.are.same({ 2 }, u.log_var:shape())
      assert.are.same({ 0, 0 }, u.log_var:values()) -- starts at s = 0: weights 1, penalty 0
      local lc, lp = expected_bce(click_logits, is_click), expected_bce(pay_logits, is_pay)
      check.assert_close(losses.compute(outputs(), labels(), spec2(), { uncertainty = u }), lc + lp, 1e-6)
      local want = math.exp(-s[1]) * lc + s[1] / 2 + math.exp(-s[2]) * lp + s[2] / 2
      check.assert_close(weighted(u), want, 1e-6)
    end)

    it("its gradient to each log-variance, -exp(-s_k) L_k + 1/2, matches finite differences", function()
      local u = losses.Uncertainty(2)
      local total = weighted(u)
      total:backward()
      local g = u.log_var.grad:values()
      local L = { expected_bce(click_logits, is_click), expected_bce(pay_logits, is_pay) }
      local eps = 1e-2
      for k = 1, 2 do
        check.assert_close(g[k], -math.exp(-s[k]) * L[k] + 0.5, 1e-5, "analytic, task " .. k)
        local s0 = s[k]
        s[k] = s0 + eps
        local up = weighted(u):item()
        s[k] = s0 - eps
        local down = weighted(u):item()
        s[k] = s0
        check.assert_close(g[k], (up - down) / (2 * eps), 1e-3, "finite difference, task " .. k)
      end
    end)

    it("gradient descent on s reaches log(2 L_k), the optimum for fixed L_k", function()
      -- d/ds (exp(-s) L + s/2) = 0  <=>  s = log(2 L)
      local u = losses.Uncertainty(2)
      local L = { expected_bce(click_logits, is_click), expected_bce(pay_logits, is_pay) }
      s = { 0, 0 }
      for _ = 1, 2000 do
        u:zero_grad()
        weighted(u):backward()
        local g = u.log_var.grad:values()
        for k = 1, 2 do s[k] = s[k] - 0.1 * g[k] end
      end
      for k = 1, 2 do check.assert_close(s[k], math.log(2 * L[k]), 1e-3, "task " .. k) end
    end)
  end)

  describe("ESMM", function()
    it("the CTCVR label is the product of the click and pay columns", function()
      local y = losses.label_of(labels(), { "is_click", "is_pay" }):values()
      for i = 1, 6 do assert.are.equal(is_click[i] * is_pay[i], y[i]) end
      -- pay never happens without a click here, so click AND pay = pay; check
      -- a row where pay = 1 and click = 0 too
      local l = { a = mtl.tensor({ 0, 1, 1 }), b = mtl.tensor({ 1, 0, 1 }) }
      assert.are.same({ 0, 0, 1 }, losses.label_of(l, { "a", "b" }):values())
    end)

    it("its default losses are BCE(pCTR, click) + BCE(pCTR * pCVR, click * pay) over all rows", function()
      mtl.seed(4)
      local model = models.build("esmm", { input = 5, tower = { 4 } })
      local x = mtl.randn(6, 5)
      local out = model(x)
      local total, per = losses.compute(out, labels(), losses.default_spec(model))
      local pctr, pcvr = out.ctr.prob:values(), out.cvr.prob:values()
      local lctr, lctcvr = 0, 0
      for i = 1, 6 do
        local q, y = pctr[i] * pcvr[i], is_click[i] * is_pay[i]
        lctr = lctr - (is_click[i] * math.log(pctr[i]) + (1 - is_click[i]) * math.log(1 - pctr[i]))
        lctcvr = lctcvr - (y * math.log(q) + (1 - y) * math.log(1 - q))
      end
      check.assert_close(per.ctr, lctr / 6, 1e-5)
      check.assert_close(per.ctcvr, lctcvr / 6, 1e-5)
      check.assert_close(total, (lctr + lctcvr) / 6, 1e-5)
      assert.is_nil(per.cvr) -- pCVR has no loss of its own
    end)
  end)

  it("default_spec takes weight, gamma, mask and sample_weight from the model's tasks", function()
    mtl.seed(2)
    local model = models.build("mmoe", { input = 4, experts = 2, expert = { 4 }, tower = { 4 },
      tasks = { { name = "click", label = "is_click", weight = 2, gamma = 0.5 },
                { name = "pay", label = "is_pay", mask = "is_click", sample_weight = "w" } } })
    local spec = losses.default_spec(model)
    assert.are.same({ name = "click", output = "click", label = "is_click", on = "logits", weight = 2, gamma = 0.5 }, spec[1])
    assert.are.same({ name = "pay", output = "pay", label = "is_pay", on = "logits", mask = "is_click",
                      sample_weight = "w" }, spec[2])
  end)

  it("names a missing column or output in its error", function()
    check.assert_error("losses: label column 'is_cart' is not in the batch", losses.compute, outputs(), labels(),
      { { name = "click", label = "is_cart" } })
    check.assert_error("losses: mask column 'space' is not in the batch", losses.compute, outputs(), labels(),
      { { name = "click", label = "is_click", mask = "space" } })
    check.assert_error("losses: the model has no output 'cart'", losses.compute, outputs(), labels(),
      { { name = "cart", label = "is_click" } })
  end)
end)
