-- mtl.config.overrides: `--set key.path=value` on a config table.
--
--   overrides.parse_value("{256, 128}")    --> {256, 128}
--   overrides.apply(cfg, {"train.steps=100", "model.tasks.ctr.weight=2"})
--
--   overrides.parse_source(text, name)  --> the table of a data file ("return {...}")
--
-- Values are read by a small LPeg grammar, never by load/loadstring:
--   numbers (Lua syntax: 10, -1.5e-3, 0x10), inf, -inf, nan, true, false, nil
--   (removes the key), quoted strings ("..." or '...' with Lua escapes), Lua table
--   literals ({256, 128}, {name = "adam", lr = 1e-3}, nested; a bare word inside a
--   table is a string: {auc, logloss}); anything else is the text itself as a
--   string (data.train=runs/a b.csv). Comments (-- to the end of the line, --[[ ]])
--   may stand between tokens; 0/0 and -math.huge (as mtl writes NaN and -inf) are numbers.
-- Path components that are numbers index lists; a word indexes a table, or, in a
-- list of named tables (features, model.tasks, losses), the entry with that name.
local lpeg = require "lpeg"
local util = require "mtl.config.util"
local P, R, S, C, Cp, Cmt, Ct, Cs, Cc = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cp, lpeg.Cmt, lpeg.Ct, lpeg.Cs, lpeg.Cc
local V = lpeg.V

local overrides = {}

-- The sections a config may have (docs/config.md).
overrides.SECTIONS = { "data", "features", "model", "losses", "optimizer", "train", "eval", "rank", "model_dir" }

local Failure = {}
local function fail(what)
  return Cmt(P(true), function(_, pos) error(setmetatable({ pos = pos, what = what }, Failure)) end)
end
local function expect(p, what) return p + fail(what) end

-- LPeg's backtrack stack (400 entries) overflows past about 60 nested tables,
-- with a message that names nothing; deeper nesting is refused first, at the
-- '{'. Once a '{' is matched the value either closes it or fails.
local MAX_DEPTH = 32
local depth = 0 -- reset by parse_value
local open_brace = Cmt(P("{"), function(_, pos)
  depth = depth + 1
  if depth > MAX_DEPTH then
    error(setmetatable({ pos = pos - 1, message = string.format("tables nested deeper than %d levels", MAX_DEPTH) },
      Failure))
  end
  return pos
end)
local close_brace = Cmt(P("}"), function(_, pos)
  depth = depth - 1
  return pos
end)

local comment = P("--") * (P("[[") * (1 - P("]]"))^0 * P("]]") + (1 - S("\n"))^0)
local ws = (S(" \t\r\n") + comment)^0
local digit, hex = R("09"), R("09", "af", "AF")
local ident_char = R("az", "AZ", "09") + P("_")
local ident = (R("az", "AZ") + P("_")) * ident_char^0
local exponent = S("eE") * S("+-")^-1 * digit^1
local number = C(S("+-")^-1 * (P("0") * S("xX") * hex^1 + (digit^1 * (P(".") * digit^0)^-1 + P(".") * digit^1) * exponent^-1))
  * -ident_char / function(text)
    local sign = 1
    if text:sub(1, 1) == "-" then sign, text = -1, text:sub(2) elseif text:sub(1, 1) == "+" then text = text:sub(2) end
    return sign * tonumber(text)
  end

local NIL = {} -- stands for nil inside captures
local keyword = (P("true") * -ident_char * Cc(true)) + (P("false") * -ident_char * Cc(false))
  + (P("nil") * -ident_char * Cc(NIL)) + (P("inf") * -ident_char * Cc(math.huge))
  + (P("-inf") * -ident_char * Cc(-math.huge)) + (P("math.huge") * -ident_char * Cc(math.huge))
  + (P("nan") * -ident_char * Cc(0 / 0)) + (P("-math.huge") * -ident_char * Cc(-math.huge))
  + (P("0/0") * Cc(0 / 0)) + (P("-(0/0)") * Cc(0 / 0))

