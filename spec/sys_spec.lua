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
