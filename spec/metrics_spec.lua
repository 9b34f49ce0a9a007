-- Metrics against independent Lua computations: AUC by counting pairs
-- (a tie counts one half), GAUC per group, log loss and calibration by hand.
local mtl = require "mtl"
local check = require "helpers.check"

local function pair_auc(p, y, mask)
  local wins, pairs_ = 0, 0
  for i = 1, #p do
    if (not mask or mask[i] > 0.5) and y[i] > 0.5 then
      for j = 1, #p do
        if (not mask or mask[j] > 0.5) and y[j] <= 0.5 then
          pairs_ = pairs_ + 1
          if p[i] > p[j] then wins = wins + 1 elseif p[i] == p[j] then wins = wins + 0.5 end
        end
      end
    end
  end
  return wins / pairs_
end

-- scores quantized to a few levels so many ties occur
local function sample(n, seed)
  mtl.seed(seed)
  local p, y, g, m = {}, {}, {}, {}
  local u = mtl.rand(n):values()
  local v = mtl.rand(n):values()
  for i = 1, n do
    p[i] = math.floor(u[i] * 8) / 8
    y[i] = (v[i] < 0.3 + 0.4 * u[i]) and 1 or 0
    g[i] = (i * 7) % 5
    m[i] = (i % 3 == 0) and 0 or 1
  end
  return p, y, g, m
end

describe("mtl.metrics", function()
  it("auc matches pair counting with ties averaged, with and without a mask", function()
    for _, seed in ipairs({ 1, 2, 3 }) do
      local p, y, _, m = sample(300, seed)
      local tp, ty, tm = mtl.tensor(p), mtl.tensor(y), mtl.tensor(m)
      check.assert_close(mtl.metrics.auc(tp, ty), pair_auc(p, y), 1e-12)
      check.assert_close(mtl.metrics.auc(tp, ty, tm), pair_auc(p, y, m), 1e-12)
    end
  end)

  it("auc of a perfect, an inverted and a constant ranking", function()
    local y = mtl.tensor{ 0, 0, 1, 1 }
    assert.are.equal(1, mtl.metrics.auc(mtl.tensor{ 0.1, 0.2, 0.3, 0.4 }, y))
    assert.are.equal(0, mtl.metrics.auc(mtl.tensor{ 0.4, 0.3, 0.2, 0.1 }, y))
    assert.are.equal(0.5, mtl.metrics.auc(mtl.tensor{ 0.5, 0.5, 0.5, 0.5 }, y))
  end)

  it("auc is NaN when only one class is present", function()
    local a = mtl.metrics.auc(mtl.tensor{ 0.1, 0.2 }, mtl.tensor{ 1, 1 })
    assert.is_true(a ~= a)
  end)

  it("gauc reduces per-group AUCs three ways and skips single-class groups", function()
    local p, y, g = sample(400, 7)
    -- group 4 made single-class: it must be skipped
    for i = 1, #p do if g[i] == 4 then y[i] = 1 end end
    local groups = {}
    for i = 1, #p do
      local k = g[i]
      groups[k] = groups[k] or { p = {}, y = {} }
      table.insert(groups[k].p, p[i])
      table.insert(groups[k].y, y[i])
    end
    local expect = { mean = { 0, 0 }, mean_by_sample_num = { 0, 0 }, mean_by_positive_num = { 0, 0 } }
    local used = 0
    for _, gr in pairs(groups) do
      local pos = 0
      for _, v in ipairs(gr.y) do pos = pos + v end
      if pos > 0 and pos < #gr.y then
        used = used + 1
        local a = pair_auc(gr.p, gr.y)
        for red, w in pairs({ mean = 1, mean_by_sample_num = #gr.y, mean_by_positive_num = pos }) do
          expect[red][1] = expect[red][1] + w * a
          expect[red][2] = expect[red][2] + w
        end
      end
    end
    for red, e in pairs(expect) do
      local v, n = mtl.metrics.gauc(mtl.tensor(p), mtl.tensor(y), mtl.tensor(g, "int64"), red)
      check.assert_close(v, e[1] / e[2], 1e-12, red)
      assert.are.equal(used, n)
      assert.are.equal(4, n)
    end
  end)

  it("logloss clips and averages; calibration is mean prediction over label rate", function()
    local p, y = { 0.2, 0.9, 0, 1 }, { 0, 1, 1, 0 }
    local e = 0
    for i = 1, 4 do
      local q = math.min(math.max(p[i], 1e-7), 1 - 1e-7)
      e = e + (y[i] == 1 and -math.log(q) or -math.log(1 - q))
    end
    check.assert_close(mtl.metrics.logloss(mtl.tensor(p), mtl.tensor(y)), e / 4, 1e-6)
    local pf = mtl.tensor(p):values() -- float32 values as stored
    check.assert_close(mtl.metrics.calibration(mtl.tensor(p), mtl.tensor(y)), (pf[1] + pf[2] + pf[3] + pf[4]) / 4 / 0.5, 1e-12)
    check.assert_close(mtl.metrics.logloss(mtl.tensor(p), mtl.tensor(y), mtl.tensor{ 1, 1, 0, 0 }),
      (-math.log(1 - pf[1]) - math.log(pf[2])) / 2, 1e-6)
  end)

  it("rejects bad arguments with clear messages", function()
    local p = mtl.tensor{ 0.1, 0.2 }
    check.assert_error("mtl.metrics.auc: the label must be a vector of 2 values like the prediction, got [3]",
      mtl.metrics.auc, p, mtl.tensor{ 1, 0, 1 })
    check.assert_error("mtl.metrics.auc: expected a tensor for the label (argument 2), got nil", mtl.metrics.auc, p, nil)
    check.assert_error("mtl.metrics.gauc: the group ids must be int64, got float32",
      mtl.metrics.gauc, p, mtl.tensor{ 0, 1 }, mtl.tensor{ 1, 2 })
    check.assert_error("mtl.metrics.gauc: unknown reduction 'median'",
      mtl.metrics.gauc, p, mtl.tensor{ 0, 1 }, mtl.tensor({ 1, 2 }, "int64"), "median")
    check.assert_error("mtl.metrics.auc: prediction 2 is NaN", mtl.metrics.auc, mtl.tensor{ 0.1, 0 / 0 }, mtl.tensor{ 0, 1 })
  end)
end)
