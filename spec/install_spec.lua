-- Installing mtl (docs/install.md): `cmake --install` to a temporary prefix,
-- `cpack -G DEB` and `luarocks make`, then a training, the REPL's require and
-- the C serving example (built with pkg-config and with find_package) run
-- against the installed trees only. The trees are built from a copy of the
-- sources; the copy and its build directory are deleted and the installed
-- tree is moved elsewhere before anything runs, and every command runs with
-- mtl's environment variables (MTL_HOME, LUA_PATH, ...) unset, so nothing can
-- reach a source or build tree. (Tagged install: the ASan pass of
-- tools/test.sh leaves it out, since it builds and runs its own plain tree.)
local shell = require "helpers.shell"
local tiny = require "cli.tiny"

local q = shell.quote
local SOURCES = { "CMakeLists.txt", "README.md", "mtl-scm-1.rockspec", "runtime", "lua", "models", "tools", "docs",
                  "examples" }
local CLEAN = "env -u MTL_HOME -u MTL_BUILD -u MTL_DOCS -u MTL_LAUNCHER -u LUA_PATH -u LUA_CPATH -u LUA_INIT "
           .. "-u LD_LIBRARY_PATH -u PKG_CONFIG_PATH -u CMAKE_PREFIX_PATH "

-- Runs a shell command; returns its exit code and its output (stdout and stderr).
local function sh(cmd)
  local out = shell.run("(" .. cmd .. ") 2>&1; echo \"[exit $?]\"")
  local rc = tonumber(out:match("%[exit (%d+)%]%s*$"))
  return rc, (out:gsub("%[exit %d+%]%s*$", ""))
end

local function must(cmd)
  local rc, out = sh(cmd)
  if rc ~= 0 then error(string.format("command failed (exit %d): %s\n%s", rc, cmd, out), 2) end
  return out
end

