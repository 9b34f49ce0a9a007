-- SIGTERM/SIGINT during `mtl train` under mpirun -np 2 (docs/training.md,
-- "Stopping a run"): a signal that reaches one rank or every rank (mpirun
-- forwards SIGINT/SIGTERM to all) stops every rank after the same step
-- (the stop is agreed in the step's sum of counts), with that step's
-- checkpoint (manifest included) and report; no rank hangs; `--resume` at 2
-- ranks goes on from it. A signal to mpirun itself: the same for the ranks,
-- and mpirun's own status 1.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local training = require "dist.training"
local mtl = require "mtl"

local function latest(run)
  local all = mtl.checkpoint.list(run .. "/checkpoints")
  return all[#all]
end

-- Starts `mpirun -np 2 mtl train` in the background; returns {pids = the
-- ranks' process ids, mpirun = mpirun's, wait = function() -> mpirun's status, stderr}.
local function start(dir, cfg, run, mpirun_args)
  local files = dir .. "/" .. run:match("[^/]+$")
  os.execute(string.format("sh -c 'cd %s && timeout 120 %s %s -np 2 %s train %s --quiet --model-dir %s </dev/null >%s.out 2>%s.err; "
    .. "echo $? >%s.rc' >/dev/null 2>&1 &", shell.quote(shell.root), mpirun.mpirun, mpirun_args or "", shell.quote(shell.launcher), cfg, run,
    files, files, files))
  for _ = 1, 3000 do -- the ranks run once they have written checkpoints
    local c = latest(run)
    if c and c.step >= 8 then break end
    assert(not shell.read_if_exists(files .. ".rc"), shell.read_if_exists(files .. ".err"))
    os.execute("sleep 0.02")
  end
  -- the ranks' luajit processes ("[m]" keeps the shell running pgrep out)
  local pids = {}
  for pid in shell.run("pgrep -f -- " .. shell.quote("[m]ain.lua train " .. cfg .. " --quiet --model-dir " .. run)):gmatch("%d+") do
    pids[#pids + 1] = pid
  end
  return {
    pids = pids,
    mpirun = shell.run("pgrep -f -- " .. shell.quote("^mpirun .*train " .. cfg .. " --quiet --model-dir " .. run)):match("%d+"),
    wait = function()
      for _ = 1, 6000 do
        local rc = (shell.read_if_exists(files .. ".rc") or ""):match("%d+")
        if rc then return tonumber(rc), shell.read(files .. ".err") end
        os.execute("sleep 0.02")
      end
      error("mpirun did not end")
    end,
  }
end

describe("mtl train at 2 ranks stopped by a signal", function()
  local dir = shell.tmpdir()
  training.write(dir, { epochs = 1000, train = ", checkpoint_every = 4" })
  local cfg = dir .. "/mmoe.lua"
  teardown(function() shell.run("rm -rf " .. shell.quote(dir)) end)

  local function check_stopped(run, signal, err)
    local c = latest(run)
    assert.is_not_nil(c.manifest, "the stop's checkpoint is complete (its manifest)")
    assert.are.equal(c.step, mtl.load(c.path).step)
    assert.truthy(err:find(string.format("mtl train: stopped by %s after step %d: checkpoint %s,", signal, c.step, c.path), 1, true), err)
    assert.truthy(shell.read(run .. "/report.html"):find(string.format("stopped by %s at step %d", signal, c.step), 1, true))
    assert.is_false(require("mtl.sys").exists(run .. "/train.lock"))
    return c.step
  end

  it("SIGTERM to one rank: every rank stops after the same step, and --resume goes on", function()
    local run = dir .. "/one"
    local p = start(dir, cfg, run)
    finally(function() os.execute("kill -9 " .. table.concat(p.pids, " ") .. " 2>/dev/null") end)
    assert.are.equal(2, #p.pids, "the two ranks' processes")
    os.execute("kill -TERM " .. p.pids[2])
    local _, err = p.wait()
    local step = check_stopped(run, "SIGTERM", err)
    local status, out, err2 = mpirun.run(2, string.format("train %s --resume --json --quiet --model-dir %s --set train.steps=%d",
      cfg, run, step + 4))
    assert(status == 0, err2)
    assert.are.equal(step + 4, require("cjson").decode(out).step)
  end)

  it("SIGINT to every rank (as mpirun forwards it): the same", function()
    local run = dir .. "/all"
    local p = start(dir, cfg, run)
    finally(function() os.execute("kill -9 " .. table.concat(p.pids, " ") .. " 2>/dev/null") end)
    assert.are.equal(2, #p.pids, "the two ranks' processes")
    os.execute("kill -INT " .. table.concat(p.pids, " "))
    local _, err = p.wait()
    check_stopped(run, "SIGINT", err)
  end)

  it("SIGTERM to mpirun itself: the ranks write the step's checkpoint and report; mpirun exits 1 (Open MPI's)", function()
    local run = dir .. "/launcher"
    -- mpirun SIGKILLs the ranks 1 s after forwarding the signal: more room
    -- for the sanitizer build's slower step and checkpoint (docs/training.md)
    local p = start(dir, cfg, run, "--mca odls_base_sigkill_timeout 5")
    finally(function() os.execute("kill -9 " .. table.concat(p.pids, " ") .. " 2>/dev/null") end)
    assert.is_not_nil(p.mpirun, "mpirun's process")
    os.execute("kill -TERM " .. p.mpirun)
    local status, err = p.wait()
    check_stopped(run, "SIGTERM", err)
    assert.are.equal(1, status)
  end)
end)
