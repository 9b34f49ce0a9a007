-- Sweeps: search spaces, and a 12-trial grid with 2 workers that is killed
-- midway and resumed: no finished trial runs twice and the best is reported.
local sweep = require "mtl.sweep"

local shell = require "helpers.shell"
local sh, root = shell.run, shell.root

local setup = require "sweep.setup"

describe("mtl.sweep", function()
  it("enumerates grids and draws random points reproducibly", function()
    local g = sweep.grid_points({ a = { 1, 2 }, b = { "x", "y", "z" } })
    assert.are.equal(6, #g)
    assert.are.same({ a = 1, b = "x" }, g[1])
    assert.are.same({ a = 2, b = "z" }, g[6])
    local space = { lr = { log_uniform = { 1e-4, 1e-2 } }, n = { int = { 2, 4 } }, k = { choice = { "p", "q" } } }
    local r1, r2 = sweep.random_points(space, 20, 3), sweep.random_points(space, 20, 3)
    assert.are.same(r1, r2)
    for _, p in ipairs(r1) do
      assert.is_true(p.lr >= 1e-4 and p.lr <= 1e-2)
      assert.is_true(p.n == 2 or p.n == 3 or p.n == 4)
      assert.is_true(p.k == "p" or p.k == "q")
    end
    assert.are.same({ 10, 30, 90 }, sweep.rungs({ min_steps = 10, eta = 3, max_steps = 90 }))
    assert.are.same({ 10, 30, 50 }, sweep.rungs({ min_steps = 10, eta = 3, max_steps = 50 }))
  end)

  it("runs 12 trials on 2 workers, survives a kill, and never reruns a finished trial", function()
    local dir = shell.tmpdir()
    setup(dir)
    local script = dir .. "/sweep.lua"
    local f = assert(io.open(script, "w"))
    f:write(string.format([[
local mtl = require "mtl"
local s = require("mtl.sweep").run{
  base = %q, name = "grid", dir = %q, workers = 2, metric = "eval.pay.auc", mode = "max",
  grid = { ["model.experts"] = {1, 2, 3}, ["optimizer.dense.lr"] = {0.003, 0.03}, ["model.tasks.2.weight"] = {1, 2} },
}
print("BEST", s.best.id, s.best.metric)
]], dir .. "/base.lua", dir))
    f:close()
    local mtl_cmd = shell.launcher
    -- start, wait until a few trials finished, kill the sweep and its workers
    sh(string.format("cd %q && (%s %s > %s/first.log 2>&1 & echo $! > %s/pid)", root, mtl_cmd, script, dir, dir))
    local db = dir .. "/sweep.db"
    local done = 0
    for _ = 1, 600 do
      sh("sleep 0.1")
      local out = sh(string.format("luajit -e \"local d=require'luasql.sqlite3'.sqlite3(); local c=d:connect('%s'); " ..
        "local r=c:execute(\\\"SELECT count(*) FROM trials WHERE status='done'\\\"); if r then print(r:fetch()) end\" 2>/dev/null", db))
      done = tonumber(out:match("%d+")) or 0
      if done >= 3 then break end
    end
    assert.is_true(done >= 3 and done < 12, "killed midway after " .. done .. " trials")
    sh(string.format("kill -9 $(cat %s/pid); pkill -9 -f 'sweep_worker.lua %s' ; sleep 0.3", dir, db))
    -- resume: the finished trials are kept, the rest run
    local out = sh(string.format("cd %q && %s %s 2>&1", root, mtl_cmd, script))
    local best_id, best_metric = out:match("BEST%s+(%d+)%s+([%d%.e%-]+)")
    assert.is_not_nil(best_id, out)
    local store = sweep.connect(db)
    local rows = sweep.rows(store, "SELECT id, status, runs, metric, error FROM trials WHERE sweep = 'grid' ORDER BY id")
    local best
    assert.are.equal(12, #rows)
    for _, row in ipairs(rows) do
      local log = io.open(string.format("%s/trial-%s.log", dir, row.id))
      local tail = log and log:read("*a"):sub(-600) or ""
      if log then log:close() end
      assert.are.equal("done", row.status, string.format("trial %s: %s\n%s", row.id, tostring(row.error), tail))
      assert.are.equal(1, tonumber(row.runs), "trial " .. row.id .. " ran " .. row.runs .. " times")
      if not best or tonumber(row.metric) > tonumber(best.metric) then best = row end
    end
    assert.are.equal(tonumber(best.id), tonumber(best_id))
    -- the best config is a runnable config file with the winning overrides
    local cfg = dofile(dir .. "/best_config.lua")
    assert.are.equal("mmoe", cfg.model.name)
    assert.is_truthy(io.open(dir .. "/sweep.svg"))
    sh("rm -rf " .. dir)
  end)
end)