describe("install #slow #install", function()
  local tmp, prefix, rocks, deb, work

  setup(function()
    tmp = shell.tmpdir()
    local src, build = tmp .. "/src", tmp .. "/build"
    must("mkdir -p " .. q(src))
    for _, f in ipairs(SOURCES) do must(string.format("cp -R %s %s/", q(shell.root .. "/" .. f), q(src))) end
    -- the two installed targets only (install and cpack do not build "all")
    must(string.format("cmake -S %s -B %s -DCMAKE_BUILD_TYPE=Release -DCMAKE_SKIP_INSTALL_ALL_DEPENDENCY=ON", q(src), q(build)))
    must(string.format("cmake --build %s -j2 --target mtl_lua mtlserve", q(build)))
    must(string.format("cmake --install %s --prefix %s", q(build), q(tmp .. "/stage")))
    must(string.format("cd %s && cpack -G DEB", q(build)))
    must(string.format("mv %s/mtl_*.deb %s/mtl.deb", q(build), q(tmp)))
    deb = tmp .. "/mtl.deb"
    must(string.format("cd %s && CMAKE_BUILD_PARALLEL_LEVEL=2 %s luarocks --lua-version=5.1 make --tree %s --deps-mode=none",
      q(src), CLEAN, q(tmp .. "/rocks")))
    -- out of reach: sources and build gone, the installed tree moved
    must(string.format("rm -rf %s %s", q(src), q(build)))
    prefix, rocks = tmp .. "/moved/prefix", tmp .. "/rocks"
    must(string.format("mkdir -p %s/moved && mv %s %s", q(tmp), q(tmp .. "/stage"), q(prefix)))
    work = tmp .. "/work"
    must("mkdir -p " .. q(work))
  end)

  teardown(function() if tmp then tiny.rm(tmp) end end)

  it("puts each part where LuaJIT, pkg-config and CMake look", function()
    for _, f in ipairs { "bin/mtl", "share/lua/5.1/mtl/init.lua", "share/lua/5.1/mtl/main.lua", "share/lua/5.1/models/mmoe.lua",
                         "lib/lua/5.1/mtl/core.so", "include/mtl/serve.h", "include/mtl/core.h", "lib/libmtlserve.so",
                         "lib/pkgconfig/mtl.pc", "lib/cmake/mtl/mtlConfig.cmake", "lib/cmake/mtl/mtlConfigVersion.cmake",
                         "share/doc/mtl/install.md", "share/doc/mtl/examples/serve/score_request.c" } do
      assert(shell.run("test -r " .. q(prefix .. "/" .. f) .. " && echo yes"):find("yes"), "missing " .. f)
    end
  end)

  it("lets plain luajit require mtl with LUA_PATH and LUA_CPATH at the prefix", function()
    local out = must(string.format(
      "cd %s && %s LUA_PATH=%s LUA_CPATH=%s luajit -e %s", q(work), CLEAN,
      q(prefix .. "/share/lua/5.1/?.lua;" .. prefix .. "/share/lua/5.1/?/init.lua;;"), q(prefix .. "/lib/lua/5.1/?.so;;"),
      q([[local mtl = require "mtl"
          print(package.searchpath("mtl", package.path), package.searchpath("mtl.core", package.cpath))
          print(mtl.matmul(mtl.ones(2, 3), mtl.ones(3, 1)):sum():item(), table.concat(require("mtl.models").names(), ","))]])))
    assert.equal(prefix .. "/share/lua/5.1/mtl/init.lua\t" .. prefix .. "/lib/lua/5.1/mtl/core.so\n"
      .. "6\t" .. table.concat(require("mtl.models").names(), ",") .. "\n", out) -- the tree's own models
  end)

  it("trains with the installed command from any directory, also through a symbolic link", function()
    local data = tiny.setup()
    must(string.format("mkdir -p %s/bin && ln -s %s %s/bin/mtl", q(work), q(prefix .. "/bin/mtl"), q(work)))
    local out = must(string.format("cd %s && %s %s/bin/mtl train %s", q(work), CLEAN, q(work), q(data .. "/config.lua")))
    assert.truthy(out:find("click", 1, true), out)
    assert.truthy(shell.run("ls " .. q(data .. "/run")):find("run.json", 1, true))
    tiny.rm(data)
  end)

  it("answers the REPL's require from the installed tree", function()
    local out = must(string.format("cd %s && printf '%%s\\n' %s | %s %s", q(work),
      q('local mtl = require "mtl"; print("sum", mtl.ones(4):sum():item(), package.searchpath("mtl", package.path))'),
      CLEAN, q(prefix .. "/bin/mtl")))
    assert.truthy(out:find("sum\t4\t" .. prefix .. "/bin/../share/lua/5.1/mtl/init.lua", 1, true), out)
  end)

  it("builds and runs the C serving example against the installed package (pkg-config and CMake)", function()
    local ex = prefix .. "/share/doc/mtl/examples/serve"
    must(string.format("cd %s && %s MTL_EXAMPLE_SMALL=1 %s %s %s", q(work), CLEAN, q(prefix .. "/bin/mtl"),
      q(ex .. "/train_and_export.lua"), q(work .. "/serve")))
    local pc = string.format("PKG_CONFIG_PATH=%s pkg-config", q(prefix .. "/lib/pkgconfig"))
    must(string.format("cd %s && %s cc -O2 -o score_pc %s $(%s --cflags mtl) $(%s --libs mtl) -Wl,-rpath,$(%s --variable=libdir mtl) -lpthread -lm",
      q(work), CLEAN, q(ex .. "/score_request.c"), pc, pc, pc))
    must(string.format("%s cmake -S %s -B %s -DCMAKE_PREFIX_PATH=%s && %s cmake --build %s", CLEAN, q(ex), q(work .. "/ex"),
      q(prefix), CLEAN, q(work .. "/ex")))
    for _, exe in ipairs { work .. "/score_pc", work .. "/ex/score_request" } do
      local out = must(string.format("cd %s && %s %s serve/model serve/request.csv --requests 5 --threads 1 --warmup 1",
        q(work), CLEAN, q(exe)))
      assert.truthy(out:match("\ncsv%s+1%s+5%s"), out)
      assert.truthy(out:match("\ncolumns%s+1%s+5%s"), out)
    end
  end)

  it("packs a Debian package of the same tree that works where it is unpacked", function()
    local list = must("dpkg-deb -c " .. q(deb))
    for _, f in ipairs { "./usr/local/bin/mtl", "./usr/local/share/lua/5.1/mtl/init.lua", "./usr/local/lib/lua/5.1/mtl/core.so",
                         "./usr/local/lib/libmtlserve.so.0", "./usr/local/lib/pkgconfig/mtl.pc",
                         "./usr/local/include/mtl/serve.h" } do
      assert.truthy(list:find(f, 1, true), f .. " not in the package")
    end
    assert.truthy(must("dpkg-deb -f " .. q(deb) .. " Depends"):find("luajit", 1, true))
    must(string.format("dpkg-deb -x %s %s", q(deb), q(tmp .. "/deb")))
    local out = must(string.format("cd %s && %s %s -e %s", q(work), CLEAN, q(tmp .. "/deb/usr/local/bin/mtl"),
      q('print(#require("mtl.models").names(), require("mtl").ones(3):sum():item())')))
    assert.equal(#require("mtl.models").names() .. "\t3\n", out)
  end)

  it("installs the Lua side with luarocks make into a rocks tree", function()
    local out = must(string.format("cd %s && %s %s -e %s", q(work), CLEAN, q(rocks .. "/bin/mtl"),
      q('print(package.searchpath("mtl.core", package.cpath), require("mtl").ones(2):sum():item())')))
    assert.equal(rocks .. "/bin/../lib/lua/5.1/mtl/core.so\t2\n", out)
    out = must(string.format("cd %s && %s sh -c %s", q(work), CLEAN, q(
      'eval "$(luarocks --lua-version=5.1 --tree ' .. rocks .. ' path)" && luajit -e \'print(package.searchpath("mtl", package.path))\'')))
    assert.equal(rocks .. "/share/lua/5.1/mtl/init.lua\n", out)
  end)
end)
