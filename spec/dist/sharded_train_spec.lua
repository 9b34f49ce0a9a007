-- `mtl train` with row-sharded tables (train.shard_min_mib = 0: both tables
-- of spec/dist/training.lua's configs sharded at 2 and 3 ranks): the planner
-- says what it chose and why, every rank writes its shard, the predictions
-- equal one process's within 1e-5, a 2-rank checkpoint predicts the same
-- file at 1 and 3 ranks (and `mtl export`'s model directory the same), and
-- --resume of a 2-rank checkpoint at 3 and at 1 rank finishes the run.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"

local single = mpirun.single

local function run(np, args)
  if np == 1 then return single(args) end
  return mpirun.run(np, args, { limit = 300 })
end

-- the numbers of a predictions file (header dropped)
local function numbers(text)
  local out = {}
  for v in text:gsub("^[^\n]*\n", ""):gmatch("[^,\n]+") do out[#out + 1] = tonumber(v) end
  return out
end

describe("mtl train with row-sharded tables", function()
  local dir = shell.tmpdir()
  training.write(dir, { train = ", shard_min_mib = 0, checkpoint_every = 10, keep_checkpoints = 20" })
  local cfg = shell.quote(dir .. "/mmoe.lua")
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  local function predict(np, checkpoint, name)
    local path = string.format("%s/%s.csv", dir, name)
    local s, out, err = run(np, string.format("predict %s --checkpoint %s --input %s --output %s --batch-size 7", cfg,
      shell.quote(checkpoint), shell.quote(dir .. "/test.csv"), shell.quote(path)))
    assert(s == 0, out .. err)
    return shell.read(path)
  end

  it("shards both tables at 2 ranks, saying why, and writes a shard per rank", function()
    local s, out, err = run(2, string.format("train %s --model-dir %s", cfg, shell.quote(dir .. "/two")))
    assert(s == 0, out .. err)
    assert.truthy(out:find("table user: 20 rows x 4, 0.0 MiB with adam state > shard_min_mib 0: sharded by row over 2 "
      .. "ranks (owner = id mod 2)", 1, true), out)
    assert.truthy(out:find("table item: 16 rows x 4, 0.0 MiB with adam state > shard_min_mib 0: sharded by row over 2 "
      .. "ranks (owner = bucket mod 2)", 1, true), out)
    local manifest = require("mtl").checkpoint.read_manifest(dir .. "/two/checkpoints", 98)
    assert.are.same({ user = "sharded", item = "sharded" }, manifest.tables)
    assert.are.same({ "step-98.ckpt", "step-98.rank-0.ckpt", "step-98.rank-1.ckpt" }, manifest.files)
  end)

  it("replicates every table with train.table_placement = \"replicated\" (EasyRec's mirroring strategies)", function()
    local s, out, err = run(2, string.format("train %s --model-dir %s --set train.table_placement=replicated --set train.steps=4",
      cfg, shell.quote(dir .. "/mirrored")))
    assert(s == 0, out .. err)
    assert.truthy(out:find('table user: 20 rows x 4, 0.0 MiB with adam state: train.table_placement = "replicated"', 1,
      true), out)
    assert.truthy(out:find('table item: 16 rows x 4, 0.0 MiB with adam state: train.table_placement = "replicated"', 1,
      true), out)
  end)

  it("predicts as one process within 1e-5, and the same file at 1, 2 and 3 ranks", function()
    local s, out, err = single(string.format("train %s --quiet --model-dir %s", cfg, shell.quote(dir .. "/one")))
    assert(s == 0, out .. err)
    local want = numbers(predict(1, dir .. "/one", "one"))
    local got = predict(1, dir .. "/two", "two1")
    local g = numbers(got)
    assert.are.equal(#want, #g)
    assert.are.equal(900, #g)
    local d = training.relative(want, g)
    assert(d <= 1e-5, string.format("predictions differ by %.3g", d))
    assert.are.equal(got, predict(2, dir .. "/two", "two2"))
    assert.are.equal(got, predict(3, dir .. "/two", "two3"))
  end)

  it("exports the 2-rank checkpoint, at 1 or 3 ranks, to a model directory that predicts the same", function()
    local args = string.format("export %s --checkpoint %s --out %%s", cfg, shell.quote(dir .. "/two"))
    local s, out, err = single(args:format(shell.quote(dir .. "/model")))
    assert(s == 0, out .. err)
    assert.are.equal(predict(1, dir .. "/two", "a"), predict(1, dir .. "/model", "b"))
    s, out, err = run(3, args:format(shell.quote(dir .. "/model3")))
    assert(s == 0, out .. err)
    assert.are.equal(shell.read(dir .. "/model/model.ckpt"), shell.read(dir .. "/model3/model.ckpt"))
  end)

  for _, np in ipairs({ 3, 1 }) do
    it(string.format("resumes the 2-rank checkpoint of step 50 at %d rank%s", np, np == 1 and "" or "s"), function()
      local to = string.format("%s/resume%d", dir, np)
      shell.run(string.format("mkdir -p %s/checkpoints && cp %s/two/checkpoints/step-50.* %s/checkpoints/",
        shell.quote(to), shell.quote(dir), shell.quote(to)))
      local s, out, err = run(np, string.format("train %s --resume --model-dir %s", cfg, shell.quote(to)))
      assert(s == 0, out .. err)
      assert.truthy((out .. err):find(string.format("step-50.ckpt, written by 2 ranks, at %d:", np), 1, true), out .. err)
      local want, got = numbers(predict(1, dir .. "/two", "c")), numbers(predict(1, to, "d"))
      local d = training.relative(want, got)
      assert(d <= 1e-5, string.format("predictions differ by %.3g", d))
    end)
  end
end)
