-- tools/fuzz.sh: the fuzzers of the input parsers keep working. Each engine
-- runs every target briefly with a fixed seed; every target must run its
-- inputs and none may fail. Finding bugs takes hours: run the script by hand
-- (docs/fuzzing.md says how).
local shell = require "helpers.shell"

local TARGETS = { "csv", "gz", "ff", "opts", "pbtxt", "override", "luacfg", "ckpt", "modeldir" }

describe("tools/fuzz.sh", function()
  it("runs every target's mutants through the parsers without a failing batch #slow", function()
    local dir = shell.tmpdir()
    local out = shell.run(string.format("MTL_FUZZ_PLAIN=1 MTL_BUILD=%s MTL_FUZZ_DIR=%s %s 1 5 %s 3 2>&1; echo exit=$?",
      shell.quote(shell.build), shell.quote(dir), shell.quote(shell.root .. "/tools/fuzz.sh"), table.concat(TARGETS, ",")))
    shell.run("rm -rf " .. shell.quote(dir))
    assert.is_truthy(out:find("exit=0", 1, true), out)
    for _, t in ipairs(TARGETS) do
      local n, bad = out:match("\n" .. t .. "%s+(%d+) mutants in%s+%d+ batches, (%d+) failing batches")
      assert(n, "no summary for " .. t .. " in:\n" .. out)
      assert.is_true(tonumber(n) > 0, t)
      assert.are.equal(0, tonumber(bad), t)
    end
  end)

  -- the in-process engine (clang, which tools/setup.sh installs): builds
  -- build-libfuzzer when it is missing, then 300 inputs a target
  it("runs 300 inputs of every target in process under libFuzzer without a finding #slow", function()
    local dir = shell.tmpdir()
    local out = shell.run(string.format(
      "MTL_FUZZ_ENGINE=libfuzzer MTL_BUILD_PLAIN=%s MTL_FUZZ_DIR=%s MTL_FUZZ_LF_ARGS=-seed=7 %s 300 %s 2>&1; echo exit=$?",
      shell.quote(shell.build), shell.quote(dir), shell.quote(shell.root .. "/tools/fuzz.sh"), table.concat(TARGETS, ",")))
    shell.run("rm -rf " .. shell.quote(dir))
    assert.is_truthy(out:find("exit=0", 1, true), out)
    for _, t in ipairs(TARGETS) do
      local n, cov, ft, found = out:match("\n" .. t .. "%s+(%d+)%s+%d+%s+%d+%s+%d+%s+(%d+)%s+(%d+)%s+(%d+)")
      assert(n, "no summary for " .. t .. " in:\n" .. out)
      assert.are.equal(300, tonumber(n), t)
      assert.is_true(tonumber(cov) > 0 and tonumber(ft) > 0, t)
      assert.are.equal(0, tonumber(found), t)
    end
  end)
end)
