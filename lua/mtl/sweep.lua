-- mtl.sweep: hyperparameter sweeps (docs/sweeps.md).
--
--   mtl.sweep{
--     base = "examples/configs/x.lua",      -- a config file (or a plain config table)
--     grid = { ["model.experts"] = {2, 4}, ["optimizer.dense.lr"] = {1e-3, 3e-3} },
--     -- or random = { ["optimizer.dense.lr"] = {log_uniform = {1e-4, 1e-2}},
--     --               ["model.experts"] = {choice = {2, 4, 8}},
--     --               ["train.steps"] = {int = {100, 400}}, ["x"] = {uniform = {0, 1}} },
--     trials = 12,                          -- random search (a grid runs every point)
--     metric = "eval.pay.auc", mode = "max",
--     workers = 2,                          -- parallel processes; threads = cores / workers
--                                           -- (under mpirun: one worker per rank)
--     halving = { min_steps = 50, eta = 3, max_steps = 450 },  -- successive halving
--     store = "runs/sweep.db", name = "mmoe-lr", dir = "runs/sweep",
--   }
--
-- Every trial's overrides, seed, status, metrics and timings live in a SQLite
-- database, so a killed sweep resumes without rerunning finished trials and
-- two sweeps can share one store (trials are keyed by sweep name). Under
-- `mpirun -np N mtl sweep` every rank is one worker (run_rung_on_ranks).
local json = require "cjson"
local sys = require "mtl.sys"
local util = require "mtl.config.util"

local sweep = {}

-- ---- storage --------------------------------------------------------------------------------
local function connect(path)
  local driver = require "luasql.sqlite3"
  local env = driver.sqlite3()
  local con = assert(env:connect(path), "mtl.sweep: cannot open store " .. path)
  for _, pragma in ipairs({ "PRAGMA busy_timeout = 30000", "PRAGMA journal_mode = WAL" }) do
    local cur = con:execute(pragma)
    if type(cur) == "userdata" then cur:close() end -- pragmas answer with a row
  end
  con:execute([[CREATE TABLE IF NOT EXISTS trials (
    sweep TEXT NOT NULL, id INTEGER NOT NULL, overrides TEXT NOT NULL, seed INTEGER NOT NULL,
    status TEXT NOT NULL, rung INTEGER NOT NULL DEFAULT 0, steps INTEGER,
    metric REAL, metrics TEXT, error TEXT, pid INTEGER,
    started REAL, finished REAL, seconds REAL, runs INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sweep, id))]])
  con:execute([[CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY, spec TEXT NOT NULL, created REAL)]])
  return { env = env, con = con }
end
sweep.connect = connect

local function q(db, s) return "'" .. db.con:escape(tostring(s)) .. "'" end

local function exec(db, sql)
  for _ = 1, 100 do
    local r, err = db.con:execute(sql)
    if r then return r end
    if not tostring(err):find("locked") and not tostring(err):find("busy") then
      error("mtl.sweep: " .. tostring(err) .. " in: " .. sql, 0)
    end
    os.execute("sleep 0.05")
  end
  error("mtl.sweep: the store stayed locked", 0)
end

