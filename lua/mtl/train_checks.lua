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
-- and, as methods of mtl.train's Run: run:loss_finite(sums, names) (train.nan_loss),
-- run:skipped_rows() and run:keep_skipped(reader) (data.bad_rows = "skip").
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

-- ---- during the run (methods of mtl.train's Run) ---------------------------------------------
-- Whether the global loss of the step about to be taken is finite. When it
-- is not: an error naming the step and the tasks, before any update (the
-- weights and the latest checkpoint stay as they were), or with
-- train.nan_loss = "skip" a count of skipped batches (run.skipped_nan) and
-- false. sums: the total, then each task's (the same on every rank).
function checks.loss_finite(self, sums, names)
  local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end
  if finite(sums[1]) then return true end
  local bad = {}
  for i, name in ipairs(names) do
    if not finite(sums[i + 1]) then bad[#bad + 1] = string.format("'%s' %s", name, tostring(sums[i + 1])) end
  end
  local what = #bad > 0 and ("task " .. table.concat(bad, ", task ")) or ("total " .. tostring(sums[1]))
  if (self.cfg.train or {}).nan_loss == "skip" then
    self.skipped_nan = (self.skipped_nan or 0) + 1
    return false
  end
  local all = self.model_dir and mtl.checkpoint.list(self.model_dir .. "/checkpoints") or {}
  error(string.format("the loss is not finite at step %d (%s); no update was made%s. Look for extreme "
    .. "values in the inputs or lower the learning rate; train.nan_loss = \"skip\" skips such batches",
    self.step + 1, what, #all > 0 and string.format(", the latest checkpoint is %s", all[#all].path) or ""), 0)
end

-- The training rows skipped so far (data.bad_rows = "skip"), summed over the
-- ranks: {not_finite =, out_of_range =, malformed =} (the reasons that
-- occurred), or nil when none was. Every rank calls it (a collective).
local REASONS = { "malformed", "not_finite", "out_of_range" }
function checks.skipped_rows(self)
  if (self.cfg.data or {}).bad_rows ~= "skip" then return nil end
  local now = self.epoch_reader and self.epoch_reader:skipped_by() or {}
  local list = {}
  for i, k in ipairs(REASONS) do list[i] = ((self.skipped_before or {})[k] or 0) + (now[k] or 0) end
  local sums = require("mtl.parallel").sum_numbers(list)
  local out, any = {}, false
  for i, k in ipairs(REASONS) do
    if sums[i] > 0 then out[k], any = sums[i], true end
  end
  return any and out or nil
end

-- At an epoch's end: its reader's skipped rows join those of the epochs before
-- (the next epoch's reader counts its own).
function checks.keep_skipped(self, reader)
  local now, before = reader:skipped_by(), self.skipped_before or {}
  for _, k in ipairs(REASONS) do before[k] = (before[k] or 0) + now[k] end
  self.skipped_before = before
end

-- ---- resuming -----------------------------------------------------------------------------
-- The complete checkpoints of dir (a checkpoints directory), oldest first;
-- with from (--resume-from), those up to the one of step from, the later
-- ones removed (the run takes their steps again).
function checks.resume_list(dir, from)
  local all = mtl.checkpoint.list(dir)
  if not from then return all end
  local keep, found = {}, false
  for _, c in ipairs(all) do
    if c.step <= from then keep[#keep + 1] = c end
    found = found or c.step == from
  end
  if not found then
    local steps = {}
    for i, c in ipairs(all) do steps[i] = tostring(c.step) end
    error(format("--resume-from %d: %s has no complete checkpoint of step %d (it has: %s)", from, dir, from,
      #steps > 0 and table.concat(steps, ", ") or "none"), 0)
  end
  for _, c in ipairs(all) do if c.step > from then mtl.checkpoint.remove(c) end end
  return keep
end

-- The newest complete checkpoint of dir older than step that loads (its
-- CRCs check), or nil.
function checks.intact_before(dir, step)
  local all = mtl.checkpoint.list(dir)
  for i = #all, 1, -1 do
    if all[i].step < step and pcall(mtl.load, all[i].path) then return all[i] end
  end
end

-- The manifest and the state of the checkpoint of step (path), or an error
-- naming the newest older one that loads and the command (default "mtl
-- train CONFIG") that resumes from it.
function checks.load_resumable(dir, step, path, command)
  command = command or "mtl train CONFIG"
  local ok, manifest = pcall(mtl.checkpoint.read_manifest, dir, step)
  local state
  if ok then ok, state = pcall(mtl.load, path) end
  if ok then return manifest, state end
  local older = checks.intact_before(dir, step)
  local how = older and format("the newest intact checkpoint is %s (step %d): resume from it with `%s --resume-from %d` "
    .. "(that removes the checkpoints after it)", older.path, older.step, command, older.step)
    or format("no older checkpoint loads: start over with `%s --fresh`", command)
  error(format("cannot resume from %s: %s\n%s", path, tostring(manifest or state), how), 0)
end

return checks
