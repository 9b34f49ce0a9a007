-- Exit codes and messages a script can rely on: 0 success, 1 a failure while
-- running, 2 a wrong command line. Table-driven: each case is a command
-- line, its exit code and a piece of its stderr.
local tiny = require "cli.tiny"

describe("mtl command line", function()
  local dir
  setup(function()
    dir = tiny.setup()
    local f = assert(io.open(dir .. "/broken.lua", "w"))
    f:write("return {\n  data = {,\n}\n")
    f:close()
    f = assert(io.open(dir .. "/notable.lua", "w"))
    f:write("return 42\n")
    f:close()
  end)
  teardown(function() tiny.rm(dir) end)

  local cases = {
    { "a typo'd subcommand", "tran x.lua", 2, "mtl: unknown command 'tran' (did you mean 'train'?)" },
    { "an unknown word", "frobnicate", 2, "mtl: unknown command 'frobnicate'\nusage: mtl <command>" },
    { "an unknown option", "--frob", 2, "mtl: unknown option '--frob'" },
    { "a missing script", "nope/script.lua", 2, "mtl: cannot open script 'nope/script.lua'" },
    { "a missing config", "train DIR/none.lua", 2, "mtl train: config file 'DIR/none.lua' does not exist" },
    { "no config at all", "train", 2, "mtl train: missing argument 'config'" },
    { "an unknown train option", "train DIR/config.lua --frob", 2, "mtl train: unknown option '--frob'" },
    { "a --set without '='", "train DIR/config.lua --set train.steps", 2,
      "mtl train: --set expects key.path=value (e.g. train.steps=100), got 'train.steps'" },
    { "a --set through a string", "train DIR/config.lua --set model.name.x=1", 2, "model.name" },
    { "a --set of an unknown section", "train DIR/config.lua --set trian.steps=3", 2, "trian" },
    { "a config with a syntax error", "train DIR/broken.lua", 1, "mtl train: DIR/broken.lua:2:" },
    { "a config that is not a table", "eval DIR/notable.lua --checkpoint DIR", 1, "notable.lua" },
    { "eval without --checkpoint", "eval DIR/config.lua", 2, "mtl eval: --checkpoint is required" },
    { "a directory that is no model", "predict DIR --input x --output y", 2,
      "is a directory but not an exported model (no manifest.json)" },
    { "report on a missing directory", "report DIR/nothing", 2, "mtl report: run directory 'DIR/nothing' does not exist" },
    { "report on a directory without metrics", "report DIR", 2, "has no metrics.jsonl" },
    { "--resume with --fresh", "train DIR/config.lua --resume --fresh", 2, "--resume and --fresh exclude each other" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " exits " .. c[3], function()
      local rc, out, err = tiny.run(c[2]:gsub("DIR", dir))
      assert.are.equal(c[3], rc, err)
      assert.truthy(err:find(c[4]:gsub("DIR", dir), 1, true), err)
      assert.are.equal("", out)
    end)
  end

  it("prints usage for --help (exit 0) and lists the subcommands", function()
    local rc, out = tiny.run("--help")
    assert.are.equal(0, rc)
    for _, name in ipairs({ "train", "eval", "predict", "export", "report", "bench", "sweep", "features" }) do
      assert.truthy(out:find("\n  " .. name .. " ", 1, true), name)
    end
    assert.truthy(out:find("Exit codes: 0 success, 1 a failure while running, 2 a wrong command line.", 1, true))
  end)

  it("has --help for each subcommand", function()
    local want = {
      train = { "--set K=V", "--resume", "--json", "--model-dir DIR" },
      eval = { "--checkpoint PATH", "--json", "--data FILE" },
      predict = { "--input FILE", "--output FILE", "--pass-through COLS", "--score EXPR" },
      export = { "--checkpoint PATH", "--out DIR" },
      report = { "<run_dir>", "--out FILE" },
    }
    for name, opts in pairs(want) do
      local rc, out = tiny.run(name .. " --help")
      assert.are.equal(0, rc, name)
      assert.truthy(out:find("Usage: mtl " .. name, 1, true), out)
      for _, o in ipairs(opts) do assert.truthy(out:find(o, 1, true), name .. " " .. o) end
    end
  end)

  it("still runs scripts with their arguments", function()
    local f = assert(io.open(dir .. "/s.lua", "w"))
    f:write("local mtl = require 'mtl'\nprint(arg[0]:match('s.lua$'), arg[1], select(2, ...), mtl.tensor({1, 2}):numel())\n")
    f:close()
    local rc, out = tiny.run(dir .. "/s.lua one two")
    assert.are.equal(0, rc)
    assert.are.equal("s.lua\tone\ttwo\t2\n", out)
    f = assert(io.open(dir .. "/fail.lua", "w"))
    f:write("error('boom')\n")
    f:close()
    local rc2, _, err = tiny.run(dir .. "/fail.lua")
    assert.are.equal(1, rc2)
    assert.truthy(err:find("fail.lua:1: boom", 1, true))
  end)

  it("dispatches bench, sweep and features to their modules", function()
    local rc, _, err = tiny.run("sweep")
    assert.are.equal(2, rc)
    assert.truthy(err:find("mtl sweep: missing argument 'sweep'\nUsage: mtl sweep [-h] SWEEP.lua", 1, true), err)
    rc, _, err = tiny.run("sweep " .. dir .. "/none.lua")
    assert.are.equal(2, rc)
    assert.truthy(err:find("mtl sweep: sweep file '" .. dir .. "/none.lua' does not exist", 1, true), err)
    local out
    rc, out = tiny.run("features --help")
    assert.are.equal(0, rc)
    assert.truthy(out:find("dataset", 1, true), out)
  end)

  it("names a module that is missing", function()
    -- a launcher whose Lua path has no mtl.bench: the clear error, exit 1
    local lib = tiny.tmpdir()
    os.execute(string.format("mkdir -p %s/mtl && cp -r %s/lua/mtl/* %s/mtl/ && rm -f %s/mtl/bench.lua", lib, tiny.root, lib, lib))
    local cmd = string.format("cd %s && LUA_PATH='%s/?.lua;%s/?/init.lua;%s/?.lua;;' LUA_CPATH='%s/lib/?.so;;' luajit %s/mtl/main.lua bench 2>&1",
      lib, lib, lib, tiny.root, tiny.mtl:gsub("/mtl$", ""), lib)
    local p = io.popen(cmd .. "; echo rc=$?")
    local out = p:read("*a")
    p:close()
    tiny.rm(lib)
    assert.truthy(out:find("mtl bench: this build has no mtl.bench (lua/mtl/bench.lua is missing)", 1, true), out)
    assert.truthy(out:find("rc=1", 1, true), out)
  end)
end)
