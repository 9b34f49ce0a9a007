-- No require cycles in lua/mtl: every module is read, every require of a
-- literal name found (at the top of a file or inside a function: a lazy
-- require hides a cycle, it does not remove it), and the graph walked.
-- mtl's own lazy parts (lua/mtl/init.lua's name table, filled on first
-- index) are looked up by a computed name and are not requires.
local requires = require "helpers.requires"
local shell = require "helpers.shell"

-- Cycles that came with another change and are waiting for their fix there:
-- the check fails on any cycle not listed, and on a listed one that is gone.
local KNOWN = {}

local function lua_files(dir)
  local files = {}
  for line in shell.run("find " .. shell.quote(dir) .. " -name '*.lua' | sort"):gmatch("[^\n]+") do
    files[#files + 1] = line
  end
  return files
end

describe("the require scanner", function()
  local cases = {
    { 'local a = require "a"', { "a" } },
    { "local b = require('b.c')", { "b.c" } },
    { "local c = require [[c]]", { "c" } },
    { 'local d = require("d").new()', { "d" } },
    { 'local function f() return require("lazy").x end', { "lazy" } },
    { 'local ok, m = pcall(require, "optional")', { "optional" } },
    { '-- require "in_a_comment"\nlocal x = 1', {} },
    { '--[==[ require "in_a_long_comment" ]==] local y = require "after"', { "after" } },
    { 'local s = "require \'in_a_string\'"', {} },
    { 'local s = [[ require("in_a_long_string") ]]', {} },
    { 'local m = require("models." .. name)', {} },
    { "local m = require(name)", {} },
    { 'local t = obj.require "method"', {} },
    { 'local a = "x\\"" local b = require "b"', { "b" } },
  }
  for _, c in ipairs(cases) do
    it("finds " .. (#c[2] > 0 and table.concat(c[2], ", ") or "nothing") .. " in " .. c[1]:gsub("\n", "\\n"), function()
      assert.are.same(c[2], requires.of(c[1]))
    end)
  end
end)

describe("the cycle finder", function()
  it("names each cycle from where the walk entered it", function()
    assert.are.same({ "a -> b -> a" }, requires.cycles({ a = { "b" }, b = { "a" } }))
    assert.are.same({ "b -> c -> d -> b" }, requires.cycles({ a = { "b" }, b = { "c" }, c = { "d" }, d = { "b" } }))
    assert.are.same({ "b -> c -> d -> b" }, requires.cycles({ a = { "d" }, b = { "c" }, c = { "d" }, d = { "b" } }))
    assert.are.same({ "s -> s" }, requires.cycles({ s = { "s" } }))
  end)

  it("finds none in a tree or a diamond", function()
    assert.are.same({}, requires.cycles({ a = { "b", "c" }, b = { "d" }, c = { "d" }, d = {} }))
  end)
end)

describe("lua/mtl", function()
  local files = lua_files("lua/mtl")
  local graph, path_of = requires.graph("lua", files)

  it("has modules that all compile", function()
    assert.is_true(#files > 30, "found " .. #files .. " files under lua/mtl")
    for _, p in ipairs(files) do
      local chunk, err = loadfile(p)
      assert(chunk, err)
    end
  end)

  it("sees lazy requires (a check that finds nothing would prove nothing)", function()
    local function has(from, to)
      for _, m in ipairs(graph[from] or {}) do if m == to then return true end end
      return false
    end
    assert.is_true(has("mtl.cli", "mtl.export"), "mtl.cli requires mtl.export inside its commands")
    assert.is_true(has("mtl.export", "mtl.ranker"), "export.load requires mtl.ranker inside the function")
    assert.is_true(has("mtl.train", "mtl.cli.progress"))
    assert.is_false(has("mtl.cli.progress", "mtl.train"))
    assert.are.equal("lua/mtl/cli/init.lua", path_of["mtl.cli"])
  end)

  it("has no require cycle (but the known ones below, which must go)", function()
    local new, known = {}, {}
    for _, c in ipairs(requires.cycles(graph)) do
      if KNOWN[c] then known[c] = true else new[#new + 1] = c end
    end
    assert(#new == 0, "require cycles in lua/mtl:\n  " .. table.concat(new, "\n  "))
    for c in pairs(KNOWN) do
      assert(known[c], "the known cycle " .. c .. " is gone: delete it from KNOWN in spec/require_graph_spec.lua")
    end
  end)
end)
