-- The REPL through a pseudo-terminal (completion, history, multi-line input,
-- Ctrl-C during a loop) and through a pipe (no prompts, no escape codes).
local json = require "cjson"
local repl = require "mtl.repl"
local mtl = require "mtl"

local shell = require "helpers.shell"
local sh, root, launcher = shell.run, shell.root, shell.launcher

-- Runs the pty driver with these steps (expect: Python regular expressions);
-- returns its output (starts with OK).
local function drive(steps, home, args)
  local cmd = { launcher }
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = a end
  local spec = json.encode({ cmd = cmd, env = { HOME = home, TERM = "xterm" }, steps = steps })
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "w"))
  f:write(spec)
  f:close()
  local out = sh(string.format("python3 %s/spec/scripts/pty_drive.py < %s 2>&1", root, tmp))
  os.remove(tmp)
  return out
end

describe("the REPL", function()
  it("completes, continues multi-line input, survives Ctrl-C and keeps history (pty)", function()
    local home = shell.tmpdir()
    local out = drive({
      { expect = "mtl> " },
      { send = "x = mtl.ones(2, 2)\r", expect = "mtl> " },
      { send = "mtl.ara\t", expect = "mtl\\.ara.*nge" }, -- the terminal redraws with cursor moves
      { send = "(3)\r", expect = "size 3\\].*mtl> " },
      { send = "x:nu\t", expect = "x:nu.*mel" },
      { send = "()\r", expect = "4.*mtl> " },
      { send = "for i = 1, 2 do\r", expect = ">> " },
      { send = "print(i * 10)\r", expect = ">> " },
      { send = "end\r", expect = "10.*20.*mtl> " },
      { send = "for i = 1, 1e9 do local y = x * 2 end\r", sleep = 1.0 },
      { send = "\3", expect = "interrupted.*mtl> " },
      { send = "=x:sum():item()\r", expect = "4.*mtl> " },
      { send = "\4", expect = "" },
    }, home)
    assert.is_truthy(out:match("^OK"), out)
    sh("sleep 0.5")
    local f = io.open(home .. "/.mtl_history")
    assert.is_not_nil(f, "history file written")
    local hist = f:read("*a")
    f:close()
    -- libedit's history file (spaces written as \040)
    assert.is_truthy(hist:find("mtl.arange(3)", 1, true), hist)
    assert.is_truthy(hist:find("=x:sum():item()", 1, true), hist)
    -- a new session sees the old lines: up-arrow recalls the last one
    out = drive({
      { expect = "mtl> " },
      { send = "\27[A", expect = "x:sum\\(\\):item\\(\\)" },
      { send = "\r", expect = "mtl> " },
      { send = "\4", expect = "" },
    }, home)
    assert.is_truthy(out:match("^OK"), out)
    sh("rm -rf " .. home)
  end)

  it("stops pure Lua loops at Ctrl-C, compiled or not, with the session's state intact (pty)", function()
    local home = shell.tmpdir()
    local out = drive({
      { expect = "mtl> " },
      { send = "n, keep = 0, mtl.ones(3)\r", expect = "mtl> " },
      { send = "while true do end\r", sleep = 1.0 },
      { send = "\3", expect = "interrupted.*mtl> " },
      { send = "while true do n = n + 1 end\r", sleep = 1.0 },
      { send = "\3", expect = "interrupted.*mtl> " },
      -- a function compiled in an earlier chunk, then called in an endless loop
      { send = "function spin(k) local s = 0 for i = 1, k do s = s + i end return s end\r", expect = "mtl> " },
      { send = "for i = 1, 200 do spin(1000) end\r", expect = "mtl> " },
      { send = "spin(1e15)\r", sleep = 1.0 },
      { send = "\3", expect = "interrupted.*mtl> " },
      { send = "=n > 1000, keep:sum():item()\r", expect = "true\t3.*mtl> " },
      { send = "\4", expect = "" },
    }, home)
    sh("rm -rf " .. home)
    assert.is_truthy(out:match("^OK"), out)
  end)

  it("reads a pipe without prompts or escape codes", function()
    local out = sh(string.format("printf '%%s\\n' 'x = 2 + 3' '=x * 10' 'for i = 1, 2 do' '  print(i)' 'end' " ..
      "'{1, 2, k = \"v\"}' | %s", launcher))
    assert.are.equal('50\n1\n2\n{1, 2, k = "v"}\n', out)
  end)

  it("stops piped input at its first error as a script stops: the input's line, a traceback, exit 1", function()
    local function piped(lines)
      return sh(string.format("printf '%%s\\n' %s | %s 2>&1; echo \"exit $?\"", lines, launcher))
    end
    assert.are.equal("2\nmtl: stdin:3: boom\nstack traceback:\n\t[C]: in function 'error'\n\tstdin:3: in main chunk\n"
      .. "exit 1\n", piped([['x = 2' '=x' 'error("boom")' 'print("not reached")']]))
    -- a syntax error, and input that ends inside a chunk
    assert.are.equal("1\nmtl: stdin:2: unexpected symbol near '='\nexit 1\n", piped([['print(1)' 'x = = 2']]))
    assert.are.equal("mtl: stdin:2: 'end' expected (to close 'for' at line 1) near '<eof>'\nexit 1\n",
      piped([['for i = 1, 2 do' 'print(i)']]))
    -- a script's error reads the same
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write('x = 2\nprint(x)\nerror("boom")\n')
    f:close()
    local script = sh(string.format("%s %s 2>&1 >/dev/null; echo \"exit $?\"", launcher, tmp))
    os.remove(tmp)
    local want = "mtl: " .. tmp .. ":3: boom\nstack traceback:\n\t[C]: in function 'error'\n\t" .. tmp .. ":3: in main chunk"
    assert.are.equal(want, script:sub(1, #want))
    assert.truthy(script:find("exit 1\n$"), script)
  end)

  it("runs a script and stays with its globals (-i), and runs -e code", function()
    local tmp = os.tmpname()
    local f = assert(io.open(tmp, "w"))
    f:write("answer = 6 * 7\n")
    f:close()
    local out = sh(string.format("echo '=answer + 1' | %s -i %s", launcher, tmp))
    assert.are.equal("43\n", out)
    assert.are.equal("9\n", sh(string.format("%s -e 'print(4 + 5)'", launcher)))
    os.remove(tmp)
  end)

  it("compiles expressions, statements and incomplete chunks", function()
    local env = setmetatable({}, { __index = _G })
    assert.is_function(repl.compile("1 + 1", env))
    assert.is_function(repl.compile("y = 3", env))
    local f, _, incomplete = repl.compile("function g()", env)
    assert.is_nil(f)
    assert.is_true(incomplete)
    f, _, incomplete = repl.compile("x = = 2", env)
    assert.is_nil(f)
    assert.is_false(incomplete)
  end)

  it("completes globals, table fields and tensor methods", function()
    local env = setmetatable({ t = mtl.ones(2), mtl = mtl }, { __index = _G })
    local c = repl.complete("mtl.zer", env)
    assert.are.same({ "mtl.zero_grad", "mtl.zeros" }, c)
    c = repl.complete("t:resh", env)
    assert.are.same({ "t:reshape" }, c)
    c = repl.complete("tabl", env)
    assert.are.same({ "table" }, c)
  end)

  it("pretty-prints nested tables to a depth limit", function()
    assert.are.equal('{1, 2, a = {b = {c = {...}}}}', repl.pretty({ 1, 2, a = { b = { c = { d = 1 } } } }))
    local cyc = {}
    cyc.self = cyc
    assert.are.equal("{self = <cycle>}", repl.pretty(cyc))
  end)
end)
