-- mtl.config.easyrec.decode: a protobuf-text tree (mtl.config.protobuf_text)
-- checked against EasyRec's schema (mtl.config.easyrec.schema), as objects
-- that remember where each field was written.
--
--   local ctx = decode.new_ctx("pipeline.config")
--   local root = decode.message(ctx, tree, "EasyRecConfig", "")
--   root:get("model_dir"), root:has("eval_config"), root:pos("model_dir")
--   ctx:raise()                  -- raises the collected errors, if any
--
-- Takes the parsed tree; returns an Obj per message: values (field -> value,
-- a list for repeated fields, an Obj for a sub-message, the raw node for a
-- message the schema does not look into), nodes (field -> node, for
-- positions), used (fields the mapping has handled), bad (fields whose value
-- was rejected), path ("model_config.mmoe"), type (the message name).
-- Unknown fields, wrong types, bad enum values, a singular field given twice
-- and two members of one oneof are errors; the field is then left out of
-- values. Nothing is raised while decoding or mapping: every error goes to
-- ctx.errs with its line and column, and ctx:raise() raises them all at
-- once, sorted by position, one "file:line:column: text" per line.
local util = require "mtl.config.util"
local join = require("mtl.config.check").join
local SCHEMA = require("mtl.config.easyrec.schema").SCHEMA

local decode = {}

-- ---- the context: errors, notes and every decoded object ------------------------------------------
local Ctx = {}
Ctx.__index = Ctx

function decode.new_ctx(file)
  return setmetatable({ file = file, errs = {}, objects = {}, notes = {} }, Ctx)
end