local ESC = { n = "\n", t = "\t", r = "\r", a = "\a", b = "\b", f = "\f", v = "\v", ["\\"] = "\\", ['"'] = '"', ["'"] = "'" }
local escape = (P("\\") * C(S("ntrabfv\\\"'"))) / ESC
  + (P("\\\r\n") + P("\\\n")) / "\n" -- a backslash before a line break (string.format's %q)
  + (P("\\") * C(digit * digit^-2)) / function(d) return string.char(tonumber(d) % 256) end
  + P("\\") * fail("an escape sequence")
local function quoted(q) return P(q) * Cs((escape + (1 - S(q .. "\\\n")))^0) * expect(P(q), "a closing " .. q) end
local qstring = quoted('"') + quoted("'")

local function build_table(...)
  local t, n = {}, 0
  local items = { ... }
  for i = 1, #items do
    local f = items[i]
    if f.key == nil then
      n = n + 1
      if f.value ~= NIL then t[n] = f.value end
    elseif f.value ~= NIL then
      t[f.key] = f.value
    end
  end
  return t
end

local grammar = P({
  "value",
  value = V("table") + qstring + keyword + number,
  item = V("value") + C(ident), -- a bare word inside a table is a string
  table = (open_brace * ws * (V("field") * (ws * S(",;") * ws * V("field"))^0 * (ws * S(",;"))^-1)^-1 * ws
    * expect(close_brace, "a value, ',' or '}'")) / build_table,
  field = (P("[") * ws * expect(V("value"), "a key") * ws * expect(P("]"), "']'") * ws * expect(P("="), "'='") * ws
      * expect(V("item"), "a value")) / function(k, v) return { key = k, value = v } end
    + (C(ident) * ws * P("=") * ws * expect(V("item"), "a value")) / function(k, v) return { key = k, value = v } end
    + V("item") / function(v) return { value = v } end,
})
local whole = ws * grammar * ws * expect(P(-1), "the end of the value")

-- Parses one override value (see the header). Errors name the character.
function overrides.parse_value(text)
  if type(text) ~= "string" then error("config: a --set value must be a string, got " .. type(text), 2) end
  local trimmed = text:match("^%s*(.-)%s*$")
  local first = trimmed:sub(1, 1)
  local structured = first == "{" or first == '"' or first == "'"
  depth = 0
  local ok, res = pcall(lpeg.match, whole, trimmed)
  if ok and res ~= nil then
    if res == NIL then return nil end
    return res
  end
  if not structured then return trimmed end -- a plain string
  if ok then error(string.format("config: cannot read the value %s", util.show(text)), 0) end
  if getmetatable(res) ~= Failure then error(res, 0) end
  if res.message then
    error(string.format("config: cannot read the value %s: %s at character %d", util.show(trimmed), res.message,
      res.pos), 0)
  end
  local got = res.pos > #trimmed and "the end" or string.format("%q", trimmed:sub(res.pos, res.pos))
  error(string.format("config: cannot read the value %s: expected %s at character %d, got %s",
    util.show(trimmed), res.what, res.pos, got), 0)
end

-- The value of a data file: one table literal, optionally after `return`,
-- with comments around it (what mtl writes: an exported model's config.lua,
-- a run's config.lua). Nothing is run. name: the file's name in messages,
-- which give line:column. Returns the table.
local source = ws * (P("return") * -ident_char * ws)^-1 * Cp() * grammar * ws * (P(";") * ws)^-1
  * expect(P(-1), "the end of the file")
function overrides.parse_source(text, name)
  if type(text) ~= "string" then error("config: parse_source needs the text of a file, got " .. type(text), 2) end
  name = name or "<data>"
  local function where(pos)
    local before = text:sub(1, pos - 1)
    local line = select(2, before:gsub("\n", "")) + 1
    return string.format("%s:%d:%d", name, line, pos - (before:match("^.*\n()") or 1) + 1)
  end
  depth = 0
  local ok, start, res = pcall(lpeg.match, source, text)
  if ok and start and type(res) == "table" then return res end
  local pos, what
  if not ok then
    if getmetatable(start) ~= Failure then error(start, 0) end
    pos, what = start.pos, start.message or ("expected " .. start.what)
  elseif start then
    pos, what = start, "expected a table { ... }"
  else
    pos = (lpeg.match(ws * (P("return") * -ident_char * ws)^-1 * Cp(), text))
    what = "expected a table literal (return { ... })"
  end
  local got = pos > #text and "the end" or string.format("%q", text:match("^[%w_]+", pos) or text:sub(pos, pos))
  error(string.format("%s: %s, got %s", where(pos), what, got), 0)
end

-- "a.b.1.c" -> {"a", "b", 1, "c"}
function overrides.split_path(path)
  local parts = {}
  for p in (path .. "."):gmatch("([^%.]*)%.") do
    if p == "" then error(string.format("config: bad key path '%s' (empty component)", path), 0) end
    parts[#parts + 1] = tonumber(p) or p
  end
  return parts
end

local function path_text(parts, n)
  local out = {}
  for i = 1, n do out[i] = tostring(parts[i]) end
  return table.concat(out, ".")
end

-- In a list of named tables, the index of the entry called name.
local function index_by_name(list, name)
  for i, e in ipairs(list) do
    if type(e) == "table" and e.name == name then return i end
  end
  return nil
end

-- Sets cfg[path] = value (value nil removes the key); path as a string or parts.
function overrides.set(cfg, path, value)
  local parts = type(path) == "table" and path or overrides.split_path(path)
  local top = parts[1]
  local known = false
  for _, s in ipairs(overrides.SECTIONS) do if s == top then known = true end end
  if not known then
    error(string.format("config: unknown section '%s' in --set %s%s", tostring(top), path_text(parts, #parts),
      util.did_you_mean(tostring(top), overrides.SECTIONS)), 0)
  end
  local t = cfg
  for i = 1, #parts do
    local k = parts[i]
    if type(k) == "string" and util.is_list(t) and not (t[k] ~= nil) then
      local j = index_by_name(t, k)
      if not j then
        local names = {}
        for _, e in ipairs(t) do if type(e) == "table" and e.name then names[#names + 1] = e.name end end
        error(string.format("config: '%s' has no entry named '%s'%s", path_text(parts, i - 1), k,
          util.did_you_mean(k, names)), 0)
      end
      k = j
    elseif type(k) == "number" then
      if k ~= math.floor(k) or k < 1 or (type(t) == "table" and k > #t + 1) then
        error(string.format("config: '%s': index %s is out of range (the list has %d entries)",
          path_text(parts, i), tostring(k), #t), 0)
      end
    end
    if i == #parts then
      t[k] = value
    else
      if t[k] == nil then t[k] = {} end
      if type(t[k]) ~= "table" then
        error(string.format("config: cannot set '%s': '%s' is %s, not a table", path_text(parts, #parts),
          path_text(parts, i), util.show(t[k])), 0)
      end
      t = t[k]
    end
  end
  return cfg
end

-- Applies "key.path=value" strings in order to a copy of cfg; returns the copy.
function overrides.apply(cfg, list)
  local out = util.deep_copy(cfg)
  if list == nil then return out end
  if type(list) == "string" then list = { list } end
  if type(list) ~= "table" then error("config: overrides must be a list of \"key.path=value\" strings", 2) end
  for _, item in ipairs(list) do
    if type(item) ~= "string" then
      error(string.format("config: an override must be a \"key.path=value\" string, got %s", util.show(item)), 0)
    end
    local key, text = item:match("^%s*([^=]-)%s*=(.*)$")
    if not key or key == "" then
      error(string.format("config: --set expects key.path=value, got %s", util.show(item)), 0)
    end
    overrides.set(out, key, overrides.parse_value(text))
  end
  return out
end

return overrides
