-- mtl.sys: what mtl asks of the operating system, in one place, through the
-- FFI (Linux; the struct layouts are glibc's on 64-bit targets).
--
--   sys.now()           monotonic seconds (CLOCK_MONOTONIC): durations and rates
--   sys.time()          seconds since the epoch, fractional (CLOCK_REALTIME): timestamps
--   sys.cpu_time()      CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID)
--   sys.isatty(fd)      whether file descriptor fd is a terminal
--   sys.term_width(fd)  the terminal's columns (TIOCGWINSZ), else $COLUMNS, else 100
--   sys.exists(path)    whether path opens for reading (a file or a directory)
--   sys.is_dir(path)    whether path is a directory that can be listed
--   sys.list_dir(path)  its entries' names, sorted, without "." and "..";
--                       nil, message, errno when it cannot be read
--   sys.mkdir_p(path)   creates path and its missing parents (like mkdir -p, no shell)
--   sys.stat(path)      {dev =, ino =, mode =, size =, is_dir =} (follows symlinks);
--                       nil, message, errno when it fails
--   sys.same_file(a, b) whether two paths name one file (device and inode, not strings)
--   sys.realpath(path)  the absolute path without symlinks, "." or ".."; nil, message, errno
--   sys.rename(from, to), sys.unlink(path), sys.remove_tree(path)
--                       true, or nil, message, errno (remove_tree: a file, or a
--                       directory with everything in it; symlinks are removed, not followed)
--   sys.pid()           this process's id
--   sys.alive(pid)      whether a process with this id exists and runs (not a zombie)
--   sys.replace(path, write [, opts])
--                       writes an output whole or not at all: write(tmp) creates
--                       tmp (a file, or a directory with opts.dir) next to path;
--                       tmp is then renamed over path (a directory is swapped in
--                       with one rename, renameat2's RENAME_EXCHANGE). When write
--                       raises, tmp is removed, path is untouched and the error
--                       goes on as it was. Returns what write returned.
--                       Temporaries of path left by processes that died (a kill
--                       during a write) are removed first.
--   sys.write_atomic(path, bytes)  sys.replace for a file holding bytes; returns path
--   sys.remove_stale(dir [, base])
--                       removes dir's NAME.tmp.<pid> (base.tmp.<pid> only, with
--                       base) of processes that no longer run; returns their names
--   sys.create_new(path, bytes)  creates path holding bytes, only when it does not
--                       exist (O_EXCL); true, or nil, message, errno (EEXIST: 17)
--   sys.hostname()      this machine's name
--   sys.setenv(name, value)  sets an environment variable for this process and its children
--
-- Errors name the function, the path and the system's reason (strerror):
--   mtl.sys.mkdir_p: cannot create directory 'runs/a/b': Not a directory
local ffi = require "ffi"
local bit = require "bit"

local sys = {}

local EEXIST = 17

-- One declaration at a time, each allowed to fail: a script may have declared
-- the same C function (with its own struct types) before. Pointers are passed
-- as void * (which converts to any pointer parameter) and results are cast to
-- this file's types, so either declaration works.
for _, decl in ipairs {
  "typedef struct { long tv_sec; long tv_nsec; } mtl_sys_timespec;",
  "typedef struct { unsigned short row, col, xpixel, ypixel; } mtl_sys_winsize;",
  [[typedef struct { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type;
                     char d_name[256]; } mtl_sys_dirent;]],
  "int clock_gettime(int clk, mtl_sys_timespec *ts);",
  "int isatty(int fd);",
  "int ioctl(int fd, unsigned long request, ...);",
  "int mkdir(const char *path, unsigned int mode);",
  "int rename(const char *from, const char *to);",
  "int renameat2(int olddirfd, const char *from, int newdirfd, const char *to, unsigned int flags);",
  "int unlink(const char *path);",
  "int rmdir(const char *path);",
  "char *realpath(const char *path, char *resolved);",
  "void free(void *p);",
  "int getpid(void);",
  "int kill(int pid, int sig);",
  "int stat(const char *path, void *buf);",
  "int lstat(const char *path, void *buf);",
  "void *opendir(const char *path);",
  "mtl_sys_dirent *readdir(void *dir);",
  "int closedir(void *dir);",
  "char *strerror(int errnum);",
  "int setenv(const char *name, const char *value, int overwrite);",
  "int open(const char *path, int flags, ...);",
  "long write(int fd, const void *buf, size_t n);",
  "int close(int fd);",
  "int gethostname(char *name, size_t len);",
} do pcall(ffi.cdef, decl) end
local C = ffi.C

