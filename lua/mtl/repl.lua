-- The mtl REPL (docs/repl.md), in the spirit of Torch7's `th`.
--
--   mtl                 interactive, with line editing, history and completion
--   mtl -i script.lua   run a script, then stay with its globals
--   echo 'x = 1 + 1; =x' | mtl    stdin from a pipe: no prompts, no escapes
--
-- Every expression's values are printed (tensors formatted, tables pretty-
-- printed to a depth limit). `=expr` and plain statements both work; input
-- continues over several lines until the chunk is complete. Ctrl-C stops
-- running code (a tensor op, or pure Lua such as `while true do end`) and
-- returns to the prompt; Ctrl-D exits. From a pipe, the first error stops the
-- input as an error stops a script: its message with the line in the input
-- and a traceback go to stderr, and run returns false (mtl exits 1).
local ffi = require "ffi"
local mtl = require "mtl"

local repl = {}

local HISTORY = (os.getenv("HOME") or ".") .. "/.mtl_history"
local MAX_DEPTH, MAX_ITEMS = 3, 30

-- ---- pretty printing ----------------------------------------------------------------
local function is_ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function pretty(v, depth, seen, indent)
  local tv = type(v)
  if tv == "string" then return string.format("%q", v) end
  if tv ~= "table" then
    local s = tostring(v)
    return s
  end
  if getmetatable(v) and getmetatable(v).__tostring then return tostring(v) end
  if seen[v] then return "<cycle>" end
  if depth >= MAX_DEPTH then return "{...}" end
  seen[v] = true
  local keys, n = {}, #v
  for k in pairs(v) do
    if not (type(k) == "number" and k >= 1 and k <= n and k == math.floor(k)) then keys[#keys + 1] = k end
  end
  table.sort(keys, function(a, b)
    if type(a) == type(b) and (type(a) == "string" or type(a) == "number") then return a < b end
    return type(a) < type(b)
  end)
  local parts, count = {}, 0
  local inner = indent .. "  "
  for i = 1, n do
    count = count + 1
    if count > MAX_ITEMS then parts[#parts + 1] = "..."; break end
    parts[#parts + 1] = pretty(v[i], depth + 1, seen, inner)
  end
  for _, k in ipairs(keys) do
    count = count + 1
    if count > MAX_ITEMS then parts[#parts + 1] = "..."; break end
    local key = is_ident(k) and k or ("[" .. pretty(k, MAX_DEPTH, seen, inner) .. "]")
    parts[#parts + 1] = key .. " = " .. pretty(v[k], depth + 1, seen, inner)
  end
  seen[v] = nil
  local one = "{" .. table.concat(parts, ", ") .. "}"
  if #one <= 78 and not one:find("\n") then return one end
  return "{\n" .. inner .. table.concat(parts, ",\n" .. inner) .. "\n" .. indent .. "}"
end
repl.pretty = function(v) return pretty(v, 0, {}, "") end

-- ---- evaluation ------------------------------------------------------------------------
local function pack(...) return { n = select("#", ...), ... } end

-- Compiles a chunk: an expression first (so `1 + 1` prints 2), then a
-- statement. Returns the function, or nil and the error, and whether the
-- input is incomplete (more lines needed).
-- first_line (default 1): the line of the input src starts at, so that
-- messages name lines of the whole input. An expression's values pass through
-- a function call, so that a call in it is not a tail call (which would lose
-- the position of an error raised in it: `error("e")` says stdin:1: e).
local function pass(...) return ... end
local function compile(src, env, first_line)
  local pad = ("\n"):rep((first_line or 1) - 1)
  local expr = src:match("^=(.*)$")
  local f, err = loadstring(pad .. "local __mtl_pass = ... return __mtl_pass(" .. (expr or src) .. "\n)", "=stdin")
  if not f then
    f, err = loadstring(pad .. (expr and ("return " .. expr) or src), "=stdin")
    if f and expr then f, err = nil, "stdin: cannot read the expression" end
  end
  if not f then
    if err:match("<eof>") or err:match("'<eof>'") then return nil, err, true end
    return nil, err, false
  end
  setfenv(f, env)
  local chunk = f
  return function() return chunk(pass) end
end
repl.compile = compile

-- Ctrl-C while a chunk runs. SIGINT only sets the binding's flag
-- (core.catch_interrupts); the next tensor op raises "interrupted". Pure Lua
-- code (`while true do end`) is stopped by a count hook set for the chunk:
-- every million instructions it looks at the flag. Compiled code calls no
-- hook, so LuaJIT's profiler runs too: every 20 ms of CPU time it leaves the
-- trace (mode "l" puts that check into every trace compiled while it runs;
-- starting it flushes older traces) and calls back; when the flag is set the
-- callback makes the hook's count 1, so the hook raises "interrupted" at the
-- chunk's next instruction. (LuaJIT restores the hook mask after the
-- callback, so the hook itself must be set before; its own count is all the
-- callback changes.)
local profile_ok, profile = pcall(require, "jit.profile")
local POLL = 1000000
local callback_thread -- the profiler's callback runs in a coroutine of its own
local function on_hook()
  if callback_thread ~= nil and coroutine.running() == callback_thread then return end -- an error there ends the process
  if mtl.core.interrupted() or repl._armed then
    repl._armed = false
    debug.sethook()
    error("interrupted", 2)
  end
end
local function watch_interrupts(on)
  mtl.core.catch_interrupts(on)
  repl._armed = false
  if not on then
    if profile_ok then profile.stop() end
    debug.sethook()
    return
  end
  debug.sethook(on_hook, "", POLL)
  if profile_ok then
    profile.start("li20", function()
      callback_thread = coroutine.running()
      if mtl.core.interrupted() then
        repl._armed = true
        debug.sethook(on_hook, "", 1)
      end
    end)
  end
end

-- Runs f; prints its results or a short traceback. Ctrl-C interrupts.
-- err_out: where errors go (out in a session; stderr for piped input, as a
-- script's, after err_prefix). Returns true, or false and the message.
local function run(f, out, err_out, err_prefix)
  watch_interrupts(true)
  local res = pack(xpcall(f, function(e)
    if e == "interrupted" or (type(e) == "string" and e:match(":%d+: interrupted$")) then return "interrupted" end
    local tb = debug.traceback(tostring(e), 2)
    -- keep the traceback short: drop the REPL's own frames
    local lines = {}
    for line in tb:gmatch("[^\n]+") do
      if line:match("mtl/repl%.lua") or line:match("%[C%]: in function 'xpcall'") then break end
      if not line:match("^%s+%[builtin") and not line:match("^%s+%[C%]: at ") then lines[#lines + 1] = line end
      if #lines >= 8 then break end
    end
    if lines[#lines] == "stack traceback:" then lines[#lines] = nil end
    return table.concat(lines, "\n")
  end))
  watch_interrupts(false)
  if not res[1] then
    (err_out or out):write(err_prefix or "", tostring(res[2]), "\n")
    return false, res[2]
  end
  if res.n > 1 then
    local parts = {}
    for i = 2, res.n do parts[#parts + 1] = repl.pretty(res[i]) end
    out:write(table.concat(parts, "\t"), "\n")
  end
  return true
end

-- ---- help ----------------------------------------------------------------------------------
-- The docs: $MTL_DOCS (set by the mtl command: the source tree's docs/, or
-- the installed share/doc/mtl), else $MTL_HOME/docs, else ./docs.
local function docs_dir()
  return os.getenv("MTL_DOCS") or ((os.getenv("MTL_HOME") or ".") .. "/docs")
end

-- Lines of docs/*.md that mention name (`name(` or `name`), with their page.
local function doc_lines(name)
  local out = {}
  local short = name:match("[%.:]([%w_]+)$") or name
  local dir = docs_dir()
  for _, entry in ipairs(require("mtl.sys").list_dir(dir) or {}) do
    local file = entry:match("%.md$") and dir .. "/" .. entry
    local f = file and io.open(file)
    if f then
      for line in f:lines() do
        if (line:find(name, 1, true) or line:find("`" .. short .. "(", 1, true) or line:find(":" .. short .. "(", 1, true))
          and line:match("^%s*[|%-*]") then
          out[#out + 1] = { file = entry, line = line }
        end
      end
      f:close()
    end
  end
  return out
end

-- help() / help(x) / ?x: the REPL's help, or x's signature and description
-- (mtl.help) and the table rows and list items of docs/ that mention it.
-- name: the text x was written as (?mtl.nosuch passes "mtl.nosuch").
function repl.help(x, out, name, given)
  out = out or io.stdout
  if given == false then
    out:write([[
mtl REPL: type Lua; expressions print their values.
  =expr            print expr          help(x) or ?x   what x is and does
  mtl.<Tab>        complete names      Ctrl-C          stop running code
  Ctrl-D / os.exit()  leave            history in ~/.mtl_history
docs: ]], docs_dir(), "/README.md\n")
    return
  end
  local help = require "mtl.help"
  out:write(help.text(x, name))
  local e = help.lookup(x, name)
  if e and e.names then
    local lines = doc_lines(e.name)
    for i = 1, math.min(4, #lines) do
      out:write(string.format("  [%s] %s\n", lines[i].file, lines[i].line:sub(1, 160)))
    end
  end
end

-- ---- completion -----------------------------------------------------------------------------
-- Candidates for the word before the cursor: globals, fields of tables
-- (a.b.c<Tab>), methods of tensors, modules and other objects (t:ma<Tab>).
function repl.complete(word, env)
  local base, sep, partial = word:match("^(.*)([%.:])([%w_]*)$")
  local out, seen = {}, {}
  local function add_keys(t, prefix, filter)
    local guard = 0
    while type(t) == "table" and guard < 8 do
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, #filter) == filter and not seen[k] and is_ident(k)
          and (sep ~= ":" or type(v) == "function" or type(v) == "table") then
          seen[k] = true
          out[#out + 1] = prefix .. k
        end
      end
      local mt = getmetatable(t)
      t = mt and type(mt.__index) == "table" and mt.__index or nil
      guard = guard + 1
    end
  end
  if not base then
    add_keys(env, "", word)
    add_keys(_G, "", word)
  else
    -- resolve base by walking identifiers only (never calls code)
    local v = env
    for part in base:gmatch("[^%.]+") do
      if not is_ident(part) then return out end
      local ok, nv = pcall(function() return v[part] end)
      if not ok or nv == nil then
        if v == env then nv = _G[part] end
        if nv == nil then return out end
      end
      v = nv
    end
    if type(v) == "userdata" then
      local mt = getmetatable(v)
      if mt == mtl.core.Tensor_mt then v = mtl.Tensor
      elseif mt and type(mt.__index) == "table" then v = mt.__index
      else return out end
    end
    add_keys(v, base .. sep, partial)
  end
  table.sort(out)
  return out
end

-- ---- line editing (libedit through the FFI) -----------------------------------------------
local edit
local function load_edit()
  local ok, lib = pcall(ffi.load, "libedit.so.2")
  if not ok then return nil end
  ffi.cdef [[
    char *readline(const char *prompt);
    int add_history(const char *line);
    int read_history(const char *file);
    int write_history(const char *file);
    void stifle_history(int n);
    typedef char *mtl_rl_compentry_t(const char *, int);
    typedef char **mtl_rl_completion_t(const char *, int, int);
    char **rl_completion_matches(const char *, mtl_rl_compentry_t *);
    extern mtl_rl_completion_t *rl_attempted_completion_function;
    extern char *rl_basic_word_break_characters;
    extern int rl_completion_append_character;
    extern const char *rl_readline_name;
    void free(void *);
    char *strdup(const char *);
  ]]
  return lib
end

local isatty = require("mtl.sys").isatty

-- ---- the loop -------------------------------------------------------------------------------------
-- opts: env (globals table), input (a file, default stdin), output, errors
-- (default stderr; piped input), interactive (default: stdin and stdout are
-- terminals). Returns env, and for piped input whether it ran without an
-- error (false, and the message, after the first error).
function repl.run(opts)
  opts = opts or {}
  local out = opts.output or io.stdout
  local input = opts.input or io.stdin
  local interactive = opts.interactive
  if interactive == nil then interactive = input == io.stdin and isatty(0) and isatty(1) end
  local env = opts.env or setmetatable({}, { __index = _G })
  env.mtl = env.mtl or mtl
  env.help = function(...) repl.help((...), out, (select(2, ...)), select("#", ...) > 0) end

  local read_line
  if interactive then
    edit = edit or load_edit()
  end
  if interactive and edit then
    edit.read_history(HISTORY)
    edit.stifle_history(5000)
    local word_breaks = ffi.new("char[?]", 32, " \t\n\"\\'`@$><=;|&{(,+-*/^%~#[]")
    edit.rl_basic_word_break_characters = word_breaks
    edit.rl_readline_name = "mtl"
    edit.rl_completion_append_character = 0 -- "mtl.zeros" then "(", not "mtl.zeros ("
    local matches = {}
    local entry = ffi.cast("mtl_rl_compentry_t *", function(text, state)
      if state == 0 then matches = repl.complete(ffi.string(text), env) end
      local m = matches[state + 1]
      if m == nil then return nil end
      return ffi.C.strdup(m)
    end)
    local attempted = ffi.cast("mtl_rl_completion_t *", function(text)
      return edit.rl_completion_matches(text, entry)
    end)
    edit.rl_attempted_completion_function = attempted
    repl._keep = { entry, attempted, word_breaks } -- callbacks must outlive readline
    read_line = function(prompt)
      local p = edit.readline(prompt)
      if p == nil then return nil end
      local s = ffi.string(p)
      ffi.C.free(p)
      return s
    end
  elseif interactive then
    read_line = function(prompt)
      out:write(prompt)
      out:flush()
      return input:read("*l")
    end
  else
    read_line = function() return input:read("*l") end
  end

  if interactive then
    out:write(string.format("mtl %s  (%s; help() for help, Ctrl-D to leave)\n",
      mtl.version, jit and jit.version or "LuaJIT"))
  end
  local buffer = nil
  local line_no, first_line = 0, 1
  -- piped input stops at its first error, as a script does
  local err_out, err_prefix = nil, nil
  if not interactive then err_out, err_prefix = opts.errors or io.stderr, "mtl: " end
  local ok, failure = true, nil
  while true do
    local line = read_line(buffer and ">> " or "mtl> ")
    if line == nil then
      if interactive then out:write("\n") end
      if buffer and not interactive then -- the input ended inside a chunk
        local _, err = compile(buffer, env, first_line)
        err_out:write(err_prefix, tostring(err), "\n")
        ok, failure = false, err
      end
      break
    end
    line_no = line_no + 1
    if buffer == nil then first_line = line_no end
    if interactive and edit and line:match("%S") then
      edit.add_history(line)
      edit.write_history(HISTORY) -- at once, so a killed session keeps its lines
    end
    local help_of = (buffer == nil) and line:match("^%s*%?%s*(.-)%s*$")
    if help_of then
      line = help_of == "" and "help()" or string.format("help(%s, %q)", help_of, help_of)
    end
    local src = buffer and (buffer .. "\n" .. line) or line
    if src:match("^%s*$") then
      buffer = nil
    else
      local f, err, incomplete = compile(src, env, interactive and 1 or first_line)
      if f then
        buffer = nil
        ok, failure = run(f, out, err_out, err_prefix)
      elseif incomplete then
        buffer = src
      else
        buffer = nil
        ok, failure = false, err
        if err_out then err_out:write(err_prefix, err, "\n") else out:write(err, "\n") end
      end
    end
    out:flush()
    if not ok and not interactive then break end
    ok = true
  end
  -- (history was written line by line)
  if interactive then return env, true end
  return env, ok, failure
end

return repl
