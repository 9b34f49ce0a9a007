-- mtl.sys: clocks, terminals and files through the FFI, with errors that say
-- the path and the system's reason; and the only place that does these.
local sys = require "mtl.sys"
local shell = require "helpers.shell"
local check = require "helpers.check"

describe("mtl.sys files", function()
  local dir
  before_each(function() dir = shell.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. shell.quote(dir)) end)

  local function touch(p) assert(io.open(p, "w")):close() end

  it("mkdir_p creates missing parents, accepts existing ones, and returns the path", function()
    assert.are.equal(dir .. "/a/b/c", sys.mkdir_p(dir .. "/a/b/c"))
    assert.is_true(sys.is_dir(dir .. "/a/b/c"))
    assert.are.equal(dir .. "/a/b", sys.mkdir_p(dir .. "/a/b"))      -- exists: fine
    assert.are.equal(dir .. "//a/./b/", sys.mkdir_p(dir .. "//a/./b/")) -- odd spellings of it
    sys.mkdir_p(dir .. "/it's \"quoted\" $(not run)")                -- no shell, so no quoting
    assert.is_true(sys.is_dir(dir .. "/it's \"quoted\" $(not run)"))
  end)

  it("mkdir_p says which directory it could not create, and why", function()
    touch(dir .. "/file")
    check.assert_error(string.format("mtl.sys.mkdir_p: cannot create directory '%s/file/sub': Not a directory", dir),
      sys.mkdir_p, dir .. "/file/sub/deeper")
    check.assert_error(string.format("mtl.sys.mkdir_p: cannot create directory '%s/file': it exists and is not a directory", dir),
      sys.mkdir_p, dir .. "/file")
    check.assert_error("mtl.sys.mkdir_p: expected a path (a non-empty string), got an empty string", sys.mkdir_p, "")
    check.assert_error("mtl.sys.mkdir_p: expected a path (a non-empty string), got nil", sys.mkdir_p, nil)
  end)

  it("list_dir gives the sorted names without . and .., or nil, the reason and errno", function()
    for _, n in ipairs({ "b", "a.ckpt", "C", ".hidden" }) do touch(dir .. "/" .. n) end
    sys.mkdir_p(dir .. "/sub")
    assert.are.same({ ".hidden", "C", "a.ckpt", "b", "sub" }, sys.list_dir(dir))
    assert.are.same({}, sys.list_dir(dir .. "/sub"))
    local names, err, errno = sys.list_dir(dir .. "/none")
    assert.is_nil(names)
    assert.are.equal(string.format("mtl.sys.list_dir: cannot read directory '%s/none': No such file or directory", dir), err)
    assert.are.equal(2, errno) -- ENOENT
    names, err, errno = sys.list_dir(dir .. "/b")
    assert.is_nil(names)
    assert.are.equal(string.format("mtl.sys.list_dir: cannot read directory '%s/b': Not a directory", dir), err)
    assert.are.equal(20, errno) -- ENOTDIR
  end)

  it("list_dir reads a directory of many entries", function()
    for i = 1, 300 do touch(string.format("%s/f%03d", dir, i)) end
    local names = sys.list_dir(dir)
    assert.are.equal(300, #names)
    assert.are.equal("f001", names[1])
    assert.are.equal("f300", names[300])
  end)

  it("exists and is_dir", function()
    touch(dir .. "/f")
    assert.is_true(sys.exists(dir .. "/f"))
    assert.is_true(sys.exists(dir))
    assert.is_false(sys.exists(dir .. "/g"))
    assert.is_true(sys.is_dir(dir))
    assert.is_false(sys.is_dir(dir .. "/f"))
    assert.is_false(sys.is_dir(dir .. "/g"))
  end)
end)

