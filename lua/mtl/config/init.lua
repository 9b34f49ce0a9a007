-- mtl.config: reading, overriding and checking configs (docs/config.md).
--
--   local config = require "mtl.config"
--   local cfg = config.load("configs/mmoe.lua", {"train.steps=100", "model.experts=8"})
--   local cfg = config.load("pipeline.config")          -- an EasyRec config
--   local t = config.read_data("model/config.lua")       -- a data file: parsed, never run
--
-- load = read (a Lua file, or an EasyRec protobuf-text file mapped onto the
-- mtl structure) + apply_overrides + validate. Nothing here needs mtl.core.
local util = require "mtl.config.util"
local lua_config = require "mtl.config.lua_config"
local overrides = require "mtl.config.overrides"

local config = {}

config.validate = require "mtl.config.validate"
config.merge = lua_config.merge
config.parse_value = overrides.parse_value
config.SECTIONS = overrides.SECTIONS

-- The config in a file as a plain table (no overrides, no validation).
function config.read(path)
  if type(path) ~= "string" then error("config.read: expected a file path, got " .. type(path), 2) end
  return lua_config.read(path)
end

-- The table in a data file: one Lua table literal (`return { ... }`, as
-- mtl writes an exported model's config.lua), parsed by a grammar that runs
-- nothing (mtl.config.overrides.parse_source). A file of more than max_bytes
-- (default config.MAX_DATA_BYTES, 64 MiB) or of precompiled Lua is refused
-- before it is parsed: reading takes time and memory in proportion to at most
-- that many bytes.
config.MAX_DATA_BYTES = 64 * 2 ^ 20
function config.read_data(path, max_bytes)
  if type(path) ~= "string" then error("config.read_data: expected a file path, got " .. type(path), 2) end
  max_bytes = max_bytes or config.MAX_DATA_BYTES
  local f, err = io.open(path, "rb")
  if not f then error(string.format("%s: cannot open: %s", path, tostring(err):gsub("^[^:]*: ", "")), 0) end
  local text = f:read(max_bytes + 1) or ""
  f:close()
  if #text > max_bytes then
    error(string.format("%s: larger than %d bytes, more than a config may be: not read", path, max_bytes), 0)
  end
  if text:sub(1, 1) == "\27" then
    error(string.format("%s: is precompiled Lua (bytecode), not a table literal: not read", path), 0)
  end
  return overrides.parse_source(text, path)
end

-- A copy of cfg with "key.path=value" overrides applied in order.
function config.apply_overrides(cfg, list)
  if type(cfg) ~= "table" then error("config.apply_overrides: expected a config table, got " .. type(cfg), 2) end
  return overrides.apply(cfg, list)
end

-- Reads path (or takes a table), applies overrides, validates; returns the
-- validated config with defaults filled in.
function config.load(path, list)
  local cfg
  if type(path) == "table" then cfg = util.deep_copy(path) else cfg = config.read(path) end
  cfg = config.apply_overrides(cfg, list)
  return config.validate(cfg)
end

-- Lua source for a config table (plain data), e.g. to write the effective
-- config of a run next to its checkpoints.
function config.to_lua(cfg)
  local out = {}
  local function emit(v, indent)
    local t = type(v)
    if t == "string" then out[#out + 1] = string.format("%q", v)
    elseif t == "number" then
      if v == math.huge then out[#out + 1] = "math.huge"
      elseif v == -math.huge then out[#out + 1] = "-math.huge"
      elseif v ~= v then out[#out + 1] = "0/0"
      elseif v == math.floor(v) and math.abs(v) < 2^53 then out[#out + 1] = string.format("%d", v)
      else
        local text = string.format("%.15g", v)
        if tonumber(text) ~= v then text = string.format("%.16g", v) end
        if tonumber(text) ~= v then text = string.format("%.17g", v) end
        out[#out + 1] = text
      end
    elseif t == "boolean" then out[#out + 1] = tostring(v)
    elseif t == "table" then
      if next(v) == nil then out[#out + 1] = "{}" return end
      out[#out + 1] = "{\n"
      local inner = indent .. "  "
      if util.is_list(v) then
        for _, x in ipairs(v) do
          out[#out + 1] = inner
          emit(x, inner)
          out[#out + 1] = ",\n"
        end
      else
        for _, k in ipairs(util.sorted_keys(v)) do
          out[#out + 1] = inner
          if type(k) == "string" and k:match("^[%a_][%w_]*$") then out[#out + 1] = k
          else
            out[#out + 1] = "["
            emit(k, inner)
            out[#out + 1] = "]"
          end
          out[#out + 1] = " = "
          emit(v[k], inner)
          out[#out + 1] = ",\n"
        end
      end
      out[#out + 1] = indent .. "}"
    else
      error("config.to_lua: cannot write a " .. t, 0)
    end
  end
  emit(cfg, "")
  return "return " .. table.concat(out) .. "\n"
end

return config
