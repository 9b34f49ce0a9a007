-- mtl.config.validate_optimizer: the checks of the optimizer section's
-- optimizers and learning-rate schedule (docs/config.md), for
-- mtl.config.validate. Each takes the checking context c (mtl.config.check)
-- and reports into it; defaults are filled in.
local util = require "mtl.config.util"

local show = util.show

local M = {}

local OPTIMIZERS = {
  sgd = { lr = 0.01, keys = { "momentum", "nesterov", "weight_decay" } },
  adam = { lr = 1e-3, keys = { "beta1", "beta2", "eps", "weight_decay" } },
  adamw = { lr = 1e-3, keys = { "beta1", "beta2", "eps", "weight_decay" } },
  adagrad = { lr = 0.01, keys = { "lr_decay", "weight_decay", "initial_accumulator", "eps" } },
  ftrl = { lr = 1e-3, keys = { "lr_power", "l1", "l2", "initial_accumulator" } },
  rmsprop = { lr = 0.01, keys = { "alpha", "eps", "weight_decay", "momentum", "centered" } },
}
local OPTIMIZER_NAMES = { "sgd", "adam", "adamw", "adagrad", "ftrl", "rmsprop" }

-- Schedules: options and the required ones (names as train.lua maps them).
local SCHEDULES = {
  constant = { keys = { "lr" }, required = {} },
  exponential_decay = { keys = { "lr", "decay_steps", "decay_factor", "decay_rate", "staircase", "min_lr" },
                        required = { "decay_steps" } },
  cosine = { keys = { "lr", "total_steps", "warmup_steps", "min_lr", "start_lr" }, required = { "total_steps" } },
  linear_warmup = { keys = { "lr", "warmup_steps", "start_lr" }, required = { "warmup_steps" } },
  polynomial = { keys = { "lr", "decay_steps", "end_lr", "power" }, required = { "decay_steps" } },
  manual = { keys = { "boundaries", "values" }, required = { "boundaries", "values" } },
  step = { keys = { "lr", "step_size", "gamma" }, required = { "step_size" } },
}
local SCHEDULE_ALIASES = { exponential = "exponential_decay", cosine_decay = "cosine",
                           polynomial_decay = "polynomial", manual_step = "manual", piecewise = "manual" }

M.OPTIMIZERS, M.SCHEDULES = OPTIMIZERS, SCHEDULES

local OPTION_RANGES = {
  momentum = { min = 0, lt = 1 }, beta1 = { min = 0, lt = 1 }, beta2 = { min = 0, lt = 1 }, eps = { gt = 0 },
  weight_decay = { min = 0 }, lr_decay = { min = 0 }, initial_accumulator = { min = 0 }, lr_power = { max = 0 },
  l1 = { min = 0 }, l2 = { min = 0 }, alpha = { min = 0, lt = 1 },
}

-- An optimizer's table at path p (optimizer.dense, optimizer.sparse).
function M.optimizer(c, o, p)
  if not c:table(o, p, "{name = 'adam', lr = 1e-3, ...}") then return end
  if o.name == nil then o.name = "adam" end
  if not c:enum(o.name, p .. ".name", OPTIMIZER_NAMES) then return end
  local kind = OPTIMIZERS[o.name]
  local allowed = { "name", "lr" }
  for _, k in ipairs(kind.keys) do allowed[#allowed + 1] = k end
  c:keys(o, p, allowed, function(k)
    for _, other in ipairs(OPTIMIZER_NAMES) do
      for _, ok in ipairs(OPTIMIZERS[other].keys) do
        if ok == k then return string.format(" (%s takes %s)", o.name, table.concat(allowed, ", ", 2)) end
      end
    end
  end)
  if o.lr == nil then o.lr = kind.lr else c:number(o.lr, p .. ".lr", { gt = 0 }) end
  for _, k in ipairs(kind.keys) do
    local v = o[k]
    if v ~= nil then
      if k == "nesterov" or k == "centered" then c:boolean(v, p .. "." .. k)
      else c:number(v, p .. "." .. k, OPTION_RANGES[k]) end
    end
  end
end

-- optimizer.schedule.
function M.schedule(c, s)
  local p = "optimizer.schedule"
  if not c:table(s, p, "{name = 'exponential_decay', ...}") then return end
  if s.name == nil then s.name = "constant" end
  local names = util.sorted_keys(SCHEDULES)
  for alias in pairs(SCHEDULE_ALIASES) do names[#names + 1] = alias end
  table.sort(names)
  if not c:enum(s.name, p .. ".name", names) then return end
  local kind = SCHEDULES[SCHEDULE_ALIASES[s.name] or s.name]
  local allowed = { "name" }
  for _, k in ipairs(kind.keys) do allowed[#allowed + 1] = k end
  c:keys(s, p, allowed)
  for _, k in ipairs(kind.required) do
    if s[k] == nil then c:err("missing required key '%s.%s' (for the %s schedule)", p, k, s.name) end
  end
  local canonical = SCHEDULE_ALIASES[s.name] or s.name
  if canonical == "exponential_decay" then
    if s.decay_factor == nil and s.decay_rate == nil then
      c:err("missing required key '%s.decay_factor' (for the %s schedule)", p, s.name)
    elseif s.decay_factor ~= nil and s.decay_rate ~= nil then
      c:err("'%s' has decay_factor and decay_rate (the same thing); give one", p)
    end
  end
  for _, k in ipairs({ "lr", "min_lr", "start_lr", "end_lr" }) do
    if s[k] ~= nil then c:number(s[k], p .. "." .. k, { min = 0 }) end
  end
  for _, k in ipairs({ "decay_factor", "decay_rate", "gamma" }) do
    if s[k] ~= nil then c:number(s[k], p .. "." .. k, { min = 0 }) end
  end
  for _, k in ipairs({ "decay_steps", "total_steps", "step_size" }) do
    if s[k] ~= nil then c:number(s[k], p .. "." .. k, { int = true, min = 1 }) end
  end
  if s.warmup_steps ~= nil then
    c:number(s.warmup_steps, p .. ".warmup_steps", { int = true, min = canonical == "linear_warmup" and 1 or 0 })
  end
  if s.power ~= nil then c:number(s.power, p .. ".power", { gt = 0 }) end
  if s.staircase ~= nil then c:boolean(s.staircase, p .. ".staircase") end
  if canonical == "cosine" and type(s.total_steps) == "number" and type(s.warmup_steps) == "number"
    and s.total_steps <= s.warmup_steps then
    c:err("'%s.total_steps' (%s) must be greater than warmup_steps (%s)", p, show(s.total_steps), show(s.warmup_steps))
  end
  if canonical == "manual" and type(s.boundaries) == "table" and type(s.values) == "table" then
    if c:list(s.boundaries, p .. ".boundaries", "a list of increasing steps")
      and c:list(s.values, p .. ".values", "a list of learning rates") then
      for i, b in ipairs(s.boundaries) do
        if c:number(b, p .. ".boundaries." .. i, { int = true, min = 1 }) and i > 1
          and type(s.boundaries[i - 1]) == "number" and not (b > s.boundaries[i - 1]) then
          c:err("'%s.boundaries' must increase, got %s after %s", p, show(b), show(s.boundaries[i - 1]))
        end
      end
      for i, v in ipairs(s.values) do c:number(v, p .. ".values." .. i, { min = 0 }) end
      if #s.values ~= #s.boundaries + 1 then
        c:err("'%s.values' needs one more entry than boundaries (%d), got %d", p, #s.boundaries, #s.values)
      end
    end
  end
end

return M
