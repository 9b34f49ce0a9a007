-- The scripted misuse run (spec/scripts/misuse.lua) in a child process:
-- every function mtl exposes, called with wrong types, nil, bad shapes,
-- dims and indices, empty and zero-sized tensors, NaN/Inf and huge sizes.
-- The child must exit normally, report no problem (every misuse raised a
-- Lua error naming the function), and leave no sanitizer report on stderr;
-- and what it called must be everything the registries hold: every function
-- of the binding mtl.core (and its sub-tables), every Tensor method, every
-- method of every userdata class the binding registers (the luaL_Reg tables
-- behind debug.getregistry()["mtl.<Class>"].__index: embedding tables,
-- readers, optimizers, checkpoint writers and readers, collective handles)
-- and every method of the serving library's Scorer.
local shell = require "helpers.shell"
local shell_quote, run = shell.quote, shell.run

local function read_file(path) return shell.read_if_exists(path) or "" end

describe("misuse #slow", function()
  it("raises Lua errors for every misuse of every function and never crashes", function()
    local root, build = shell.root, shell.build
    local dir = run("mktemp -d"):gsub("%s+$", "") -- some functions write files named by their arguments
    local out, err, trace = dir .. "/stdout", dir .. "/stderr", dir .. "/trace"
    local status = run(string.format("cd %s && timeout 900 %s %s %s </dev/null >%s 2>%s; echo $?",
      shell_quote(dir), shell_quote(build .. "/mtl"), shell_quote(root .. "/spec/scripts/misuse.lua"),
      shell_quote(trace), shell_quote(out), shell_quote(err)))
    local stdout, stderr, last_call = read_file(out), read_file(err), read_file(trace):match("^[^\n]*")
    run("rm -rf " .. shell_quote(dir))

    local code = tonumber(status:match("%d+"))
    assert(code == 0, string.format("the misuse run exited with status %s during %s\nstderr:\n%s",
      tostring(code), tostring(last_call), stderr:sub(-4000)))
    assert.is_nil(stderr:find("runtime error", 1, true), stderr:sub(1, 4000))
    assert.is_nil(stderr:find("Sanitizer", 1, true), stderr:sub(1, 4000))
    local calls, errors, problems = stdout:match("misuse: done (%d+) calls, (%d+) errors, (%d+) problems\n$")
    assert(calls, "no summary line; stdout ends with:\n" .. stdout:sub(-2000))
    assert(tonumber(problems) == 0, "problems:\n" .. stdout:sub(1, 8000))
    assert.is_true(tonumber(errors) > 0)

    -- coverage: what the child called, against the registries of this process
    local covered = {}
    for reg, names in stdout:gmatch("misuse: covered (%S+) ([^\n]*)") do
      covered[reg] = {}
      for n in names:gmatch("%S+") do covered[reg][n] = true end
    end
    local expected = {}
    local function add(reg, name) expected[reg] = expected[reg] or {}; expected[reg][name] = true end
    local mtl = require "mtl"
    local core = mtl.core
    for k, v in pairs(core) do
      if type(v) == "function" then add("mtl.core", "mtl.core." .. k)
      elseif type(v) == "table" and k ~= "Tensor" and k ~= "Tensor_mt" then
        for kk, f in pairs(v) do if type(f) == "function" then add("mtl.core", "mtl.core." .. k .. "." .. kk) end end
      end
    end
    for k, v in pairs(mtl.Tensor) do if type(v) == "function" then add("mtl.Tensor", k) end end
    for name, mt in pairs(debug.getregistry()) do
      if type(name) == "string" and name:match("^mtl%.") and name ~= "mtl.Tensor" and type(mt) == "table"
        and type(rawget(mt, "__index")) == "table" then
        for k, f in pairs(mt.__index) do if type(f) == "function" then add(name, k) end end
      end
    end
    for k, f in pairs(require("mtl.serve").Scorer) do if type(f) == "function" then add("mtl.serve.Scorer", k) end end
    local counts = {}
    for reg, names in pairs(expected) do
      local missing, n, m = {}, 0, 0
      for name in pairs(names) do
        m = m + 1
        if covered[reg] and covered[reg][name] then n = n + 1 else missing[#missing + 1] = name end
      end
      table.sort(missing)
      assert(#missing == 0, string.format("%s: %d of %d functions called; not called: %s", reg, n, m,
        table.concat(missing, " ")))
      counts[reg] = n
    end
    -- the registries reached: the binding's functions, Tensor, six userdata classes, the Scorer
    for _, reg in ipairs({ "mtl.core", "mtl.Tensor", "mtl.Embedding", "mtl.Reader", "mtl.Optimizer", "mtl.CheckpointWriter",
                           "mtl.CheckpointReader", "mtl.dist.Request", "mtl.serve.Scorer" }) do
      assert.is_true((counts[reg] or 0) > 0, reg)
    end
  end)
end)
