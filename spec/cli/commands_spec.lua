-- Every command of `mtl --help` (cli.COMMANDS) answers --help with its usage
-- (exit 0), a wrong option with exit 2, and a file named on the command line
-- that does not exist with exit 2, as docs/cli.md documents; and the top level:
-- --version, --help, a missing script or -e code.
local tiny = require "cli.tiny"
local cli = require "mtl.cli"

local function put(p, text) local f = assert(io.open(p, "w")); f:write(text); f:close() end

-- a command line naming a missing file, and the piece of stderr that says so
local MISSING = {
  train = { "train NONE/c.lua", "mtl train: config file 'NONE/c.lua' does not exist" },
  eval = { "eval NONE/c.lua --checkpoint x", "mtl eval: config file 'NONE/c.lua' does not exist" },
  predict = { "predict NONE/c.lua --checkpoint x --input y --output z", "mtl predict: config file 'NONE/c.lua' does not exist" },
  export = { "export NONE/c.lua --checkpoint x --out y", "mtl export: config file 'NONE/c.lua' does not exist" },
  report = { "report NONE/run", "mtl report: run directory 'NONE/run' does not exist" },
  bench = { "bench --model mmoe --train NONE/t.csv", "mtl bench: --train: data file 'NONE/t.csv' does not exist" },
  sweep = { "sweep NONE/s.lua", "mtl sweep: sweep file 'NONE/s.lua' does not exist" },
  features = { "features samples --impressions NONE/i.csv --events NONE/e.csv --output o.csv",
               "mtl features: --impressions: cannot open NONE/i.csv" },
}

describe("every mtl command", function()
  it("is listed in MISSING (so this spec walks all of them)", function()
    for _, c in ipairs(cli.COMMANDS) do assert.is_table(MISSING[c[1]], c[1]) end
  end)

  for _, c in ipairs(cli.COMMANDS) do
    local name = c[1]
    it(name .. ": --help prints its usage on stdout, exit 0", function()
      local rc, out, err = tiny.run(name .. " --help")
      assert.are.equal(0, rc, err)
      assert.are.equal("", err)
      assert.truthy(out:lower():find("^usage: mtl " .. name), out)
    end)

    it(name .. ": an unknown option is a wrong command line, exit 2", function()
      local rc, out, err = tiny.run(name .. " --no-such-option")
      assert.are.equal(2, rc, err)
      assert.are.equal("", out)
      assert.truthy(err:find("^mtl " .. name .. ": unknown option '%-%-no%-such%-option'"), err)
    end)

    it(name .. ": a file named on the command line that does not exist, exit 2", function()
      local none = "/nonexistent-" .. name
      local rc, out, err = tiny.run((MISSING[name][1]:gsub("NONE", none)))
      assert.are.equal(2, rc, err)
      assert.are.equal("", out)
      assert.truthy(err:find((MISSING[name][2]:gsub("NONE", none)), 1, true), err)
    end)
  end

  it("bench without --model is a wrong command line, exit 2", function()
    local rc, _, err = tiny.run("bench")
    assert.are.equal(2, rc)
    assert.truthy(err:find("^mtl bench: %-%-model is required\n"), err)
  end)

  it("features without a subcommand is a wrong command line, exit 2", function()
    local rc, _, err = tiny.run("features")
    assert.are.equal(2, rc)
    assert.truthy(err:find("^mtl features: a command is required"), err)
  end)
end)

