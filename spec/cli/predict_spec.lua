-- `mtl predict`: one output row per input row, probabilities in (0, 1),
-- rank_score = pCTR * pCVR * log(max(price, floor))^alpha with pCVR =
-- p_pay / p_click clipped (a click/pay model), pass-through columns, the
-- scoring expression; inputs without labels; the model directory of export.
local tiny = require "cli.tiny"
local json = require "cjson"
local rank = require "mtl.rank"

local function close(a, b, tol) return math.abs(a - b) <= (tol or 1e-6) * math.max(1, math.abs(b)) end

describe("mtl predict", function()
  local dir, input_rows
  setup(function()
    dir = tiny.setup('rank = { price = "price", alpha = 0.5 },')
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet", dir))
    assert(rc == 0, err)
    input_rows = tiny.write_data(dir .. "/score.csv", 137, 5)
  end)
  teardown(function() tiny.rm(dir) end)

  it("writes one row per input row with probabilities in (0,1) and rank scores by the formula", function()
    local rc, out, err = tiny.run(string.format(
      "predict %s/config.lua --checkpoint %s/run --input %s/score.csv --output %s/out.csv --pass-through user,price --json",
      dir, dir, dir, dir))
    assert.are.equal(0, rc, err)
    local res = json.decode(out)
    assert.are.equal(137, res.rows)
    local csv = tiny.read_csv(dir .. "/out.csv")
    assert.are.same({ "user", "price", "p_click", "p_pay", "rank_score" }, csv.header)
    assert.are.equal(137, #csv.rows)
    local low_price = 0
    for i, r in ipairs(csv.rows) do
      local src = input_rows[i]
      assert.are.equal(src.user, r.user) -- pass-through keeps input order
      assert.are.equal(tonumber(string.format("%.4f", src.price)), r.price)
      assert.is_true(r.p_click > 0 and r.p_click < 1)
      assert.is_true(r.p_pay > 0 and r.p_pay < 1)
      local pcvr = math.min(math.max(r.p_pay / r.p_click, 0), 1)
      local factor = math.log(math.max(r.price, math.exp(1))) ^ 0.5
      assert.is_true(close(r.rank_score, r.p_click * pcvr * factor, 1e-6), "row " .. i)
      if r.price <= 1 then
        low_price = low_price + 1
        assert.is_true(close(r.rank_score, r.p_click * pcvr, 1e-6)) -- the floor e: factor 1
      end
    end
    assert.is_true(low_price > 10)
  end)

  it("scores with an expression over outputs and columns (--score)", function()
    local rc, _, err = tiny.run(string.format(
      "predict %s/config.lua --checkpoint %s/run --input %s/score.csv --output %s/expr.csv --score %q",
      dir, dir, dir, dir, "click * pay * log(price) ^ 0.5 + 0 * a - min(b, 0)"))
    assert.are.equal(0, rc, err)
    local csv = tiny.read_csv(dir .. "/expr.csv")
    assert.are.same({ "p_click", "p_pay", "rank_score", "score" }, csv.header)
    for i, r in ipairs(csv.rows) do
      local src = input_rows[i]
      local price = tonumber(string.format("%.4f", src.price))
      local want = r.p_click * r.p_pay * math.log(price) ^ 0.5
      if want == want then -- log of a price < 1 is negative: NaN under ^0.5, written as nan
        assert.is_true(close(r.score, want, 1e-6), "row " .. i)
      else
        assert.are.equal("nan", tostring(r.score):lower():gsub("^%-", ""))
      end
    end
  end)

  it("reads inputs without label columns and with extra columns", function()
    local f = assert(io.open(dir .. "/nolabels.csv", "w"))
    f:write("extra,b,a,price,item,user\n", "x,0.9,0.8,10,4,1\n", "\n", "y,0.1,0.1,0.5,5,2\n")
    f:close()
    local rc, _, err = tiny.run(string.format(
      "predict %s/config.lua --checkpoint %s/run --input %s/nolabels.csv --output %s/nl.csv --pass-through extra",
      dir, dir, dir, dir))
    assert.are.equal(0, rc, err)
    local csv = tiny.read_csv(dir .. "/nl.csv")
    assert.are.equal(2, #csv.rows) -- the blank line is skipped, as the reader skips it
    assert.are.equal("x", csv.rows[1].extra)
    assert.are.equal("y", csv.rows[2].extra)
    assert.is_true(csv.rows[1].p_click > csv.rows[2].p_click) -- a + b > 1 clicks
  end)

  it("names a missing input column, pass-through column and option", function()
    local f = assert(io.open(dir .. "/bad.csv", "w"))
    f:write("a,b,price\n0.1,0.2,3\n")
    f:close()
    -- the arguments after --checkpoint (DIR is the data directory), the exit code, a part of stderr
    local cases = {
      { "--input DIR/bad.csv --output DIR/o.csv", 1, "mtl predict: predict: " .. dir .. "/bad.csv has no column 'user'" },
      { "--input DIR/score.csv --output DIR/o.csv --pass-through nope", 1, "has no column 'nope' to pass through" },
      { "--input DIR/score.csv", 2, "--output FILE is required" },
      { "--input DIR/none.csv --output x.csv", 2, "input file '" .. dir .. "/none.csv' does not exist" },
      { "--input DIR/score.csv --output DIR/o.csv --score 'click * * pay'", 1,
        "rank: expected an operand at character 9 of 'click * * pay'" },
    }
    for _, c in ipairs(cases) do
      local rc, _, err = tiny.run(string.format("predict %s/config.lua --checkpoint %s/run ", dir, dir) .. c[1]:gsub("DIR", dir))
      assert.are.equal(c[2], rc, c[1])
      assert.truthy(err:find(c[3], 1, true), err)
    end
  end)

  it("uses the formula's pCVR rule by model: ESMM's cvr output is pCVR itself", function()
    -- rank.new decides; predict passes ESMM's tasks as direct
    local s = rank.new({ price = "price" }, { tasks = { "ctr", "cvr" }, outputs = { "ctr", "cvr", "ctcvr" }, direct = { cvr = true } })
    assert.are.equal("direct", s.cvr_mode)
    local env = s:score({ ctr = { 0.5 }, cvr = { 0.9 }, price = { 100 } }, 1)
    assert.is_true(close(env.rank_score[1], 0.5 * 0.9 * math.log(100)))
    local r = rank.new({}, { tasks = { "click", "pay" } })
    assert.are.equal("ratio", r.cvr_mode)
    env = r:score({ click = { 0.2, 0.1, 0 }, pay = { 0.05, 0.3, 0.1 } }, 3)
    assert.is_true(close(env.pcvr[1], 0.25))
    assert.are.equal(1, env.pcvr[2]) -- clipped: p_pay > p_click
    assert.are.equal(0, env.pcvr[3]) -- p_click = 0
    assert.is_true(close(env.rank_score[1], 0.05))
  end)
end)
