-- The resume property: `mtl train` killed with SIGKILL in epoch 1 and again
-- in epoch 2, each time followed by `mtl train --resume`, ends in the state
-- of an uninterrupted run — weights, embedding tables, optimizer state, step
-- counters, epoch position, random stream, early-stopping state, the loss
-- sums and running-AUC window of the next train record, the history — and
-- writes the same metrics.jsonl (times excluded). Fixed seeds, one thread,
-- shuffled data, the default checkpoint retention (5).
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local mtl = require "mtl"
local json = require "cjson"

-- A canonical text of a value: tables by sorted keys, numbers exactly (%a),
-- tensors as their dtype, shape and values; keys named in `skip` left out.
local function canon(v, skip)
  local t = type(v)
  if t == "number" then return string.format("%a", v) end
  if t == "userdata" then
    local parts = {}
    for i, x in ipairs(v:values()) do parts[i] = type(x) == "number" and string.format("%a", x) or tostring(x) end
    return string.format("%s[%s]{%s}", v:dtype(), table.concat(v:shape(), ","), table.concat(parts, " "))
  end
  if t ~= "table" then return tostring(v) end
  local keys = {}
  for k in pairs(v) do if not (skip and skip[k]) then keys[#keys + 1] = k end end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = tostring(k) .. "=" .. canon(v[k], skip) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local TIMES = { examples_per_s = true, gflops = true } -- the fields that depend on the clock

-- metrics.jsonl's records without their times.
local function records(path)
  local out = {}
  for line in io.lines(path) do out[#out + 1] = canon(json.decode(line), TIMES) end
  return out
end

local function latest(dir)
  local all = mtl.checkpoint.list(dir .. "/checkpoints")
  return all[#all]
end

-- Waits until dir's latest checkpoint is of step >= step.
local function wait_step(dir, step)
  for _ = 1, 6000 do
    local c = latest(dir)
    if c and c.step >= step then return end
    os.execute("sleep 0.01")
  end
  error("no checkpoint of step " .. step .. " in " .. dir)
end

-- Runs `train --model-dir run` in the background until its latest
-- checkpoint reaches step `at`, then kills it with SIGKILL; returns the step
-- of the latest checkpoint it left.
local function kill_at(dir, run, at, resume)
  local p = tiny.start(dir, "kill" .. at, string.format("train %s/config.lua --quiet %s --model-dir %s",
    dir, resume and "--resume" or "", run))
  wait_step(run, at)
  os.execute("kill -9 " .. p.pid)
  assert.are.equal(137, (p.wait()))
  return latest(run).step
end

describe("mtl train --resume", function()
  local dir
  setup(function()
    -- 6000 rows, batch 50, 2 epochs: 240 steps (120 an epoch), a checkpoint every 4
    dir = tiny.data_dir(6000, 21, 200, 22)
    local path = tiny.write_config(dir, nil,
      ", early_stopping = { metric = 'eval.click.auc', mode = 'max', patience = 100 }")
    local src = shell.read(path)
    -- a bigger model so that the kills land mid-run; the default retention (5)
    src = src:gsub("epochs = 3", "epochs = 2"):gsub("expert = {8}", "expert = {64, 32}")
      :gsub("eval_every = 10", "eval_every = 30"):gsub("keep_checkpoints = 100", "auc_window = 7")
    shell.write(path, src)
  end)
  teardown(function() tiny.rm(dir) end)

  it("after SIGKILL in epoch 1 and in epoch 2 ends in the uninterrupted run's state and logs", function()
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet --model-dir %s/a", dir, dir))
    assert.are.equal(0, rc, err)
    local A = mtl.load(dir .. "/a/checkpoints/step-240.ckpt")

    local b = dir .. "/b"
    local first = kill_at(dir, b, 40)
    assert.is_true(first < 120, "the first kill is in epoch 1 (after step " .. first .. ")")
    local second = kill_at(dir, b, 160, true)
    assert.is_true(second >= 160 and second < 240, "the second kill is in epoch 2 (after step " .. second .. ")")
    assert.are.equal(2, mtl.load(latest(b).path).epoch)
    assert.are.equal(5, #mtl.checkpoint.list(b .. "/checkpoints")) -- the default retention

    local rc2, out2, err2 = tiny.run(string.format("train %s/config.lua --resume --model-dir %s", dir, b))
    assert.are.equal(0, rc2, err2)
    assert.truthy(out2:find("resumed from " .. b .. "/checkpoints/step-" .. second .. ".ckpt (step " .. second .. ")", 1, true), out2)
    local B = mtl.load(b .. "/checkpoints/step-240.ckpt")

    -- every part of the state, each compared exactly
    local parts = 0
    for k, v in pairs(A) do
      parts = parts + 1
      assert.are.equal(canon(v, TIMES), canon(B[k], TIMES), k .. " differs (killed after steps " .. first .. " and " .. second .. ")")
    end
    for k in pairs(B) do assert.is_not_nil(A[k], k) end
    for _, k in ipairs { "step", "epoch", "batch_in_epoch", "rng", "model", "features", "optimizers", "history",
                         "best", "bad_evals", "since_log", "window" } do
      assert.is_not_nil(A[k], k .. " is in the checkpoint")
    end
    assert.are.equal(canon(mtl.load(dir .. "/a/checkpoints/best.ckpt"), TIMES), canon(mtl.load(b .. "/checkpoints/best.ckpt"), TIMES))

    -- the same log: train records (loss sums, running AUC) and evaluations
    local ra, rb = records(dir .. "/a/metrics.jsonl"), records(b .. "/metrics.jsonl")
    assert.are.equal(#ra, #rb)
    for i = 1, #ra do assert.are.equal(ra[i], rb[i], "record " .. i) end
    assert.is_true(#ra > 50)
  end)

  it("resuming a finished run evaluates nothing again and appends nothing", function()
    local run = dir .. "/f"
    local rc, _, err = tiny.run(string.format("train %s/config.lua --quiet --set train.steps=20 --model-dir %s", dir, run))
    assert.are.equal(0, rc, err)
    local before = records(run .. "/metrics.jsonl")
    local rc2, out2, err2 = tiny.run(string.format("train %s/config.lua --resume --json --set train.steps=20 --model-dir %s", dir, run))
    assert.are.equal(0, rc2, err2)
    assert.are.equal(20, json.decode(out2).step)
    assert.are.same(before, records(run .. "/metrics.jsonl"))
    local finals = 0
    for _, r in ipairs(mtl.load(run .. "/checkpoints/step-20.ckpt").history) do
      if r.final then finals = finals + 1 end
    end
    assert.are.equal(1, finals)
  end)

  it("--resume with no checkpoint starts from step 0", function()
    local rc, out, err = tiny.run(string.format("train %s/config.lua --resume --json --set train.steps=8 --model-dir %s/c", dir, dir))
    assert.are.equal(0, rc, err)
    assert.are.equal(8, json.decode(out).step)
    assert.is_nil(err:find("resumed", 1, true))
  end)
end)
