-- The `mtl` command.
--   mtl                      the REPL (lua/mtl/repl.lua)
--   mtl -i script.lua [args] run a script, then the REPL with its globals
--   mtl -e 'code'            run code
--   mtl script.lua [args]    run a script with mtl's paths set (arg[0] is the
--                            script, arg[1..] its arguments)
--   mtl --version            mtl's and LuaJIT's versions
-- The REPL, -i, -e and scripts see one environment: Lua's globals plus `mtl`
-- (require "mtl", already loaded) and `help` (help(x) describes any mtl
-- function, module or model). Lua files are loaded as source text only
-- (precompiled bytecode is refused).
--   mtl train|eval|predict|export|report|bench|sweep ...
--                            subcommands (lua/mtl/cli/init.lua, docs/cli.md)
-- Exit codes: 0 success, 1 a failure while running, 2 a wrong command line.

-- Every exit closes the Lua state (finalizers run, tensors and modules free
-- their memory), also when a library such as argparse calls os.exit itself
-- (e.g. after --help): sanitizer runs then see no leaks at exit.
do
  local exit = os.exit
  os.exit = function(code, close)
    if close == nil then close = true end
    return exit(code, close)
  end
end

-- The globals every mode starts with (see the header).
local function preload()
  _G.mtl = require "mtl"
  _G.help = function(...) return require("mtl.repl").help((...), io.stdout, (select(2, ...)), select("#", ...) > 0) end
end

-- Runs a script file in env (a table of globals); exits 1 on error.
local function run_script(script, args, env)
  local chunk, err = require("mtl.config.util").loadfile(script)
  if not chunk then
    io.stderr:write("mtl: ", err, "\n")
    os.exit(1, true)
  end
  if env then setfenv(chunk, env) end
  args[0] = script
  _G.arg = args
  local ok, msg = xpcall(function() return chunk(unpack(args)) end, debug.traceback)
  if not ok then
    io.stderr:write("mtl: ", tostring(msg), "\n")
    os.exit(1, true)
  end
end

local first = arg[1]

-- The REPL's exit: 0, or 1 when piped input stopped at an error (130 at Ctrl-C).
local function repl_exit(_, ok, failure)
  if ok then os.exit(0, true) end
  os.exit(failure == "interrupted" and 130 or 1, true)
end

if first == nil then
  preload()
  repl_exit(require("mtl.repl").run())
end

if first == "--version" or first == "-v" then
  io.stdout:write(string.format("mtl %s (%s)\n", require("mtl").version, jit and jit.version or _VERSION))
  os.exit(0, true)
end

if first == "-e" then
  local code = arg[2] or (io.stderr:write("mtl: -e needs code\n") and os.exit(2, true))
  preload()
  local chunk, err = loadstring(code, "=(command line)")
  if not chunk then
    io.stderr:write("mtl: ", err, "\n")
    os.exit(1, true)
  end
  local ok, msg = xpcall(chunk, debug.traceback)
  if not ok then
    io.stderr:write("mtl: ", tostring(msg), "\n")
    os.exit(1, true)
  end
  os.exit(0, true)
end

if first == "-i" then
  local script = arg[2] or (io.stderr:write("mtl: -i needs a script\n") and os.exit(2, true))
  if not require("mtl.sys").exists(script) then
    io.stderr:write(string.format("mtl: cannot open script '%s'\n", script))
    os.exit(2, true)
  end
  preload()
  local env = setmetatable({}, { __index = _G })
  local args = {}
  for i = 3, #arg do args[i - 2] = arg[i] end
  run_script(script, args, env)
  repl_exit(require("mtl.repl").run({ env = env }))
end

if first == "-h" or first == "--help" then
  io.stdout:write(require("mtl.cli").usage_text())
  os.exit(0, true)
end

local args = {}
for i = 2, #arg do args[i - 1] = arg[i] end

local cli = require "mtl.cli"
if cli.KNOWN[first] then os.exit(cli.main(first, args), true) end

if first:sub(1, 1) == "-" then
  io.stderr:write(string.format("mtl: unknown option '%s'\n", first), cli.usage_text())
  os.exit(2, true)
end

-- a script, or a mistyped command (a word that names no file)
local f = io.open(first)
if f then
  f:close()
elseif not first:find("[/.]") then
  os.exit(cli.main(first, args), true) -- prints "unknown command" (and a suggestion); exit 2
else
  io.stderr:write(string.format("mtl: cannot open script '%s'\n", first))
  os.exit(2, true)
end
preload()
run_script(first, args)
