-- Shell helpers for specs that run programs: the repository root, the build
-- directory under test ($MTL_BUILD, default build/), its launcher, and
-- running a command for its output, reading a file.
local M = {}

function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs cmd with a shell; returns its stdout.
function M.run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- The bytes of a file.
function M.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

-- Writes text to path (replacing it); returns path.
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- A new temporary directory (the caller removes it, with rm_rf).
function M.tmpdir() return (M.run("mktemp -d"):gsub("%s+$", "")) end

-- Removes path and everything under it.
function M.rm_rf(path) M.run("rm -rf " .. M.quote(path)) end

M.root = M.run("pwd"):gsub("%s+$", "")
M.build = os.getenv("MTL_BUILD") or "build"
if M.build:sub(1, 1) ~= "/" then M.build = M.root .. "/" .. M.build end
M.launcher = M.build .. "/mtl"

return M
