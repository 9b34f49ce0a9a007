-- The `mtl` command.
--   mtl                      the REPL (lua/mtl/repl.lua)
--   mtl -i script.lua [args] run a script, then the REPL with its globals
--   mtl -e 'code'            run code
--   mtl script.lua [args]    run a script with mtl's paths set (arg[0] is the
--                            script, arg[1..] its arguments)
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

-- Runs a script file in env (a table of globals); exits 1 on error.
local function run_script(script, args, env)
  local chunk, err = loadfile(script)
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

if first == nil then
  require("mtl.repl").run()
  os.exit(0, true)
end

if first == "-e" then
  local code = arg[2] or (io.stderr:write("mtl: -e needs code\n") and os.exit(2, true))
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
  local env = setmetatable({}, { __index = _G })
  env.mtl = require "mtl"
  local args = {}
  for i = 3, #arg do args[i - 2] = arg[i] end
  run_script(script, args, env)
  require("mtl.repl").run({ env = env })
  os.exit(0, true)
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
run_script(first, args)
