-- The `mtl` command: `mtl script.lua [args]` runs a script with mtl's paths
-- set (arg[0] is the script, arg[1..] its arguments). Later issues add the
-- REPL (no arguments) and subcommands (train, eval, predict, ...).
local script = arg[1]
if script == nil or script == "-h" or script == "--help" then
  io.stderr:write("usage: mtl script.lua [args]\n")
  os.exit(script == nil and 2 or 0)
end

local chunk, err = loadfile(script)
if not chunk then
  io.stderr:write("mtl: ", err, "\n")
  os.exit(1)
end
local args = {}
for i = 2, #arg do args[i - 1] = arg[i] end
args[0] = script
_G.arg = args
local ok, msg = xpcall(function() return chunk(unpack(args)) end, debug.traceback)
if not ok then
  io.stderr:write("mtl: ", tostring(msg), "\n")
  os.exit(1)
end
