-- mtl.config.check: a checking context that collects problems, each naming its
-- key path the way --set spells it, and declarative option schemas.
--
--   local c = check.new("config")            -- messages start with "config: "
--   c:number(v, "train.steps", { int = true, min = 1 })
--   c:options(schema, t, "model")            -- a schema (below) over a table
--   if c:failed() then error(c:message(), 0) end
--
-- A schema maps option names to specs: { kind, default = v, ... } where kind is
--   "int"      an integer; min = (default 1)
--   "number"   a finite number; min, max, gt, lt bound it
--   "boolean", "string"
--   "enum"     values = {...}
--   "sizes"    a list of layer sizes {256, 128}; empty = true allows {}
--   "mlp"      layer sizes, or {hidden = sizes, activation =, batch_norm =,
--              dropout =, bias =, last_activation =, last_batch_norm =}: an
--              MLP's layers with their options (nn.MLP)
--   "any"      anything; a check function does the work
-- and check = function(c, value, path, t) for what a kind does not say (it
-- runs after the kind's own check passed), required = true for an option
-- without a default. check.apply fills the defaults.
local util = require "mtl.config.util"

local show = util.show

local check = {}

local Ctx = {}
Ctx.__index = Ctx
check.Ctx = Ctx

-- prefix: the word that starts every message ("config", "mmoe", ...).
function check.new(prefix)
  return setmetatable({ errs = {}, prefix = prefix }, Ctx)
end

function Ctx:err(fmt, ...) self.errs[#self.errs + 1] = self.prefix .. ": " .. string.format(fmt, ...) end
function Ctx:failed() return #self.errs > 0 end
function Ctx:message() return table.concat(self.errs, "\n") end

local function join(path, key)
  if path == "" then return tostring(key) end
  return path .. "." .. tostring(key)
end
check.join = join

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end
check.set_of = set_of

function check.one_of(list)
  local quoted = {}
  for i, v in ipairs(list) do quoted[i] = "'" .. v .. "'" end
  if #quoted == 1 then return quoted[1] end
  return table.concat(quoted, ", ", 1, #quoted - 1) .. " or " .. quoted[#quoted]
end

-- Unknown keys of a table (allowed: a list of names); where: its path.
function Ctx:keys(t, path, allowed, hint)
  local set = set_of(allowed)
  for _, k in ipairs(util.sorted_keys(t)) do
    if not set[k] then
      if type(k) ~= "string" then
        self:err("'%s' has an unexpected entry [%s] (expected named keys: %s)", path, show(k), table.concat(allowed, ", "))
      else
        local h = hint and hint(k)
        self:err("unknown key '%s'%s%s", join(path, k), util.did_you_mean(k, allowed), h or "")
      end
    end
  end
end

function Ctx:table(v, path, what)
  if type(v) ~= "table" then
    self:err("'%s' must be %s, got %s", path, what or "a table", show(v))
    return false
  end
  return true
end

function Ctx:list(v, path, what, allow_empty)
  if type(v) ~= "table" or (next(v) ~= nil and not util.is_list(v)) then
    self:err("'%s' must be %s, got %s", path, what or "a list", show(v))
    return false
  end
  if not allow_empty and #v == 0 then
    self:err("'%s' must not be empty", path)
    return false
  end
  return true
end

-- number checks: opts.int, opts.min (>=), opts.gt (>), opts.max (<=), opts.lt (<), opts.inf (math.huge allowed)
function Ctx:number(v, path, opts, what)
  opts = opts or {}
  local ok = type(v) == "number" and v == v
  if ok and (v == math.huge or v == -math.huge) and not opts.inf then ok = false end
  if ok and opts.int and v ~= math.huge and v ~= math.floor(v) then ok = false end
  if ok and opts.min and v < opts.min then ok = false end
  if ok and opts.gt and not (v > opts.gt) then ok = false end
  if ok and opts.max and v > opts.max then ok = false end
  if ok and opts.lt and not (v < opts.lt) then ok = false end
  if not ok then
    if not what then
      if opts.int and opts.min == 1 then what = "a positive integer"
      elseif opts.int and opts.min == 0 then what = "an integer >= 0"
      elseif opts.int then what = "an integer"
      elseif opts.gt == 0 then what = "a number > 0"
      elseif opts.min == 0 and opts.max == 1 then what = "a number in [0, 1]"
      elseif opts.min == 0 and opts.lt == 1 then what = "a number in [0, 1)"
      elseif opts.min == 0 then what = "a number >= 0"
      else what = "a finite number" end
    end
    self:err("'%s' must be %s, got %s", path, what, show(v))
  end
  return ok
end

function Ctx:string(v, path, what)
  if type(v) ~= "string" or v == "" then
    self:err("'%s' must be %s, got %s", path, what or "a non-empty string", show(v))
    return false
  end
  return true
end

function Ctx:enum(v, path, list)
  if type(v) ~= "string" or not set_of(list)[v] then
    self:err("'%s' must be %s, got %s%s", path, check.one_of(list), show(v), util.did_you_mean(v, list))
    return false
  end
  return true
end

function Ctx:boolean(v, path)
  if type(v) ~= "boolean" then
    self:err("'%s' must be true or false, got %s", path, show(v))
    return false
  end
  return true
end

-- A list of positive integers (layer sizes); empty allowed when allow_empty.
function Ctx:sizes(v, path, allow_empty)
  if not self:list(v, path, "a list of layer sizes such as {256, 128}", allow_empty) then return false end
  local ok = true
  for i, h in ipairs(v) do ok = self:number(h, join(path, i), { int = true, min = 1 }) and ok end
  return ok
end

-- The activations of mtl.nn's layers, by name (nn.activation builds them);
-- "leaky_relu:0.2" is leaky_relu with that slope.
check.ACTIVATIONS = { "relu", "relu6", "sigmoid", "tanh", "gelu", "gelu_tanh", "elu", "selu", "swish", "softplus",
                      "softsign", "leaky_relu", "linear", "none", "dice", "prelu" }

-- An activation: a name above, "leaky_relu:<slope>", or a function (from Lua).
function Ctx:activation(v, path)
  if type(v) == "function" then return true end
  if type(v) == "string" and v:match("^leaky_relu:") then
    if tonumber(v:sub(12)) then return true end
    self:err("'%s' must give leaky_relu a slope (\"leaky_relu:0.2\"), got %s", path, show(v))
    return false
  end
  return self:enum(v, path, check.ACTIVATIONS)
end

-- A dropout rate in [0, 1), or one per layer.
function Ctx:dropout(v, path)
  if type(v) ~= "table" then return self:number(v, path, { min = 0, lt = 1 }) end
  if not self:list(v, path, "a number in [0, 1) or one per layer") then return false end
  local ok = true
  for i, x in ipairs(v) do ok = self:number(x, join(path, i), { min = 0, lt = 1 }) and ok end
  return ok
end

local MLP_KEYS = { "hidden", "activation", "batch_norm", "dropout", "bias", "last_activation", "last_batch_norm" }

-- Layer sizes, or {hidden = sizes, activation =, batch_norm =, dropout =}.
function Ctx:mlp(v, path, allow_empty)
  if type(v) ~= "table" or next(v) == nil or util.is_list(v) then return self:sizes(v, path, allow_empty) end
  self:keys(v, path, MLP_KEYS)
  local ok = true
  if v.hidden == nil then self:err("missing required key '%s'", join(path, "hidden")); ok = false
  else ok = self:sizes(v.hidden, join(path, "hidden"), allow_empty) end
  if v.activation ~= nil then ok = self:activation(v.activation, join(path, "activation")) and ok end
  if v.batch_norm ~= nil then ok = self:boolean(v.batch_norm, join(path, "batch_norm")) and ok end
  if v.dropout ~= nil then ok = self:dropout(v.dropout, join(path, "dropout")) and ok end
  for _, k in ipairs({ "bias", "last_activation", "last_batch_norm" }) do
    if v[k] ~= nil then ok = self:boolean(v[k], join(path, k)) and ok end
  end
  return ok
end

-- A path, a glob, or a non-empty list of them.
function Ctx:files(v, path)
  if type(v) == "string" and v ~= "" then return true end
  if type(v) == "table" and util.is_list(v) then
    local ok = true
    for i, p in ipairs(v) do ok = self:string(p, join(path, i), "a path") and ok end
    return ok
  end
  self:err("'%s' must be a path, a glob or a list of paths, got %s", path, show(v))
  return false
end

-- ---- option schemas -------------------------------------------------------------------------------
local KINDS = {
  int = function(c, v, path, spec) return c:number(v, path, { int = true, min = spec.min or 1 }) end,
  number = function(c, v, path, spec)
    return c:number(v, path, { min = spec.min, max = spec.max, gt = spec.gt, lt = spec.lt })
  end,
  boolean = function(c, v, path) return c:boolean(v, path) end,
  string = function(c, v, path) return c:string(v, path) end,
  enum = function(c, v, path, spec) return c:enum(v, path, spec.values) end,
  sizes = function(c, v, path, spec) return c:sizes(v, path, spec.empty) end,
  mlp = function(c, v, path, spec) return c:mlp(v, path, spec.empty) end,
  any = function() return true end,
}

-- The option names of a schema, sorted.
function check.names(schema)
  local names = util.sorted_keys(schema)
  return names
end

-- Checks t's entries against schema (unknown keys are the caller's
-- business, see Ctx:keys); a missing entry is an error when its spec says
-- required = true.
function Ctx:options(schema, t, path)
  for _, name in ipairs(check.names(schema)) do
    local v, spec = t[name], schema[name]
    if v == nil and spec.required then self:err("missing required key '%s'", join(path, name)) end
    if v ~= nil then
      local kind = KINDS[spec[1]] or error(string.format("option schema: '%s' has an unknown kind '%s'", name, tostring(spec[1])))
      if kind(self, v, join(path, name), spec) and spec.check then spec.check(self, v, join(path, name), t) end
    end
  end
end

-- Fills in the defaults of schema that t lacks (copies of them); returns t.
function check.apply(schema, t)
  for name, spec in pairs(schema) do
    if t[name] == nil and spec.default ~= nil then t[name] = util.deep_copy(spec.default) end
  end
  return t
end

-- ---- a model's or block's options ---------------------------------------------------------------
-- Checks the options of a model or block class into c: cls's own reading
-- of tasks, unknown keys, the schemas of options and task options, its
-- cross-option checks; fills in defaults. path: where the options are
-- ("model" in a config, "" when building from Lua); extra: more allowed keys
-- ({"name"} in a config, {"input"} when building). A model (a class without
-- block = true) also takes tasks.
function check.options_of(c, cls, opts, path, extra)
  local schema = cls.options or {}
  if cls.check_tasks then cls.check_tasks(c, opts, path) end
  local allowed = check.names(schema)
  for _, k in ipairs(extra or {}) do allowed[#allowed + 1] = k end
  if not cls.check_tasks and not rawget(cls, "block") then allowed[#allowed + 1] = "tasks" end
  c:keys(opts, path, allowed)
  c:options(schema, opts, path)
  if cls.task_options and type(opts.tasks) == "table" then
    for i, t in ipairs(opts.tasks) do
      if type(t) == "table" then c:options(cls.task_options, t, join(path, "tasks." .. i)) end
    end
  end
  if cls.check then cls.check(c, opts, path) end
  check.apply(schema, opts)
  return opts
end

-- The options a model or block is built with: a deep copy of opts, checked
-- and completed (check.options_of); raises one error listing every problem,
-- each naming the option: "mmoe: 'experts' must be a positive integer, got
-- 0". nn.class calls this for every class with an options schema, so
-- require "models.mmoe" {...} and mtl.models.build("mmoe", {...}) agree. A
-- model also takes input (the size of its input vector), inputs and
-- input_lists (a model that reads feature groups: {group = size} and {group
-- = the widths of its feature list}) and tasks; a block
-- (cls.block) declares all of its options.
function check.prepare(cls, opts)
  local copy = util.deep_copy(opts or {})
  local block = rawget(cls, "block")
  local c = check.new(rawget(cls, "model_name") or (block and "nn." or "") .. cls.__name)
  if block then
    check.options_of(c, cls, copy, "")
  else
    if copy.input == nil then c:err("missing required option 'input' (the size of the input vector)")
    else c:number(copy.input, "input", { int = true, min = 1 }) end
    check.options_of(c, cls, copy, "", { "input", "inputs", "input_lists" })
  end
  if c:failed() then error(c:message(), 0) end
  return copy
end

return check
