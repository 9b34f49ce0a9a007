-- Running scripts under mpirun for the mtl.dist specs: --oversubscribe (3
-- ranks on a 2-core machine), --allow-run-as-root when root (CI runs as
-- root), under `timeout` so that a hang fails the spec instead of the run.
local shell = require "helpers.shell"

local M = {}

local as_root = shell.run("id -u"):match("^%s*0%s*$") ~= nil
M.mpirun = "mpirun --oversubscribe" .. (as_root and " --allow-run-as-root" or "")

local function read(path)
  local f = io.open(path)
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- Runs `mpirun -np np LAUNCHER args` in dir (default: the repository root)
-- with env (a string of VAR=value words) and a limit of `limit` seconds.
-- Returns status, stdout, stderr, seconds taken. stdout is each rank's
-- output in rank order (mpirun --output-filename: on its own stdout, mpirun
-- may interleave pieces of the ranks' lines); stderr is each rank's, then
-- mpirun's own (which repeats the ranks').
function M.run(np, args, opts)
  opts = opts or {}
  local tmp = shell.tmpdir()
  local cmd = string.format(
    "cd %s && start=$(date +%%s.%%N); %s timeout %d %s --output-filename %s/ranks -np %d %s %s </dev/null " ..
    ">%s/out 2>%s/err; echo $? $start $(date +%%s.%%N)",
    shell.quote(opts.dir or shell.root), opts.env or "", opts.limit or 120, M.mpirun, tmp, np,
    shell.quote(opts.launcher or shell.launcher), args, tmp, tmp)
  local status, t0, t1 = shell.run(cmd):match("(%d+) ([%d.]+) ([%d.]+)")
  local out, err = {}, {}
  for r = 0, np - 1 do
    out[#out + 1] = read(string.format("%s/ranks/1/rank.%d/stdout", tmp, r))
    err[#err + 1] = read(string.format("%s/ranks/1/rank.%d/stderr", tmp, r))
  end
  err[#err + 1] = read(tmp .. "/err")
  shell.run("rm -rf " .. shell.quote(tmp))
  return tonumber(status), table.concat(out), table.concat(err, "\n"), tonumber(t1) - tonumber(t0)
end

-- `mtl ARGS` in one process (no mpirun), from the repository root: status,
-- stdout, stderr.
function M.single(args)
  local tmp = shell.tmpdir()
  local status = shell.run(string.format("cd %s && %s %s >%s/out 2>%s/err; echo $?", shell.quote(shell.root),
    shell.quote(shell.launcher), args, tmp, tmp))
  local out, err = shell.read(tmp .. "/out"), shell.read(tmp .. "/err")
  shell.run("rm -rf " .. shell.quote(tmp))
  return tonumber(status), out, err
end

-- Lines "r<rank> <key> <values...>" -> results[rank][key] = {values...}
-- (strings; the values are split at spaces, except a "mismatch" line's
-- message, kept whole). A key printed again appends its values (scripts
-- print long lists a few values a line).
function M.by_rank(stdout)
  local results = {}
  for line in stdout:gmatch("[^\n]+") do
    local rank, key, rest = line:match("^r(%d+) (%S+) ?(.*)$")
    if rank then
      rank = tonumber(rank)
      results[rank] = results[rank] or {}
      local values = results[rank][key] or {}
      if key:match("^mismatch") then
        values = { rest }
      else
        for v in rest:gmatch("%S+") do values[#values + 1] = v end
      end
      results[rank][key] = values
    end
  end
  return results
end

return M
