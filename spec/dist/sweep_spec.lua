-- `mpirun -np 2 mtl sweep`: every rank is one worker; each trial trains as a
-- process of its own, out of the launcher's job (one rank: its checkpoint's
-- manifest says so), and the store holds what the single-process sweep's
-- does, trial by trial. A partial run (a trial pending, one claimed by a
-- rank that died before its worker started, one whose worker died) resumes
-- running only those three.
local mpirun = require "dist.mpirun"
local shell = require "helpers.shell"
local setup = require "sweep.setup"
local sweep = require "mtl.sweep"
local json = require "cjson"

local function write_sweep(dir, name)
  return shell.write(string.format("%s/%s.lua", dir, name), string.format([[
return { base = %q, name = "grid", dir = %q, workers = 2, metric = "eval.pay.auc",
         grid = { ["model.experts"] = {1, 2}, ["optimizer.dense.lr"] = {0.003, 0.03} } }
]], dir .. "/base.lua", dir .. "/" .. name))
end

local function trials(dir)
  local db = sweep.connect(dir .. "/sweep.db")
  local out = sweep.rows(db, "SELECT id, status, runs, metric, metrics FROM trials WHERE sweep = 'grid' ORDER BY id")
  db.con:close()
  db.env:close()
  return out
end

describe("mtl sweep under mpirun #slow", function()
  local dir = shell.tmpdir()
  setup(dir)
  local one = shell.run(string.format("cd %s && timeout 120 %s sweep %s 2>&1; echo status $?", shell.quote(shell.root),
    shell.quote(shell.launcher), shell.quote(write_sweep(dir, "one"))))
  local script = write_sweep(dir, "two")
  local status, out, err = mpirun.run(2, "sweep " .. shell.quote(script))
  teardown(function() shell.rm_rf(dir) end)

  local function same_as_one_process(runs)
    local want, got = trials(dir .. "/one"), trials(dir .. "/two")
    assert.are.equal(4, #got)
    for i, t in ipairs(got) do
      assert.are.equal("done", t.status, "trial " .. i)
      assert.are.equal(runs[i], tonumber(t.runs), "trial " .. i)
      assert.are.equal(tonumber(want[i].metric), tonumber(t.metric), "trial " .. i)
      assert.are.same(json.decode(want[i].metrics), json.decode(t.metrics), "trial " .. i)
    end
  end

  it("runs the 2 x 2 grid on 2 ranks, each trial a one-rank training, the single process's results trial by trial", function()
    assert.truthy(one:find("status 0\n", 1, true), one)
    assert(status == 0, out .. err)
    local _, tables = out:gsub("best: trial ", "")
    assert.are.equal(1, tables, "rank 0 prints the table: " .. out)
    assert.truthy(out:find(one:match("best: trial %d+, eval.pay.auc = [%d.]+"), 1, true), out .. one)
    same_as_one_process({ 1, 1, 1, 1 })
    for id = 1, 4 do
      local log = shell.read(string.format("%s/two/trial-%d.log", dir, id))
      assert.truthy(log:match("^rank [01] of 2 runs trial " .. id .. " %(1 threads%)\n"), log)
      local all = require("mtl").checkpoint.list(string.format("%s/two/trial-%d/checkpoints", dir, id))
      assert.are.equal(1, require("mtl").checkpoint.read_manifest(string.format("%s/two/trial-%d/checkpoints", dir, id),
        all[#all].step).ranks)
    end
  end)

  it("resumes a partial run: only the trials without a result run", function()
    local db = sweep.connect(dir .. "/two/sweep.db")
    -- trial 1: claimed by rank 1, which died before its worker started;
    -- trial 3: its worker died (no such process); trial 4: never started
    for _, sql in ipairs({
      "UPDATE trials SET status = 'running', pid = -2, metric = NULL, metrics = NULL WHERE sweep = 'grid' AND id = 1",
      "UPDATE trials SET status = 'running', pid = 2147483646, metric = NULL, metrics = NULL WHERE sweep = 'grid' AND id = 3",
      "UPDATE trials SET status = 'pending', pid = NULL, metric = NULL, metrics = NULL WHERE sweep = 'grid' AND id = 4",
    }) do assert.are.equal(1, db.con:execute(sql)) end
    db.con:close()
    db.env:close()
    local s, o, e = mpirun.run(2, "sweep " .. shell.quote(script))
    assert(s == 0, o .. e)
    same_as_one_process({ 2, 1, 2, 2 })
  end)
end)
