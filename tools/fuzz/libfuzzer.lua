-- The Lua entry of the libFuzzer driver (tools/fuzz/libfuzzer.c): run once
-- per process with the target's name, returns the function each input goes
-- to (its format: targets.decode). Files, where an API reads only files, are
-- written to MTL_FUZZ_SHM (tools/fuzz.sh: a directory in /dev/shm).
local target = ...
package.path = debug.getinfo(1, "S").source:match("^@(.*/)") .. "?.lua;" .. package.path
local targets = require "targets"
local ffi = require "ffi"

-- MTL_FUZZ_LUA_LINES (tools/fuzz.sh sets it for the targets whose parsers are
-- Lua): libfuzzer.c's line hook sees only interpreted code
if (os.getenv("MTL_FUZZ_LUA_LINES") or "") ~= "" then jit.off() end
local shm = assert(os.getenv("MTL_FUZZ_SHM"), "MTL_FUZZ_SHM unset (run tools/fuzz.sh)")
local t = targets.setup(target, { seeds = assert(os.getenv("MTL_FUZZ_SEEDS"), "MTL_FUZZ_SEEDS unset"), work = shm })
local file = shm .. "/input" .. targets.EXT[target]

ffi.cdef [[
typedef struct gzFile_s *gzFile;
gzFile gzopen(const char *path, const char *mode);
int gzwrite(gzFile file, const void *buf, unsigned len);
int gzclose(gzFile file);
]]
local z = target == "gz" and ffi.load("z")

local function write(bytes, compress)
  if compress then
    local g = z.gzopen(file, "wb")
    assert(g ~= nil, "gzopen " .. file)
    assert(#bytes == 0 or z.gzwrite(g, bytes, #bytes) == #bytes, "gzwrite")
    assert(z.gzclose(g) == 0, "gzclose")
  else
    local f = assert(io.open(file, "wb"))
    f:write(bytes)
    f:close()
  end
end

return function(data)
  local bytes, ctx, compress = targets.decode(target, data)
  local written = false
  ctx.path = function()
    if not written then write(bytes, compress); written = true end
    return file
  end
  t.run(bytes, ctx)
end
