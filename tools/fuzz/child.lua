-- Child of fuzz.lua: <sanitizer build>/mtl tools/fuzz/child.lua TARGET LISTFILE
-- Feeds every file of LISTFILE to TARGET's parsers (tools/fuzz/targets.lua)
-- inside pcall. A Lua error is fine (exit 0) if it is a non-empty string;
-- anything else exits non-zero.
local target, listfile = arg[1], arg[2]
package.path = arg[0]:gsub("[^/]*$", "") .. "?.lua;" .. package.path
local targets = require "targets"

local function hash(s)
  local h = 5381
  for i = 1, #s do h = (h * 33 + s:byte(i)) % 2147483647 end
  return h
end

local DIR = os.getenv("MTL_FUZZ_DIR")
local msglog = assert(io.open(DIR .. "/work/messages_" .. target .. ".txt", "a"))
local function note(file, err)
  if type(err) ~= "string" or #err == 0 then
    io.stderr:write("BAD ERROR VALUE for ", file, ": ", tostring(err), "\n")
    os.exit(3)
  end
  if math.random(20) == 1 then msglog:write(err:sub(1, 400):gsub("\n", "\\n"), "\n") end
end

local work = DIR .. "/work/child_" .. target
local t = targets.setup(target, { seeds = DIR .. "/seeds", work = work, note = note })
local n, nerr = 0, 0
for f in io.lines(listfile) do
  io.stderr:write("FILE ", f, "\n")
  -- the mutant's name says which seed it came from (fuzz.lua: m<i>_<schema>_<n><ext>)
  local base = f:match("[^/]+$")
  local kind = base:match("^m%d+_([%w_]+)_%d+%.")
  local bytes = assert(io.open(f, "rb")):read("*a")
  local ctx = { name = base, schema = kind, which = kind, seed = hash(base), path = function() return f end }
  if target == "override" or target == "opts" then ctx.seed = hash(f) end
  local ok, err = pcall(t.run, bytes, ctx)
  n = n + 1
  if not ok then nerr = nerr + 1; note(f, err) end
  if n % 10 == 0 then collectgarbage() end
end
msglog:close()
os.execute("rm -rf '" .. work .. "'")
io.stderr:write(string.format("done %d files, %d errors\n", n, nerr))
collectgarbage()
