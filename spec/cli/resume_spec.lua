-- The resume property: `mtl train` killed with SIGKILL at a random step, then
-- `mtl train --resume`, ends with weights, embedding tables and optimizer
-- state bit-identical to an uninterrupted run (one thread, shuffled data).
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local mtl = require "mtl"

-- Every tensor of a checkpoint state under path -> {path = "hex of each value"}.
local function tensors(v, path, out)
  out = out or {}
  if type(v) == "table" then
    for k, x in pairs(v) do tensors(x, path .. "." .. tostring(k), out) end
  elseif type(v) == "userdata" then
    local vals = v:values()
    local parts = {}
    for i = 1, #vals do parts[i] = type(vals[i]) == "number" and string.format("%a", vals[i]) or tostring(vals[i]) end
    out[path] = table.concat(parts, " ")
  end
  return out
end

local function state_tensors(path)
  local st = mtl.load(path)
  local out = {}
  tensors(st.model, "model", out)
  tensors(st.features.tables, "tables", out)
  tensors(st.optimizers, "optimizers", out)
  return out, st
end

local function sleep(s) os.execute("sleep " .. s) end

local function count_checkpoints(dir)
  return #require("mtl").checkpoint.list(dir .. "/checkpoints")
end

describe("mtl train --resume", function()
  local dir
  setup(function()
    -- 6000 rows, batch 50, 2 epochs: 240 steps, a checkpoint every 4
    dir = tiny.data_dir(6000, 21, 200, 22)
    local path = tiny.write_config(dir)
    -- a slower, bigger model so the kill lands mid-run; 2 epochs
    local src = shell.read(path)
    src = src:gsub("epochs = 3", "epochs = 2"):gsub("expert = {8}", "expert = {64, 32}"):gsub("eval_every = 10", "eval_every = 60")
    shell.write(path, src)
  end)
  teardown(function() tiny.rm(dir) end)

  it("after SIGKILL at a random step gives bit-identical final weights", function()
    -- the uninterrupted run
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet --model-dir %s/a", dir, dir))
    assert.are.equal(0, rc, err)
    local A = state_tensors(dir .. "/a/checkpoints/step-240.ckpt")

    -- the killed run: wait for a random number of checkpoints, then kill -9
    math.randomseed(os.time())
    local target = math.random(2, 30)
    local pidfile = dir .. "/pid"
    os.execute(string.format("%s train %s/config.lua --quiet --model-dir %s/b >/dev/null 2>&1 & echo $! > %s",
      tiny.mtl, dir, dir, pidfile))
    local pid = assert(io.open(pidfile)):read("*l")
    local waited = 0
    while count_checkpoints(dir .. "/b") < target and waited < 3000 do
      sleep(0.01)
      waited = waited + 1
    end
    os.execute("kill -9 " .. pid .. " 2>/dev/null; sleep 0.1")
    local all = require("mtl").checkpoint.list(dir .. "/b/checkpoints")
    local killed_at = all[#all].step
    assert.is_true(killed_at < 240, "the run was killed before it finished (target checkpoint " .. target .. ")")
    assert.is_nil(io.open(dir .. "/b/checkpoints/step-240.ckpt"))

    -- resume
    local rc2, out2, err2 = tiny.run(string.format("train %s/config.lua --resume --model-dir %s/b", dir, dir))
    assert.are.equal(0, rc2, err2)
    assert.truthy(out2:find("resumed from " .. dir .. "/b/checkpoints/step-" .. killed_at .. ".ckpt (step " .. killed_at .. ")", 1, true), out2)
    local B, stB = state_tensors(dir .. "/b/checkpoints/step-240.ckpt")
    assert.are.equal(240, stB.step)
    local n = 0
    for k, v in pairs(A) do
      n = n + 1
      assert.are.equal(v, B[k], k .. " differs (killed after step " .. killed_at .. ")")
    end
    for k in pairs(B) do assert.is_not_nil(A[k], k) end
    assert.is_true(n > 20)

    -- the metrics log has no records past the checkpoint from the killed process
    local recs = require("mtl.report").read_metrics(dir .. "/b/metrics.jsonl")
    local last = 0
    for _, r in ipairs(recs) do
      if r.kind == "train" then
        assert.is_true(r.step > last, "train records in step order")
        last = r.step
      end
    end
    assert.are.equal(240, last)
  end)

  it("--resume with no checkpoint starts from step 0", function()
    local rc, out, err = tiny.run(string.format("train %s/config.lua --resume --json --set train.steps=8 --model-dir %s/c", dir, dir))
    assert.are.equal(0, rc, err)
    assert.are.equal(8, require("cjson").decode(out).step)
    assert.is_nil(err:find("resumed", 1, true))
  end)
end)
