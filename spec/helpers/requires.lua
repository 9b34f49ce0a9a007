-- The require graph of Lua sources, found statically (spec/require_graph_spec.lua).
--
--   requires.of(source)            -> {"mtl", "mtl.sys", ...} in order of appearance
--   requires.graph(root, prefix)   -> {module = {required modules}} for every
--                                     .lua file under root/<prefix as a path>
--   requires.cycles(graph)         -> {"a -> b -> a", ...} (empty when acyclic;
--                                     each written from its first module in sorted order)
--
-- A require is `require "m"`, `require 'm'`, `require [[m]]`, `require("m")` or
-- `pcall(require, "m")` anywhere in the code: at the top of a file or inside a
-- function (a lazy require is still a dependency). Comments and strings are
-- skipped; a require of a computed name (`require(name)`, `require("m." .. x)`)
-- names no module and is not counted.
local shell = require "helpers.shell"

local M = {}

-- Lua tokens: {kind = "name" | "string" | "op", value = text}; comments dropped.
-- Only what the require patterns need: numbers and operators are rough.
local function tokens(src)
  local out, i, n = {}, 1, #src
  local function long_bracket(at) -- [==[ ... ]==] starting at `at`: its text and the index after it
    local eq = src:match("^%[(=*)%[", at)
    if not eq then return nil end
    local body = at + #eq + 2
    local close = src:find("]" .. eq .. "]", body, true)
    if not close then return src:sub(body), n + 1 end
    return src:sub(body, close - 1), close + #eq + 2
  end
  while i <= n do
    local c = src:sub(i, i)
    if c:match("%s") then
      i = i + 1
    elseif src:sub(i, i + 1) == "--" then
      local _, after = long_bracket(i + 2)
      if after then
        i = after
      else
        i = (src:find("\n", i, true) or n) + 1
      end
    elseif c == "[" and src:match("^%[=*%[", i) then
      local text, after = long_bracket(i)
      out[#out + 1] = { kind = "string", value = (text:gsub("^\r?\n", "")) }
      i = after
    elseif c == '"' or c == "'" then
      local j, buf = i + 1, {}
      while j <= n do
        local d = src:sub(j, j)
        if d == "\\" then
          buf[#buf + 1] = src:sub(j, j + 1)
          j = j + 2
        elseif d == c or d == "\n" then
          break
        else
          buf[#buf + 1] = d
          j = j + 1
        end
      end
      out[#out + 1] = { kind = "string", value = table.concat(buf) }
      i = j + 1
    elseif c:match("[%a_]") then
      local w = src:match("^[%w_]+", i)
      out[#out + 1] = { kind = "name", value = w }
      i = i + #w
    elseif c:match("%d") then
      i = i + #src:match("^[%w_.]+", i)
    else
      out[#out + 1] = { kind = "op", value = c }
      i = i + 1
    end
  end
  return out
end
M.tokens = tokens

-- The modules source requires by a literal name, in order of appearance.
function M.of(source)
  local t = tokens(source)
  local out = {}
  local function is(k, kind, value)
    local x = t[k]
    return x ~= nil and x.kind == kind and (value == nil or x.value == value)
  end
  for k = 1, #t do
    if is(k, "name", "require") and not (is(k - 1, "op", ".") or is(k - 1, "op", ":")) then
      if is(k + 1, "string") then
        out[#out + 1] = t[k + 1].value
      elseif is(k + 1, "op", "(") and is(k + 2, "string") and is(k + 3, "op", ")") then
        out[#out + 1] = t[k + 2].value
      elseif is(k - 1, "op", "(") and is(k - 2, "name", "pcall")
             and is(k + 1, "op", ",") and is(k + 2, "string") and is(k + 3, "op", ")") then
        out[#out + 1] = t[k + 2].value
      end
    end
  end
  return out
end

-- The module name of a file under root ("lua/mtl/cli/init.lua" -> "mtl.cli").
local function module_of(root, path)
  local rel = path:sub(#root + 2):gsub("%.lua$", ""):gsub("/init$", "")
  return (rel:gsub("/", "."))
end

-- files: a list of paths under root. Returns {module = {required modules that
-- are among files' modules}} and {module = path}.
function M.graph(root, files)
  local path_of = {}
  for _, p in ipairs(files) do path_of[module_of(root, p)] = p end
  local graph = {}
  for name, p in pairs(path_of) do
    local deps, seen = {}, {}
    for _, r in ipairs(M.of(shell.read(p))) do
      if path_of[r] and not seen[r] then
        deps[#deps + 1], seen[r] = r, true
      end
    end
    graph[name] = deps
  end
  return graph, path_of
end

-- Every cycle a depth-first walk finds (one per edge that closes a cycle),
-- as "a -> b -> a" starting at its first module in sorted order; modules are
-- visited in sorted order, so the list is stable.
function M.cycles(graph)
  local names = {}
  for k in pairs(graph) do names[#names + 1] = k end
  table.sort(names)
  local state, stack, out = {}, {}, {}
  local function visit(v)
    state[v] = "open"
    stack[#stack + 1] = v
    for _, w in ipairs(graph[v] or {}) do
      if state[w] == "open" then
        local from = #stack
        while stack[from] ~= w do from = from - 1 end
        -- written from its first module in sorted order, so one cycle has one spelling
        local ring, first = {}, from
        for k = from, #stack do
          ring[#ring + 1] = stack[k]
          if stack[k] < stack[first] then first = k end
        end
        local path = {}
        for k = 0, #ring do path[#path + 1] = ring[(first - from + k) % #ring + 1] end
        out[#out + 1] = table.concat(path, " -> ")
      elseif state[w] == nil then
        visit(w)
      end
    end
    stack[#stack] = nil
    state[v] = "done"
  end
  for _, v in ipairs(names) do
    if state[v] == nil then visit(v) end
  end
  return out
end

return M
