-- Row-sharded tables (mtl.shard) in a loop on mtl.parallel
-- (spec/scripts/dist/sharded.lua): at 1, 2 and 3 ranks a fixed, a hashed and
-- a dynamic table sharded by row train to the single process's (plain
-- tables) losses, parameters and rows within 1e-5 (relative to each list's
-- largest value), the dynamic table admits and evicts exactly its ids, and a
-- checkpoint of 2 or 3 ranks loads at 1, 2 and 3 with the same lookups, bit
-- for bit.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"

local numbers, relative = training.numbers, training.relative
local SCRIPT = "spec/scripts/dist/sharded.lua"


local function alone(args)
  return shell.run(string.format("cd %s && %s %s %s 2>&1", shell.quote(shell.root), shell.quote(shell.launcher),
    SCRIPT, args))
end

local function close_to(want, got, what)
  for key, values in pairs(want) do
    if key:match("^ids") then
      assert.are.same(values, got[key], what .. ": " .. key)
    else
      local d = relative(numbers(values), numbers(got[key] or {}))
      assert(d <= 1e-5, string.format("%s: %s differs by %.3g", what, key, d))
    end
  end
end

describe("row-sharded fixed, hashed and dynamic tables", function()
  local want = mpirun.by_rank(alone("train plain"))[0]
  local dirs = {}

  it("trains in one process as the plain tables do", function()
    assert(want and want["probe.dynamic"], "no output")
    close_to(want, mpirun.by_rank(alone("train sharded"))[0], "1 rank")
  end)

  for _, n in ipairs({ 2, 3 }) do
    it(string.format("at %d ranks trains as one process and writes a shard per rank", n), function()
      dirs[n] = shell.tmpdir()
      local status, stdout, stderr = mpirun.run(n, string.format("%s train sharded %s", SCRIPT, dirs[n]))
      assert(status == 0, stderr)
      local got = mpirun.by_rank(stdout)
      for r = 0, n - 1 do
        close_to(want, got[r], string.format("%d ranks, rank %d", n, r))
        if r > 0 then for key, values in pairs(got[0]) do assert.are.same(values, got[r][key], key) end end
      end
      for r = 0, n - 1 do assert.truthy(io.open(string.format("%s/rank-%d.ckpt", dirs[n], r)), "shard " .. r) end
      dirs[n .. "out"] = got[0]
    end)
  end

  for _, case in ipairs({ { 2, 1 }, { 2, 3 }, { 3, 2 }, { 3, 1 } }) do
    local from, to = case[1], case[2]
    it(string.format("loads a checkpoint of %d ranks at %d with the same lookups", from, to), function()
      local args = string.format("load %s %d", dirs[from], from)
      local got
      if to == 1 then
        got = mpirun.by_rank(alone(args))
      else
        local status, stdout, stderr = mpirun.run(to, SCRIPT .. " " .. args)
        assert(status == 0, stderr)
        got = mpirun.by_rank(stdout)
      end
      for r = 0, to - 1 do
        for _, t in ipairs({ "fixed", "hashed", "dynamic" }) do
          assert.are.same(dirs[from .. "out"]["probe." .. t], got[r]["probe." .. t], string.format("rank %d, %s", r, t))
        end
        assert(got[r]["after.fixed"], "no lookups after training on")
      end
    end)
  end

  it("stops every rank naming the rank and the step of an id out of range", function()
    local status, _, stderr = mpirun.run(2, SCRIPT .. " badid", { limit = 60 })
    assert.are_not.equal(0, status)
    assert.truthy(stderr:find("mtl.shard: table fixed (rank 1, step 7): id 10 out of range for a fixed table of 10 rows "
      .. "(valid ids: 0..9)", 1, true), stderr)
  end)

  it("trains on after resharding as at the checkpoint's ranks", function()
    local base = mpirun.by_rank(alone(string.format("load %s 2", dirs[2])))[0]
    local status, stdout, stderr = mpirun.run(3, string.format("%s load %s 2", SCRIPT, dirs[2]))
    assert(status == 0, stderr)
    local got = mpirun.by_rank(stdout)[0]
    assert.are.same(base.ids32, got.ids32)
    for _, t in ipairs({ "fixed", "hashed", "dynamic" }) do
      local d = relative(numbers(base["after." .. t]), numbers(got["after." .. t]))
      assert(d <= 1e-5, string.format("%s differs by %.3g", t, d))
    end
    for k, dir in pairs(dirs) do if type(dir) == "string" then shell.run("rm -rf " .. shell.quote(dir)) end end
  end)
end)
