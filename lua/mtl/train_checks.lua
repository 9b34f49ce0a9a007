-- mtl.train_checks: what `mtl train` makes sure of before its first step
-- (docs/training.md, "Before the first step"):
--
--   checks.inputs(cfg)          every train and eval file opens, is not empty,
--                               has the configured columns and a first row
--   checks.lock(model_dir)      model_dir/train.lock (pid and host), or an error
--                               naming the run that holds it; returns a release function
--   checks.remove_stale(model_dir)  temporaries of dead processes (a kill during a
--                               save) in model_dir and its checkpoints; returns their names
--   checks.intact_before(dir, step) the newest checkpoint older than step that loads
local mtl = require "mtl"
local sys = require "mtl.sys"

local checks = {}
local format = string.format

local function files_of(x) return type(x) == "table" and x or { x } end

-- One file of data.<which>: readable, not empty, the header has the
-- configured columns (the reader's check, file:1), the first row parses.
local function check_file(F, dc, which, path)
  if not path:match("[*?%[]") then -- a glob: the reader says when it matches nothing
    if sys.is_dir(path) then error(format("data.%s: %s is a directory, not a data file", which, path), 0) end
    local f, err = io.open(path, "rb")
    if not f then
      error(format("data.%s: cannot read %s: %s", which, path, tostring(err):gsub("^[^:]*: ", "")), 0)
    end
    local first = f:read(1)
    f:close()
    if not first then error(format("data.%s: %s is empty", which, path), 0) end
  end
  local o = F:reader_options({ path }, 1, { separator = dc.separator, header = dc.header, shuffle_buffer = 0 })
  local ok, res = pcall(function()
    local r = mtl.data.csv(o)
    local b = r:batches()()
    r:close()
    return b
  end)
  if not ok then error(format("data.%s: %s", which, tostring(res)), 0) end
  if not res or res.size == 0 then
    error(format("data.%s: %s has no rows%s", which, path, o.header and " (only a header)" or ""), 0)
  end
end

function checks.inputs(cfg)
  local F = require("mtl.ranker").new_features(cfg)
  for _, which in ipairs { "train", "eval" } do
    if cfg.data[which] ~= nil then
      for _, path in ipairs(files_of(cfg.data[which])) do check_file(F, cfg.data, which, path) end
    end
  end
end

-- ---- the model_dir lock ----------------------------------------------------------------
local EEXIST = 17

-- Takes model_dir/train.lock for this process. A lock of a process that no
-- longer runs (on this host) is taken over, and note(text) says so. Returns
-- a function that releases it.
function checks.lock(dir, note)
  local path = dir .. "/train.lock"
  local host = sys.hostname()
  for _ = 1, 2 do
    local ok, err, e = sys.create_new(path, format("pid %d host %s started %s\n", sys.pid(), host,
      os.date("!%Y-%m-%dT%H:%M:%SZ")))
    if ok then
      local held = true
      return function() -- once
        if held then os.remove(path) end
        held = false
      end
    end
    if e ~= EEXIST then error(format("cannot lock %s: %s", dir, err), 0) end
    local text = (sys.exists(path) and io.open(path):read("*a")) or ""
    local pid, holder = text:match("^pid (%d+) host (%S+)")
    pid = tonumber(pid)
    if holder == host and pid and not sys.alive(pid) then
      os.remove(path)
      if note then note(format("took over %s: its process %d no longer runs", path, pid)) end
    elseif pid then
      error(format("%s is in use by another `mtl train` (process %d on %s, %s): wait for it to end or use another "
        .. "model_dir; if that process is gone, remove %s", dir, pid, holder, path, path), 0)
    end -- else: released (or being written) meanwhile; try again
  end
  error(format("cannot lock %s: %s keeps appearing (another `mtl train` starting?)", dir, path), 0)
end

-- ---- leftovers of killed runs ------------------------------------------------------------
function checks.remove_stale(dir)
  local removed = sys.remove_stale(dir)
  for _, name in ipairs(sys.is_dir(dir .. "/checkpoints") and sys.remove_stale(dir .. "/checkpoints") or {}) do
    removed[#removed + 1] = "checkpoints/" .. name
  end
  return removed
end

-- ---- resuming -----------------------------------------------------------------------------
-- The newest complete checkpoint of dir (a checkpoints directory) older than
-- step that loads (its CRCs check), or nil.
function checks.intact_before(dir, step)
  local all = mtl.checkpoint.list(dir)
  for i = #all, 1, -1 do
    if all[i].step < step and pcall(mtl.load, all[i].path) then return all[i] end
  end
end

return checks
