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
--   sys.write_atomic(path, bytes)  writes a file whole or not at all: a temporary
--                       file beside it, then rename(2) over path
--   sys.pid()           this process's id
--   sys.setenv(name, value)  sets an environment variable for this process and its children
--
-- Errors name the function, the path and the system's reason (strerror):
--   mtl.sys.mkdir_p: cannot create directory 'runs/a/b': Not a directory
local ffi = require "ffi"

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
  "void *opendir(const char *path);",
  "mtl_sys_dirent *readdir(void *dir);",
  "int closedir(void *dir);",
  "char *strerror(int errnum);",
  "int getpid(void);",
  "int setenv(const char *name, const char *value, int overwrite);",
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

local function check_path(fn, path)
  if type(path) ~= "string" or path == "" then
    error(string.format("mtl.sys.%s: expected a path (a non-empty string), got %s", fn,
      type(path) == "string" and "an empty string" or type(path)), 3)
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

function sys.pid() return C.getpid() end

function sys.write_atomic(path, bytes)
  check_path("write_atomic", path)
  local tmp = string.format("%s.tmp-%d", path, C.getpid())
  local f, err = io.open(tmp, "wb")
  if not f then error(string.format("mtl.sys.write_atomic: cannot write '%s': %s", path, tostring(err)), 2) end
  local ok, werr = f:write(bytes)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    error(string.format("mtl.sys.write_atomic: cannot write '%s': %s", path, tostring(werr or cerr)), 2)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then
    os.remove(tmp)
    error(string.format("mtl.sys.write_atomic: cannot write '%s': %s", path, tostring(rerr)), 2)
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
