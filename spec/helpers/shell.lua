-- Shell helpers for specs that run programs: the repository root, the build
-- directory under test ($MTL_BUILD, default build/), its launcher, and
-- running a command for its output, reading and writing a file.
local M = {}

function M.quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Runs cmd with a shell; returns its stdout.
function M.run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function read_all(f)
  local s = f:read("*a")
  f:close()
  return s
end

-- The bytes of a file.
function M.read(path) return read_all(assert(io.open(path, "rb"))) end

-- The bytes of a file, or nil when it does not open.
function M.read_if_exists(path)
  local f = io.open(path, "rb")
  return f and read_all(f)
end

-- Writes text to path (replacing the file); returns path.
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- A new temporary directory (the caller removes it, with rm_rf).
function M.tmpdir() return (M.run("mktemp -d"):gsub("%s+$", "")) end

-- A new temporary directory and a writer into it: write(name, text) writes
-- dir/name and returns that path.
function M.scratch_dir()
  local dir = M.tmpdir()
  return dir, function(name, text) return M.write(dir .. "/" .. name, text) end
end

-- Removes path and everything under it.
function M.rm_rf(path) M.run("rm -rf " .. M.quote(path)) end

M.root = M.run("pwd"):gsub("%s+$", "")
M.build = os.getenv("MTL_BUILD") or "build"
if M.build:sub(1, 1) ~= "/" then M.build = M.root .. "/" .. M.build end
M.launcher = M.build .. "/mtl"

return M