-- An error at line:col; long string arguments are clipped (util.clip).
function Ctx:add(line, col, fmt, ...)
  local args, n = { ... }, select("#", ...)
  for i = 1, n do args[i] = util.clip(args[i]) end
  self.errs[#self.errs + 1] = { line = line or 1, col = col or 1, text = string.format(fmt, unpack(args, 1, n)) }
end

-- A note: informational, returned beside the config.
function Ctx:note(fmt, ...) self.notes[#self.notes + 1] = string.format(fmt, ...) end

-- Raises the errors (if any) together, sorted by position, each once.
function Ctx:raise()
  if #self.errs == 0 then return end
  table.sort(self.errs, function(a, b)
    if a.line ~= b.line then return a.line < b.line end
    return a.col < b.col
  end)
  local lines, seen = {}, {}
  for _, e in ipairs(self.errs) do
    local s = string.format("%s:%d:%d: %s", self.file, e.line, e.col, e.text)
    if not seen[s] then seen[s] = true; lines[#lines + 1] = s end
  end
  error(table.concat(lines, "\n"), 0)
end

local Obj = {}
Obj.__index = Obj

-- ---- scalars --------------------------------------------------------------------------------------
-- Converts a scalar token for a field spec; returns value or nil, message.
local function convert(spec, tok)
  local k = spec.kind
  if k == "string" then
    if tok.type ~= "string" then return nil, "a quoted string" end
    return tok.value
  elseif k == "int" or k == "uint" then
    local v = tok.value
    if tok.type ~= "number" or v ~= v or v == math.huge or v == -math.huge or v ~= math.floor(v)
      or (tok.text:find("[%.eE]") and not tok.text:lower():find("^%-?0x")) then
      return nil, k == "uint" and "a non-negative integer" or "an integer"
    end
    if k == "uint" and v < 0 then return nil, "a non-negative integer" end
    return v
  elseif k == "float" then
    if tok.type == "number" then return tok.value end
    if tok.type == "ident" then
      local l = tok.value:lower()
      if l == "inf" or l == "infinity" then return math.huge end
      if l == "nan" then return 0 / 0 end
    end
    return nil, "a number"
  elseif k == "bool" then
    if tok.type == "ident" then
      local m = ({ ["true"] = true, True = true, t = true, ["false"] = false, False = false, f = false })[tok.value]
      if m ~= nil then return m end
    elseif tok.type == "number" and (tok.value == 0 or tok.value == 1) and not tok.text:find("[%.eE]") then
      return tok.value == 1
    end
    return nil, "true or false"
  elseif k == "enum" then
    if tok.type == "ident" then
      for _, v in ipairs(spec.values) do if v == tok.value then return v end end
    end
    return nil, "one of " .. table.concat(spec.values, ", ")
  end
  error("easyrec: unknown field kind " .. tostring(k))
end

local function token_text(tok)
  if tok.type == "string" then return string.format("%q", tok.value) end
  return tok.text or tostring(tok.value)
end

local WHAT = { string = "a quoted string", uint = "a non-negative integer", int = "an integer",
               float = "a number", bool = "true or false", enum = "an enum value" }

-- ---- messages -------------------------------------------------------------------------------------
-- Whether child may be stored at all: not a second member of a oneof, not a
-- second value of a singular field (oneof_seen: group -> the first member).
local function admissible(ctx, obj, child, spec, fpath, group, oneof_seen)
  local prev = group and oneof_seen[group]
  if prev and prev.name ~= child.name then
    ctx:add(child.line, child.col, "'%s' and '%s' are both set, but only one of them may be (oneof %s)",
      fpath, prev.name, group)
    return false
  elseif group then
    oneof_seen[group] = child
  end
  if not spec.rep and obj.nodes[child.name] then
    local first = obj.nodes[child.name]
    ctx:add(child.line, child.col, "'%s' is set twice (first at line %d, column %d); it is not a repeated field",
      fpath, first.line, first.col)
    return false
  end
  return true
end

-- The value of child for spec; returns value, ok (false: reported).
local function field_value(ctx, obj, child, spec, fpath)
  if spec.kind == "message" then
    if child.kind ~= "message" then
      ctx:add(child.vline, child.vcol, "'%s' is a message: write %s { ... }, got %s", fpath, child.name,
        token_text(child.value))
      obj.bad[child.name] = true
      return nil, false
    elseif spec.msg then
      local index = spec.rep and ("[" .. ((obj.values[child.name] and #obj.values[child.name] or 0) + 1) .. "]") or ""
      return decode.message(ctx, child, spec.msg, fpath .. index), true
    end
    return child, true -- opaque
  end
  if child.kind ~= "scalar" then
    ctx:add(child.vline, child.vcol, "'%s' expects %s, got a message { ... }", fpath, WHAT[spec.kind])
    obj.bad[child.name] = true
    return nil, false
  end
  local value, why = convert(spec, child.value)
  if value == nil then
    obj.bad[child.name] = true
    local extra = ""
    if spec.kind == "enum" and child.value.type == "ident" then extra = util.did_you_mean(child.value.value, spec.values) end
    ctx:add(child.value.line, child.value.col, "'%s' expects %s, got %s%s", fpath, why, token_text(child.value), extra)
    return nil, false
  end
  return value, true
end

local function store(ctx, obj, child, spec, value, fpath)
  if spec.rep then
    obj.values[child.name] = obj.values[child.name] or {}
    obj.nodes[child.name] = obj.nodes[child.name] or {}
    table.insert(obj.values[child.name], value)
    table.insert(obj.nodes[child.name], child)
  else
    obj.values[child.name] = value
    obj.nodes[child.name] = child
  end
  if child.in_list and not spec.rep then
    ctx:add(child.line, child.col, "'%s' is not a repeated field; [ ... ] gives it several values", fpath)
  end
end

-- Decodes a message node against SCHEMA[type_name]; returns an Obj. path:
-- where the message is ("" for the top level).
function decode.message(ctx, node, type_name, path)
  local schema = SCHEMA[type_name]
  local obj = setmetatable({ type = type_name, path = path, node = node, values = {}, nodes = {}, used = {},
                             bad = {}, ctx = ctx }, Obj)
  ctx.objects[#ctx.objects + 1] = obj
  local oneof_of = {}
  for group, names in pairs(schema.oneofs or {}) do
    for _, n in ipairs(names) do oneof_of[n] = group end
  end
  local oneof_seen = {}
  local names = util.sorted_keys(schema.fields)
  for _, child in ipairs(node.fields) do
    local spec = schema.fields[child.name]
    local fpath = join(path, child.name)
    if not spec then
      ctx:add(child.line, child.col, "unknown field '%s' in %s%s", child.name, path == "" and "the top level" or path,
        util.did_you_mean(child.name, names))
    elseif admissible(ctx, obj, child, spec, fpath, oneof_of[child.name], oneof_seen) then
      local value, ok = field_value(ctx, obj, child, spec, fpath)
      if ok then store(ctx, obj, child, spec, value, fpath) end
    end
  end
  return obj
end

-- ---- accessors ------------------------------------------------------------------------------------
-- get(name): the value, or the schema default (a list for repeated fields);
-- marks the field as handled.
function Obj:get(name)
  local spec = SCHEMA[self.type].fields[name]
  assert(spec, "easyrec: no field " .. name .. " in " .. self.type)
  self.used[name] = true
  local v = self.values[name]
  if v ~= nil then return v end
  if spec.rep then return {} end
  return spec.default
end

function Obj:has(name) return self.values[name] ~= nil end

-- The node of a field (its i-th occurrence when repeated), or nil.
local function field_node(obj, name, i)
  local n = name and obj.nodes[name]
  if n and n.name == nil then n = n[i or 1] end
  return n
end

-- line, col of a field (its i-th occurrence), or of the message itself.
function Obj:pos(name, i)
  local n = field_node(self, name, i)
  if n then return n.line, n.col end
  return self.node.line, self.node.col
end

-- line, col of a field's value.
function Obj:vpos(name, i)
  local n = field_node(self, name, i)
  if n then return n.vline, n.vcol end
  return self.node.vline or self.node.line, self.node.vcol or self.node.col
end

function Obj:field_path(name, i)
  local p = join(self.path, name)
  if i and SCHEMA[self.type].fields[name].rep then p = p .. "[" .. i .. "]" end
  return p
end

-- An error at a field's name (at = Obj.pos) or value (Obj.vpos), or at the
-- message when name is nil; the field counts as handled.
local function report(obj, at, name, i, fmt, ...)
  if name then obj.used[name] = true end
  local line, col = at(obj, name, i)
  obj.ctx:add(line, col, fmt, ...)
end

-- An error at a field (or at the message when name is nil).
function Obj:err(name, fmt, ...) report(self, Obj.pos, name, nil, fmt, ...) end

-- An error at a field's (i-th) value.
function Obj:verr(name, i, fmt, ...) report(self, Obj.vpos, name, i, fmt, ...) end

-- Reports a set field as unsupported (reason: why).
function Obj:unsupported(name, why)
  self:mark(name)
  report(self, Obj.pos, name, nil, "unsupported field '%s': %s", self:field_path(name), why)
end

-- Reports a field's value as unsupported.
function Obj:unsupported_value(name, why)
  self:mark(name)
  report(self, Obj.vpos, name, nil, "unsupported value %s for '%s': %s", util.show(self.values[name]),
    self:field_path(name), why)
end

-- Marks a field's value(s) and everything inside them as handled (after an
-- error about the field itself, so its contents are not reported again).
function Obj:mark(name)
  self.used[name] = true
  local v = self.values[name]
  local list = (type(v) == "table" and getmetatable(v) ~= Obj and v.kind == nil) and v or { v }
  for _, x in ipairs(list) do
    if getmetatable(x) == Obj then decode.mark_all(x) end
  end
end

-- Marks every field of obj, and everything inside them, as handled.
function decode.mark_all(obj)
  for name in pairs(obj.values) do obj:mark(name) end
end

return decode