local function strerror(e) return ffi.string(C.strerror(e)) end

-- ---- time -------------------------------------------------------------------------
local ts = ffi.new("mtl_sys_timespec[1]")
local ts_ptr = ffi.cast("void *", ts)
local function clock(id)
  C.clock_gettime(id, ts_ptr)
  return tonumber(ts[0].tv_sec) + tonumber(ts[0].tv_nsec) * 1e-9
end

function sys.now() return clock(1) end       -- CLOCK_MONOTONIC
function sys.time() return clock(0) end      -- CLOCK_REALTIME
function sys.cpu_time() return clock(3) end  -- CLOCK_THREAD_CPUTIME_ID

-- ---- terminals ----------------------------------------------------------------------
function sys.isatty(fd) return C.isatty(fd) == 1 end

function sys.term_width(fd)
  local ws = ffi.new("mtl_sys_winsize[1]")
  if C.ioctl(fd, 0x5413, ffi.cast("void *", ws)) == 0 and ws[0].col > 0 then return ws[0].col end -- TIOCGWINSZ
  return tonumber(os.getenv("COLUMNS")) or 100
end

-- ---- files ---------------------------------------------------------------------------
function sys.exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function check_path(fn, path, level)
  if type(path) ~= "string" or path == "" then
    error(string.format("mtl.sys.%s: expected a path (a non-empty string), got %s", fn,
      type(path) == "string" and "an empty string" or type(path)), level or 3)
  end
end

function sys.is_dir(path)
  check_path("is_dir", path)
  local d = C.opendir(path)
  if d == nil then return false end
  C.closedir(d)
  return true
end

function sys.list_dir(path)
  check_path("list_dir", path)
  if ffi.os ~= "Linux" or not ffi.abi("64bit") then
    error("mtl.sys.list_dir: needs 64-bit Linux (its struct dirent layout is declared here)", 2)
  end
  local d = C.opendir(path)
  if d == nil then
    local e = ffi.errno()
    return nil, string.format("mtl.sys.list_dir: cannot read directory '%s': %s", path, strerror(e)), e
  end
  local names = {}
  while true do
    ffi.errno(0)
    local entry = C.readdir(d)
    if entry == nil then
      local e = ffi.errno()
      C.closedir(d)
      if e ~= 0 then return nil, string.format("mtl.sys.list_dir: cannot read directory '%s': %s", path, strerror(e)), e end
      break
    end
    local name = ffi.string(ffi.cast("mtl_sys_dirent *", entry).d_name)
    if name ~= "." and name ~= ".." then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- ---- file identity, renames and removals ---------------------------------------------------
-- struct stat as glibc lays it out on the two 64-bit targets mtl runs on; only
-- the fields read here are named.
local STAT = {
  x64 = "typedef struct { uint64_t dev, ino, nlink; uint32_t mode, uid, gid, pad0; uint64_t rdev; int64_t size;"
    .. " int64_t rest[14]; } mtl_sys_stat;",
  arm64 = "typedef struct { uint64_t dev, ino; uint32_t mode, nlink, uid, gid; uint64_t rdev, pad1; int64_t size;"
    .. " int64_t rest[14]; } mtl_sys_stat;",
}
local stat_ok = STAT[ffi.arch] ~= nil and pcall(ffi.cdef, STAT[ffi.arch])

local function failure(fn, what, path, e)
  return nil, string.format("mtl.sys.%s: %s '%s': %s", fn, what, path, strerror(e)), e
end

