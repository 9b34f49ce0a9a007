-- Memory stays flat in a training loop: resident memory of the process
-- (/proc/self/statm) and the bytes mtl holds for tensors (mtl.memory()).
local mtl = require "mtl"

local shell = require "helpers.shell"
local shell_quote, run = shell.quote, shell.run

local function full_gc()
  collectgarbage()
  collectgarbage()
end

describe("memory #slow", function()
  -- spec/scripts/memory_loop.lua runs 100,000 SGD steps of a small MLP in a
  -- fresh process (in this one, the Lua heap other specs left behind would set
  -- the GC's pace). After a warm-up of 20,000 steps, resident memory may grow
  -- by at most 4 MB over the remaining 80,000 steps (one leaked tensor handle,
  -- ~200 bytes, per step would add 16 MB; without sanitizers the measured
  -- growth is 0); after a full collection mtl holds exactly as many bytes as
  -- after the warm-up; and garbage tensors never pile up beyond 16 MB between
  -- collections. Under AddressSanitizer, tools/test.sh caps the quarantine of
  -- freed blocks at 16 MB so that it fills during the warm-up.
  it("stays flat over 100,000 training steps of a small MLP", function()
    local root, build = shell.root, shell.build
    local out = run(string.format("%s %s 100000 20000 2>&1", shell_quote(build .. "/mtl"),
      shell_quote(root .. "/spec/scripts/memory_loop.lua")))
    local fields = {}
    for v in out:gmatch("%S+") do fields[#fields + 1] = tonumber(v) end
    assert(#fields == 7 and fields[7], "unexpected output:\n" .. out)
    local first, final, rss0, rss1, held0, held1, peak = unpack(fields)
    assert.is_true(final < first / 10, string.format("loss %.4g did not fall from %.4g", final, first))
    assert.is_true(rss1 - rss0 < 4 * 2 ^ 20,
      string.format("resident memory grew by %d bytes after warm-up", rss1 - rss0))
    assert.are.equal(held0, held1)
    assert.is_true(peak < 16 * 2 ^ 20, string.format("peak in_use %d bytes", peak))
  end)

  -- The Lua GC sees only small handles; mtl tells it about tensor storage
  -- (heap tracking), so a loop making 4 MB garbage tensors collects them
  -- instead of holding all 1.2 GB.
  it("lets the Lua GC collect tensors whose storage is large", function()
    full_gc()
    local base = mtl.memory().in_use
    local peak = 0
    for _ = 1, 300 do
      local t = mtl.zeros(1000, 1000) + 1
      peak = math.max(peak, mtl.memory().in_use - base)
      assert.are.equal(1, t:get(1000, 1000))
    end
    assert.is_true(peak < 200 * 2 ^ 20, string.format("peak %d bytes above the baseline", peak))
    full_gc()
    assert.are.equal(base, mtl.memory().in_use)
  end)
end)
