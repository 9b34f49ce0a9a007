-- The EasyRec reader's column types: each input field's mtl column type
-- (and bag or sequence separators, value kinds, default) from the features
-- and labels that read it; conflicts are errors at the reading field.
local util = require "mtl.config.util"

local columns = {}

local EASYREC_TYPE = { INT32 = "int", INT64 = "int", FLOAT = "float", DOUBLE = "float", STRING = "string", BOOL = "string" }
-- Column types come from what reads each column; conflicts are errors.
local NUMERIC = { INT32 = true, INT64 = true, FLOAT = true, DOUBLE = true }
local INTEGER = { INT32 = true, INT64 = true }

-- The mtl type role reads col as: want, values ("string": a bag of strings),
-- bad (what role needs when col's input_type cannot give it).
local function role_type(col, role)
  local want, values, bad = role.type, nil, nil
  if want == "key" then
    if INTEGER[col.etype] then want = "int"
    elseif NUMERIC[col.etype] then bad = "an integer or string field" else want = "string" end
  elseif want == "int" then
    if NUMERIC[col.etype] and not INTEGER[col.etype] then bad = "integer ids" end
  elseif want == "ids" or want == "kv" then
    if role.strings and not NUMERIC[col.etype] then values = "string" end
  elseif want == "seq" then
    values = role.seq_values == "string" and NUMERIC[col.etype] and "int" or role.seq_values
    if values == "int" and NUMERIC[col.etype] and not INTEGER[col.etype] then bad = "integer ids" end
    if values == "int" then values = "int64" end
  end
  return want, values, bad
end

-- out.type (and bag separators) from the first reader of col; a reader
-- wanting it another way is an error.
local function column_type(col, out)
  local chosen
  for _, role in ipairs(col.roles) do
    local want, values, bad = role_type(col, role)
    if bad then
      role.obj:verr(role.field, role.index, "input field '%s' has input_type %s; %s needs %s", col.name, col.etype, role.why, bad)
    elseif chosen then
      local c = chosen
      if c.want ~= want or c.role.separator ~= role.separator or c.role.kv_separator ~= role.kv_separator or c.values ~= values
        or c.role.step_separator ~= role.step_separator then
        local line = c.role.obj:pos(c.role.field, c.role.index)
        role.obj:verr(role.field, role.index,
          "input field '%s' is read as %s (%s, line %d) and as %s (%s); mtl reads a column one way",
          col.name, c.want, c.role.why, line, want, role.why)
      end
    else
      chosen = { want = want, role = role, values = values }
      out.type = want
      if want == "ids" or want == "kv" or want == "seq" then
        out.separator, out.kv_separator, out.values = role.separator, role.kv_separator, values
        out.step_separator = role.step_separator
      end
    end
  end
end

-- out.default: default_val, else EasyRec's (0 for numbers, "" for strings and bags).
local function column_default(col, out)
  local dv = col.default_val
  if out.type == "int" or out.type == "float" then
    if dv ~= nil and dv ~= "" then
      local n = tonumber(dv)
      if not n or (out.type == "int" and n ~= math.floor(n)) then
        col.field:verr("default_val", nil, "default_val %s of '%s' is not %s", util.show(dv), col.name,
          out.type == "int" and "an integer" or "a number")
      end
      out.default = n
    else
      out.default = 0
    end
  else
    out.default = dv or ""
  end
  col.field.used.default_val = true
end

-- st.column_list -> d.columns (mtl columns, in file order).
function columns.type_columns(st, d)
  d.columns = {}
  for _, col in ipairs(st.column_list) do
    local out = { name = col.name, type = EASYREC_TYPE[col.etype] or "string" }
    column_type(col, out)
    if col.label and out.type ~= "int" and out.type ~= "float" then
      col.field:verr("input_name", nil, "label field '%s' cannot also be read as %s", col.name, out.type)
    end
    column_default(col, out)
    d.columns[#d.columns + 1] = out
  end
end

return columns
