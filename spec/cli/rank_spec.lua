-- mtl.rank: the ranking formula, the price rule and the expression grammar
-- (values and error messages, table-driven).
local rank = require "mtl.rank"

local E = math.exp(1)
local function close(a, b) return math.abs(a - b) <= 1e-12 * math.max(1, math.abs(b)) end

describe("mtl.rank", function()
  it("computes pCTR * pCVR * log(max(price, floor))^alpha", function()
    local cases = {
      -- pctr, pcvr, price, alpha, floor, expected
      { 0.5, 0.2, 100, 1, nil, 0.1 * math.log(100) },
      { 0.5, 0.2, 100, 0.5, nil, 0.1 * math.log(100) ^ 0.5 },
      { 0.5, 0.2, 100, 0, nil, 0.1 },
      { 0.5, 0.2, 1, 1, nil, 0.1 },        -- at or below the floor e: factor 1
      { 0.5, 0.2, 0.3, 2, nil, 0.1 },
      { 0.5, 0.2, 0, 1, nil, 0.1 },
      { 0.5, 0.2, -5, 1, nil, 0.1 },
      { 0.5, 0.2, 0 / 0, 1, nil, 0.1 },    -- missing
      { 0.5, 0.2, nil, 1, nil, 0.1 },
      { 0.5, 0.2, E, 1, nil, 0.1 },
      { 0.5, 0.2, 3, 1, 10, 0.1 * math.log(10) }, -- a floor of 10
    }
    for i, c in ipairs(cases) do
      assert.is_true(close(rank.score(c[1], c[2], c[3], c[4], c[5]), c[6]), "case " .. i)
    end
  end)

  it("derives pCVR by ratio (clipped) or directly", function()
    assert.are.equal(0.25, rank.pcvr(0.05, 0.2, "ratio"))
    assert.are.equal(1, rank.pcvr(0.3, 0.2, "ratio"))
    assert.are.equal(0, rank.pcvr(0.3, 0, "ratio"))
    assert.are.equal(0.3, rank.pcvr(0.3, 0.2, "direct"))
  end)

  it("evaluates expressions with the usual precedence", function()
    local env = { ctr = { 0.5, 0.25 }, cvr = { 0.2, 0.4 }, price = { 100, 1 } }
    local known = { ctr = true, cvr = true, price = true }
    local cases = {
      { "ctr * cvr * log(price) ^ 0.5", { 0.1 * math.log(100) ^ 0.5, 0 } },
      { "-2 ^ 2", { -4, -4 } },
      { "2 ^ 3 ^ 2", { 512, 512 } },
      { "2 ^ -1", { 0.5, 0.5 } },
      { "1 + 2 * 3 - 4 / 2", { 5, 5 } },
      { "(1 + 2) * 3", { 9, 9 } },
      { "clip(ctr / cvr, 0, 1)", { 1, 0.625 } },
      { "max(ctr, cvr) - min(ctr, cvr)", { 0.3, 0.15 } },
      { "exp(log(price))", { 100, 1 } },
      { "sqrt(abs(-16)) + log1p(0)", { 4, 4 } },
      { " 1.5e2 + .5 ", { 150.5, 150.5 } },
    }
    for _, c in ipairs(cases) do
      local fn = rank.compile(c[1], known)
      for i = 1, 2 do assert.is_true(close(fn(env, i), c[2][i]), c[1] .. " row " .. i .. ": " .. fn(env, i)) end
    end
  end)

  it("reports expression errors with their position", function()
    local known = { ctr = true, cvr = true }
    local cases = {
      { "ctr * * cvr", "rank: expected an operand at character 7 of 'ctr * * cvr'" },
      { "ctr +", "rank: expected an operand at the end of 'ctr +'" },
      { "log(", "rank: expected an argument at the end of 'log('" },
      { "(ctr", "rank: expected ')' at the end of '(ctr'" },
      { "ctr cvr", "rank: expected an operator or the end of the expression at character 5 of 'ctr cvr'" },
      { "", "rank: expected an expression at character 1 of ''" },
      { "foo(1)", "rank: unknown function 'foo' at character 1 of 'foo(1)'" },
      { "min(1)", "rank: min takes 2 arguments, got 1 at character 1 of 'min(1)'" },
      { "log", "rank: 'log' is a function (call it as log(...)) at character 1 of 'log'" },
      { "ctr * price", "rank: unknown name 'price' at character 7 of 'ctr * price' (known: ctr, cvr)" },
      { "os.exit(1)", "rank: expected an operator or the end of the expression at character 3 of 'os.exit(1)'" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(rank.compile, c[1], known)
      assert.is_false(ok, c[1])
      assert.are.equal(c[2], err:sub(1, #c[2]))
    end
  end)

  it("checks the rank config", function()
    local info = { tasks = { "click", "pay" } }
    local bad = {
      { { ctr = "view" }, "rank: rank.ctr names 'view', which is not a model output" },
      { { cvr = "buy" }, "rank: rank.cvr names 'buy', which is not a model output" },
      { { cvr_mode = "odd" }, "rank: rank.cvr_mode must be 'auto', 'direct' or 'ratio', got 'odd'" },
      { { price_floor = 1 }, "rank: rank.price_floor must be a number > 1" },
      { { beta = 1 }, "rank: unknown key 'rank.beta'" },
      { { expression = "click * nope" }, "rank: unknown name 'nope'" },
    }
    for _, c in ipairs(bad) do
      local ok, err = pcall(rank.new, c[1], info)
      assert.is_false(ok)
      assert.are.equal(c[2], err:sub(1, #c[2]))
    end
    local s = rank.new({ price = "price", expression = "rank_score * 2 + pctr * pcvr * user_age" },
      { tasks = { "click", "pay" }, columns = { "price", "user_age" } })
    assert.are.same({ "price", "user_age" }, s.columns) -- what predict reads from the input text
    local env = s:score({ click = { 0.5 }, pay = { 0.1 }, price = { 50 }, user_age = { 3 } }, 1)
    assert.is_true(close(env.rank_score[1], 0.1 * math.log(50)))
    assert.is_true(close(env.score[1], 2 * env.rank_score[1] + 0.5 * 0.2 * 3))
    -- one task: pCVR = 1
    local one = rank.new({}, { tasks = { "click" } })
    assert.are.equal(0.7, one:score({ click = { 0.7 } }, 1).rank_score[1])
  end)
end)
