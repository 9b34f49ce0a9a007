-- Training progress for mtl.train's Run:fit (docs/training.md, "Progress").
--
--   local p = progress.new{out = io.stdout}      -- a bar on a terminal, lines otherwise
--   train.new(cfg, {progress = p}):fit()
--
-- On a terminal one line is redrawn at most ten times a second:
--   [=========>          ] 45% 1240/2750  3.1k ex/s  ETA 0:12  loss 0.4321  auc click 0.712 pay 0.651
-- (the AUCs are each task's AUC over the last train.auc_window batches,
-- refreshed once a second). Elsewhere (a pipe, a file, CI) it writes one plain
-- line every train.log_every steps and one per evaluation.
-- The methods Run:fit calls: start, step, log, eval, message, finish.
local mtl = require "mtl"
local sys = require "mtl.sys"
local sorted_keys = require("mtl.config.util").sorted_keys

local now = sys.now

local progress = {}

local Progress = {}
Progress.__index = Progress
progress.Progress = Progress

local function isatty_of(out)
  if out == io.stdout then return sys.isatty(1) end
  if out == io.stderr then return sys.isatty(2) end
  return false
end

-- opts: out (a file, default io.stdout), quiet (no output at all),
-- tty (force the bar on or off; default: whether out is a terminal).
function progress.new(opts)
  opts = opts or {}
  local out = opts.out or io.stdout
  local tty = opts.tty
  if tty == nil then tty = isatty_of(out) end
  return setmetatable({ out = out, quiet = opts.quiet, tty = tty, last_draw = -1, last_auc = -1,
                        auc = {}, drawn = false }, Progress)
end

-- Lines in plain-text files (for the ETA when only epochs are given); nil
-- when a file is compressed, a glob or missing.
local function count_rows(files, header)
  local quoted = {}
  if #files == 0 then return nil end
  for _, f in ipairs(files) do
    if f:match("[*?%[]") or f:match("%.gz$") then return nil end
    local h = io.open(f)
    if not h then return nil end
    h:close()
    quoted[#quoted + 1] = "'" .. f:gsub("'", "'\\''") .. "'"
  end
  local p = io.popen("cat " .. table.concat(quoted, " ") .. " | wc -l")
  local n = p and tonumber(p:read("*a"))
  if p then p:close() end
  if not n then return nil end
  return n - (header and #files or 0)
end
progress.count_rows = count_rows

local function fmt_time(s)
  if not s or s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  local floor = math.floor
  if s >= 3600 then return string.format("%d:%02d:%02d", floor(s / 3600), floor((s % 3600) / 60), s % 60) end
  return string.format("%d:%02d", floor(s / 60), s % 60)
end
progress.format_time = fmt_time

local function fmt_rate(r)
  if r >= 1e6 then return string.format("%.1fM", r / 1e6) end
  if r >= 1e3 then return string.format("%.1fk", r / 1e3) end
  return string.format("%.0f", r)
end

local function fmt_auc(auc, digits)
  local parts = {}
  for _, k in ipairs(sorted_keys(auc)) do
    local v = auc[k]
    parts[#parts + 1] = string.format("%s %s", k, (v == v) and string.format("%." .. digits .. "f", v) or "-")
  end
  return table.concat(parts, " ")
end

function Progress:write(s)
  if self.quiet then return end
  if self.drawn then
    self.out:write("\r\27[K")
    self.drawn = false
  end
  self.out:write(s)
  self.out:flush()
end

-- info: {steps = budget or nil, epochs =, files =, batch_size =}
function Progress:start(run, info)
  self.t0 = now()
  self.step0 = run.step
  self.rows = 0
  self.total = info.steps
  if self.tty and not self.quiet then
    local rows = count_rows(info.files or {}, true)
    if rows and rows > 0 then
      local per_epoch = math.ceil(rows / (info.batch_size or 1024))
      local by_epochs = per_epoch * (info.epochs or 1)
      self.total = self.total and math.min(self.total, by_epochs) or by_epochs
    end
  end
end

function Progress:message(text) self:write(text .. "\n") end

-- After each training step: {loss =, rows =}.
function Progress:step(run, s)
  self.rows = self.rows + (s.rows or 0)
  self.loss = self.loss and (0.9 * self.loss + 0.1 * s.loss) or s.loss
  if not self.tty or self.quiet then return end
  local t = now()
  if t - self.last_draw < 0.1 then return end
  self.last_draw = t
  if t - self.last_auc >= 1 then
    self.auc = run:running_auc()
    self.last_auc = t
  end
  self:draw(run, t)
end

function Progress:draw(run, t)
  local elapsed = math.max(t - self.t0, 1e-9)
  local done = run.step - self.step0
  local rate = self.rows / elapsed
  local head
  if self.total and self.total > 0 then
    local frac = math.min(run.step / self.total, 1)
    local width = 20
    local filled = math.floor(frac * width + 0.5)
    local bar = string.rep("=", math.max(filled - 1, 0)) .. (filled > 0 and (filled < width and ">" or "=") or "")
    local eta = done > 0 and (self.total - run.step) * elapsed / done or nil
    head = string.format("[%-" .. width .. "s] %3d%% %d/%d  %s ex/s  ETA %s", bar, math.floor(frac * 100), run.step,
      self.total, fmt_rate(rate), fmt_time(eta))
  else
    head = string.format("step %d  epoch %d  %s ex/s  %s", run.step, run.epoch, fmt_rate(rate), fmt_time(elapsed))
  end
  local line = string.format("%s  loss %.4f", head, self.loss or 0 / 0)
  if next(self.auc) then line = line .. "  auc " .. fmt_auc(self.auc, 3) end
  local w = sys.term_width(self.out == io.stderr and 2 or 1)
  if #line > w - 1 then line = line:sub(1, w - 1) end
  self.out:write("\r\27[K", line)
  self.out:flush()
  self.drawn = true
end

-- A metrics.jsonl "train" record (every train.log_every steps).
function Progress:log(run, record)
  if self.tty or self.quiet then return end
  local line = string.format("step %d  epoch %d  loss %.4f", record.step, record.epoch, record.loss or 0 / 0)
  if record.running_auc and next(record.running_auc) then line = line .. "  auc " .. fmt_auc(record.running_auc, 4) end
  line = line .. string.format("  %s ex/s", fmt_rate(record.examples_per_s or 0))
  if record.gflops then line = line .. string.format("  %.1f GFLOP/s", record.gflops) end
  self:write(line .. "\n")
end

function Progress:eval(run, metrics, final)
  local text = mtl.metrics.summary(metrics)
  if final then
    self:write(string.format("final eval (step %d): %s\n", run.step, text))
  else
    self:write(string.format("eval at step %d: %s\n", run.step, text))
  end
end

function Progress:finish(run)
  if self.quiet then return end
  if self.drawn then
    self:draw(run, now())
    self.out:write("\n")
    self.drawn = false
  end
  self.out:flush()
end

return progress