describe("empty inputs and internal errors", function()
  local dir
  setup(function()
    dir = tiny.setup_trained()
  end)
  teardown(function() tiny.rm(dir) end)

  it("eval on an empty or header-only file says so, exit 1", function()
    put(dir .. "/empty.csv", "")
    put(dir .. "/header.csv", "is_click,is_pay,user,item,price,a,b\n\n")
    for _, f in ipairs({ "empty", "header" }) do
      local rc, out, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/run --data %s/%s.csv", dir, dir, dir, f))
      assert.are.equal(1, rc, err)
      assert.are.equal("", out)
      assert.are.equal(string.format("mtl eval: %s/%s.csv has no rows to evaluate (it is empty or only a header)\n", dir, f), err)
    end
  end)

  it("report on a run that logged nothing says so, exit 1", function()
    os.execute(string.format("mkdir -p %s/quiet && touch %s/quiet/metrics.jsonl", dir, dir))
    local rc, _, err = tiny.run("report " .. dir .. "/quiet")
    assert.are.equal(1, rc)
    assert.are.equal(string.format("mtl report: %s/quiet/metrics.jsonl is empty: the run logged no step, there is nothing "
      .. "to report\n", dir), err)
  end)

  it("report says which lines of metrics.jsonl are not records and leaves them out", function()
    os.execute(string.format("cp -r %s/run %s/cut && printf '{\"step\": 3, \"lo' >> %s/cut/metrics.jsonl", dir, dir, dir))
    local n = 0
    for _ in io.lines(dir .. "/cut/metrics.jsonl") do n = n + 1 end
    local rc, out, err = tiny.run("report " .. dir .. "/cut")
    assert.are.equal(0, rc, err)
    assert.are.equal(string.format("report: %s/cut/report.html\n", dir), out)
    assert.are.equal(string.format("mtl report: %s/cut/metrics.jsonl: line %d is not a JSON record (a run killed while "
      .. "writing?): left out\n", dir, n), err)
  end)

  it("messages leave out the position in mtl's own source, unless MTL_DEBUG is set", function()
    assert.are.equal("mtl.concat: expected a non-empty list of tensors",
      cli.message("/usr/share/mtl/lua/mtl/ranker.lua:198: mtl.concat: expected a non-empty list of tensors"))
    assert.are.equal("x", cli.message("/opt/mtl/models/mmoe.lua:12: x"))
    assert.are.equal("data.csv:3:4: expected a number", cli.message("data.csv:3:4: expected a number"))
    local rc, _, err = tiny.run(string.format("eval %s/config.lua --checkpoint %s/config.lua", dir, dir))
    assert.are.equal(1, rc)
    assert.is_nil(err:find("/lua/mtl/", 1, true), err)
    local _, _, with_debug = tiny.run(string.format("eval %s/config.lua --checkpoint %s/config.lua", dir, dir), "MTL_DEBUG=1")
    assert.truthy(with_debug:find("stack traceback", 1, true), with_debug)
  end)
end)

describe("mtl itself", function()
  it("--version names mtl's and LuaJIT's versions", function()
    local rc, out = tiny.run("--version")
    assert.are.equal(0, rc)
    assert.are.equal(string.format("mtl %s (%s)\n", require("mtl").version, jit.version), out)
  end)

  it("-e without code, -i without a script or with a missing one: exit 2", function()
    local rc, _, err = tiny.run("-e")
    assert.are.equal(2, rc)
    assert.are.equal("mtl: -e needs code\n", err)
    rc, _, err = tiny.run("-i")
    assert.are.equal(2, rc)
    assert.are.equal("mtl: -i needs a script\n", err)
    rc, _, err = tiny.run("-i /nonexistent/s.lua")
    assert.are.equal(2, rc)
    assert.are.equal("mtl: cannot open script '/nonexistent/s.lua'\n", err)
  end)

  it("gives -e, scripts and the REPL the same globals: mtl and help", function()
    local dir = tiny.tmpdir()
    put(dir .. "/g.lua", "print(type(mtl), type(help), mtl.ones(2):numel())\n")
    local want = "table\tfunction\t2\n"
    local _, out = tiny.run("-e 'print(type(mtl), type(help), mtl.ones(2):numel())'")
    assert.are.equal(want, out)
    _, out = tiny.run(dir .. "/g.lua")
    assert.are.equal(want, out)
    _, out = tiny.run("< " .. dir .. "/g.lua")
    assert.are.equal(want, out)
    _, out = tiny.run("-i " .. dir .. "/g.lua < /dev/null")
    assert.are.equal(want, out)
    tiny.rm(dir)
  end)

  it("refuses precompiled Lua (bytecode) as a script, a config or a sweep", function()
    local dir = tiny.tmpdir()
    put(dir .. "/s.lua", "return { data = {}, features = {}, model = {} }\n")
    os.execute(string.format("luajit -b %s/s.lua %s/b.lua", dir, dir)) -- bytecode, named as source
    local why = dir .. "/b.lua: is precompiled Lua (bytecode); mtl loads Lua source text only"
    for _, cmd in ipairs({ "", "-i ", "sweep ", "train " }) do
      local rc, _, err = tiny.run(cmd .. dir .. "/b.lua </dev/null")
      assert.are.equal(1, rc, cmd .. err)
      assert.truthy(err:find(why, 1, true), cmd .. err)
    end
    tiny.rm(dir)
  end)
end)
