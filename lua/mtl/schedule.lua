-- mtl.schedule: learning-rate schedules (docs/optim.md, "Schedules").
--
-- A schedule is a callable object: s(k) is the lr of update k, where k counts
-- the optimizer steps already taken (0 for the first update). Pass one as an
-- optimizer's (or a group's) lr and the optimizer reads it at every step:
--   mtl.optim.adam{params = ps, lr = mtl.schedule.cosine{lr = 1e-3, total_steps = 1000, warmup_steps = 100}}
local format, floor, cos, pi, max, min = string.format, math.floor, math.cos, math.pi, math.max, math.min

return function(mtl)
  local schedule = {}
  local Schedule = {}
  Schedule.__index = Schedule
  Schedule.__call = function(self, k) return self:at(k) end
  Schedule.__tostring = function(self) return format("mtl.schedule.%s", self.kind) end

  -- Option checks: name the schedule, the option, the expectation and the value.
  local function number(kind, cfg, key, default, lo, strict, level)
    local v = cfg[key]
    if v == nil then v = default end
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge or v < lo or (strict and v == lo) then
      error(format("mtl.schedule.%s: %s must be a finite number %s %g, got %s", kind, key,
        strict and ">" or ">=", lo, tostring(v)), level or 3)
    end
    return v
  end

  local function integer(kind, cfg, key, default, lo, level)
    local v = number(kind, cfg, key, default, lo, false, level + 1)
    if v ~= floor(v) then error(format("mtl.schedule.%s: %s must be an integer, got %s", kind, key, tostring(v)), level) end
    return v
  end

  local function make(kind, fields, at)
    fields.kind = kind
    fields.at = at
    return setmetatable(fields, Schedule)
  end

  local function options(kind, cfg, known, level)
    if type(cfg) ~= "table" then error(format("mtl.schedule.%s: expected a table of options, got %s", kind, type(cfg)), level) end
    for k in pairs(cfg) do
      if not known[k] then error(format("mtl.schedule.%s: unknown option '%s'", kind, tostring(k)), level) end
    end
  end

  -- The options of a schedule constructor, read in order: fields is a list of
  -- {key, default (nil: required), lo, form}, form nil for a number >= lo, "gt"
  -- for one > lo, "int" for an integer >= lo, "flag" for a boolean (true or
  -- not); any other key is an error. Errors point at the constructor's caller.
  local function read_options(kind, cfg, fields)
    local known = {}
    for _, f in ipairs(fields) do known[f[1]] = true end
    options(kind, cfg, known, 4)
    local s = {}
    for _, f in ipairs(fields) do
      local key, default, lo, form = f[1], f[2], f[3], f[4]
      if form == "flag" then s[key] = cfg[key] == true
      elseif form == "int" then s[key] = integer(kind, cfg, key, default, lo, 4)
      else s[key] = number(kind, cfg, key, default, lo, form == "gt", 4) end
    end
    return s
  end

  -- constant{lr}
  function schedule.constant(cfg)
    return make("constant", read_options("constant", cfg, { { "lr", nil, 0 } }), function(self) return self.lr end)
  end

  -- exponential{lr, decay_rate, decay_steps, staircase = false, min_lr = 0}:
  -- lr * decay_rate ^ (k / decay_steps) (exponent floored when staircase), at least min_lr.
  function schedule.exponential(cfg)
    return make("exponential", read_options("exponential", cfg, {
      { "lr", nil, 0 }, { "decay_rate", nil, 0 }, { "decay_steps", nil, 0, "gt" }, { "staircase", nil, nil, "flag" },
      { "min_lr", 0, 0 },
    }), function(self, k)
      local e = k / self.decay_steps
      if self.staircase then e = floor(e) end
      return max(self.lr * self.decay_rate ^ e, self.min_lr)
    end)
  end

  -- step{lr, step_size, gamma = 0.1}: lr * gamma ^ floor(k / step_size) (PyTorch's StepLR).
  function schedule.step(cfg)
    return make("step", read_options("step", cfg, {
      { "lr", nil, 0 }, { "step_size", nil, 1, "int" }, { "gamma", 0.1, 0 },
    }), function(self, k) return self.lr * self.gamma ^ floor(k / self.step_size) end)
  end

  -- manual{boundaries = {b1, ..., bn}, values = {v0, ..., vn}}: v0 while k < b1,
  -- v_i while b_i <= k < b_{i+1}, vn from bn on. Also known as piecewise.
  function schedule.manual(cfg)
    local kind = "manual"
    options(kind, cfg, { boundaries = true, values = true }, 3)
    local b, v = cfg.boundaries, cfg.values
    if type(b) ~= "table" or type(v) ~= "table" or #v ~= #b + 1 then
      error(format("mtl.schedule.manual: expected boundaries (n numbers) and values (n + 1 numbers), got %s and %s",
        type(b) == "table" and #b .. " boundaries" or type(b), type(v) == "table" and #v .. " values" or type(v)), 2)
    end
    for i = 1, #b do
      if type(b[i]) ~= "number" or (i > 1 and b[i] <= b[i - 1]) then
        error(format("mtl.schedule.manual: boundaries must be increasing numbers, got %s at %d", tostring(b[i]), i), 2)
      end
    end
    for i = 1, #v do
      if type(v[i]) ~= "number" or not (v[i] >= 0) then
        error(format("mtl.schedule.manual: values must be numbers >= 0, got %s at %d", tostring(v[i]), i), 2)
      end
    end
    local bs, vs = {}, {}
    for i = 1, #b do bs[i] = b[i] end
    for i = 1, #v do vs[i] = v[i] end
    return make(kind, { boundaries = bs, values = vs }, function(self, k)
      local bb = self.boundaries
      for i = 1, #bb do
        if k < bb[i] then return self.values[i] end
      end
      return self.values[#bb + 1]
    end)
  end
  schedule.piecewise = schedule.manual

  -- linear_warmup{lr, warmup_steps, start_lr = 0}: start_lr + (lr - start_lr) * k / warmup_steps
  -- for k < warmup_steps, then lr.
  function schedule.linear_warmup(cfg)
    return make("linear_warmup", read_options("linear_warmup", cfg, {
      { "lr", nil, 0 }, { "warmup_steps", nil, 1, "int" }, { "start_lr", 0, 0 },
    }), function(self, k)
      if k >= self.warmup_steps then return self.lr end
      return self.start_lr + (self.lr - self.start_lr) * k / self.warmup_steps
    end)
  end

  -- cosine{lr, total_steps, warmup_steps = 0, min_lr = 0, start_lr = 0}: linear warmup as
  -- above, then min_lr + (lr - min_lr) * (1 + cos(pi * p)) / 2 with
  -- p = (k - warmup_steps) / (total_steps - warmup_steps), held at min_lr after total_steps.
  function schedule.cosine(cfg)
    local s = read_options("cosine", cfg, {
      { "lr", nil, 0 }, { "total_steps", nil, 1, "int" }, { "warmup_steps", 0, 0, "int" }, { "min_lr", 0, 0 },
      { "start_lr", 0, 0 },
    })
    if s.total_steps <= s.warmup_steps then
      error(format("mtl.schedule.cosine: total_steps must be > warmup_steps, got %d and %d", s.total_steps,
        s.warmup_steps), 2)
    end
    return make("cosine", s, function(self, k)
      local w = self.warmup_steps
      if k < w then return self.start_lr + (self.lr - self.start_lr) * k / w end
      local p = min(1, (k - w) / (self.total_steps - w))
      return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + cos(pi * p))
    end)
  end

  -- polynomial{lr, decay_steps, end_lr = 0, power = 1}:
  -- (lr - end_lr) * (1 - min(k, decay_steps) / decay_steps) ^ power + end_lr.
  function schedule.polynomial(cfg)
    return make("polynomial", read_options("polynomial", cfg, {
      { "lr", nil, 0 }, { "decay_steps", nil, 1, "int" }, { "end_lr", 0, 0 }, { "power", 1, 0, "gt" },
    }), function(self, k)
      local frac = 1 - min(k, self.decay_steps) / self.decay_steps
      return (self.lr - self.end_lr) * frac ^ self.power + self.end_lr
    end)
  end

  schedule.Schedule = Schedule
  mtl.schedule = schedule
end