-- The rows of a query as a list of {column = value} (retried while the store is locked).
local function rows(db, sql)
  local cur = exec(db, sql)
  local out = {}
  local r = cur:fetch({}, "a")
  while r do
    out[#out + 1] = r
    r = cur:fetch({}, "a")
  end
  cur:close()
  return out
end
sweep.rows = rows

local now = sys.time -- timestamps (started, finished, created): seconds since the epoch

-- ---- configs ---------------------------------------------------------------------------------
-- Sets a dotted path ("model.tasks.1.weight") in a config table.
function sweep.set_path(cfg, path, value)
  local t = cfg
  local parts = {}
  for p in path:gmatch("[^%.]+") do parts[#parts + 1] = tonumber(p) or p end
  for i = 1, #parts - 1 do
    local k = parts[i]
    if t[k] == nil then t[k] = {} end
    if type(t[k]) ~= "table" then error(string.format("mtl.sweep: '%s' is not a table in the config", path), 0) end
    t = t[k]
  end
  t[parts[#parts]] = value
  return cfg
end

function sweep.load_base(base)
  if type(base) == "table" then return util.deep_copy(base) end
  local ok, config = pcall(require, "mtl.config")
  if ok and config.load then return config.load(base) end
  local f = assert(require("mtl.config.util").loadfile(base))
  return f()
end

-- ---- search spaces --------------------------------------------------------------------------

-- Every point of a grid, in a fixed order: list of {path = value}.
function sweep.grid_points(grid)
  local keys = util.sorted_keys(grid)
  local points = { {} }
  for _, k in ipairs(keys) do
    local values = grid[k]
    if type(values) ~= "table" or #values == 0 then error("mtl.sweep: grid entry '" .. k .. "' needs a list of values", 0) end
    local nxt = {}
    for _, p in ipairs(points) do
      for _, v in ipairs(values) do
        local q2 = {}
        for pk, pv in pairs(p) do q2[pk] = pv end
        q2[k] = v
        nxt[#nxt + 1] = q2
      end
    end
    points = nxt
  end
  return points
end

-- n random points; draws come from mtl's seeded stream.
function sweep.random_points(space, n, seed)
  local mtl = require "mtl"
  mtl.seed(seed or 0)
  local keys = util.sorted_keys(space)
  local points = {}
  for i = 1, n do
    local p = {}
    for _, k in ipairs(keys) do
      local d = space[k]
      local u = mtl.rand(1):item()
      if d.choice then
        p[k] = d.choice[math.min(#d.choice, math.floor(u * #d.choice) + 1)]
      elseif d.uniform then
        p[k] = d.uniform[1] + u * (d.uniform[2] - d.uniform[1])
      elseif d.log_uniform then
        local a, b = math.log(d.log_uniform[1]), math.log(d.log_uniform[2])
        p[k] = math.exp(a + u * (b - a))
      elseif d.int then
        p[k] = d.int[1] + math.min(d.int[2] - d.int[1], math.floor(u * (d.int[2] - d.int[1] + 1)))
      else
        error("mtl.sweep: random entry '" .. k .. "' needs choice, uniform, log_uniform or int", 0)
      end
    end
    points[i] = p
  end
  return points
end

-- The budget (training steps) of each successive-halving rung.
function sweep.rungs(h)
  local out, b = {}, h.min_steps
  local eta = h.eta or 3
  while b < h.max_steps do
    out[#out + 1] = b
    b = b * eta
  end
  out[#out + 1] = h.max_steps
  return out
end

-- ---- the sweep ---------------------------------------------------------------------------------
local MAX_ATTEMPTS = 3 -- runs of a trial whose worker died without reporting
local function cores()
  local p = io.popen("nproc 2>/dev/null")
  local n = tonumber(p:read("*l")) or 1
  p:close()
  return n
end

local function alive(pid)
  if not pid or pid <= 0 then return false end -- (a rank's claim before its worker started)
  return os.execute(string.format("kill -0 %d 2>/dev/null", pid)) == 0
end

-- The mtl command that runs the workers: the one running now ($MTL_LAUNCHER,
-- set by the command itself, built or installed), else build/'s.
local function launcher()
  return os.getenv("MTL_LAUNCHER") or ((os.getenv("MTL_BUILD") or "build") .. "/mtl")
end

local function worker_script()
  return package.searchpath("mtl.sweep_worker", package.path)
    or error("mtl.sweep: cannot find mtl/sweep_worker.lua on package.path", 0)
end

-- The shell command of a worker for trial id, in the background, printing its pid.
local function worker_command(spec, id, steps, threads)
  return string.format("%s %s %q %q %d %d %d >>%q 2>&1 & echo $!", launcher(), worker_script(),
    spec.store, spec.name, id, steps or 0, threads, string.format("%s/trial-%d.log", spec.dir, id))
end

-- Starts a worker process for a trial; returns its pid.
local function start(spec, t, steps, threads)
  local p = io.popen(worker_command(spec, t.id, steps, threads))
  local pid = tonumber(p:read("*l"))
  p:close()
  return pid
end

-- A worker that exited without reporting (killed, out of memory, a crash):
-- its trial runs again, at most MAX_ATTEMPTS times in all.
local function worker_died(db, spec, id)
  exec(db, string.format("UPDATE trials SET attempts = attempts + 1, pid = NULL, status = CASE WHEN attempts + 1 >= %d " ..
    "THEN 'failed' ELSE 'pending' END, error = 'worker exited' WHERE sweep = %s AND id = %s AND status = 'running'",
    MAX_ATTEMPTS, q(db, spec.name), id))
end

-- ---- one worker per rank (mpirun) -------------------------------------------------------------
-- Under mpirun every rank is one worker: it claims the rung's next pending
-- trial in the store (one UPDATE: SQLite's lock makes the claim atomic; the
-- claim is marked with -(rank + 1) until the worker's pid replaces it), runs
-- it as a worker process of its own, one process out of the launcher's
-- job (the launcher's variables unset: mtl.dist sees one rank, so the trial
-- trains alone) and waits for it; when nothing is pending it waits for the
-- other ranks' trials of the rung. Returns when the rung has no trial
-- pending or running.
local UNSET_LAUNCHER = "unset $(env | awk -F= '/^(OMPI_|PMIX_|PMI_)/ {print $1}'); "

local function run_rung_on_ranks(db, spec, rung, budget, threads, rank, ranks)
  local name = q(db, spec.name)
  local mark = -(rank + 1)
  while true do
    local claimed = exec(db, string.format("UPDATE trials SET status = 'running', started = %f, pid = %d WHERE sweep = %s " ..
      "AND id = (SELECT min(id) FROM trials WHERE sweep = %s AND status = 'pending' AND rung = %d)", now(), mark, name, name,
      rung))
    if claimed == 1 then
      local id = rows(db, string.format("SELECT id FROM trials WHERE sweep = %s AND status = 'running' AND pid = %d", name,
        mark))[1].id
      local log = assert(io.open(string.format("%s/trial-%d.log", spec.dir, id), "a"))
      log:write(string.format("rank %d of %d runs trial %d (%d threads)\n", rank, ranks, id, threads))
      log:close()
      local p = io.popen(UNSET_LAUNCHER .. worker_command(spec, tonumber(id), budget, threads) .. "; wait")
      local pid = tonumber(p:read("*l"))
      exec(db, string.format("UPDATE trials SET pid = %d WHERE sweep = %s AND id = %s", pid, name, id))
      p:close() -- waits for the worker
      worker_died(db, spec, id) -- (when it did not report)
    else
      local left = rows(db, string.format("SELECT count(*) AS n FROM trials WHERE sweep = %s AND rung = %d AND status IN " ..
        "('pending', 'running')", name, rung))[1]
      if tonumber(left.n) == 0 then return end
      os.execute("sleep 0.2")
    end
  end
end

local function better(mode, a, b)
  if b == nil then return true end
  if a == nil or a ~= a then return false end
  if mode == "min" then return a < b end
  return a > b
end

-- Runs the pending trials of a rung on spec.workers worker processes.
local function run_rung(db, spec, rung, budget, threads)
  while true do
    for _, t in ipairs(rows(db, string.format("SELECT id, pid FROM trials WHERE sweep = %s AND status = 'running'",
      q(db, spec.name)))) do
      if not alive(tonumber(t.pid)) then worker_died(db, spec, t.id) end
    end
    local running = rows(db, string.format("SELECT id FROM trials WHERE sweep = %s AND status = 'running'", q(db, spec.name)))
    local pending = rows(db, string.format("SELECT id FROM trials WHERE sweep = %s AND status = 'pending' AND rung = %d ORDER BY id",
      q(db, spec.name), rung))
    if #pending == 0 and #running == 0 then return end
    for i = 1, math.min(#pending, spec.workers - #running) do
      local t = { id = tonumber(pending[i].id) }
      exec(db, string.format("UPDATE trials SET status = 'running', started = %f WHERE sweep = %s AND id = %d",
        now(), q(db, spec.name), t.id))
      local pid = start(spec, t, budget, threads)
      exec(db, string.format("UPDATE trials SET pid = %d WHERE sweep = %s AND id = %d", pid, q(db, spec.name), t.id))
    end
    os.execute("sleep 0.2")
  end
end

-- Successive halving after rung r: the best 1/eta of its finished trials go
-- on to rung r + 1; the rest stop.
local function promote(db, spec, r)
  local done = rows(db, string.format("SELECT id, metric FROM trials WHERE sweep = %s AND rung = %d AND status = 'done'",
    q(db, spec.name), r - 1))
  table.sort(done, function(a, b) return better(spec.mode, tonumber(a.metric), tonumber(b.metric)) end)
  local keep = math.max(1, math.floor(#done / (spec.halving.eta or 3)))
  for i, t in ipairs(done) do
    if i <= keep then
      exec(db, string.format("UPDATE trials SET status = 'pending', rung = %d WHERE sweep = %s AND id = %s", r, q(db, spec.name), t.id))
    else
      exec(db, string.format("UPDATE trials SET status = 'stopped' WHERE sweep = %s AND id = %s", q(db, spec.name), t.id))
    end
  end
end

-- Runs (or resumes) a sweep; returns its summary (trials sorted by metric).
function sweep.run(spec)
  assert(type(spec) == "table", "mtl.sweep: expected a table")
  assert(spec.base, "mtl.sweep: base (a config file or table) is required")
  assert(spec.metric, "mtl.sweep: metric (e.g. 'eval.pay.auc') is required")
  spec.mode = spec.mode or "max"
  spec.name = spec.name or "sweep"
  spec.dir = spec.dir or ("runs/" .. spec.name)
  spec.store = spec.store or (spec.dir .. "/sweep.db")
  spec.workers = spec.workers or 1
  local dist = require("mtl").dist
  local rank, ranks = dist.rank(), dist.size()
  if rank == 0 then
    sys.mkdir_p(spec.dir)
    sweep.prepare(spec)
  end
  local threads = math.max(1, math.floor(cores() / spec.workers))
  if ranks > 1 then
    dist.barrier() -- the store is ready
    -- one worker per rank: the cores of this host shared by its ranks
    threads = math.max(1, math.floor(cores() / (tonumber(os.getenv("OMPI_COMM_WORLD_LOCAL_SIZE")) or ranks)))
  end
  local db = connect(spec.store)
  local out = spec.output or io.stdout

  local rungs = spec.halving and sweep.rungs(spec.halving) or { false }
  local t0 = now()
  for r, budget in ipairs(rungs) do
    if ranks > 1 then
      run_rung_on_ranks(db, spec, r - 1, budget or 0, threads, rank, ranks)
      dist.barrier() -- every rank's trials of the rung are done
    else
      run_rung(db, spec, r - 1, budget or 0, threads)
    end
    if budget and r < #rungs and rank == 0 then promote(db, spec, r) end
    if ranks > 1 then dist.barrier() end -- (the promoted trials are pending)
  end
  local summary = sweep.summary(db, spec)
  summary.seconds = now() - t0
  if rank == 0 then sweep.report(summary, spec, out, db) end
  db.con:close()
  db.env:close()
  return summary
end

-- Creates the sweep in its store (the base config, stored once, so workers
-- and resumes see the same one; a trial per point) or, when it is there,
-- makes its trials marked running whose process is gone (a killed sweep)
-- pending again.
function sweep.prepare(spec)
  local db = connect(spec.store)
  local base = sweep.load_base(spec.base)
  local existing = rows(db, "SELECT spec FROM sweeps WHERE name = " .. q(db, spec.name))
  if #existing == 0 then
    exec(db, string.format("INSERT INTO sweeps VALUES (%s, %s, %f)", q(db, spec.name),
      q(db, json.encode({ base = base, metric = spec.metric, mode = spec.mode })), now()))
    local points = spec.grid and sweep.grid_points(spec.grid) or sweep.random_points(spec.random or {}, spec.trials or 8, spec.seed)
    for i, p in ipairs(points) do
      exec(db, string.format("INSERT INTO trials (sweep, id, overrides, seed, status) VALUES (%s, %d, %s, %d, 'pending')",
        q(db, spec.name), i, q(db, json.encode(p)), (spec.seed or 0) + i))
    end
  end
  -- a killed sweep: trials marked running whose process is gone start over
  for _, t in ipairs(rows(db, "SELECT id, pid FROM trials WHERE status = 'running' AND sweep = " .. q(db, spec.name))) do
    if not alive(tonumber(t.pid)) then
      exec(db, string.format("UPDATE trials SET status = 'pending', pid = NULL WHERE sweep = %s AND id = %s", q(db, spec.name), t.id))
    end
  end

  db.con:close()
  db.env:close()
end

-- Trials of a sweep sorted by metric (best first), with their overrides.
function sweep.summary(db, spec)
  local all = rows(db, string.format("SELECT * FROM trials WHERE sweep = %s ORDER BY id", q(db, spec.name)))
  for _, t in ipairs(all) do
    t.id, t.rung, t.runs = tonumber(t.id), tonumber(t.rung), tonumber(t.runs)
    t.metric = tonumber(t.metric)
    t.overrides = json.decode(t.overrides)
  end
  table.sort(all, function(a, b)
    local am, bm = a.status == "done" and a.metric or nil, b.status == "done" and b.metric or nil
    if am and bm then
      if am ~= bm then return better(spec.mode, am, bm) end
      return a.id < b.id
    end
    if am or bm then return am ~= nil end
    return a.id < b.id
  end)
  return { trials = all, best = all[1] and all[1].status == "done" and all[1] or nil }
end

-- A config table as Lua source (plain data: tables, strings, numbers, booleans).
local function lua_literal(v, indent)
  indent = indent or ""
  if type(v) == "string" then return string.format("%q", v) end
  if v == math.huge then return "math.huge" end
  if v == -math.huge then return "-math.huge" end
  if v ~= v then return "0 / 0" end
  if type(v) == "number" and v ~= math.floor(v) then return string.format("%.17g", v) end
  if type(v) ~= "table" then return tostring(v) end
  local n, parts, keys = #v, {}, {}
  for i = 1, n do parts[#parts + 1] = lua_literal(v[i], indent .. "  ") end
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for _, k in ipairs(keys) do
    local ks = (type(k) == "string" and k:match("^[%a_][%w_]*$")) and k or ("[" .. lua_literal(k) .. "]")
    parts[#parts + 1] = ks .. " = " .. lua_literal(v[k], indent .. "  ")
  end
  if #parts == 0 then return "{}" end
  return "{\n" .. indent .. "  " .. table.concat(parts, ",\n" .. indent .. "  ") .. "\n" .. indent .. "}"
end
sweep.lua_literal = lua_literal

-- Prints the table, writes the best config and the plot.
function sweep.report(summary, spec, out, db)
  local keys = {}
  for _, t in ipairs(summary.trials) do for k in pairs(t.overrides) do keys[k] = true end end
  local cols = util.sorted_keys(keys)
  local mw = math.max(8, #spec.metric)
  out:write(string.format("%-5s  %-8s  %-" .. mw .. "s", "trial", "status", spec.metric))
  for _, c in ipairs(cols) do out:write(string.format("  %" .. math.max(8, #c) .. "s", c)) end
  out:write("\n")
  for _, t in ipairs(summary.trials) do
    out:write(string.format("%-5d  %-8s  %-" .. mw .. "s", t.id, t.status, t.metric and string.format("%.5f", t.metric) or "-"))
    for _, c in ipairs(cols) do out:write(string.format("  %" .. math.max(8, #c) .. "s", tostring(t.overrides[c]))) end
    out:write("\n")
  end
  if summary.best then
    local base = json.decode(rows(db, "SELECT spec FROM sweeps WHERE name = " .. q(db, spec.name))[1].spec).base
    for k, v in pairs(summary.best.overrides) do sweep.set_path(base, k, v) end
    local path = spec.dir .. "/best_config.lua"
    sys.write_atomic(path, string.format("-- Best trial %d of sweep '%s': %s = %.6f\nreturn ", summary.best.id, spec.name,
      spec.metric, summary.best.metric) .. lua_literal(base) .. "\n")
    summary.best_config = path
    out:write(string.format("best: trial %d, %s = %.5f; config written to %s\n", summary.best.id, spec.metric,
      summary.best.metric, path))
  end
  summary.plot = sweep.plot(summary, spec, cols)
end

-- One SVG panel per swept hyperparameter: the metric of each finished trial.
function sweep.plot(summary, spec, cols)
  local W, H, pad = 320, 220, 40
  local panels = {}
  for i, c in ipairs(cols) do
    local pts, xs = {}, {}
    for _, t in ipairs(summary.trials) do
      local v = t.overrides[c]
      if t.status == "done" and t.metric and t.metric == t.metric then pts[#pts + 1] = { v, t.metric } end
    end
    local numeric = true
    for _, p in ipairs(pts) do if type(p[1]) ~= "number" then numeric = false end end
    local cats = {}
    if not numeric then
      for _, p in ipairs(pts) do if not cats[tostring(p[1])] then cats[#cats + 1] = tostring(p[1]); cats[tostring(p[1])] = #cats end end
    end
    local function xv(v) return numeric and v or cats[tostring(v)] end
    local x0, x1, y0, y1 = math.huge, -math.huge, math.huge, -math.huge
    for _, p in ipairs(pts) do
      x0, x1 = math.min(x0, xv(p[1])), math.max(x1, xv(p[1]))
      y0, y1 = math.min(y0, p[2]), math.max(y1, p[2])
    end
    if x1 <= x0 then x0, x1 = x0 - 1, x1 + 1 end
    if y1 <= y0 then y0, y1 = y0 - 0.01, y1 + 0.01 end
    local ox = (i - 1) * (W + 20)
    local g = { string.format('<g transform="translate(%d,0)"><rect x="%d" y="10" width="%d" height="%d" fill="none" stroke="#999"/>',
      ox, pad, W - pad - 10, H - pad - 10) }
    for _, p in ipairs(pts) do
      local px = pad + (xv(p[1]) - x0) / (x1 - x0) * (W - pad - 20) + 5
      local py = 10 + (1 - (p[2] - y0) / (y1 - y0)) * (H - pad - 30) + 10
      g[#g + 1] = string.format('<circle cx="%.1f" cy="%.1f" r="4" fill="#1f77b4"><title>%s = %s: %.5f</title></circle>', px, py, c, tostring(p[1]), p[2])
    end
    g[#g + 1] = string.format('<text x="%d" y="%d" font-size="12">%s</text>', pad, H - 8, c)
    g[#g + 1] = string.format('<text x="2" y="20" font-size="10">%.4f</text><text x="2" y="%d" font-size="10">%.4f</text>', y1, H - pad, y0)
    g[#g + 1] = "</g>"
    panels[#panels + 1] = table.concat(g, "\n")
  end
  local path = spec.dir .. "/sweep.svg"
  sys.write_atomic(path, string.format('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">\n',
    math.max(1, #cols) * (W + 20), H + 10)
    .. string.format('<text x="4" y="%d" font-size="12">%s (%s) by hyperparameter</text>\n', H + 5, spec.metric, spec.mode)
    .. table.concat(panels, "\n") .. "\n</svg>\n")
  return path
end

-- `mtl sweep SWEEP.lua`: the file returns a sweep spec (a table). Returns the
-- exit code: 0 done, 1 a failure while running, 2 a wrong command line.
function sweep.main(args)
  local p = require("argparse")("mtl sweep", "Run a hyperparameter sweep (docs/sweeps.md): SWEEP.lua returns the "
    .. "sweep table, as mtl.sweep{...} takes it.", "Exit codes: 0 success, 1 a failure while running, 2 a wrong command line.")
  p:help_max_width(100)
  p:argument("sweep", "a Lua file that returns the sweep table"):argname("SWEEP.lua")
  local ok, a = p:pparse(args or {})
  if not ok then
    io.stderr:write(string.format("mtl sweep: %s\n%s\n", a, p:get_usage()))
    return 2
  end
  if not sys.exists(a.sweep) then
    io.stderr:write(string.format("mtl sweep: sweep file '%s' does not exist\n(mtl sweep --help for usage)\n", a.sweep))
    return 2
  end
  local chunk, err = require("mtl.config.util").loadfile(a.sweep)
  if not chunk then
    io.stderr:write("mtl sweep: ", err, "\n")
    return 1
  end
  local okc, spec = pcall(chunk)
  if not okc or type(spec) ~= "table" then
    io.stderr:write("mtl sweep: ", okc and (a.sweep .. " must return a sweep table (mtl.sweep's argument)")
      or tostring(spec), "\n")
    return 1
  end
  local okr, res = pcall(sweep.run, spec)
  if not okr then
    io.stderr:write("mtl sweep: ", tostring(res), "\n")
    return 1
  end
  return 0
end

setmetatable(sweep, { __call = function(_, spec) return sweep.run(spec) end })

return sweep