local function do_stat(fn, path, follow)
  check_path(fn, path, 4)
  if not stat_ok then error(string.format("mtl.sys.%s: needs 64-bit Linux on x64 or arm64 (struct stat)", fn), 3) end
  local st = ffi.new("mtl_sys_stat[1]")
  local rc = follow and C.stat(path, st) or C.lstat(path, st)
  if rc ~= 0 then return failure(fn, "cannot stat", path, ffi.errno()) end
  local mode = tonumber(st[0].mode)
  local kind = bit.band(mode, 0xF000) -- S_IFMT
  return { dev = tonumber(st[0].dev), ino = tonumber(st[0].ino), mode = mode, size = tonumber(st[0].size),
           is_dir = kind == 0x4000, is_link = kind == 0xA000 }
end

function sys.stat(path) return do_stat("stat", path, true) end

function sys.same_file(a, b)
  local x, y = do_stat("same_file", a, true), do_stat("same_file", b, true)
  return x ~= nil and y ~= nil and x.dev == y.dev and x.ino == y.ino
end

function sys.realpath(path)
  check_path("realpath", path)
  local p = C.realpath(path, nil)
  if p == nil then return failure("realpath", "cannot resolve", path, ffi.errno()) end
  local s = ffi.string(p)
  C.free(p)
  return s
end

function sys.pid() return C.getpid() end

local ESRCH = 3
function sys.alive(pid)
  if type(pid) ~= "number" or pid < 1 or pid ~= math.floor(pid) then return false end
  if C.kill(pid, 0) ~= 0 and ffi.errno() == ESRCH then return false end
  -- a zombie (ended, not yet reaped by its parent) runs no more
  local f = io.open("/proc/" .. pid .. "/stat")
  local st = f and f:read("*l")
  if f then f:close() end
  return not (st and st:match("^%d+ %b() Z"))
end

function sys.rename(from, to)
  check_path("rename", from)
  check_path("rename", to)
  if C.rename(from, to) ~= 0 then
    local e = ffi.errno()
    return nil, string.format("mtl.sys.rename: cannot rename '%s' to '%s': %s", from, to, strerror(e)), e
  end
  return true
end

function sys.unlink(path)
  check_path("unlink", path)
  if C.unlink(path) ~= 0 then return failure("unlink", "cannot remove", path, ffi.errno()) end
  return true
end

function sys.remove_tree(path)
  check_path("remove_tree", path)
  local st, err, e = do_stat("remove_tree", path, false)
  if not st then return nil, err, e end
  if st.is_dir then
    local names, lerr, le = sys.list_dir(path)
    if not names then return nil, lerr, le end
    for _, name in ipairs(names) do
      local ok, rerr, re = sys.remove_tree(path .. "/" .. name)
      if not ok then return nil, rerr, re end
    end
    if C.rmdir(path) ~= 0 then return failure("remove_tree", "cannot remove directory", path, ffi.errno()) end
    return true
  end
  return sys.unlink(path)
end

-- ---- outputs: whole or not at all ---------------------------------------------------------------
local RENAME_EXCHANGE, AT_FDCWD = 2, -100

-- Moves the finished tmp to path. A directory cannot be renamed over a
-- non-empty one: the two are exchanged in one step and the old one removed.
-- A directory that appears meanwhile (another process's replace) is swapped too.
local ENOTEMPTY, EEXIST = 39, 17
local function swap_in(tmp, path, dir)
  local ok, err, e = sys.rename(tmp, path)
  if ok then return true end
  if dir and (e == ENOTEMPTY or e == EEXIST) then
    if C.renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) ~= 0 then
      e = ffi.errno()
      return nil, string.format("mtl.sys.replace: cannot swap '%s' in for '%s': %s", tmp, path, strerror(e))
    end
    sys.remove_tree(tmp) -- the old directory, now under the temporary name
    return true
  end
  return nil, (err:gsub("^mtl%.sys%.rename", "mtl.sys.replace"))
end

