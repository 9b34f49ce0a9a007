-- tools/fuzz.sh: the mutation fuzzer of the input parsers keeps working. A few
-- seconds on the build under test (MTL_FUZZ_PLAIN=1: no sanitizer preload of
-- its own) with a fixed seed; every target must run mutants and none may fail.
-- Finding bugs takes minutes under the sanitizers: run the script by hand
-- (its header says how).
local shell = require "helpers.shell"

describe("tools/fuzz.sh", function()
  it("runs every target's mutants through the parsers without a failing batch #slow", function()
    local dir = shell.tmpdir()
    local targets = { "csv", "gz", "ff", "opts", "pbtxt", "override", "luacfg", "ckpt", "modeldir" }
    local out = shell.run(string.format("MTL_FUZZ_PLAIN=1 MTL_BUILD=%s MTL_FUZZ_DIR=%s %s 1 5 %s 3 2>&1; echo exit=$?",
      shell.quote(shell.build), shell.quote(dir), shell.quote(shell.root .. "/tools/fuzz.sh"), table.concat(targets, ",")))
    shell.run("rm -rf " .. shell.quote(dir))
    assert.is_truthy(out:find("exit=0", 1, true), out)
    for _, t in ipairs(targets) do
      local n, bad = out:match("\n" .. t .. "%s+(%d+) mutants in%s+%d+ batches, (%d+) failing batches")
      assert(n, "no summary for " .. t .. " in:\n" .. out)
      assert.is_true(tonumber(n) > 0, t)
      assert.are.equal(0, tonumber(bad), t)
    end
  end)
end)
