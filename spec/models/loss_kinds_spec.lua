-- The loss kinds of EasyRec's towers (lua/mtl/loss_kinds.lua), each against
-- a value computed here in double precision from the same logits and labels,
-- and by finite differences; EasyRec's max_f1 against a direct count.
local mtl = require "mtl"
local losses = require "mtl.losses"
local check = require "helpers.check"

local logits = { 0.5, -1.0, 2.0, 0.0, -0.3, 1.2 }
local y = { 1, 0, 1, 0, 1, 1 }
local session = { 7, 7, 9, 9, 9, 7 }
local two = { { 0.1, 0.5 }, { 0.3, -1.0 }, { -0.2, 2.0 }, { 0.4, 0.0 }, { 0.0, -0.3 }, { -1.0, 1.2 } }

local function softplus(x) return math.log(1 + math.exp(x)) end
local function sigmoid(x) return 1 / (1 + math.exp(-x)) end

local function run(t, out)
  local labels = { y = mtl.tensor(y), s = mtl.tensor(session, "int64"), z = mtl.tensor { 1, 1, 0, 1, 0, 1 } }
  t.output, t.label, t.name = t.output or "a", "y", t.name or "a"
  return (losses.compute(out, labels, { t }))
end

local function single() local l = mtl.tensor(logits); return { a = { logits = l, prob = mtl.sigmoid(l) } } end

describe("loss kinds", function()
  it("pairwise: mean over pairs y_i > y_j of log(1 + exp(-((l_i - l_j) / T - margin)))", function()
    local function want(same_session, margin, T)
      local s, n = 0, 0
      for i = 1, 6 do for j = 1, 6 do
        if y[i] > y[j] and (not same_session or session[i] == session[j]) then
          s, n = s + softplus(-((logits[i] - logits[j]) / T - margin)), n + 1
        end
      end end
      return s / n
    end
    check.assert_close(run({ type = "pairwise" }, single()), want(false, 0, 1), 1e-5)
    check.assert_close(run({ type = "pairwise", session = "s", margin = 0.5, temperature = 2 }, single()), want(true, 0.5, 2), 1e-5)
    check.gradcheck(function(l) return run({ type = "pairwise", session = "s" }, { a = { logits = l } }) end, { mtl.tensor(logits) })
  end)

  it("f1_reweighted: negatives weighted tp / (b^2 n_pos + n_neg - tn)", function()
    local tp, npos = 0, 0
    for i = 1, 6 do tp, npos = tp + sigmoid(logits[i]), npos + y[i] end
    local wneg = tp / (2 * npos + (6 - npos) - (6 - tp) + 1e-8)
    local s = 0
    for i = 1, 6 do
      local p = sigmoid(logits[i])
      s = s + (y[i] == 1 and 1 or wneg) * -(y[i] * math.log(p) + (1 - y[i]) * math.log(1 - p))
    end
    check.assert_close(run({ type = "f1_reweighted", beta_square = 2 }, single()), s / 6, 1e-5)
    check.gradcheck(function(l) return run({ type = "f1_reweighted" }, { a = { logits = l } }) end, { mtl.tensor(logits) })
  end)

  it("softmax and jrc: 2-class logits, cross-entropy and the session-wise generative loss", function()
    local function lsm(i) -- log softmax of row i's two logits
      local m = math.max(two[i][1], two[i][2])
      local z = m + math.log(math.exp(two[i][1] - m) + math.exp(two[i][2] - m))
      return two[i][1] - z, two[i][2] - z
    end
    local ce = 0
    for i = 1, 6 do local a, b = lsm(i); ce = ce - (y[i] == 1 and b or a) end
    ce = ce / 6
    local out = { a = { logits = mtl.tensor(two) } }
    check.assert_close(run({ type = "softmax" }, out), ce, 1e-5)
    local ge = 0
    for j = 1, 6 do
      local term, size = 0, 0
      for k = 1, 2 do
        local zmax, zsum = -math.huge, 0
        for i = 1, 6 do if session[i] == session[j] then zmax = math.max(zmax, two[i][k]) end end
        for i = 1, 6 do if session[i] == session[j] then zsum = zsum + math.exp(two[i][k] - zmax) end end
        for i = 1, 6 do
          local of_class = (k == 2 and y[i] == 1) or (k == 1 and y[i] == 0)
          if session[i] == session[j] and of_class then term = term - (two[i][k] - zmax - math.log(zsum)) end
        end
      end
      for i = 1, 6 do if session[i] == session[j] then size = size + 1 end end
      ge = ge + term / size
    end
    ge = ge / 6
    check.assert_close(run({ type = "jrc", session = "s", alpha = 0.3 }, out), 0.3 * ce + 0.7 * ge, 1e-5)
    check.gradcheck(function(l) return run({ type = "jrc", session = "s" }, { a = { logits = l } }) end, { mtl.tensor(two) })
    check.assert_error("losses: loss 'a' (jrc) needs 2-class logits [B, 2] (a task with classes = 2), got [6]",
      run, { type = "jrc", session = "s" }, single())
  end)

  it("order_calibrate: mean(relu(p_t - p_r)) summed over the relations", function()
    local other = { -0.5, 0.2, 1.0, 0.3, -1.5, 2.0 }
    local out = single()
    local o = mtl.tensor(other)
    out.b = { logits = o, prob = mtl.sigmoid(o) }
    local s = 0
    for i = 1, 6 do s = s + math.max(sigmoid(logits[i]) - sigmoid(other[i]), 0) end
    check.assert_close(run({ type = "order_calibrate", relations = { "b" } }, out), s / 6, 1e-6)
    check.assert_close(run({ type = "order_calibrate" }, out), 0, 0)
  end)

  it("bce and pairwise weigh rows by the mask or sample weights", function()
    local s, n = 0, 0
    local z = { 1, 1, 0, 1, 0, 1 }
    for i = 1, 6 do for j = 1, 6 do
      if y[i] > y[j] and z[i] == 1 then s, n = s + softplus(-(logits[i] - logits[j])), n + 1 end
    end end
    check.assert_close(run({ type = "pairwise", mask = "z" }, single()), s / n, 1e-5)
  end)
end)

describe("mtl.metrics.max_f1", function()
  it("is the best F1 of pred > threshold over EasyRec's 200 thresholds", function()
    local p = { 0.9, 0.1, 0.8, 0.35, 0.6, 0.2, 0.55, 0.05 }
    local t = { 1, 0, 1, 1, 0, 0, 1, 0 }
    local best = 0
    local ths = { -1e-7 }
    for k = 1, 198 do ths[#ths + 1] = k / 199 end
    ths[#ths + 1] = 1 + 1e-7
    for _, th in ipairs(ths) do
      local tp, fp, fn = 0, 0, 0
      for i = 1, #p do
        if p[i] > th then if t[i] == 1 then tp = tp + 1 else fp = fp + 1 end elseif t[i] == 1 then fn = fn + 1 end
      end
      local prec = tp + fp > 0 and tp / (tp + fp) or 0
      local rec = tp / (tp + fn)
      best = math.max(best, 2 * prec * rec / (prec + rec + 1e-12))
    end
    check.assert_close(mtl.metrics.max_f1(mtl.tensor(p), mtl.tensor(t)), best, 1e-9)
    check.assert_close(mtl.metrics.max_f1(mtl.tensor(p), mtl.tensor(t), mtl.tensor { 1, 1, 1, 1, 0, 0, 0, 0 }), 1, 1e-9)
  end)
end)
