-- mtl.config.protobuf_text: a reader of protobuf text format (the format of
-- EasyRec's pipeline.config), written as an LPeg grammar. See docs/config.md.
--
--   local pt = require "mtl.config.protobuf_text"
--   local root = pt.parse('model_dir: "x"  train_config { num_steps: 10 }', "a.config")
--   root.fields[1]  --> {name = "model_dir", kind = "scalar", line = 1, col = 1,
--                  --    value = {type = "string", value = "x", line = 1, col = 12}}
--   root.fields[2]  --> {name = "train_config", kind = "message", fields = {...}, ...}
--
-- The grammar knows nothing of any schema: a field is `name: value`,
-- `name { ... }`, `name: { ... }` (or `< ... >`), or `name: [v1, v2]` (one
-- node per element). Values are strings (single or double quotes, C escapes,
-- adjacent strings concatenated), numbers (decimal, hex, octal, floats with
-- exponents and an optional f suffix, -inf, -nan) and identifiers (enum
-- values, true/false, inf, nan). `#` starts a comment; fields may end with
-- `,` or `;`. Extension and Any names (`[pkg.ext]`) are rejected.
--
-- Every node carries the line and column (1-based, in bytes) of its name and
-- of its value, so later stages can point at the exact field. A syntax error
-- is raised as "file:line:column: expected ..., got ...".
local lpeg = require "lpeg"
local P, R, S, C, Cp, Cmt, Ct, Cs = lpeg.P, lpeg.R, lpeg.S, lpeg.C, lpeg.Cp, lpeg.Cmt, lpeg.Ct, lpeg.Cs
local V = lpeg.V

local M = {}

-- ---- failure: a match-time capture throws {pos, what} out of the match ----------------
local Failure = {}
Failure.__index = Failure

-- Fails the whole parse at the current position: "expected <what>".
local function fail(what)
  return Cmt(P(true), function(_, pos) error(setmetatable({ pos = pos, what = what }, Failure)) end)
end

-- Fails with a message of its own (not "expected ..."), back bytes before here.
local function reject(message, back)
  return Cmt(P(true), function(_, pos) error(setmetatable({ pos = pos - (back or 0), message = message }, Failure)) end)
end

local function expect(patt, what) return patt + fail(what) end

-- ---- lexical pieces ------------------------------------------------------------------------------
local space = S(" \t\r\n\f\v")
local comment = P("#") * (1 - P("\n"))^0
local ws = (space + comment)^0
local digit, hexdigit, octdigit = R("09"), R("09", "af", "AF"), R("07")
local ident_start = R("az", "AZ") + P("_")
local ident_char = ident_start + digit
local ident = ident_start * ident_char^0

local exponent = S("eE") * S("+-")^-1 * digit^1
local float_lit = (digit^1 * P(".") * digit^0 * exponent^-1 + P(".") * digit^1 * exponent^-1 + digit^1 * exponent)
  * S("fF")^-1 + digit^1 * S("fF")
local hex_lit = P("0") * S("xX") * hexdigit^1
local oct_lit = P("0") * octdigit^1
local dec_lit = digit^1
-- a number may not run into letters ("12abc" is not a number)
local number_lit = (hex_lit + float_lit + oct_lit + dec_lit) * -ident_char

local function number_value(text)
  local t = text:lower()
  if t:match("^0x") then return tonumber(t:sub(3), 16) end
  if t:match("^0[0-7]+$") then return tonumber(t:sub(2), 8) end
  if not t:match("^0x") and t:match("f$") then t = t:sub(1, -2) end
  return tonumber(t)
end

-- Non-finite identifiers (as in protobuf's text parser, case-insensitive).
local NON_FINITE = { inf = math.huge, infinity = math.huge, nan = 0 / 0 }

-- UTF-8 bytes of a code point.
local function utf8(cp)
  if cp < 0x80 then return string.char(cp) end
  if cp < 0x800 then return string.char(0xC0 + math.floor(cp / 0x40), 0x80 + cp % 0x40) end
  if cp < 0x10000 then
    return string.char(0xE0 + math.floor(cp / 0x1000), 0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
  end
  return string.char(0xF0 + math.floor(cp / 0x40000), 0x80 + math.floor(cp / 0x1000) % 0x40,
    0x80 + math.floor(cp / 0x40) % 0x40, 0x80 + cp % 0x40)
end

local SIMPLE_ESCAPES = { a = "\a", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t", v = "\v",
                         ["\\"] = "\\", ["'"] = "'", ['"'] = '"', ["?"] = "?" }

local escape = (P("\\") * C(S("abfnrtv\\'\"?"))) / SIMPLE_ESCAPES
  + (P("\\") * C(octdigit * octdigit^-2)) / function(o)
      local n = tonumber(o, 8)
      return string.char(n % 256)
    end
  + (P("\\") * S("xX") * C(hexdigit * hexdigit^-1)) / function(h) return string.char(tonumber(h, 16)) end
  + (P("\\u") * C(hexdigit * hexdigit * hexdigit * hexdigit)) / function(h) return utf8(tonumber(h, 16)) end
  + (P("\\U") * C(hexdigit * hexdigit * hexdigit * hexdigit * hexdigit * hexdigit * hexdigit * hexdigit))
    / function(h)
        local cp = tonumber(h, 16)
        if cp > 0x10FFFF then return nil end
        return utf8(cp)
      end
  + P("\\") * fail("an escape sequence (\\n \\t \\r \\\\ \\' \\\" \\ooo \\xhh \\uhhhh)")

local function quoted(q)
  return P(q) * Cs((escape + (1 - S(q .. "\\\n")))^0) * expect(P(q), "a closing " .. q .. " before the end of the line")
end
local one_string = quoted('"') + quoted("'")
-- adjacent strings are one value: "ab" 'cd' -> "abcd"
local string_value = (Cp() * one_string * (ws * one_string)^0) / function(pos, ...)
  return { type = "string", value = table.concat({ ... }), pos = pos }
end

local number_value_patt = (Cp() * C(P("-")^-1) * ws * C(number_lit)) / function(pos, sign, text)
  local v = number_value(text)
  if sign == "-" then v = -v end
  return { type = "number", value = v, text = sign .. text, pos = pos }
end

-- -inf, -nan (a bare inf/nan stays an identifier; the schema decides)
local negative_non_finite = (Cp() * P("-") * ws * C(ident)) / function(pos, name)
  local v = NON_FINITE[name:lower()]
  if v == nil then return nil end
  return { type = "number", value = -v, text = "-" .. name, pos = pos }
end
negative_non_finite = Cmt(negative_non_finite, function(_, i, node)
  if node then return i, node end
  return false
end)

local ident_value = (Cp() * C(ident)) / function(pos, name) return { type = "ident", value = name, pos = pos } end

local scalar = string_value + number_value_patt + negative_non_finite + ident_value

-- ---- nesting ----------------------------------------------------------------------------------
-- LPeg's backtrack stack (400 entries) overflows past about 40 nested messages
-- and lists, with a message that names nothing; deeper nesting is refused first,
-- at the opening bracket. Once a bracket is matched the parse either closes it
-- or fails, so the count stays right.
local MAX_DEPTH = 32
local depth = 0 -- reset by M.parse
local function open(patt)
  return Cmt(patt, function(_, pos)
    depth = depth + 1
    if depth > MAX_DEPTH then
      error(setmetatable({ pos = pos - 1, message = string.format("messages and lists nested deeper than %d levels",
        MAX_DEPTH) }, Failure))
    end
    return pos
  end)
end
local function close(patt)
  return Cmt(patt, function(_, pos)
    depth = depth - 1
    return pos
  end)
end

-- ---- the grammar ------------------------------------------------------------------------------
local function message_node(pos, fields) return { kind = "message", fields = fields, pos = pos } end
local function list_node(pos, ...) return { kind = "list", items = { ... }, pos = pos } end
local function scalar_node(v) return { kind = "scalar", value = v, pos = v.pos } end

local grammar = P({
  "file",
  file = ws * V("fields") * ws * expect(P(-1), "a field name or the end of the file"),
  fields = Ct((V("field") * ws * (S(",;") * ws)^-1)^0),
  field_name = C(ident)
    + P("[") * reject("extension and Any field names ([...]) are not supported in EasyRec configs", 1),
  field = (Cp() * V("field_name") * ws * (P(":") * ws * V("value") + V("message")
    + fail("':' or '{' after the field name"))) / function(pos, name, value)
      return { name = name, pos = pos, value = value }
    end,
  message = (Cp() * open(P("{")) * ws * V("fields") * ws * expect(close(P("}")), "a field name or '}'")) / message_node
    + (Cp() * open(P("<")) * ws * V("fields") * ws * expect(close(P(">")), "a field name or '>'")) / message_node,
  value = V("message") + V("list") + scalar / scalar_node + fail("a value"),
  list = (Cp() * open(P("[")) * ws * (V("item") * (ws * P(",") * ws * expect(V("item"), "a value"))^0)^-1 * ws
    * expect(close(P("]")), "',' or ']'")) / list_node,
  item = V("message") + scalar / scalar_node,
})

-- ---- positions -----------------------------------------------------------------------------------
local function line_index(text)
  local starts = { 1 }
  for pos in text:gmatch("()\n") do starts[#starts + 1] = pos + 1 end
  return starts
end

local function line_col(starts, pos)
  local lo, hi = 1, #starts
  while lo < hi do
    local mid = math.floor((lo + hi + 1) / 2)
    if starts[mid] <= pos then lo = mid else hi = mid - 1 end
  end
  return lo, pos - starts[lo] + 1
end
M.line_col = function(text, pos) return line_col(line_index(text), pos) end

-- The token at pos, for "got ...".
local function token_at(text, pos)
  if pos > #text then return "the end of the file" end
  local c = text:sub(pos, pos)
  if c == "\n" or c == "\r" then return "the end of the line" end
  local t = text:match("^[%w_%.%+%-]+", pos) or text:match('^"[^"\n]*"?', pos) or text:match("^'[^'\n]*'?", pos) or c
  if #t > 40 then t = t:sub(1, 40) .. "..." end
  return string.format("%q", t):gsub("\\\n", "\\n")
end

-- Turns the raw parse (positions, list values) into nodes:
--   message: {kind = "message", fields = {node, ...}, line =, col =}
--   field node: {name =, line =, col = (of the name), kind = "scalar" | "message",
--                value = {type = "string"|"number"|"ident", value =, text =, line =, col =}   (scalar)
--                fields = {...}, vline =, vcol =                                            (message)}
-- A list `name: [a, b]` gives one node per element, in order.
local function build(starts, raw_fields)
  local out = {}
  for _, f in ipairs(raw_fields) do
    local line, col = line_col(starts, f.pos)
    local values = f.value.kind == "list" and f.value.items or { f.value }
    for _, v in ipairs(values) do
      local node = { name = f.name, line = line, col = col, kind = v.kind, in_list = f.value.kind == "list" }
      local vline, vcol = line_col(starts, v.pos)
      if v.kind == "message" then
        node.fields = build(starts, v.fields)
        node.vline, node.vcol = vline, vcol
      else
        local s = v.value
        node.value = { type = s.type, value = s.value, text = s.text, line = vline, col = vcol }
        node.vline, node.vcol = vline, vcol
      end
      out[#out + 1] = node
    end
  end
  return out
end

-- Parses text; name is the file name used in messages. Returns the root message node.
function M.parse(text, name)
  name = name or "(text)"
  if type(text) ~= "string" then error("protobuf_text.parse: expected a string, got " .. type(text), 2) end
  depth = 0
  local ok, res = pcall(lpeg.match, grammar, text)
  if not ok then
    if getmetatable(res) ~= Failure then error(res, 0) end
    local line, col = M.line_col(text, res.pos)
    if res.message then error(string.format("%s:%d:%d: %s", name, line, col, res.message), 0) end
    error(string.format("%s:%d:%d: expected %s, got %s", name, line, col, res.what, token_at(text, res.pos)), 0)
  end
  local starts = line_index(text)
  return { kind = "message", fields = build(starts, res), line = 1, col = 1, vline = 1, vcol = 1, file = name }
end

function M.parse_file(path)
  local f, err = io.open(path, "rb")
  if not f then error(string.format("%s: cannot open the config file (%s)", path, tostring(err)), 0) end
  local text = f:read("*a")
  f:close()
  return M.parse(text, path)
end

-- A readable dump of a tree (for debugging and docs): one line per field.
function M.dump(node, indent)
  indent = indent or ""
  local lines = {}
  for _, f in ipairs(node.fields) do
    if f.kind == "message" then
      lines[#lines + 1] = string.format("%s%s {   # %d:%d", indent, f.name, f.line, f.col)
      lines[#lines + 1] = M.dump(f, indent .. "  ")
      lines[#lines + 1] = indent .. "}"
    else
      local v = f.value
      local shown = v.type == "string" and string.format("%q", v.value) or (v.text or tostring(v.value))
      lines[#lines + 1] = string.format("%s%s: %s   # %d:%d", indent, f.name, shown, f.line, f.col)
    end
  end
  return table.concat(lines, "\n")
end

return M
