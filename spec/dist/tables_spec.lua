-- Replicated embedding tables of the three kinds in a loop written on
-- mtl.parallel (spec/scripts/dist/tables.lua): at 2 and 3 ranks every rank
-- holds the same tables (checked every 5 steps, rows and clocks included),
-- a dynamic table admits and evicts exactly the ids one process does, step by
-- step, and the rows and weights match one process's within 1e-5 (relative
-- to each tensor's largest value).
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"

local SCRIPT = "spec/scripts/dist/tables.lua"

local function numbers(list)
  local out = {}
  for i, v in ipairs(list) do out[i] = tonumber(v) end
  return out
end

-- max |a - b| / max |a| over two lists of numbers
local function relative(a, b)
  assert.are.equal(#a, #b)
  local d, m = 0, 1e-30
  for i = 1, #a do
    d = math.max(d, math.abs(a[i] - b[i]))
    m = math.max(m, math.abs(a[i]))
  end
  return d / m
end

describe("replicated fixed, hashed and dynamic tables", function()
  local single = shell.run(string.format("cd %s && %s %s 2>&1", shell.quote(shell.root), shell.quote(shell.launcher),
    SCRIPT))
  local want = mpirun.by_rank(single)[0]

  it("runs in one process, admitting and evicting ids", function()
    assert(want and want.ids40, single)
    assert.are.same({ "0", "1", "2" }, { want.ids5[1], want.ids5[2], want.ids5[3] })
    assert.are.equal("300", want.ids30[1]) -- ids 0..18 and 100..218 were evicted by then
  end)

  for _, n in ipairs({ 2, 3 }) do
    it(string.format("at %d ranks keeps every replica the same and admits and evicts as one process", n), function()
      local status, stdout, stderr = mpirun.run(n, SCRIPT)
      assert(status == 0, stderr)
      local got = mpirun.by_rank(stdout)
      for r = 0, n - 1 do
        local g = got[r]
        for s = 1, 40 do
          assert.are.same(want["ids" .. s], g["ids" .. s], string.format("rank %d, step %d", r, s))
        end
        for key, values in pairs(want) do
          if key:match("^rows%.") or key:match("^param%.") then
            local d = relative(numbers(values), numbers(g[key]))
            assert(d <= 1e-5, string.format("rank %d: %s differs by %.3g", r, key, d))
          elseif key:match("^rowids%.") then
            assert.are.same(values, g[key])
          end
        end
        if r > 0 then -- the replicas: the same bits on every rank
          for key, values in pairs(got[0]) do assert.are.same(values, g[key], key) end
        end
      end
    end)
  end

  it("stops every rank with the step when a replica differs", function()
    local status, stdout, stderr = mpirun.run(2, SCRIPT .. " corrupt", { limit = 60 })
    assert.are_not.equal(0, status)
    assert.is_nil(stdout:find("ids10", 1, true))
    local msg = "mtl.parallel: the ranks' replicated state differs at step 10: rank 1's parameter linear.weight "
      .. "differs from rank 0's (dense state is checked every train.check_every = 5 steps, tables too at checkpoints)"
    assert.truthy(stderr:find(msg, 1, true), stderr)
  end)
end)