function sys.remove_stale(dir, base)
  check_path("remove_stale", dir)
  local removed = {}
  for _, name in ipairs(sys.list_dir(dir) or {}) do
    local stem, pid = name:match("^(.+)%.tmp%.(%d+)$")
    pid = tonumber(pid)
    if pid and (base == nil or stem == base) and not sys.alive(pid) and sys.remove_tree(dir .. "/" .. name) then
      removed[#removed + 1] = name
    end
  end
  return removed
end

-- Removes path.tmp.<pid> of processes that no longer run.
local function remove_stale(path)
  local parent, base = path:match("^(.*)/([^/]+)$")
  if not parent then parent, base = ".", path end
  sys.remove_stale(parent == "" and "/" or parent, base)
end

function sys.replace(path, write, opts)
  check_path("replace", path)
  if type(write) ~= "function" then
    error(string.format("mtl.sys.replace: expected a function that writes the output, got %s", type(write)), 2)
  end
  local dir = opts and opts.dir
  path = path:gsub("(.)/+$", "%1")
  local tmp = string.format("%s.tmp.%d", path, sys.pid())
  remove_stale(path)
  if sys.stat(tmp) then sys.remove_tree(tmp) end -- left by an earlier process with this pid
  local res = { pcall(write, tmp) }
  if res[1] then
    local ok, err = swap_in(tmp, path, dir)
    if not ok then
      res = { false, err }
    end
  end
  if not res[1] then
    sys.remove_tree(tmp)
    error(res[2], 0)
  end
  return unpack(res, 2, table.maxn(res))
end

function sys.write_atomic(path, bytes)
  check_path("write_atomic", path)
  if type(bytes) ~= "string" then
    error(string.format("mtl.sys.write_atomic: expected the bytes to write (a string), got %s", type(bytes)), 2)
  end
  local function fail(err)
    error(string.format("mtl.sys.write_atomic: cannot write '%s': %s", path, tostring(err):gsub("^[^:]*: ", "")), 0)
  end
  sys.replace(path, function(tmp)
    local f, err = io.open(tmp, "wb")
    if not f then fail(err) end
    local ok, werr = f:write(bytes)
    local closed, cerr = f:close()
    if not ok or not closed then fail(werr or cerr) end
  end)
  return path
end

local O_WRONLY, O_CREAT, O_EXCL, O_CLOEXEC = 1, 64, 128, 524288
function sys.create_new(path, bytes)
  check_path("create_new", path)
  local fd = C.open(path, bit.bor(O_WRONLY, O_CREAT, O_EXCL, O_CLOEXEC), ffi.cast("int", 420)) -- 0644
  if fd < 0 then return failure("create_new", "cannot create", path, ffi.errno()) end
  local n = C.write(fd, bytes, #bytes)
  local e = ffi.errno()
  C.close(fd)
  if n ~= #bytes then
    sys.unlink(path)
    return failure("create_new", "cannot write", path, e)
  end
  return true
end

function sys.hostname()
  local buf = ffi.new("char[256]")
  if C.gethostname(buf, 255) ~= 0 then return "localhost" end
  return ffi.string(buf)
end

function sys.mkdir_p(path)
  check_path("mkdir_p", path)
  local prefix = path:sub(1, 1) == "/" and "/" or ""
  local err
  for part in path:gmatch("[^/]+") do
    prefix = prefix .. part
    err = nil
    if C.mkdir(prefix, 511) ~= 0 then -- 0777, less the umask
      err = ffi.errno()
      if err ~= EEXIST then
        error(string.format("mtl.sys.mkdir_p: cannot create directory '%s': %s", prefix, strerror(err)), 2)
      end
    end
    prefix = prefix .. "/"
  end
  if err == EEXIST and not sys.is_dir(path) then
    error(string.format("mtl.sys.mkdir_p: cannot create directory '%s': it exists and is not a directory", path), 2)
  end
  return path
end

-- ---- environment ---------------------------------------------------------------------
-- os.getenv reads the value back; processes started afterwards inherit it.
function sys.setenv(name, value)
  if type(name) ~= "string" or name == "" or name:find("=", 1, true) then
    error(string.format("mtl.sys.setenv: expected a variable name (a non-empty string without '='), got %s",
      type(name) == "string" and string.format("%q", name) or type(name)), 2)
  end
  if type(value) ~= "string" then
    error(string.format("mtl.sys.setenv: expected a string value for '%s', got %s", name, type(value)), 2)
  end
  if C.setenv(name, value, 1) ~= 0 then
    error(string.format("mtl.sys.setenv: cannot set '%s': %s", name, strerror(ffi.errno())), 2)
  end
end

return sys
