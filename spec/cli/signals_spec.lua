-- SIGINT/SIGTERM during `mtl train` (docs/training.md, "Stopping a run"):
-- the first signal finishes the step, writes its checkpoint, metrics.jsonl
-- and the report, and exits 130 (SIGINT) / 143 (SIGTERM); --resume goes on
-- from that checkpoint; a second signal ends the process at once.
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local mtl = require "mtl"

local function checkpoints(dir) return mtl.checkpoint.list(dir .. "/checkpoints") end
local start, wait_checkpoints = tiny.start, tiny.wait_checkpoints

describe("mtl train stopped by a signal", function()
  local dir
  setup(function()
    dir = tiny.data_dir(2000, 21, 200, 22)
    local path = tiny.write_config(dir)
    -- far more epochs than the spec waits for: only a signal ends these runs
    shell.write(path, (shell.read(path):gsub("epochs = 3", "epochs = 1000")))
  end)
  teardown(function() tiny.rm(dir) end)

  local function stop_with(signal, code, name)
    local run_dir = dir .. "/" .. name
    local p = start(dir, name, string.format("train %s/config.lua --quiet --model-dir %s", dir, run_dir))
    wait_checkpoints(run_dir, 2)
    local before = checkpoints(run_dir)
    os.execute("kill -" .. signal .. " " .. p.pid)
    local rc, err = p.wait()
    assert.are.equal(code, rc, err)
    local all = checkpoints(run_dir)
    local last = all[#all]
    assert.is_true(last.step >= before[#before].step)
    -- the stop's own checkpoint is the latest, of the step it stopped after
    local st = mtl.load(last.path)
    assert.are.equal(last.step, st.step)
    assert.are.equal(string.format("mtl train: stopped by %s after step %d: checkpoint %s, report %s/report.html, "
      .. "metrics %s/metrics.jsonl (continue with --resume)\n", name:upper(), last.step, last.path, run_dir, run_dir), err)
    local html = shell.read(run_dir .. "/report.html")
    assert.truthy(html:find(string.format("stopped by %s at step %d", name:upper(), last.step), 1, true), html:match("<p class=\"failed\"[^\n]*") or html:match("<p class=\"muted\">fin[^\n]*"))
    assert.is_nil(html:find("reloads every", 1, true)) -- no longer live
    local recs = require("mtl.report").read_metrics(run_dir .. "/metrics.jsonl")
    assert.is_true(#recs > 0)
    for _, r in ipairs(recs) do assert.is_true(r.step <= last.step) end
    return run_dir, last.step
  end

  it("SIGTERM: a checkpoint of the last step and the report, exit 143, and --resume goes on from it", function()
    local run_dir, step = stop_with("TERM", 143, "sigterm")
    local rc, out, err = tiny.run(string.format("train %s/config.lua --resume --json --quiet --model-dir %s --set train.steps=%d",
      dir, run_dir, step + 3))
    assert.are.equal(0, rc, err)
    local res = require("cjson").decode(out)
    assert.are.equal(step + 3, res.step)
    assert.are.equal(step + 3, mtl.load(res.checkpoint).step)
  end)

  it("SIGINT (Ctrl-C): the same, exit 130", function()
    stop_with("INT", 130, "sigint")
  end)

  it("a second signal ends the run at once: no checkpoint of the stop, the earlier ones intact", function()
    local run_dir = dir .. "/twice"
    local p = start(dir, "twice", string.format("train %s/config.lua --quiet --model-dir %s", dir, run_dir))
    wait_checkpoints(run_dir, 2)
    -- two different signals: two of one kind may merge into one pending signal
    os.execute(string.format("kill -TERM %s; kill -INT %s", p.pid, p.pid))
    local rc, err = p.wait()
    assert.is_true(rc == 130 or rc == 143, "exit status " .. rc)
    assert.is_nil(err:find("stopped by", 1, true), err)
    for _, c in ipairs(checkpoints(run_dir)) do assert.are.equal(c.step, mtl.load(c.path).step) end
  end)
end)