describe("mtl.sys outputs: whole or not at all", function()
  local dir
  before_each(function() dir = shell.tmpdir() end)
  after_each(function() os.execute("rm -rf " .. shell.quote(dir)) end)

  local function put(p, s) local f = assert(io.open(p, "wb")); f:write(s); f:close() end
  local function temporaries()
    local t = {}
    for _, n in ipairs(sys.list_dir(dir)) do if n:find(".tmp.", 1, true) then t[#t + 1] = n end end
    return t
  end

  it("replace renames the finished file over the output and returns what write returned", function()
    put(dir .. "/out.csv", "old\n")
    local seen
    local a, b = sys.replace(dir .. "/out.csv", function(tmp)
      seen = tmp
      put(tmp, "new\n")
      return 7, "rows"
    end)
    assert.are.same({ 7, "rows" }, { a, b })
    assert.are.equal(string.format("%s/out.csv.tmp.%d", dir, sys.pid()), seen) -- next to the output
    assert.are.equal("new\n", shell.read(dir .. "/out.csv"))
    assert.are.same({}, temporaries())
  end)

  it("replace leaves the old output and no temporary when write raises, and passes the error on as it was", function()
    put(dir .. "/out.csv", "old\n")
    local ok, err = pcall(sys.replace, dir .. "/out.csv", function(tmp)
      put(tmp, "half of the rows")
      error("x.csv:400: expected a number")
    end)
    assert.is_false(ok)
    assert.truthy(err:find("x.csv:400: expected a number", 1, true), err)
    local object = setmetatable({}, { __tostring = function() return "a usage error" end })
    local _, err2 = pcall(sys.replace, dir .. "/out.csv", function() error(object) end)
    assert.are.equal(object, err2) -- not turned into a string
    assert.are.equal("old\n", shell.read(dir .. "/out.csv"))
    assert.are.same({}, temporaries())
    -- a new output that failed leaves nothing at all
    pcall(sys.replace, dir .. "/new.csv", function(tmp) put(tmp, "x") error("no") end)
    assert.is_false(sys.exists(dir .. "/new.csv"))
    assert.are.same({}, temporaries())
  end)

  it("replace swaps a directory in whole and removes the old one", function()
    sys.replace(dir .. "/model", function(tmp)
      sys.mkdir_p(tmp)
      put(tmp .. "/a", "1")
    end, { dir = true })
    assert.are.equal("1", shell.read(dir .. "/model/a"))
    sys.replace(dir .. "/model/", function(tmp) -- a trailing slash names the same directory
      sys.mkdir_p(tmp .. "/sub")
      put(tmp .. "/b", "2")
      put(tmp .. "/sub/c", "3")
    end, { dir = true })
    assert.are.same({ "b", "sub" }, sys.list_dir(dir .. "/model"))
    assert.are.same({ "model" }, sys.list_dir(dir))
    pcall(sys.replace, dir .. "/model", function(tmp)
      sys.mkdir_p(tmp)
      put(tmp .. "/partial", "")
      error("failed half way")
    end, { dir = true })
    assert.are.same({ "b", "sub" }, sys.list_dir(dir .. "/model"))
    assert.are.same({ "model" }, sys.list_dir(dir))
  end)

  it("replace removes temporaries of processes that died, not those of running ones", function()
    local dead = tonumber(shell.run("sh -c 'echo $$'"))
    assert.is_false(sys.alive(dead))
    assert.is_true(sys.alive(sys.pid()))
    put(string.format("%s/out.csv.tmp.%d", dir, dead), "left by a kill")
    sys.mkdir_p(string.format("%s/out.csv.tmp.%d/x", dir, 4194305)) -- above Linux's largest pid_max
    local live = string.format("out.csv.tmp.%d", 1) -- init runs
    put(dir .. "/" .. live, "another writer's")
    put(dir .. "/other.csv.tmp.1234567", "not this output's")
    sys.write_atomic(dir .. "/out.csv", "done\n")
    local left = temporaries()
    table.sort(left)
    assert.are.same({ "other.csv.tmp.1234567", live }, left)
  end)

  it("write_atomic writes bytes whole and says what failed", function()
    sys.write_atomic(dir .. "/t.txt", "abc")
    assert.are.equal("abc", shell.read(dir .. "/t.txt"))
    check.assert_error(string.format("mtl.sys.write_atomic: cannot write '%s/none/t.txt': No such file or directory", dir),
      sys.write_atomic, dir .. "/none/t.txt", "x")
    check.assert_error("mtl.sys.write_atomic: expected the bytes to write (a string), got nil", sys.write_atomic, dir .. "/t", nil)
    check.assert_error("mtl.sys.replace: expected a function that writes the output, got string", sys.replace, dir .. "/t", "x")
  end)

  it("same_file compares devices and inodes: another spelling, a symlink, a hard link", function()
    put(dir .. "/a.csv", "x")
    os.execute(string.format("cd %s && ln a.csv hard.csv && ln -s a.csv soft.csv && mkdir sub", shell.quote(dir)))
    put(dir .. "/b.csv", "x")
    assert.is_true(sys.same_file(dir .. "/a.csv", dir .. "/sub/../a.csv"))
    assert.is_true(sys.same_file(dir .. "/a.csv", dir .. "/hard.csv"))
    assert.is_true(sys.same_file(dir .. "/soft.csv", dir .. "/a.csv"))
    assert.is_false(sys.same_file(dir .. "/a.csv", dir .. "/b.csv")) -- same bytes, another file
    assert.is_false(sys.same_file(dir .. "/a.csv", dir .. "/none.csv"))
    assert.are.equal(sys.realpath(dir) .. "/a.csv", sys.realpath(dir .. "/sub/../soft.csv"))
    local st = sys.stat(dir .. "/a.csv")
    assert.are.equal(1, st.size)
    assert.is_false(st.is_dir)
    assert.is_true(sys.stat(dir .. "/sub").is_dir)
    local none, err, errno = sys.stat(dir .. "/none")
    assert.is_nil(none)
    assert.are.equal(string.format("mtl.sys.stat: cannot stat '%s/none': No such file or directory", dir), err)
    assert.are.equal(2, errno)
  end)

  it("rename, unlink and remove_tree return true or nil, the reason and errno", function()
    put(dir .. "/a", "1")
    assert.is_true(sys.rename(dir .. "/a", dir .. "/b"))
    local ok, err, errno = sys.rename(dir .. "/a", dir .. "/c")
    assert.is_nil(ok)
    assert.are.equal(string.format("mtl.sys.rename: cannot rename '%s/a' to '%s/c': No such file or directory", dir, dir), err)
    assert.are.equal(2, errno)
    assert.is_true(sys.unlink(dir .. "/b"))
    assert.is_nil((sys.unlink(dir .. "/b")))
    sys.mkdir_p(dir .. "/t/u/v")
    put(dir .. "/t/u/v/f", "")
    os.execute(string.format("ln -s / %s/t/root", shell.quote(dir))) -- removed, not followed
    assert.is_true(sys.remove_tree(dir .. "/t"))
    assert.are.same({}, sys.list_dir(dir))
  end)
end)

describe("mtl.sys clocks and terminals", function()
  it("now is monotonic, time is the epoch clock, cpu_time counts this thread's work", function()
    local t0, c0 = sys.now(), sys.cpu_time()
    local x = 0
    for i = 1, 3e6 do x = x + i % 7 end
    assert.is_true(x > 0)
    assert.is_true(sys.now() >= t0)
    assert.is_true(sys.cpu_time() > c0)
    assert.is_true(math.abs(sys.time() - os.time()) <= 1)
  end)

  it("isatty is false for what is not a terminal; term_width falls back to $COLUMNS, then 100", function()
    assert.is_false(sys.isatty(-1))
    local lua = string.format("%s -e 'io.write(require(\"mtl.sys\").term_width(-1))'", shell.quote(shell.launcher))
    assert.are.equal("77", shell.run("COLUMNS=77 " .. lua))
    assert.are.equal("100", shell.run("env -u COLUMNS " .. lua))
  end)
end)

describe("mtl.sys environment", function()
  it("setenv sets a variable that os.getenv and started processes see", function()
    sys.setenv("MTL_SYS_SPEC_VAR", "a b 'c'")
    assert.are.equal("a b 'c'", os.getenv("MTL_SYS_SPEC_VAR"))
    assert.are.equal("a b 'c'", shell.run("printf %s \"$MTL_SYS_SPEC_VAR\""))
    sys.setenv("MTL_SYS_SPEC_VAR", "")
    assert.are.equal("", os.getenv("MTL_SYS_SPEC_VAR"))
  end)

  it("setenv says what is wrong with a name or a value", function()
    check.assert_error("mtl.sys.setenv: expected a variable name (a non-empty string without '='), got \"A=B\"",
      sys.setenv, "A=B", "x")
    check.assert_error("mtl.sys.setenv: expected a variable name (a non-empty string without '='), got \"\"", sys.setenv, "", "x")
    check.assert_error("mtl.sys.setenv: expected a variable name (a non-empty string without '='), got nil", sys.setenv, nil, "x")
    check.assert_error("mtl.sys.setenv: expected a string value for 'X', got number", sys.setenv, "X", 1)
  end)
end)

describe("lua/ and bench/", function()
  it("declare clock_gettime and create directories only through mtl.sys", function()
    local hits = shell.run("grep -rlE 'clock_gettime|mkdir -p' lua bench --include='*.lua'")
    assert.are.equal("lua/mtl/sys.lua\n", hits)
  end)
end)
