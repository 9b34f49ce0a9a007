-- mtl.config.lua_config: Lua config files.
--
-- A config file is a Lua chunk returning a table. It runs with the standard
-- library plus:
--   import(relpath)        another config (Lua or EasyRec), relative to this
--                          file; returns a fresh table each call
--   merge(base, changes)   a deep merge of two tables into a new one
--   config_dir             the directory of this file
-- Syntax and runtime errors carry the file and line ("x.lua:12: ..."); an
-- error in an imported file says where it was imported from.
local util = require "mtl.config.util"

local M = {}

-- merge(base, changes): a new table; tables that are not lists merge key by
-- key (recursively); anything else in changes (numbers, strings, lists)
-- replaces the value in base. Neither argument is modified.
function M.merge(base, changes)
  if changes == nil then return util.deep_copy(base) end
  if type(base) ~= "table" or type(changes) ~= "table" then return util.deep_copy(changes) end
  if util.is_list(changes) or (util.is_list(base) and next(changes) == nil) then return util.deep_copy(changes) end
  local out = util.deep_copy(base)
  for k, v in pairs(changes) do
    if type(v) == "table" and type(out[k]) == "table" then
      out[k] = M.merge(out[k], v)
    else
      out[k] = util.deep_copy(v)
    end
  end
  return out
end

-- Loads any config file (by extension) as a plain table, without validation.
-- stack: the files being loaded (import cycles are errors).
function M.read(path, stack)
  local kind = util.kind_of(path)
  if kind == "easyrec" then return require("mtl.config.easyrec").load(path) end
  if kind ~= "lua" then
    error(string.format("%s: unknown config file type (expected .lua, .config, .pbtxt or .prototxt)", path), 0)
  end
  return M.load(path, stack)
end

-- The first line of file that imports rel (for `return import(...)`, whose
-- frame Lua drops).
local function import_line(file, rel)
  local f = io.open(file, "rb")
  if not f then return nil end
  local n = 0
  for line in f:lines() do
    n = n + 1
    if line:find("import", 1, true) and line:find(rel, 1, true) then
      f:close()
      return n
    end
  end
  f:close()
  return nil
end

-- A config file is a program: one that never returns (a loop gone wrong) is
-- stopped after M.instruction_budget Lua VM instructions with an error naming
-- the file. Its chunk runs interpreted (count hooks do not reach compiled
-- code); imported configs run under the outermost file's budget.
M.instruction_budget = 1e8
local HOOK_EVERY = 1e5

local function run_bounded(chunk, path, outermost)
  jit.off(chunk, true)
  if not outermost then return pcall(chunk) end
  local old = { debug.gethook() }
  local left = math.ceil(M.instruction_budget / HOOK_EVERY)
  debug.sethook(function()
    left = left - 1
    if left <= 0 then
      debug.sethook()
      local info, where = debug.getinfo(2, "Sl"), path -- where it was running: a file and line
      if info and info.source:sub(1, 1) == "@" and info.currentline > 0 then
        where = info.source:sub(2) .. ":" .. info.currentline
      end
      error(string.format("%s: the config did not finish within %.0f Lua instructions (an endless loop?)", where,
        M.instruction_budget), 0)
    end
  end, "", HOOK_EVERY)
  local ok, res = pcall(chunk)
  debug.sethook(unpack(old))
  return ok, res
end

function M.load(path, stack)
  stack = stack or {}
  for i, p in ipairs(stack) do
    if p == path then
      local chain = {}
      for j = i, #stack do chain[#chain + 1] = stack[j] end
      chain[#chain + 1] = path
      error(string.format("%s: import cycle: %s", path, table.concat(chain, " -> ")), 0)
    end
  end
  local f = io.open(path, "rb")
  if not f then error(string.format("%s: cannot open the config file", path), 0) end
  f:close()
  local chunk, err = util.loadfile(path)
  if not chunk then error(err, 0) end -- "path:line: syntax message"
  local inner = {}
  for i, p in ipairs(stack) do inner[i] = p end
  inner[#inner + 1] = path
  local dir = util.dirname(path)
  local env = setmetatable({}, { __index = _G })
  env.config_dir = dir
  env.merge = function(base, changes)
    if type(base) ~= "table" then error("merge: the base must be a table, got " .. type(base), 2) end
    if changes ~= nil and type(changes) ~= "table" then
      error("merge: the changes must be a table, got " .. type(changes), 2)
    end
    return M.merge(base, changes)
  end
  env.import = function(rel)
    if type(rel) ~= "string" then error("import: expected a path relative to this config, got " .. type(rel), 2) end
    local target = util.join(dir, rel)
    local info = debug.getinfo(2, "Sl")
    local line = info and info.source == "@" .. path and info.currentline or -1
    if line <= 0 then line = import_line(path, rel) end -- a tail call (return import(...)) leaves no frame
    local where = line and line > 0 and string.format("%s:%d", path, line) or path
    local ok, res = pcall(M.read, target, inner)
    if not ok then
      res = tostring(res)
      if not res:find("\n  imported from", 1, true) and res:find("cannot open the config file", 1, true)
        and res:sub(1, #target) == target then
        error(string.format("%s: import: cannot open '%s' (resolved to %s)", where, rel, target), 0)
      end
      error(res .. "\n  imported from " .. where, 0)
    end
    return res
  end
  setfenv(chunk, env)
  local ok, res = run_bounded(chunk, path, #stack == 0)
  if not ok then
    if type(res) ~= "string" then res = string.format("%s: the config raised %s", path, util.show(res)) end
    error(res, 0)
  end
  if type(res) ~= "table" then
    error(string.format("%s: a config file must return a table, got %s", path, util.show(res)), 0)
  end
  return res
end

return M
