-- Learning-rate schedules: values at chosen steps against the formulas worked
-- out by hand (docs/optim.md), and option errors.
local mtl = require "mtl"
local check = require "helpers.check"

local assert_close, assert_error = check.assert_close, check.assert_error

describe("mtl.schedule", function()
  -- { schedule, { step, expected lr } ... }; expected values by hand
  local cases = {
    { "constant", mtl.schedule.constant { lr = 0.3 }, { { 0, 0.3 }, { 1000, 0.3 } } },
    { "exponential", mtl.schedule.exponential { lr = 1, decay_rate = 0.5, decay_steps = 10 },
      { { 0, 1 }, { 5, 0.5 ^ 0.5 }, { 10, 0.5 }, { 25, 0.5 ^ 2.5 } } },
    { "exponential staircase", mtl.schedule.exponential { lr = 1, decay_rate = 0.5, decay_steps = 10, staircase = true },
      { { 0, 1 }, { 9, 1 }, { 10, 0.5 }, { 29, 0.25 }, { 30, 0.125 } } },
    { "exponential min_lr", mtl.schedule.exponential { lr = 1, decay_rate = 0.1, decay_steps = 1, min_lr = 0.005 },
      { { 0, 1 }, { 1, 0.1 }, { 2, 0.01 }, { 3, 0.005 }, { 50, 0.005 } } },
    { "step", mtl.schedule.step { lr = 0.8, step_size = 3, gamma = 0.5 },
      { { 0, 0.8 }, { 2, 0.8 }, { 3, 0.4 }, { 6, 0.2 }, { 8, 0.2 } } },
    { "manual", mtl.schedule.manual { boundaries = { 10, 20 }, values = { 1, 0.5, 0.1 } },
      { { 0, 1 }, { 9, 1 }, { 10, 0.5 }, { 19, 0.5 }, { 20, 0.1 }, { 500, 0.1 } } },
    { "piecewise", mtl.schedule.piecewise { boundaries = { 1 }, values = { 0, 2 } }, { { 0, 0 }, { 1, 2 } } },
    { "linear_warmup", mtl.schedule.linear_warmup { lr = 1, warmup_steps = 4 },
      { { 0, 0 }, { 1, 0.25 }, { 3, 0.75 }, { 4, 1 }, { 100, 1 } } },
    { "linear_warmup start_lr", mtl.schedule.linear_warmup { lr = 1, warmup_steps = 2, start_lr = 0.5 },
      { { 0, 0.5 }, { 1, 0.75 }, { 2, 1 } } },
    -- cosine: after warmup, min + (lr - min) (1 + cos(pi p)) / 2
    { "cosine", mtl.schedule.cosine { lr = 1, total_steps = 10, warmup_steps = 2, min_lr = 0.1 },
      { { 0, 0 }, { 1, 0.5 }, { 2, 1 }, { 6, 0.55 }, { 10, 0.1 }, { 20, 0.1 },
        { 4, 0.1 + 0.9 * (1 + math.sqrt(0.5)) / 2 } } },
    { "cosine no warmup", mtl.schedule.cosine { lr = 2, total_steps = 4 },
      { { 0, 2 }, { 2, 1 }, { 4, 0 } } },
    { "polynomial", mtl.schedule.polynomial { lr = 1, decay_steps = 10, end_lr = 0.1, power = 2 },
      { { 0, 1 }, { 5, 0.9 * 0.25 + 0.1 }, { 10, 0.1 }, { 15, 0.1 } } },
    { "polynomial linear", mtl.schedule.polynomial { lr = 1, decay_steps = 4 },
      { { 0, 1 }, { 1, 0.75 }, { 4, 0 } } },
  }
  for _, c in ipairs(cases) do
    it("computes " .. c[1], function()
      for _, kv in ipairs(c[3]) do
        assert_close(c[2](kv[1]), kv[2], 1e-12, c[1] .. " at step " .. kv[1])
        assert.are.equal(c[2](kv[1]), c[2]:at(kv[1]))
      end
    end)
  end

  it("names itself", function()
    assert.are.equal("mtl.schedule.cosine", tostring(mtl.schedule.cosine { lr = 1, total_steps = 2 }))
  end)

  it("rejects bad options", function()
    local s = mtl.schedule
    local cases = {
      { s.constant, { lr = -1 }, "mtl.schedule.constant: lr must be a finite number >= 0, got -1" },
      { s.constant, {}, "mtl.schedule.constant: lr must be a finite number >= 0, got nil" },
      { s.constant, { lr = 1, rate = 2 }, "mtl.schedule.constant: unknown option 'rate'" },
      { s.constant, 0.1, "mtl.schedule.constant: expected a table of options, got number" },
      { s.exponential, { lr = 1, decay_rate = 0.5, decay_steps = 0 }, "mtl.schedule.exponential: decay_steps must be a finite number > 0, got 0" },
      { s.step, { lr = 1, step_size = 1.5 }, "mtl.schedule.step: step_size must be an integer, got 1.5" },
      { s.manual, { boundaries = { 1, 2 }, values = { 1, 2 } }, "mtl.schedule.manual: expected boundaries (n numbers) and values (n + 1 numbers), got 2 boundaries and 2 values" },
      { s.manual, { boundaries = { 2, 1 }, values = { 1, 2, 3 } }, "mtl.schedule.manual: boundaries must be increasing numbers, got 1 at 2" },
      { s.manual, { boundaries = { 1 }, values = { 1, -2 } }, "mtl.schedule.manual: values must be numbers >= 0, got -2 at 2" },
      { s.linear_warmup, { lr = 1, warmup_steps = 0 }, "mtl.schedule.linear_warmup: warmup_steps must be a finite number >= 1, got 0" },
      { s.cosine, { lr = 1, total_steps = 5, warmup_steps = 5 }, "mtl.schedule.cosine: total_steps must be > warmup_steps, got 5 and 5" },
      { s.polynomial, { lr = 1, decay_steps = 3, power = 0 }, "mtl.schedule.polynomial: power must be a finite number > 0, got 0" },
      { s.polynomial, { lr = 1 / 0, decay_steps = 3 }, "mtl.schedule.polynomial: lr must be a finite number >= 0, got inf" },
    }
    for _, c in ipairs(cases) do assert_error(c[3], c[1], c[2]) end
  end)
end)
