-- mtl.models: the registry of architectures. A model is one file,
-- models/<name>.lua, found on package.path (mtl's own models/ and any other
-- directory on the path that holds a models/ folder): nothing else lists them.
--
--   models.names()                      -- {"aitm", "cgc", ...}, sorted
--   models.get("mmoe")                  -- the class
--   models.build("mmoe", {input = 232, tasks = {...}, experts = 4})
--   models.summary("mmoe")              -- the file's first line, for --help
--   models.block("MLP")                 -- a block class by name (models.blocks())
--
-- A model file returns an nn class (nn.class) and may declare, as fields of it:
--   options        option schema (mtl.config.check): kinds, defaults, checks;
--                  building fills the defaults and rejects unknown options
--   task_options   extra keys a task of this model takes (schema)
--   check_tasks(c, opts, path)   its own reading of `tasks` (ESMM's ctr/cvr)
--   check(c, opts, path)         checks across options, after the schema's
--   blocks         {Name = class}: blocks of its own others may build from
--   bench          {spec = opts, paper = opts}: the benchmark's settings
--   easyrec        {class =, field =, map = function(m, model, er)}: how an
--                  EasyRec model_config of that class maps to its options
-- and methods: gates() (expert utilization), aux_loss(), default_losses(),
-- eval_targets(), direct_outputs() (see docs/new_architecture.md).
local check = require "mtl.config.check"
local util = require "mtl.config.util"
local sys = require "mtl.sys"

local models = {}

-- ---- discovery ---------------------------------------------------------------------------------
-- name -> file path of every models/<name>.lua on package.path (the first
-- one wins, as require would load it).
local function discover()
  local found = {}
  for template in package.path:gmatch("[^;]+") do
    local dir = template:match("^(.-)%?%.lua$")
    if dir then
      dir = (dir == "" and "." or dir:gsub("/$", "")) .. "/models"
      for _, f in ipairs(sys.list_dir(dir) or {}) do
        local name = f:match("^([%w_]+)%.lua$")
        -- busted's spec files (x_spec.lua) may sit in a models/ folder on the path
        if name and not name:match("_spec$") and not found[name] then found[name] = dir .. "/" .. f end
      end
    end
  end
  return found
end

function models.names()
  local names = {}
  for name in pairs(discover()) do names[#names + 1] = name end
  table.sort(names)
  return names
end

-- The model file's first comment line, without its leading "-- ".
function models.summary(name)
  local path = discover()[name]
  local f = path and io.open(path)
  if not f then return nil end
  local line = f:read("*l") or ""
  f:close()
  return (line:gsub("^%-%-%s*", ""))
end

-- A model file that exists but fails to load (a syntax error, an error while
-- it runs) raises its own error, not "unknown model".
function models.get(name)
  local module = "models." .. tostring(name)
  local ok, cls = pcall(require, module)
  if not ok then
    if tostring(cls):find("module '" .. module .. "' not found", 1, true) then
      error(string.format("mtl.models: unknown model '%s' (known: %s)", tostring(name),
        table.concat(models.names(), ", ")), 2)
    end
    error(string.format("mtl.models: model '%s' failed to load: %s", tostring(name), tostring(cls)), 2)
  end
  if type(cls) ~= "table" or not rawget(cls, "__is_module") then
    error(string.format("mtl.models: models/%s.lua does not return an nn class (nn.class)", tostring(name)), 2)
  end
  rawset(cls, "model_name", name)
  return cls
end

-- ---- blocks ------------------------------------------------------------------------------------
-- The blocks models and graphs are built from, by name: mtl.nn's (MLP,
-- Tower, Experts, Gate: classes with block = true) and those a model file
-- exports as cls.blocks (CGC's ExtractionLayer, AITM's AIT). Every block
-- takes one options table checked against its schema.
function models.blocks()
  local nn = require "mtl.nn"
  local out = {}
  for name, cls in pairs(nn) do
    if type(cls) == "table" and rawget(cls, "__is_module") and rawget(cls, "block") then out[name] = cls end
  end
  for _, model in ipairs(models.names()) do
    local ok, cls = pcall(models.get, model)
    for name, b in pairs(ok and rawget(cls, "blocks") or {}) do
      if not out[name] then out[name] = b end
    end
  end
  return out
end

function models.block(name)
  local all = models.blocks()
  local cls = all[name]
  if not cls then
    local names = util.sorted_keys(all)
    error(string.format("mtl.models: unknown block '%s' (known: %s)%s", tostring(name), table.concat(names, ", "),
      util.did_you_mean(tostring(name), names)), 2)
  end
  return cls
end

-- Checking a model's options (config validation) and preparing them for
-- building (nn.class does that for every class with a schema): check.options_of
-- and check.prepare, in mtl.config.check.

function models.build(name, opts)
  return models.get(name)(opts)
end

return models
