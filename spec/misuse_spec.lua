-- The scripted misuse run (spec/scripts/misuse.lua) in a child process:
-- every function mtl exposes, called with wrong types, nil, bad shapes,
-- dims and indices, empty and zero-sized tensors, NaN/Inf and huge sizes.
-- The child must exit normally, report no problem (every misuse raised a
-- Lua error naming the function), and leave no sanitizer report on stderr.
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
    assert.is_true(tonumber(calls) > 100000)
    assert.is_true(tonumber(errors) > 0)
  end)
end)
