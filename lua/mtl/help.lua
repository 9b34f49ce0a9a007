-- mtl.help: what help(x) / ?x says about any mtl function, module or model
-- (docs/repl.md, "Help").
--
--   help.lookup(x [, name])  -> {name =, names =, signature =, summary =, where =} or nil, why
--   help.text(x [, name])    -> the text help(x) prints
--   help.catalogue()         -> every exported function, module and class: {{name =, value =}, ...}
--
-- Where the words come from, so that they cannot drift from the code:
--   * a Lua function: the comment lines right above its definition, or else
--     the usage line that names it in its file's header comment;
--   * a function of the C binding (mtl.core), or a Lua function without a
--     comment: lua/mtl/help_lines.lua, one line each ("signature: description");
--   * a method of an nn class without words of its own: the class's
--     constructor (new) is described by the class's comment; an override
--     (forward, extra_repr) where its parent class defines it;
--   * a module: the first line of its file's header comment; a model (a
--     class of models/, or a model built from one): its file's summary.
-- spec/help_spec.lua checks that every function of help.catalogue() has a
-- signature and a description, and that help_lines.lua names only functions
-- that exist and have no source comment.
local help = {}

local function mtl_module() return require "mtl" end

-- ---- the catalogue ----------------------------------------------------------------------
-- Modules loaded on first use (mtl's lazy parts) are loaded here.
local LAZY = { "nn", "models", "losses", "features", "train", "plot", "synth" }
-- Userdata classes users hold, by the name their metatable is registered
-- under, and the prefix their methods are shown with.
local USERDATA = { { "mtl.Embedding", "Embedding:" }, { "mtl.Reader", "Reader:" }, { "mtl.dist.Request", "Request:" } }

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end

local catalogue_cache
function help.catalogue()
  if catalogue_cache then return catalogue_cache end
  local mtl = mtl_module()
  for _, k in ipairs(LAZY) do local _ = mtl[k] end
  local out, seen = {}, {}
  local function add(name, v)
    out[#out + 1] = { name = name, value = v }
  end
  -- tables: functions at any depth below mtl (to three levels), each table once
  local function walk(t, prefix, depth)
    if seen[t] then return end
    seen[t] = true
    for _, k in ipairs(sorted_keys(t)) do
      local v = rawget(t, k)
      if k:sub(1, 1) ~= "_" and v ~= mtl.core and v ~= mtl.Tensor then
        if type(v) == "function" then
          add(prefix .. k, v)
        elseif type(v) == "table" and depth < 3 and not seen[v] then
          add(prefix .. k, v)
          walk(v, prefix .. k .. ".", depth + 1)
        end
      end
    end
  end
  add("mtl", mtl)
  add("mtl.Tensor", mtl.Tensor)
  walk(mtl, "mtl.", 1)
  for _, k in ipairs(sorted_keys(mtl.Tensor)) do add("Tensor:" .. k, mtl.Tensor[k]) end
  local registry = debug.getregistry()
  for _, u in ipairs(USERDATA) do
    local methods = registry[u[1]] and rawget(registry[u[1]], "__index")
    if type(methods) == "table" then
      for _, k in ipairs(sorted_keys(methods)) do add(u[2] .. k, methods[k]) end
    end
  end
  catalogue_cache = out
  return out
end

-- A C function pushed twice (mtl.add and the method t:add) is two function
-- values with one C address: that address is its identity.
local funcinfo = require("jit.util").funcinfo
local function identity(f)
  if type(f) ~= "function" then return f end
  return funcinfo(f).addr or f
end
help.identity = identity

-- Every name of x in the catalogue (a function may be exported under several).
local function names_of(x)
  local names, id = {}, identity(x)
  for _, e in ipairs(help.catalogue()) do
    if rawequal(e.value, x) or (type(x) == "function" and identity(e.value) == id) then names[#names + 1] = e.name end
  end
  return names
end

-- ---- reading comments out of Lua sources ---------------------------------------------------------
local lines_cache = {}
local function file_lines(path)
  if lines_cache[path] == nil then
    local t = false
    local f = io.open(path)
    if f then
      t = {}
      for l in f:lines() do t[#t + 1] = l end
      f:close()
    end
    lines_cache[path] = t
  end
  return lines_cache[path] or nil
end

local function comment_text(line) return line:match("^%s*%-%-+%s?(.*)$") end

-- The comment block right above line n (stops at a line that is not a comment).
local function comment_above(lines, n)
  local block = {}
  for i = n - 1, 1, -1 do
    local c = comment_text(lines[i])
    if not c or lines[i]:match("^%s*%-%-%-%-") then break end -- a ruler ("-- ---- x ----") ends it
    table.insert(block, 1, c)
  end
  return block
end

-- The header comment of a file (its first comment lines).
local function header(lines)
  local block = {}
  for i = 1, #lines do
    local c = comment_text(lines[i])
    if not c then break end
    block[#block + 1] = c
  end
  return block
end

-- "name(args): text", "name{opts}: text" or "name(args) -> r: text" at the start of s.
local function split_signature(s)
  local sig, rest = s:match("^([%w_.:]+%b()[^:]*):%s+(.+)$")
  if not sig then sig, rest = s:match("^([%w_.:]+%b{}[^:]*):%s+(.+)$") end
  if sig and not sig:find("%s%s") then return sig, rest end
  return nil
end

-- The first sentence of some comment text (one line).
local function first_sentence(block)
  local text = table.concat(block, " "):gsub("%s+", " ")
  local s = text:match("^(.-%.)%s") or text:match("^(.-)%s*$")
  return s ~= "" and s or nil
end

-- signature and summary of a comment block that may start with a signature
local function read_block(block)
  local sig, rest = split_signature(block[1])
  if not sig then return nil, first_sentence(block) end
  local more = { rest }
  for i = 2, #block do more[#more + 1] = block[i] end
  return sig, first_sentence(more)
end

local function definition_args(line)
  return line:match("function%s*[%w_.:]*%s*(%b())") or "(...)"
end

-- What the source of a Lua function says about it; names: its catalogue names.
local function from_lua(f, names)
  local info = debug.getinfo(f, "S")
  local path = info.source:match("^@(.*)$")
  local lines = path and file_lines(path)
  if not lines or info.linedefined < 1 then return nil end
  local short = (names[1] or ""):match("[%.:]([%w_]+)$") or names[1] or "?"
  local def = lines[info.linedefined] or ""
  local where = string.format("%s:%d", path:match("(lua/.*)$") or path:match("(models/.*)$") or path, info.linedefined)
  -- 1. the comment right above the definition (or on its line, after the code)
  local block = comment_above(lines, info.linedefined)
  local trailing = def:match("%-%-%s*(.+)$")
  if #block == 0 and trailing then block = { trailing } end
  if #block > 0 then
    local sig, summary = read_block(block)
    return { signature = sig or ((names[1] or short) .. definition_args(def)), summary = summary, where = where }
  end
  -- 2. a usage line naming it in the file's header
  for _, h in ipairs(header(lines)) do
    local sig, rest = h:match("^%s*([%w_.:]*[.:]" .. short .. "%b())%s+(.*)$")
    if not sig then sig, rest = h:match("^%s*(" .. short .. "%b())%s+(.*)$") end
    if sig then
      rest = rest:gsub("^[-%s:]+", "")
      return { signature = sig, summary = rest ~= "" and rest or nil, where = where }
    end
  end
  return { where = where }
end

-- ---- one-line help of what has no source comment (lua/mtl/help_lines.lua) ---------------------------
local lines_docs
local function from_lines(names)
  lines_docs = lines_docs or require "mtl.help_lines"
  for _, n in ipairs(names) do
    local line = lines_docs[n]
    if line then
      local sig, rest = split_signature(line)
      return { signature = sig or line, summary = rest, where = "lua/mtl/help_lines.lua" }
    end
  end
  return nil
end
help.line_of = from_lines
help.from_source = function(f) return from_lua(f, names_of(f)) end

-- ---- classes (nn.class) ---------------------------------------------------------------------------
local function value_at(name)
  for _, e in ipairs(help.catalogue()) do if e.name == name then return e.value end end
end

-- The comment above `class("Name"` in the file that defines cls's methods.
local function class_doc(cls, name)
  local cname = rawget(cls, "__name")
  if not cname then return nil end
  local line = name and from_lines({ name })
  if line then line.name = name return line end
  for _, f in pairs(cls) do
    local info = type(f) == "function" and debug.getinfo(f, "S")
    local path = info and info.source:match("^@(.*)$")
    local lines = path and file_lines(path)
    if lines then
      for i, l in ipairs(lines) do
        if l:find('class%(%s*"' .. cname .. '"') then
          local block = comment_above(lines, i)
          if #block > 0 then
            local sig, summary = read_block(block)
            local short = (name or cname):gsub("^mtl%.", "")
            return { name = name, signature = sig and ("nn." .. sig) or (short .. "(...)"), summary = summary,
                     where = string.format("%s:%d", path:match("(lua/.*)$") or path, i) }
          end
        end
      end
    end
  end
  return nil
end

-- A method of an nn class with no words of its own: new is the class's
-- constructor; another one is described where a parent class defines it.
local function inherited(f, names)
  for _, n in ipairs(names) do
    local class_name, method = n:match("^(.+)%.([%w_]+)$")
    local cls = class_name and value_at(class_name)
    if type(cls) == "table" and rawget(cls, "__is_module") then
      if method == "new" then return class_doc(cls, class_name) end
      local parent = rawget(cls, "__parent")
      while type(parent) == "table" do
        local pf = rawget(parent, method)
        if pf and pf ~= f then
          local pname = names_of(pf)[1]
          local e = pname and help.lookup(pf)
          if e and e.summary then
            return { signature = (class_name:match("[%w_]+$")) .. ":" .. method .. (e.signature:match("%b()") or "()"),
                     summary = e.summary .. " (" .. pname .. ")", where = e.where }
          end
        end
        parent = rawget(parent, "__parent")
      end
    end
  end
  return nil
end

-- ---- modules and models ---------------------------------------------------------------------------
local function module_file(name)
  local mod = name:gsub("^mtl%.Tensor$", "mtl.tensor")
  return package.searchpath(mod, package.path)
end

local function model_entry(cls, name)
  local models = require "mtl.models"
  local model = rawget(cls, "model_name")
  if not model then
    for _, m in ipairs(models.names()) do
      local ok, c = pcall(models.get, m)
      if ok and c == cls then model = m end
    end
  end
  if not model then return nil end
  local path = package.searchpath("models." .. model, package.path)
  return { name = name or ("models." .. model), signature = string.format('mtl.models.build("%s", opts)', model),
           summary = models.summary(model), where = path and path:match("(models/.*)$") or path }
end

-- ---- lookup -------------------------------------------------------------------------------------------
-- x: a value, or a name as a string ("mtl.zeros", "Tensor:get", "mmoe").
-- name: the text it was written as (`?mtl.nosuch` passes "mtl.nosuch").
function help.lookup(x, name)
  if type(x) == "string" and name == nil then
    for _, e in ipairs(help.catalogue()) do
      if e.name == x or e.name == "mtl." .. x then return help.lookup(e.value, e.name) end
    end
    local ok, cls = pcall(require("mtl.models").get, x)
    if ok then return model_entry(cls) end
    local all = {}
    for _, e in ipairs(help.catalogue()) do all[#all + 1] = e.name end
    for _, m in ipairs(require("mtl.models").names()) do all[#all + 1] = m end
    return nil, string.format("no mtl function, module or model is called '%s'%s", x,
      require("mtl.config.util").did_you_mean(x, all))
  end
  if x == nil then
    if not name then return nil, "the value is nil (help() alone shows the REPL's help)" end
    if name:match("^[%w_]+$") then -- ?mmoe: a model's name
      local e = help.lookup(name)
      if e then return e end
    end
    local all = {}
    for _, e in ipairs(help.catalogue()) do all[#all + 1] = e.name end
    return nil, string.format("%s is nil: no mtl function, module or model has that name%s", name,
      require("mtl.config.util").did_you_mean(name, all))
  end
  local names = names_of(x)
  if type(x) == "table" and rawget(x, "__is_module") ~= nil or (type(x) == "table" and getmetatable(x)
      and type(getmetatable(x)) == "table" and rawget(getmetatable(x), "__is_module")) then
    local cls = rawget(x, "__is_module") ~= nil and x or getmetatable(x)
    local m = model_entry(cls, names[1])
    if m then return m end
  end
  if type(x) == "function" then
    if #names == 0 then
      return nil, string.format("%s is a function that mtl does not export", name or tostring(x))
    end
    local e
    if debug.getinfo(x, "S").what == "C" then
      e = from_lines(names) or {}
    else
      e = from_lua(x, names) or {}
      if not e.summary then e = from_lines(names) or inherited(x, names) or e end
    end
    e.name, e.names = names[1], names
    return e
  end
  if type(x) == "table" and rawget(x, "__is_module") and #names > 0 then
    local c = class_doc(x, names[1])
    if c then c.names = names return c end
  end
  if type(x) == "table" and #names > 0 then
    local path = module_file(names[1])
    local lines = path and file_lines(path)
    local h = lines and header(lines) or {}
    return { name = names[1], names = names, signature = names[1], summary = h[1] and (h[1]:gsub("^[%w_.]+:%s*", "")),
             where = path and (path:match("(lua/.*)$") or path) }
  end
  if type(x) == "userdata" and getmetatable(x) == mtl_module().core.Tensor_mt then
    return { name = "Tensor", signature = string.format("a %s tensor of size %s", x:dtype(),
      x:dim() == 0 and "scalar" or table.concat(x:shape(), "x")), summary = "its methods: help(mtl.Tensor); docs/tensor.md" }
  end
  return nil, string.format("%s (%s) is not an mtl function, module or model", name or tostring(x), type(x))
end

function help.text(x, name)
  local e, why = help.lookup(x, name)
  if not e then return "help: " .. why .. "\n" end
  local out = { e.signature or e.name }
  if e.summary then out[#out + 1] = "  " .. e.summary end
  local also = {}
  for _, n in ipairs(e.names or {}) do if n ~= e.name then also[#also + 1] = n end end
  if #also > 0 then out[#out + 1] = "  also: " .. table.concat(also, ", ") end
  if e.where then out[#out + 1] = "  defined in " .. e.where end
  return table.concat(out, "\n") .. "\n"
end

return help
