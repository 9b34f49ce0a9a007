-- Model directories are passed around and served, so loading one runs
-- nothing from it: config.lua is a table literal read by a parser
-- (mtl.config.read_data), never loadfile'd; precompiled Lua, code (an endless
-- loop) and a config asking for far more memory than model.ckpt holds are
-- refused with a message that says so, by export.load, the mtl command and the
-- serving library's Lua side (runtime/tests/serve/test_serve.c does the same
-- through the C API).
local tiny = require "cli.tiny"
local shell = require "helpers.shell"
local export = require "mtl.export"
local serve = require "mtl.serve"
local config = require "mtl.config"

local function put(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end

describe("loading a model directory", function()
  local dir, good
  setup(function()
    dir = tiny.setup_trained()
    rc, _, err = tiny.run(string.format("export %s/config.lua --checkpoint %s/run --out %s/model", dir, dir, dir))
    assert(rc == 0, err)
    good = shell.read(dir .. "/model/config.lua")
  end)
  teardown(function() tiny.rm(dir) end)

  -- a copy of the model directory whose config.lua is text
  local n = 0
  local function with_config(text)
    n = n + 1
    local copy = string.format("%s/copy%d", dir, n)
    os.execute(string.format("cp -r %s/model %s", dir, copy))
    put(copy .. "/config.lua", text)
    return copy
  end

  -- the message of export.load, serve.load and `mtl predict DIR` (exit 1, within 60 s)
  local function refused(copy)
    local ok, e1 = pcall(export.load, copy)
    assert.is_false(ok)
    local ok2, e2 = pcall(serve.load, copy)
    assert.is_false(ok2)
    local rc, out, e3 = tiny.run(string.format("predict %s --input %s/test.csv --output %s/out.csv", copy, dir, copy))
    assert.are.equal(1, rc, e3)
    assert.are.equal("", out)
    assert.is_false(shell.run("ls " .. copy):find("out.csv", 1, true) ~= nil)
    return e1, e2, e3
  end

  it("reads config.lua as data: the file export wrote (and earlier mtl versions wrote) loads", function()
    assert.truthy(good:find("^%-%- The config of an exported mtl model %(written by `mtl export`%)%.\nreturn {"), good)
    local m = export.load(dir .. "/model")
    assert.are.equal("mmoe", m.cfg.model.name)
    local copy = with_config(good:gsub("\n", "\n-- a comment line\n", 3))
    assert.are.equal("mmoe", export.load(copy).cfg.model.name)
  end)

  it("refuses precompiled Lua (bytecode)", function()
    put(dir .. "/src.lua", good)
    os.execute(string.format("luajit -b %s/src.lua %s/bc.lua", dir, dir))
    local copy = with_config(shell.read(dir .. "/bc.lua"))
    local e1, e2, e3 = refused(copy)
    local why = copy .. "/config.lua: is precompiled Lua (bytecode), not a table literal: not read"
    assert.truthy(e1:find("export: " .. why .. " (a model directory's config is data, never run: export the model again "
      .. "with `mtl export` if this one was written otherwise)", 1, true), e1)
    assert.truthy(e2:find(why, 1, true), e2)
    assert.truthy(e3:find("mtl predict: export: " .. why, 1, true), e3)
  end)

  it("refuses code: an endless loop is not run, nor a config computed by code", function()
    local copy = with_config("while true do end\n")
    local e1, e2, e3 = refused(copy)
    local why = copy .. "/config.lua:1:1: expected a table literal (return { ... }), got \"while\""
    assert.truthy(e1:find(why, 1, true), e1)
    assert.truthy(e2:find(why, 1, true), e2)
    assert.truthy(e3:find(why, 1, true), e3)
    copy = with_config((good:gsub("return {", "local t = {}\nfor i = 1, 10 do t[i] = i end\nreturn {", 1)))
    e1 = refused(copy)
    assert.truthy(e1:find(copy .. "/config.lua:2:1: expected a table literal (return { ... }), got \"local\"", 1, true), e1)
  end)

  it("refuses a huge allocation: asked for by code, or by tables larger than the weights hold", function()
    -- code that would allocate 1 TiB: not run
    local copy = with_config('return { data = { x = string.rep("x", 2^40) } }\n')
    local e1 = refused(copy)
    assert.truthy(e1:find(copy .. "/config.lua:1:29: expected a value, ',' or '}', got \".\"", 1, true), e1)
    -- a literal that asks for a user table of 10^9 x 4 floats (16 GB); model.ckpt holds a few KB
    assert.truthy(good:find("num_buckets = 20,", 1, true), good)
    copy = with_config((good:gsub("num_buckets = 20,", "num_buckets = 1000000000,", 1)))
    local e2, e3, e4 = refused(copy)
    local budget = 4 * require("mtl.sys").stat(copy .. "/model.ckpt").size + 64 * 2 ^ 20
    local why = string.format("%s: building the model would allocate more than %d bytes (4 times %s/model.ckpt plus "
      .. "64 MiB): its config asks for more than its weights hold", copy, budget, copy)
    assert.truthy(e2:find(why, 1, true), e2)
    assert.truthy(e3:find(why, 1, true), e3)
    assert.truthy(e4:find(why, 1, true), e4)
    -- a file larger than a config may be is not read at all
    local ok, e5 = pcall(config.read_data, dir .. "/model/config.lua", 100)
    assert.is_false(ok)
    assert.are.equal(dir .. "/model/config.lua: larger than 100 bytes, more than a config may be: not read", e5)
  end)

  it("refuses a manifest that names files outside the directory", function()
    local copy = with_config(good)
    local m = shell.read(copy .. "/manifest.json"):gsub('"config":"config.lua"', '"config":"../../etc/passwd"')
    put(copy .. "/manifest.json", m)
    local ok, err = pcall(export.load, copy)
    assert.is_false(ok)
    assert.are.equal(string.format('export: %s/manifest.json: files.config must name a file in the directory, got "../../etc/passwd"',
      copy), err)
  end)
end)
